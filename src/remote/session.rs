//! The MQTT session on our own thread: connect, subscribe on every
//! ConnAck, and take each message through three stages: [`intake`] (what
//! it is), [`decide`] (pure: what to do), and the [`Executor`] (doing it,
//! off this loop). This loop never waits on a disk, a lock held across
//! I/O, or a child process: the journal has its own thread, work runs on
//! blocking threads, and results go out through the publisher's task.
//!
//! The event loop is polled by one task that never waits on rumqttc's
//! request channel (it uses the `try_` calls), because that channel is
//! drained by the very loop that would be waiting.

use super::RemoteSettings;
use super::acks::Acks;
use super::announce;
use super::backoff::Backoff;
use super::decide::{Decision, RequestPolicy, decide, refusal_record};
use super::execute::{Command, Executor, Replacement};
use super::intake::{Intake, intake};
use super::journal::{JournalWriter, Line, TaskPhase};
use super::message::{Request, RuleRef};
use super::publisher::{self, Outgoing, Progress, Publisher, Signer, track};
use super::repeat::RuleRuns;
use crate::actions::Runner;
use crate::config::LiveServices;
use crate::mqtt::{
    AsyncClient, ConnectionError, Event, EventLoop, Packet, Publish, QoS, StateError,
    SubscribeReasonCode,
};
use crate::task::{CommandRef, TaskResult, code};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

/// Capacity of rumqttc's request channel.
const REQUEST_CAPACITY: usize = 1024;
/// Longest wait at shutdown for decided results to be sent.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Longest wait for the DISCONNECT to go out at shutdown.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);
/// Results (and presence messages) waiting for the broker, at most: a
/// flood of refused requests while the broker is slow must not grow
/// collectd's memory without bound. Refusals past it are dropped (logged);
/// results of commands that ran wait for room.
pub(super) const OUTGOING_CAPACITY: usize = 4096;

/// Runs the session until `stop` turns true.
pub(super) async fn run(
    settings: RemoteSettings,
    services: Arc<LiveServices>,
    runner: Arc<Runner>,
    journal: JournalWriter,
    (results, results_rx): (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>),
    mut stop: watch::Receiver<bool>,
) {
    let (client, mut eventloop) = match settings.connection.client(REQUEST_CAPACITY) {
        Ok(pair) => pair,
        Err(e) => {
            error!("remote: remote commands disabled: {e}");
            return;
        }
    };
    let progress = Arc::new(Progress::default());
    let (closing, closing_rx) = watch::channel(false);
    let publisher = tokio::spawn(
        Arc::new(Publisher {
            client: client.clone(),
            topic: settings.result_topic.clone(),
            signer: Signer {
                host: settings.hostname.clone(),
                key: settings.result_key.clone(),
            },
            qos: settings.qos,
            journal: journal.clone(),
            progress: Arc::clone(&progress),
            handing: tokio::sync::Mutex::new(()),
        })
        .run(results_rx, closing_rx),
    );
    publisher::replay_unfinished(&journal, &results).await;
    let helpers = [
        tokio::spawn(publisher::forward_reports(
            settings.replace.state_dir.clone(),
            results.clone(),
        )),
        tokio::spawn(announce::refresh_presence(
            settings.clone(),
            results.clone(),
        )),
    ];
    let mut session = Session::new(
        settings,
        (services, runner),
        journal.clone(),
        results,
        &client,
        Arc::clone(&progress),
    );
    tokio::select! {
        _ = session.poll_forever(&mut eventloop) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    helpers.iter().for_each(tokio::task::JoinHandle::abort);
    // A clean disconnect suppresses the last will: say offline ourselves
    // (queued before the DISCONNECT below, so the broker has it first).
    if let Some(offline) = announce::offline(&session.settings) {
        session.send(offline);
    }
    // Results already decided go out before we disconnect: a refusal
    // answered just before collectd stops must not be lost. The publisher
    // ends once every sender is gone (commands still running keep theirs,
    // hence the time limit).
    drop(session);
    let _ = closing.send(true);
    drain(publisher, &progress, &journal, &mut eventloop).await;
    crate::mqtt::disconnect(&client, &mut eventloop, DISCONNECT_GRACE).await;
    info!("remote: disconnected from the broker");
}

/// Lets the event loop send what was queued, within [`DRAIN_GRACE`]; it
/// is never cancelled in the middle of a poll here (that can drop a
/// request it already took).
async fn drain(
    mut publisher: tokio::task::JoinHandle<()>,
    progress: &Progress,
    journal: &JournalWriter,
    eventloop: &mut EventLoop,
) {
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = (&mut publisher).await;
        while progress.lock().map_or(0, |c| c.outstanding()) > 0 || eventloop.state.inflight() > 0 {
            match eventloop.poll().await {
                Ok(event) => track(progress, journal, &event),
                Err(_) => break,
            }
        }
    })
    .await;
    if drained.is_err() {
        publisher.abort();
    }
}

