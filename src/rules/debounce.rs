//! Declarative debounce for a handler, in the vocabulary of collectd's
//! threshold plugin and Monit: fire only after `hits` consecutive requests,
//! not again within `repeat_interval` seconds, and give up after
//! `give_up.after` actions within `give_up.within` seconds until the
//! condition clears. Pure: time is the event's own timestamp.

use std::collections::VecDeque;

/// A handler's debounce settings (all optional in the rule file).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DebouncePolicy {
    /// Consecutive requests needed before acting (1 = act at once).
    pub hits: u32,
    /// Seconds after an action during which the handler does not act again.
    pub repeat_interval: Option<f64>,
    /// `(after, within)`: stop acting after `after` actions within
    /// `within` seconds, until the handler stops asking.
    pub give_up: Option<(u32, f64)>,
    /// Seconds during which this handler's command is not run again on its
    /// request, apart from the cooldown every rule shares (the `cooldown`
    /// option; `None`: the shared one, `CommandCooldown`).
    pub cooldown: Option<f64>,
}

impl DebouncePolicy {
    /// True when the policy changes nothing (the old API).
    pub fn is_plain(&self) -> bool {
        self.hits <= 1 && self.repeat_interval.is_none() && self.give_up.is_none()
    }
}

/// What to do with one request (or its absence).
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Run the command.
    Fire,
    /// The handler did not ask: state reset.
    Clear,
    /// Asked `have` times in a row, `need` required.
    Waiting { have: u32, need: u32 },
    /// Acted `ago` seconds ago; `interval` must pass.
    TooSoon { ago: f64, interval: f64 },
    /// Gave up after `after` actions within `within` seconds.
    GaveUp { after: u32, within: f64 },
}

/// Per-handler memory, kept across events (and rule reloads).
#[derive(Clone, Debug, Default)]
pub struct State {
    consecutive: u32,
    last_fired: Option<f64>,
    fired_at: VecDeque<f64>,
    gave_up: bool,
}

impl State {
    /// One evaluation: `wants` is whether the handler asked for an action.
    pub fn step(&mut self, policy: &DebouncePolicy, wants: bool, now: f64) -> Verdict {
        if !wants {
            self.consecutive = 0;
            self.gave_up = false;
            self.fired_at.clear();
            return Verdict::Clear;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        let need = policy.hits.max(1);
        if self.consecutive < need {
            return Verdict::Waiting {
                have: self.consecutive,
                need,
            };
        }
        if let Some((after, within)) = policy.give_up {
            while self.fired_at.front().is_some_and(|t| now - t > within) {
                self.fired_at.pop_front();
            }
            if self.gave_up || self.fired_at.len() as u32 >= after {
                self.gave_up = true;
                return Verdict::GaveUp { after, within };
            }
        }
        if let (Some(interval), Some(last)) = (policy.repeat_interval, self.last_fired) {
            if now - last < interval {
                return Verdict::TooSoon {
                    ago: now - last,
                    interval,
                };
            }
        }
        self.last_fired = Some(now);
        self.fired_at.push_back(now);
        Verdict::Fire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_need_consecutive_requests() {
        let p = DebouncePolicy {
            hits: 3,
            ..Default::default()
        };
        let mut s = State::default();
        assert_eq!(s.step(&p, true, 0.0), Verdict::Waiting { have: 1, need: 3 });
        assert_eq!(
            s.step(&p, true, 10.0),
            Verdict::Waiting { have: 2, need: 3 }
        );
        assert_eq!(s.step(&p, false, 20.0), Verdict::Clear);
        assert_eq!(
            s.step(&p, true, 30.0),
            Verdict::Waiting { have: 1, need: 3 }
        );
        s.step(&p, true, 40.0);
        assert_eq!(s.step(&p, true, 50.0), Verdict::Fire);
        assert_eq!(
            s.step(&p, true, 60.0),
            Verdict::Fire,
            "keeps firing while it persists without repeat_interval"
        );
    }

    #[test]
    fn repeat_interval_and_give_up() {
        let p = DebouncePolicy {
            hits: 1,
            repeat_interval: Some(60.0),
            give_up: Some((2, 600.0)),
            cooldown: None,
        };
        let mut s = State::default();
        assert_eq!(s.step(&p, true, 0.0), Verdict::Fire);
        assert_eq!(
            s.step(&p, true, 30.0),
            Verdict::TooSoon {
                ago: 30.0,
                interval: 60.0
            }
        );
        assert_eq!(s.step(&p, true, 60.0), Verdict::Fire);
        assert_eq!(
            s.step(&p, true, 200.0),
            Verdict::GaveUp {
                after: 2,
                within: 600.0
            }
        );
        assert_eq!(
            s.step(&p, true, 1000.0),
            Verdict::GaveUp {
                after: 2,
                within: 600.0
            },
            "stays given up while asked"
        );
        assert_eq!(s.step(&p, false, 1010.0), Verdict::Clear);
        assert_eq!(
            s.step(&p, true, 1020.0),
            Verdict::Fire,
            "a cleared condition starts over"
        );
    }
}
