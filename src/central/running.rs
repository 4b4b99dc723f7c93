//! Central rules at work inside collectd: their own queue and engine over
//! the value lists that prove their host, their own board (their rule
//! files in `status`, apart from the host's), the decisions' side
//! ([`Central`]), and a clock for requests the hosts never answer, the
//! log of unproven values and the announcement to other controllers.

use super::guards::GuardPolicy;
use super::origins::{Origin, Origins};
use super::responder::{Central, CentralConfig, CentralDecision};
use crate::collectd::ValueListRef;
use crate::config::{LiveServices, Settings};
use crate::events::{EventQueue, Notification};
use crate::local::{Engine, EngineConfig, NotificationSink, Responder, Stats};
use crate::pause::{PauseBook, Verbs};
use crate::sandbox::Report;
use crate::status::Board;
use crate::task::CommandRef;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::info;

/// Bytes of encoded events that may wait for central rules' engine.
const QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// How often the clock looks at requests, logs and announcements.
const TICK: Duration = Duration::from_millis(500);

/// The running central rules.
pub struct CentralRunning {
    queue: Arc<EventQueue>,
    central: Arc<Central>,
    stats: Arc<Stats>,
    engine: Mutex<Option<JoinHandle<()>>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
}

/// What starting central rules needs from the plugin.
pub struct CentralStart<'a> {
    pub settings: &'a Settings,
    /// This collectd's Hostname.
    pub hostname: &'a str,
    /// `StateDir`, absolute: the controller's pauses are kept there.
    pub state_dir: &'a std::path::Path,
    /// The plugin's board: `status` shows central rules from it.
    pub board: &'a Arc<Board>,
    /// How rule workers are started and limited, given central rules'
    /// directory and board.
    pub engine: &'a dyn Fn(std::path::PathBuf, Arc<Board>) -> EngineConfig,
    /// Where notifications go (collectd's dispatch).
    pub notify: fn() -> NotificationSink,
    /// The recovery command runner (central rules run none; their
    /// reports are accounted as a host's rules' are).
    pub runner: Arc<crate::actions::Runner>,
}

/// Why central rules did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("SigningKey: {0}")]
    Key(String),
    #[error("FleetValueOrigins: {0}")]
    Origins(String),
    #[error("FleetHostKeys: {0}")]
    HostKeys(String),
    #[error("{0}")]
    Settings(String),
    #[error("cannot start their threads: {0}")]
    Threads(std::io::Error),
}

/// The hosts and keys of a `FleetHostKeys` file (`hosts --keys` lines).
fn host_keys(path: &std::path::Path) -> Result<BTreeMap<String, Vec<u8>>, StartError> {
    let keys = crate::auth::TrustedKeys::load_hosts(path).map_err(StartError::HostKeys)?;
    Ok(keys
        .keys
        .into_iter()
        .map(|(host, k)| (host, k.public))
        .collect())
}

