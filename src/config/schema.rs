//! The typed schema shared by config.json and the `<Plugin monitor>` block.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Every key of config.json (COMPAT.md §3). Unknown keys are errors, so a
/// typo such as `Hots` is reported instead of silently ignored.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// MQTT broker, `host` or `host:port`.
    #[serde(rename = "Host")]
    pub host: Option<String>,
    #[serde(rename = "User")]
    pub user: Option<String>,
    #[serde(rename = "Password")]
    pub password: Option<String>,
    /// Use TLS to reach the broker.
    #[serde(rename = "Secure", default)]
    pub secure: bool,
    /// MQTT clean-session flag; false keeps commands queued while we are away.
    #[serde(rename = "CleanSession", default)]
    pub clean_session: bool,
    #[serde(rename = "QoS", default)]
    pub qos: Qos,
    #[serde(rename = "CommandTopic")]
    pub command_topic: Option<String>,
    #[serde(rename = "CommandResultTopic")]
    pub command_result_topic: Option<String>,
    /// Seconds between reconnection attempts to the broker.
    #[serde(rename = "ReconnectInterval")]
    pub reconnect_interval: Option<u64>,
    #[serde(rename = "LogDevice", default)]
    pub log_device: LogDevice,
    #[serde(rename = "LogLevel", default)]
    pub log_level: LogLevelName,
    /// Directory whose `*.lua` files are the local monitoring rules.
    #[serde(rename = "LocalMonitorConfigDir")]
    pub local_monitor_config_dir: Option<PathBuf>,
    /// Recovery commands by service name.
    #[serde(rename = "Services", default)]
    pub services: BTreeMap<String, Service>,
}

/// Names accepted at the top level, for case-insensitive matching of
/// collectd.conf keys (collectd's own keys are case-insensitive).
pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "Host",
    "User",
    "Password",
    "Secure",
    "CleanSession",
    "QoS",
    "CommandTopic",
    "CommandResultTopic",
    "ReconnectInterval",
    "LogDevice",
    "LogLevel",
    "LocalMonitorConfigDir",
    "Services",
];

/// One service: named recovery commands, plus the paths the collectd.conf
/// replacement needs when the service is `collectd` itself.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Command name -> shell command line. The old README said `Commands`,
    /// the old code `commands`: both are accepted.
    #[serde(default, alias = "Commands")]
    pub commands: BTreeMap<String, String>,
    #[serde(rename = "ConfigPath")]
    pub config_path: Option<PathBuf>,
    #[serde(rename = "CommandPath")]
    pub command_path: Option<PathBuf>,
    #[serde(rename = "PIDPath")]
    pub pid_path: Option<PathBuf>,
}

/// Keys accepted inside a service, for case-insensitive collectd.conf keys.
pub(super) const SERVICE_KEYS: &[&str] = &["ConfigPath", "CommandPath", "PIDPath"];

/// MQTT quality of service; 2 (exactly once) unless configured otherwise,
/// as in the old project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct Qos(u8);

impl Qos {
    pub fn level(self) -> u8 {
        self.0
    }
}

impl Default for Qos {
    fn default() -> Self {
        Qos(2)
    }
}

impl TryFrom<u64> for Qos {
    type Error = String;
    fn try_from(v: u64) -> Result<Self, String> {
        if v <= 2 {
            Ok(Qos(v as u8))
        } else {
            Err(format!("QoS must be 0, 1 or 2, not {v}"))
        }
    }
}

/// Where our log lines go. `collectd` (the default) hands them to collectd's
/// own log so its `LogLevel` and log plugins apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogDevice {
    #[default]
    Collectd,
    Stdout,
    Syslog,
}

/// The old project's level names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevelName {
    Fatal,
    #[serde(alias = "err")]
    Error,
    #[serde(alias = "warning")]
    Warn,
    #[default]
    Info,
    Debug,
}
