//! Running one command line to completion, whatever it does.
//!
//! collectd ignores `SIGCHLD`, so the kernel reaps its children at once and
//! `waitpid` cannot report their exit status (it fails with `ECHILD`). We
//! therefore never rely on it: the command runs under a tiny `/bin/sh`
//! wrapper that prints the command's status on a private pipe (its stderr).
//! `waitpid` is still used, but only to learn *when* the wrapper is gone.
//! The command line is passed as an argument (`"$1"`), never spliced into
//! the wrapper's script.

use crate::collectd::truncate_utf8;
use crate::task::code;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STATUS_PREFIX: &str = "collectd-monitor-exit:";
const WRAPPER_STDERR_DISCARDED: &str =
    r#"/bin/sh -c "$1" 2>/dev/null; echo "collectd-monitor-exit:$?" >&2"#;
const WRAPPER_STDERR_CAPTURED: &str =
    r#"/bin/sh -c "$1" 2>&1; echo "collectd-monitor-exit:$?" >&2"#;
/// Between SIGTERM and SIGKILL at a timeout.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for output still in the pipe once the command is gone;
/// a daemon the command started may hold the pipe open forever.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Process groups of the commands running now, so that they can be ended
/// when collectd stops (a recovery command must not outlive the plugin that
/// answers for it).
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Ends every command still running: SIGTERM to its process group, then
/// SIGKILL after `grace` to those still there. Returns how many there were.
pub fn stop_all(grace: Duration) -> usize {
    let groups: Vec<i32> = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && groups.iter().any(|g| group_alive(*g)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    groups.len()
}

fn group_alive(group: i32) -> bool {
    killpg(Pid::from_raw(group), None).is_ok()
}

/// How to run one command line.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub line: String,
    pub timeout: Duration,
    /// Include stderr in the output (otherwise it is discarded).
    pub capture_stderr: bool,
    /// Bytes of output kept; the rest is read and dropped.
    pub output_cap: usize,
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The shell's `$?`: the exit status, or 128+N when killed by signal N.
    Exited(i32),
    /// Killed by us at its timeout.
    TimedOut,
    /// Gone without reporting a status (killed from outside).
    Vanished,
    /// Could not be started.
    SpawnFailed(String),
}

/// What happened, and what it printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    pub ending: Ending,
    /// Output, cut at `output_cap` bytes on a character boundary, trailing
    /// newlines removed.
    pub output: String,
    pub truncated: bool,
    pub elapsed: Duration,
}

impl CommandOutcome {
    /// The result code: the exit status, or one of [`code`]'s constants.
    pub fn code(&self) -> i64 {
        match &self.ending {
            Ending::Exited(status) => i64::from(*status),
            Ending::TimedOut => code::TIMED_OUT,
            Ending::Vanished => code::SPAWN_FAILED,
            Ending::SpawnFailed(_) => code::SPAWN_FAILED,
        }
    }

    /// The result message: the output of a command that exited, else what
    /// happened to it and its output.
    pub fn message(&self, service: &str, command: &str) -> String {
        let mut message = match self.ending {
            Ending::Exited(_) => self.output.clone(),
            _ => format!(
                "{service}/{command} {}. Output: {}",
                self.describe(),
                self.output
            ),
        };
        if self.truncated {
            message.push_str(" [output truncated]");
        }
        message
    }

    /// A one-line description for logs and result messages.
    pub fn describe(&self) -> String {
        match &self.ending {
            Ending::Exited(0) => "exited 0".to_string(),
            Ending::Exited(s) if *s > 128 => format!("exited {s} (killed by signal {}?)", s - 128),
            Ending::Exited(s) => format!("exited {s}"),
            Ending::TimedOut => format!(
                "timed out after {:.1} s and was killed",
                self.elapsed.as_secs_f64()
            ),
            Ending::Vanished => {
                "disappeared without an exit status (killed from outside?)".to_string()
            }
            Ending::SpawnFailed(why) => format!("could not be started: {why}"),
        }
    }
}

