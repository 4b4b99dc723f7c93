//! Everything the replacement helper needs, handed over in one file (mode
//! 0600: it holds broker credentials) so that no message content ever
//! reaches a command line.

use super::invocation::Invocation;
use crate::mqtt::Connection;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One replacement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub task_id: u64,
    /// The new collectd.conf, already validated by the plugin.
    pub new_config: String,
    /// The file to replace (`Services.collectd.ConfigPath`, or collectd's `-C`).
    pub config_path: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// The collectd process to stop.
    pub old_pid: u32,
    /// How to start collectd again when no start command is configured.
    pub invocation: Invocation,
    /// `Services.collectd.commands.start` / `.stop`: service-manager mode.
    pub start_command: Option<String>,
    pub stop_command: Option<String>,
    /// Seconds each stop/start may take.
    pub timeout_secs: u64,
    /// Where and how to publish the result.
    pub connection: Connection,
    pub result_topic: String,
    pub qos: u8,
    /// Written when the result cannot be published; the plugin publishes it.
    pub report_path: PathBuf,
    /// Seconds to keep trying to publish before writing the report.
    pub publish_patience_secs: u64,
    /// Held while the replacement runs.
    pub lock_path: PathBuf,
    /// Appended to a successful result's message.
    pub warnings: Vec<String>,
    /// This host's name and key file, to sign the result as the plugin does.
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub host_key: Option<PathBuf>,
    /// Who asked, for the history record the helper leaves.
    #[serde(default)]
    pub who: String,
}

impl Job {
    pub fn read(path: &Path) -> Result<Job, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the job readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}
