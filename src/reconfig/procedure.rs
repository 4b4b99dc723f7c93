//! The replacement procedure as a pure function of what each step reports:
//! which step runs next, and which result code (docs/COMPATIBILITY.md §5) ends it. The
//! I/O lives behind [`Host`], so every path, including every failure, is
//! unit-tested without collectd.
//!
//! The rule kept on every path: collectd is left running, with the new
//! config or the old one. Only 0x2008 (and 0x2003, where collectd never
//! stopped) can leave it otherwise, and their messages say exactly how.

use crate::task::code;

/// How a started collectd turned out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Started {
    /// A new process runs and stays up.
    Running { pid: u32 },
    /// It exited, or never came up; the text says what was seen.
    Failed(String),
    /// It was started, but no new PID could be read.
    NoPid(String),
}

/// The steps, as the machine they run on performs them.
pub trait Host {
    /// Writes the new config next to the target (`<conf>.new`) and fsyncs it.
    fn write_new(&mut self) -> Result<(), String>;
    /// Stops collectd and waits until its process is gone.
    fn stop(&mut self) -> Result<(), String>;
    /// Whether the PID file is gone (collectd removes it when it exits).
    fn pid_file_removed(&mut self) -> Result<(), String>;
    /// Keeps the current config as the backup (`<conf>.orig`).
    fn backup(&mut self) -> Result<(), String>;
    /// Renames the new config over the current one.
    fn replace(&mut self) -> Result<(), String>;
    /// Puts the backup back in place of the config.
    fn restore_backup(&mut self) -> Result<(), String>;
    /// Removes the unused new config.
    fn discard_new(&mut self);
    /// Starts collectd with whatever config is in place, and checks it.
    fn start(&mut self) -> Started;
}

/// The end of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaceOutcome {
    pub code: i64,
    pub message: String,
}

fn outcome(code: i64, message: String) -> ReplaceOutcome {
    ReplaceOutcome { code, message }
}

/// Runs the whole replacement on `host`.
pub fn replace(host: &mut impl Host) -> ReplaceOutcome {
    if let Err(e) = host.write_new() {
        host.discard_new();
        return outcome(
            code::REPLACE_WRITE_FAILED,
            format!("cannot write the new config: {e}; collectd was not touched"),
        );
    }
    if let Err(e) = host.stop() {
        host.discard_new();
        return outcome(
            code::REPLACE_STOP_FAILED,
            format!("cannot stop collectd: {e}; it keeps running with the old config"),
        );
    }
    // From here collectd is stopped: every early exit starts it again.
    if let Err(e) = host.pid_file_removed() {
        host.discard_new();
        return restart_old(
            host,
            code::REPLACE_PIDFILE_LEFT,
            format!("collectd's PID file was not removed: {e}"),
        );
    }
    if let Err(e) = host.backup() {
        host.discard_new();
        return restart_old(
            host,
            code::REPLACE_BACKUP_FAILED,
            format!("cannot back up collectd.conf: {e}"),
        );
    }
    if let Err(e) = host.replace() {
        host.discard_new();
        return restart_old(
            host,
            code::REPLACE_SWAP_FAILED,
            format!("cannot replace collectd.conf: {e}"),
        );
    }
    match host.start() {
        Started::Running { pid } => outcome(
            0,
            format!("Succeeded to replace config. collectd runs the new config (pid {pid})."),
        ),
        Started::NoPid(why) => outcome(
            code::REPLACE_NO_PID,
            format!(
                "collectd was started with the new config but its new PID could not be read: {why}; the backup is collectd.conf.orig"
            ),
        ),
        Started::Failed(why) => roll_back(host, why),
    }
}

/// The new config is in place but collectd does not run with it.
fn roll_back(host: &mut impl Host, why: String) -> ReplaceOutcome {
    if let Err(e) = host.restore_backup() {
        return outcome(
            code::REPLACE_ROLLBACK_FAILED,
            format!(
                "collectd did not start with the new config ({why}), and the old config could not be put back ({e}): collectd is STOPPED, the new config is in place, the old one is collectd.conf.orig"
            ),
        );
    }
    match host.start() {
        Started::Running { pid } => outcome(
            code::REPLACE_ROLLED_BACK,
            format!(
                "collectd did not start with the new config ({why}); recovered: it runs the old config again (pid {pid})"
            ),
        ),
        Started::NoPid(e) => outcome(
            code::REPLACE_ROLLBACK_FAILED,
            format!(
                "collectd did not start with the new config ({why}); the old config is back in place and collectd was started with it, but its PID could not be read ({e}): check that it runs"
            ),
        ),
        Started::Failed(e) => outcome(
            code::REPLACE_ROLLBACK_FAILED,
            format!(
                "collectd did not start with the new config ({why}), nor with the old config put back ({e}): collectd is STOPPED, the old config is in place"
            ),
        ),
    }
}

