//! The engine thread: takes events off the queue in batches, encodes each
//! batch once and offers it to every rule file's worker; between batches it
//! supervises the workers (readiness, deaths, hangs, restarts, quarantine)
//! and picks up new, changed and removed rule files.

use super::catalog::{self, Catalog, Change};
use super::stats::Stats;
use crate::events::batch::{decode_batch, seal_batch};
use crate::events::{Batch, EventQueue, Received};
use crate::lua::VmLimits;
use crate::sandbox::{
    AfterDeath, Phase, ReportSink, RestartPolicy, Supervision, Worker, WorkerSpec,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, enabled, error, info, warn};

/// After a batch smaller than this, the engine waits [`LINGER`] before
/// taking the next one.
const LINGER_BELOW: u32 = 256;
const LINGER: Duration = Duration::from_millis(1);
/// How often workers are looked after when no events arrive.
const TICK: Duration = Duration::from_millis(100);
/// A worker with batches outstanding and no progress for this long is
/// killed (each call has its own, much shorter, limits; this is for a
/// worker stuck outside them).
const HANG_AFTER: Duration = Duration::from_secs(30);

/// When a worker cannot even be started (program missing, no processes
/// left), how long before the next attempt.
const SPAWN_RETRY: Duration = Duration::from_secs(30);

/// What the engine needs to know.
pub struct EngineConfig {
    /// `LocalMonitorConfigDir`; `None`: no rules, events are only traced.
    pub dir: Option<PathBuf>,
    /// The `collectd-monitor` program that runs workers.
    pub program: PathBuf,
    pub policy: RestartPolicy,
    /// `None`: no hot reload.
    pub reload_interval: Option<Duration>,
    /// Limits per file path.
    pub limits: Box<dyn Fn(&Path) -> VmLimits + Send>,
    /// Called at every reload check, for other files to watch (config.json).
    pub on_reload_check: Box<dyn FnMut() + Send>,
}

/// A worker and what the engine sent it.
struct Running {
    worker: Worker,
    /// One past the last batch sequence number sent, if any was sent.
    sent: u64,
    /// Since when it has had work outstanding without progress.
    stalled_since: Option<(u64, Instant)>,
    announced: bool,
}

/// One rule file.
#[derive(Default)]
struct Slot {
    active: Option<Running>,
    /// A new version loading beside the active one.
    candidate: Option<Worker>,
    supervision: Supervision,
    restart_at: Option<Instant>,
    quarantined: bool,
}

/// The engine thread's state: every rule file's worker, the directory as
/// last seen, and the batch counter.
pub struct Engine {
    config: EngineConfig,
    sink: ReportSink,
    stats: Arc<Stats>,
    catalog: Catalog,
    slots: BTreeMap<PathBuf, Slot>,
    next_seq: u64,
    next_scan: Instant,
    /// The last directory error logged.
    scan_error: Option<String>,
}

impl Engine {
    /// Loads every rule file of the directory (each in its worker).
    pub fn start(config: EngineConfig, sink: ReportSink, stats: Arc<Stats>) -> Engine {
        let mut engine = Engine {
            config,
            sink,
            stats,
            catalog: Catalog::new(),
            slots: BTreeMap::new(),
            next_seq: 0,
            next_scan: Instant::now(),
            scan_error: None,
        };
        engine.rescan();
        engine
    }

