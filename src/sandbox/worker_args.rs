//! The `rule-worker` command line, defined once: the plugin builds it
//! ([`WorkerArgs::command_line`]) and the `collectd-monitor` binary parses
//! it (the clap derive), so the two cannot disagree.

use crate::lua::VmLimits;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// What a rule worker needs to start: its file and its limits.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct WorkerArgs {
    /// The rule file.
    pub file: PathBuf,
    /// VM fuel per call.
    #[arg(long)]
    pub fuel: u64,
    /// Bytes the Lua instance may hold.
    #[arg(long)]
    pub memory: usize,
    /// Milliseconds per call.
    #[arg(long)]
    pub deadline_ms: u64,
    /// The user the worker runs as once it has read its file
    /// (`SandboxUser`); none: collectd's.
    #[arg(long)]
    pub user: Option<String>,
}

impl WorkerArgs {
    /// The worker for `file` under `limits`, as `user`.
    pub fn new(file: PathBuf, limits: VmLimits, user: Option<String>) -> WorkerArgs {
        WorkerArgs {
            file,
            fuel: limits.fuel,
            memory: limits.memory,
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
            user,
        }
    }

    /// The limits these arguments stand for.
    pub fn limits(&self) -> VmLimits {
        VmLimits {
            fuel: self.fuel,
            memory: self.memory,
            deadline: Duration::from_millis(self.deadline_ms),
        }
    }

    /// The arguments after the program name.
    pub fn command_line(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "rule-worker".to_string(),
            format!("--fuel={}", self.fuel),
            format!("--memory={}", self.memory),
            format!("--deadline-ms={}", self.deadline_ms),
        ]
        .map(OsString::from)
        .to_vec();
        if let Some(user) = &self.user {
            args.push(format!("--user={user}").into());
        }
        args.push(self.file.clone().into_os_string());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        action: Action,
    }
    #[derive(clap::Subcommand)]
    enum Action {
        RuleWorker(WorkerArgs),
    }

    #[test]
    fn the_command_line_parses_back_to_the_same_arguments() {
        let args = WorkerArgs::new(
            PathBuf::from("/etc/rules/a b.lua"),
            VmLimits {
                fuel: 7,
                memory: 1 << 20,
                deadline: Duration::from_millis(250),
            },
            Some("nobody".into()),
        );
        let line = std::iter::once(OsString::from("collectd-monitor")).chain(args.command_line());
        let Action::RuleWorker(parsed) = Cli::parse_from(line).action;
        assert_eq!(parsed, args);
        assert_eq!(parsed.limits().deadline, Duration::from_millis(250));
    }
}
