//! config.json changes picked up without restarting collectd. `Services`
//! (the recovery commands) take effect at once, for local rules and remote
//! commands alike; every other key is read at start only, and a change to
//! one is logged as needing a restart. A changed file that does not load is
//! logged and the running configuration stays.

use super::{PluginBlock, Service, Settings, load};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The services map in force, shared by everyone who runs commands.
#[derive(Debug, Default)]
pub struct LiveServices(RwLock<Arc<BTreeMap<String, Service>>>);

impl LiveServices {
    /// The Services config.json gave at start.
    pub fn new(services: BTreeMap<String, Service>) -> Arc<LiveServices> {
        Arc::new(LiveServices(RwLock::new(Arc::new(services))))
    }

    /// The current map (a cheap snapshot: later replacements do not change it).
    pub fn get(&self) -> Arc<BTreeMap<String, Service>> {
        self.0.read().map(|s| Arc::clone(&s)).unwrap_or_default()
    }

    fn replace(&self, services: BTreeMap<String, Service>) {
        if let Ok(mut s) = self.0.write() {
            *s = Arc::new(services);
        }
    }
}

/// What a check found.
#[derive(Debug, PartialEq)]
pub enum Reloaded {
    /// Services replaced; how many there are now.
    Services(usize),
    /// Keys other than `Services` changed; they need a restart.
    NeedsRestart,
    /// The file changed but does not load.
    Invalid(String),
}

/// Watches the config.json of a `<Plugin monitor>` block.
pub struct ConfigReload {
    block: PluginBlock,
    stamp: Option<(u64, i64, i64, u64)>,
    current: Settings,
    live: Arc<LiveServices>,
}

impl ConfigReload {
    /// `current`: the settings the plugin started with.
    pub fn new(block: PluginBlock, current: Settings, live: Arc<LiveServices>) -> ConfigReload {
        let stamp = block.monitor_config_path.as_deref().and_then(stamp);
        ConfigReload {
            block,
            stamp,
            current,
            live,
        }
    }

    /// Re-reads config.json if it changed on disk since the last look.
    pub fn check(&mut self) -> Vec<Reloaded> {
        let Some(path) = &self.block.monitor_config_path else {
            return Vec::new();
        };
        let now = stamp(path);
        if now == self.stamp {
            return Vec::new();
        }
        self.stamp = now;
        match load(&self.block) {
            Ok(loaded) => self.apply(loaded.settings),
            Err(e) => vec![Reloaded::Invalid(e.to_string())],
        }
    }

    fn apply(&mut self, new: Settings) -> Vec<Reloaded> {
        let mut out = Vec::new();
        if new.services != self.current.services {
            self.live.replace(new.services.clone());
            out.push(Reloaded::Services(new.services.len()));
        }
        let mut rest = self.current.clone();
        rest.services = new.services.clone();
        if rest != new {
            out.push(Reloaded::NeedsRestart);
        }
        // What is in force: new services, the old value of everything else.
        self.current.services = new.services;
        out
    }
}

/// Size, modification time and inode: enough to notice an edit or a
/// replacement without reading the file.
fn stamp(path: &std::path::Path) -> Option<(u64, i64, i64, u64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// A thread that looks at config.json every interval, on its own clock
/// (not the rule engine's), until stopped.
pub struct Watcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts checking `reload` every `interval`, handing what each check
    /// found to `report`.
    pub fn start(
        mut reload: ConfigReload,
        interval: Duration,
        mut report: impl FnMut(Vec<Reloaded>) + Send + 'static,
    ) -> std::io::Result<Watcher> {
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("monitor-config".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    report(reload.check());
                }
            })?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ends the thread (at once, also in the middle of a wait).
    pub fn stop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_change_live_other_keys_need_a_restart_and_bad_files_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let write = |text: &str| {
            // A different length, so the change is seen within one second.
            std::fs::write(&path, text).unwrap();
        };
        write(r#"{"Services": {"a": {"commands": {"x": "true"}}}}"#);
        let block = PluginBlock {
            monitor_config_path: Some(path.clone()),
            settings: Default::default(),
        };
        let current = load(&block).unwrap().settings;
        let live = LiveServices::new(current.services.clone());
        let mut reload = ConfigReload::new(block, current, Arc::clone(&live));
        assert!(reload.check().is_empty());

        write(
            r#"{"Services": {"a": {"commands": {"x": "true"}}, "b": {"commands": {"y": "false"}}}}"#,
        );
        assert_eq!(reload.check(), vec![Reloaded::Services(2)]);
        assert!(live.get().contains_key("b"));

        write(
            r#"{"Services": {"a": {"commands": {"x": "true"}}, "b": {"commands": {"y": "false"}}}, "QoS": 1}"#,
        );
        assert_eq!(reload.check(), vec![Reloaded::NeedsRestart]);

        write(r#"{"Services": "#);
        assert!(matches!(reload.check()[..], [Reloaded::Invalid(_)]));
        assert!(live.get().contains_key("b"), "the running services stay");
    }
}
