//! Golden examples a rule file may carry as its third return value, so the
//! file documents and tests itself (`collectd-monitor rules test FILE`):
//!
//! ```lua
//! return handlers, nil, {
//!   { metric = { plugin = "memory", type_instance = "free", values = { 5e9 } },
//!     expect = { service = "hello", command = "exec" } },
//!   { metric = { plugin = "memory", type_instance = "free", values = { 2e10 } } },  -- nothing fires
//! }
//! ```

use crate::events::Event;
use crate::events::{DsType, Metric, Missing, Notification, Severity, Value as DsValue};
use crate::lua::LuaValue;
use crate::task::CommandRef;
use std::collections::BTreeMap;

/// One example: an event and the decision it must lead to (`None`: no
/// handler fires).
#[derive(Clone, Debug)]
pub struct Example {
    pub event: Event,
    pub expect: Option<CommandRef>,
}

fn text(fields: &BTreeMap<String, LuaValue>, key: &str) -> String {
    match fields.get(key) {
        Some(LuaValue::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

fn number(fields: &BTreeMap<String, LuaValue>, key: &str, default: f64) -> f64 {
    match fields.get(key) {
        Some(LuaValue::Int(i)) => *i as f64,
        Some(LuaValue::Num(n)) => *n,
        _ => default,
    }
}

/// Lua arrays come out with keys "1", "2", ...
fn array(fields: Option<&LuaValue>) -> Vec<LuaValue> {
    match fields {
        Some(LuaValue::Table(_, t)) => (1..)
            .map_while(|i| t.get(&i.to_string()).cloned())
            .collect(),
        _ => Vec::new(),
    }
}

fn metric(fields: &BTreeMap<String, LuaValue>) -> Result<Metric, String> {
    let mut values = Vec::new();
    let mut dstypes = Vec::new();
    for v in array(fields.get("values")) {
        match v {
            LuaValue::Num(n) => {
                values.push(DsValue::Gauge(n));
                dstypes.push(DsType::Gauge);
            }
            // Integers are derive values (the rule sees an integer, as for
            // collectd's derive/counter/absolute types).
            LuaValue::Int(i) => {
                values.push(DsValue::Derive(i));
                dstypes.push(DsType::Derive);
            }
            other => return Err(format!("a metric value is a {}", other.type_name())),
        }
    }
    if values.is_empty() {
        return Err("a metric example needs `values`".into());
    }
    let mut dsnames: Vec<String> = array(fields.get("dsnames"))
        .into_iter()
        .map(|v| {
            if let LuaValue::Str(s) = v {
                s
            } else {
                String::new()
            }
        })
        .collect();
    dsnames.resize_with(values.len(), || "value".to_string());
    Ok(Metric {
        values,
        dsnames,
        dstypes,
        ..series(fields)
    })
}

/// A series' identity, `time` and `interval` (10 s when absent), no values.
fn series(fields: &BTreeMap<String, LuaValue>) -> Metric {
    Metric {
        host: text(fields, "host"),
        plugin: text(fields, "plugin"),
        plugin_instance: text(fields, "plugin_instance"),
        type_: text(fields, "type"),
        type_instance: text(fields, "type_instance"),
        time: number(fields, "time", 0.0),
        interval: number(fields, "interval", 10.0),
        ..Metric::default()
    }
}

/// A silent series: its identity, `time` (its last value), `interval`
/// and `silent_for` (twice the interval when absent, collectd's default
/// `Timeout`).
fn missing(fields: &BTreeMap<String, LuaValue>) -> Missing {
    let series = series(fields);
    Missing {
        silent_for: number(fields, "silent_for", 2.0 * series.interval),
        series,
    }
}

fn notification(fields: &BTreeMap<String, LuaValue>) -> Result<Notification, String> {
    let severity = match fields.get("severity") {
        Some(LuaValue::Int(s)) => Severity::try_from(*s as i32)?,
        _ => return Err("a notification example needs `severity` (1, 2 or 4)".into()),
    };
    Ok(Notification {
        severity,
        time: number(fields, "time", 0.0),
        message: text(fields, "message"),
        host: text(fields, "host"),
        plugin: text(fields, "plugin"),
        plugin_instance: text(fields, "plugin_instance"),
        type_: text(fields, "type"),
        type_instance: text(fields, "type_instance"),
        meta: vec![],
    })
}

/// Reads the third return value of a rule file.
pub fn parse(value: Option<&LuaValue>, file: &str) -> Result<Vec<Example>, String> {
    let list = match value {
        None | Some(LuaValue::Nil) => return Ok(Vec::new()),
        Some(LuaValue::Table(..)) => array(value),
        Some(other) => {
            return Err(format!(
                "{file}: the third return value (examples) must be a table, not a {}",
                other.type_name()
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, ex)| {
            let n = i + 1;
            let LuaValue::Table(_, fields) = ex else {
                return Err(format!("{file}: example {n} is not a table"));
            };
            let event = match (
                fields.get("metric"),
                fields.get("notification"),
                fields.get("missing"),
            ) {
                (Some(LuaValue::Table(_, m)), None, None) => {
                    Event::Metric(metric(m).map_err(|e| format!("{file}: example {n}: {e}"))?)
                }
                (None, Some(LuaValue::Table(_, m)), None) => Event::Notification(
                    notification(m).map_err(|e| format!("{file}: example {n}: {e}"))?,
                ),
                (None, None, Some(LuaValue::Table(_, m))) => Event::Missing(missing(m)),
                _ => {
                    return Err(format!(
                        "{file}: example {n} needs exactly one of `metric`, `notification` or `missing`"
                    ));
                }
            };
            let expect = match fields.get("expect") {
                None | Some(LuaValue::Nil) | Some(LuaValue::Bool(false)) => None,
                Some(LuaValue::Table(_, e)) => match (e.get("service"), e.get("command")) {
                    (Some(LuaValue::Str(s)), Some(LuaValue::Str(c))) => Some(CommandRef::new(s, c)),
                    _ => {
                        return Err(format!(
                            "{file}: example {n}: `expect` needs `service` and `command`"
                        ));
                    }
                },
                Some(other) => {
                    return Err(format!(
                        "{file}: example {n}: `expect` is a {}",
                        other.type_name()
                    ));
                }
            };
            Ok(Example { event, expect })
        })
        .collect()
}
