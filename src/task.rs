//! What every executed (or refused) task reports back, wherever it came from:
//! a rule, an MQTT command or a config push. One shape and one table of
//! codes, so local notifications, MQTT replies and the config helper agree.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Result codes beside a command's own exit status (COMPAT.md §4, §5), and
/// the ones this project adds (documented in the README).
pub mod code {
    /// No services configured, or the configuration is unreadable.
    pub const NO_SERVICES: i64 = 0x1001;
    /// The requested service is not configured.
    pub const UNKNOWN_SERVICE: i64 = 0x1002;
    /// The service has no command of that name.
    pub const UNKNOWN_COMMAND: i64 = 0x1003;
    /// The command ran longer than its timeout and was killed.
    pub const TIMED_OUT: i64 = 0x1004;
    /// The command could not be started at all.
    pub const SPAWN_FAILED: i64 = 0x1005;
    /// The message's timestamp is outside the accepted window.
    pub const STALE: i64 = 0x1006;
    /// The same service/command is already running.
    pub const ALREADY_RUNNING: i64 = 0x1007;
    /// Too many commands are running; try again later.
    pub const BUSY: i64 = 0x1008;
    /// The plugin stopped while the command ran; it is not run again.
    pub const INTERRUPTED: i64 = 0x1009;
    /// The request kind is not supported by this build.
    pub const UNSUPPORTED: i64 = 0x100A;
    /// The message has a task id but is otherwise malformed.
    pub const INVALID_REQUEST: i64 = 0x100B;
    /// The task could not be recorded in the task journal (a full disk,
    /// say), so it was not run: at most once needs the record first.
    pub const NOT_RECORDED: i64 = 0x100C;
    /// A task with this id is running or already ran.
    pub const DUPLICATE_TASK: i64 = 0x1100;

    /// collectd.conf replacement (COMPAT.md §5): another one is running.
    pub const REPLACE_BUSY: i64 = 0x2000;
    /// The new config could not be written.
    pub const REPLACE_WRITE_FAILED: i64 = 0x2001;
    /// The new config is broken.
    pub const REPLACE_INVALID: i64 = 0x2002;
    /// collectd could not be stopped.
    pub const REPLACE_STOP_FAILED: i64 = 0x2003;
    /// collectd's PID file was not removed.
    pub const REPLACE_PIDFILE_LEFT: i64 = 0x2004;
    /// The old collectd.conf could not be backed up.
    pub const REPLACE_BACKUP_FAILED: i64 = 0x2005;
    /// collectd.conf could not be replaced.
    pub const REPLACE_SWAP_FAILED: i64 = 0x2006;
    /// The restart failed; collectd runs the old config again.
    pub const REPLACE_ROLLED_BACK: i64 = 0x2007;
    /// The restart failed, and so did the recovery with the old config.
    pub const REPLACE_ROLLBACK_FAILED: i64 = 0x2008;
    /// collectd was started but its new PID could not be read.
    pub const REPLACE_NO_PID: i64 = 0x2009;
}

/// A short name for a code of this table, for people reading results.
pub fn code_name(c: i64) -> Option<&'static str> {
    Some(match c {
        0 => "success",
        code::NO_SERVICES => "no services configured",
        code::UNKNOWN_SERVICE => "unknown service",
        code::UNKNOWN_COMMAND => "unknown command",
        code::TIMED_OUT => "timed out",
        code::SPAWN_FAILED => "could not start",
        code::STALE => "stale or future timestamp",
        code::ALREADY_RUNNING => "already running",
        code::BUSY => "too many commands running",
        code::INTERRUPTED => "interrupted by a restart",
        code::UNSUPPORTED => "unsupported request",
        code::INVALID_REQUEST => "invalid request",
        code::NOT_RECORDED => "not recorded, not run",
        code::DUPLICATE_TASK => "duplicate task id",
        code::REPLACE_BUSY => "another replacement is running",
        code::REPLACE_WRITE_FAILED => "cannot write the new config",
        code::REPLACE_INVALID => "the new config is broken",
        code::REPLACE_STOP_FAILED => "cannot stop collectd",
        code::REPLACE_PIDFILE_LEFT => "collectd's PID file was not removed",
        code::REPLACE_BACKUP_FAILED => "cannot back up collectd.conf",
        code::REPLACE_SWAP_FAILED => "cannot replace collectd.conf",
        code::REPLACE_ROLLED_BACK => "restart failed, old config restored",
        code::REPLACE_ROLLBACK_FAILED => "restart and recovery failed",
        code::REPLACE_NO_PID => "cannot get the new PID",
        _ => return None,
    })
}

/// The result message of COMPAT.md §4: `{task_id, timestamp, message, code}`.
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