/// A step failed while collectd was stopped and the old config still in
/// place: start it again and keep the step's code.
fn restart_old(host: &mut impl Host, code: i64, what: String) -> ReplaceOutcome {
    match host.start() {
        Started::Running { pid } => outcome(
            code,
            format!("{what}; collectd runs the old config again (pid {pid})"),
        ),
        Started::NoPid(e) => outcome(
            code,
            format!(
                "{what}; collectd was started again with the old config, but its PID could not be read ({e})"
            ),
        ),
        Started::Failed(e) => outcome(
            code,
            format!(
                "{what}; restarting collectd with the old config FAILED too ({e}): collectd is STOPPED"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the steps and fails the ones it is told to.
    #[derive(Default)]
    struct Script {
        calls: Vec<&'static str>,
        fail: Vec<&'static str>,
        /// Results of successive `start` calls.
        starts: Vec<Started>,
    }

    impl Script {
        fn step(&mut self, name: &'static str) -> Result<(), String> {
            self.calls.push(name);
            if self.fail.contains(&name) {
                Err(format!("{name} failed"))
            } else {
                Ok(())
            }
        }
    }

    impl Host for Script {
        fn write_new(&mut self) -> Result<(), String> {
            self.step("write_new")
        }
        fn stop(&mut self) -> Result<(), String> {
            self.step("stop")
        }
        fn pid_file_removed(&mut self) -> Result<(), String> {
            self.step("pid_file_removed")
        }
        fn backup(&mut self) -> Result<(), String> {
            self.step("backup")
        }
        fn replace(&mut self) -> Result<(), String> {
            self.step("replace")
        }
        fn restore_backup(&mut self) -> Result<(), String> {
            self.step("restore_backup")
        }
        fn discard_new(&mut self) {
            self.calls.push("discard_new");
        }
        fn start(&mut self) -> Started {
            self.calls.push("start");
            if self.starts.is_empty() {
                Started::Running { pid: 42 }
            } else {
                self.starts.remove(0)
            }
        }
    }

    fn run(fail: &[&'static str], starts: Vec<Started>) -> (ReplaceOutcome, Vec<&'static str>) {
        let mut s = Script {
            fail: fail.to_vec(),
            starts,
            ..Default::default()
        };
        let o = replace(&mut s);
        (o, s.calls)
    }

    #[test]
    fn success_runs_every_step_once() {
        let (o, calls) = run(&[], vec![]);
        assert_eq!(o.code, 0);
        assert_eq!(
            calls,
            [
                "write_new",
                "stop",
                "pid_file_removed",
                "backup",
                "replace",
                "start"
            ]
        );
    }

    #[test]
    fn failures_before_the_stop_leave_collectd_alone() {
        let (o, calls) = run(&["write_new"], vec![]);
        assert_eq!(
            (o.code, calls),
            (code::REPLACE_WRITE_FAILED, vec!["write_new", "discard_new"])
        );
        let (o, calls) = run(&["stop"], vec![]);
        assert_eq!(
            (o.code, calls),
            (
                code::REPLACE_STOP_FAILED,
                vec!["write_new", "stop", "discard_new"]
            )
        );
    }

    #[test]
    fn failures_after_the_stop_always_start_collectd_again() {
        for (step, expected) in [
            ("pid_file_removed", code::REPLACE_PIDFILE_LEFT),
            ("backup", code::REPLACE_BACKUP_FAILED),
            ("replace", code::REPLACE_SWAP_FAILED),
        ] {
            let (o, calls) = run(&[step], vec![]);
            assert_eq!(o.code, expected, "{step}");
            assert_eq!(calls.last(), Some(&"start"), "{step}: {calls:?}");
            assert!(calls.contains(&"discard_new"));
            assert!(
                o.message.contains("runs the old config again"),
                "{}",
                o.message
            );
        }
        let (o, _) = run(&["backup"], vec![Started::Failed("exit 1".into())]);
        assert_eq!(o.code, code::REPLACE_BACKUP_FAILED);
        assert!(o.message.contains("collectd is STOPPED"), "{}", o.message);
    }

    #[test]
    fn a_failed_restart_rolls_back() {
        let (o, calls) = run(&[], vec![Started::Failed("exit 1".into())]);
        assert_eq!(o.code, code::REPLACE_ROLLED_BACK);
        assert_eq!(calls[5..], ["start", "restore_backup", "start"]);
        let (o, _) = run(
            &[],
            vec![Started::Failed("a".into()), Started::Failed("b".into())],
        );
        assert_eq!(o.code, code::REPLACE_ROLLBACK_FAILED);
        assert!(o.message.contains("STOPPED"));
        let (o, calls) = run(&["restore_backup"], vec![Started::Failed("a".into())]);
        assert_eq!(o.code, code::REPLACE_ROLLBACK_FAILED);
        assert_eq!(calls.last(), Some(&"restore_backup"));
    }

    #[test]
    fn an_unreadable_new_pid_is_its_own_code() {
        let (o, _) = run(&[], vec![Started::NoPid("no PID file".into())]);
        assert_eq!(o.code, code::REPLACE_NO_PID);
    }
}
