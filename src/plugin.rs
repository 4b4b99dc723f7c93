//! What the plugin does when collectd calls it, in one page: read the
//! configuration at init, turn every value list and notification into an
//! owned [`Event`] on a bounded queue, and let our own thread consume them.
//!
//! collectd -> `collectd` wrappers -> here -> [`EventQueue`] -> engine thread.

use crate::actions::{Runner, RunnerLimits};
use crate::central::{Central, CentralRunning, CentralStart};
use crate::collectd::{
    self, Plugin, ValueListRef, dispatch_notification, dispatch_values, push_value_list,
};
use crate::config::{
    self, ConfigItem, ConfigReload, LiveServices, Loaded, PluginBlock, Reloaded, Settings,
};
use crate::events::batch as wire;
use crate::events::{EventQueue, Notification, Severity};
use crate::local::{Engine, EngineConfig, Responder, Stats};
use crate::logging;
use crate::lua::VmLimits;
use crate::reconfig::Invocation;
use crate::remote::{Remote, RemoteSettings};
use crate::sandbox::RestartPolicy;
use crate::status::{Board, ControlServer, RunningCommand};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, error, info, warn};

/// Bytes of encoded events that may wait for the engine before new ones
/// are dropped (a value list takes about 100).
const QUEUE_BYTES: usize = 8 * 1024 * 1024;

// collectd's entry point, for the plugin `create` builds.
crate::collectd::export_plugin!(create);

/// The plugin collectd's callbacks drive, built when collectd loads us.
fn create() -> Box<dyn Plugin> {
    logging::install_plugin_logger();
    Box::new(Monitor {
        // Now, before collectd changes to its BaseDir.
        invocation: Invocation::of_this_process(),
        ..Monitor::default()
    })
}

#[derive(Default)]
struct Monitor {
    /// How collectd was started, for restarting it after a config push.
    invocation: Option<Invocation>,
    /// Children of every `<Plugin monitor>` block, in order, until init.
    blocks: Mutex<Vec<ConfigItem>>,
    /// Set once init succeeded; absent means disabled.
    running: OnceLock<Running>,
}

struct Running {
    queue: Arc<EventQueue>,
    /// A `LocalMonitorConfigDir` is set. Without one, events are queued
    /// only for the debug trace, and not at all when that is off.
    rules: bool,
    stats: Arc<Stats>,
    responder: Arc<Responder>,
    engine: Mutex<Option<JoinHandle<()>>>,
    remote: Mutex<Option<Remote>>,
    /// Looks at config.json for new Services (`RuleReloadInterval`).
    config_watcher: Mutex<Option<config::Watcher>>,
    /// Answers `collectd-monitor status`.
    control: Mutex<Option<ControlServer>>,
    /// Central rules (`FleetMonitorConfigDir`).
    central: Option<CentralRunning>,
    /// Written to the end when collectd stops.
    history: Option<Arc<crate::history::History>>,
}

/// `StateDir`, absolute: relative to collectd's `BaseDir`, the working
/// directory once collectd has read its configuration.
fn state_dir(s: &Settings) -> std::path::PathBuf {
    std::env::current_dir()
        .map(|cwd| cwd.join(&s.state_dir))
        .unwrap_or_else(|_| s.state_dir.clone())
}

/// The maintenance pauses, kept in `StateDir/pauses.json`, answered on
/// the control socket and shown in `status`.
fn open_pauses(
    s: &Settings,
    board: &Arc<Board>,
    history: Option<Arc<crate::history::History>>,
) -> Arc<crate::pause::PauseBook> {
    let dir = state_dir(s);
    let (book, problem) = crate::pause::PauseBook::open(
        dir.join("pauses.json"),
        Duration::from_secs(s.pause_default_duration),
        Duration::from_secs(s.pause_max_duration),
        crate::pause::Verbs::HOST,
    );
    if let Some(problem) = problem {
        warn!("maintenance pauses not read, none in force: {problem}");
    }
    let book = Arc::new(book);
    let (listed, controlled) = (Arc::clone(&book), Arc::clone(&book));
    board.set_pauses(
        Box::new(move || {
            listed
                .list()
                .iter()
                .map(crate::pause::Pause::status)
                .collect()
        }),
        Box::new(move |request| {
            let answer = controlled.control(request)?;
            if let Some(history) = &history {
                record_local_pause(history, request, &answer);
            }
            Some(answer)
        }),
    );
    book
}