    /// Runs until the queue is closed, then stops the workers.
    pub fn run(mut self, events: &EventQueue) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            match events.take(TICK) {
                Received::Batch(batch) => {
                    let small = batch.count < LINGER_BELOW;
                    self.fan_out(batch);
                    if small {
                        // Let a few more events gather: fewer, larger
                        // batches cost the workers far less per event.
                        std::thread::sleep(LINGER);
                    }
                }
                Received::Idle => {}
                Received::Closed => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.look_after(now);
                next_tick = now + TICK;
            }
        }
        for slot in self.slots.values_mut() {
            if let Some(running) = &mut slot.active {
                running.worker.stop();
            }
        }
    }

    fn fan_out(&mut self, batch: Batch) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let count = u64::from(batch.count);
        let mut frame = batch.frame;
        seal_batch(&mut frame, seq, batch.count);
        trace_events(&frame);
        let frame = Arc::new(frame);
        for slot in self.slots.values_mut() {
            match &mut slot.active {
                Some(running) => {
                    if running.worker.offer(&frame) {
                        running.sent = seq + 1;
                    } else {
                        Stats::add(&self.stats.sandbox_dropped, count);
                    }
                }
                None if slot.restart_at.is_some() => {
                    Stats::add(&self.stats.sandbox_dropped, count);
                }
                None => {}
            }
        }
    }

    fn look_after(&mut self, now: Instant) {
        if let Some(interval) = self.config.reload_interval
            && now >= self.next_scan
        {
            self.rescan();
            (self.config.on_reload_check)();
            self.next_scan = now + interval;
        }
        let paths: Vec<PathBuf> = self.slots.keys().cloned().collect();
        for path in paths {
            self.look_after_candidate(&path);
            self.look_after_active(&path, now);
        }
        let (active, quarantined) = self.slots.values().fold((0, 0), |(a, q), s| {
            (
                a + u64::from(s.active.is_some()),
                q + u64::from(s.quarantined),
            )
        });
        self.stats
            .files_active
            .store(active, std::sync::atomic::Ordering::Relaxed);
        self.stats
            .files_quarantined
            .store(quarantined, std::sync::atomic::Ordering::Relaxed);
    }

    /// A new version of a file that has a running one: swap when it is
    /// ready, keep the old one when it does not load.
    fn look_after_candidate(&mut self, path: &Path) {
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        let phase = match &slot.candidate {
            Some(worker) => worker.phase(),
            None => return,
        };
        match phase {
            Phase::Starting => {}
            Phase::Ready => {
                let new = slot.candidate.take();
                if let Some(mut old) = slot.active.take() {
                    old.worker.stop();
                }
                info!("{}: reloaded (new version active)", path.display());
                slot.supervision.forget();
                slot.active = new.map(|worker| Running::new(worker, true));
            }
            Phase::LoadFailed(why) | Phase::Gone(why) => {
                // Not retried until the file changes again.
                error!(
                    "{}: the changed file was not loaded, the previous version stays active: {why}",
                    path.display()
                );
                slot.candidate = None;
            }
        }
    }

    fn look_after_active(&mut self, path: &Path, now: Instant) {
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        if let Some(at) = slot.restart_at
            && now >= at
        {
            slot.restart_at = None;
            Stats::add(&self.stats.sandbox_restarts, 1);
            self.spawn_active(path);
            return;
        }
        let Some(running) = &mut slot.active else {
            return;
        };
        match running.worker.phase() {
            Phase::Starting => running.check_hang(path, now),
            Phase::Ready => {
                if !running.announced {
                    running.announced = true;
                    info!("{}: loaded", path.display());
                }
                running.check_hang(path, now);
            }
            Phase::LoadFailed(why) => {
                error!("{}: not loaded: {why}", path.display());
                slot.active = None;
            }
            Phase::Gone(cause) => {
                slot.active = None;
                match slot.supervision.on_death(&self.config.policy, now) {
                    AfterDeath::RestartAt(at) => {
                        let delay = at.saturating_duration_since(now);
                        warn!(
                            "{}: its sandbox died: {cause}; restarting {}",
                            path.display(),
                            if delay.is_zero() {
                                "now".to_string()
                            } else {
                                format!("in {delay:.1?}")
                            }
                        );
                        slot.restart_at = Some(at);
                    }
                    AfterDeath::Quarantine { deaths } => {
                        error!(
                            "{}: quarantined after {deaths} sandbox deaths within {} s (last: {cause}); the other rule files keep running; fix the file, it is started again when it changes on disk",
                            path.display(),
                            self.config.policy.window.as_secs()
                        );
                        slot.quarantined = true;
                    }
                }
            }
        }
    }

    /// Re-reads the directory and acts on every difference.
    fn rescan(&mut self) {
        let Some(dir) = &self.config.dir else {
            return;
        };
        let found = match catalog::scan(dir) {
            Ok(found) => {
                if self.scan_error.take().is_some() {
                    info!("LocalMonitorConfigDir {}: readable again", dir.display());
                }
                found
            }
            Err(e) => {
                // Once per incident, not at every check.
                let text = e.to_string();
                if self.scan_error.as_deref() != Some(&text) {
                    warn!(
                        "LocalMonitorConfigDir {}: {text}; keeping the rule files already loaded and looking again every check",
                        dir.display()
                    );
                    self.scan_error = Some(text);
                }
                return;
            }
        };
        for change in catalog::diff(&self.catalog, &found) {
            match change {
                Change::Added(path) => {
                    self.slots.insert(path.clone(), Slot::default());
                    self.spawn_active(&path);
                }
                Change::Changed(path) => self.changed(&path),
                Change::Removed(path) => {
                    if let Some(mut slot) = self.slots.remove(&path)
                        && let Some(running) = &mut slot.active
                    {
                        running.worker.stop();
                    }
                    info!("{}: removed; its handlers no longer run", path.display());
                }
            }
        }
        self.catalog = found;
    }

    fn changed(&mut self, path: &Path) {
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        let has_active = slot.active.is_some();
        if slot.quarantined || !has_active {
            // Nothing healthy to keep: start the new version directly.
            if slot.quarantined {
                info!("{}: changed on disk; out of quarantine", path.display());
            }
            slot.quarantined = false;
            slot.restart_at = None;
            slot.supervision.forget();
            slot.candidate = None;
            self.spawn_active(path);
            return;
        }
        let spec = self.spec(path);
        match Worker::spawn(&spec, Arc::clone(&self.sink)) {
            Ok(worker) => {
                debug!(
                    "{}: changed on disk; loading the new version",
                    path.display()
                );
                if let Some(slot) = self.slots.get_mut(path) {
                    slot.candidate = Some(worker);
                }
            }
            Err(e) => error!("{}: {e}", path.display()),
        }
    }

    fn spawn_active(&mut self, path: &Path) {
        let spec = self.spec(path);
        let spawned = Worker::spawn(&spec, Arc::clone(&self.sink));
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        match spawned {
            Ok(worker) => slot.active = Some(Running::new(worker, false)),
            Err(e) => {
                error!(
                    "{}: {e}; trying again in {} s",
                    path.display(),
                    SPAWN_RETRY.as_secs()
                );
                slot.active = None;
                slot.restart_at = Some(Instant::now() + SPAWN_RETRY);
            }
        }
    }

    fn spec(&self, path: &Path) -> WorkerSpec {
        WorkerSpec {
            program: self.config.program.clone(),
            file: path.to_path_buf(),
            limits: (self.config.limits)(path),
        }
    }
}

