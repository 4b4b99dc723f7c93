//! The plugin's side of one worker process: spawn it, feed it batches
//! without ever blocking the caller, read its reports on a thread of its
//! own, and find out how and why it ended.

use super::wire::{Report, read_frame};
use crate::lua::VmLimits;
use crate::rules::guard::Guard;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

/// Batches that may wait for one worker before new ones are dropped (the
/// frames are shared by all workers; a slow one holds on to at most this
/// many).
const FEED_CAPACITY: usize = 256;
/// Bytes of a dead worker's stderr kept for the log.
const STDERR_KEPT: usize = 2048;

/// Receives every report but `Ready`, `LoadFailed` and `Fatal` (which
/// become the worker's [`WorkerPhase`]), on the worker's reader thread:
/// `(rule file, report)`.
pub type ReportSink = Arc<dyn Fn(&Path, Report) + Send + Sync>;

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// The `collectd-monitor` program.
    pub program: PathBuf,
    pub file: PathBuf,
    pub limits: VmLimits,
    /// `SandboxUser`: whom the worker runs as once it read its file.
    pub user: Option<String>,
}

/// Where a worker is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerPhase {
    Starting,
    Ready,
    /// The file did not load; the worker has exited.
    LoadFailed(String),
    /// The worker ended; why, as well as we can tell.
    Gone(String),
}

/// Which events a worker's file may act on, as its Ready report said
/// (`None` for a kind: all of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routing {
    pub metric: Option<Guard>,
    pub notification: Option<Guard>,
}

struct Shared {
    phase: Mutex<WorkerPhase>,
    routing: Mutex<Option<Arc<Routing>>>,
    /// Sequence number of the last batch fully evaluated, plus one (0:
    /// none yet).
    done: AtomicU64,
}

/// A running (or ended) worker.
pub struct Worker {
    pid: u32,
    feed: Option<SyncSender<Arc<Vec<u8>>>>,
    shared: Arc<Shared>,
}

