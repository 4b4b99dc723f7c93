//! The history: every repair and request on this host (a rule's decision,
//! a remote command, a config push, a pause, a refused request) with when,
//! what, who, how it ended and how long it took, as Monit's event log and
//! SSM's command history. Kept in a bounded store that survives restarts
//! ([`store`]); written by a thread of its own, so a slow disk never holds
//! collectd, a rule or the MQTT session back (a record that finds the queue
//! full is counted as dropped, not waited for).

mod record;
mod store;

pub use record::{MAX_LIMIT, Query, Record};
pub use store::Bounds;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};
use store::Store;

/// Records waiting for the writer at most.
const QUEUE: usize = 4096;
/// Records written in one transaction at most.
const BATCH: usize = 512;
/// How often the inbox is looked at.
const INBOX_SCAN: Duration = Duration::from_secs(2);
/// Inbox files taken per scan, and their largest size.
const INBOX_FILES: usize = 64;
const INBOX_FILE_BYTES: u64 = 64 * 1024;

/// The directory under `StateDir` where processes that cannot open the
/// store (the config replacement helper, while collectd restarts) leave
/// their records, one JSON file each, for the plugin to take in.
pub fn inbox(state_dir: &Path) -> PathBuf {
    state_dir.join("history-inbox")
}

/// Leaves `record` in the inbox of `state_dir` (for the replacement
/// helper); the error says why it could not.
pub fn leave(state_dir: &Path, record: &Record) -> Result<(), String> {
    let dir = inbox(state_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = format!(
        "{}-{}.json",
        record::micros(SystemTime::now()),
        std::process::id()
    );
    let text = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    // Whole or not at all: the inbox skips the hidden file being written.
    crate::files::replace_private(&dir.join(name), &text)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// What the writer thread is handed.
enum Message {
    Record(Record),
    /// Answer once everything before has been written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// This host's history: what records and what answers queries.
pub struct History {
    queue: SyncSender<Message>,
    store: Arc<Store>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "History({} dropped)", self.dropped())
    }
}

impl History {
    /// Opens `StateDir/history.redb` and starts its writer thread; the
    /// note says a damaged store was moved aside (for a FAILURE
    /// notification).
    pub fn open(
        state_dir: &Path,
        bounds: Bounds,
    ) -> Result<(Arc<History>, Option<String>), String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
        let (store, note) = Store::open(&state_dir.join("history.redb"), bounds)?;
        let store = Arc::new(store);
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = Arc::clone(&store);
        let inbox = inbox(state_dir);
        std::thread::Builder::new()
            .name("monitor-history".into())
            .spawn(move || write_forever(&writer, &rx, &inbox))
            .map_err(|e| format!("cannot start the history writer: {e}"))?;
        let history = Arc::new(History {
            queue,
            store,
            dropped: AtomicU64::new(0),
        });
        Ok((history, note))
    }

    /// Queues `record` without waiting; false when it was dropped (the
    /// queue is full, or the writer is gone).
    pub fn record(&self, record: Record) -> bool {
        match self.queue.try_send(Message::Record(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                // Logged once per 1000, not once per record of a flood.
                if self.dropped.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                    tracing::warn!(
                        "history: {QUEUE} records wait for the disk; records are dropped (a slow or full disk?)"
                    );
                }
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits (at most `patience`) until what was recorded so far is on
    /// disk: collectd stops right after, and the writer with it.
    pub fn flush(&self, patience: Duration) -> bool {
        let (done, written) = std::sync::mpsc::channel();
        let deadline = std::time::Instant::now() + patience;
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        written
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The records `query` wants, oldest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, String> {
        self.store.query(query, SystemTime::now())
    }

    /// Answers the control request `history {query}`: one JSON record per
    /// line; `None` for other requests.
    pub fn control(&self, line: &str) -> Option<String> {
        let json = match line.split_once(' ') {
            Some(("history", json)) => json,
            None if line == "history" => "{}",
            _ => return None,
        };
        let answer = serde_json::from_str::<Query>(json)
            .map_err(|e| format!("history: {e}"))
            .and_then(|q| self.query(&q));
        Some(match answer {
            Ok(records) => records
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error: {e}"),
        })
    }
}

/// Writes what arrives, in batches, and takes in the inbox, until every
/// sender is gone.
fn write_forever(store: &Store, rx: &Receiver<Message>, inbox: &Path) {
    let mut next_scan = std::time::Instant::now();
    loop {
        let mut batch = Vec::new();
        let mut flushed = Vec::new();
        let mut take = |message: Message| match message {
            Message::Record(record) => batch.push(record),
            Message::Flush(done) => flushed.push(done),
        };
        match rx.recv_timeout(INBOX_SCAN) {
            Ok(message) => take(message),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for _ in 0..BATCH {
            match rx.try_recv() {
                Ok(message) => take(message),
                Err(_) => break,
            }
        }
        let mut taken = Vec::new();
        if std::time::Instant::now() >= next_scan {
            next_scan = std::time::Instant::now() + INBOX_SCAN;
            for (path, record) in read_inbox(inbox) {
                batch.push(record);
                taken.push(path);
            }
        }
        if !batch.is_empty() {
            match store.append(&batch, SystemTime::now()) {
                Ok(()) => {
                    for path in taken {
                        let _ = std::fs::remove_file(path);
                    }
                }
                Err(e) => tracing::warn!("history: {} record(s) not written: {e}", batch.len()),
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// The records left in the inbox (a file that is not one is removed,
/// with a warning).
fn read_inbox(dir: &Path) -> Vec<(PathBuf, Record)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files.truncate(INBOX_FILES);
    files
        .into_iter()
        .filter_map(|path| {
            let read =
                crate::files::read_regular(&path, INBOX_FILE_BYTES, crate::files::Links::Refuse)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        serde_json::from_slice::<Record>(&bytes).map_err(|e| e.to_string())
                    });
            match read {
                Ok(record) => Some((path, record)),
                Err(e) => {
                    // Hidden, it is not looked at again (a directory
                    // cannot be removed as a file).
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    let aside = path.with_file_name(format!(".rejected-{name}"));
                    let _ = std::fs::rename(&path, &aside);
                    tracing::warn!(
                        "history: {} is not a record ({e}); moved aside to {}",
                        path.display(),
                        aside.display()
                    );
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_inbox_files_reach_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let bounds = Bounds {
            max_records: 100,
            max_age: Duration::from_secs(3600),
        };
        let (h, _) = History::open(dir.path(), bounds).unwrap();
        h.record(Record::new("rule", "nginx/restart", "web.lua::metric::down").result(0, "ok"));
        leave(
            dir.path(),
            &Record::new("config", "collectd.conf", "replacement helper").result(0, "replaced"),
        )
        .unwrap();
        std::fs::write(inbox(dir.path()).join("junk.json"), "{").unwrap();
        // A directory is no record either: moved aside, not warned about
        // at every scan.
        std::fs::create_dir(inbox(dir.path()).join("dir.json")).unwrap();
        // The writer stores a record before it removes its file: wait for
        // both, not for the first one seen.
        let rest = || -> Vec<String> {
            let mut left: Vec<String> = std::fs::read_dir(inbox(dir.path()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            left
        };
        let mut got = Vec::new();
        let mut left = Vec::new();
        for _ in 0..600 {
            got = h.query(&Query::default()).unwrap();
            left = rest();
            if got.len() == 2 && left.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let kinds: Vec<&str> = got.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds.len(), 2, "{got:?}");
        assert!(
            kinds.contains(&"rule") && kinds.contains(&"config"),
            "{got:?}"
        );
        assert_eq!(left, [".rejected-dir.json", ".rejected-junk.json"]);
        h.record(Record::new("remote", "a/b", "key ops"));
        assert!(h.flush(Duration::from_secs(10)));
        assert_eq!(h.query(&Query::default()).unwrap().len(), 3);
        let answer = h.control(r#"history {"kind": "config"}"#).unwrap();
        assert!(answer.contains("\"replaced\""), "{answer}");
        assert!(!answer.contains("nginx"), "{answer}");
        assert!(
            h.control(r#"history {"bogus": 1}"#)
                .unwrap()
                .starts_with("error: ")
        );
        assert_eq!(h.control("status"), None);
    }
}
