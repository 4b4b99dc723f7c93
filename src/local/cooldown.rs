//! Flap control: a rule that asks for the same recovery command on every
//! value must not restart a service every interval. Pure bookkeeping; the
//! caller passes the clock.

use crate::task::CommandRef;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether a rule's request may run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// Ran `ago` before, within its cooldown. `first` is true for the first
    /// suppressed request since that run (the one worth an info log line).
    Suppressed {
        ago: Duration,
        cooldown: Duration,
        first: bool,
    },
}

#[derive(Debug)]
struct LastRun {
    at: Instant,
    suppressed: u64,
}

/// When each service/command last ran on a rule's request: shared by
/// every rule, or (`handler`) a handler's own with its `cooldown` option.
#[derive(Debug, Default)]
pub struct Cooldowns {
    last: HashMap<(Option<String>, CommandRef), LastRun>,
}

impl Cooldowns {
    /// Decides, and records the run when the answer is [`Gate::Run`];
    /// `handler`: that handler's own cooldown (`None`: the shared one).
    pub fn check(
        &mut self,
        handler: Option<&str>,
        service: &str,
        command: &str,
        cooldown: Duration,
        now: Instant,
    ) -> Gate {
        let key = (
            handler.map(str::to_string),
            CommandRef::new(service, command),
        );
        if let Some(last) = self.last.get_mut(&key) {
            let ago = now.saturating_duration_since(last.at);
            if ago < cooldown {
                last.suppressed += 1;
                return Gate::Suppressed {
                    ago,
                    cooldown,
                    first: last.suppressed == 1,
                };
            }
        }
        self.last.insert(
            key,
            LastRun {
                at: now,
                suppressed: 0,
            },
        );
        Gate::Run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_within_the_cooldown_and_lets_the_next_one_through() {
        let mut c = Cooldowns::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(c.check(None, "s", "c", minute, t0), Gate::Run);
        assert_eq!(c.check(None, "s", "other", minute, t0), Gate::Run);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            c.check(None, "s", "c", minute, t1),
            Gate::Suppressed {
                ago: Duration::from_secs(10),
                cooldown: minute,
                first: true
            }
        );
        assert!(matches!(
            c.check(None, "s", "c", minute, t1),
            Gate::Suppressed { first: false, .. }
        ));
        let t2 = t0 + minute;
        assert_eq!(c.check(None, "s", "c", minute, t2), Gate::Run);
        assert!(matches!(
            c.check(None, "s", "c", minute, t2),
            Gate::Suppressed { first: true, .. }
        ));
    }

    #[test]
    fn a_handlers_own_cooldown_is_apart_from_the_shared_one() {
        let mut c = Cooldowns::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(c.check(None, "app", "restart", minute, t0), Gate::Run);
        assert_eq!(
            c.check(Some("load.lua::metric::high"), "app", "restart", minute, t0),
            Gate::Run
        );
        assert!(matches!(
            c.check(Some("load.lua::metric::high"), "app", "restart", minute, t0),
            Gate::Suppressed { .. }
        ));
    }

    #[test]
    fn a_zero_cooldown_never_suppresses() {
        let mut c = Cooldowns::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(c.check(None, "s", "c", Duration::ZERO, t0), Gate::Run);
        }
    }
}