impl CentralRunning {
    /// Starts central rules when `FleetMonitorConfigDir` is set.
    pub fn start(start: CentralStart<'_>) -> Result<Option<CentralRunning>, StartError> {
        let s = start.settings;
        let Some(dir) = s.fleet_monitor_config_dir.clone() else {
            return Ok(None);
        };
        let key = match &s.signing_key {
            Some(path) => Some(Arc::new(
                crate::auth::SigningKey::read(path).map_err(|e| StartError::Key(e.to_string()))?,
            )),
            None => None,
        };
        let topic = |t: &Option<String>, name: &str| {
            t.clone()
                .ok_or_else(|| StartError::Settings(format!("{name} is not set")))
        };
        let config = CentralConfig {
            hostname: start.hostname.to_string(),
            command_topic: topic(&s.fleet_command_topic, "FleetCommandTopic")?,
            result_topic: topic(&s.fleet_result_topic, "FleetResultTopic")?,
            status_topic: s.fleet_status_topic.clone(),
            controller_topic: Some(s.fleet_controller_topic.clone()).filter(|t| !t.is_empty()),
            window: Duration::from_secs(s.fleet_task_window),
            timeout: Duration::from_secs(s.fleet_request_timeout),
            key,
            guards: GuardPolicy {
                max_in_flight: crate::amount::Amount::parse(&s.fleet_max_in_flight)
                    .map_err(StartError::Settings)?,
                error_budget: usize::try_from(s.fleet_error_budget).unwrap_or(usize::MAX),
                budget_window: Duration::from_secs(s.fleet_budget_window),
                host_cooldown: Duration::from_secs(s.fleet_host_cooldown),
            },
            origins: Origins::load(
                start.hostname,
                s.fleet_accept_unproven_values,
                s.fleet_value_origins.as_deref(),
            )
            .map_err(StartError::Origins)?,
            host_keys: s.fleet_host_keys.as_deref().map(host_keys).transpose()?,
            max_hosts: usize::try_from(s.fleet_max_hosts).unwrap_or(usize::MAX),
            rules_dir: dir.clone(),
        };
        let (pauses, problem) = PauseBook::open(
            start.state_dir.join("central-pauses.json"),
            Duration::from_secs(s.pause_default_duration),
            Duration::from_secs(s.pause_max_duration),
            Verbs::CENTRAL,
        );
        if let Some(problem) = problem {
            tracing::warn!("central: the controller's pauses not read, none in force: {problem}");
        }
        let board = Arc::new(Board::new(start.hostname));
        let central = Arc::new(Central::new(
            config,
            Arc::new(pauses),
            (start.notify)(),
            Arc::clone(&board),
        ));
        let stats = Arc::new(Stats::default());
        // Failures, prints and counts of central rule files, on their
        // board: accounted as a host's rules' are.
        let account = Arc::new(Responder::new(
            LiveServices::new(BTreeMap::new()),
            Duration::ZERO,
            start.runner,
            Arc::clone(&stats),
            start.hostname.to_string(),
            (start.notify)(),
            Arc::clone(&board),
        ));
        let queue = Arc::new(EventQueue::new(QUEUE_BYTES));
        let mut engine_config = (start.engine)(dir.clone(), Arc::clone(&board));
        engine_config.missing_seen_only = true;
        // Central files each want a few of a batch's events: fill frames.
        engine_config.hold_for = crate::local::CENTRAL_HOLD_FOR;
        let (engine_queue, engine_stats) = (Arc::clone(&queue), Arc::clone(&stats));
        let decide = Arc::clone(&central);
        let engine = std::thread::Builder::new()
            .name("monitor-central".into())
            .spawn(move || {
                let sink = Arc::new(move |file: &std::path::Path, report| match report {
                    Report::Fired {
                        handler,
                        service,
                        command,
                        series,
                        host,
                        time,
                        inhibited,
                        notify,
                        ..
                    } => decide.fire(
                        file,
                        CentralDecision {
                            handler: &handler,
                            command: CommandRef::new(service, command),
                            series: &series,
                            host: host.as_deref(),
                            time,
                            inhibited: inhibited.as_deref(),
                            notify: notify.as_deref(),
                        },
                    ),
                    other => account.handle(file, other),
                });
                Engine::start(engine_config, sink, engine_stats).run(&engine_queue)
            })
            .map_err(StartError::Threads)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let (clock, stop) = (Arc::clone(&central), Arc::clone(&stopping));
        let ticker = std::thread::Builder::new()
            .name("monitor-central-clock".into())
            .spawn(move || {
                // Parked rather than asleep: `stop` wakes it at once.
                while !stop.load(Ordering::SeqCst) {
                    std::thread::park_timeout(TICK);
                    if !stop.load(Ordering::SeqCst) {
                        clock.tick(Instant::now());
                    }
                }
            })
            .map_err(StartError::Threads)?;
        let running = CentralRunning {
            queue,
            central,
            stats,
            engine: Mutex::new(Some(engine)),
            ticker: Mutex::new(Some(ticker)),
            stopping,
        };
        running.show_in(start.board, board);
        info!(
            "central rules from {}: requests on {}",
            dir.display(),
            s.fleet_command_topic.as_deref().unwrap_or_default()
        );
        Ok(Some(running))
    }

