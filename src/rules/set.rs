//! All rule files of a directory, each in its own VM: one file's globals,
//! errors or runaway loops never reach another's.

use super::file::{Fired, HandlerError, RuleFile};
use crate::collectd::{Metric, Notification};
use crate::lua::VmLimits;
use std::path::{Path, PathBuf};

/// What one event led to across every file.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub fired: Vec<Fired>,
    pub errors: Vec<HandlerError>,
    /// `(file, line)` for each `print`.
    pub printed: Vec<(PathBuf, String)>,
}

/// The loaded rule files.
#[derive(Default)]
pub struct RuleSet {
    files: Vec<RuleFile>,
}

impl RuleSet {
    /// Loads every `*.lua` directly in `dir` (not recursively), in name
    /// order. Files that fail to load are returned as errors; the others
    /// are loaded.
    pub fn load_dir(dir: &Path, limits: VmLimits) -> (RuleSet, Vec<String>) {
        match lua_files(dir) {
            Ok(paths) => Self::load_files(&paths, limits),
            Err(e) => (RuleSet::default(), vec![format!("{}: {e}", dir.display())]),
        }
    }

    /// Loads the given files.
    pub fn load_files(paths: &[PathBuf], limits: VmLimits) -> (RuleSet, Vec<String>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for path in paths {
            match RuleFile::load(path, limits) {
                Ok(file) => set.files.push(file),
                Err(e) => errors.push(e),
            }
        }
        (set, errors)
    }

    pub fn files(&self) -> &[RuleFile] {
        &self.files
    }

    pub fn on_metric(&mut self, metric: &Metric) -> Evaluation {
        self.each(|f| f.on_metric(metric))
    }

    pub fn on_notification(&mut self, n: &Notification) -> Evaluation {
        self.each(|f| f.on_notification(n))
    }

    fn each(
        &mut self,
        mut offer: impl FnMut(&mut RuleFile) -> (Vec<Fired>, Vec<HandlerError>),
    ) -> Evaluation {
        let mut out = Evaluation::default();
        for file in &mut self.files {
            let (fired, errors) = offer(file);
            out.fired.extend(fired);
            out.errors.extend(errors);
            let path = file.path().to_path_buf();
            out.printed
                .extend(file.take_printed().into_iter().map(|l| (path.clone(), l)));
        }
        out
    }
}

/// `*.lua` files directly in `dir`, sorted.
pub fn lua_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}