struct Session {
    settings: RemoteSettings,
    services: Arc<LiveServices>,
    journal: JournalWriter,
    exec: Executor,
    acks: Arc<Acks>,
    client: AsyncClient,
    backoff: Backoff,
    /// The last connection problem logged, so a broker that stays away
    /// produces one warning per incident, not one per attempt.
    last_problem: Option<String>,
    progress: Arc<Progress>,
    /// Consecutive "unsolicited acknowledgement" errors: the broker's stored
    /// session disagrees with ours (e.g. a QoS 2 PUBREL for a message
    /// received before a restart) and rumqttc would fail on it forever.
    unsolicited_in_a_row: u32,
    /// The central rules' commands run lately: one run per rule and window.
    rule_runs: RuleRuns,
}

/// After this many unsolicited-ack failures in a row, the broker's session
/// is discarded with one clean-session connection.
const UNSOLICITED_LIMIT: u32 = 3;

impl Session {
    fn new(
        settings: RemoteSettings,
        (services, runner): (Arc<LiveServices>, Arc<Runner>),
        journal: JournalWriter,
        results: mpsc::Sender<Outgoing>,
        client: &AsyncClient,
        progress: Arc<Progress>,
    ) -> Session {
        let acks = Arc::new(Acks::new(client.clone()));
        let exec = Executor {
            runner,
            results,
            journal: journal.clone(),
            acks: Arc::clone(&acks),
            history: settings.history.clone(),
            pauses: settings.pauses.clone(),
            deployer: settings.deployer.clone(),
            replace: settings.replace.clone(),
            presence: {
                let settings = settings.clone();
                Arc::new(move || announce::online(&settings))
            },
        };
        Session {
            backoff: Backoff::new(
                settings.reconnect,
                Duration::from_secs(60).max(settings.reconnect),
            ),
            settings,
            services,
            journal,
            exec,
            acks,
            client: client.clone(),
            last_problem: None,
            progress,
            unsolicited_in_a_row: 0,
            rule_runs: RuleRuns::default(),
        }
    }

