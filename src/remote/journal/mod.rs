//! The task journal: a small append-only file that makes "at most once"
//! survive crashes and restarts. A command is acknowledged to the broker
//! only after its `received` line is on disk; a task found `running` at
//! start-up is never run again; a `done` result not yet `published` is sent
//! again after a restart.
//!
//! Three parts: [`Tasks`], the folded state decisions read; `file`, the
//! lines on disk; `writer`, the thread that writes them so that the MQTT
//! loop never waits for a disk. [`Journal`] joins the first two for
//! callers that may wait (start-up, tests, benchmarks).

mod file;
mod writer;

pub(super) use writer::JournalWriter;

use crate::task::TaskResult;
use file::JournalFile;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskPhase {
    Received,
    Running,
    /// Handed to the config-replacement helper, which reports by itself.
    Delegated,
    Done,
    Published,
}

/// One line of the journal: a task entering a phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Line {
    id: u64,
    phase: TaskPhase,
    /// Seconds since the epoch when the task was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<TaskResult>,
}

impl Line {
    /// A newly accepted task, received at `now` (seconds since the epoch).
    pub fn received(id: u64, now: u64) -> Line {
        Line {
            id,
            phase: TaskPhase::Received,
            at: Some(now),
            result: None,
        }
    }

    /// A task entering `phase` (other than received or done).
    pub fn phase(id: u64, phase: TaskPhase) -> Line {
        Line {
            id,
            phase,
            at: None,
            result: None,
        }
    }

    /// A task's result, computed.
    pub fn done(result: &TaskResult) -> Line {
        Line {
            id: result.task_id,
            phase: TaskPhase::Done,
            at: None,
            result: Some(result.clone()),
        }
    }

    /// The task the line is about.
    pub fn task(&self) -> u64 {
        self.id
    }
}

#[derive(Clone, Debug)]
struct Entry {
    phase: TaskPhase,
    at: u64,
    result: Option<TaskResult>,
}

/// What the journal knows of each task: the lines on disk, folded, and
/// the tasks whose first lines are being written.
#[derive(Default)]
pub struct Tasks {
    entries: HashMap<u64, Entry>,
    /// Accepted, their lines on their way to the disk: a second delivery
    /// meanwhile is a task already running, never run again.
    accepting: HashSet<u64>,
}

impl Tasks {
    pub fn phase(&self, id: u64) -> Option<TaskPhase> {
        match self.entries.get(&id) {
            Some(e) => Some(e.phase),
            None if self.accepting.contains(&id) => Some(TaskPhase::Running),
            None => None,
        }
    }

    /// Marks `id` as being accepted until [`Tasks::settle`].
    pub fn accepting(&mut self, id: u64) {
        self.accepting.insert(id);
    }

    /// The lines of `id` are written (and folded) or failed.
    pub fn settle(&mut self, id: u64) {
        self.accepting.remove(&id);
    }

    /// Tasks that were running when the plugin last stopped.
    pub fn interrupted(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.phase == TaskPhase::Running)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Results computed but not known to have reached the broker.
    pub fn unpublished(&self) -> Vec<TaskResult> {
        let mut results: Vec<TaskResult> = self
            .entries
            .values()
            .filter(|e| e.phase == TaskPhase::Done)
            .filter_map(|e| e.result.clone())
            .collect();
        results.sort_by_key(|r| r.task_id);
        results
    }

    /// Forgets tasks received more than `retention_secs` before `now`.
    fn forget_before(&mut self, now: u64, retention_secs: u64) {
        self.entries
            .retain(|_, e| e.at.saturating_add(retention_secs) >= now);
    }

    fn fold(&mut self, line: Line) {
        match line.phase {
            TaskPhase::Received => {
                self.entries.entry(line.id).or_insert(Entry {
                    phase: TaskPhase::Received,
                    at: line.at.unwrap_or(0),
                    result: None,
                });
            }
            phase => {
                if let Some(e) = self.entries.get_mut(&line.id) {
                    e.phase = phase;
                    if line.result.is_some() {
                        e.result = line.result;
                    }
                    // A result the broker has is never sent again:
                    // at-most-once needs only the id and the phase from
                    // here on.
                    if phase == TaskPhase::Published {
                        e.result = None;
                    }
                }
            }
        }
    }
}

/// The journal file and its folded state, for callers that may wait on
/// the disk: each call returns once its line is on disk.
pub struct Journal {
    file: JournalFile,
    tasks: Tasks,
    /// Lines that could not be read when opening (a torn last write).
    pub skipped_lines: usize,
}

