//! Sample events for `collectd-monitor rules test`: one JSON object per
//! line, with the fields of the handler tables. An object with `severity`
//! (or `"kind": "notification"`) is a notification; one with
//! `"kind": "missing"` a silent series (its identity, `time`, `interval`
//! and `silent_for`); anything else a value list, whose `values` are read according to `dstypes` (gauge when
//! absent). The plugin's debug lines (`... monitor: event {...}`) are
//! accepted as they are: copy one from the log into a test.

use crate::events::Event;
use crate::events::{DsType, MetaValue, Metric, Missing, Notification, Severity, Value as DsValue};
use serde::Deserialize;
use serde_json::Value;

/// A line that is not a usable event.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(String);

/// A value list, or with `"kind": "missing"` a silent series (no values,
/// and its `silent_for`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesInput {
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
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default)]
    dsnames: Vec<String>,
    #[serde(default)]
    dstypes: Vec<DsType>,
    silent_for: Option<f64>,
}

impl SeriesInput {
    /// The identity, time and interval, no values.
    fn series(&self) -> Metric {
        Metric {
            host: self.host.clone(),
            plugin: self.plugin.clone(),
            plugin_instance: self.plugin_instance.clone(),
            type_: self.type_.clone(),
            type_instance: self.type_instance.clone(),
            time: self.time,
            interval: self.interval,
            ..Metric::default()
        }
    }
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
    #[serde(default)]
    meta: Vec<(String, MetaValue)>,
}

/// Parses one input line: a JSON object, or a debug `event {...}` line of
/// the plugin's log.
pub fn parse_input_line(line: &str) -> Result<Event, InputError> {
    let json = match line.find("event {") {
        Some(at) if !line.trim_start().starts_with('{') => &line[at + "event ".len()..],
        _ => line,
    };
    let mut value: Value =
        serde_json::from_str(json).map_err(|e| InputError(format!("not JSON: {e}")))?;
    let kind = value
        .as_object_mut()
        .and_then(|o| o.remove("kind"))
        .map(|k| k.as_str().unwrap_or_default().to_string());
    match kind.as_deref() {
        None | Some("metric" | "notification") => {}
        Some("missing") => {
            let m: SeriesInput =
                serde_json::from_value(value).map_err(|e| InputError(e.to_string()))?;
            if !m.values.is_empty() {
                return Err(InputError("a silent series has no `values`".into()));
            }
            return Ok(Event::Missing(Missing {
                silent_for: m.silent_for.unwrap_or(2.0 * m.interval),
                series: m.series(),
            }));
        }
        Some(other) => {
            return Err(InputError(format!(
                "kind {other:?}: expected \"metric\", \"notification\" or \"missing\""
            )));
        }
    }
    if kind.as_deref() == Some("notification") || value.get("severity").is_some() {
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
            meta: n.meta,
        }));
    }
    let m: SeriesInput = serde_json::from_value(value).map_err(|e| InputError(e.to_string()))?;
    if m.values.is_empty() {
        return Err(InputError("missing field `values`".into()));
    }
    if m.silent_for.is_some() {
        return Err(InputError(
            "`silent_for` belongs to a silent series (\"kind\": \"missing\")".into(),
        ));
    }
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
            DsType::Gauge => DsValue::Gauge(
                raw.as_f64()
                    .or_else(|| raw.as_str().and_then(crate::events::non_finite_value))
                    .ok_or_else(bad)?,
            ),
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
        values,
        dsnames,
        dstypes,
        ..m.series()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A silent series, as written by hand and as the plugin's debug line
    /// shows it (with its empty values), reads back the same.
    #[test]
    fn missing_lines_read_back_as_silent_series() {
        let by_hand = parse_input_line(
            r#"{"kind":"missing","host":"web1","plugin":"load","type":"load","time":100,"interval":10}"#,
        )
        .unwrap();
        let Event::Missing(m) = &by_hand else {
            panic!("{by_hand:?}")
        };
        assert_eq!(m.series.identity(), ["web1", "load", "", "load", ""]);
        assert_eq!((m.series.time, m.silent_for), (100.0, 20.0));
        let debug = format!(
            "monitor: event {}",
            serde_json::to_string(&by_hand).unwrap()
        );
        assert_eq!(parse_input_line(&debug).unwrap(), by_hand);
        assert!(
            parse_input_line(r#"{"kind":"missing","host":"h","values":[1]}"#).is_err(),
            "a silent series has no values"
        );
    }

    /// A debug line of the plugin's log reads back as the event it shows.
    #[test]
    fn debug_event_lines_read_back_as_the_same_event() {
        let metric = Event::Metric(Metric {
            host: "web1".into(),
            plugin: "df".into(),
            plugin_instance: "root".into(),
            type_: "df_complex".into(),
            type_instance: "free".into(),
            time: 1700000000.5,
            interval: 10.0,
            values: vec![DsValue::Gauge(2.5), DsValue::Derive(-3)],
            dsnames: vec!["a".into(), "b".into()],
            dstypes: vec![DsType::Gauge, DsType::Derive],
        });
        let note = Event::Notification(Notification {
            severity: Severity::Failure,
            time: 1700000000.0,
            message: "down".into(),
            host: "web1".into(),
            plugin: "nginx".into(),
            plugin_instance: String::new(),
            type_: "t".into(),
            type_instance: String::new(),
            meta: vec![("attempt".into(), MetaValue::Signed(3))],
        });
        for event in [metric, note] {
            let line = format!(
                "[2026-11-25 10:00:00] [debug] monitor: event {}",
                serde_json::to_string(&event).unwrap()
            );
            assert_eq!(parse_input_line(&line).unwrap(), event, "{line}");
        }
        // NaN and the infinities, which JSON has no numbers for.
        let odd = Event::Metric(Metric {
            values: vec![
                DsValue::Gauge(f64::INFINITY),
                DsValue::Gauge(f64::NEG_INFINITY),
                DsValue::Gauge(f64::NAN),
            ],
            dsnames: vec!["a".into(), "b".into(), "c".into()],
            dstypes: vec![DsType::Gauge; 3],
            interval: 10.0,
            ..Metric::default()
        });
        let json = serde_json::to_string(&odd).unwrap();
        assert!(json.contains(r#""values":["inf","-inf","nan"]"#), "{json}");
        let Event::Metric(back) = parse_input_line(&format!("x event {json}")).unwrap() else {
            panic!("not a metric");
        };
        assert_eq!(
            back.values[..2],
            [
                DsValue::Gauge(f64::INFINITY),
                DsValue::Gauge(f64::NEG_INFINITY)
            ]
        );
        assert!(matches!(back.values[2], DsValue::Gauge(g) if g.is_nan()));
        assert!(
            parse_input_line(r#"{"kind": "other", "values": [1]}"#)
                .unwrap_err()
                .to_string()
                .contains("kind")
        );
    }
}
