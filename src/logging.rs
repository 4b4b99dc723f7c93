//! Routes `tracing` events from the plugin to where the operator wants them:
//! collectd's own log by default (so collectd's `LogLevel` and log plugins
//! apply), or stdout / syslog as `LogDevice` in config.json asks.
//!
//! The device and level are atomics, switched once the configuration is
//! read; until then everything at info and above goes to collectd's log.

use crate::collectd::{LogLevel, plugin_log};
use crate::config::{LogDevice, LogLevelName};
use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

static DEVICE: AtomicU8 = AtomicU8::new(DEVICE_COLLECTD);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(LEVEL_INFO);

const DEVICE_COLLECTD: u8 = 0;
const DEVICE_STDOUT: u8 = 1;
const DEVICE_SYSLOG: u8 = 2;
/// collectd's log, and a file of the plugin's own beside it.
const DEVICE_ALSO_FILE: u8 = 3;

/// The file of [`DEVICE_ALSO_FILE`].
static FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// collectd's log plugins: one of them makes collectd's log go somewhere.
const LOG_PLUGINS: &[&str] = &["logfile", "syslog", "log_logstash", "write_log"];

/// Whether collectd's log goes nowhere when nothing listens on
/// `/dev/log`: the configuration (includes expanded) loads `syslog` and
/// no other log plugin. (With no log plugin at all collectd prints to its
/// standard error itself.)
pub fn logs_nowhere(root: &crate::config::ConfigItem) -> bool {
    let loaded: Vec<String> = root
        .children
        .iter()
        .filter(|i| i.key.eq_ignore_ascii_case("LoadPlugin"))
        .filter_map(|i| match i.values.first() {
            Some(crate::config::ConfigValue::String(s)) => Some(s.to_ascii_lowercase()),
            _ => None,
        })
        .filter(|name| LOG_PLUGINS.contains(&name.as_str()))
        .collect();
    loaded.iter().all(|n| n == "syslog") && !loaded.is_empty()
}

/// Sends the plugin's lines to `path` too (appended, mode 0600), beside
/// collectd's log.
pub fn also_to_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    *FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
    DEVICE.store(DEVICE_ALSO_FILE, Ordering::Relaxed);
    Ok(())
}

const LEVEL_ERROR: u8 = 1;
const LEVEL_WARN: u8 = 2;
const LEVEL_INFO: u8 = 3;
const LEVEL_DEBUG: u8 = 4;

/// Makes this library's `tracing` events reach collectd's log. Called once
/// from `module_register`; the subscriber is private to the plugin's copy of
/// `tracing`, so it does not interfere with anything else in collectd.
pub fn install_plugin_logger() {
    let subscriber = tracing_subscriber::registry().with(RouteLayer);
    // Fails only if already installed, which is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Applies `LogDevice` and `LogLevel` from the configuration.
pub fn configure(device: LogDevice, level: LogLevelName) {
    let device = match device {
        LogDevice::Collectd => DEVICE_COLLECTD,
        LogDevice::Stdout => DEVICE_STDOUT,
        LogDevice::Syslog => DEVICE_SYSLOG,
    };
    let level = match level {
        LogLevelName::Fatal | LogLevelName::Error => LEVEL_ERROR,
        LogLevelName::Warn => LEVEL_WARN,
        LogLevelName::Info => LEVEL_INFO,
        LogLevelName::Debug => LEVEL_DEBUG,
    };
    DEVICE.store(device, Ordering::Relaxed);
    MAX_LEVEL.store(level, Ordering::Relaxed);
}

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => LEVEL_ERROR,
        Level::WARN => LEVEL_WARN,
        Level::INFO => LEVEL_INFO,
        _ => LEVEL_DEBUG,
    }
}

struct RouteLayer;

impl<S: Subscriber> Layer<S> for RouteLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change after start-up: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = MessageText::default();
        event.record(&mut text);
        emit(event.metadata().level(), &text.0);
    }
}

/// The message first, then `key=value` for any other field.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn emit(level: &Level, message: &str) {
    let message = &*crate::collectd::loggable(message);
    match DEVICE.load(Ordering::Relaxed) {
        DEVICE_STDOUT => println!("[{}] monitor: {message}", level.as_str().to_lowercase()),
        DEVICE_SYSLOG if send_syslog(level, message) => {}
        device => {
            if device == DEVICE_ALSO_FILE {
                write_file(level, message);
            }
            let collectd_level = match *level {
                Level::ERROR => LogLevel::Error,
                Level::WARN => LogLevel::Warning,
                Level::INFO => LogLevel::Info,
                _ => LogLevel::Debug,
            };
            plugin_log(collectd_level, &format!("monitor: {message}"));
        }
    }
}

/// Appends one line to the file of [`also_to_file`].
fn write_file(level: &Level, message: &str) {
    use std::io::Write as _;
    let mut file = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(file) = file.as_mut() {
        let now = crate::task::iso8601(std::time::SystemTime::now());
        let _ = writeln!(
            file,
            "[{now}] [{}] monitor: {message}",
            level.as_str().to_lowercase()
        );
    }
}

/// Sends one line to the local syslog socket; false (so the line goes to
/// collectd's log instead) when there is no syslog daemon.
fn send_syslog(level: &Level, message: &str) -> bool {
    static SOCKET: Mutex<Option<UnixDatagram>> = Mutex::new(None);
    const FACILITY_DAEMON: u8 = 3;
    let severity = match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    };
    let line = format!(
        "<{}>collectd-monitor[{}]: {message}",
        FACILITY_DAEMON * 8 + severity,
        std::process::id()
    );
    let Ok(mut guard) = SOCKET.lock() else {
        return false;
    };
    for _ in 0..2 {
        if guard.is_none() {
            *guard = UnixDatagram::unbound()
                .and_then(|s| s.connect("/dev/log").map(|()| s))
                .ok();
        }
        match guard.as_ref().map(|s| s.send(line.as_bytes())) {
            Some(Ok(_)) => return true,
            Some(Err(_)) => *guard = None, // syslogd restarted: reconnect once
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigItem;

    fn loads(plugins: &[&str]) -> ConfigItem {
        ConfigItem::root(
            plugins
                .iter()
                .map(|p| ConfigItem::string("LoadPlugin", p, vec![]))
                .collect(),
        )
    }

    #[test]
    fn only_syslog_logs_nowhere_without_its_socket() {
        assert!(logs_nowhere(&loads(&["cpu", "syslog", "monitor"])));
        assert!(!logs_nowhere(&loads(&["syslog", "logfile"])));
        assert!(!logs_nowhere(&loads(&["cpu"])), "collectd prints to stderr");
    }
}
