//! After a rule set is installed: whether the engine runs the new files
//! (each active in a worker other than the one that ran its old version),
//! and, during the grace period, whether one of them was quarantined.
//! Pure: the caller polls what `status` shows.

use std::collections::BTreeMap;

/// One rule file as `status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSeen {
    pub path: String,
    /// `starting`, `active`, `not loaded`, `restarting`, `quarantined`.
    pub state: String,
    pub pid: Option<u32>,
    /// The last thing said about it.
    pub note: Option<String>,
}

/// Where the new set is.
#[derive(Clone, Debug, PartialEq)]
pub enum Loading {
    /// Not every file runs its new version yet.
    Waiting,
    /// Every file does.
    Loaded,
    /// This file will not run: its path and why.
    Failed(String),
}

/// Whether every path of `pushed` (with the worker that ran its old
/// version, if any) runs its new version in `seen`.
pub fn loading(pushed: &BTreeMap<String, Option<u32>>, seen: &[FileSeen]) -> Loading {
    for (path, before) in pushed {
        let Some(file) = seen.iter().find(|f| f.path == *path) else {
            return Loading::Waiting;
        };
        let why = || file.note.clone().unwrap_or_else(|| file.state.clone());
        match file.state.as_str() {
            "not loaded" | "quarantined" => return Loading::Failed(format!("{path}: {}", why())),
            // The old version stays active when the new one does not load.
            "active"
                if file
                    .note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("the changed file was not loaded")) =>
            {
                return Loading::Failed(format!("{path}: {}", why()));
            }
            "active" if file.pid.is_some() && file.pid != *before => {}
            _ => return Loading::Waiting,
        }
    }
    Loading::Loaded
}

/// The first file of `pushed` that `seen` shows quarantined.
pub fn quarantined<'a>(
    pushed: impl IntoIterator<Item = &'a String>,
    seen: &[FileSeen],
) -> Option<String> {
    pushed.into_iter().find_map(|path| {
        seen.iter()
            .find(|f| f.path == *path && f.state == "quarantined")
            .map(|f| format!("{path}: {}", f.note.as_deref().unwrap_or("quarantined")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &str, state: &str, pid: Option<u32>, note: Option<&str>) -> FileSeen {
        FileSeen {
            path: path.into(),
            state: state.into(),
            pid,
            note: note.map(Into::into),
        }
    }

    #[test]
    fn a_set_is_loaded_when_every_file_runs_in_a_new_worker() {
        let pushed = BTreeMap::from([
            ("/r/a.lua".to_string(), Some(10)),
            ("/r/b.lua".to_string(), None),
        ]);
        // The old version of a.lua still runs; b.lua not seen yet.
        let old = [seen("/r/a.lua", "active", Some(10), None)];
        assert_eq!(loading(&pushed, &old), Loading::Waiting);
        let half = [
            seen(
                "/r/a.lua",
                "active",
                Some(11),
                Some("reloaded (new version active)"),
            ),
            seen("/r/b.lua", "starting", Some(12), None),
        ];
        assert_eq!(loading(&pushed, &half), Loading::Waiting);
        let all = [
            seen("/r/a.lua", "active", Some(11), None),
            seen("/r/b.lua", "active", Some(12), Some("loaded")),
        ];
        assert_eq!(loading(&pushed, &all), Loading::Loaded);
        let broken = [
            seen(
                "/r/a.lua",
                "active",
                Some(10),
                Some("the changed file was not loaded, the previous version stays active: x"),
            ),
            seen("/r/b.lua", "active", Some(12), None),
        ];
        assert!(matches!(loading(&pushed, &broken), Loading::Failed(why) if why.contains("a.lua")));
        let not_loaded = [
            seen("/r/a.lua", "active", Some(11), None),
            seen("/r/b.lua", "not loaded", None, Some("not loaded: boom")),
        ];
        assert!(
            matches!(loading(&pushed, &not_loaded), Loading::Failed(why) if why.contains("boom"))
        );
    }

    #[test]
    fn a_quarantined_file_of_the_set_is_found() {
        let pushed = ["/r/a.lua".to_string()];
        let calm = [
            seen("/r/a.lua", "restarting", None, None),
            seen("/r/x.lua", "quarantined", None, None),
        ];
        assert_eq!(quarantined(&pushed, &calm), None);
        let bad = [seen("/r/a.lua", "quarantined", None, Some("died 5 times"))];
        assert!(quarantined(&pushed, &bad).unwrap().contains("died 5 times"));
    }
}
