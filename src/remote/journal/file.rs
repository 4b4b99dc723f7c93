//! The journal's lines on disk: read and folded at start-up, appended with
//! one `fsync` per batch, compacted when enough was appended.

use super::{Entry, Line, TaskPhase, Tasks};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Appended bytes after which the file is compacted while the plugin
/// runs (forgetting tasks past the retention), so it never grows without
/// bound between restarts.
const COMPACT_AFTER: u64 = 1024 * 1024;

/// Largest journal read at start-up. Compaction keeps it far smaller.
const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// A test hook: while the file this variable names exists, every append
/// waits before it writes, as on a disk that has stopped answering.
/// The tests use it to show that nothing else waits with it.
const TEST_GATE: &str = "COLLECTD_MONITOR_TEST_JOURNAL_GATE";

/// The open journal file.
pub(super) struct JournalFile {
    path: PathBuf,
    file: File,
    retention_secs: u64,
    /// Bytes appended since the file was last compacted.
    appended: u64,
    /// The file's size after the last compaction: the next one waits for
    /// at least as much appended, so rewriting costs O(1) per line.
    compacted: u64,
    gate: Option<PathBuf>,
}

impl JournalFile {
    /// Opens (or creates) the journal and folds its lines; forgets tasks
    /// received more than `retention_secs` before `now` and rewrites the
    /// file compactly. Also gives how many lines could not be read.
    pub(super) fn open(
        path: &Path,
        now: u64,
        retention_secs: u64,
    ) -> std::io::Result<(JournalFile, Tasks, usize)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut tasks = Tasks::default();
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
                    Ok(l) => tasks.fold(l),
                    Err(_) if line.is_empty() => {}
                    Err(_) => skipped_lines += 1,
                }
            }
        }
        tasks.forget_before(now, retention_secs);
        let (file, compacted) = rewrite(path, &tasks.entries)?;
        let journal = JournalFile {
            path: path.to_path_buf(),
            file,
            retention_secs,
            appended: 0,
            compacted,
            gate: std::env::var_os(TEST_GATE).map(PathBuf::from),
        };
        Ok((journal, tasks, skipped_lines))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` durably, with one `fsync`. A write that fails
    /// part-way (a full disk) is cut off again, so the next line never
    /// joins a torn one; the caller then must not act as if any of the
    /// lines were recorded.
    pub(super) fn append(&mut self, lines: &[Line]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut text, line).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let before = self.file.metadata()?.len();
        self.wait_at_gate();
        let written = self
            .file
            .write_all(&text)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(before);
            let _ = self.file.sync_data();
            return Err(e);
        }
        self.appended += text.len() as u64;
        Ok(())
    }

    /// Whether enough was appended since the last compaction.
    pub(super) fn compaction_due(&self) -> bool {
        self.appended > COMPACT_AFTER.max(self.compacted)
    }

    /// Forgets tasks past the retention in `tasks` and rewrites the file
    /// compactly from them (a crash leaves the old or the new file whole).
    pub(super) fn compact_if_due(&mut self, tasks: &mut Tasks) {
        if self.compaction_due() {
            tasks.forget_before(unix_now(), self.retention_secs);
            self.compact(&tasks.entries);
        }
    }

    /// Rewrites the file from `entries`; a failure is logged and
    /// appending goes on.
    pub(super) fn compact(&mut self, entries: &HashMap<u64, Entry>) {
        match rewrite(&self.path, entries) {
            Ok((file, size)) => {
                (self.file, self.compacted) = (file, size);
                self.appended = 0;
            }
            Err(e) => tracing::warn!(
                "remote: task journal {}: compaction failed ({e}); appending goes on",
                self.path.display()
            ),
        }
    }

    pub(super) fn retention_secs(&self) -> u64 {
        self.retention_secs
    }

    fn wait_at_gate(&self) {
        let Some(gate) = &self.gate else { return };
        if gate.exists() {
            tracing::info!(
                "remote: task journal {}: a write waits for the test gate {}",
                self.path.display(),
                gate.display()
            );
        }
        while gate.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let mut text = Vec::new();
        for (id, e) in entries {
            let mut line = |l: Line| {
                serde_json::to_writer(&mut text, &l).map_err(std::io::Error::other)?;
                text.push(b'\n');
                Ok::<_, std::io::Error>(())
            };
            line(Line::received(*id, e.at))?;
            if e.phase != TaskPhase::Received {
                line(Line {
                    id: *id,
                    phase: e.phase,
                    at: None,
                    result: e.result.clone(),
                })?;
            }
        }
        out.write_all(&text)?;
        out.sync_all()?;
        out.metadata()?.len()
    };
    std::fs::rename(&tmp, path)?;
    Ok((OpenOptions::new().append(true).open(path)?, size))
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
