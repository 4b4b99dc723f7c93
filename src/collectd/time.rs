//! collectd's `cdtime_t`: 64-bit fixed point with 2^-30 second resolution.

const FRACTION: f64 = (1u64 << 30) as f64;

/// Rules and JSON see seconds as a float, as collectd's own lua plugin does.
pub fn cdtime_to_secs(t: u64) -> f64 {
    t as f64 / FRACTION
}

/// Inverse of [`cdtime_to_secs`], used when we dispatch notifications.
pub fn secs_to_cdtime(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * FRACTION).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_and_fractional_seconds() {
        assert_eq!(cdtime_to_secs(10 << 30), 10.0);
        assert_eq!(cdtime_to_secs(secs_to_cdtime(1.5)), 1.5);
        assert_eq!(secs_to_cdtime(-1.0), 0);
        assert_eq!(secs_to_cdtime(f64::NAN), 0);
    }
}
