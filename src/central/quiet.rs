//! One log line per key and interval: a held-back host, an unproven
//! sender, a forged result each say so once per interval, however many
//! value lists or messages repeat it; and at most a few lines per group
//! (`app/restart unknown_host`) and interval, the rest counted and said in
//! one line when the interval ends, so a flood of new keys (fake host
//! names) logs a bounded number of lines. Pure; the caller passes the
//! clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Keys remembered at once.
const MAX_KEYS: usize = 4096;
/// Groups remembered at once.
const MAX_GROUPS: usize = 256;
/// Lines of one group per interval.
pub const LINES_PER_GROUP: u64 = 10;

#[derive(Debug)]
struct Group {
    start: Instant,
    logged: u64,
    held: u64,
}

/// Which lines may be logged now.
#[derive(Debug)]
pub struct OncePer {
    every: Duration,
    said: HashMap<String, Instant>,
    groups: HashMap<String, Group>,
}

impl OncePer {
    pub fn new(every: Duration) -> OncePer {
        OncePer {
            every,
            said: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// Whether the line of `key`, of `group`, may be logged at `now`.
    pub fn admit(&mut self, key: &str, group: &str, now: Instant) -> bool {
        if let Some(at) = self.said.get(key)
            && now.saturating_duration_since(*at) < self.every
        {
            return false;
        }
        let every = self.every;
        if !self.groups.contains_key(group) && self.groups.len() >= MAX_GROUPS {
            return false;
        }
        let g = self.groups.entry(group.to_string()).or_insert(Group {
            start: now,
            logged: 0,
            held: 0,
        });
        if now.saturating_duration_since(g.start) >= every && g.held == 0 {
            g.start = now;
            g.logged = 0;
        }
        if g.logged >= LINES_PER_GROUP {
            g.held += 1;
            return false;
        }
        if !self.said.contains_key(key) && self.said.len() >= MAX_KEYS {
            self.said
                .retain(|_, at| now.saturating_duration_since(*at) < every);
            if self.said.len() >= MAX_KEYS {
                g.held += 1;
                return false;
            }
        }
        g.logged += 1;
        self.said.insert(key.to_string(), now);
        true
    }

    /// Keys and groups it remembers (for the memory bound).
    pub fn entries(&self) -> usize {
        self.said.len() + self.groups.len()
    }

    /// The groups whose interval ended with lines held back: each group
    /// and how many; their count starts again.
    pub fn held(&mut self, now: Instant) -> Vec<(String, u64)> {
        let every = self.every;
        let mut out: Vec<(String, u64)> = self
            .groups
            .iter_mut()
            .filter(|(_, g)| g.held > 0 && now.saturating_duration_since(g.start) >= every)
            .map(|(name, g)| {
                let held = std::mem::take(&mut g.held);
                g.start = now;
                g.logged = 0;
                (name.clone(), held)
            })
            .collect();
        self.groups
            .retain(|_, g| g.held > 0 || now.saturating_duration_since(g.start) < every);
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_speaks_once_per_interval_and_a_group_a_few_times() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut q = OncePer::new(minute);
        assert!(q.admit("web1", "unproven", t0));
        assert!(!q.admit("web1", "unproven", t0 + Duration::from_secs(59)));
        assert!(q.admit("web2", "unproven", t0));
        assert!(q.admit("web1", "unproven", t0 + minute));
        // A flood of new keys in one group: a few lines, the rest counted.
        let admitted = (0..100_000)
            .filter(|i| q.admit(&format!("fake{i}"), "held", t0))
            .count();
        assert_eq!(admitted as u64, LINES_PER_GROUP);
        assert!(q.held(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            q.held(t0 + minute),
            vec![("held".to_string(), 100_000 - LINES_PER_GROUP)]
        );
        assert!(q.said.len() <= MAX_KEYS);
        // Once said, the group speaks again.
        assert!(q.admit("fake99999", "held", t0 + minute));
    }
}