/// A pause or resume asked for on the control socket, in the history as
/// one asked for over MQTT is (a refused one too, with its reason).
fn record_local_pause(history: &crate::history::History, request: &str, answer: &str) {
    let (verb, change) = request.split_once(' ').unwrap_or((request, "{}"));
    let (code, outcome) = match answer.strip_prefix("error: ") {
        Some(why) => (crate::task::code::INVALID_REQUEST, why),
        None => (0, answer),
    };
    history.record(
        crate::history::Record::new(verb, change, "an operator (control socket)")
            .result(code, outcome),
    );
}

/// The history of repairs and requests (`StateDir/history.redb`),
/// answered on the control socket; `None` (logged) when it cannot be
/// opened: repairs go on without it.
fn open_history(s: &Settings, board: &Arc<Board>) -> Option<Arc<crate::history::History>> {
    let dir = state_dir(s);
    let bounds = crate::history::Bounds {
        max_records: s.history_max_records,
        max_age: Duration::from_secs(s.history_max_age),
    };
    match crate::history::History::open(&dir, bounds) {
        Ok((history, note)) => {
            if let Some(note) = note {
                report_failure("history", &note);
            }
            let answering = Arc::clone(&history);
            board.add_control(Box::new(move |request| answering.control(request)));
            Some(history)
        }
        Err(e) => {
            error!("history: not kept: {e}");
            None
        }
    }
}

/// Where pushed rule sets go, when this host takes them (`AllowRulesPush`
/// and a `LocalMonitorConfigDir`).
fn rule_places(
    s: &Settings,
    config_json: Option<std::path::PathBuf>,
) -> Option<crate::deploy::Places> {
    if !s.allow_rules_push {
        return None;
    }
    Some(crate::deploy::Places {
        // The directory exactly as the engine names its files.
        rules_dir: s.local_monitor_config_dir.clone()?,
        config_json,
        state_dir: state_dir(s),
        helper: s.helper_path.clone(),
        sandbox_user: Some(s.sandbox_user.clone()).filter(|u| !u.is_empty()),
    })
}

/// What carries out rule pushes, when this host takes them.
fn deployer_for(
    s: &Settings,
    config_json: Option<std::path::PathBuf>,
    board: &Arc<Board>,
    history: Option<Arc<crate::history::History>>,
) -> Option<Arc<crate::deploy::Deployer>> {
    Some(Arc::new(crate::deploy::Deployer::new(
        rule_places(s, config_json)?,
        Arc::clone(board),
        Duration::from_secs(s.rule_reload_interval.max(1)),
        Duration::from_secs(s.rules_grace_period),
        history,
    )))
}

/// collectd's Hostname, or `localhost`.
fn hostname_of_this_host() -> String {
    collectd::hostname().unwrap_or_else(|| "localhost".into())
}

/// Starts central rules when `FleetMonitorConfigDir` is set. A setting
/// they cannot start with disables them, loudly.
fn start_central(s: &Settings, board: &Arc<Board>, runner: &Arc<Runner>) -> Option<CentralRunning> {
    let state_dir = state_dir(s);
    let started = CentralRunning::start(CentralStart {
        settings: s,
        hostname: &hostname_of_this_host(),
        state_dir: &state_dir,
        board,
        engine: &|dir, board| engine_config(s, Some(dir), board),
        notify: || Box::new(collectd::dispatch_notification),
        runner: Arc::clone(runner),
    });
    started.unwrap_or_else(|e| {
        report_config_error(&format!("central rules disabled: {e}"));
        None
    })
}

