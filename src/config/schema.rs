//! The typed schema shared by config.json and the `<Plugin monitor>` block.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Every key of config.json (docs/COMPATIBILITY.md §3). Unknown keys are errors, so a
/// typo such as `Hots` is reported instead of silently ignored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
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
    /// Where the host's presence is published, retained (`%{hostname}`
    /// expanded): online at every connection, offline as the MQTT last
    /// will and when collectd stops. Unset: no presence.
    #[serde(rename = "StatusTopic")]
    pub status_topic: Option<String>,
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

    // --- Beyond lua-collectd-monitor ---
    /// MQTT client id; default `collectd-monitor-<collectd hostname>`, stable
    /// across restarts so a persistent session resumes.
    #[serde(rename = "ClientId")]
    pub client_id: Option<String>,
    /// MQTT keep-alive, seconds.
    #[serde(rename = "KeepAlive", default = "default_keep_alive")]
    pub keep_alive: u64,
    /// PEM file of the CA(s) that signed the broker's certificate; default:
    /// the system's trust store.
    #[serde(rename = "CACert", alias = "CAFile")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for brokers that require one.
    #[serde(rename = "CertificateFile")]
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of `CertificateFile`.
    #[serde(rename = "CertificateKeyFile")]
    pub certificate_key_file: Option<PathBuf>,
    /// Verify the broker's certificate and name. Turning it off is logged
    /// as a warning at every start.
    #[serde(rename = "VerifyPeer", default = "default_true")]
    pub verify_peer: bool,
    /// Requests stamped more than this many seconds before (or after) our
    /// clock are refused with code 0x1006.
    #[serde(rename = "CommandMaxAge", default = "default_max_age")]
    pub command_max_age: u64,
    /// Larger MQTT payloads are dropped unread.
    #[serde(rename = "MaxPayloadBytes", default = "default_max_payload")]
    pub max_payload_bytes: u64,
    /// Where the task journal lives; relative paths are under collectd's
    /// `BaseDir`.
    #[serde(rename = "StateDir", default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Seconds a recovery command may run before it is killed.
    #[serde(rename = "CommandTimeout", default = "default_command_timeout")]
    pub command_timeout: u64,
    /// Recovery commands allowed to run at the same time.
    #[serde(rename = "MaxConcurrentCommands", default = "default_max_concurrent")]
    pub max_concurrent_commands: u64,
    /// Bytes of a command's output kept for its result.
    #[serde(rename = "CommandOutputLimit", default = "default_output_limit")]
    pub command_output_limit: u64,
    /// The `collectd-monitor` program, which carries out collectd.conf
    /// replacements from outside collectd.
    #[serde(rename = "HelperPath", default = "default_helper")]
    pub helper_path: PathBuf,
    /// A file, or a directory of `*.pub` files, of the public keys whose
    /// signed requests this host runs, each with its rights. Unset: any
    /// request on CommandTopic is run, as lua-collectd-monitor did.
    #[serde(rename = "TrustedKeys")]
    pub trusted_keys: Option<PathBuf>,
    /// Whether collectd.conf may be replaced remotely at all (a pushed
    /// config can load any plugin the policy below allows).
    #[serde(rename = "AllowConfigPush", default = "default_true")]
    pub allow_config_push: bool,
    /// Whether the rule files (and config.json) may be replaced remotely
    /// (`send-rules`, `send-monitor-config`).
    #[serde(rename = "AllowRulesPush", default = "default_true")]
    pub allow_rules_push: bool,
    /// Seconds after a rule push during which a quarantined file of the
    /// new set rolls the set back by itself.
    #[serde(rename = "RulesGracePeriod", default = "default_rules_grace")]
    pub rules_grace_period: u64,
    /// Plugins a pushed collectd.conf may load or configure; unset: any
    /// but the ones that run arbitrary code (exec, python, perl, java, lua).
    #[serde(rename = "PushAllowedPlugins")]
    pub push_allowed_plugins: Option<Vec<String>>,
    /// The control socket `collectd-monitor status` asks (mode 0600);
    /// default `StateDir/control.sock`, `""` turns it off.
    #[serde(rename = "ControlSocket")]
    pub control_socket: Option<PathBuf>,
    /// Directories a pushed collectd.conf may `Include` from.
    #[serde(rename = "PushIncludeDirs", default = "default_include_dirs")]
    pub push_include_dirs: Vec<PathBuf>,
    /// Directories the plugins of a pushed collectd.conf may write into
    /// (csv/rrdtool `DataDir`, logfile `File`, `PIDFile`, ...), beside the
    /// running `BaseDir` and `PIDFile`.
    #[serde(rename = "PushWritableDirs", default = "default_writable_dirs")]
    pub push_writable_dirs: Vec<PathBuf>,

    // --- Local monitoring and its sandbox ---
    /// VM fuel one handler call may burn before it is stopped.
    #[serde(rename = "RuleFuel", default = "default_rule_fuel")]
    pub rule_fuel: u64,
    /// MiB one rule file's Lua instance may hold.
    #[serde(rename = "RuleMemoryLimit", default = "default_rule_memory")]
    pub rule_memory_limit: u64,
    /// Milliseconds one handler call may take.
    #[serde(rename = "RuleTimeout", default = "default_rule_timeout")]
    pub rule_timeout: u64,
    /// Sandbox deaths within 5 minutes after which a rule file is
    /// quarantined until it changes on disk.
    #[serde(rename = "RuleCrashLimit", default = "default_crash_limit")]
    pub rule_crash_limit: u64,
    /// Seconds between checks of the rule directory for new, changed and
    /// removed files; 0 turns hot reload off.
    #[serde(rename = "RuleReloadInterval", default = "default_reload_interval")]
    pub rule_reload_interval: u64,
    /// Per-file overrides of the limits, by file name (`disk.lua`).
    #[serde(rename = "RuleFiles", default)]
    pub rule_files: BTreeMap<String, RuleFileLimits>,
    /// Seconds during which a rule-triggered command is not run again
    /// (per service/command); 0 turns flap control off.
    #[serde(rename = "CommandCooldown", default = "default_cooldown")]
    pub command_cooldown: u64,
    /// The user rule workers and the checker of pushed rule files run as
    /// once they have read their files, when collectd runs as root; `""`:
    /// collectd's own user.
    #[serde(rename = "SandboxUser", default = "default_sandbox_user")]
    pub sandbox_user: String,

    /// Seconds a pause lasts when `collectd-monitor pause` gives no `--for`.
    #[serde(rename = "PauseDefaultDuration", default = "default_pause")]
    pub pause_default_duration: u64,
    /// The longest pause allowed, in seconds.
    #[serde(rename = "PauseMaxDuration", default = "default_pause_max")]
    pub pause_max_duration: u64,
    /// Records the history (`StateDir/history.redb`) keeps at most; the
    /// oldest go first.
    #[serde(rename = "HistoryMaxRecords", default = "default_history_records")]
    pub history_max_records: u64,
    /// Seconds a history record is kept at most.
    #[serde(rename = "HistoryMaxAge", default = "default_history_age")]
    pub history_max_age: u64,

    // --- Central rules over the fleet's values ---
    /// Directory of rule files run over every value list this collectd
    /// receives (from other hosts, through the network plugin): a decision
    /// becomes a request to the host the value list came from.
    #[serde(rename = "FleetMonitorConfigDir")]
    pub fleet_monitor_config_dir: Option<PathBuf>,
    /// Where a host takes its commands, `%{hostname}` its name.
    #[serde(rename = "FleetCommandTopic")]
    pub fleet_command_topic: Option<String>,
    /// Where a host publishes its results, `%{hostname}` its name.
    #[serde(rename = "FleetResultTopic")]
    pub fleet_result_topic: Option<String>,
    /// Where a host announces its presence, `%{hostname}` its name: a host
    /// that says offline is sent no request.
    #[serde(rename = "FleetStatusTopic")]
    pub fleet_status_topic: Option<String>,
    /// The controller's private key (`collectd-monitor keygen`): requests
    /// to the hosts are signed with it.
    #[serde(rename = "SigningKey")]
    pub signing_key: Option<PathBuf>,
    /// Seconds of the window a central decision's task id is derived in:
    /// two controllers deciding the same repair within it send one task.
    #[serde(rename = "FleetTaskWindow", default = "default_fleet_window")]
    pub fleet_task_window: u64,
    /// Seconds a host has to answer a central request.
    #[serde(rename = "FleetRequestTimeout", default = "default_fleet_timeout")]
    pub fleet_request_timeout: u64,
    /// Hosts in repair at once per service/command: a number or `P%` of
    /// the hosts seen.
    #[serde(rename = "FleetMaxInFlight", default = "default_fleet_in_flight")]
    pub fleet_max_in_flight: String,
    /// Failed or timed-out repairs of a service/command within
    /// `FleetBudgetWindow` after which its repairs stop; 0: never.
    #[serde(rename = "FleetErrorBudget", default = "default_fleet_budget")]
    pub fleet_error_budget: u64,
    /// Seconds.
    #[serde(rename = "FleetBudgetWindow", default = "default_fleet_budget_window")]
    pub fleet_budget_window: u64,
    /// Seconds between two requests of one service/command to one host.
    #[serde(rename = "FleetHostCooldown", default = "default_fleet_cooldown")]
    pub fleet_host_cooldown: u64,
    /// A file of who may speak for which hosts' values beyond the default
    /// (the network plugin's user of the host's own name): `user`,
    /// `network`, `local` and `asks` lines.
    #[serde(rename = "FleetValueOrigins")]
    pub fleet_value_origins: Option<PathBuf>,
    /// Take every value list for its host without proof (a lab): anyone
    /// who can send to the network plugin picks the host to repair.
    #[serde(rename = "FleetAcceptUnprovenValues", default)]
    pub fleet_accept_unproven_values: bool,
    /// The hosts central rules may repair and the keys their results are
    /// signed with (`collectd-monitor hosts --keys`); unset: the hosts
    /// that announce themselves on `FleetStatusTopic`, keys taken on
    /// first sight.
    #[serde(rename = "FleetHostKeys")]
    pub fleet_host_keys: Option<PathBuf>,
    /// Hosts central rules keep state for at most; past it the one heard
    /// from least recently is forgotten.
    #[serde(rename = "FleetMaxHosts", default = "default_fleet_max_hosts")]
    pub fleet_max_hosts: u64,
    /// Where this controller announces its window and rule files to the
    /// other controllers (retained), `%{hostname}` its name; `""`: no
    /// announcement.
    #[serde(
        rename = "FleetControllerTopic",
        default = "default_fleet_controller_topic"
    )]
    pub fleet_controller_topic: String,
}

