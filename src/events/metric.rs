//! An owned value list and its parts: what collectd's write callback
//! turns a `value_list_t` into, what the batch encoding carries to the
//! rule workers, what the rule tables are built from. Plain data: the
//! conversion from collectd's structs is in `crate::collectd`.

use serde::{Deserialize, Serialize};

/// The four collectd data source types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsType {
    Counter,
    Gauge,
    Derive,
    Absolute,
}

impl DsType {
    /// The name collectd and the rule API use (`"gauge"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DsType::Counter => "counter",
            DsType::Gauge => "gauge",
            DsType::Derive => "derive",
            DsType::Absolute => "absolute",
        }
    }
}

/// One data source value. Gauges are floats, the others integers: rules tell
/// them apart (`math.type`), as with collectd's lua plugin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// NaN and the infinities, which JSON has no numbers for, are written
    /// `"nan"`, `"inf"` and `"-inf"` (JSON's `null` would lose them).
    #[serde(serialize_with = "gauge_json")]
    Gauge(f64),
    Derive(i64),
    Counter(u64),
    Absolute(u64),
}

fn gauge_json<S: serde::Serializer>(g: &f64, s: S) -> Result<S::Ok, S::Error> {
    match non_finite_name(*g) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_f64(*g),
    }
}

/// How a gauge JSON cannot hold as a number is written: `nan`, `inf`,
/// `-inf` (`None` for a finite one).
pub fn non_finite_name(g: f64) -> Option<&'static str> {
    if g.is_nan() {
        Some("nan")
    } else if g == f64::INFINITY {
        Some("inf")
    } else if g == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// The gauge a [`non_finite_name`] stands for.
pub fn non_finite_value(name: &str) -> Option<f64> {
    match name.to_ascii_lowercase().as_str() {
        "nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

impl Value {
    /// As a number, whatever its type (for people reading figures).
    pub fn as_f64(&self) -> f64 {
        match *self {
            Value::Gauge(g) => g,
            Value::Derive(d) => d as f64,
            Value::Counter(c) | Value::Absolute(c) => c as f64,
        }
    }

    /// The type this value was read as.
    pub fn ds_type(&self) -> DsType {
        match self {
            Value::Gauge(_) => DsType::Gauge,
            Value::Derive(_) => DsType::Derive,
            Value::Counter(_) => DsType::Counter,
            Value::Absolute(_) => DsType::Absolute,
        }
    }
}

/// An owned value list: everything a rule may look at, with no pointer into
/// collectd, so it can be queued and handled after the write callback returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub host: String,
    pub plugin: String,
    pub plugin_instance: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub type_instance: String,
    /// Seconds since the epoch.
    pub time: f64,
    /// Seconds.
    pub interval: f64,
    pub values: Vec<Value>,
    pub dsnames: Vec<String>,
    pub dstypes: Vec<DsType>,
}

impl Metric {
    /// `[host, plugin, plugin_instance, type, type_instance]`: what
    /// identifies the series (rule filters, guards and per-series state
    /// all key on it).
    pub fn identity(&self) -> [&str; 5] {
        [
            &self.host,
            &self.plugin,
            &self.plugin_instance,
            &self.type_,
            &self.type_instance,
        ]
    }
}

/// A series collectd stopped hearing from: no value list within its
/// `Timeout` × interval (collectd's missing callback). Only the identity,
/// the time of its last value and its interval are known; `values`,
/// `dsnames` and `dstypes` stay empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Missing {
    #[serde(flatten)]
    pub series: Metric,
    /// Seconds from the series' last value to when collectd found it
    /// silent.
    pub silent_for: f64,
}
