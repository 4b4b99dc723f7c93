//! The plugin's threads record what happens here (a few map updates, no
//! I/O); the control socket takes a snapshot of it.

use super::{
    CentralStatus, FileStatus, HandlerStatus, Occurrence, PauseStatus, RemoteStatus,
    RunningCommand, Status,
};
use crate::task::iso8601;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Series kept per handler and per file: enough to see which ones a rule
/// acts on.
const SERIES_KEPT: usize = 8;
/// Series remembered per plugin, and plugins remembered, of what collectd
/// sends (bounded against a stream of ever new names).
const SERIES_PER_PLUGIN: usize = 16;
const PLUGINS_KEPT: usize = 512;

/// A rule file as the engine sees it in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct FileState {
    pub path: String,
    pub state: &'static str,
    /// Its value lists are chosen by its conditions.
    pub routed: bool,
    /// The plugins its conditions name.
    pub plugins: Vec<String>,
    /// Its worker process, when one runs.
    pub pid: Option<u32>,
}

/// What a handler's worker reported.
#[derive(Clone, Debug, PartialEq)]
pub enum HandlerEvent {
    Decision { series: String, command: String },
    Held,
    Suppressed,
    Error { series: String, message: String },
}

type Source<T> = Box<dyn Fn() -> T + Send + Sync>;
/// The self-monitoring figures by name.
type Counters = Vec<(String, f64)>;

/// Load warnings kept per file, at most.
const MAX_WARNINGS: usize = 16;

/// The shared record.
pub struct Board {
    version: String,
    hostname: String,
    started: SystemTime,
    inner: Mutex<Inner>,
    counters: Mutex<Option<Source<Counters>>>,
    running: Mutex<Option<Source<Vec<RunningCommand>>>>,
    journal: Mutex<Option<std::path::PathBuf>>,
    central: Mutex<Option<Source<Option<CentralStatus>>>>,
    pauses: Mutex<Option<Source<Vec<PauseStatus>>>>,
    controls: Mutex<Vec<Control>>,
}

/// Answers a control request other than `status` (`resume app/restart`),
/// or `None` when it is not one it knows.
pub type Control = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Board({})", self.hostname)
    }
}

#[derive(Default)]
struct Inner {
    files: BTreeMap<String, FileStatus>,
    remote: Option<RemoteStatus>,
    /// Value-list series collectd sent, by plugin (the first few each).
    seen: BTreeMap<String, Vec<String>>,
}

impl Board {
    pub fn new(hostname: &str) -> Board {
        Board {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: hostname.to_string(),
            started: SystemTime::now(),
            inner: Mutex::new(Inner::default()),
            counters: Mutex::new(None),
            running: Mutex::new(None),
            journal: Mutex::new(None),
            central: Mutex::new(None),
            pauses: Mutex::new(None),
            controls: Mutex::new(Vec::new()),
        }
    }

    /// Where the maintenance pauses are read from, and who answers
    /// `pause`/`resume`.
    pub fn set_pauses(&self, pauses: Source<Vec<PauseStatus>>, control: Control) {
        if let Ok(mut p) = self.pauses.lock() {
            *p = Some(pauses);
        }
        if let Ok(mut c) = self.controls.lock() {
            c.push(control);
        }
    }

    /// Adds an answerer of control requests (`history {...}`).
    pub fn add_control(&self, control: Control) {
        if let Ok(mut c) = self.controls.lock() {
            c.push(control);
        }
    }

    /// Where central rules' state is read from, and who answers their
    /// control requests.
    pub fn set_central(&self, status: Source<Option<CentralStatus>>, control: Control) {
        if let Ok(mut c) = self.central.lock() {
            *c = Some(status);
        }
        if let Ok(mut c) = self.controls.lock() {
            c.push(control);
        }
    }

