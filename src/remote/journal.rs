//! The task journal: a small append-only file that makes "at most once"
//! survive crashes and restarts. A command is acknowledged to the broker
//! only after its `received` line is on disk; a task found `running` at
//! start-up is never run again; a `done` result not yet `published` is sent
//! again after a restart.

use crate::task::TaskResult;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

#[derive(Serialize, Deserialize)]
struct Line {
    id: u64,
    phase: TaskPhase,
    /// Seconds since the epoch when the task was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<TaskResult>,
}

#[derive(Clone, Debug)]
struct Entry {
    phase: TaskPhase,
    at: u64,
    result: Option<TaskResult>,
}

/// The journal file and its folded state.
pub struct Journal {
    path: PathBuf,
    file: File,
    entries: HashMap<u64, Entry>,
    /// Lines that could not be read when opening (a torn last write).
    pub skipped_lines: usize,
    retention_secs: u64,
    /// Bytes appended since the file was last compacted.
    appended: u64,
    /// The file's size after the last compaction: the next one waits for
    /// at least as much appended, so rewriting costs O(1) per line.
    compacted: u64,
}

/// Appended bytes after which the file is compacted while the plugin
/// runs (forgetting tasks past the retention), so it never grows without
/// bound between restarts.
const COMPACT_AFTER: u64 = 1024 * 1024;

/// Largest journal read at start-up. Compaction keeps it far smaller.
const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

impl Journal {
    /// Opens (or creates) the journal, forgets tasks received more than
    /// `retention_secs` before `now` (their timestamps are refused as stale
    /// anyway), and rewrites the file compactly.
    pub fn open(path: &Path, now: u64, retention_secs: u64) -> std::io::Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut entries: HashMap<u64, Entry> = HashMap::new();
        let mut skipped_lines = 0;
        let existing = match crate::files::open_regular(
            path,
            MAX_JOURNAL_BYTES,
            crate::files::Links::Refuse,
        ) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // A directory, a FIFO, a link: an error, not a loop on EISDIR.
            Err(e) => return Err(e),
        };
        if let Some(existing) = existing {
            // Lines as bytes: a torn line may end inside a UTF-8 sequence.
            for line in BufReader::new(existing).split(b'\n') {
                let line = line?;
                match serde_json::from_slice::<Line>(&line) {
                    Ok(l) => fold(&mut entries, l),
                    Err(_) if line.is_empty() => {}
                    Err(_) => skipped_lines += 1,
                }
            }
        }
        entries.retain(|_, e| e.at.saturating_add(retention_secs) >= now);
        let (file, compacted) = rewrite(path, &entries)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            entries,
            skipped_lines,
            retention_secs,
            appended: 0,
            compacted,
        })
    }

    /// Forgets tasks past the retention and rewrites the file compactly.
    fn compact(&mut self, now: u64) -> std::io::Result<()> {
        let retention_secs = self.retention_secs;
        self.entries
            .retain(|_, e| e.at.saturating_add(retention_secs) >= now);
        (self.file, self.compacted) = rewrite(&self.path, &self.entries)?;
        self.appended = 0;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn phase(&self, id: u64) -> Option<TaskPhase> {
        self.entries.get(&id).map(|e| e.phase)
    }

    /// Durably records a newly accepted task (fsync before returning).
    pub fn received(&mut self, id: u64, now: u64) -> std::io::Result<()> {
        self.append(Line {
            id,
            phase: TaskPhase::Received,
            at: Some(now),
            result: None,
        })
    }

    pub fn running(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line {
            id,
            phase: TaskPhase::Running,
            at: None,
            result: None,
        })
    }

    pub fn delegated(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line {
            id,
            phase: TaskPhase::Delegated,
            at: None,
            result: None,
        })
    }

    pub fn done(&mut self, result: &TaskResult) -> std::io::Result<()> {
        self.append(Line {
            id: result.task_id,
            phase: TaskPhase::Done,
            at: None,
            result: Some(result.clone()),
        })
    }

    pub fn published(&mut self, id: u64) -> std::io::Result<()> {
        self.append(Line {
            id,
            phase: TaskPhase::Published,
            at: None,
            result: None,
        })
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

    /// Appends one line durably. A write that fails part-way (a full
    /// disk) is cut off again, so the next line never joins a torn one;
    /// the caller then must not act as if the line were recorded.
    fn append(&mut self, line: Line) -> std::io::Result<()> {
        let before = self.file.metadata()?.len();
        let written = write_line(&mut self.file, &line).and_then(|n| {
            self.file.sync_data()?;
            Ok(n)
        });
        let n = match written {
            Ok(n) => n,
            Err(e) => {
                let _ = self.file.set_len(before);
                let _ = self.file.sync_data();
                return Err(e);
            }
        };
        let at = line.at;
        fold(&mut self.entries, line);
        self.appended += n as u64;
        if self.appended > COMPACT_AFTER.max(self.compacted) {
            let now = at.unwrap_or_else(unix_now);
            if let Err(e) = self.compact(now) {
                tracing::warn!(
                    "remote: task journal {}: compaction failed ({e}); appending goes on",
                    self.path.display()
                );
            }
        }
        Ok(())
    }
}

/// Writes the folded state to a new file and swaps it in (a crash leaves
/// the old or the new file whole); the new file, open for appending, and
/// its size. Mode 0600: results hold command output.
fn rewrite(path: &Path, entries: &HashMap<u64, Entry>) -> std::io::Result<(File, u64)> {
    let tmp = path.with_extension("tmp");
    let size = {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An older file of another mode keeps it when opened.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        for (id, e) in entries {
            write_line(
                &mut out,
                &Line {
                    id: *id,
                    phase: TaskPhase::Received,
                    at: Some(e.at),
                    result: None,
                },
            )?;
            if e.phase != TaskPhase::Received {
                write_line(
                    &mut out,
                    &Line {
                        id: *id,
                        phase: e.phase,
                        at: None,
                        result: e.result.clone(),
                    },
                )?;
            }
        }
        out.sync_all()?;
        out.metadata()?.len()
    };
    std::fs::rename(&tmp, path)?;
    Ok((OpenOptions::new().append(true).open(path)?, size))
}

/// Writes one line; the number of bytes it takes.
fn write_line(out: &mut File, line: &Line) -> std::io::Result<usize> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    out.write_all(text.as_bytes())?;
    Ok(text.len())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fold(entries: &mut HashMap<u64, Entry>, line: Line) {
    match line.phase {
        TaskPhase::Received => {
            entries.entry(line.id).or_insert(Entry {
                phase: TaskPhase::Received,
                at: line.at.unwrap_or(0),
                result: None,
            });
        }
        phase => {
            if let Some(e) = entries.get_mut(&line.id) {
                e.phase = phase;
                if line.result.is_some() {
                    e.result = line.result;
                }
                // A result the broker has is never sent again: at-most-once
                // needs only the id and the phase from here on.
                if phase == TaskPhase::Published {
                    e.result = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
