//! Log flood control: a handler that fails on every value, or prints on
//! every value, must not fill collectd's log. Each key may log `burst` lines
//! per window; the rest are counted and the count is reported with the
//! next line that gets through. Pure; the caller passes the clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    skipped: u64,
}

/// Per-key line budgets.
#[derive(Debug)]
pub struct Throttle {
    burst: u32,
    window: Duration,
    keys: HashMap<String, Window>,
}

impl Throttle {
    pub fn new(burst: u32, window: Duration) -> Throttle {
        Throttle {
            burst,
            window,
            keys: HashMap::new(),
        }
    }

    /// `Some(skipped)` when a line for `key` may be logged now (`skipped`
    /// lines were held back since the last one); `None` to stay quiet.
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        let w = self.keys.entry(key.to_string()).or_insert(Window {
            start: now,
            logged: 0,
            skipped: 0,
        });
        if now.saturating_duration_since(w.start) >= self.window {
            w.start = now;
            w.logged = 0;
        }
        if w.logged < self.burst {
            w.logged += 1;
            Some(std::mem::take(&mut w.skipped))
        } else {
            w.skipped += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_burst_through_then_counts_until_the_next_window() {
        let mut t = Throttle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit("a", t0), Some(0));
        assert_eq!(t.admit("a", t0), Some(0));
        assert_eq!(t.admit("a", t0), None);
        assert_eq!(t.admit("a", t0), None);
        assert_eq!(t.admit("b", t0), Some(0));
        assert_eq!(t.admit("a", t0 + Duration::from_secs(60)), Some(2));
    }
}
