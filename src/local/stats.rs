//! The monitor's own figures, dispatched through collectd every interval
//! (plugin `monitor`) so the monitor can be graphed and alerted on like
//! anything else.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the engine, the report handler and the read callback.
#[derive(Debug, Default)]
pub struct Stats {
    /// Handler-table evaluations: events times rule files that saw them.
    pub evaluated: AtomicU64,
    /// Events a rule file missed because its sandbox was behind, starting
    /// or restarting.
    pub sandbox_dropped: AtomicU64,
    pub handler_errors: AtomicU64,
    pub limit_hits: AtomicU64,
    pub commands_run: AtomicU64,
    pub commands_failed: AtomicU64,
    pub commands_timed_out: AtomicU64,
    pub commands_suppressed: AtomicU64,
    pub sandbox_restarts: AtomicU64,
    pub files_active: AtomicU64,
    pub files_quarantined: AtomicU64,
}

/// One self-monitoring value: `(type, type_instance, value)`; type is
/// `derive` for counters, `gauge` for levels (both in collectd's types.db).
pub type Figure = (&'static str, &'static str, f64);

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Every figure, plus the queue's (received, dropped, depth).
    pub fn figures(&self, received: u64, dropped: u64, depth: u64) -> Vec<Figure> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        vec![
            ("derive", "values_received", received as f64),
            ("derive", "values_dropped", dropped as f64),
            ("derive", "evaluations", get(&self.evaluated)),
            ("derive", "sandbox_dropped", get(&self.sandbox_dropped)),
            ("derive", "handler_errors", get(&self.handler_errors)),
            ("derive", "limit_hits", get(&self.limit_hits)),
            ("derive", "commands_run", get(&self.commands_run)),
            ("derive", "commands_failed", get(&self.commands_failed)),
            (
                "derive",
                "commands_timed_out",
                get(&self.commands_timed_out),
            ),
            (
                "derive",
                "commands_suppressed",
                get(&self.commands_suppressed),
            ),
            ("derive", "sandbox_restarts", get(&self.sandbox_restarts)),
            ("gauge", "queue_depth", depth as f64),
            ("gauge", "rule_files_active", get(&self.files_active)),
            (
                "gauge",
                "rule_files_quarantined",
                get(&self.files_quarantined),
            ),
        ]
    }
}