impl Plugin for Monitor {
    fn config(&self, block: ConfigItem) {
        if let Some(request) = block
            .children
            .iter()
            .find(|c| c.key.eq_ignore_ascii_case(config::CHECK_KEY))
        {
            check_mode(request);
        }
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.extend(block.children);
        }
    }

    fn init(&self) -> Result<(), String> {
        let items = self
            .blocks
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default();
        let loaded = match PluginBlock::from_items(&items)
            .map_err(config::ConfigError::from)
            .and_then(|block| config::load(&block).map(|loaded| (block, loaded)))
        {
            Ok(loaded) => loaded,
            Err(e) => {
                report_config_error(&format!(
                    "configuration error, plugin disabled until fixed: {e}"
                ));
                // Returning an error would make collectd unload us; staying
                // registered but idle keeps collectd's own behaviour intact.
                return Ok(());
            }
        };
        let (block, loaded) = loaded;
        logging::configure(loaded.settings.log_device, loaded.settings.log_level);
        log_somewhere(&loaded.settings, self.invocation.as_ref());
        for warning in &loaded.warnings {
            warn!("{warning}");
        }
        // A rule push a crash interrupted is finished or undone before
        // the engine reads the rule directory.
        if let Some(done) = rule_places(&loaded.settings, loaded.config_path.clone())
            .and_then(|places| crate::deploy::recover(&places))
        {
            warn!("rules: {done}");
        }
        let queue = Arc::new(EventQueue::new(QUEUE_BYTES));
        let engine_queue = Arc::clone(&queue);
        announce(&loaded);
        let runner = Arc::new(Runner::new(runner_limits(&loaded.settings)));
        let stats = Arc::new(Stats::default());
        let services = LiveServices::new(loaded.settings.services.clone());
        let hostname = hostname_of_this_host();
        let board = Arc::new(Board::new(&hostname));
        board.set_sources(
            {
                let (stats, queue) = (Arc::clone(&stats), Arc::clone(&queue));
                Box::new(move || {
                    stats
                        .figures(queue.accepted(), queue.dropped(), queue.depth())
                        .into_iter()
                        .map(|(name, v)| (name.to_string(), v.as_f64()))
                        .collect()
                })
            },
            {
                let runner = Arc::clone(&runner);
                Box::new(move || {
                    runner
                        .running()
                        .into_iter()
                        .map(|(c, since)| RunningCommand {
                            service: c.service,
                            command: c.command,
                            since: crate::task::iso8601(since),
                        })
                        .collect()
                })
            },
        );
        let control = start_control(&loaded.settings, &board);
        let history = open_history(&loaded.settings, &board);
        let pauses = open_pauses(&loaded.settings, &board, history.clone());
        let responder = Arc::new(
            Responder::new(
                Arc::clone(&services),
                Duration::from_secs(loaded.settings.command_cooldown),
                Arc::clone(&runner),
                Arc::clone(&stats),
                hostname,
                Box::new(collectd::dispatch_notification),
                Arc::clone(&board),
            )
            .pausing(Arc::clone(&pauses))
            .recording(history.clone()),
        );
        let reload = ConfigReload::new(block, loaded.settings.clone(), Arc::clone(&services));
        let config_watcher = match reload_interval(&loaded.settings) {
            Some(every) => Some(
                config::Watcher::start(reload, every, log_reload)
                    .map_err(|e| format!("cannot start the config.json watcher: {e}"))?,
            ),
            None => None,
        };
        let central = start_central(&loaded.settings, &board, &runner);
        let engine_config = engine_config(
            &loaded.settings,
            loaded.settings.local_monitor_config_dir.clone(),
            Arc::clone(&board),
        );
        let engine_stats = Arc::clone(&stats);
        let engine_responder = Arc::clone(&responder);
        let engine = std::thread::Builder::new()
            .name("monitor-engine".into())
            .spawn(move || {
                let sink = Arc::new(move |file: &std::path::Path, report| {
                    engine_responder.handle(file, report)
                });
                Engine::start(engine_config, sink, engine_stats).run(&engine_queue)
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        let remote = start_remote(
            &loaded.settings,
            services,
            runner,
            RunningConfig {
                invocation: self.invocation.clone(),
                block: items,
                config_json: loaded.config_path.clone(),
            },
            &board,
            central.as_ref().map(|c| Arc::clone(c.central())),
            (pauses, history.clone()),
        );
        if let (Some(c), Some(r)) = (&central, &remote) {
            c.central().connect(r.requests());
        }
        let _ = self.running.set(Running {
            queue,
            rules: loaded.settings.local_monitor_config_dir.is_some(),
            stats,
            responder,
            engine: Mutex::new(Some(engine)),
            remote: Mutex::new(remote),
            control: Mutex::new(control),
            config_watcher: Mutex::new(config_watcher),
            central,
            history,
        });
        Ok(())
    }

    fn write(&self, values: &ValueListRef<'_>) {
        let Some(running) = self.running.get() else {
            return;
        };
        if running.wants_events() {
            running.queue.offer_with(|buf| push_value_list(buf, values));
        }
        if let Some(central) = &running.central {
            central.write(values);
        }
    }

    fn notification(&self, notification: Notification) {
        let Some(running) = self.running.get() else {
            return;
        };
        if running.wants_events() {
            running
                .queue
                .offer_with(|buf| wire::push_notification(buf, &notification));
        }
        if let Some(central) = &running.central {
            central.notification(&notification);
        }
    }

    fn missing(&self, missing: crate::events::Missing) {
        let Some(running) = self.running.get() else {
            return;
        };
        let event = crate::events::Event::Missing(missing);
        if running.wants_events() {
            running
                .queue
                .offer_with(|buf| wire::push_event(buf, &event));
        }
        if let (Some(central), crate::events::Event::Missing(missing)) = (&running.central, &event)
        {
            central.missing(missing);
        }
    }

    fn read(&self) {
        let Some(running) = self.running.get() else {
            return;
        };
        let (received, dropped) = (running.queue.accepted(), running.queue.dropped());
        let figures = running
            .stats
            .figures(received, dropped, running.queue.depth());
        for (type_instance, value) in figures {
            let type_ = value.ds_type().as_str();
            if let Err(status) = dispatch_values("monitor", "", type_, type_instance, &[value]) {
                debug!("could not dispatch monitor/{type_}-{type_instance} (status {status})");
            }
        }
        // Central rules' figures, as `monitor-central/...`.
        if let Some(central) = &running.central {
            for (type_instance, value) in central.figures() {
                let type_ = value.ds_type().as_str();
                let _ = dispatch_values("monitor", "central", type_, &type_instance, &[value]);
            }
        }
    }

    fn shutdown(&self) {
        let Some(running) = self.running.get() else {
            return;
        };
        // Nothing answers for a command once the plugin is gone: end them
        // first (their results, "killed by signal", still go out while the
        // MQTT session drains below).
        let ended = crate::actions::stop_all(Duration::from_secs(2));
        if ended > 0 {
            warn!("{ended} recovery command(s) still running were ended because collectd stops");
        }
        if let Some(mut remote) = running.remote.lock().ok().and_then(|mut r| r.take()) {
            remote.stop();
        }
        if let Some(mut watcher) = running
            .config_watcher
            .lock()
            .ok()
            .and_then(|mut w| w.take())
        {
            watcher.stop();
        }
        running.responder.stop();
        if let Some(central) = &running.central {
            central.stop();
            info!("central: stopped: {}", central.summary());
        }
        drop(running.control.lock().ok().and_then(|mut c| c.take()));
        running.queue.close();
        if let Some(engine) = running.engine.lock().ok().and_then(|mut e| e.take()) {
            let _ = engine.join();
        }
        if let Some(history) = &running.history
            && !history.flush(Duration::from_secs(2))
        {
            warn!("history: the last records may not have reached the disk");
        }
        let stats = &running.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        info!(
            "stopped: {} events handled, {} dropped because the engine was behind, {} evaluations by rule files, {} missed by a rule file's sandbox",
            running.queue.accepted(),
            running.queue.dropped(),
            get(&stats.evaluated),
            get(&stats.sandbox_dropped)
        );
    }
}

fn announce(loaded: &Loaded) {
    let s = &loaded.settings;
    let commands: usize = s.services.values().map(|svc| svc.commands.len()).sum();
    info!(
        "collectd-monitor {} ready: config {}, {} services with {} recovery commands",
        env!("CARGO_PKG_VERSION"),
        loaded.config_path.as_ref().map_or_else(
            || "from collectd.conf only".to_string(),
            |p| p.display().to_string()
        ),
        s.services.len(),
        commands
    );
    match &s.local_monitor_config_dir {
        Some(dir) => info!(
            "local monitoring: rule files from {} (each in its own sandbox: {} MiB, {} ms, {} fuel per call; cooldown {} s)",
            dir.display(),
            s.rule_memory_limit,
            s.rule_timeout,
            s.rule_fuel,
            s.command_cooldown
        ),
        None => info!("local monitoring off: no LocalMonitorConfigDir"),
    }
}

impl Running {
    /// Whether collectd's callbacks should hand events over at all.
    fn wants_events(&self) -> bool {
        self.rules || tracing::enabled!(tracing::Level::DEBUG)
    }
}

/// The engine's settings: where the rules are, how workers are started,
/// limited and restarted.
/// How often rule files and config.json are looked at again; `None`: never.
fn reload_interval(s: &Settings) -> Option<Duration> {
    (s.rule_reload_interval > 0).then(|| Duration::from_secs(s.rule_reload_interval))
}

fn engine_config(s: &Settings, dir: Option<std::path::PathBuf>, board: Arc<Board>) -> EngineConfig {
    let (fuel, memory, timeout) = (s.rule_fuel, s.rule_memory_limit, s.rule_timeout);
    let per_file = s.rule_files.clone();
    EngineConfig {
        dir,
        missing_seen_only: false,
        hold_for: Duration::ZERO,
        program: s.helper_path.clone(),
        policy: RestartPolicy {
            crash_limit: usize::try_from(s.rule_crash_limit).unwrap_or(usize::MAX),
            ..RestartPolicy::default()
        },
        reload_interval: reload_interval(s),
        limits: Box::new(move |path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let own = name
                .and_then(|n| per_file.get(&n))
                .cloned()
                .unwrap_or_default();
            VmLimits::from_units(
                own.fuel.unwrap_or(fuel),
                own.memory_limit.unwrap_or(memory),
                own.timeout.unwrap_or(timeout),
            )
        }),
        board,
        user: Some(s.sandbox_user.clone()).filter(|u| !u.is_empty()),
    }
}

