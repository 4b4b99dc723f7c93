//! What the plugin does when collectd calls it, in one page: read the
//! configuration at init, turn every value list and notification into an
//! owned [`Event`] on a bounded queue, and let our own thread consume them.
//!
//! collectd -> `collectd` wrappers -> here -> [`EventQueue`] -> engine thread.

use crate::actions::{Runner, RunnerLimits};
use crate::collectd::{
    self, ConfigItem, Notification, Plugin, Severity, ValueListRef, dispatch_notification,
};
use crate::config::{self, Loaded, PluginBlock, Settings};
use crate::events::{self, Event, EventQueue, EventReceiver};
use crate::logging;
use crate::reconfig::Invocation;
use crate::remote::{Remote, RemoteSettings};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, error, info, warn};

/// How many events may wait for the engine before new ones are dropped.
const QUEUE_CAPACITY: usize = 65_536;

/// Builds the plugin object `module_register` registers.
pub(crate) fn create() -> Box<dyn Plugin> {
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
    queue: EventQueue,
    engine: Mutex<Option<JoinHandle<()>>>,
    remote: Mutex<Option<Remote>>,
}

impl Plugin for Monitor {
    fn config(&self, block: ConfigItem) {
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
            .and_then(|block| config::load(&block))
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
        logging::configure(loaded.settings.log_device, loaded.settings.log_level);
        for warning in &loaded.warnings {
            warn!("{warning}");
        }
        let (queue, receiver) = events::bounded(QUEUE_CAPACITY);
        let engine = std::thread::Builder::new()
            .name("monitor-engine".into())
            .spawn(move || run_engine(receiver))
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        announce(&loaded);
        let runner = Arc::new(Runner::new(runner_limits(&loaded.settings)));
        let remote = start_remote(&loaded.settings, runner, self.invocation.clone());
        let _ = self.running.set(Running {
            queue,
            engine: Mutex::new(Some(engine)),
            remote: Mutex::new(remote),
        });
        Ok(())
    }

    fn write(&self, values: &ValueListRef<'_>) {
        if let Some(running) = self.running.get() {
            running.queue.offer(Event::Metric(values.to_metric()));
        }
    }

    fn notification(&self, notification: Notification) {
        if let Some(running) = self.running.get() {
            running.queue.offer(Event::Notification(notification));
        }
    }

    fn shutdown(&self) {
        let Some(running) = self.running.get() else {
            return;
        };
        if let Some(mut remote) = running.remote.lock().ok().and_then(|mut r| r.take()) {
            remote.stop();
        }
        running.queue.close();
        if let Some(engine) = running.engine.lock().ok().and_then(|mut e| e.take()) {
            let _ = engine.join();
        }
        info!(
            "stopped: {} events handled, {} dropped because the engine was behind",
            running.queue.accepted(),
            running.queue.dropped()
        );
    }
}

/// The engine thread. Until the rule engine is wired in, it traces each
/// event at debug level, which is also how the tests observe the write path.
fn run_engine(receiver: EventReceiver) {
    while let Some(event) = receiver.recv() {
        debug!(
            "event {}",
            serde_json::to_string(&event).unwrap_or_else(|e| format!("<unserializable: {e}>"))
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
    // Until rules run inside collectd (they need the sandbox process first),
    // say plainly that the setting is accepted but not acted on.
    if let Some(dir) = &s.local_monitor_config_dir {
        info!(
            "LocalMonitorConfigDir {}: rules are not evaluated inside collectd yet (check them with `collectd-monitor rules test`); events are only traced at debug level",
            dir.display()
        );
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
fn start_remote(
    s: &Settings,
    runner: Arc<Runner>,
    invocation: Option<Invocation>,
) -> Option<Remote> {
    let hostname = collectd::hostname().unwrap_or_else(|| "localhost".into());
    let started = RemoteSettings::from_settings(s, &hostname).and_then(|remote| match remote {
        Some(mut remote) => {
            remote.replace.invocation = invocation;
            remote.replace.pid_file = collectd::global_option("PIDFile").map(Into::into);
            Remote::start(remote, Arc::new(s.services.clone()), runner).map(Some)
        }
        None => Ok(None),
    });
    started.unwrap_or_else(|e| {
        report_config_error(&format!("remote commands disabled: {e}"));
        None
    })
}

/// A broken configuration is logged and also sent as a FAILURE notification,
/// so it is visible wherever the host's notifications are collected.
fn report_config_error(message: &str) {
    error!("{message}");
    let notification = Notification {
        severity: Severity::Failure,
        time: 0.0,
        message: message.to_string(),
        host: collectd::hostname().unwrap_or_default(),
        plugin: "monitor".into(),
        plugin_instance: String::new(),
        type_: "config".into(),
        type_instance: String::new(),
        meta: vec![],
    };
    if let Err(status) = dispatch_notification(&notification) {
        error!("could not dispatch the configuration-error notification (status {status})");
    }
}
