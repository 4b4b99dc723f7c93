//! The monitor's own figures, dispatched through collectd every interval
//! (plugin `monitor`) so the monitor can be graphed and alerted on like
//! anything else.

use crate::events::Value;
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
    /// Rule decisions a maintenance pause held back.
    pub commands_paused: AtomicU64,
    /// Rule decisions their rule held back itself (`inhibited`).
    pub commands_inhibited: AtomicU64,
    pub sandbox_restarts: AtomicU64,
    /// Series collectd found silent.
    pub silences: AtomicU64,
    /// Of those, series no rule file was told about: central rules saw no
    /// value list of theirs that proved its host (anyone could have sent
    /// the series once and stopped).
    pub silences_unseen: AtomicU64,
    pub files_active: AtomicU64,
    pub files_quarantined: AtomicU64,
}

/// One self-monitoring value: `(type_instance, value)`. Counters are
/// derive values, levels gauges; collectd's types.db has a type of each
/// name (`derive`, `gauge`), so the value's kind is also its type.
pub type Figure = (&'static str, Value);

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Every figure, plus the queue's (received, dropped, depth).
    pub fn figures(&self, received: u64, dropped: u64, depth: u64) -> Vec<Figure> {
        let count = |n: u64| Value::Derive(i64::try_from(n).unwrap_or(i64::MAX));
        let get = |c: &AtomicU64| count(c.load(Ordering::Relaxed));
        let level = |n: u64| Value::Gauge(n as f64);
        vec![
            ("values_received", count(received)),
            ("values_dropped", count(dropped)),
            ("evaluations", get(&self.evaluated)),
            ("sandbox_dropped", get(&self.sandbox_dropped)),
            ("handler_errors", get(&self.handler_errors)),
            ("limit_hits", get(&self.limit_hits)),
            ("commands_run", get(&self.commands_run)),
            ("commands_failed", get(&self.commands_failed)),
            ("commands_timed_out", get(&self.commands_timed_out)),
            ("commands_suppressed", get(&self.commands_suppressed)),
            ("commands_inhibited", get(&self.commands_inhibited)),
            ("commands_paused", get(&self.commands_paused)),
            ("sandbox_restarts", get(&self.sandbox_restarts)),
            ("silences", get(&self.silences)),
            ("silences_unseen", get(&self.silences_unseen)),
            ("queue_depth", level(depth)),
            (
                "rule_files_active",
                level(self.files_active.load(Ordering::Relaxed)),
            ),
            (
                "rule_files_quarantined",
                level(self.files_quarantined.load(Ordering::Relaxed)),
            ),
        ]
    }
}