impl Worker {
    /// The worker process's id (for `status`, which reads its memory).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the worker and its two threads.
    pub fn spawn(spec: &WorkerSpec, sink: ReportSink) -> Result<Worker, String> {
        let mut command = Command::new(&spec.program);
        super::watchdog::tie_to_parent(&mut command);
        let mut child = command
            .args(
                super::WorkerArgs::new(spec.file.clone(), spec.limits, spec.user.clone())
                    .command_line(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} rule-worker: {e} (set HelperPath)",
                    spec.program.display()
                )
            })?;
        let pid = child.id();
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let shared = Arc::new(Shared {
            phase: Mutex::new(WorkerPhase::Starting),
            routing: Mutex::new(None),
            done: AtomicU64::new(0),
        });
        let (feed, batches) = sync_channel(FEED_CAPACITY);
        let name = format!("monitor-feed-{pid}");
        std::thread::Builder::new()
            .name(name)
            .spawn(move || write_batches(stdin, batches))
            .map_err(|e| format!("cannot start a feeder thread: {e}"))?;
        let file = spec.file.clone();
        let reader_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("monitor-reports-{pid}"))
            .spawn(move || read_reports(child, &file, &reader_shared, &sink))
            .map_err(|e| format!("cannot start a report thread: {e}"))?;
        Ok(Worker {
            pid,
            feed: Some(feed),
            shared,
        })
    }

    /// Where the worker is in its life, as its reports said.
    pub fn phase(&self) -> WorkerPhase {
        self.shared
            .phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|_| WorkerPhase::Gone("internal error: poisoned lock".into()))
    }

    /// Queues one frame (see [`super::wire::frame`]); false when the
    /// worker is behind (or gone) and the batch was dropped.
    pub fn offer(&self, frame: &Arc<Vec<u8>>) -> bool {
        match &self.feed {
            Some(feed) => match feed.try_send(Arc::clone(frame)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }

    /// Batches evaluated so far: the last batch's sequence number plus one.
    /// Which events the file may act on, once it is ready.
    pub fn routing(&self) -> Option<Arc<Routing>> {
        self.shared.routing.lock().ok().and_then(|r| r.clone())
    }

    /// One past the last batch the worker finished (0: none yet): how the
    /// engine sees progress.
    pub fn done(&self) -> u64 {
        self.shared.done.load(Ordering::Relaxed)
    }

    /// Asks the worker to finish what it has and exit (closes its stdin).
    pub fn stop(&mut self) {
        self.feed = None;
    }

    /// Ends the worker at once (it stopped answering).
    pub fn kill(&mut self) {
        self.feed = None;
        if !matches!(
            self.phase(),
            WorkerPhase::Gone(_) | WorkerPhase::LoadFailed(_)
        ) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_batches(mut stdin: ChildStdin, batches: Receiver<Arc<Vec<u8>>>) {
    for frame in batches {
        if stdin.write_all(&frame).is_err() {
            break;
        }
    }
    // Dropping stdin closes the pipe: the worker exits after its last batch.
}

fn read_reports(mut child: Child, file: &Path, shared: &Shared, sink: &ReportSink) {
    let set_phase = |phase: WorkerPhase| {
        if let Ok(mut p) = shared.phase.lock() {
            *p = phase;
        }
    };
    let mut fatal = None;
    let mut stream_error = None;
    if let Some(mut stdout) = child.stdout.take() {
        loop {
            let frame = match read_frame(&mut stdout) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    stream_error = Some(format!("its report stream broke: {e}"));
                    break;
                }
            };
            match Report::decode(&frame) {
                Ok(Report::Ready {
                    metric_guard,
                    notification_guard,
                    ..
                }) => {
                    if let Ok(mut r) = shared.routing.lock() {
                        *r = Some(Arc::new(Routing {
                            metric: metric_guard,
                            notification: notification_guard,
                        }));
                    }
                    set_phase(WorkerPhase::Ready);
                }
                Ok(Report::LoadFailed { error }) => {
                    fatal = Some(error.clone());
                    set_phase(WorkerPhase::LoadFailed(error));
                }
                Ok(report @ Report::Done { seq, .. }) => {
                    shared.done.store(seq + 1, Ordering::Relaxed);
                    sink(file, report);
                }
                Ok(Report::Fatal { reason }) => fatal = Some(reason),
                Ok(report) => sink(file, report),
                Err(e) => {
                    stream_error = Some(e);
                    break;
                }
            }
        }
    }
    if stream_error.is_some() {
        let _ = child.kill();
    }
    let stderr = child
        .stderr
        .take()
        .map(|mut s| {
            let mut text = Vec::new();
            let _ = s.read_to_end(&mut text);
            let start = text.len().saturating_sub(STDERR_KEPT);
            String::from_utf8_lossy(&text[start..]).trim().to_string()
        })
        .unwrap_or_default();
    let status = child.wait().ok();
    let cause = death_cause(fatal, stream_error, &stderr, status);
    if let Ok(mut p) = shared.phase.lock()
        && !matches!(*p, WorkerPhase::LoadFailed(_))
    {
        *p = WorkerPhase::Gone(cause);
    }
}

/// The most telling reason available: what the worker said, what broke,
/// what it printed as it died, or its exit status. collectd ignores
/// SIGCHLD, so inside collectd the status is usually unknown.
fn death_cause(
    fatal: Option<String>,
    stream_error: Option<String>,
    stderr: &str,
    status: Option<std::process::ExitStatus>,
) -> String {
    use std::os::unix::process::ExitStatusExt;
    let status = status.map(|s| match (s.code(), s.signal()) {
        (Some(0), _) => "exited".to_string(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!(
            "killed by signal {signal} ({})",
            nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str())
                .unwrap_or("?")
        ),
        _ => "ended".to_string(),
    });
    let mut parts: Vec<String> = fatal.into_iter().chain(stream_error).collect();
    if !stderr.is_empty() {
        parts.push(format!(
            "it printed: {}",
            stderr.lines().collect::<Vec<_>>().join(" | ")
        ));
    }
    parts.extend(status);
    if parts.is_empty() {
        "ended without saying why (killed by a signal? out of memory?)".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_causes_prefer_what_the_worker_said() {
        assert_eq!(
            death_cause(Some("memory limit".into()), None, "", None),
            "memory limit"
        );
        assert!(
            death_cause(None, None, "memory allocation of 8 bytes failed", None)
                .contains("it printed: memory allocation of 8 bytes failed")
        );
        assert!(death_cause(None, None, "", None).contains("without saying why"));
    }
}
