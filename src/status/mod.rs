//! What the running plugin is doing, for `collectd-monitor status`: the
//! document (`Status`, the same types on both ends of the control socket),
//! the board the plugin's threads record into (`Board`), the socket server
//! (`server.rs`) and the client the CLI uses (`client.rs`).

mod board;
mod client;
mod server;

pub use board::{Board, FileState, HandlerEvent};
pub use client::{control, fetch};
pub use server::ControlServer;

use serde::{Deserialize, Serialize};

/// One answer to `status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub hostname: String,
    /// When the plugin started (ISO-8601 UTC).
    pub started: String,
    pub rule_files: Vec<FileStatus>,
    /// `None`: remote commands are off.
    pub remote: Option<RemoteStatus>,
    /// Recovery commands running now.
    pub running: Vec<RunningCommand>,
    /// The self-monitoring counters, by name (as dispatched to collectd).
    pub counters: Vec<(String, f64)>,
    /// Central rules, when `FleetMonitorConfigDir` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub central: Option<CentralStatus>,
    /// Maintenance pauses in force.
    #[serde(default)]
    pub pauses: Vec<PauseStatus>,
}

/// A maintenance pause.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseStatus {
    /// What it covers (`nginx/*`, `every command asked for by disk.lua`).
    pub what: String,
    /// When it ends (ISO-8601 UTC).
    pub until: String,
    pub reason: String,
}

/// Central rules: their rule files, what reached them, the hosts they
/// know, the guards' state by command, the requests waiting for an
/// answer, and the other controllers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralStatus {
    pub commands: Vec<CentralCommand>,
    /// Requests sent and not answered yet.
    pub in_flight: Vec<CentralRequest>,
    /// Requests another controller's identical one answered (`0x1100`).
    pub requested_by_others: u64,
    /// The last repairs that ended, newest first.
    #[serde(default)]
    pub recent: Vec<CentralRepair>,
    /// The central rule files, as `rule_files` shows a host's.
    #[serde(default)]
    pub rule_files: Vec<FileStatus>,
    /// The central rules' own counters (`values_received`,
    /// `values_unproven`, `evaluations`, ...), by name.
    #[serde(default)]
    pub counters: Vec<(String, f64)>,
    /// Hosts whose value lists were not proven (the most, at most 10),
    /// with how many and why.
    #[serde(default)]
    pub unproven: Vec<UnprovenHost>,
    /// The hosts central rules may repair.
    #[serde(default)]
    pub hosts: CentralHosts,
    /// The controller's own pauses of central repairs.
    #[serde(default)]
    pub pauses: Vec<PauseStatus>,
    /// `FleetTaskWindow` and the digest of the central rule files, as
    /// announced to the other controllers.
    #[serde(default)]
    pub window: u64,
    #[serde(default)]
    pub rule_set: String,
    /// The other controllers heard.
    #[serde(default)]
    pub peers: Vec<CentralPeer>,
}

/// A host whose value lists did not prove it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnprovenHost {
    pub host: String,
    pub values: u64,
    /// Why the last one did not (`received unsigned`, ...).
    pub why: String,
}

/// The hosts central rules know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralHosts {
    /// Known: announced (presence) or listed (`FleetHostKeys`).
    pub known: usize,
    pub online: usize,
    pub offline: usize,
    /// Listed in `FleetHostKeys`, no presence heard yet.
    pub silent: usize,
    /// With a maintenance pause of their own in force.
    #[serde(default)]
    pub paused: usize,
    /// Forgotten past `FleetMaxHosts`.
    pub evicted: u64,
}

/// Another controller, as it announced itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralPeer {
    pub hostname: String,
    pub window: u64,
    pub rule_set: String,
    pub since: String,
    /// Same window and rule files as ours.
    pub agrees: bool,
}

/// A central repair that ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralRepair {
    pub task_id: u64,
    pub host: String,
    pub command: String,
    /// The host's result code; `None`: no answer in time.
    pub code: Option<i64>,
    /// Seconds since it ended.
    pub ago: u64,
}

/// One service/command's guards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralCommand {
    /// `service/command`.
    pub command: String,
    pub in_flight: usize,
    /// Failed or timed-out repairs in the budget's window, and the budget.
    pub failures: usize,
    pub error_budget: usize,
    /// The budget is spent: repairs stop until resumed.
    pub stopped: bool,
    /// Decisions held back so far, by reason.
    pub held: Vec<(String, u64)>,
    /// Requests the hosts refused (stale clock, paused, ...), by reason:
    /// none of them spends the error budget.
    #[serde(default)]
    pub refused: Vec<(String, u64)>,
    /// Requests sent, and of them run there for another task (another
    /// controller's, a local rule's).
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub done_elsewhere: u64,
}

/// A request waiting for its host's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CentralRequest {
    pub task_id: u64,
    pub host: String,
    pub command: String,
    /// Seconds since it was sent.
    pub age: u64,
}

/// One rule file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStatus {
    pub path: String,
    /// `starting`, `active`, `not loaded`, `restarting`, `quarantined`.
    pub state: String,
    /// Since when it is in that state.
    pub since: String,
    /// The last thing said about the file (why it did not load, died, was
    /// quarantined).
    pub note: Option<String>,
    /// Events its worker evaluated.
    pub evaluations: u64,
    /// Its worker process and the memory it holds (resident, KiB).
    pub worker_pid: Option<u32>,
    pub worker_rss_kib: Option<u64>,
    /// Its value lists are chosen by its handlers' conditions (the rule
    /// index); `false`: it receives every value list.
    pub routed: bool,
    /// Value-list series its conditions admitted so far: how many, and the
    /// first few.
    pub series_matched_count: u64,
    pub series_matched: Vec<String>,
    /// The plugins its conditions name (`plugin == "df"`).
    pub wants_plugins: Vec<String>,
    /// When no series matched: the series collectd does send for those
    /// plugins (`df_complex` where the rule waits for `percent_bytes`).
    pub sent_for_its_plugins: Vec<String>,
    pub handlers: Vec<HandlerStatus>,
    /// What `rules check` would warn of, given as the file loaded.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One handler, from what its file's worker reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandlerStatus {
    /// `<file>::metric::<name>`.
    pub name: String,
    /// Times it was called (the rule index skips the rest).
    pub calls: u64,
    pub decisions: u64,
    /// Held back by its own `hits`/`repeat_interval`/`give_up`.
    pub held: u64,
    /// Decisions the cooldown suppressed.
    pub suppressed: u64,
    pub errors: u64,
    pub last_error: Option<Occurrence>,
    pub last_decision: Option<Occurrence>,
    /// Series it decided or failed on (the first few).
    pub series: Vec<String>,
}

/// When, on which series, what.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    pub time: String,
    pub series: String,
    pub what: String,
}

/// The MQTT session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteStatus {
    pub broker: String,
    pub command_topic: String,
    /// `None` while not connected.
    pub connected_since: Option<String>,
    pub last_message: Option<String>,
    pub journal_bytes: u64,
    /// Whether only signed requests run.
    pub signed_only: bool,
}

/// A recovery command running now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningCommand {
    pub service: String,
    pub command: String,
    pub since: String,
}
