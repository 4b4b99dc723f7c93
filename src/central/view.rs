//! What `status` shows of central rules: one read of each part of the
//! controller's state, turned into the status document.

use super::responder::Central;
use crate::status::{
    CentralCommand, CentralHosts, CentralPeer, CentralRepair, CentralRequest, CentralStatus,
    UnprovenHost,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The status document of `central` (the caller adds the rule files and
/// the queue's counters).
pub fn status(central: &Central) -> CentralStatus {
    let now = Instant::now();
    let mut out = CentralStatus {
        window: central.config.window.as_secs(),
        ..CentralStatus::default()
    };
    if let Ok(f) = central.fleet.lock() {
        out.commands = f
            .guards
            .commands(now)
            .into_iter()
            .map(|c| CentralCommand {
                command: c.command.to_string(),
                in_flight: c.in_flight,
                failures: c.failures,
                error_budget: c.error_budget,
                stopped: c.stopped,
                held: c
                    .held
                    .into_iter()
                    .map(|(why, n)| (why.as_str().to_string(), n))
                    .collect(),
                refused: c
                    .refused
                    .into_iter()
                    .map(|(why, n)| (why.as_str().to_string(), n))
                    .collect(),
                sent: c.sent,
                done_elsewhere: c.done_elsewhere,
            })
            .collect();
        let h = f.roster.counts(std::time::SystemTime::now());
        out.hosts = CentralHosts {
            known: h.known,
            online: h.online,
            offline: h.offline,
            silent: h.silent,
            paused: h.paused,
            evicted: h.evicted,
        };
        out.peers = f
            .peers
            .list()
            .into_iter()
            .map(|(p, agrees)| CentralPeer {
                hostname: p.hostname,
                window: p.window,
                rule_set: p.rule_set,
                since: p.since,
                agrees,
            })
            .collect();
        out.rule_set = f
            .announced
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
    }
    if let Ok(u) = central.unproven.lock() {
        out.unproven = u
            .top(10)
            .into_iter()
            .map(|(host, values, why)| UnprovenHost { host, values, why })
            .collect();
    }
    if let Ok(p) = central.pending.lock() {
        out.in_flight = p
            .iter()
            .map(|(id, x)| CentralRequest {
                task_id: *id,
                host: x.host.clone(),
                command: x.command.to_string(),
                age: now.saturating_duration_since(x.sent).as_secs(),
            })
            .collect();
        out.in_flight
            .sort_by(|a, b| (&a.host, a.task_id).cmp(&(&b.host, b.task_id)));
    }
    if let Ok(r) = central.recent.lock() {
        out.recent = r
            .iter()
            .map(|e| CentralRepair {
                task_id: e.task_id,
                host: e.host.clone(),
                command: e.command.to_string(),
                code: e.code,
                ago: now.saturating_duration_since(e.at).as_secs(),
            })
            .collect();
    }
    out.pauses = central.pauses.list().iter().map(|p| p.status()).collect();
    out.requested_by_others = central.counts.requested_by_others.load(Ordering::Relaxed);
    out.counters = counters(central);
    out
}

/// Central rules' own counters, by name.
pub fn counters(central: &Central) -> Vec<(String, f64)> {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let counts = &central.counts;
    let (unproven, book) = central
        .unproven
        .lock()
        .map_or((0, 0), |u| (u.total(), u.entries()));
    let fleet = central.fleet.lock().map_or(0, |f| {
        f.roster.entries() + f.guards.entries() + f.quiet.entries() + f.peers.list().len()
    });
    let pending = central.pending.lock().map_or(0, |p| p.len());
    [
        ("values_unproven", unproven),
        ("requests_sent", load(&counts.requests_sent)),
        ("results_proven", load(&counts.results_proven)),
        ("results_unproven", load(&counts.results_unproven)),
        // What the controller keeps per host, sender or key: bounded
        // by FleetMaxHosts and fixed bounds, whatever names arrive.
        ("state_entries", (fleet + book + pending) as u64),
    ]
    .into_iter()
    .map(|(name, v)| (name.to_string(), v as f64))
    .collect()
}
