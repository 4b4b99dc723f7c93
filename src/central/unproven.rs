//! Value lists that did not prove their host: counted per host (bounded,
//! so a flood of invented names costs a fixed amount of memory), shown in
//! `status`, and logged once per host and interval, a few hosts per
//! interval, the rest in one line. Pure: the caller passes the clock.

use super::origins::Unproven;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Hosts counted one by one; the rest only in the total.
const MAX_HOSTS: usize = 1024;
/// Host lines logged per interval; the rest in one line.
const LINES_PER_INTERVAL: usize = 10;

#[derive(Debug)]
struct Count {
    values: u64,
    /// Since the host's last line.
    new: u64,
    why: Unproven,
    said: Option<Instant>,
}

/// The unproven value lists so far.
#[derive(Debug)]
pub struct UnprovenBook {
    every: Duration,
    hosts: HashMap<String, Count>,
    total: u64,
    /// Not counted by host (past [`MAX_HOSTS`]) since the last line.
    others: u64,
    /// The current interval: its start and the host lines logged in it.
    window: Option<(Instant, usize)>,
}

impl UnprovenBook {
    /// One line per host per `every`.
    pub fn new(every: Duration) -> UnprovenBook {
        UnprovenBook {
            every,
            hosts: HashMap::new(),
            total: 0,
            others: 0,
            window: None,
        }
    }

    /// A value list of `host` that did not prove it.
    pub fn record(&mut self, host: &str, why: Unproven) {
        self.total += 1;
        if let Some(c) = self.hosts.get_mut(host) {
            c.values += 1;
            c.new += 1;
            c.why = why;
        } else if self.hosts.len() < MAX_HOSTS {
            self.hosts.insert(
                host.to_string(),
                Count {
                    values: 1,
                    new: 1,
                    why,
                    said: None,
                },
            );
        } else {
            self.others += 1;
        }
    }

    /// Hosts counted one by one (for the memory bound).
    pub fn entries(&self) -> usize {
        self.hosts.len()
    }

    /// Every value list not proven so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The lines to log now: each host with news whose last line is
    /// older than the interval, at most [`LINES_PER_INTERVAL`] hosts per
    /// interval; when an interval ends, one line for what was left out.
    pub fn report(&mut self, now: Instant) -> Vec<String> {
        let every = self.every;
        let mut lines = Vec::new();
        let (start, mut logged) = *self.window.get_or_insert((now, 0));
        if now.saturating_duration_since(start) >= every {
            let waiting = self.hosts.values().filter(|c| c.new > 0).count();
            let others = std::mem::take(&mut self.others);
            if (logged >= LINES_PER_INTERVAL && waiting > 0) || others > 0 {
                lines.push(format!(
                    "central: value lists of {waiting} more host(s), and {others} of hosts past the first {MAX_HOSTS}, not proven: not taken by central rules (status shows the hosts with the most)"
                ));
            }
            self.window = Some((now, 0));
            logged = 0;
        }
        let mut names: Vec<&String> = self
            .hosts
            .iter()
            .filter(|(_, c)| {
                c.new > 0
                    && c.said
                        .is_none_or(|t| now.saturating_duration_since(t) >= every)
            })
            .map(|(h, _)| h)
            .collect();
        names.sort();
        let names: Vec<String> = names
            .into_iter()
            .take(LINES_PER_INTERVAL.saturating_sub(logged))
            .cloned()
            .collect();
        for host in names {
            let Some(c) = self.hosts.get_mut(&host) else {
                continue;
            };
            lines.push(format!(
                "central: {} value list(s) of host {} not taken by central rules: {} (see FleetValueOrigins)",
                c.new,
                crate::collectd::loggable(&host),
                c.why
            ));
            c.new = 0;
            c.said = Some(now);
            logged += 1;
        }
        if let Some(w) = &mut self.window {
            w.1 = logged;
        }
        lines
    }

    /// The hosts with the most unproven value lists, at most `n`.
    pub fn top(&self, n: usize) -> Vec<(String, u64, String)> {
        let mut all: Vec<(String, u64, String)> = self
            .hosts
            .iter()
            .map(|(h, c)| (h.clone(), c.values, c.why.to_string()))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_is_logged_once_per_interval_and_a_flood_is_bounded() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut b = UnprovenBook::new(minute);
        for _ in 0..30 {
            b.record("web1", Unproven::Unsigned);
        }
        b.record("web2", Unproven::OtherUser("web3".into()));
        let lines = b.report(t0);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("30 value list(s) of host web1"));
        assert!(lines[1].contains("signed by user web3"));
        b.record("web1", Unproven::Unsigned);
        assert!(b.report(t0 + Duration::from_secs(1)).is_empty());
        let later = b.report(t0 + minute);
        assert!(
            later[0].contains("1 value list(s) of host web1"),
            "{later:?}"
        );
        for i in 0..100_000 {
            b.record(&format!("fake{i}"), Unproven::Unsigned);
        }
        assert!(b.hosts.len() <= MAX_HOSTS);
        let mut flood = b.report(t0 + minute * 2);
        for tick in 1..120 {
            flood.extend(b.report(t0 + minute * 2 + Duration::from_millis(500 * tick)));
        }
        assert!(flood.len() <= LINES_PER_INTERVAL + 2, "{}", flood.len());
        let flood = b.report(t0 + minute * 4);
        assert!(flood[0].contains("past the first"), "{flood:?}");
        assert_eq!(b.total(), 30 + 1 + 1 + 100_000);
        assert_eq!(b.top(1)[0].0, "web1");
    }
}
