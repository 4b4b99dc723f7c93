//! The last word on time: a thread that ends the process when one VM run
//! goes on past the rule time limit plus a grace. The VM checks its own
//! limits between fuel slices; a builtin that spins inside one slice (a
//! library bug, or piccolo's) is out of its reach, and only this ends it.
//! Also the tie to the parent: a sandbox process dies with whoever
//! started it (collectd, or the `collectd-monitor lua` command).

use std::time::Duration;

/// Exit status of a process the watchdog ended.
pub const EXIT_OVERRUN: i32 = 5;

/// How long past the time limit a run may go before the process ends.
pub fn grace(deadline: Duration) -> Duration {
    deadline.min(Duration::from_secs(1)) + Duration::from_millis(500)
}

/// What the watchdog decides from successive looks at the run under way.
#[derive(Debug, Default)]
pub struct Overrun {
    watching: Option<u64>,
    seen_for: Duration,
}

impl Overrun {
    /// One look, `tick` after the previous: true when the same run has now
    /// been seen for longer than `limit`.
    pub fn observe(&mut self, run: Option<u64>, tick: Duration, limit: Duration) -> bool {
        match (run, self.watching) {
            (Some(r), Some(w)) if r == w => {
                self.seen_for += tick;
                self.seen_for > limit
            }
            (r, _) => {
                self.watching = r;
                self.seen_for = Duration::ZERO;
                false
            }
        }
    }
}

/// Starts the watchdog for runs limited to `deadline`. Call it before the
/// process confines itself (the thread needs `clone`, which the filter
/// refuses afterwards). `label` names the rule file in the last words on
/// stderr, which the plugin logs as the cause of death.
pub fn start(deadline: Duration, label: String) {
    let limit = deadline + grace(deadline);
    let tick = Duration::from_millis(50);
    // The thread must be running before the filter is applied to it: the
    // C library's own start-up of a thread (rseq, robust lists) makes
    // system calls the filter refuses.
    let (running, started) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let _ = running.send(());
            let mut overrun = Overrun::default();
            loop {
                std::thread::sleep(tick);
                if overrun.observe(crate::lua::call_in_progress(), tick, limit) {
                    eprintln!(
                        "error: {label}: time limit: a call ran past {deadline:?} inside one library function and could not be stopped; the sandbox process ends"
                    );
                    std::process::exit(EXIT_OVERRUN);
                }
            }
        });
    if spawned.is_ok() {
        let _ = started.recv();
    }
}

/// The variable through which a parent tells a sandbox process its PID
/// ([`tie_to_parent`]): a parent that died before the child could tie
/// itself is then noticed (reading the parent's PID in the child is too
/// late: it may already be the reaper's).
pub const PARENT_PID_VAR: &str = "COLLECTD_MONITOR_PARENT_PID";

/// Sets what [`die_with_parent`] needs on the command that starts a
/// sandbox process.
pub fn tie_to_parent(command: &mut std::process::Command) -> &mut std::process::Command {
    command.env(PARENT_PID_VAR, std::process::id().to_string())
}

/// Makes this process receive SIGKILL when its parent ends, and ends it at
/// once if the parent is already gone: a sandbox never outlives collectd or
/// the command that started it.
pub fn die_with_parent() {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let expected = std::env::var(PARENT_PID_VAR)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let now = nix::unistd::getppid().as_raw();
    // Without the variable (started by hand), a parent of 1 means orphaned.
    if expected.map_or(now == 1, |p| p != now) {
        std::process::exit(EXIT_OVERRUN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_run_seen_past_the_limit_is_an_overrun() {
        let (tick, limit) = (Duration::from_millis(100), Duration::from_millis(250));
        let mut o = Overrun::default();
        assert!(!o.observe(Some(1), tick, limit));
        assert!(!o.observe(Some(1), tick, limit));
        assert!(!o.observe(Some(1), tick, limit));
        // A new run starts the count again.
        assert!(!o.observe(Some(3), tick, limit));
        assert!(!o.observe(None, tick, limit));
        assert!(!o.observe(Some(5), tick, limit));
        assert!(!o.observe(Some(5), tick, limit));
        assert!(!o.observe(Some(5), tick, limit));
        assert!(o.observe(Some(5), tick, limit));
    }

    #[test]
    fn the_grace_is_bounded() {
        assert_eq!(grace(Duration::from_secs(30)), Duration::from_millis(1500));
        assert_eq!(
            grace(Duration::from_millis(200)),
            Duration::from_millis(700)
        );
    }
}
