//! The third stage of a request: carrying out what [`super::decide`]
//! decided, off the event loop. An accepted task's journal lines go to the
//! journal's thread; once they are on disk the task is acknowledged and
//! its work runs on a blocking thread (a command, a pause, a history read,
//! a rule push, a collectd.conf check), whose result goes to the publisher.

use super::acks::Acks;
use super::journal::{JournalWriter, Line, TaskPhase};
use super::message::Ask;
use super::publisher::Outgoing;
use crate::actions::{Runner, Summary};
use crate::history::Record;
use crate::mqtt::Publish;
use crate::reconfig::{self, ReplaceContext};
use crate::task::{TaskResult, code};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// What carries out decisions; cloned into each task's work.
#[derive(Clone)]
pub(super) struct Executor {
    pub runner: Arc<Runner>,
    pub results: mpsc::Sender<Outgoing>,
    pub journal: JournalWriter,
    pub acks: Arc<Acks>,
    pub history: Option<Arc<crate::history::History>>,
    pub pauses: Option<Arc<crate::pause::PauseBook>>,
    pub deployer: Option<Arc<crate::deploy::Deployer>>,
    pub replace: ReplaceContext,
    /// The host's presence as it is now, sent after a request that may
    /// have changed it (pauses, the rule set) and before its answer: who
    /// reads the answer finds the presence up to date.
    pub presence: Arc<dyn Fn() -> Option<Outgoing> + Send + Sync>,
}

/// A collectd.conf push to carry out.
pub(super) struct Replacement {
    pub task_id: u64,
    pub config: String,
    pub may_change_block: bool,
    pub dry_run: bool,
    pub who: String,
}

impl Executor {
    /// Accepts task `task_id` (its `lines` journaled) and, once they are
    /// on disk, acknowledges `p` and runs `work` on a blocking thread. A
    /// task the journal could not record (a full disk, say) is refused and
    /// acknowledged, not run: leaving it unacknowledged would have the
    /// broker deliver it again and again while the disk stays full.
    pub fn accept(
        &self,
        p: &Publish,
        task_id: u64,
        lines: Vec<Line>,
        work: impl FnOnce(&Executor) + Send + 'static,
    ) {
        let ticket = self.acks.later(p);
        let written = self.journal.accept(lines);
        let exec = self.clone();
        tokio::spawn(async move {
            let written = written
                .await
                .unwrap_or_else(|_| Err(exec.journal.not_recorded("its writer has stopped")));
            if let Err(e) = written {
                error!("remote: task {task_id} not run: it could not be recorded: {e}");
                let result = TaskResult::now(
                    task_id,
                    code::NOT_RECORDED,
                    format!("not run: the task could not be recorded ({e})"),
                );
                let _ = exec.results.send(Outgoing::refusal(result)).await;
                return exec.acks.ready(ticket);
            }
            exec.acks.ready(ticket);
            let worker = exec.clone();
            let done = tokio::task::spawn_blocking(move || work(&worker)).await;
            if let Err(e) = done.map_err(|e| e.try_into_panic()) {
                let why = match e {
                    Ok(panic) => crate::panics::message(&*panic),
                    Err(e) => e.to_string(),
                };
                error!("remote: task {task_id}: its work stopped unfinished: {why}");
                let result = TaskResult::now(task_id, code::INTERRUPTED, why);
                let _ = exec.results.send(Outgoing::accepted(result)).await;
            }
        });
    }

    /// Runs a command (blocking) and sends its result.
    pub fn run(&self, task_id: u64, command: &Command, who: &str) {
        let started = Instant::now();
        let Command {
            service,
            command,
            line,
            timeout,
        } = command;
        let announce = || info!("remote: task {task_id}: running {service}/{command}");
        let (code, message) = self
            .runner
            .run_announced(service, command, line, *timeout, announce)
            .summary(service, command);
        info!("remote: task {task_id}: {service}/{command} finished with code {code}");
        self.remember(
            Record::new("remote", &format!("{service}/{command}"), who)
                .task(task_id)
                .result(code, &message)
                .took(started.elapsed()),
        );
        self.finish(TaskResult::now(task_id, code, message));
    }

