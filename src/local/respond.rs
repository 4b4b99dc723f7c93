//! What the plugin does with the workers' reports: log failures and prints
//! (throttled), and turn a handler's request into a recovery command (after
//! the service/command lookup and the cooldown) whose result goes out as a
//! collectd notification. Runs on the workers' report threads; commands run
//! on threads of their own, so a hanging command blocks nothing else.

use super::cooldown::{Cooldowns, Gate};
use super::result::{RESULT_PLUGIN, result_notification, rule_notification};
use super::stats::Stats;
use super::throttle::Throttle;
use crate::actions::{Ending, Runner, Summary};
use crate::config::{LiveServices, find_command};
use crate::events::Notification;
use crate::history::{History, Record};
use crate::sandbox::Report;
use crate::status::{Board, HandlerEvent};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// Failure lines per handler per minute.
const FAILURES_PER_MINUTE: u32 = 1;
/// `print` lines per rule file per 10 s.
const PRINTS_PER_WINDOW: u32 = 20;

/// Where result notifications go: collectd's dispatch in the plugin, a
/// recorder in tests. An error is collectd's status code.
pub type NotificationSink = Box<dyn Fn(&Notification) -> Result<(), i32> + Send + Sync>;

/// Everything needed to act on a report.
pub struct Responder {
    /// What `status` shows of each handler.
    board: Arc<Board>,
    notify: NotificationSink,
    services: Arc<LiveServices>,
    default_cooldown: Duration,
    runner: Arc<Runner>,
    stats: Arc<Stats>,
    hostname: String,
    next_task_id: AtomicU64,
    cooldowns: Mutex<Cooldowns>,
    failures: Mutex<Throttle>,
    prints: Mutex<Throttle>,
    /// Notifications rules asked for: one a minute per handler.
    notices: Mutex<Throttle>,
    /// Set at collectd's shutdown: no new commands, no more notifications
    /// into a collectd that is tearing its plugins down.
    stopped: AtomicBool,
    /// Maintenance pauses: a decision they cover is not run.
    pauses: Option<Arc<crate::pause::PauseBook>>,
    /// Where decisions that ran or were paused are recorded.
    history: Option<Arc<History>>,
}

impl Responder {
    pub fn new(
        services: Arc<LiveServices>,
        default_cooldown: Duration,
        runner: Arc<Runner>,
        stats: Arc<Stats>,
        hostname: String,
        notify: NotificationSink,
        board: Arc<Board>,
    ) -> Responder {
        Responder {
            notify,
            board,
            services,
            default_cooldown,
            runner,
            stats,
            hostname,
            // Task ids of local results: unique within this process, and
            // unlikely to repeat across restarts.
            next_task_id: AtomicU64::new(u64::from(fastrand::u32(..))),
            cooldowns: Mutex::new(Cooldowns::default()),
            failures: Mutex::new(Throttle::new(FAILURES_PER_MINUTE, Duration::from_secs(60))),
            prints: Mutex::new(Throttle::new(PRINTS_PER_WINDOW, Duration::from_secs(10))),
            notices: Mutex::new(Throttle::new(1, Duration::from_secs(60))),
            stopped: AtomicBool::new(false),
            pauses: None,
            history: None,
        }
    }

    /// The same, holding back what `pauses` cover.
    pub fn pausing(self, pauses: Arc<crate::pause::PauseBook>) -> Responder {
        Responder {
            pauses: Some(pauses),
            ..self
        }
    }

    /// The same, recording what it runs and holds back in `history`.
    pub fn recording(self, history: Option<Arc<History>>) -> Responder {
        Responder { history, ..self }
    }

    fn record(&self, record: Record) {
        if let Some(history) = &self.history {
            history.record(record);
        }
    }