/// The running collectd.conf as collectd read it (includes expanded).
fn running_config(invocation: &crate::reconfig::Invocation) -> Result<ConfigItem, String> {
    let parse = |p: &std::path::Path| collectd::parse_config_file(p);
    collectd::parse_config_file(&invocation.config)
        .and_then(|tree| crate::reconfig::expand_as_collectd(tree, &parse))
}

/// When collectd's only log plugin is `syslog` and nothing listens on
/// `/dev/log` (a container), collectd's log goes nowhere: the plugin's
/// lines then also go to `StateDir/monitor.log`, and collectd's log says
/// so (for whoever looks there later).
fn log_somewhere(settings: &Settings, invocation: Option<&crate::reconfig::Invocation>) {
    // The tests name a socket that is not there.
    let dev_log = std::env::var_os("COLLECTD_MONITOR_TEST_DEV_LOG")
        .map_or_else(|| std::path::PathBuf::from("/dev/log"), Into::into);
    if settings.log_device != crate::config::LogDevice::Collectd || dev_log.exists() {
        return;
    }
    let Some(tree) = invocation.and_then(|i| running_config(i).ok()) else {
        return;
    };
    if !logging::logs_nowhere(&tree) {
        return;
    }
    let path = state_dir(settings).join("monitor.log");
    match logging::also_to_file(&path) {
        Ok(()) => warn!(
            "collectd logs only to syslog and nothing listens on /dev/log: this plugin's lines also go to {}",
            path.display()
        ),
        Err(e) => warn!("collectd's log goes nowhere, and {}: {e}", path.display()),
    }
}