    /// Carries out a request with a body (blocking) and sends its answer.
    pub fn ask(&self, task_id: u64, ask: Ask, who: &str, rights: Option<&crate::auth::Rights>) {
        let started = Instant::now();
        let (kind, what) = (ask.kind(), ask.describe());
        let result = self.answer(task_id, ask, who, rights);
        info!(
            "remote: task {task_id} from {who}: code {:#x}: {}",
            result.code,
            brief(&result.message)
        );
        // Reading the history changes nothing worth recording, nor the
        // presence; every other kind may change what the presence says.
        if kind != crate::auth::BodyKind::History {
            self.remember(
                Record::new(kind.name(), &what, who)
                    .task(task_id)
                    .result(result.code, &result.message)
                    .took(started.elapsed()),
            );
            if let Some(presence) = (self.presence)() {
                let _ = self.results.blocking_send(presence);
            }
        }
        self.finish(result);
    }

    fn answer(
        &self,
        task_id: u64,
        ask: Ask,
        who: &str,
        rights: Option<&crate::auth::Rights>,
    ) -> TaskResult {
        let ok = |message: String| TaskResult::now(task_id, 0, message);
        let fail = |code: i64, message: String| TaskResult::now(task_id, code, message);
        let answered = match ask {
            Ask::Pause(change) => self.pauses.as_ref().map(|book| {
                book.apply(false, change, who)
                    .map_or_else(|e| fail(code::INVALID_REQUEST, e), ok)
            }),
            Ask::Resume(change) => self.pauses.as_ref().map(|book| {
                book.apply(true, change, who)
                    .map_or_else(|e| fail(code::INVALID_REQUEST, e), ok)
            }),
            Ask::History(query) => self.history.as_ref().map(|h| {
                h.query(&query).map_or_else(
                    |e| fail(code::HISTORY_UNAVAILABLE, e),
                    |records| ok(super::history_answer::answer(&records, rights)),
                )
            }),
            Ask::Rules(bundle) => self
                .deployer
                .as_ref()
                .map(|d| d.push(task_id, &bundle, who)),
            Ask::Rollback(_) => self.deployer.as_ref().map(|d| d.rollback(task_id, who)),
        };
        answered.unwrap_or_else(|| {
            fail(
                code::UNSUPPORTED,
                "this host keeps no pauses, history or rule set to push to".into(),
            )
        })
    }

    /// A collectd.conf push (blocking: collectd's parser reads it):
    /// validated here, carried out by the helper, which publishes the
    /// result itself.
    pub fn replace(&self, r: &Replacement) {
        let task_id = r.task_id;
        info!(
            "remote: task {task_id}: collectd.conf replacement requested ({} bytes){}",
            r.config.len(),
            if r.dry_run { ", a dry run" } else { "" }
        );
        let what = if r.dry_run {
            "collectd.conf (dry run)"
        } else {
            "collectd.conf"
        };
        let record = Record::new("config", what, &r.who).task(task_id);
        let push = reconfig::Push {
            task_id,
            config: &r.config,
            may_change_block: r.may_change_block,
            dry_run: r.dry_run,
            who: &r.who,
        };
        match reconfig::launch(&self.replace, &push) {
            Ok(Some(answer)) => {
                info!("remote: task {task_id}: {}", answer.message);
                self.remember(record.result(answer.code, &answer.message));
                self.finish(answer);
            }
            Ok(None) => {
                info!(
                    "remote: task {task_id}: the new config is valid; the replacement helper takes over"
                );
                self.remember(record.outcome("valid; the replacement helper restarts collectd"));
                // Errors are logged by the writer.
                let delegated = Line::phase(task_id, TaskPhase::Delegated);
                let _ = self.journal.write(vec![delegated]).blocking_recv();
            }
            Err(result) => {
                warn!(
                    "remote: task {task_id}: replacement refused (code {:#x}): {}",
                    result.code, result.message
                );
                self.remember(record.result(result.code, &result.message));
                self.finish(result);
            }
        }
    }

    /// Keeps `record` in the history, when there is one.
    pub fn remember(&self, record: Record) {
        if let Some(history) = &self.history {
            history.record(record);
        }
    }

    /// The result of an accepted task; waits for room (a blocking thread
    /// has nothing else to do).
    fn finish(&self, result: TaskResult) {
        let _ = self.results.blocking_send(Outgoing::accepted(result));
    }
}

/// A configured command to run.
pub(super) struct Command {
    pub service: String,
    pub command: String,
    pub line: String,
    /// The service's own `Timeout`, if any.
    pub timeout: Option<Duration>,
}

/// A result message for the log, on one line of at most 300 bytes
/// (a history answer is for the sender, not the log).
pub(super) fn brief(message: &str) -> String {
    crate::collectd::one_line(message, 300)
}
