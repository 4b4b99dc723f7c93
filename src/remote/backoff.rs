//! Reconnection delays: exponential with jitter, so a fleet of hosts does
//! not hammer a broker that just came back, and a refused login does not
//! spin a core (rumqttc itself retries at once).

use std::time::Duration;

/// The next delay is `current` scaled by 0.8..1.2, then `current` doubles
/// up to `max`; a successful connection resets it to `base`.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.max(Duration::from_millis(100));
        Backoff {
            base,
            max: max.max(base),
            current: base,
        }
    }

    /// The delay before the next attempt; `jitter` is uniform in `0.0..1.0`.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let delay = self.current.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
        self.current = (self.current * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(1600));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(4800));
        assert_eq!(b.next_delay(0.5), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
    }
}