/// What the running collectd.conf has collectd write (its logfile, ...),
/// read with its includes as collectd read it: a push may keep writing
/// those. Nothing when the file cannot be read (the push policy then
/// allows only its writable directories).
fn running_written_paths(
    invocation: Option<&crate::reconfig::Invocation>,
    base_dir: Option<&std::path::Path>,
) -> Vec<std::path::PathBuf> {
    let Some(invocation) = invocation else {
        return Vec::new();
    };
    match running_config(invocation) {
        Ok(tree) => crate::reconfig::written_paths(
            &tree,
            base_dir.unwrap_or_else(|| std::path::Path::new("/")),
        ),
        Err(e) => {
            warn!(
                "collectd.conf pushes: what the running config writes is not known ({e}); only PushWritableDirs may be written"
            );
            Vec::new()
        }
    }
}

/// `config check` of a collectd.conf started this collectd only to have
/// collectd's parser read the file: report what it found of our block and
/// end the process before any plugin starts.
fn check_mode(request: &ConfigItem) -> ! {
    let strings: Vec<&str> = request
        .values
        .iter()
        .filter_map(|v| match v {
            config::ConfigValue::String(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let code = match strings.as_slice() {
        [file, report_path] => {
            let parse = |p: &std::path::Path| collectd::parse_config_file(p);
            let report = match collectd::parse_config_file(std::path::Path::new(file)) {
                // What collectd reads: the file with its includes.
                Ok(tree) => match crate::reconfig::expand_as_collectd(tree.clone(), &parse) {
                    Ok(whole) => config::BlockReport::of(&whole),
                    Err(why) => config::BlockReport {
                        include_error: Some(why),
                        ..config::BlockReport::of(&tree)
                    },
                },
                Err(e) => config::BlockReport {
                    parse_error: Some(e),
                    ..Default::default()
                },
            };
            let written = serde_json::to_vec(&report)
                .map_err(|e| e.to_string())
                .and_then(|json| std::fs::write(report_path, json).map_err(|e| e.to_string()));
            match written {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{report_path}: {e}");
                    1
                }
            }
        }
        _ => {
            eprintln!(
                "{} takes the file to check and the report's path",
                config::CHECK_KEY
            );
            2
        }
    };
    std::process::exit(code)
}

/// Starts the control socket `status` asks (`ControlSocket`, default
/// `StateDir/control.sock`; `""` turns it off). A failure only loses the
/// status view, loudly.
fn start_control(s: &Settings, board: &Arc<Board>) -> Option<ControlServer> {
    let path = match &s.control_socket {
        Some(p) if p.as_os_str().is_empty() => return None,
        Some(p) => p.clone(),
        None => s.state_dir.join("control.sock"),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    match ControlServer::start(&path, Arc::clone(board)) {
        Ok(server) => {
            info!(
                "control socket for `collectd-monitor status`: {}",
                path.display()
            );
            Some(server)
        }
        Err(e) => {
            warn!("no control socket, `collectd-monitor status` will not answer: {e}");
            None
        }
    }
}

/// What a look at config.json found, in the log.
fn log_reload(found: Vec<Reloaded>) {
    for r in found {
        match r {
            Reloaded::Services(n) => {
                info!("config.json changed: Services reloaded ({n} services)")
            }
            Reloaded::NeedsRestart => warn!(
                "config.json changed: settings other than Services take effect after a collectd restart"
            ),
            Reloaded::Invalid(e) => error!(
                "config.json changed but does not load; the running configuration stays: {e}"
            ),
        }
    }
}

fn runner_limits(s: &Settings) -> RunnerLimits {
    RunnerLimits {
        max_concurrent: usize::try_from(s.max_concurrent_commands).unwrap_or(usize::MAX),
        timeout: Duration::from_secs(s.command_timeout),
        output_cap: usize::try_from(s.command_output_limit).unwrap_or(usize::MAX),
        capture_stderr: false,
    }
}

/// Starts the MQTT thread when `Host` is set. A remote configuration error
/// disables remote commands only, loudly; local monitoring goes on.
/// What this collectd runs with: how it was started, this plugin's block,
/// and its config.json; a pushed config is held to them.
struct RunningConfig {
    invocation: Option<Invocation>,
    block: Vec<crate::config::ConfigItem>,
    config_json: Option<std::path::PathBuf>,
}

fn start_remote(
    s: &Settings,
    services: Arc<LiveServices>,
    runner: Arc<Runner>,
    RunningConfig {
        invocation,
        block,
        config_json,
    }: RunningConfig,
    board: &Arc<Board>,
    central: Option<Arc<Central>>,
    (pauses, history): (
        Arc<crate::pause::PauseBook>,
        Option<Arc<crate::history::History>>,
    ),
) -> Option<Remote> {
    let hostname = hostname_of_this_host();
    let started = RemoteSettings::from_settings(s, &hostname).and_then(|remote| match remote {
        Some(mut remote) => {
            remote.replace.invocation = invocation;
            remote.replace.pid_file = collectd::global_option("PIDFile").map(Into::into);
            remote.fleet = central.map(|c| crate::remote::FleetLink {
                filters: c.filters(),
                on_message: Arc::new(move |topic: &str, payload: &[u8], retained: bool| {
                    c.message(topic, payload, retained)
                }),
            });
            remote.pauses = Some(pauses);
            remote.deployer = deployer_for(s, config_json.clone(), board, history.clone());
            remote.history = history;
            let policy = &mut remote.replace.policy;
            policy.running_block = Some(block);
            let running = &mut policy.running;
            running.base_dir = collectd::global_option("BaseDir")
                .map(|d| invocation_dir(remote.replace.invocation.as_ref()).join(d));
            running.pid_file = remote.replace.pid_file.clone();
            running.written = running_written_paths(
                remote.replace.invocation.as_ref(),
                running.base_dir.as_deref(),
            );
            running.protected.extend(config_json.clone());
            running
                .protected
                .extend(remote.replace.invocation.as_ref().map(|i| i.config.clone()));
            policy.writable_dirs.extend(running.base_dir.clone());
            remote.board = Some(Arc::clone(board));
            Remote::start(remote, services, runner).map(Some)
        }
        None => Ok(None),
    });
    started.unwrap_or_else(|e| {
        report_config_error(&format!("remote commands disabled: {e}"));
        None
    })
}

/// Where relative paths of collectd's command line start.
fn invocation_dir(invocation: Option<&Invocation>) -> std::path::PathBuf {
    invocation.map_or_else(|| "/".into(), |i| i.cwd.clone())
}

/// A broken configuration is logged and also sent as a FAILURE notification,
/// so it is visible wherever the host's notifications are collected.
fn report_config_error(message: &str) {
    report_failure("config", message);
}

/// Logs `message` as an error and sends it as a FAILURE notification of
/// plugin `monitor`, type `kind`.
fn report_failure(kind: &str, message: &str) {
    error!("{message}");
    let notification = Notification {
        severity: Severity::Failure,
        time: 0.0,
        message: message.to_string(),
        host: collectd::hostname().unwrap_or_default(),
        plugin: "monitor".into(),
        plugin_instance: String::new(),
        type_: kind.into(),
        type_instance: String::new(),
        meta: vec![],
    };
    if let Err(status) = dispatch_notification(&notification) {
        error!("could not dispatch the {kind} notification (status {status})");
    }
}