/// Runs `spec` and waits for it, at most its timeout plus [`KILL_GRACE`].
/// Blocking: call it from a thread of ours, never from a collectd callback.
pub fn run(spec: &RunSpec) -> CommandOutcome {
    let started = Instant::now();
    let wrapper = if spec.capture_stderr {
        WRAPPER_STDERR_CAPTURED
    } else {
        WRAPPER_STDERR_DISCARDED
    };
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(wrapper)
        .arg("collectd-monitor")
        .arg(&spec.line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return CommandOutcome {
                ending: Ending::SpawnFailed(format!("/bin/sh: {e}")),
                output: String::new(),
                truncated: false,
                elapsed: started.elapsed(),
            };
        }
    };
    let group = Pid::from_raw(child.id() as i32);
    if let Ok(mut running) = RUNNING.lock() {
        running.push(group.as_raw());
    }
    let output = Arc::new(Mutex::new(Capture::new(spec.output_cap)));
    let (out_done_tx, out_done) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if let Ok(mut o) = output.lock() {
                    o.push(&buf[..n]);
                }
            }
            let _ = out_done_tx.send(());
        });
    }
    let mut status_pipe = child.stderr.take();
    let (gone_tx, gone) = mpsc::channel();
    std::thread::spawn(move || {
        // Ok(status) outside collectd, Err(ECHILD) inside it: either way the
        // wrapper has terminated when this returns.
        let _ = child.wait();
        let _ = gone_tx.send(());
    });

    let mut timed_out = false;
    if gone.recv_timeout(spec.timeout).is_err() {
        timed_out = true;
        let _ = killpg(group, Signal::SIGTERM);
        if gone.recv_timeout(KILL_GRACE).is_err() {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = gone.recv();
        }
    }
    if let Ok(mut running) = RUNNING.lock() {
        running.retain(|g| *g != group.as_raw());
    }
    // The wrapper alone holds the status pipe, so it is at EOF now.
    let mut status_text = String::new();
    if let Some(pipe) = status_pipe.as_mut() {
        let _ = pipe.take(64 * 1024).read_to_string(&mut status_text);
    }
    let _ = out_done.recv_timeout(DRAIN_GRACE);
    let (output, truncated) = output.lock().map(|o| o.finish()).unwrap_or_default();
    let ending = if timed_out {
        Ending::TimedOut
    } else {
        parse_status(&status_text).map_or(Ending::Vanished, Ending::Exited)
    };
    CommandOutcome {
        ending,
        output,
        truncated,
        elapsed: started.elapsed(),
    }
}

fn parse_status(text: &str) -> Option<i32> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(STATUS_PREFIX))
        .and_then(|s| s.trim().parse().ok())
}

/// Output kept up to a cap, with a note of whether more was produced.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Capture {
        Capture {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn finish(&self) -> (String, bool) {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = truncate_utf8(&text, self.cap);
        (
            text.trim_end_matches(['\n', '\r']).to_string(),
            self.truncated,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(line: &str) -> RunSpec {
        RunSpec {
            line: line.into(),
            timeout: Duration::from_secs(20),
            capture_stderr: false,
            output_cap: 1024,
        }
    }

    #[test]
    fn reports_output_and_exit_status() {
        let o = run(&spec("echo 'Hello World!'; echo err >&2"));
        assert_eq!(
            (o.ending, o.output.as_str(), o.truncated),
            (Ending::Exited(0), "Hello World!", false)
        );
        let o = run(&spec("echo partial; exit 3"));
        assert_eq!((o.code(), o.output.as_str()), (3, "partial"));
        let o = run(&spec("no-such-command-here"));
        assert_eq!(o.ending, Ending::Exited(127));
    }

    #[test]
    fn captures_stderr_when_asked() {
        let o = run(&RunSpec {
            capture_stderr: true,
            ..spec("echo out; echo err >&2")
        });
        assert_eq!(o.output, "out\nerr");
    }

    #[test]
    fn the_line_is_an_argument_not_wrapper_script() {
        // A quote in the line must not break out of the wrapper.
        let o = run(&spec(r#"echo "a'b\"c""#));
        assert_eq!(
            (o.ending, o.output.as_str()),
            (Ending::Exited(0), r#"a'b"c"#)
        );
    }

    #[test]
    fn caps_output_on_a_character_boundary() {
        let o = run(&RunSpec {
            output_cap: 5,
            ..spec("printf 'ééééé'")
        });
        assert_eq!((o.output.as_str(), o.truncated), ("éé", true));
        let o = run(&RunSpec {
            output_cap: 1000,
            ..spec("head -c 1000000 /dev/zero | tr '\\0' x")
        });
        assert_eq!(
            (o.output.len(), o.truncated, o.ending),
            (1000, true, Ending::Exited(0))
        );
    }

    #[test]
    fn kills_the_whole_group_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let child = dir.path().join("child.pid");
        // A child in the background that would outlive its parent: it says
        // who it is, then the command waits for the timeout.
        let o = run(&RunSpec {
            timeout: Duration::from_secs(3),
            ..spec(&format!(
                "sh -c 'echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 600' & sleep 600",
                child.display()
            ))
        });
        assert_eq!(o.ending, Ending::TimedOut);
        assert_eq!(o.code(), code::TIMED_OUT);
        let pid: i32 = std::fs::read_to_string(&child)
            .expect("the child started within the timeout")
            .trim()
            .parse()
            .unwrap();
        // Signalled with its group: gone (or a zombie waiting for init) as
        // soon as the kernel has delivered it. Without the signal it would
        // sleep for ten minutes.
        let running = || {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let s = state
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            s.is_some_and(|s| s != "Z" && s != "X")
        };
        let since = std::time::Instant::now();
        while running() && since.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!running(), "a child of the command outlived the timeout");
    }

    #[test]
    fn a_command_ignoring_sigterm_is_killed() {
        let o = run(&RunSpec {
            timeout: Duration::from_millis(200),
            ..spec("trap '' TERM; sleep 30")
        });
        assert_eq!(o.ending, Ending::TimedOut);
    }
}
