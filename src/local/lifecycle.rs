//! The life of one rule file, as a pure state machine: what its workers
//! did (loaded, failed, died) and what happened to the file (changed on
//! disk) go in; what the engine must do (start a worker, swap versions,
//! log) comes out. The engine carries the actions out against real
//! processes; the tests here drive every transition with a fake clock.

use crate::sandbox::{AfterDeath, RestartPolicy, Supervision};
use std::time::{Duration, Instant};

/// When a worker cannot even be started (program missing, no processes
/// left), how long before the next attempt.
pub const SPAWN_RETRY: Duration = Duration::from_secs(30);

/// Where a rule file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its worker is loading the file.
    Starting,
    /// Its worker runs the handlers.
    Active,
    /// The file did not load; it is tried again when it changes on disk.
    NotLoaded,
    /// No worker; a new one starts at the instant.
    RestartAt(Instant),
    /// Too many deaths in a row: stopped until the file changes on disk.
    Quarantined,
}

/// What happened, as the engine observed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The file changed on disk.
    Changed,
    /// The active worker loaded the file.
    Loaded,
    /// The active worker could not load the file.
    LoadFailed(&'a str),
    /// The active worker ended.
    Died(&'a str),
    /// A worker could not be started at all.
    SpawnFailed(&'a str),
    /// The new version's worker loaded it.
    CandidateLoaded,
    /// The new version's worker could not load it, or ended.
    CandidateFailed(&'a str),
    /// Time passed.
    Tick,
}

/// What the engine must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a worker for the file as the active one (replacing any).
    SpawnActive,
    /// Start a worker for the new version beside the active one.
    SpawnCandidate,
    /// Stop the active worker; the candidate becomes active.
    Promote,
    /// Stop the candidate worker.
    DropCandidate,
    /// Count a restart in the statistics.
    CountRestart,
    /// Log a line about the file (the engine adds its path).
    Info(String),
    Warn(String),
    Error(String),
}

/// One rule file's lifecycle.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    state: State,
    /// A new version is loading beside the active one.
    candidate: bool,
    supervision: Supervision,
}

impl Lifecycle {
    /// A file just found: its first worker is to be started.
    pub fn new() -> (Lifecycle, Vec<Action>) {
        let lifecycle = Lifecycle {
            state: State::Starting,
            candidate: false,
            supervision: Supervision::default(),
        };
        (lifecycle, vec![Action::SpawnActive])
    }

    /// Where the file stands now.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a new version is loading beside the active one.
    #[cfg(test)]
    pub fn has_candidate(&self) -> bool {
        self.candidate
    }

    /// Whether the file's handlers are meant to be running (events sent
    /// to a file that is only waiting for its restart count as dropped).
    pub fn expects_events(&self) -> bool {
        matches!(self.state, State::RestartAt(_))
    }

    /// Decides what `input` at `now` leads to.
    pub fn step(&mut self, input: Input<'_>, policy: &RestartPolicy, now: Instant) -> Vec<Action> {
        match input {
            Input::Changed => self.changed(),
            Input::Loaded => match self.state {
                State::Starting => {
                    self.state = State::Active;
                    vec![Action::Info("loaded".into())]
                }
                _ => vec![],
            },
            Input::LoadFailed(why) => {
                self.state = State::NotLoaded;
                vec![Action::Error(format!("not loaded: {why}"))]
            }
            Input::Died(cause) => self.died(cause, policy, now),
            Input::SpawnFailed(why) => {
                self.state = State::RestartAt(now + SPAWN_RETRY);
                vec![Action::Error(format!(
                    "{why}; trying again in {} s",
                    SPAWN_RETRY.as_secs()
                ))]
            }
            Input::CandidateLoaded if self.candidate => {
                self.candidate = false;
                self.state = State::Active;
                self.supervision.forget();
                vec![
                    Action::Promote,
                    Action::Info("reloaded (new version active)".into()),
                ]
            }
            Input::CandidateFailed(why) if self.candidate => {
                // Not retried until the file changes again.
                self.candidate = false;
                vec![
                    Action::DropCandidate,
                    Action::Error(format!(
                        "the changed file was not loaded, the previous version stays active: {why}"
                    )),
                ]
            }
            Input::CandidateLoaded | Input::CandidateFailed(_) => vec![],
            Input::Tick => match self.state {
                State::RestartAt(at) if now >= at => {
                    self.state = State::Starting;
                    vec![Action::CountRestart, Action::SpawnActive]
                }
                _ => vec![],
            },
        }
    }

    fn changed(&mut self) -> Vec<Action> {
        match self.state {
            // A healthy version runs: load the new one beside it and swap
            // only once it loads.
            State::Active | State::Starting if !self.candidate => {
                self.candidate = true;
                vec![
                    Action::SpawnCandidate,
                    Action::Info("changed on disk; loading the new version".into()),
                ]
            }
            State::Active | State::Starting => {
                // A newer version replaces the one still loading.
                vec![Action::DropCandidate, Action::SpawnCandidate]
            }
            // Nothing healthy to keep: start the new version directly.
            State::Quarantined | State::NotLoaded | State::RestartAt(_) => {
                let mut actions = Vec::new();
                if self.state == State::Quarantined {
                    actions.push(Action::Info("changed on disk; out of quarantine".into()));
                }
                self.state = State::Starting;
                self.supervision.forget();
                actions.push(Action::SpawnActive);
                actions
            }
        }
    }

    fn died(&mut self, cause: &str, policy: &RestartPolicy, now: Instant) -> Vec<Action> {
        match self.supervision.on_death(policy, now) {
            AfterDeath::RestartAt(at) => {
                self.state = State::RestartAt(at);
                let delay = at.saturating_duration_since(now);
                let when = if delay.is_zero() {
                    "now".to_string()
                } else {
                    format!("in {delay:.1?}")
                };
                vec![Action::Warn(format!(
                    "its sandbox died: {cause}; restarting {when}"
                ))]
            }
            AfterDeath::Quarantine { deaths } => {
                self.state = State::Quarantined;
                vec![Action::Error(format!(
                    "quarantined after {deaths} sandbox deaths within {} s (last: {cause}); the other rule files keep running; fix the file, it is started again when it changes on disk",
                    policy.window.as_secs()
                ))]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            crash_limit: 3,
            window: Duration::from_secs(300),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }

    fn kinds(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                Action::SpawnActive => "spawn",
                Action::SpawnCandidate => "spawn candidate",
                Action::Promote => "promote",
                Action::DropCandidate => "drop candidate",
                Action::CountRestart => "count restart",
                Action::Info(_) => "info",
                Action::Warn(_) => "warn",
                Action::Error(_) => "error",
            })
            .collect()
    }

    fn active() -> (Lifecycle, Instant) {
        let now = Instant::now();
        let (mut l, actions) = Lifecycle::new();
        assert_eq!(kinds(&actions), ["spawn"]);
        assert_eq!(l.state(), State::Starting);
        assert_eq!(kinds(&l.step(Input::Loaded, &policy(), now)), ["info"]);
        assert_eq!(l.state(), State::Active);
        (l, now)
    }

    #[test]
    fn a_file_loads_once_and_says_so_once() {
        let (mut l, now) = active();
        assert!(l.step(Input::Loaded, &policy(), now).is_empty());
        assert!(l.step(Input::Tick, &policy(), now).is_empty());
    }

    #[test]
    fn a_file_that_does_not_load_waits_for_a_change() {
        let now = Instant::now();
        let (mut l, _) = Lifecycle::new();
        let actions = l.step(Input::LoadFailed("syntax error"), &policy(), now);
        assert_eq!(actions, [Action::Error("not loaded: syntax error".into())]);
        assert_eq!(l.state(), State::NotLoaded);
        assert!(l.step(Input::Tick, &policy(), now + SPAWN_RETRY).is_empty());
        assert_eq!(kinds(&l.step(Input::Changed, &policy(), now)), ["spawn"]);
        assert_eq!(l.state(), State::Starting);
    }

    #[test]
    fn the_first_death_restarts_at_once_the_next_after_a_growing_delay() {
        let (mut l, now) = active();
        assert_eq!(
            kinds(&l.step(Input::Died("killed"), &policy(), now)),
            ["warn"]
        );
        assert_eq!(l.state(), State::RestartAt(now));
        assert!(l.expects_events());
        assert_eq!(
            kinds(&l.step(Input::Tick, &policy(), now)),
            ["count restart", "spawn"]
        );
        l.step(Input::Loaded, &policy(), now);
        l.step(Input::Died("killed"), &policy(), now);
        assert_eq!(l.state(), State::RestartAt(now + Duration::from_secs(1)));
        assert!(l.step(Input::Tick, &policy(), now).is_empty());
        assert_eq!(
            kinds(&l.step(Input::Tick, &policy(), now + Duration::from_secs(1))),
            ["count restart", "spawn"]
        );
    }

    #[test]
    fn too_many_deaths_quarantine_until_the_file_changes() {
        let (mut l, now) = active();
        for _ in 0..2 {
            l.step(Input::Died("oom"), &policy(), now);
            l.step(Input::Tick, &policy(), now + Duration::from_secs(5));
        }
        let actions = l.step(Input::Died("oom"), &policy(), now);
        assert_eq!(kinds(&actions), ["error"]);
        assert_eq!(l.state(), State::Quarantined);
        assert!(!l.expects_events());
        assert!(l.step(Input::Tick, &policy(), now + SPAWN_RETRY).is_empty());
        assert_eq!(
            kinds(&l.step(Input::Changed, &policy(), now)),
            ["info", "spawn"]
        );
        // The new version starts with a clean record: one death restarts.
        l.step(Input::Loaded, &policy(), now);
        l.step(Input::Died("oom"), &policy(), now);
        assert_eq!(l.state(), State::RestartAt(now));
    }

    #[test]
    fn a_changed_file_loads_beside_the_running_one_and_swaps_when_ready() {
        let (mut l, now) = active();
        let actions = l.step(Input::Changed, &policy(), now);
        assert_eq!(kinds(&actions), ["spawn candidate", "info"]);
        assert!(l.has_candidate());
        assert_eq!(l.state(), State::Active);
        assert_eq!(
            kinds(&l.step(Input::CandidateLoaded, &policy(), now)),
            ["promote", "info"]
        );
        assert!(!l.has_candidate());
        assert_eq!(l.state(), State::Active);
    }

    #[test]
    fn a_broken_new_version_leaves_the_old_one_running() {
        let (mut l, now) = active();
        l.step(Input::Changed, &policy(), now);
        let actions = l.step(Input::CandidateFailed("syntax error"), &policy(), now);
        assert_eq!(kinds(&actions), ["drop candidate", "error"]);
        assert_eq!(l.state(), State::Active);
        assert!(!l.has_candidate());
        // A stale report about a candidate that is gone changes nothing.
        assert!(l.step(Input::CandidateLoaded, &policy(), now).is_empty());
    }

    #[test]
    fn a_second_change_replaces_the_loading_version() {
        let (mut l, now) = active();
        l.step(Input::Changed, &policy(), now);
        assert_eq!(
            kinds(&l.step(Input::Changed, &policy(), now)),
            ["drop candidate", "spawn candidate"]
        );
        assert!(l.has_candidate());
    }

    #[test]
    fn a_file_that_died_and_changed_starts_directly() {
        let (mut l, now) = active();
        l.step(Input::Died("killed"), &policy(), now);
        assert_eq!(kinds(&l.step(Input::Changed, &policy(), now)), ["spawn"]);
        assert_eq!(l.state(), State::Starting);
    }

    #[test]
    fn a_worker_that_cannot_start_is_tried_again_later() {
        let now = Instant::now();
        let (mut l, _) = Lifecycle::new();
        assert_eq!(
            kinds(&l.step(Input::SpawnFailed("no such program"), &policy(), now)),
            ["error"]
        );
        assert_eq!(l.state(), State::RestartAt(now + SPAWN_RETRY));
        assert!(l.step(Input::Tick, &policy(), now).is_empty());
        assert_eq!(
            kinds(&l.step(Input::Tick, &policy(), now + SPAWN_RETRY)),
            ["count restart", "spawn"]
        );
    }
}
