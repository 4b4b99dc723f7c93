//! The shared command runner: the concurrency rules around [`run`].

use super::command::{Outcome, RunSpec, run};
pub use super::slots::Refusal;
use super::slots::Slots;
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

    /// Runs `line` as `service`/`command` and waits for it (blocking), or
    /// refuses at once when the limits say no.
    pub fn run(&self, service: &str, command: &str, line: &str) -> Result<Outcome, Refusal> {
        self.slots
            .lock()
            .map_err(|_| Refusal::Busy { max: 0 })?
            .try_acquire(service, command)?;
        let outcome = run(&RunSpec {
            line: line.to_string(),
            timeout: self.limits.timeout,
            capture_stderr: self.limits.capture_stderr,
            output_cap: self.limits.output_cap,
        });
        if let Ok(mut slots) = self.slots.lock() {
            slots.release(service, command);
        }
        Ok(outcome)
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
        let line = format!("touch {}; sleep 1", started.display());
        let first = {
            let runner = Arc::clone(&runner);
            let line = line.clone();
            std::thread::spawn(move || runner.run("svc", "cmd", &line))
        };
        while !started.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            runner.run("svc", "cmd", "true"),
            Err(Refusal::AlreadyRunning)
        );
        assert_eq!(
            runner.run("svc", "other", "true").unwrap().ending,
            Ending::Exited(0)
        );
        assert_eq!(first.join().unwrap().unwrap().ending, Ending::Exited(0));
        assert_eq!(
            runner.run("svc", "cmd", "exit 4").unwrap().ending,
            Ending::Exited(4)
        );
    }
}
