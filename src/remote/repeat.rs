//! A host runs a central rule's command once per rule and window,
//! whichever controller asks. Redundant controllers derive the same task
//! id for the same decision, and the journal runs it once; but two
//! controllers with other windows, or whose decisions fall on either side
//! of a window's edge, send two ids. Each central request names its rule
//! and window (signed), and the host refuses (`0x1101`) a request for a
//! command it ran for the same rule less than the larger of the two
//! windows ago. Kept in memory, bounded; a restart forgets it (the
//! journal still refuses a repeated task id). Pure: the caller passes the
//! clock.

use super::message::RuleRef;
use crate::task::CommandRef;
use std::collections::HashMap;
use std::time::SystemTime;

/// Runs remembered at once.
const MAX_RUNS: usize = 4096;
/// The longest window taken from a request.
const MAX_WINDOW: u64 = 7 * 86_400;

/// An earlier run of the same rule's command, within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Earlier {
    pub task_id: u64,
    /// Seconds since it was accepted.
    pub ago: u64,
}

#[derive(Debug)]
struct Run {
    at: SystemTime,
    window: u64,
    task_id: u64,
}

/// The central rules' commands this host ran lately.
#[derive(Debug, Default)]
pub struct RuleRuns {
    runs: HashMap<(String, CommandRef), Run>,
}

fn since(then: SystemTime, now: SystemTime) -> u64 {
    // A clock set back counts as no time passed.
    now.duration_since(then).map_or(0, |d| d.as_secs())
}

impl RuleRuns {
    /// The run of `command` for `rule` within the larger of its window and
    /// the one `rule` asks for, if any.
    pub fn earlier(
        &self,
        rule: &RuleRef,
        command: &CommandRef,
        now: SystemTime,
    ) -> Option<Earlier> {
        let run = self.runs.get(&(rule.name.clone(), command.clone()))?;
        let window = run.window.max(rule.window.min(MAX_WINDOW));
        let ago = since(run.at, now);
        (ago < window).then_some(Earlier {
            task_id: run.task_id,
            ago,
        })
    }

    /// A request for that run's rule, refused (so its sender was proven):
    /// the window kept grows to the one it asks for.
    pub fn widen(&mut self, rule: &RuleRef, command: &CommandRef) {
        if let Some(run) = self.runs.get_mut(&(rule.name.clone(), command.clone())) {
            run.window = run.window.max(rule.window.min(MAX_WINDOW));
        }
    }

    /// Task `task_id` runs `command` for `rule`, accepted at `now`.
    pub fn ran(&mut self, rule: &RuleRef, command: &CommandRef, task_id: u64, now: SystemTime) {
        if self.runs.len() >= MAX_RUNS {
            self.runs.retain(|_, r| since(r.at, now) < r.window);
            if self.runs.len() >= MAX_RUNS
                && let Some(oldest) = self
                    .runs
                    .iter()
                    .min_by_key(|(_, r)| r.at)
                    .map(|(k, _)| k.clone())
            {
                self.runs.remove(&oldest);
            }
        }
        self.runs.insert(
            (rule.name.clone(), command.clone()),
            Run {
                at: now,
                window: rule.window.min(MAX_WINDOW),
                task_id,
            },
        );
    }
}

/// The refusal's words.
pub fn refusal(rule: &RuleRef, command: &CommandRef, earlier: Earlier) -> String {
    format!(
        "{command} ran for rule {} {} s ago (task {}); not run again within its window",
        crate::collectd::loggable(&rule.name),
        earlier.ago,
        earlier.task_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(window: u64) -> RuleRef {
        RuleRef {
            name: "app.lua::app_down".into(),
            window,
        }
    }

    #[test]
    fn a_rules_command_runs_once_within_the_larger_window() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let restart = CommandRef::new("app", "restart");
        let mut r = RuleRuns::default();
        assert_eq!(r.earlier(&rule(7), &restart, t0), None);
        // A controller with a 7 s window ran it.
        r.ran(&rule(7), &restart, 1, t0);
        // Another with 300 s asks 0.8 s later: refused, and the window
        // kept grows to 300.
        assert_eq!(
            r.earlier(&rule(300), &restart, at(1)),
            Some(Earlier { task_id: 1, ago: 1 })
        );
        assert_eq!(r.earlier(&rule(7), &restart, at(100)), None);
        r.widen(&rule(300), &restart);
        assert!(r.earlier(&rule(7), &restart, at(100)).is_some());
        assert_eq!(r.earlier(&rule(7), &restart, at(300)), None);
        // Another rule, or another command, is not held by it.
        let other = RuleRef {
            name: "app.lua::slow".into(),
            window: 300,
        };
        assert_eq!(r.earlier(&other, &restart, at(1)), None);
        assert_eq!(
            r.earlier(&rule(300), &CommandRef::new("app", "reload"), at(1)),
            None
        );
        // A clock set back is no time passed.
        assert!(
            r.earlier(&rule(300), &restart, t0 - Duration::from_secs(5))
                .is_some()
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let t0 = SystemTime::now();
        let mut r = RuleRuns::default();
        for i in 0..MAX_RUNS + 10 {
            let command = CommandRef::new("app", format!("c{i}"));
            r.ran(&rule(300), &command, i as u64, t0);
        }
        assert!(r.runs.len() <= MAX_RUNS);
    }
}