    /// `status` on the plugin's board shows central rules: their files
    /// (from their own board), their counters, and the decisions' state.
    fn show_in(&self, board: &Arc<Board>, own: Arc<Board>) {
        let (central, queue, stats) = (
            Arc::clone(&self.central),
            Arc::clone(&self.queue),
            Arc::clone(&self.stats),
        );
        let controlled = Arc::clone(&self.central);
        board.set_central(
            Box::new(move || {
                let mut status = central.status();
                status.rule_files = own.rule_files();
                let mut counters = figures(&stats, &queue);
                counters.append(&mut status.counters);
                status.counters = counters;
                Some(status)
            }),
            Box::new(move |request| controlled.control(request)),
        );
    }

    /// The figures of central rules, for self-monitoring: the engine's
    /// and the queue's with their kinds, central rules' own as counters.
    pub fn figures(&self) -> Vec<(String, crate::events::Value)> {
        let value = |name: &str, n: f64| match name {
            "state_entries" => crate::events::Value::Gauge(n),
            _ => crate::events::Value::Derive(n as i64),
        };
        engine_figures(&self.stats, &self.queue)
            .into_iter()
            .map(|(name, v)| (name.to_string(), v))
            .chain(
                self.central
                    .counters()
                    .into_iter()
                    .map(|(name, n)| (value(&name, n), name))
                    .map(|(v, name)| (name, v)),
            )
            .collect()
    }

    /// Where the session hands central rules the hosts' messages, and
    /// where central rules send their requests.
    pub fn central(&self) -> &Arc<Central> {
        &self.central
    }

    /// A value list from collectd's write callback: queued for central
    /// rules when it proves its host.
    pub fn write(&self, values: &ValueListRef<'_>) {
        let host = values.host();
        let admitted = if values.has_meta(c"network:received") {
            let user = values.meta_string(c"network:username");
            let address = self
                .central
                .reads_addresses()
                .then(|| values.meta_string(c"network:ip_address"))
                .flatten()
                .and_then(|a| a.parse().ok());
            let origin = Origin::Network {
                user: user.as_deref(),
                address,
            };
            self.central.admit(origin, &host)
        } else {
            self.central.admit(Origin::Local, &host)
        };
        if admitted {
            self.queue
                .offer_with(|buf| crate::collectd::push_value_list(buf, values));
        }
    }

    /// A notification from collectd: queued when it proves its host.
    pub fn notification(&self, notification: &Notification) {
        let received = notification
            .meta
            .iter()
            .any(|(key, _)| key == "network:received");
        if self
            .central
            .admit_notification(received, &notification.host)
        {
            self.queue
                .offer_with(|buf| crate::events::batch::push_notification(buf, notification));
        }
    }

    /// A series that went silent: queued for central rules when its host
    /// is a known one (the engine then passes it on only for a series
    /// whose proven value lists it saw, see `EngineConfig::missing_seen_only`).
    pub fn missing(&self, missing: &crate::events::Missing) {
        if self.central.admit_missing(&missing.series.host) {
            self.queue.offer_with(|buf| {
                crate::events::batch::push_event(
                    buf,
                    &crate::events::Event::Missing(missing.clone()),
                )
            });
        }
    }

    /// Stops the engine and the clock.
    /// What central rules did, for the line the plugin logs as it stops
    /// (the local line counts only the local queue).
    pub fn summary(&self) -> String {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} value lists taken, {} dropped because the engine was behind, {} evaluations by central rule files, {} missed by a rule file's sandbox",
            self.queue.accepted(),
            self.queue.dropped(),
            get(&self.stats.evaluated),
            get(&self.stats.sandbox_dropped)
        )
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.queue.close();
        for thread in [&self.engine, &self.ticker] {
            if let Some(t) = thread.lock().ok().and_then(|mut t| t.take()) {
                t.thread().unpark();
                let _ = t.join();
            }
        }
    }
}

/// The queue's and the engine's figures that mean something for central
/// rules (they run no command).
fn engine_figures(stats: &Stats, queue: &EventQueue) -> Vec<crate::local::Figure> {
    stats
        .figures(queue.accepted(), queue.dropped(), queue.depth())
        .into_iter()
        .filter(|(name, _)| !name.starts_with("commands_"))
        .collect()
}

/// The same, as `status` shows them.
fn figures(stats: &Stats, queue: &EventQueue) -> Vec<(String, f64)> {
    engine_figures(stats, queue)
        .into_iter()
        .map(|(name, v)| (name.to_string(), v.as_f64()))
        .collect()
}