fn default_sandbox_user() -> String {
    "nobody".into()
}
fn default_pause() -> u64 {
    3600
}
fn default_pause_max() -> u64 {
    86_400
}
fn default_rules_grace() -> u64 {
    300
}
fn default_history_records() -> u64 {
    10_000
}
fn default_history_age() -> u64 {
    30 * 86_400
}
fn default_fleet_window() -> u64 {
    300
}
fn default_fleet_timeout() -> u64 {
    120
}
fn default_fleet_in_flight() -> String {
    "10%".into()
}
fn default_fleet_budget() -> u64 {
    3
}
fn default_fleet_budget_window() -> u64 {
    600
}
fn default_fleet_cooldown() -> u64 {
    300
}
fn default_fleet_max_hosts() -> u64 {
    100_000
}
fn default_fleet_controller_topic() -> String {
    "collectd/%{hostname}/controller".into()
}

/// Limits of one rule file, overriding `RuleFuel`, `RuleMemoryLimit` and
/// `RuleTimeout` for files that legitimately need more (or deserve less).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleFileLimits {
    #[serde(rename = "Fuel")]
    pub fuel: Option<u64>,
    /// MiB.
    #[serde(rename = "MemoryLimit")]
    pub memory_limit: Option<u64>,
    /// Milliseconds.
    #[serde(rename = "Timeout")]
    pub timeout: Option<u64>,
}

