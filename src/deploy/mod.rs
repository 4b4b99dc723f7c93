//! Rule files and config.json pushed to a host (`send-rules`,
//! `send-monitor-config`), as a collectd.conf push but for this plugin's
//! own inputs: the new set is checked on the host before anything changes
//! (`rules check` in a process of its own, every service/command against
//! config.json), swapped in whole, and the running set kept for a one-step
//! `rollback`. Once in place, the answer waits until every new file runs;
//! a file that does not load brings the previous set back at once, and one
//! quarantined within `RulesGracePeriod` brings it back by itself.

mod bundle;
mod install;
mod settings;
mod swap;
mod watch;

pub use bundle::{Bundle, MAX_FILE_BYTES, Rollback, valid_file_name};
pub use install::{Places, Versions, rule_set_digest};
pub use swap::recover;

use crate::history::{History, Record};
use crate::status::Board;
use crate::task::{TaskResult, code};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watch::{FileSeen, Loading};

/// How often the rule files' states are looked at.
const POLL: Duration = Duration::from_millis(200);

/// Carries out rule pushes and rollbacks on this host, one at a time.
pub struct Deployer {
    places: Places,
    board: Arc<Board>,
    /// How long the new files may take to load (the engine looks at the
    /// directory every `RuleReloadInterval`).
    load_wait: Duration,
    grace: Duration,
    history: Option<Arc<History>>,
    busy: Mutex<()>,
    /// Counts installs: a grace watch ends when a newer set is installed.
    generation: AtomicU64,
    /// The last digest, and the files' fingerprint it was made of.
    digest: Mutex<Option<(install::Fingerprint, Versions)>>,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deployer({})", self.places.rules_dir.display())
    }
}

impl Deployer {
    /// A deployer for `places`; removes what an interrupted push left.
    pub fn new(
        places: Places,
        board: Arc<Board>,
        reload_interval: Duration,
        grace: Duration,
        history: Option<Arc<History>>,
    ) -> Deployer {
        install::sweep(&places);
        Deployer {
            places,
            board,
            load_wait: reload_interval * 2 + Duration::from_secs(60),
            grace,
            history,
            busy: Mutex::new(()),
            generation: AtomicU64::new(0),
            digest: Mutex::new(None),
        }
    }

    /// The digest of the running set, for the presence: read again only
    /// when a file's size or time changed.
    pub fn digest(&self) -> Versions {
        let fingerprint = self.places.fingerprint();
        let Ok(mut cached) = self.digest.lock() else {
            return self.places.digest();
        };
        match &*cached {
            Some((seen, versions)) if *seen == fingerprint => versions.clone(),
            _ => {
                let versions = self.places.digest();
                *cached = Some((fingerprint, versions.clone()));
                versions
            }
        }
    }

