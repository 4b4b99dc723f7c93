//! What every executed (or refused) task reports back, wherever it came from:
//! a rule, an MQTT command or a config push. One shape and one table of
//! codes, so local notifications, MQTT replies and the config helper agree.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Defines the result codes once: each constant of [`code`] with its
/// number and its short name, so the two cannot drift apart.
macro_rules! result_codes {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal, $text:literal;)*) => {
        /// Result codes beside a command's own exit status (docs/COMPATIBILITY.md §4,
        /// §5), and the ones this project adds (documented in docs/remote.md).
        pub mod code {
            $($(#[doc = $doc])* pub const $name: i64 = $value;)*
        }

        /// Every code of the table with its short name, in order.
        pub const CODES: &[(i64, &str)] = &[$(($value, $text)),*];
    };
}

result_codes! {
    /// No services configured, or the configuration is unreadable.
    NO_SERVICES = 0x1001, "no services configured";
    /// The requested service is not configured.
    UNKNOWN_SERVICE = 0x1002, "unknown service";
    /// The service has no command of that name.
    UNKNOWN_COMMAND = 0x1003, "unknown command";
    /// The command ran longer than its timeout and was killed.
    TIMED_OUT = 0x1004, "timed out";
    /// The command could not be started at all.
    SPAWN_FAILED = 0x1005, "could not start";
    /// The message's timestamp is outside the accepted window.
    STALE = 0x1006, "stale or future timestamp";
    /// The same service/command is already running.
    ALREADY_RUNNING = 0x1007, "already running";
    /// Too many commands are running; try again later.
    BUSY = 0x1008, "too many commands running";
    /// The plugin stopped while the command ran; it is not run again.
    INTERRUPTED = 0x1009, "interrupted by a restart";
    /// The request kind is not supported by this build.
    UNSUPPORTED = 0x100A, "unsupported request";
    /// The message has a task id but is otherwise malformed.
    INVALID_REQUEST = 0x100B, "invalid request";
    /// The task could not be recorded in the task journal (a full disk,
    /// say), so it was not run: at most once needs the record first.
    NOT_RECORDED = 0x100C, "not recorded, not run";
    /// A maintenance pause that covers remote commands holds it back.
    PAUSED = 0x100D, "paused";
    /// The history could not be read (its store is damaged or its disk
    /// fails); the records are not lost for that, the answer says why.
    HISTORY_UNAVAILABLE = 0x100E, "history unavailable";
    /// A task with this id is running or already ran.
    DUPLICATE_TASK = 0x1100, "duplicate task id";
    /// A central request for a command this host ran for the same rule
    /// within the rule's window (another controller's decision).
    REPEATED_RULE = 0x1101, "already ran for this rule";
    /// The host trusts keys (`TrustedKeys`) and the request is unsigned.
    UNSIGNED = 0x1201, "unsigned request";
    /// The request is signed with a key the host does not trust.
    UNKNOWN_KEY = 0x1202, "unknown key";
    /// The signature does not verify (altered, another key, another host).
    BAD_SIGNATURE = 0x1203, "bad signature";
    /// The request says it was signed for another host.
    WRONG_HOST = 0x1204, "signed for another host";
    /// The key may not ask for this service/command, or to push a config.
    NOT_PERMITTED = 0x1205, "not permitted for this key";
    /// collectd.conf replacement (docs/COMPATIBILITY.md §5): another one is running.
    REPLACE_BUSY = 0x2000, "another replacement is running";
    /// The new config could not be written.
    REPLACE_WRITE_FAILED = 0x2001, "cannot write the new config";
    /// The new config is broken.
    REPLACE_INVALID = 0x2002, "the new config is broken";
    /// collectd could not be stopped.
    REPLACE_STOP_FAILED = 0x2003, "cannot stop collectd";
    /// collectd's PID file was not removed.
    REPLACE_PIDFILE_LEFT = 0x2004, "collectd's PID file was not removed";
    /// The old collectd.conf could not be backed up.
    REPLACE_BACKUP_FAILED = 0x2005, "cannot back up collectd.conf";
    /// collectd.conf could not be replaced.
    REPLACE_SWAP_FAILED = 0x2006, "cannot replace collectd.conf";
    /// The restart failed; collectd runs the old config again.
    REPLACE_ROLLED_BACK = 0x2007, "restart failed, old config restored";
    /// The restart failed, and so did the recovery with the old config.
    REPLACE_ROLLBACK_FAILED = 0x2008, "restart and recovery failed";
    /// collectd was started but its new PID could not be read.
    REPLACE_NO_PID = 0x2009, "cannot get the new PID";
    /// This host does not take pushed configs (`AllowConfigPush false`).
    REPLACE_PUSH_OFF = 0x200A, "config push is off";
    /// The config loads a plugin the host's policy does not allow, or
    /// looks for plugins in another directory.
    REPLACE_PLUGIN_REFUSED = 0x200B, "plugin not allowed";
    /// The config includes a file from outside `PushIncludeDirs`.
    REPLACE_INCLUDE_REFUSED = 0x200C, "include not allowed";
    /// The config changes this plugin's own block without the right to.
    REPLACE_BLOCK_REFUSED = 0x200D, "monitor block change not allowed";
    /// The config writes or reads a file outside the places the push
    /// policy allows, or moves collectd's `BaseDir` or this plugin's
    /// `StateDir` (where the task journal keeps at-most-once).
    REPLACE_PATH_REFUSED = 0x200E, "path not allowed";
    /// Rule files (or config.json) pushed to the host do not pass `rules
    /// check` there; nothing changed.
    RULES_INVALID = 0x3001, "the rule files are broken";
    /// This host does not take pushed rule files (`AllowRulesPush false`,
    /// or no `LocalMonitorConfigDir`).
    RULES_PUSH_OFF = 0x3002, "rule push is off";
    /// The rule files could not be installed; the previous set stays.
    RULES_SWAP_FAILED = 0x3003, "cannot install the rule files";
    /// A rollback was asked for and no previous set is kept.
    RULES_NO_PREVIOUS = 0x3004, "no previous rule set";
    /// The installed files did not all load; the previous set is back.
    RULES_ROLLED_BACK = 0x3005, "the new rule files did not load, rolled back";
    /// Another rule push or rollback is under way.
    RULES_BUSY = 0x3006, "another rule push is under way";
    /// The pushed config.json changes a setting only the host's own files
    /// set (who may do what, where state lives); nothing changed.
    RULES_SETTING_REFUSED = 0x3007, "setting not pushable";
}

/// A short name for a code of this table, for people reading results.
pub fn code_name(c: i64) -> Option<&'static str> {
    if c == 0 {
        return Some("success");
    }
    CODES
        .iter()
        .find(|(value, _)| *value == c)
        .map(|(_, name)| *name)
}

/// A predefined recovery command, by its names in config.json
/// (`Services.<service>.commands.<command>`): what a rule asks for, what a
/// remote request names, what runs at most once at a time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandRef {
    pub service: String,
    pub command: String,
}

impl CommandRef {
    /// The command `command` of service `service`.
    pub fn new(service: impl Into<String>, command: impl Into<String>) -> CommandRef {
        CommandRef {
            service: service.into(),
            command: command.into(),
        }
    }
}

impl std::fmt::Display for CommandRef {
    /// `service/command`, as logs and tools show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.command)
    }
}

/// The result message of docs/COMPATIBILITY.md §4: `{task_id, timestamp, message, code}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: u64,
    /// ISO-8601 UTC, seconds precision, as the old project sent it.
    pub timestamp: String,
    pub message: String,
    pub code: i64,
}

impl TaskResult {
    /// A result stamped with the current time.
    pub fn now(task_id: u64, code: i64, message: impl Into<String>) -> TaskResult {
        TaskResult {
            task_id,
            timestamp: iso8601(SystemTime::now()),
            message: message.into(),
            code,
        }
    }
}

/// `2020-11-26T00:41:19Z`.
pub fn iso8601(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
