//! When to restart a rule file's worker after it died, and when to stop
//! trying. Pure: the caller passes the clock in, so every path is tested
//! without processes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restart and quarantine settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RestartPolicy {
    /// Deaths within `window` that quarantine the file.
    pub crash_limit: usize,
    pub window: Duration,
    /// Delay before the second restart in a row; doubles after each death,
    /// up to `max_delay`. The first restart is immediate, so one bad value
    /// silences a file only for the time a worker takes to start.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            crash_limit: 3,
            window: Duration::from_secs(300),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What to do after a death.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeath {
    RestartAt(Instant),
    /// Too many deaths in the window: leave the file stopped until it
    /// changes on disk.
    Quarantine {
        deaths: usize,
    },
}

/// The death record of one rule file.
#[derive(Clone, Debug, Default)]
pub struct Supervision {
    deaths: VecDeque<Instant>,
}

impl Supervision {
    /// Records a death at `now` and decides.
    pub fn on_death(&mut self, policy: &RestartPolicy, now: Instant) -> AfterDeath {
        while self
            .deaths
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > policy.window)
        {
            self.deaths.pop_front();
        }
        self.deaths.push_back(now);
        let deaths = self.deaths.len();
        if deaths >= policy.crash_limit.max(1) {
            return AfterDeath::Quarantine { deaths };
        }
        let delay = match deaths {
            1 => Duration::ZERO,
            n => policy
                .first_delay
                .saturating_mul(1 << (n - 2).min(16))
                .min(policy.max_delay),
        };
        AfterDeath::RestartAt(now + delay)
    }

    /// A new version of the file starts with a clean record.
    pub fn forget(&mut self) {
        self.deaths.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_at_once_then_backs_off_then_quarantines() {
        let policy = RestartPolicy {
            crash_limit: 4,
            ..RestartPolicy::default()
        };
        let t0 = Instant::now();
        let mut s = Supervision::default();
        assert_eq!(s.on_death(&policy, t0), AfterDeath::RestartAt(t0));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            s.on_death(&policy, t1),
            AfterDeath::RestartAt(t1 + Duration::from_millis(500))
        );
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(
            s.on_death(&policy, t2),
            AfterDeath::RestartAt(t2 + Duration::from_secs(1))
        );
        assert_eq!(
            s.on_death(&policy, t2 + Duration::from_secs(2)),
            AfterDeath::Quarantine { deaths: 4 }
        );
    }

    #[test]
    fn deaths_outside_the_window_are_forgotten() {
        let policy = RestartPolicy::default();
        let t0 = Instant::now();
        let mut s = Supervision::default();
        for i in 0..10 {
            let now = t0 + policy.window * (i + 1) + Duration::from_secs(1) * i;
            assert_eq!(s.on_death(&policy, now), AfterDeath::RestartAt(now));
        }
        s.on_death(&policy, t0 + policy.window * 20);
        s.forget();
        let now = t0 + policy.window * 20;
        assert_eq!(s.on_death(&policy, now), AfterDeath::RestartAt(now));
    }
}
