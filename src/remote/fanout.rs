//! One request to many hosts, as AWS SSM Run Command does it: at most
//! `max_concurrency` hosts in flight, and once more than `max_errors`
//! hosts failed no further host is sent the request (those in flight
//! finish). A pure state machine: the sender tells it what happened and
//! asks it what to do; it never touches the network.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::amount::Amount;

/// How one host's request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum HostOutcome {
    /// The host's result: its code and message.
    Result { code: i64, message: String },
    /// No result within the per-host timeout.
    TimedOut,
    /// Never sent: the error budget was spent first.
    NotSent,
}

impl HostOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, HostOutcome::Result { code: 0, .. })
    }
}

/// The fan-out's state. Every step costs a lookup or two, however many
/// hosts are in flight (10 000 at once is a fleet the benchmark runs).
#[derive(Debug)]
pub struct Fanout {
    waiting: VecDeque<String>,
    /// Host -> when its result is due, and the same by due time.
    in_flight: HashMap<String, Instant>,
    due: BTreeSet<(Instant, String)>,
    done: BTreeMap<String, HostOutcome>,
    concurrency: usize,
    error_budget: usize,
    errors: usize,
    /// A staged rollout: the canaries, then waves (see [`Fanout::staged`]).
    stages: Option<Stages>,
    /// `(ok, timed out, not sent)` so far.
    ok: usize,
    timed_out: usize,
    not_sent: usize,
    timeout: Duration,
}

impl Fanout {
    /// How long each host has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `hosts` in the order they are to be sent.
    pub fn new(
        hosts: Vec<String>,
        concurrency: Amount,
        errors: Amount,
        timeout: Duration,
    ) -> Fanout {
        let n = hosts.len();
        Fanout {
            concurrency: concurrency.of(n, true).max(1),
            error_budget: errors.of(n, false),
            stages: None,
            waiting: hosts.into(),
            in_flight: HashMap::new(),
            due: BTreeSet::new(),
            done: BTreeMap::new(),
            errors: 0,
            ok: 0,
            timed_out: 0,
            not_sent: 0,
            timeout,
        }
    }

    /// A staged rollout, as AWS IoT Jobs and canary deployments do it: the
    /// first `canary` hosts alone; only if every one of them succeeds, the
    /// rest in waves of `wave` hosts, each wave sent once the previous one
    /// has finished. The error budget applies throughout.
    pub fn staged(mut self, canary: usize, wave: usize) -> Fanout {
        self.stages = Some(Stages {
            canary,
            wave: wave.max(1),
            released: 0,
            wave_left: 0,
            canaries: Vec::new(),
            canary_failed: false,
        });
        self
    }

    /// Whether no host is sent anything more: the error budget is spent,
    /// or a canary failed.
    pub fn stopped(&self) -> bool {
        self.errors > self.error_budget || self.stages.as_ref().is_some_and(|s| s.canary_failed)
    }

    /// The next host to send the request to now, if any.
    pub fn next(&mut self, now: Instant) -> Option<String> {
        if self.stopped() {
            return None;
        }
        let mut canary = false;
        if let Some(stages) = &mut self.stages {
            if stages.released < stages.canary {
                // Every canary at once.
                canary = true;
            } else if stages.wave_left > 0 {
                stages.wave_left -= 1;
            } else if self.in_flight.is_empty() && !self.waiting.is_empty() {
                // The canaries (or the previous wave) are done: a new wave.
                stages.wave_left = stages.wave - 1;
            } else {
                return None;
            }
            stages.released += 1;
        } else if self.in_flight.len() >= self.concurrency {
            return None;
        }
        let host = self.waiting.pop_front()?;
        if let (true, Some(stages)) = (canary, &mut self.stages) {
            stages.canaries.push(host.clone());
        }
        let due = now + self.timeout;
        self.in_flight.insert(host.clone(), due);
        self.due.insert((due, host.clone()));
        Some(host)
    }

    /// A host's result arrived (ignored unless the host is in flight).
    pub fn result(&mut self, host: &str, code: i64, message: String) {
        if let Some(due) = self.in_flight.remove(host) {
            self.due.remove(&(due, host.to_string()));
            self.finish(host, HostOutcome::Result { code, message });
        }
    }

    /// Time passed: hosts past their deadline have timed out.
    pub fn tick(&mut self, now: Instant) {
        while let Some((due, _)) = self.due.first()
            && *due <= now
        {
            let Some((_, host)) = self.due.pop_first() else {
                break;
            };
            self.in_flight.remove(&host);
            self.finish(&host, HostOutcome::TimedOut);
        }
    }

    fn finish(&mut self, host: &str, outcome: HostOutcome) {
        if let Some(stages) = &mut self.stages
            && !outcome.succeeded()
            && stages.canaries.iter().any(|c| c == host)
        {
            stages.canary_failed = true;
        }
        match &outcome {
            o if o.succeeded() => self.ok += 1,
            HostOutcome::TimedOut => {
                self.timed_out += 1;
                self.errors += 1;
            }
            _ => self.errors += 1,
        }
        self.done.insert(host.to_string(), outcome);
        if self.stopped() {
            for host in self.waiting.drain(..) {
                self.not_sent += 1;
                self.done.insert(host, HostOutcome::NotSent);
            }
        }
    }

