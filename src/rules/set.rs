//! All rule files of a directory, each in its own VM: one file's globals,
//! errors or runaway loops never reach another's. The debounce state of
//! every handler and value series lives here, in Rust.

use super::debounce::{State, Verdict};
use super::file::{Decision, Fired, HandlerError, HandlerOutcome, Identity, RuleFile};
use crate::events::{Metric, Missing, Notification};
use crate::lua::VmLimits;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A request a handler made that its debounce options held back.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub handler: String,
    pub reason: String,
}

/// What one event led to across every file.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub fired: Vec<Fired>,
    pub held: Vec<Held>,
    pub errors: Vec<HandlerError>,
    /// `(file, line)` for each `print`.
    pub printed: Vec<(PathBuf, String)>,
}

/// The loaded rule files.
#[derive(Default)]
pub struct RuleSet {
    files: Vec<RuleFile>,
    /// Debounce state by (handler label, value identity).
    states: HashMap<(String, String), State>,
    /// Calls per handler since the last [`RuleSet::take_calls`], by the
    /// handler's label (the same `Arc` on every outcome: found by pointer,
    /// cheaper than hashing the text on every call).
    calls: Vec<(Arc<str>, u64)>,
}

impl RuleSet {
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

    /// Turns the rule index on or off for every file (`rules test`
    /// compares both).
    pub fn set_indexed(&mut self, on: bool) {
        for f in &mut self.files {
            f.set_indexed(on);
        }
    }

    /// A set of already loaded files.
    pub fn from_files(files: Vec<RuleFile>) -> RuleSet {
        RuleSet {
            files,
            ..RuleSet::default()
        }
    }

    /// Why the set must be reloaded from scratch: a file whose instance
    /// still holds more than `limit` bytes after a full collection (which
    /// may be less than the per-call limit).
    pub fn memory_held_over(&mut self, limit: usize) -> Option<String> {
        self.files.iter_mut().find_map(|f| {
            f.memory_held_over(limit).map(|used| {
                format!(
                    "memory limit: {} still holds {used} bytes after garbage collection (more than {limit}); starting it afresh",
                    f.path().display()
                )
            })
        })
    }

    /// The first file whose Lua instance failed internally, if any: it
    /// must be loaded afresh (the worker restarts for it).
    pub fn broken_file(&self) -> Option<&RuleFile> {
        self.files.iter().find(|f| f.is_broken())
    }

    pub fn files(&self) -> &[RuleFile] {
        &self.files
    }

    /// How often each handler was called since the last take (for
    /// `status`), by label.
    pub fn take_calls(&mut self) -> Vec<(String, u64)> {
        let mut calls: Vec<(String, u64)> = self
            .calls
            .drain(..)
            .map(|(h, n)| (h.to_string(), n))
            .collect();
        calls.sort();
        calls
    }

    pub fn on_metric(&mut self, metric: &Metric) -> Evaluation {
        self.each(|| metric.series(), metric.time, |f| f.on_metric(metric))
    }

    pub fn on_notification(&mut self, n: &Notification) -> Evaluation {
        self.each(|| n.series(), n.time, |f| f.on_notification(n))
    }

    /// A silent series, to the files' `missing` handlers.
    pub fn on_missing(&mut self, m: &Missing) -> Evaluation {
        let when = m.series.time + m.silent_for;
        self.each(|| m.series.series(), when, |f| f.on_missing(m))
    }

    /// `identity` is computed only when a handler with debounce options
    /// needs its state (most events never pay for it).
    fn each(
        &mut self,
        identity: impl Fn() -> String,
        time: f64,
        mut offer: impl FnMut(&mut RuleFile) -> Vec<HandlerOutcome>,
    ) -> Evaluation {
        let mut out = Evaluation::default();
        for file in &mut self.files {
            for outcome in offer(file) {
                match self
                    .calls
                    .iter_mut()
                    .find(|(h, _)| Arc::ptr_eq(h, &outcome.handler))
                {
                    Some((_, n)) => *n += 1,
                    None => self.calls.push((Arc::clone(&outcome.handler), 1)),
                }
                let mut wants = match outcome.result {
                    Ok(w) => w,
                    Err((reason, limit)) => {
                        out.errors.push(HandlerError {
                            handler: outcome.handler.to_string(),
                            reason,
                            limit,
                        });
                        continue;
                    }
                };
                // An inhibited decision goes out as such, past the debounce
                // state: it is not carried out, so it spends no hit and
                // starts no repeat interval.
                let fired = |d: Decision| Fired {
                    handler: outcome.handler.to_string(),
                    service: d.command.service,
                    command: d.command.command,
                    host: d.host,
                    cooldown: outcome.policy.cooldown,
                    inhibited: d.inhibited,
                    notify: d.notify,
                };
                if let Some(d) = wants.take_if(|d| d.inhibited.is_some()) {
                    out.fired.push(fired(d));
                    continue;
                }
                // Plain handlers (the old API) act on every request; the
                // others go through their series' debounce state.
                let verdict = if outcome.policy.is_plain() {
                    Verdict::Fire
                } else {
                    let key = (outcome.handler.to_string(), identity());
                    let verdict = self.states.entry(key.clone()).or_default().step(
                        &outcome.policy,
                        wants.is_some(),
                        time,
                    );
                    if verdict == Verdict::Clear {
                        self.states.remove(&key);
                    }
                    verdict
                };
                let reason = match verdict {
                    Verdict::Clear => continue,
                    Verdict::Fire => {
                        if let Some(d) = wants {
                            out.fired.push(fired(d));
                        }
                        continue;
                    }
                    Verdict::Waiting { have, need } => format!("{have} of {need} hits"),
                    Verdict::TooSoon { ago, interval } => {
                        format!("acted {ago:.0} s ago (repeat_interval {interval:.0} s)")
                    }
                    Verdict::GaveUp { after, within } => {
                        format!(
                            "gave up after {after} actions within {within:.0} s, until the condition clears"
                        )
                    }
                };
                out.held.push(Held {
                    handler: outcome.handler.to_string(),
                    reason,
                });
            }
            let path = file.path().to_path_buf();
            out.printed
                .extend(file.take_printed().into_iter().map(|l| (path.clone(), l)));
        }
        out
    }
}

/// `*.lua` entries directly in `dir`, sorted: whatever their kind (a
/// FIFO, a link, a directory), so that loading one that is not a plain
/// file fails with a reason (`read_rule_file`) instead of the file being
/// passed over in silence.
pub fn lua_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    paths.sort();
    Ok(paths)
}