/// Keys accepted inside a `<RuleFile>` block.
pub(super) const RULE_FILE_KEYS: &[&str] = &["Fuel", "MemoryLimit", "Timeout"];

fn default_rule_fuel() -> u64 {
    crate::lua::VmLimits::DEFAULT_FUEL
}
fn default_rule_memory() -> u64 {
    crate::lua::VmLimits::DEFAULT_MEMORY_MIB
}
fn default_rule_timeout() -> u64 {
    crate::lua::VmLimits::DEFAULT_TIMEOUT_MS
}
fn default_crash_limit() -> u64 {
    3
}
fn default_reload_interval() -> u64 {
    5
}
fn default_cooldown() -> u64 {
    60
}

fn default_helper() -> PathBuf {
    PathBuf::from("collectd-monitor")
}

/// collectd's own configuration, and the package's file that loads this
/// plugin (`Include "/usr/share/collectd-monitor/load-plugin.conf"`).
fn default_include_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("/etc/collectd"),
        PathBuf::from("/usr/share/collectd-monitor"),
    ]
}

/// collectd's own directories (Debian); the plugin adds the running
/// `BaseDir` and `PIDFile`.
fn default_writable_dirs() -> Vec<PathBuf> {
    ["/var/lib/collectd", "/var/log/collectd", "/run/collectd"]
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

fn default_true() -> bool {
    true
}
fn default_keep_alive() -> u64 {
    30
}
fn default_max_age() -> u64 {
    300
}
fn default_max_payload() -> u64 {
    1024 * 1024
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("monitor")
}
fn default_command_timeout() -> u64 {
    60
}
fn default_max_concurrent() -> u64 {
    4
}
fn default_output_limit() -> u64 {
    64 * 1024
}

impl Default for Settings {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

/// Names accepted at the top level, for case-insensitive matching of
/// collectd.conf keys (collectd's own keys are case-insensitive), and for
/// the documentation, which must describe each.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "Host",
    "User",
    "Password",
    "Secure",
    "CleanSession",
    "QoS",
    "CommandTopic",
    "CommandResultTopic",
    "StatusTopic",
    "ReconnectInterval",
    "LogDevice",
    "LogLevel",
    "LocalMonitorConfigDir",
    "Services",
    "ClientId",
    "KeepAlive",
    "CACert",
    "CertificateFile",
    "CertificateKeyFile",
    "VerifyPeer",
    "CommandMaxAge",
    "MaxPayloadBytes",
    "StateDir",
    "CommandTimeout",
    "MaxConcurrentCommands",
    "CommandOutputLimit",
    "HelperPath",
    "TrustedKeys",
    "AllowConfigPush",
    "AllowRulesPush",
    "RulesGracePeriod",
    "PushAllowedPlugins",
    "PushIncludeDirs",
    "PushWritableDirs",
    "ControlSocket",
    "RuleFuel",
    "RuleMemoryLimit",
    "RuleTimeout",
    "RuleCrashLimit",
    "RuleReloadInterval",
    "RuleFiles",
    "CommandCooldown",
    "SandboxUser",
    "PauseDefaultDuration",
    "PauseMaxDuration",
    "HistoryMaxRecords",
    "HistoryMaxAge",
    "FleetMonitorConfigDir",
    "FleetCommandTopic",
    "FleetResultTopic",
    "FleetStatusTopic",
    "SigningKey",
    "FleetTaskWindow",
    "FleetRequestTimeout",
    "FleetMaxInFlight",
    "FleetErrorBudget",
    "FleetBudgetWindow",
    "FleetHostCooldown",
    "FleetValueOrigins",
    "FleetAcceptUnprovenValues",
    "FleetHostKeys",
    "FleetMaxHosts",
    "FleetControllerTopic",
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
    /// Seconds this service's commands may run (default `CommandTimeout`).
    #[serde(rename = "Timeout")]
    pub timeout: Option<u64>,
    /// Seconds before a rule may run one of this service's commands again
    /// (default `CommandCooldown`).
    #[serde(rename = "Cooldown")]
    pub cooldown: Option<u64>,
}

/// Why a requested service/command is not runnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Service,
    Command,
}

