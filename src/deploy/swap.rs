//! Putting a staged set in place as one step across crashes. The rule
//! directory and config.json live apart (each swapped in one rename), so
//! the swap is journalled: an intent file in `StateDir` says what is about
//! to move before anything moves, and is removed once both have. Started
//! again after a crash ([`recover`], before the engine reads the rule
//! directory), the plugin finishes a swap that had completed and undoes
//! one that had not: the new files never run with the old config.json,
//! nor the old files with the new one.

use super::install::{Places, Staged, rule_set_digest as digest_of_dir};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The intent file in `StateDir`.
const INTENT: &str = "rules-swap.json";
/// Largest intent file read.
const MAX_INTENT: u64 = 64 * 1024;

/// What a swap moves.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Intent {
    task_id: u64,
    /// The staged rule directory, the running one, whether that existed
    /// (then the two are exchanged: the old set ends at the staged path),
    /// and the new set's digest.
    files: Option<FilesMove>,
    /// The staged config.json and the running one.
    config: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct FilesMove {
    staged: PathBuf,
    target: PathBuf,
    existed: bool,
    digest: String,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// For the tests that kill collectd in the middle of a swap: with
/// `COLLECTD_MONITOR_TEST_CRASH_AT` set to `step`, the process is killed
/// (SIGKILL, as `kill -9`) there.
pub(super) fn crash_point(step: &str) {
    if std::env::var_os("COLLECTD_MONITOR_TEST_CRASH_AT").is_some_and(|s| s == step) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Exchanges two paths in one step (both exist).
fn exchange(a: &Path, b: &Path) -> Result<(), String> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE)
        .map_err(|e| format!("{}: {e}", b.display()))
}

/// Puts `staged` in place: the intent first, then the rule directory,
/// then config.json, then the intent goes.
pub fn install(places: &Places, staged: &Staged, task_id: u64) -> Result<(), String> {
    let intent = Intent::of(places, staged, task_id);
    let path = write_intent(places, &intent)?;
    crash_point("after-intent");
    if let Some(f) = &intent.files {
        if f.existed {
            exchange(&f.staged, &f.target)?;
        } else {
            std::fs::rename(&f.staged, &f.target).map_err(io(&f.target))?;
        }
    }
    crash_point("after-rules-swap");
    if let Some((new, target)) = &intent.config {
        std::fs::rename(new, target).map_err(io(target))?;
    }
    crash_point("after-config");
    finish(&intent, &path);
    Ok(())
}

impl Intent {
    /// What putting `staged` in place will move.
    fn of(places: &Places, staged: &Staged, task_id: u64) -> Intent {
        Intent {
            task_id,
            files: staged.files.as_ref().map(|dir| FilesMove {
                staged: dir.clone(),
                target: places.rules_dir.clone(),
                existed: places.rules_dir.exists(),
                digest: digest_of_dir(dir),
            }),
            config: staged.config.clone().zip(places.config_json.clone()),
        }
    }
}

/// Records `intent` in the state directory (replaced in one step); its
/// path.
fn write_intent(places: &Places, intent: &Intent) -> Result<PathBuf, String> {
    let path = places.state_dir.join(INTENT);
    std::fs::create_dir_all(&places.state_dir).map_err(io(&places.state_dir))?;
    let text = serde_json::to_vec(intent).map_err(|e| e.to_string())?;
    crate::files::replace_private(&path, &text).map_err(io(&path))?;
    Ok(path)
}

/// A swap that moved everything: the old set (at the staged path) and the
/// intent go.
fn finish(intent: &Intent, path: &Path) {
    if let Some(f) = &intent.files {
        let _ = std::fs::remove_dir_all(&f.staged);
    }
    let _ = std::fs::remove_file(path);
}