    /// collectd is shutting down: later results are only logged.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Handles one report of the worker running `file`.
    pub fn handle(self: &Arc<Self>, file: &Path, report: Report) {
        let path = file.display().to_string();
        match report {
            Report::Done { events, calls, .. } => {
                Stats::add(&self.stats.evaluated, events);
                self.board.evaluated(&path, events, &calls);
            }
            Report::Printed { line } => {
                if let Some(skipped) = admit(&self.prints, &file.display().to_string()) {
                    info!("{}: print: {line}{}", file.display(), skipped_note(skipped));
                }
            }
            Report::Failed {
                handler,
                limit,
                reason,
                series,
            } => {
                Stats::add(&self.stats.handler_errors, 1);
                if limit.is_some() {
                    Stats::add(&self.stats.limit_hits, 1);
                }
                self.board.handler(
                    &path,
                    &handler,
                    HandlerEvent::Error {
                        series: series.clone(),
                        message: reason.clone(),
                    },
                );
                if let Some(skipped) = admit(&self.failures, &handler) {
                    warn!(
                        "rule {handler} failed on {series}: {reason}{}",
                        skipped_note(skipped)
                    );
                }
            }
            Report::Held { handler, reason } => {
                self.board.handler(&path, &handler, HandlerEvent::Held);
                debug!("rule {handler}: held back: {reason}")
            }
            Report::Warning { message } => {
                warn!("{}: {message}", file.display());
                self.board.file_warning(&path, &message);
            }
            // A `host` a local rule names is not ours to act on: local
            // rules repair this host.
            Report::Fired {
                handler,
                series,
                notify: Some(text),
                ..
            } => {
                // A notification instead of a command: one a minute per
                // handler (a storm makes one, not one per host).
                self.decided(&path, &handler, &series, "notify".into());
                if self.stopped.load(Ordering::SeqCst) || admit(&self.notices, &handler).is_none() {
                    return;
                }
                let notification =
                    rule_notification(&self.hostname, RESULT_PLUGIN, &handler, &text);
                info!(
                    "rule {handler} on {series}: notification: {}",
                    crate::collectd::one_line(&text, 200)
                );
                if let Err(status) = (self.notify)(&notification) {
                    error!("could not dispatch rule {handler}'s notification (status {status})");
                }
            }
            Report::Fired {
                handler,
                service,
                command,
                series,
                inhibited: Some(why),
                ..
            } => {
                // The rule holds its decision back itself: counted, in the
                // history, and logged at most once a minute per handler.
                Stats::add(&self.stats.commands_inhibited, 1);
                self.board.handler(&path, &handler, HandlerEvent::Held);
                let why = crate::collectd::one_line(&why, 200);
                let outcome = format!("inhibited ({why}): not run");
                if let Some(skipped) = admit(&self.failures, &handler) {
                    info!(
                        "rule {handler} on {series}: {service}/{command} {outcome}{}",
                        skipped_note(skipped)
                    );
                }
                let wanted = crate::task::CommandRef::new(service.as_str(), command.as_str());
                self.record(
                    Record::new("rule", &wanted.to_string(), &handler)
                        .on_series(&series)
                        .outcome(&outcome),
                );
            }
            Report::Fired {
                handler,
                service,
                command,
                series,
                host: _,
                cooldown,
                time: _,
                inhibited: None,
                notify: None,
            } => {
                self.decided(&path, &handler, &series, format!("{service}/{command}"));
                self.fire(&path, handler, service, command, &series, cooldown)
            }
            Report::Ready { .. } | Report::LoadFailed { .. } | Report::Fatal { .. } => {}
        }
    }

    /// `status`: the handler decided `command` on `series`.
    fn decided(&self, path: &str, handler: &str, series: &str, command: String) {
        self.board.handler(
            path,
            handler,
            HandlerEvent::Decision {
                series: series.to_string(),
                command,
            },
        );
    }