impl Missing {
    /// The words local rules' logs and remote results both use.
    pub fn message(self, service: &str, command: &str) -> String {
        match self {
            Missing::Service => format!("unknown service {service:?}"),
            Missing::Command => format!("service {service:?} has no command {command:?}"),
        }
    }
}

/// The configured command line `service`/`command` asks for, with its
/// service (for the service's own timeout and cooldown).
pub fn find_command<'a>(
    services: &'a BTreeMap<String, Service>,
    service: &str,
    command: &str,
) -> Result<(&'a Service, &'a str), Missing> {
    let svc = services.get(service).ok_or(Missing::Service)?;
    let line = svc.commands.get(command).ok_or(Missing::Command)?;
    Ok((svc, line))
}

/// Keys accepted inside a service, for case-insensitive collectd.conf keys.
pub(super) const SERVICE_KEYS: &[&str] = &[
    "ConfigPath",
    "CommandPath",
    "PIDPath",
    "Timeout",
    "Cooldown",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The case-insensitive collectd.conf mapping relies on these lists
    /// naming exactly what the structs accept.
    #[test]
    fn key_lists_match_the_schema() {
        for key in TOP_LEVEL_KEYS {
            let json = format!("{{\"{key}\": null}}");
            let err = serde_json::from_str::<Settings>(&json)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!err.contains("unknown field"), "{key}: {err}");
        }
        for key in SERVICE_KEYS {
            let json = format!("{{\"{key}\": null}}");
            assert!(serde_json::from_str::<Service>(&json).is_ok(), "{key}");
        }
        for key in RULE_FILE_KEYS {
            let json = format!("{{\"{key}\": null}}");
            assert!(
                serde_json::from_str::<RuleFileLimits>(&json).is_ok(),
                "{key}"
            );
        }
        let all = TOP_LEVEL_KEYS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>();
        let err = serde_json::from_str::<Settings>(r#"{"NoSuchKey": 1}"#)
            .unwrap_err()
            .to_string();
        for k in all {
            assert!(
                err.contains(&k),
                "{k} missing from the schema's field list: {err}"
            );
        }
    }
}