/// Finishes or undoes a swap a crash interrupted; what was done, for the
/// log (`None`: there was none).
pub fn recover(places: &Places) -> Option<String> {
    let path = places.state_dir.join(INTENT);
    let read = crate::files::read_regular(&path, MAX_INTENT, crate::files::Links::Refuse);
    let intent: Intent = match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("{}: {e}; left as it is", path.display())),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(intent) => intent,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Some(format!("{}: {e}; removed", path.display()));
            }
        },
    };
    // Only the places this plugin swaps: an intent naming others is not
    // one it wrote.
    let ours = intent
        .files
        .as_ref()
        .is_none_or(|f| f.target == places.rules_dir)
        && intent
            .config
            .as_ref()
            .is_none_or(|(_, target)| Some(target) == places.config_json.as_ref());
    if !ours {
        let _ = std::fs::remove_file(&path);
        return Some(format!("{}: names other places; removed", path.display()));
    }
    let files_moved = intent
        .files
        .as_ref()
        .is_none_or(|f| f.target.exists() && digest_of_dir(&f.target) == f.digest);
    let config_moved = intent.config.as_ref().is_none_or(|(new, _)| !new.exists());
    let task = intent.task_id;
    if files_moved && config_moved {
        finish(&intent, &path);
        return Some(format!(
            "the rule push of task {task} had put everything in place when collectd stopped; it stays"
        ));
    }
    // Undo: the old set back where it was, the new config.json unused.
    let mut problems = Vec::new();
    if let Some(f) = &intent.files
        && files_moved
    {
        let back = if f.existed {
            exchange(&f.staged, &f.target)
        } else {
            std::fs::rename(&f.target, &f.staged).map_err(io(&f.target))
        };
        problems.extend(back.err());
    }
    if let Some(f) = &intent.files {
        let _ = std::fs::remove_dir_all(&f.staged);
    }
    if let Some((new, _)) = &intent.config {
        let _ = std::fs::remove_file(new);
    }
    let _ = std::fs::remove_file(&path);
    Some(if problems.is_empty() {
        format!(
            "the rule push of task {task} was interrupted when collectd stopped; undone, the previous rule files and config.json stay"
        )
    } else {
        format!(
            "the rule push of task {task} was interrupted and could not be undone: {}",
            problems.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::Bundle;
    use std::collections::BTreeMap;

    use crate::deploy::install::tests::places;

    fn setup() -> (tempfile::TempDir, Places, Staged) {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        std::fs::create_dir_all(&p.rules_dir).unwrap();
        std::fs::write(p.rules_dir.join("old.lua"), "return {}").unwrap();
        std::fs::write(p.config_json.as_ref().unwrap(), "{\"old\": 1}").unwrap();
        let bundle = Bundle {
            files: Some(BTreeMap::from([("new.lua".into(), "return {}".into())])),
            config: Some("{\"new\": 1}".into()),
        };
        let staged = super::super::install::stage(&p, &bundle, 7).unwrap();
        (dir, p, staged)
    }

    fn state(p: &Places) -> (bool, bool, String) {
        (
            p.rules_dir.join("old.lua").exists(),
            p.rules_dir.join("new.lua").exists(),
            std::fs::read_to_string(p.config_json.as_ref().unwrap()).unwrap(),
        )
    }

    #[test]
    fn a_whole_swap_moves_both_and_leaves_nothing() {
        let (_dir, p, staged) = setup();
        install(&p, &staged, 7).unwrap();
        assert_eq!(state(&p), (false, true, "{\"new\": 1}".into()));
        assert_eq!(recover(&p), None);
        assert!(!p.state_dir.join(INTENT).exists());
    }

    /// A crash after the rule directory moved, before config.json did:
    /// the intent is there, the rules new, the config old.
    #[test]
    fn a_half_done_swap_is_undone_and_a_done_one_kept() {
        let (_dir, p, staged) = setup();
        let intent = Intent::of(&p, &staged, 7);
        write_intent(&p, &intent).unwrap();
        let f = intent.files.as_ref().unwrap();
        exchange(&f.staged, &f.target).unwrap();
        assert_eq!(state(&p), (false, true, "{\"old\": 1}".into()));
        let said = recover(&p).unwrap();
        assert!(said.contains("undone"), "{said}");
        assert_eq!(state(&p), (true, false, "{\"old\": 1}".into()));
        assert!(!f.staged.exists() && !intent.config.as_ref().unwrap().0.exists());
        // Interrupted after both moved: kept.
        let (_dir, p, staged) = setup();
        let staged_dir = staged.files.clone().unwrap();
        let intent = Intent::of(&p, &staged, 8);
        write_intent(&p, &intent).unwrap();
        exchange(&staged_dir, &p.rules_dir).unwrap();
        let (new, target) = intent.config.as_ref().unwrap();
        std::fs::rename(new, target).unwrap();
        assert!(recover(&p).unwrap().contains("it stays"));
        assert_eq!(state(&p), (false, true, "{\"new\": 1}".into()));
        assert!(!staged_dir.exists());
    }
}
