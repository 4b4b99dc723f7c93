//! The journal's own thread: the MQTT loop hands it lines and goes on;
//! it writes what has queued up with one `fsync` and answers each
//! sender once its lines are on disk. A slow or stalled disk then holds
//! back only what must wait for it (a task's acknowledgement and run),
//! never presence, other answers or the connection.

use super::file::{JournalFile, unix_now};
use super::{Line, TaskPhase, Tasks};
use crate::task::TaskResult;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Lines written with one `fsync` at most: bounds what one failed write
/// refuses.
const MAX_BATCH: usize = 256;

/// Why lines were not recorded (a full disk, the writer gone).
#[derive(Clone, Debug, thiserror::Error)]
#[error("task journal {path}: {reason}")]
pub struct NotRecorded {
    path: String,
    reason: String,
}

/// The answer of a write: `Ok` once the lines are on disk.
pub type Written = oneshot::Receiver<Result<(), NotRecorded>>;

struct Job {
    lines: Vec<Line>,
    /// The tasks were marked as being accepted: settle them.
    accepting: bool,
    /// The last job: the thread ends after it.
    last: bool,
    reply: Option<oneshot::Sender<Result<(), NotRecorded>>>,
}

/// A handle on the journal's thread and the state it keeps; cloned by
/// whoever writes.
#[derive(Clone)]
pub struct JournalWriter {
    jobs: Sender<Job>,
    tasks: Arc<Mutex<Tasks>>,
    path: Arc<PathBuf>,
}

impl JournalWriter {
    /// Starts the thread; it ends once every handle is dropped and what
    /// was queued is written.
    pub(super) fn start(file: JournalFile, tasks: Tasks) -> (JournalWriter, JoinHandle<()>) {
        let (jobs, queue) = channel();
        let tasks = Arc::new(Mutex::new(tasks));
        let path = Arc::new(file.path().to_path_buf());
        let shared = Arc::clone(&tasks);
        let thread = std::thread::Builder::new()
            .name("monitor-journal".into())
            .spawn(move || write_forever(file, &shared, &queue));
        let thread = match thread {
            Ok(t) => t,
            // Without the thread every write answers "not recorded":
            // nothing runs, nothing hangs.
            Err(e) => {
                tracing::error!("remote: cannot start the task journal's thread: {e}");
                std::thread::spawn(|| {})
            }
        };
        (JournalWriter { jobs, tasks, path }, thread)
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        // The state is whole between statements: a panic elsewhere
        // leaves nothing half-folded.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the journal knows of task `id`, a task being accepted counted
    /// as running.
    pub fn phase(&self, id: u64) -> Option<TaskPhase> {
        self.tasks().phase(id)
    }

    /// Tasks that were running when the plugin last stopped.
    pub fn interrupted(&self) -> Vec<u64> {
        self.tasks().interrupted()
    }

    /// Results computed but not known to have reached the broker.
    pub fn unpublished(&self) -> Vec<TaskResult> {
        self.tasks().unpublished()
    }

    /// Records a newly accepted task's first lines; until they are on
    /// disk (or failed) the task counts as running, so that a second
    /// delivery is not accepted too.
    pub fn accept(&self, lines: Vec<Line>) -> Written {
        {
            let mut tasks = self.tasks();
            for line in &lines {
                tasks.accepting(line.task());
            }
        }
        self.queue(lines, true)
    }

    /// Records `lines`; the answer says when they are on disk.
    pub fn write(&self, lines: Vec<Line>) -> Written {
        self.queue(lines, false)
    }

    fn queue(&self, lines: Vec<Line>, accepting: bool) -> Written {
        let (reply, written) = oneshot::channel();
        let job = Job {
            lines,
            accepting,
            last: false,
            reply: Some(reply),
        };
        if let Err(refused) = self.jobs.send(job) {
            let job = refused.0;
            if accepting {
                let mut tasks = self.tasks();
                job.lines.iter().for_each(|l| tasks.settle(l.task()));
            }
            if let Some(reply) = job.reply {
                let _ = reply.send(Err(self.not_recorded("its writer has stopped")));
            }
        }
        written
    }

    /// Ends the thread once what is queued is written, whoever still
    /// holds a handle (a command still running at shutdown): what comes
    /// later is not recorded, as after a crash.
    pub fn close(&self) {
        let _ = self.jobs.send(Job {
            lines: Vec::new(),
            accepting: false,
            last: true,
            reply: None,
        });
    }

    /// Why lines were not recorded, naming the file.
    pub fn not_recorded(&self, reason: &str) -> NotRecorded {
        NotRecorded {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

fn write_forever(mut file: JournalFile, tasks: &Mutex<Tasks>, queue: &Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let last = batch.iter().any(|j| j.last);
        let lines: Vec<Line> = batch.iter().flat_map(|j| j.lines.iter().cloned()).collect();
        let outcome = file.append(&lines).map_err(|e| NotRecorded {
            path: file.path().display().to_string(),
            reason: e.to_string(),
        });
        if let Err(e) = &outcome {
            tracing::error!("remote: {e}");
        }
        let snapshot = {
            let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
            if outcome.is_ok() {
                lines.into_iter().for_each(|l| tasks.fold(l));
            }
            for job in batch.iter().filter(|j| j.accepting) {
                job.lines.iter().for_each(|l| tasks.settle(l.task()));
            }
            (outcome.is_ok() && file.compaction_due()).then(|| {
                tasks.forget_before(unix_now(), file.retention_secs());
                tasks.entries.clone()
            })
        };
        if let Some(entries) = snapshot {
            file.compact(&entries);
        }
        for reply in batch.into_iter().filter_map(|j| j.reply) {
            let _ = reply.send(outcome.clone());
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::journal::Journal;

    #[tokio::test]
    async fn a_task_being_accepted_counts_as_running_and_its_lines_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.journal");
        let (writer, thread) = Journal::open(&path, 1000, 600).unwrap().into_writer();
        let written = writer.accept(vec![
            Line::received(7, 1000),
            Line::phase(7, TaskPhase::Running),
        ]);
        // Until the lines are on disk, a second delivery finds it running.
        assert!(writer.phase(7).is_some());
        written.await.unwrap().unwrap();
        assert_eq!(writer.phase(7), Some(TaskPhase::Running));
        let result = TaskResult::now(7, 0, "ok");
        writer
            .write(vec![Line::done(&result)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(writer.unpublished(), vec![result.clone()]);
        drop(writer);
        thread.join().unwrap();
        let again = Journal::open(&path, 1000, 600).unwrap();
        assert_eq!(again.unpublished(), vec![result]);
    }
}