    async fn poll_forever(&mut self, eventloop: &mut EventLoop) {
        loop {
            self.acks.flush();
            match eventloop.poll().await {
                Ok(event) => {
                    if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                        // Back to the configured session mode after a reset.
                        eventloop
                            .options
                            .set_clean_start(self.settings.connection.clean_session);
                    }
                    self.on_event(event)
                }
                Err(e) => {
                    let delay = self.backoff.next_delay(fastrand::f64());
                    self.on_connection_error(&e, delay);
                    self.break_poisoned_session(&e, eventloop);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn break_poisoned_session(&mut self, e: &ConnectionError, eventloop: &mut EventLoop) {
        if !matches!(e, ConnectionError::MqttState(StateError::Unsolicited(_))) {
            self.unsolicited_in_a_row = 0;
            return;
        }
        self.unsolicited_in_a_row += 1;
        if self.unsolicited_in_a_row >= UNSOLICITED_LIMIT {
            error!(
                "remote: the broker's stored session for client id {} does not match ours ({e}); discarding it with a clean-session connection (messages queued in it are lost)",
                self.settings.connection.client_id
            );
            eventloop.options.set_clean_start(true);
            self.unsolicited_in_a_row = 0;
        }
    }

    fn broker(&self) -> String {
        format!(
            "{}:{}",
            self.settings.connection.host, self.settings.connection.port
        )
    }

    fn on_connection_error(&mut self, e: &ConnectionError, delay: Duration) {
        if let Some(board) = &self.settings.board {
            board.remote_connected(false);
        }
        let problem = crate::mqtt::describe(e);
        let line = format!(
            "remote: broker {}: {problem}; retrying in {:.1} s",
            self.broker(),
            delay.as_secs_f64()
        );
        if self.last_problem.as_deref() == Some(problem.as_str()) {
            debug!("{line}");
        } else {
            if crate::mqtt::needs_operator(e) {
                error!("{line}");
            } else {
                warn!("{line}");
            }
            self.last_problem = Some(problem);
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => self.on_connected(ack.session_present),
            Event::Incoming(Packet::SubAck(ack)) => {
                let topic = &self.settings.command_topic;
                if ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                {
                    error!(
                        "remote: the broker refused the subscription to {topic} (check its ACL); no commands will arrive"
                    );
                } else {
                    info!("remote: listening for commands on {topic}");
                    if let Some(fleet) = &self.settings.fleet {
                        info!(
                            "central: listening for the hosts on {}",
                            fleet.filters.join(", ")
                        );
                    }
                }
            }
            Event::Incoming(Packet::Publish(p)) => self.on_publish(&p),
            other => track(&self.progress, &self.journal, &other),
        }
    }

    fn on_connected(&mut self, session_present: bool) {
        self.backoff.reset();
        if let Some(board) = &self.settings.board {
            board.remote_connected(true);
        }
        // Packet ids start again on a new connection: an old
        // acknowledgement could name another message. The broker delivers
        // those messages again; the journal knows them.
        self.acks.clear();
        let was_down = self.last_problem.take().is_some();
        info!(
            "remote: {} broker {} as {} (session present: {session_present})",
            if was_down {
                "reconnected to"
            } else {
                "connected to"
            },
            self.broker(),
            self.settings.connection.client_id,
        );
        // rumqttc does not restore subscriptions; a clean session has
        // none: subscribe on every ConnAck. Commands arrive at QoS 1 at
        // most: the journal makes execution exactly-once across restarts,
        // which QoS 2 state in the client cannot.
        let qos = if self.settings.qos == QoS::AtMostOnce {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let results = self.exec.results.clone();
        tokio::spawn(announce::announce(self.settings.clone(), results));
        let filters = std::iter::once(self.settings.command_topic.clone())
            .chain(self.settings.fleet.iter().flat_map(|f| f.filters.clone()))
            .map(|t| rumqttc::v5::mqttbytes::v5::Filter::new(t, qos));
        if let Err(e) = self.client.try_subscribe_many(filters) {
            error!(
                "remote: cannot subscribe to {}: {e}",
                self.settings.command_topic
            );
        }
    }

    /// Answers a request that was never accepted: published, not
    /// journaled (it may share its id with an accepted task, whose entry
    /// it must not take over, and it must not grow the journal).
    fn reply(&self, result: TaskResult) {
        self.send(Outgoing::refusal(result));
    }

    /// Queues a message for the publisher without waiting (this is the
    /// event loop's task). When [`OUTGOING_CAPACITY`] messages already wait
    /// for a broker that does not take them, this one is dropped, loudly;
    /// an accepted task's result stays `done` in the journal and is sent
    /// again at the next start.
    fn send(&self, outgoing: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(dropped)) = self.exec.results.try_send(outgoing)
        {
            warn!(
                "remote: {OUTGOING_CAPACITY} messages wait for the broker; {} is dropped",
                dropped.describe()
            );
        }
    }

    fn on_publish(&mut self, p: &Publish) {
        if let Some(board) = &self.settings.board {
            board.remote_message();
        }
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        let request = match intake(p, &topic, &self.settings) {
            Intake::Done => return self.acks.now(p),
            Intake::Refused(result) => {
                self.reply(result);
                return self.acks.now(p);
            }
            Intake::Request(request) => request,
        };
        if let Request::Command {
            origin: Some(origin),
            ..
        } = &*request
        {
            info!("remote: task {} comes from {origin}", request.task_id());
        }
        let now = SystemTime::now();
        let services = self.services.get();
        let policy = RequestPolicy {
            services: &services,
            max_age: self.settings.max_age,
            now,
            trust: self.settings.trust.as_deref(),
            hostname: &self.settings.hostname,
            config_push: self.settings.config_push,
            rules_push: self.settings.deployer.is_some(),
            rule_runs: Some(&self.rule_runs),
        };
        let seen = self.journal.phase(request.task_id());
        let decision = decide(&request, p.dup, seen, &policy);
        self.carry_out(p, &request, decision, now);
    }

    /// The third stage: what `decision` leads to, started here and done by
    /// the executor.
    fn carry_out(&mut self, p: &Publish, request: &Request, decision: Decision, now: SystemTime) {
        let received = |task_id| Line::received(task_id, unix_seconds(now));
        match decision {
            Decision::Ignore(why) => {
                info!("remote: {why}");
                self.acks.now(p);
            }
            Decision::Reply(result) => self.refuse(p, request, result),
            Decision::Ask {
                task_id,
                ask,
                who,
                rights,
            } => {
                let lines = vec![received(task_id), running(task_id)];
                self.exec.accept(p, task_id, lines, move |exec| {
                    exec.ask(task_id, ask, &who, rights.as_ref());
                });
            }
            Decision::Replace {
                task_id,
                config,
                may_change_block,
                dry_run,
                who,
            } => {
                let replacement = Replacement {
                    task_id,
                    config,
                    may_change_block,
                    dry_run,
                    who,
                };
                self.exec
                    .accept(p, task_id, vec![received(task_id)], move |exec| {
                        exec.replace(&replacement);
                    });
            }
            Decision::Run {
                task_id,
                service,
                command,
                line,
                timeout,
                who,
                rule,
            } => {
                let command = Command {
                    service,
                    command,
                    line,
                    timeout,
                };
                self.run(p, task_id, command, who, rule.as_ref(), now);
            }
        }
    }

    fn refuse(&mut self, p: &Publish, request: &Request, result: TaskResult) {
        warn!(
            "remote: task {} refused (code {:#x}): {}",
            result.task_id, result.code, result.message
        );
        if let Request::Command {
            service,
            command,
            rule: Some(rule),
            ..
        } = request
            && result.code == code::REPEATED_RULE
        {
            let wanted = CommandRef::new(service.as_str(), command.as_str());
            self.rule_runs.widen(rule, &wanted);
        }
        if let Some(record) = refusal_record(request, &result) {
            self.exec.remember(record);
        }
        self.reply(result);
        self.acks.now(p);
    }

    /// A command to run, unless a pause covers it. A central rule's
    /// decision is a rule's: every pause of its command holds it, as it
    /// holds this host's own rules.
    fn run(
        &mut self,
        p: &Publish,
        task_id: u64,
        command: Command,
        who: String,
        rule: Option<&RuleRef>,
        now: SystemTime,
    ) {
        let wanted = CommandRef::new(command.service.as_str(), command.command.as_str());
        let file = rule.map(|r| r.name.split("::").next().unwrap_or_default());
        if let Some(pause) = self
            .settings
            .pauses
            .as_ref()
            .and_then(|p| p.find(file, &wanted))
        {
            let reason = format!(
                "{wanted} is paused ({}) until {}",
                pause.reason,
                crate::task::iso8601(UNIX_EPOCH + Duration::from_secs(pause.until))
            );
            let refusal = TaskResult::now(task_id, code::PAUSED, reason);
            self.exec.remember(
                crate::history::Record::new("refused", &wanted.to_string(), &who)
                    .task(task_id)
                    .result(code::PAUSED, &refusal.message),
            );
            warn!(
                "remote: task {task_id} refused (code {:#x}): {}",
                code::PAUSED,
                refusal.message
            );
            self.reply(refusal);
            return self.acks.now(p);
        }
        if let Some(rule) = rule {
            self.rule_runs.ran(rule, &wanted, task_id, now);
        }
        let lines = vec![Line::received(task_id, unix_seconds(now)), running(task_id)];
        self.exec.accept(p, task_id, lines, move |exec| {
            exec.run(task_id, &command, &who);
        });
    }
}

fn running(task_id: u64) -> Line {
    Line::phase(task_id, TaskPhase::Running)
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