    /// The answer to a control request other than `status`: the first of
    /// the plugin's parts that knows it.
    pub fn control(&self, request: &str) -> Option<String> {
        self.controls
            .lock()
            .ok()
            .and_then(|c| c.iter().find_map(|f| f(request)))
    }

    /// Where the counters and the running commands are read from.
    pub fn set_sources(&self, counters: Source<Counters>, running: Source<Vec<RunningCommand>>) {
        if let Ok(mut c) = self.counters.lock() {
            *c = Some(counters);
        }
        if let Ok(mut r) = self.running.lock() {
            *r = Some(running);
        }
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut inner) = self.inner.lock() {
            f(&mut inner);
        }
    }

    /// A handler's entry in its file; one not seen yet is added (the list
    /// stays in name order).
    fn handler_entry<'a>(file: &'a mut FileStatus, handler: &str) -> &'a mut HandlerStatus {
        let i = match file
            .handlers
            .binary_search_by(|h| h.name.as_str().cmp(handler))
        {
            Ok(i) => i,
            Err(i) => {
                file.handlers.insert(
                    i,
                    HandlerStatus {
                        name: handler.to_string(),
                        ..HandlerStatus::default()
                    },
                );
                i
            }
        };
        &mut file.handlers[i]
    }

    /// A file's entry; one not seen yet is added (a worker may report
    /// before the engine's next round lists it).
    fn file<'a>(inner: &'a mut Inner, path: &str) -> &'a mut FileStatus {
        inner
            .files
            .entry(path.to_string())
            .or_insert_with(|| FileStatus {
                path: path.to_string(),
                state: "starting".into(),
                since: iso8601(SystemTime::now()),
                ..FileStatus::default()
            })
    }

    /// The rule files and their states, as the engine sees them now;
    /// files no longer there are dropped.
    pub fn files(&self, states: &[FileState]) {
        let now = iso8601(SystemTime::now());
        self.with(|inner| {
            inner
                .files
                .retain(|path, _| states.iter().any(|s| s.path == *path));
            for s in states {
                let file = Self::file(inner, &s.path);
                if file.state != s.state {
                    file.state = s.state.to_string();
                    file.since = now.clone();
                }
                file.routed = s.routed;
                file.wants_plugins.clone_from(&s.plugins);
                file.worker_pid = s.pid;
            }
        });
    }

    /// collectd sent a value list of a series not seen before.
    pub fn series_seen(&self, plugin: &str, series: &str) {
        self.with(|inner| {
            if !inner.seen.contains_key(plugin) && inner.seen.len() >= PLUGINS_KEPT {
                return;
            }
            let list = inner.seen.entry(plugin.to_string()).or_default();
            if list.len() < SERIES_PER_PLUGIN && !list.iter().any(|s| s == series) {
                list.push(series.to_string());
            }
        });
    }

    /// Every file's matched series start over (the files' conditions
    /// changed, so every series is decided again).
    pub fn forget_matches(&self) {
        self.with(|inner| {
            for f in inner.files.values_mut() {
                f.series_matched.clear();
                f.series_matched_count = 0;
            }
        });
    }

    /// A file's conditions admitted a series (decided once per series).
    pub fn series_matched(&self, path: &str, series: &str) {
        self.with(|inner| {
            let file = Self::file(inner, path);
            file.series_matched_count += 1;
            if file.series_matched.len() < SERIES_KEPT {
                file.series_matched.push(series.to_string());
            }
        });
    }

    /// A warning a file's worker gave as it loaded it (as `rules check`
    /// gives them), kept once and at most [`MAX_WARNINGS`] of them.
    pub fn file_warning(&self, path: &str, warning: &str) {
        self.with(|inner| {
            let warnings = &mut Self::file(inner, path).warnings;
            if warnings.len() < MAX_WARNINGS && !warnings.iter().any(|w| w == warning) {
                warnings.push(warning.to_string());
            }
        });
    }

    /// A line the engine logged about a file (why it did not load, ...).
    pub fn file_note(&self, path: &str, note: &str) {
        self.with(|inner| Self::file(inner, path).note = Some(note.to_string()));
    }

    /// Events a file's worker evaluated, and how often each handler was
    /// called for them.
    pub fn evaluated(&self, path: &str, events: u64, calls: &[(String, u64)]) {
        self.with(|inner| {
            let file = Self::file(inner, path);
            file.evaluations += events;
            for (name, n) in calls {
                Self::handler_entry(file, name).calls += n;
            }
        });
    }

    /// What one handler did.
    pub fn handler(&self, path: &str, handler: &str, event: HandlerEvent) {
        let now = iso8601(SystemTime::now());
        self.with(|inner| {
            let h = Self::handler_entry(Self::file(inner, path), handler);
            let mut seen = |series: &str| {
                if h.series.len() < SERIES_KEPT && !h.series.iter().any(|s| s == series) {
                    h.series.push(series.to_string());
                }
            };
            match event {
                HandlerEvent::Decision { series, command } => {
                    seen(&series);
                    h.decisions += 1;
                    h.last_decision = Some(Occurrence {
                        time: now,
                        series,
                        what: command,
                    });
                }
                HandlerEvent::Error { series, message } => {
                    seen(&series);
                    h.errors += 1;
                    h.last_error = Some(Occurrence {
                        time: now,
                        series,
                        what: message,
                    });
                }
                HandlerEvent::Held => h.held += 1,
                HandlerEvent::Suppressed => h.suppressed += 1,
            }
        });
    }

    /// The MQTT session's settings, once it starts.
    pub fn remote_started(
        &self,
        broker: &str,
        command_topic: &str,
        signed_only: bool,
        journal: &std::path::Path,
    ) {
        if let Ok(mut j) = self.journal.lock() {
            *j = Some(journal.to_path_buf());
        }
        self.with(|inner| {
            inner.remote = Some(RemoteStatus {
                broker: broker.to_string(),
                command_topic: command_topic.to_string(),
                signed_only,
                ..RemoteStatus::default()
            });
        });
    }

    /// Connected to the broker (`true`) or not.
    pub fn remote_connected(&self, connected: bool) {
        let now = iso8601(SystemTime::now());
        self.with(|inner| {
            if let Some(r) = &mut inner.remote {
                r.connected_since = connected.then_some(now);
            }
        });
    }

    /// A message arrived on the command topic.
    pub fn remote_message(&self) {
        let now = iso8601(SystemTime::now());
        self.with(|inner| {
            if let Some(r) = &mut inner.remote {
                r.last_message = Some(now);
            }
        });
    }

    /// When the plugin started, and how many rule files it has: what the
    /// host's presence says, without the snapshot's reads of `/proc`.
    pub fn started_and_files(&self) -> (String, u64) {
        let files = self.inner.lock().map_or(0, |i| i.files.len() as u64);
        (iso8601(self.started), files)
    }

    /// The rule files as recorded, without what `snapshot` reads from
    /// /proc: what a rule push watches while the new set loads.
    pub fn file_statuses(&self) -> Vec<FileStatus> {
        self.inner
            .lock()
            .map(|i| i.files.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The rule files as `status` shows them: with their workers' memory,
    /// and what collectd sends for the plugins a file waits for.
    pub fn rule_files(&self) -> Vec<FileStatus> {
        self.inner
            .lock()
            .map(|i| {
                i.files
                    .values()
                    .cloned()
                    .map(|mut f| {
                        f.worker_rss_kib = f.worker_pid.and_then(rss_kib);
                        if f.routed && f.series_matched.is_empty() {
                            f.sent_for_its_plugins = f
                                .wants_plugins
                                .iter()
                                .filter_map(|p| i.seen.get(p))
                                .flatten()
                                .cloned()
                                .collect();
                        }
                        f
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The whole document, now.
    pub fn snapshot(&self) -> Status {
        let files = self.rule_files();
        let mut remote = self.inner.lock().ok().and_then(|i| i.remote.clone());
        if let (Some(r), Ok(Some(path))) = (&mut remote, self.journal.lock().as_deref()) {
            r.journal_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        }
        fn read<T: Default>(source: &Mutex<Option<Source<T>>>) -> T {
            source
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|f| f()))
                .unwrap_or_default()
        }
        Status {
            version: self.version.clone(),
            hostname: self.hostname.clone(),
            started: iso8601(self.started),
            rule_files: files,
            remote,
            running: read(&self.running),
            counters: read(&self.counters),
            central: read(&self.central),
            pauses: read(&self.pauses),
        }
    }
}

/// A process's resident memory in KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_files_handlers_and_the_session() {
        let board = Board::new("web1");
        let state = |path: &str, state: &'static str, plugins: &[&str]| FileState {
            path: path.into(),
            state,
            routed: true,
            plugins: plugins.iter().map(|p| p.to_string()).collect(),
            pid: Some(std::process::id()),
        };
        board.files(&[
            state("a.lua", "active", &[]),
            state("b.lua", "not loaded", &[]),
        ]);
        board.file_note("b.lua", "syntax error");
        board.evaluated("a.lua", 10, &[("a.lua::metric::h".into(), 7)]);
        for i in 0..20 {
            board.handler(
                "a.lua",
                "a.lua::metric::h",
                HandlerEvent::Decision {
                    series: format!("web1/df-{i}/percent_bytes-free"),
                    command: "hello/exec".into(),
                },
            );
        }
        board.handler("a.lua", "a.lua::metric::h", HandlerEvent::Suppressed);
        board.handler(
            "a.lua",
            "a.lua::metric::h",
            HandlerEvent::Error {
                series: "s".into(),
                message: "boom".into(),
            },
        );
        let s = board.snapshot();
        assert_eq!(s.rule_files.len(), 2);
        let a = &s.rule_files[0];
        assert_eq!((a.state.as_str(), a.evaluations), ("active", 10));
        assert!(a.worker_rss_kib.is_some_and(|kib| kib > 0), "{a:?}");
        let h = &a.handlers[0];
        assert_eq!(
            (h.calls, h.decisions, h.suppressed, h.errors),
            (7, 20, 1, 1)
        );
        assert_eq!(h.series.len(), SERIES_KEPT);
        assert_eq!(h.last_error.as_ref().unwrap().what, "boom");
        assert_eq!(s.rule_files[1].note.as_deref(), Some("syntax error"));
        // A file gone from the directory is gone from the status.
        board.files(&[state("a.lua", "active", &[])]);
        assert_eq!(board.snapshot().rule_files.len(), 1);
        // A rule waiting for df/percent_bytes on a host that sends
        // df_complex: the status says what does come.
        board.files(&[
            state("a.lua", "active", &[]),
            state("df.lua", "active", &["df"]),
        ]);
        board.series_seen("df", "web1/df-root/df_complex-free");
        board.series_seen("cpu", "web1/cpu-0/cpu-idle");
        board.series_matched("a.lua", "web1/cpu-0/cpu-idle");
        let s = board.snapshot();
        let df = s.rule_files.iter().find(|f| f.path == "df.lua").unwrap();
        assert_eq!(
            df.sent_for_its_plugins,
            vec!["web1/df-root/df_complex-free"]
        );
        let a = s.rule_files.iter().find(|f| f.path == "a.lua").unwrap();
        assert_eq!(
            (a.series_matched_count, a.sent_for_its_plugins.len()),
            (1, 0)
        );
        assert!(board.snapshot().remote.is_none());
        board.remote_started(
            "b:1883",
            "c/web1",
            true,
            std::path::Path::new("/nonexistent"),
        );
        board.remote_connected(true);
        let r = board.snapshot().remote.unwrap();
        assert!(r.connected_since.is_some() && r.signed_only);
    }
}
