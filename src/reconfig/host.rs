//! The replacement steps on the real machine: files, signals, processes.

use super::job::Job;
use super::lock::alive;
use super::procedure::{Host, Started};
use crate::actions::{Ending, RunSpec, run};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started collectd must stay up to count as running.
const SETTLE: Duration = Duration::from_secs(2);
/// How long collectd may take to remove its PID file after exiting.
const PID_FILE_GRACE: Duration = Duration::from_secs(5);

/// Steps performed on this host for one [`Job`].
pub struct RealHost<'a> {
    job: &'a Job,
    new: PathBuf,
    backup: PathBuf,
    timeout: Duration,
}

impl<'a> RealHost<'a> {
    pub fn new(job: &'a Job) -> RealHost<'a> {
        let with = |ext: &str| {
            let mut p = job.config_path.clone().into_os_string();
            p.push(ext);
            PathBuf::from(p)
        };
        RealHost {
            job,
            new: with(".new"),
            backup: with(".orig"),
            timeout: Duration::from_secs(job.timeout_secs.max(1)),
        }
    }

    fn shell(&self, line: &str) -> Result<(), String> {
        let outcome = run(&RunSpec {
            line: line.to_string(),
            timeout: self.timeout,
            capture_stderr: true,
            output_cap: 4096,
        });
        match outcome.ending {
            Ending::Exited(0) => Ok(()),
            _ => Err(format!(
                "`{line}` {}: {}",
                outcome.describe(),
                outcome.output
            )),
        }
    }

    fn read_pid(&self) -> Option<u32> {
        let path = self.job.pid_file.as_ref()?;
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Waits for a new, live collectd and checks it stays up.
    fn confirm(&self, spawned: Option<u32>) -> Started {
        let deadline = Instant::now() + self.timeout;
        let pid = loop {
            match self.read_pid().or(spawned) {
                Some(pid) if pid != self.job.old_pid && alive(pid) => break pid,
                _ if Instant::now() > deadline => {
                    return match &self.job.pid_file {
                        Some(p) => Started::NoPid(format!(
                            "no new PID in {} after {} s",
                            p.display(),
                            self.timeout.as_secs()
                        )),
                        None => Started::NoPid(
                            "collectd's PID file is unknown (set Services.collectd.PIDPath)".into(),
                        ),
                    };
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        std::thread::sleep(SETTLE);
        if alive(pid) {
            Started::Running { pid }
        } else {
            Started::Failed(format!(
                "collectd (pid {pid}) exited within {} s of starting; see its log",
                SETTLE.as_secs()
            ))
        }
    }
}

fn write_synced(path: &Path, text: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(text)?;
    f.sync_all()?;
    sync_dir(path)
}

/// Makes a rename or creation in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

impl Host for RealHost<'_> {
    fn write_new(&mut self) -> Result<(), String> {
        let mode = std::fs::metadata(&self.job.config_path)
            .map_or(0o644, |m| m.permissions().mode() & 0o777);
        write_synced(&self.new, self.job.new_config.as_bytes(), mode)
            .map_err(|e| format!("{}: {e}", self.new.display()))
    }

    fn stop(&mut self) -> Result<(), String> {
        let pid = self.job.old_pid;
        match &self.job.stop_command {
            Some(line) => self.shell(line)?,
            None => kill(Pid::from_raw(pid as i32), Signal::SIGTERM)
                .map_err(|e| format!("kill -TERM {pid}: {e}"))?,
        }
        let deadline = Instant::now() + self.timeout;
        while alive(pid) {
            if Instant::now() > deadline {
                return Err(format!(
                    "collectd (pid {pid}) still runs {} s after being asked to stop",
                    self.timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn pid_file_removed(&mut self) -> Result<(), String> {
        let Some(path) = &self.job.pid_file else {
            return Ok(());
        };
        let deadline = Instant::now() + PID_FILE_GRACE;
        while path.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} still exists after collectd exited",
                    path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn backup(&mut self) -> Result<(), String> {
        let old = std::fs::read(&self.job.config_path)
            .map_err(|e| format!("{}: {e}", self.job.config_path.display()))?;
        let mode = std::fs::metadata(&self.job.config_path)
            .map_or(0o644, |m| m.permissions().mode() & 0o777);
        write_synced(&self.backup, &old, mode)
            .map_err(|e| format!("{}: {e}", self.backup.display()))
    }

    fn replace(&mut self) -> Result<(), String> {
        std::fs::rename(&self.new, &self.job.config_path)
            .and_then(|()| sync_dir(&self.job.config_path))
            .map_err(|e| {
                format!(
                    "rename {} to {}: {e}",
                    self.new.display(),
                    self.job.config_path.display()
                )
            })
    }

    fn restore_backup(&mut self) -> Result<(), String> {
        std::fs::rename(&self.backup, &self.job.config_path)
            .and_then(|()| sync_dir(&self.job.config_path))
            .map_err(|e| {
                format!(
                    "rename {} to {}: {e}",
                    self.backup.display(),
                    self.job.config_path.display()
                )
            })
    }

    fn discard_new(&mut self) {
        let _ = std::fs::remove_file(&self.new);
    }

    fn start(&mut self) -> Started {
        if let Some(line) = &self.job.start_command {
            return match self.shell(line) {
                Ok(()) => self.confirm(None),
                Err(e) => Started::Failed(e),
            };
        }
        let inv = &self.job.invocation;
        let Some((program, args)) = inv.argv.split_first() else {
            return Started::Failed("collectd's command line is unknown".into());
        };
        let spawned = Command::new(program)
            .args(args)
            .current_dir(&inv.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if inv.foreground {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => return Started::Failed(format!("cannot run {program}: {e}")),
        };
        if inv.foreground {
            // It stays our child; its PID is the process we started.
            let pid = child.id();
            std::mem::forget(child);
            return self.confirm(Some(pid));
        }
        // Without -f collectd forks; the parent exits 0 once the daemon
        // runs, or 1 when it refuses the config.
        match child.wait_with_output() {
            Ok(out) if out.status.success() => self.confirm(None),
            Ok(out) => Started::Failed(format!(
                "{program} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Started::Failed(format!("waiting for {program}: {e}")),
        }
    }
}
