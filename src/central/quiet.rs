//! One log line per key and interval: a held-back host, an unproven
//! sender, a forged result each say so once per interval, however many
//! value lists or messages repeat it, and a flood of new keys (fake host
//! names) stops at a bound. Pure; the caller passes the clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Keys remembered at once.
const MAX_KEYS: usize = 4096;

/// Which lines may be logged now.
#[derive(Debug)]
pub struct OncePer {
    every: Duration,
    said: HashMap<String, Instant>,
}

impl OncePer {
    pub fn new(every: Duration) -> OncePer {
        OncePer {
            every,
            said: HashMap::new(),
        }
    }

    /// Whether the line of `key` may be logged at `now`.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        if let Some(at) = self.said.get_mut(key) {
            if now.saturating_duration_since(*at) < self.every {
                return false;
            }
            *at = now;
            return true;
        }
        if self.said.len() >= MAX_KEYS {
            let every = self.every;
            self.said
                .retain(|_, at| now.saturating_duration_since(*at) < every);
            if self.said.len() >= MAX_KEYS {
                return false;
            }
        }
        self.said.insert(key.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_speaks_once_per_interval_and_new_keys_stop_at_the_bound() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut q = OncePer::new(minute);
        assert!(q.admit("web1 unproven", t0));
        assert!(!q.admit("web1 unproven", t0 + Duration::from_secs(59)));
        assert!(q.admit("web2 unproven", t0));
        assert!(q.admit("web1 unproven", t0 + minute));
        let admitted = (0..MAX_KEYS * 2)
            .filter(|i| q.admit(&format!("fake{i}"), t0 + minute))
            .count();
        assert!(q.said.len() <= MAX_KEYS);
        assert!(admitted < MAX_KEYS);
        // Once the interval is over, room is made again.
        assert!(q.admit("web3", t0 + minute * 3));
    }
}