    /// Installs `bundle` (blocking: checks, swap, the files loading).
    pub fn push(self: &Arc<Self>, task_id: u64, bundle: &Bundle, who: &str) -> TaskResult {
        let Ok(_busy) = self.busy.try_lock() else {
            return busy(task_id);
        };
        let fail = |c: i64, m: String| TaskResult::now(task_id, c, m);
        if let Err(why) = bundle.check() {
            return fail(code::RULES_INVALID, why);
        }
        let staged = match install::stage(&self.places, bundle, task_id) {
            Ok(s) => s,
            Err(why) => return fail(code::RULES_SWAP_FAILED, format!("nothing changed: {why}")),
        };
        if let Err(why) = install::check(&self.places, &staged) {
            install::discard(&staged);
            let code = match why {
                install::CheckError::Invalid(_) => code::RULES_INVALID,
                install::CheckError::Settings(_) => code::RULES_SETTING_REFUSED,
            };
            return fail(code, format!("nothing changed:\n{why}"));
        }
        if let Err(why) = install::keep_previous(&self.places) {
            install::discard(&staged);
            return fail(
                code::RULES_SWAP_FAILED,
                format!("nothing changed: the running set could not be kept: {why}"),
            );
        }
        let pushed = self.running_workers(bundle);
        if let Err(why) = swap::install(&self.places, &staged, task_id) {
            install::discard(&staged);
            return fail(code::RULES_SWAP_FAILED, format!("nothing changed: {why}"));
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let digest = self.places.digest().rule_set;
        tracing::warn!(
            "rules: {} installed by {who} (task {task_id}, rule set {digest})",
            bundle.describe()
        );
        if let Loading::Failed(why) = self.wait_for(&pushed) {
            let back = self.restore(task_id);
            return fail(
                code::RULES_ROLLED_BACK,
                format!("{why}; the previous set is back ({back})"),
            );
        }
        self.watch_grace(generation, pushed.into_keys().collect(), who.to_string());
        let config = if bundle.config.is_some() {
            " config.json: Services apply now, other settings at collectd's next start."
        } else {
            ""
        };
        TaskResult::now(
            task_id,
            0,
            format!(
                "installed {} (rule set {digest}); the previous set is kept for rollback and comes back by itself if a new file is quarantined within {} s.{config}",
                bundle.describe(),
                self.grace.as_secs()
            ),
        )
    }

    /// Brings the kept set back (and keeps the running one in its place).
    pub fn rollback(self: &Arc<Self>, task_id: u64, who: &str) -> TaskResult {
        let Ok(_busy) = self.busy.try_lock() else {
            return busy(task_id);
        };
        match install::previous_bundle(&self.places) {
            Ok(None) => TaskResult::now(
                task_id,
                code::RULES_NO_PREVIOUS,
                "no previous rule set is kept on this host",
            ),
            Err(why) => TaskResult::now(task_id, code::RULES_SWAP_FAILED, why),
            Ok(Some(_)) => {
                let back = self.restore(task_id);
                tracing::warn!("rules: rolled back by {who} (task {task_id}): {back}");
                let code = match back {
                    Restored::Back(_) => 0,
                    Restored::Failed(_) => code::RULES_SWAP_FAILED,
                };
                TaskResult::now(task_id, code, format!("rolled back: {back}"))
            }
        }
    }

    /// Puts the kept set in place of the running one; what happened, in
    /// words (`rule set abc...` when it worked).
    fn restore(&self, task_id: u64) -> Restored {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let swapped = install::previous_bundle(&self.places).and_then(|previous| {
            let previous = previous.ok_or("no previous set is kept")?;
            let staged = install::stage(&self.places, &previous, task_id)?;
            install::keep_previous(&self.places)
                .and_then(|()| swap::install(&self.places, &staged, task_id))
                .inspect_err(|_| install::discard(&staged))
        });
        match swapped {
            Ok(()) => Restored::Back(self.places.digest().rule_set),
            Err(why) => {
                tracing::error!("rules: the previous set could not be put back: {why}");
                Restored::Failed(why)
            }
        }
    }

    /// The paths the new set's files will have, with the worker each runs
    /// in now (a changed file runs its new version in a new one).
    fn running_workers(&self, bundle: &Bundle) -> BTreeMap<String, Option<u32>> {
        let now = self.board.file_statuses();
        bundle
            .files
            .iter()
            .flat_map(|f| f.keys())
            .map(|name| {
                let path = self.places.rules_dir.join(name).display().to_string();
                let pid = now
                    .iter()
                    .find(|f| f.path == path && f.state == "active")
                    .and_then(|f| f.worker_pid);
                (path, pid)
            })
            .collect()
    }

    fn seen(&self) -> Vec<FileSeen> {
        self.board
            .file_statuses()
            .into_iter()
            .map(|f| FileSeen {
                path: f.path,
                state: f.state,
                pid: f.worker_pid,
                note: f.note,
            })
            .collect()
    }

    /// Waits until every pushed file runs its new version, or one fails,
    /// or the wait is over (a failure too).
    fn wait_for(&self, pushed: &BTreeMap<String, Option<u32>>) -> Loading {
        let deadline = Instant::now() + self.load_wait;
        loop {
            match watch::loading(pushed, &self.seen()) {
                Loading::Waiting if Instant::now() < deadline => std::thread::sleep(POLL),
                Loading::Waiting => {
                    return Loading::Failed(format!(
                        "the new files did not all run within {} s",
                        self.load_wait.as_secs()
                    ));
                }
                done => return done,
            }
        }
    }

    /// Watches the new files for the grace period, on a thread of its own;
    /// a quarantined one brings the previous set back.
    fn watch_grace(self: &Arc<Self>, generation: u64, pushed: Vec<String>, who: String) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("monitor-rules-grace".into())
            .spawn(move || {
                let end = Instant::now() + me.grace;
                while Instant::now() < end {
                    if me.generation.load(Ordering::SeqCst) != generation {
                        return;
                    }
                    if let Some(why) = watch::quarantined(&pushed, &me.seen()) {
                        let Ok(_busy) = me.busy.lock() else { return };
                        if me.generation.load(Ordering::SeqCst) != generation {
                            return;
                        }
                        let back = me.restore(0);
                        tracing::error!(
                            "rules: {why} within the grace period of the set installed by {who}; rolled back by itself: {back}"
                        );
                        if let Some(history) = &me.history {
                            history.record(
                                Record::new("rollback", "rule set", "grace period")
                                    .outcome(&format!("{why}; {back}")),
                            );
                        }
                        return;
                    }
                    std::thread::sleep(POLL * 5);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("rules: cannot watch the new set for its grace period: {e}");
        }
    }
}

fn busy(task_id: u64) -> TaskResult {
    TaskResult::now(
        task_id,
        code::RULES_BUSY,
        "another rule push or rollback is under way; try again when it has answered",
    )
}

/// What putting the kept set back gave.
enum Restored {
    /// It runs: its digest.
    Back(String),
    /// It could not be put back: why.
    Failed(String),
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Restored::Back(digest) => write!(f, "rule set {digest}"),
            Restored::Failed(why) => write!(f, "the previous set could not be put back: {why}"),
        }
    }
}