    /// The earliest deadline of a host in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.first().map(|(due, _)| *due)
    }

    /// Nothing in flight and nothing more to send.
    pub fn finished(&self) -> bool {
        self.in_flight.is_empty() && (self.waiting.is_empty() || self.stopped())
    }

    /// `(sent, ok, failed, timed out)` so far, for progress lines.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let ok = self.done.values().filter(|o| o.succeeded()).count();
        let timed_out = self
            .done
            .values()
            .filter(|o| **o == HostOutcome::TimedOut)
            .count();
        let not_sent = self
            .done
            .values()
            .filter(|o| **o == HostOutcome::NotSent)
            .count();
        let sent = self.done.len() - not_sent + self.in_flight.len();
        (
            sent,
            ok,
            self.done.len() - ok - timed_out - not_sent,
            timed_out,
        )
    }

    /// Every host's outcome, once [`Fanout::finished`].
    pub fn outcomes(self) -> BTreeMap<String, HostOutcome> {
        self.done
    }
}

/// Where a staged rollout stands.
#[derive(Debug)]
struct Stages {
    canary: usize,
    wave: usize,
    /// Hosts sent so far (the first `canary` are the canaries).
    released: usize,
    /// Hosts the current wave may still send.
    wave_left: usize,
    canaries: Vec<String>,
    /// A canary did not succeed: nothing more is sent.
    canary_failed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn amounts_parse_and_scale_as_ssm_does() {
        assert_eq!(Amount::parse("10"), Ok(Amount::Count(10)));
        assert_eq!(Amount::parse("25%"), Ok(Amount::Percent(25.0)));
        assert!(Amount::parse("x").is_err() && Amount::parse("150%").is_err());
        assert_eq!(Amount::Percent(10.0).of(15, true), 2);
        assert_eq!(Amount::Percent(10.0).of(15, false), 1);
    }

    #[test]
    fn concurrency_is_bounded_and_the_error_budget_stops_sending() {
        let t0 = Instant::now();
        let mut f = Fanout::new(
            hosts(6),
            Amount::Count(2),
            Amount::Count(1),
            Duration::from_secs(5),
        );
        assert_eq!(f.next(t0).as_deref(), Some("h0"));
        assert_eq!(f.next(t0).as_deref(), Some("h1"));
        assert_eq!(f.next(t0), None, "two in flight at most");
        f.result("h0", 1, "failed".into());
        assert_eq!(
            f.next(t0).as_deref(),
            Some("h2"),
            "one error is within the budget"
        );
        f.result("h1", 0, "ok".into());
        assert_eq!(f.next(t0 + Duration::from_secs(2)).as_deref(), Some("h3"));
        // h2 times out: the second error spends the budget.
        f.tick(t0 + Duration::from_secs(6));
        assert!(f.stopped());
        assert_eq!(f.next(t0 + Duration::from_secs(6)), None);
        assert!(!f.finished(), "h3 is still in flight");
        f.result("h3", 0, "ok".into());
        assert!(f.finished());
        assert_eq!(f.counts(), (4, 2, 1, 1));
        let out = f.outcomes();
        assert_eq!(out["h2"], HostOutcome::TimedOut);
        assert_eq!(
            (out["h4"].clone(), out["h5"].clone()),
            (HostOutcome::NotSent, HostOutcome::NotSent)
        );
        // A late result of a host no longer in flight changes nothing.
    }

    #[test]
    fn a_staged_rollout_waits_for_its_canaries_then_goes_in_waves() {
        let t0 = Instant::now();
        let budget = Amount::Count(5);
        let mut f =
            Fanout::new(hosts(6), Amount::Count(1), budget, Duration::from_secs(5)).staged(1, 2);
        assert_eq!(f.next(t0).as_deref(), Some("h0"));
        assert_eq!(f.next(t0), None, "nothing beside the canary");
        f.result("h0", 0, String::new());
        // The first wave: two hosts, nothing more until both finished.
        assert_eq!(f.next(t0).as_deref(), Some("h1"));
        assert_eq!(f.next(t0).as_deref(), Some("h2"));
        assert_eq!(f.next(t0), None);
        f.result("h1", 0, String::new());
        assert_eq!(f.next(t0), None, "h2 still in flight");
        f.result("h2", 1, "refused".into());
        assert_eq!(f.next(t0).as_deref(), Some("h3"), "within the budget");
        assert_eq!(f.next(t0).as_deref(), Some("h4"));
        f.result("h3", 0, String::new());
        f.result("h4", 0, String::new());
        assert_eq!(f.next(t0).as_deref(), Some("h5"));
        f.result("h5", 0, String::new());
        assert!(f.finished());

        // A failing canary stops the rollout: the rest is never tried.
        let mut f =
            Fanout::new(hosts(4), Amount::Count(1), budget, Duration::from_secs(5)).staged(2, 2);
        assert_eq!(f.next(t0).as_deref(), Some("h0"));
        assert_eq!(f.next(t0).as_deref(), Some("h1"));
        f.result("h1", 0x2002, "broken".into());
        assert!(f.stopped());
        assert_eq!(f.next(t0), None);
        f.result("h0", 0, String::new());
        assert!(f.finished());
        let out = f.outcomes();
        assert_eq!(
            (out["h2"].clone(), out["h3"].clone()),
            (HostOutcome::NotSent, HostOutcome::NotSent)
        );
    }

    #[test]
    fn all_hosts_are_sent_without_errors() {
        let t0 = Instant::now();
        let mut f = Fanout::new(
            hosts(3),
            Amount::Percent(100.0),
            Amount::Count(0),
            Duration::from_secs(5),
        );
        let sent: Vec<String> = std::iter::from_fn(|| f.next(t0)).collect();
        assert_eq!(sent.len(), 3);
        for h in &sent {
            f.result(h, 0, String::new());
        }
        f.result("h0", 1, "late duplicate".into());
        assert!(f.finished() && f.outcomes().values().all(HostOutcome::succeeded));
    }
}
