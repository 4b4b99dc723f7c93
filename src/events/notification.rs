//! An owned notification: what collectd's notification callback turns a
//! `notification_t` into, what rules see, what the plugin dispatches
//! (command results). Plain data: the conversion to and from collectd's
//! structs is in `crate::collectd`.

use serde::{Deserialize, Serialize};

/// Notification severity with collectd's numbering (also the rule API's
/// `NOTIF_FAILURE`/`NOTIF_WARNING`/`NOTIF_OKAY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "i32", try_from = "i32")]
pub enum Severity {
    Failure = 1,
    Warning = 2,
    Okay = 4,
}

impl From<Severity> for i32 {
    fn from(s: Severity) -> i32 {
        s as i32
    }
}

impl TryFrom<i32> for Severity {
    type Error = String;
    fn try_from(v: i32) -> Result<Self, String> {
        match v {
            1 => Ok(Severity::Failure),
            2 => Ok(Severity::Warning),
            4 => Ok(Severity::Okay),
            other => Err(format!("unknown severity {other} (expected 1, 2 or 4)")),
        }
    }
}

/// A notification meta value, as collectd types them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    String(String),
    Signed(i64),
    Unsigned(u64),
    Double(f64),
    Boolean(bool),
}

/// An owned notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub severity: Severity,
    /// Seconds since the epoch; 0 lets collectd stamp the current time.
    pub time: f64,
    pub message: String,
    pub host: String,
    pub plugin: String,
    pub plugin_instance: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub type_instance: String,
    /// Meta entries in collectd's order. Not sent on dispatch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<(String, MetaValue)>,
}

impl Notification {
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