impl Running {
    fn new(worker: Worker, announced: bool) -> Running {
        Running {
            worker,
            sent: 0,
            stalled_since: None,
            announced,
        }
    }

    /// Kills a worker that has had work outstanding, with no progress, for
    /// longer than [`HANG_AFTER`]; its death is then handled like any other.
    fn check_hang(&mut self, path: &Path, now: Instant) {
        let done = self.worker.done();
        if done >= self.sent {
            self.stalled_since = None;
            return;
        }
        match self.stalled_since {
            Some((at_done, since)) if at_done == done => {
                if now.saturating_duration_since(since) > HANG_AFTER {
                    warn!(
                        "{}: its sandbox made no progress for {} s; killing it",
                        path.display(),
                        HANG_AFTER.as_secs()
                    );
                    self.worker.kill();
                    self.stalled_since = None;
                }
            }
            _ => self.stalled_since = Some((done, now)),
        }
    }
}

/// The write path's debug trace (also how tests observe it); costs nothing
/// unless debug logging is on.
fn trace_events(frame: &[u8]) {
    if !enabled!(tracing::Level::DEBUG) {
        return;
    }
    match decode_batch(&frame[4..]) {
        Ok((_, events)) => {
            for event in events {
                debug!(
                    "event {}",
                    serde_json::to_string(&event)
                        .unwrap_or_else(|e| format!("<unserializable: {e}>"))
                );
            }
        }
        Err(e) => debug!("undecodable batch: {e}"),
    }
}