impl Journal {
    /// Opens (or creates) the journal, forgets tasks received more than
    /// `retention_secs` before `now` (their timestamps are refused as stale
    /// anyway), and rewrites the file compactly.
    pub fn open(path: &Path, now: u64, retention_secs: u64) -> std::io::Result<Journal> {
        let (file, tasks, skipped_lines) = JournalFile::open(path, now, retention_secs)?;
        Ok(Journal {
            file,
            tasks,
            skipped_lines,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn phase(&self, id: u64) -> Option<TaskPhase> {
        self.tasks.phase(id)
    }

    /// Durably records a newly accepted task (fsync before returning).
    pub fn received(&mut self, id: u64, now: u64) -> std::io::Result<()> {
        self.append(Line::received(id, now))
    }

    pub fn running(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line::phase(id, TaskPhase::Running))
    }

    pub fn delegated(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line::phase(id, TaskPhase::Delegated))
    }

    pub fn done(&mut self, result: &TaskResult) -> std::io::Result<()> {
        self.append(Line::done(result))
    }

    pub fn published(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line::phase(id, TaskPhase::Published))
    }

    /// Tasks that were running when the plugin last stopped.
    pub fn interrupted(&self) -> Vec<u64> {
        self.tasks.interrupted()
    }

    /// Results computed but not known to have reached the broker.
    pub fn unpublished(&self) -> Vec<TaskResult> {
        self.tasks.unpublished()
    }

    /// Hands the file to a writer thread; the state goes with it, shared.
    pub(super) fn into_writer(self) -> (JournalWriter, std::thread::JoinHandle<()>) {
        JournalWriter::start(self.file, self.tasks)
    }

    fn append(&mut self, line: Line) -> std::io::Result<()> {
        self.file.append(std::slice::from_ref(&line))?;
        self.tasks.fold(line);
        self.file.compact_if_due(&mut self.tasks);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn result(id: u64) -> TaskResult {
        TaskResult {
            task_id: id,
            timestamp: "2020-11-26T00:41:19Z".into(),
            message: "ok".into(),
            code: 0,
        }
    }

    #[test]
    fn survives_reopening_and_reports_unfinished_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/tasks.journal");
        {
            let mut j = Journal::open(&path, 1000, 600).unwrap();
            j.received(1, 1000).unwrap();
            j.running(1).unwrap();
            j.received(2, 1000).unwrap();
            j.running(2).unwrap();
            j.done(&result(2)).unwrap();
            j.received(3, 1000).unwrap();
            j.running(3).unwrap();
            j.done(&result(3)).unwrap();
            j.published(3).unwrap();
            j.received(4, 1000).unwrap();
        }
        // A torn last line, as after a crash mid-write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"id\":5,\"ph")
            .unwrap();
        let j = Journal::open(&path, 1100, 600).unwrap();
        assert_eq!(j.skipped_lines, 1);
        assert_eq!(j.interrupted(), vec![1]);
        assert_eq!(j.unpublished(), vec![result(2)]);
        assert_eq!(j.phase(3), Some(TaskPhase::Published));
        assert_eq!(j.phase(4), Some(TaskPhase::Received));
        assert_eq!(j.phase(5), None);
    }

    #[test]
    fn published_results_are_not_kept_and_the_file_stays_private_and_small() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.journal");
        let mut j = Journal::open(&path, 1000, 600).unwrap();
        let mut largest = 0;
        for id in 1..=300 {
            j.received(id, 1000).unwrap();
            j.running(id).unwrap();
            j.done(&TaskResult {
                message: "x".repeat(64 * 1024),
                ..result(id)
            })
            .unwrap();
            j.published(id).unwrap();
            largest = largest.max(std::fs::metadata(&path).unwrap().len());
        }
        // Every result was 64 KiB (19 MiB in all); the file holds at most
        // what waits for the next compaction.
        assert!(largest < 3 * 1024 * 1024, "{largest} bytes");
        drop(j);
        let j = Journal::open(&path, 1000, 600).unwrap();
        assert_eq!(j.phase(300), Some(TaskPhase::Published));
        assert!(std::fs::metadata(&path).unwrap().len() < 300 * 100);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn forgets_tasks_older_than_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.journal");
        {
            let mut j = Journal::open(&path, 1000, 600).unwrap();
            j.received(1, 1000).unwrap();
            j.received(2, 1500).unwrap();
        }
        let j = Journal::open(&path, 1700, 600).unwrap();
        assert_eq!((j.phase(1), j.phase(2)), (None, Some(TaskPhase::Received)));
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 1, "the rewrite keeps only live tasks");
    }
}