    fn fire(
        self: &Arc<Self>,
        path: &str,
        handler: String,
        service: String,
        command: String,
        series: &str,
        own_cooldown: Option<f64>,
    ) {
        if self.stopped.load(Ordering::SeqCst) {
            info!("rule {handler} asked for {service}/{command} during shutdown; not run");
            return;
        }
        let services = self.services.get();
        let (svc, line) = match find_command(&services, &service, &command) {
            Ok(found) => found,
            Err(missing) => {
                if let Some(skipped) = admit(&self.failures, &handler) {
                    warn!(
                        "rule {handler} asked for {service}/{command} on {series}: {} in the config; ignored{}",
                        missing.message(&service, &command),
                        skipped_note(skipped)
                    );
                }
                return;
            }
        };
        let file = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let wanted = crate::task::CommandRef::new(service.as_str(), command.as_str());
        if let Some(pause) = self
            .pauses
            .as_ref()
            .and_then(|p| p.find(file.as_deref().or(Some("")), &wanted))
        {
            Stats::add(&self.stats.commands_paused, 1);
            self.board.handler(path, &handler, HandlerEvent::Suppressed);
            let until =
                crate::task::iso8601(std::time::UNIX_EPOCH + Duration::from_secs(pause.until));
            let outcome = format!("paused ({}; until {until}): not run", pause.reason);
            info!("rule {handler} on {series}: {wanted} {outcome}");
            self.record(
                Record::new("rule", &wanted.to_string(), &handler)
                    .on_series(series)
                    .outcome(&outcome),
            );
            return;
        }
        let (line, timeout) = (line.to_string(), svc.timeout.map(Duration::from_secs));
        // A handler's own `cooldown` is kept apart from the one every rule
        // shares, so another rule asking for the same command does not
        // silence it.
        let (cooldown, owner) = match own_cooldown {
            // (A cooldown too long for a Duration is for ever.)
            Some(seconds) => (
                Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX),
                Some(handler.as_str()),
            ),
            None => (
                svc.cooldown
                    .map_or(self.default_cooldown, Duration::from_secs),
                None,
            ),
        };
        let gate = self
            .cooldowns
            .lock()
            .map(|mut c| c.check(owner, &service, &command, cooldown, Instant::now()))
            .unwrap_or(Gate::Run);
        if let Gate::Suppressed {
            ago,
            cooldown,
            first,
        } = gate
        {
            Stats::add(&self.stats.commands_suppressed, 1);
            self.board.handler(path, &handler, HandlerEvent::Suppressed);
            let text = format!(
                "rule {handler}: {service}/{command} suppressed: it ran {:.0} s ago (cooldown {} s)",
                ago.as_secs_f64(),
                cooldown.as_secs()
            );
            if first {
                info!("{text}; further requests until then are only counted");
            } else {
                debug!("{text}");
            }
            return;
        }
        let task_id = self.next_task_id.fetch_add(1, Ordering::Relaxed);
        info!("rule {handler} on {series}: running {service}/{command} (task {task_id})");
        let me = Arc::clone(self);
        let series = series.to_string();
        let spawned = std::thread::Builder::new()
            .name("monitor-command".into())
            .spawn(move || {
                let started = Instant::now();
                let (code, message) = me.run(&handler, task_id, &service, &command, &line, timeout);
                me.record(
                    Record::new("rule", &format!("{service}/{command}"), &handler)
                        .task(task_id)
                        .on_series(&series)
                        .result(code, &message)
                        .took(started.elapsed()),
                );
            });
        if let Err(e) = spawned {
            error!("cannot start a thread for a recovery command: {e}");
        }
    }

    fn run(
        &self,
        handler: &str,
        task_id: u64,
        service: &str,
        command: &str,
        line: &str,
        timeout: Option<Duration>,
    ) -> (i64, String) {
        let ran = self.runner.run(service, command, line, timeout);
        let (code, message) = ran.summary(service, command);
        match &ran {
            Err(_) => {
                info!(
                    "rule {handler}: {service}/{command} (task {task_id}) not started: {message}"
                );
                return (code, message);
            }
            Ok(outcome) => {
                Stats::add(&self.stats.commands_run, 1);
                if outcome.ending == Ending::TimedOut {
                    Stats::add(&self.stats.commands_timed_out, 1);
                }
                if code != 0 {
                    Stats::add(&self.stats.commands_failed, 1);
                }
                info!(
                    "rule {handler}: {service}/{command} (task {task_id}) {}, code {code}",
                    outcome.describe()
                );
            }
        }
        if !self.stopped.load(Ordering::SeqCst) {
            let notification =
                result_notification(&self.hostname, handler, task_id, code, &message);
            if let Err(status) = (self.notify)(&notification) {
                error!("could not dispatch the result of task {task_id} (status {status})");
            }
        }
        (code, message)
    }
}

fn admit(throttle: &Mutex<Throttle>, key: &str) -> Option<u64> {
    throttle
        .lock()
        .map(|mut t| t.admit(key, Instant::now()))
        .unwrap_or(Some(0))
}

fn skipped_note(skipped: u64) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} similar lines suppressed since the last one)")
    }
}
