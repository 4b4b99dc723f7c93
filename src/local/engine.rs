//! The engine thread: takes events off the queue in batches, gives each
//! rule file the events it acts on (centrally held until a frame is worth
//! sending, see [`super::hold`]) and sends them to its worker; between
//! batches it supervises the workers (readiness, deaths, hangs, restarts,
//! quarantine) and picks up new, changed and removed rule files.

use super::catalog::{self, Catalog, Change};
use super::hold::Hold;
use super::lifecycle::{Action, Input, Lifecycle, State};
use super::routing::Router;
use super::stats::Stats;
use crate::events::batch::{BATCH_HEADER, decode_batch, scan, seal_batch};
use crate::events::{Batch, EventQueue, Received};
use crate::lua::VmLimits;
use crate::sandbox::{ReportSink, RestartPolicy, Routing, Worker, WorkerPhase, WorkerSpec};
use crate::status::{Board, FileState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, enabled, error, info, warn};

/// After a batch smaller than this, the engine waits [`LINGER`] before
/// taking the next one.
const LINGER_BELOW: u32 = 256;
const LINGER: Duration = Duration::from_millis(3);
/// How often workers are looked after when no events arrive.
const TICK: Duration = Duration::from_millis(100);
/// A worker with batches outstanding and no progress for this long is
/// killed (each call has its own, much shorter, limits; this is for a
/// worker stuck outside them).
const HANG_AFTER: Duration = Duration::from_secs(30);

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
    /// Where each file's state goes, for `status`.
    pub board: Arc<Board>,
    /// `SandboxUser`: whom workers run as; `None`: collectd's user.
    pub user: Option<String>,
    /// A silent series reaches the files only when the engine saw value
    /// lists of it (central rules: its queue takes only value lists that
    /// proved their host, so silence is believed of those series alone).
    pub missing_seen_only: bool,
    /// How long a file's events may be held to fill a frame (see
    /// [`super::hold`]; zero: each batch's are sent at once).
    pub hold_for: Duration,
}

/// A worker and what the engine sent it.
struct Running {
    worker: Worker,
    /// One past the last batch sequence number sent, if any was sent.
    sent: u64,
    /// Since when it has had work outstanding without progress.
    stalled_since: Option<(u64, Instant)>,
    /// Which events its file may act on, once it said so.
    routing: Option<Arc<Routing>>,
}

