//! Sample events for `collectd-monitor rules test`: one JSON object per
//! line, with the fields of the handler tables. An object with `severity`
//! is a notification; anything else a value list, whose `values` are read
//! according to `dstypes` (gauge when absent).

use crate::events::Event;
use crate::events::{DsType, Metric, Notification, Severity, Value as DsValue};
use serde::Deserialize;
use serde_json::Value;

/// A line that is not a usable event.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricInput {
    #[serde(default)]
    host: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    plugin_instance: String,
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    type_instance: String,
    #[serde(default)]
    time: f64,
    #[serde(default = "ten")]
    interval: f64,
    values: Vec<Value>,
    #[serde(default)]
    dsnames: Vec<String>,
    #[serde(default)]
    dstypes: Vec<DsType>,
}

fn ten() -> f64 {
    10.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationInput {
    severity: Severity,
    #[serde(default)]
    time: f64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    plugin_instance: String,
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    type_instance: String,
}

/// Parses one input line.
pub fn parse_input_line(line: &str) -> Result<Event, InputError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| InputError(format!("not JSON: {e}")))?;
    if value.get("severity").is_some() {
        let n: NotificationInput =
            serde_json::from_value(value).map_err(|e| InputError(e.to_string()))?;
        return Ok(Event::Notification(Notification {
            severity: n.severity,
            time: n.time,
            message: n.message,
            host: n.host,
            plugin: n.plugin,
            plugin_instance: n.plugin_instance,
            type_: n.type_,
            type_instance: n.type_instance,
            meta: vec![],
        }));
    }
    let m: MetricInput = serde_json::from_value(value).map_err(|e| InputError(e.to_string()))?;
    let mut values = Vec::with_capacity(m.values.len());
    let mut dstypes = Vec::with_capacity(m.values.len());
    for (i, raw) in m.values.iter().enumerate() {
        let ty = m.dstypes.get(i).copied().unwrap_or(DsType::Gauge);
        let bad = || {
            InputError(format!(
                "values[{i}] = {raw} is not a valid {}",
                ty.as_str()
            ))
        };
        let v = match ty {
            DsType::Gauge => DsValue::Gauge(raw.as_f64().ok_or_else(bad)?),
            DsType::Derive => DsValue::Derive(raw.as_i64().ok_or_else(bad)?),
            DsType::Counter => DsValue::Counter(raw.as_u64().ok_or_else(bad)?),
            DsType::Absolute => DsValue::Absolute(raw.as_u64().ok_or_else(bad)?),
        };
        values.push(v);
        dstypes.push(ty);
    }
    let dsnames = (0..values.len())
        .map(|i| {
            m.dsnames.get(i).cloned().unwrap_or_else(|| {
                if i == 0 {
                    "value".into()
                } else {
                    format!("value{i}")
                }
            })
        })
        .collect();
    Ok(Event::Metric(Metric {
        host: m.host,
        plugin: m.plugin,
        plugin_instance: m.plugin_instance,
        type_: m.type_,
        type_instance: m.type_instance,
        time: m.time,
        interval: m.interval,
        values,
        dsnames,
        dstypes,
    }))
}
