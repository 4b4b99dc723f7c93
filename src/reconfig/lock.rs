//! "Another replacement is running" (0x2000), without the old project's
//! defect of a stale lock blocking every later replacement forever: the
//! lock names the helper's pid, and a lock whose helper is dead is taken over.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A helper that has not written its pid by then never started.
const START_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct LockFile {
    task_id: u64,
    /// Seconds since the epoch when the plugin took the lock.
    since: u64,
    /// The helper's pid, once it runs.
    helper_pid: Option<u32>,
}

/// Why the lock could not be taken.
#[derive(Debug, PartialEq)]
pub enum Busy {
    /// A live helper holds it for this task.
    Running { task_id: u64 },
    /// The lock file cannot be created or read.
    Broken(String),
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Takes the lock for `task_id`, replacing a stale one. Returns a note when
/// a stale lock was taken over.
pub fn acquire(path: &Path, task_id: u64) -> Result<Option<String>, Busy> {
    let mut note = None;
    if let Ok(text) = std::fs::read_to_string(path) {
        match serde_json::from_str::<LockFile>(&text) {
            Ok(l) => {
                let running = match l.helper_pid {
                    Some(pid) => alive(pid),
                    None => now().saturating_sub(l.since) < START_GRACE.as_secs(),
                };
                if running {
                    return Err(Busy::Running { task_id: l.task_id });
                }
                note = Some(format!(
                    "took over the stale lock of task {} (its helper is gone)",
                    l.task_id
                ));
            }
            Err(_) => note = Some("replaced an unreadable lock file".into()),
        }
        let _ = std::fs::remove_file(path);
    }
    write(
        path,
        &LockFile {
            task_id,
            since: now(),
            helper_pid: None,
        },
        true,
    )?;
    Ok(note)
}

/// Records the helper's pid in the lock (called by the helper itself).
pub fn claim(path: &Path, task_id: u64) -> Result<(), String> {
    let lock = LockFile {
        task_id,
        since: now(),
        helper_pid: Some(std::process::id()),
    };
    write(path, &lock, false).map_err(|b| format!("{b:?}"))
}

/// Removes the lock if it still belongs to `task_id`.
pub fn release(path: &Path, task_id: u64) {
    let ours = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<LockFile>(&t).ok())
        .is_some_and(|l| l.task_id == task_id);
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

fn write(path: &Path, lock: &LockFile, create_new: bool) -> Result<(), Busy> {
    let text = serde_json::to_vec(lock).map_err(|e| Busy::Broken(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut f = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Busy::Running { task_id: 0 },
        _ => Busy::Broken(format!("{}: {e}", path.display())),
    })?;
    f.write_all(&text)
        .map_err(|e| Busy::Broken(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_blocks_and_a_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replace.lock");
        assert_eq!(acquire(&path, 1), Ok(None));
        // Not yet claimed, within the start grace: busy.
        assert_eq!(acquire(&path, 2), Err(Busy::Running { task_id: 1 }));
        claim(&path, 1).unwrap(); // our own pid: alive
        assert_eq!(acquire(&path, 2), Err(Busy::Running { task_id: 1 }));
        // A helper that died (no process can have this pid).
        let dead = LockFile {
            task_id: 1,
            since: now(),
            helper_pid: Some(u32::MAX),
        };
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        assert!(
            acquire(&path, 2)
                .unwrap()
                .unwrap()
                .contains("stale lock of task 1")
        );
        release(&path, 1);
        assert!(path.exists(), "task 1 must not release task 2's lock");
        release(&path, 2);
        assert!(!path.exists());
    }

    #[test]
    fn zombies_are_not_alive() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