/// One rule file: where it stands (decided in `lifecycle`) and its
/// workers.
struct Slot {
    lifecycle: Lifecycle,
    active: Option<Running>,
    /// A new version loading beside the active one.
    candidate: Option<Worker>,
    /// Events owed to the active worker, sent a frame at a time.
    hold: Hold,
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
    /// Which files each series goes to.
    router: Router,
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
            router: Router::default(),
        };
        engine.rescan();
        engine
    }

    /// Runs until the queue is closed, then stops the workers.
    pub fn run(mut self, events: &EventQueue) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = self.next_due().map_or(TICK, |due| {
                due.saturating_duration_since(Instant::now()).min(TICK)
            });
            match events.take(wait) {
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
            self.send_due(Some(now));
            if now >= next_tick {
                self.look_after(now);
                next_tick = now + TICK;
            }
        }
        // What is held still goes out: the workers finish it before they
        // exit.
        self.send_due(None);
        for slot in self.slots.values_mut() {
            if let Some(running) = &mut slot.active {
                running.worker.stop();
            }
        }
    }

    /// When the first file's held events are due.
    fn next_due(&self) -> Option<Instant> {
        self.slots.values().filter_map(|s| s.hold.due()).min()
    }

    /// Sends every file's held events that are due at `now` (`None`: all).
    fn send_due(&mut self, now: Option<Instant>) {
        for slot in self.slots.values_mut() {
            if slot
                .hold
                .due()
                .is_some_and(|due| now.is_none_or(|now| due <= now))
            {
                slot.send_held(&mut self.next_seq, &self.stats);
            }
        }
    }

    fn fan_out(&mut self, batch: Batch) {
        let count = u64::from(batch.count);
        let mut frame = batch.frame;
        seal_batch(&mut frame, 0, batch.count);
        trace_events(&frame);
        // What each file acts on, as far as its worker said so.
        let mut changed = false;
        let routings: Vec<Option<Arc<Routing>>> = self
            .slots
            .values_mut()
            .map(|slot| {
                let running = slot.active.as_mut()?;
                if running.routing.is_none() {
                    running.routing = running.worker.routing();
                    changed |= running.routing.is_some();
                }
                running.routing.clone()
            })
            .collect();
        if changed {
            self.router.clear();
            self.config.board.forget_matches();
        }
        // Where each event lies and whose it is, read once; then which
        // files want it, once per series. (Nothing to read when no worker
        // routes: no rule files, or none ready yet.)
        let seen_only = self.config.missing_seen_only;
        let spans =
            match (seen_only || routings.iter().any(Option::is_some)).then(|| scan(&frame[4..])) {
                Some(Ok(spans)) => Some(spans),
                Some(Err(e)) => {
                    // Never seen: the plugin encodes every batch itself.
                    error!("a batch of {count} events could not be read ({e}); dropped");
                    Stats::add(&self.stats.sandbox_dropped, count);
                    return;
                }
                None => None,
            };
        let wants = spans
            .as_deref()
            .map(|spans| self.router.route(spans, &routings, seen_only));
        let (silences, unseen) = self.router.take_silences();
        Stats::add(&self.stats.silences, silences);
        Stats::add(&self.stats.silences_unseen, unseen);
        self.note_fresh_series(&routings);
        let now = Instant::now();
        let payload = &frame[4..];
        for (i, slot) in self.slots.values_mut().enumerate() {
            if slot.active.is_none() {
                if slot.lifecycle.expects_events() {
                    Stats::add(&self.stats.sandbox_dropped, count);
                }
                continue;
            }
            match (&spans, &wants) {
                // (With `missing_seen_only`, a file that has not said what
                // it acts on yet still gets no unseen series' silence.)
                (Some(spans), Some(wants)) if routings[i].is_some() || seen_only => {
                    for (span, want) in spans.iter().zip(wants) {
                        if want.get(i).copied().unwrap_or(true)
                            && slot.hold.push(&payload[span.bytes.clone()], 1, now)
                        {
                            slot.send_held(&mut self.next_seq, &self.stats);
                        }
                    }
                }
                _ => {
                    let events = &frame[BATCH_HEADER..];
                    if slot.hold.push(events, batch.count, now) {
                        slot.send_held(&mut self.next_seq, &self.stats);
                    }
                }
            }
        }
    }

    /// Tells the status board which new series collectd sends, and which
    /// routed files want them.
    fn note_fresh_series(&mut self, routings: &[Option<Arc<Routing>>]) {
        let fresh = self.router.take_fresh();
        if fresh.is_empty() {
            return;
        }
        let paths: Vec<String> = self.slots.keys().map(|p| p.display().to_string()).collect();
        for (plugin, series, wants) in fresh {
            self.config.board.series_seen(&plugin, &series);
            for (i, path) in paths.iter().enumerate() {
                if routings.get(i).is_some_and(Option::is_some) && wants.get(i) == Some(&true) {
                    self.config.board.series_matched(path, &series);
                }
            }
        }
    }

    fn look_after(&mut self, now: Instant) {
        if let Some(interval) = self.config.reload_interval
            && now >= self.next_scan
        {
            self.rescan();
            self.next_scan = now + interval;
        }
        let paths: Vec<PathBuf> = self.slots.keys().cloned().collect();
        for path in paths {
            self.look_after_file(&path, now);
        }
        let (active, quarantined) = self.slots.values().fold((0, 0), |(a, q), s| {
            (
                a + u64::from(s.active.is_some()),
                q + u64::from(s.lifecycle.state() == State::Quarantined),
            )
        });
        self.stats
            .files_active
            .store(active, std::sync::atomic::Ordering::Relaxed);
        self.stats
            .files_quarantined
            .store(quarantined, std::sync::atomic::Ordering::Relaxed);
        let states: Vec<FileState> = self
            .slots
            .iter()
            .map(|(path, slot)| {
                let state = match slot.lifecycle.state() {
                    State::Starting => "starting",
                    State::Active => "active",
                    State::NotLoaded => "not loaded",
                    State::RestartAt(_) => "restarting",
                    State::Quarantined => "quarantined",
                };
                let routing = slot.active.as_ref().and_then(|r| r.routing.as_ref());
                FileState {
                    pid: slot.active.as_ref().map(|r| r.worker.pid()),
                    path: path.display().to_string(),
                    state,
                    routed: routing.is_some_and(|r| r.metric.is_some()),
                    plugins: routing
                        .and_then(|r| r.metric.as_ref())
                        .map(|g| g.plugins())
                        .unwrap_or_default(),
                }
            })
            .collect();
        self.config.board.files(&states);
    }

    /// Tells the file's lifecycle what its workers did, and carries out
    /// what it decides.
    fn look_after_file(&mut self, path: &Path, now: Instant) {
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        let candidate = match slot.candidate.as_ref().map(Worker::phase) {
            Some(WorkerPhase::Ready) => Some(Input::CandidateLoaded),
            Some(WorkerPhase::LoadFailed(why) | WorkerPhase::Gone(why)) => {
                self.step(path, Input::CandidateFailed(&why), now);
                None
            }
            Some(WorkerPhase::Starting) | None => None,
        };
        if let Some(input) = candidate {
            self.step(path, input, now);
        }
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        if let Some(running) = &mut slot.active {
            match running.worker.phase() {
                WorkerPhase::Starting => running.check_hang(path, now),
                WorkerPhase::Ready => {
                    running.check_hang(path, now);
                    self.step(path, Input::Loaded, now);
                }
                WorkerPhase::LoadFailed(why) => {
                    slot.active = None;
                    self.step(path, Input::LoadFailed(&why), now);
                }
                WorkerPhase::Gone(cause) => {
                    slot.active = None;
                    self.step(path, Input::Died(&cause), now);
                }
            }
        }
        self.step(path, Input::Tick, now);
    }

    /// One input to a file's lifecycle, and its actions carried out.
    fn step(&mut self, path: &Path, input: Input<'_>, now: Instant) {
        let policy = self.config.policy;
        let Some(slot) = self.slots.get_mut(path) else {
            return;
        };
        let actions = slot.lifecycle.step(input, &policy, now);
        self.carry_out(path, actions, now);
    }

    fn carry_out(&mut self, path: &Path, actions: Vec<Action>, now: Instant) {
        for action in actions {
            match action {
                Action::SpawnActive => {
                    match Worker::spawn(&self.spec(path), Arc::clone(&self.sink)) {
                        Ok(worker) => {
                            if let Some(slot) = self.slots.get_mut(path) {
                                slot.active = Some(Running::new(worker));
                            }
                        }
                        Err(e) => self.step(path, Input::SpawnFailed(&e), now),
                    }
                }
                Action::SpawnCandidate => {
                    match Worker::spawn(&self.spec(path), Arc::clone(&self.sink)) {
                        Ok(worker) => {
                            if let Some(slot) = self.slots.get_mut(path) {
                                slot.candidate = Some(worker);
                            }
                        }
                        Err(e) => self.step(path, Input::CandidateFailed(&e), now),
                    }
                }
                Action::Promote => {
                    if let Some(slot) = self.slots.get_mut(path) {
                        if let Some(mut old) = slot.active.take() {
                            old.worker.stop();
                        }
                        slot.active = slot.candidate.take().map(Running::new);
                    }
                }
                Action::DropCandidate => {
                    if let Some(slot) = self.slots.get_mut(path) {
                        slot.candidate = None;
                    }
                }
                Action::CountRestart => Stats::add(&self.stats.sandbox_restarts, 1),
                Action::Info(text) => info!("{}: {text}", path.display()),
                Action::Warn(text) => {
                    warn!("{}: {text}", path.display());
                    self.config
                        .board
                        .file_note(&path.display().to_string(), &text);
                }
                Action::Error(text) => {
                    error!("{}: {text}", path.display());
                    self.config
                        .board
                        .file_note(&path.display().to_string(), &text);
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
        let changes = catalog::diff(&self.catalog, &found);
        if !changes.is_empty() {
            // Positions of the files change: verdicts are by position.
            self.router.clear();
        }
        for change in changes {
            match change {
                Change::Added(path) => {
                    let (lifecycle, actions) = Lifecycle::new();
                    self.slots.insert(
                        path.clone(),
                        Slot {
                            lifecycle,
                            active: None,
                            candidate: None,
                            hold: Hold::new(self.config.hold_for),
                        },
                    );
                    self.carry_out(&path, actions, Instant::now());
                }
                Change::Changed(path) => self.step(&path, Input::Changed, Instant::now()),
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

    fn spec(&self, path: &Path) -> WorkerSpec {
        WorkerSpec {
            program: self.config.program.clone(),
            file: path.to_path_buf(),
            limits: (self.config.limits)(path),
            user: self.config.user.clone(),
        }
    }
}

impl Slot {
    /// Sends the held events to the active worker as one frame (counted
    /// as dropped when it has none, or is behind).
    fn send_held(&mut self, next_seq: &mut u64, stats: &Stats) {
        let Some((frame, n)) = self.hold.take(*next_seq) else {
            return;
        };
        let seq = *next_seq;
        *next_seq += 1;
        match &mut self.active {
            Some(running) if running.worker.offer(&Arc::new(frame)) => running.sent = seq + 1,
            _ => Stats::add(&stats.sandbox_dropped, u64::from(n)),
        }
    }
}

impl Running {
    fn new(worker: Worker) -> Running {
        Running {
            worker,
            sent: 0,
            stalled_since: None,
            routing: None,
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
