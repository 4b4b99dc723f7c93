//! The shared command runner: the concurrency rules around [`run`].

use super::command::{CommandOutcome, RunSpec, run};
pub use super::slots::Refusal;
use super::slots::Slots;
use crate::task::code;
use std::sync::Mutex;
use std::time::Duration;

/// Limits every command runs under.
#[derive(Clone, Debug)]
pub struct RunnerLimits {
    pub max_concurrent: usize,
    pub timeout: Duration,
    pub output_cap: usize,
    pub capture_stderr: bool,
}

impl Default for RunnerLimits {
    fn default() -> Self {
        RunnerLimits {
            max_concurrent: 4,
            timeout: Duration::from_secs(60),
            output_cap: 64 * 1024,
            capture_stderr: false,
        }
    }
}

/// Runs configured commands, at most `max_concurrent` at once and never the
/// same service/command twice at the same time. Shared by the local rules
/// and the MQTT remote.
#[derive(Debug)]
pub struct Runner {
    slots: Mutex<Slots>,
    limits: RunnerLimits,
}

impl Runner {
    pub fn new(limits: RunnerLimits) -> Runner {
        Runner {
            slots: Mutex::new(Slots::new(limits.max_concurrent)),
            limits,
        }
    }

    /// The commands running now and since when (for `status`).
    pub fn running(&self) -> Vec<(crate::task::CommandRef, std::time::SystemTime)> {
        self.slots.lock().map(|s| s.running()).unwrap_or_default()
    }

    /// Runs `line` as `service`/`command` and waits for it (blocking), or
    /// refuses at once when the limits say no. `timeout` overrides the
    /// runner's (a service's own `Timeout`).
    pub fn run(&self, service: &str, command: &str, line: &str, timeout: Option<Duration>) -> Ran {
        self.run_announced(service, command, line, timeout, || {})
    }

    /// [`Runner::run`], calling `started` once the limits let the command
    /// start (and not when they refuse it): for a log line that says
    /// "running" only of what runs.
    pub fn run_announced(
        &self,
        service: &str,
        command: &str,
        line: &str,
        timeout: Option<Duration>,
        started: impl FnOnce(),
    ) -> Ran {
        self.slots
            .lock()
            .map_err(|_| Refusal::Busy { max: 0 })?
            .try_acquire(service, command)?;
        started();
        let outcome = run(&RunSpec {
            line: line.to_string(),
            timeout: timeout.unwrap_or(self.limits.timeout),
            capture_stderr: self.limits.capture_stderr,
            output_cap: self.limits.output_cap,
        });
        if let Ok(mut slots) = self.slots.lock() {
            slots.release(service, command);
        }
        Ok(outcome)
    }
}

/// What [`Runner::run`] gives: the outcome, or why it did not start.
pub type Ran = Result<CommandOutcome, Refusal>;

/// The result code and message of a run, for result notifications and
/// MQTT results alike.
pub trait Summary {
    fn summary(&self, service: &str, command: &str) -> (i64, String);
}

impl Summary for Ran {
    fn summary(&self, service: &str, command: &str) -> (i64, String) {
        match self {
            Ok(outcome) => (outcome.code(), outcome.message(service, command)),
            Err(Refusal::AlreadyRunning) => (
                code::ALREADY_RUNNING,
                format!("{service}/{command} is already running; not started twice"),
            ),
            Err(Refusal::Busy { max }) => (
                code::BUSY,
                format!(
                    "{max} commands are already running (MaxConcurrentCommands); try again later"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Ending;
    use std::sync::Arc;

    #[test]
    fn refuses_a_second_run_of_the_same_command_while_the_first_runs() {
        let runner = Arc::new(Runner::new(RunnerLimits::default()));
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("started");
        let gate = dir.path().join("gate");
        std::fs::write(&gate, "").unwrap();
        // Runs until the test removes the gate: the second call lands
        // while it runs, however busy the machine.
        let line = format!(
            "touch {}; while [ -e {} ]; do sleep 0.05; done",
            started.display(),
            gate.display()
        );
        let first = {
            let runner = Arc::clone(&runner);
            let line = line.clone();
            std::thread::spawn(move || runner.run("svc", "cmd", &line, None))
        };
        while !started.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            runner.run("svc", "cmd", "true", None),
            Err(Refusal::AlreadyRunning)
        );
        assert_eq!(
            runner.run("svc", "other", "true", None).unwrap().ending,
            Ending::Exited(0)
        );
        std::fs::remove_file(&gate).unwrap();
        assert_eq!(first.join().unwrap().unwrap().ending, Ending::Exited(0));
        assert_eq!(
            runner.run("svc", "cmd", "exit 4", None).unwrap().ending,
            Ending::Exited(4)
        );
    }
}
