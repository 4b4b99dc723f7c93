//! The MQTT session on our own thread: connect, subscribe on every ConnAck,
//! turn each command message into a journaled decision, run commands on the
//! shared runner, publish results. Decisions are made in `decide`; this file
//! is the I/O around them.
//!
//! The event loop is polled by one task that never waits on rumqttc's
//! request channel (it uses the `try_` calls), because that channel is
//! drained by the very loop that would be waiting. Results are published
//! from a second task that may wait.

use super::RemoteSettings;
use super::backoff::Backoff;
use super::confirm::Confirmations;
use super::decide::{Decision, RequestPolicy, decide};
use super::journal::Journal;
use super::message::{Ask, Malformed, Request, parse};
use super::presence::Presence;
use super::repeat::RuleRuns;
use crate::actions::{Runner, Summary};
use crate::config::LiveServices;
use crate::history::Record;
use crate::mqtt::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing as MqttOutgoing, Packet, Publish, QoS,
    StateError, SubscribeReasonCode,
};
use crate::reconfig;
use crate::task::{TaskResult, code};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
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

type Services = Arc<LiveServices>;

/// Runs the session until `stop` turns true.
pub(super) async fn run(
    settings: RemoteSettings,
    services: Services,
    runner: Arc<Runner>,
    journal: Journal,
    (results, results_rx): (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>),
    mut stop: watch::Receiver<bool>,
) {
    let (client, eventloop) = match settings.connection.client(REQUEST_CAPACITY) {
        Ok(pair) => pair,
        Err(e) => {
            error!("remote commands disabled: {e}");
            return;
        }
    };
    let journal = Arc::new(Mutex::new(journal));

    let progress = Arc::new(Progress::default());
    let journal_for_drain = Arc::clone(&journal);
    let publisher = tokio::spawn(publish_results(
        client.clone(),
        settings.result_topic.clone(),
        Signer {
            host: settings.hostname.clone(),
            key: settings.result_key.clone(),
        },
        settings.qos,
        Arc::clone(&journal),
        results_rx,
        Arc::clone(&progress),
    ));
    replay_unfinished(&journal, &results).await;
    let reports = tokio::spawn(forward_reports(
        settings.replace.state_dir.clone(),
        results.clone(),
    ));
    let presence = tokio::spawn(refresh_presence(settings.clone(), results.clone()));
    let mut session = Session {
        backoff: Backoff::new(
            settings.reconnect,
            Duration::from_secs(60).max(settings.reconnect),
        ),
        settings,
        services,
        runner,
        journal,
        results,
        client: client.clone(),
        last_problem: None,
        unsolicited_in_a_row: 0,
        progress: Arc::clone(&progress),
        pending_acks: VecDeque::new(),
        rule_runs: RuleRuns::default(),
    };
    let mut eventloop = eventloop;
    tokio::select! {
        _ = session.poll_forever(&mut eventloop) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    reports.abort();
    presence.abort();
    // A clean disconnect suppresses the last will: say offline ourselves
    // (queued before the DISCONNECT below, so the broker has it first).
    if let Some(topic) = &session.settings.status_topic {
        let mut offline = Presence::will(&session.settings.hostname);
        offline.since = crate::task::iso8601(SystemTime::now());
        session.send(Outgoing::Presence {
            topic: topic.clone(),
            payload: offline.to_json(),
        });
    }
    // Results already decided go out before we disconnect: a refusal
    // answered just before collectd stops must not be lost. The publisher
    // ends once every sender is gone (commands still running keep theirs,
    // hence the time limit).
    drop(session);
    // Then the event loop sends what was queued; it is never cancelled in
    // the middle of a poll here (that can drop a request it already took).
    let mut publisher = publisher;
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = (&mut publisher).await;
        while progress.lock().map_or(0, |c| c.outstanding()) > 0 || eventloop.state.inflight() > 0 {
            match eventloop.poll().await {
                Ok(event) => track(&progress, &journal_for_drain, &event),
                Err(_) => break,
            }
        }
    })
    .await;
    if drained.is_err() {
        publisher.abort();
    }
    crate::mqtt::disconnect(&client, &mut eventloop, DISCONNECT_GRACE).await;
    info!("remote: disconnected from the broker");
}

/// Tasks left unfinished by the previous run: results to send again, and
/// commands that were running (never run again; reported as interrupted).
async fn replay_unfinished(journal: &Mutex<Journal>, results: &mpsc::Sender<Outgoing>) {
    let (unpublished, interrupted) = match journal.lock() {
        Ok(j) => (j.unpublished(), j.interrupted()),
        Err(_) => return,
    };
    for result in unpublished {
        info!(
            "remote: sending the result of task {} again (not confirmed sent before the restart)",
            result.task_id
        );
        let _ = results.send(Outgoing::accepted(result)).await;
    }
    for task_id in interrupted {
        warn!("remote: task {task_id} was running when collectd stopped; it is not run again");
        let result = TaskResult::now(
            task_id,
            code::INTERRUPTED,
            "the command was running when collectd stopped; it was not run again",
        );
        let _ = results.send(Outgoing::accepted(result)).await;
    }
}

/// How often to look for results left by a replacement helper that could
/// not reach the broker.
const REPORT_SCAN: Duration = Duration::from_secs(5);

async fn forward_reports(state_dir: std::path::PathBuf, results: mpsc::Sender<Outgoing>) {
    let mut tick = tokio::time::interval(REPORT_SCAN);
    loop {
        tick.tick().await;
        for (path, result) in reconfig::pending_reports(&state_dir) {
            info!(
                "remote: publishing the result of replacement task {} left by its helper",
                result.task_id
            );
            if std::fs::remove_file(&path).is_ok() {
                let _ = results.send(Outgoing::accepted(result)).await;
            }
        }
    }
}

/// How often the presence is looked at for a change (rule files loaded
/// after the connection, or removed).
const PRESENCE_REFRESH: Duration = Duration::from_secs(5);

/// The host's online status, when it has a `StatusTopic`.
fn online(settings: &RemoteSettings) -> Option<Outgoing> {
    let topic = settings.status_topic.as_ref()?;
    let board = settings.board.as_ref().map(|b| b.started_and_files());
    let versions = settings.deployer.as_ref().map(|d| d.digest());
    let online = Presence {
        hostname: settings.hostname.clone(),
        state: "online".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        since: board.as_ref().map_or_else(
            || crate::task::iso8601(SystemTime::now()),
            |(started, _)| started.clone(),
        ),
        rule_files: board.map(|(_, files)| files),
        config_push: Some(settings.config_push),
        signed_only: Some(settings.trust.is_some()),
        result_key: settings.result_key.as_ref().map(|k| k.public_base64()),
        pauses: pauses_in_force(settings),
        paused: settings
            .pauses
            .as_ref()
            .map_or_else(Vec::new, |book| book.list()),
        rule_set: versions.as_ref().map(|v| v.rule_set.clone()),
        config_json: versions.and_then(|v| v.config_json),
    };
    Some(Outgoing::Presence {
        topic: topic.clone(),
        payload: online.to_json(),
    })
}

/// The pauses in force, as the presence tells them.
fn pauses_in_force(settings: &RemoteSettings) -> Vec<String> {
    settings.pauses.as_ref().map_or_else(Vec::new, |book| {
        book.list()
            .iter()
            .map(|p| {
                format!(
                    "{} until {}: {}",
                    p.describe(),
                    crate::task::iso8601(UNIX_EPOCH + Duration::from_secs(p.until)),
                    p.reason
                )
            })
            .collect()
    })
}

/// Announces the presence again whenever the number of rule files (they
/// load after the connection, which announced the count then), the
/// pauses in force or the rule set change.
async fn refresh_presence(settings: RemoteSettings, results: mpsc::Sender<Outgoing>) {
    let Some(board) = settings.board.clone() else {
        return;
    };
    let said = |s: &RemoteSettings| {
        (
            board.started_and_files().1,
            pauses_in_force(s),
            s.deployer.as_ref().map(|d| d.digest()),
        )
    };
    let mut announced = said(&settings);
    let mut tick = tokio::time::interval(PRESENCE_REFRESH);
    loop {
        tick.tick().await;
        let now = said(&settings);
        if now == announced {
            continue;
        }
        announced = now;
        if let Some(outgoing) = online(&settings) {
            let _ = results.send(outgoing).await;
        }
    }
}

/// A message on its way to the broker. Every publish of the session goes
/// through one task in this order, so the client writes them in the order
/// [`Confirmations`] counts them, and a confirmation is matched to its own
/// message: a presence message never stands in for a result.
pub(super) enum Outgoing {
    /// `accepted`: the task has an entry in the journal, whose `done` and
    /// `published` lines follow it; a refusal of a request never accepted
    /// is only published.
    Result { result: TaskResult, accepted: bool },
    /// The host's retained status.
    Presence { topic: String, payload: Vec<u8> },
    /// A request of central rules to another host, expiring at the broker.
    Request {
        topic: String,
        payload: Vec<u8>,
        expiry: Duration,
    },
}

impl Outgoing {
    fn accepted(result: TaskResult) -> Outgoing {
        Outgoing::Result {
            result,
            accepted: true,
        }
    }

    fn refusal(result: TaskResult) -> Outgoing {
        Outgoing::Result {
            result,
            accepted: false,
        }
    }
}

/// Which results the broker has confirmed: shared by the publisher (which
/// queues them) and the event loop (which sees them written and confirmed).
type Progress = Mutex<Confirmations>;

/// Journals the broker's confirmation of a task's result.
fn confirmed(journal: &Mutex<Journal>, task: Option<u64>) {
    let Some(task) = task else { return };
    if let Ok(mut j) = journal.lock() {
        if let Err(e) = j.published(task) {
            error!("remote: task journal {}: {e}", j.path().display());
        }
    }
}

/// What an event of the client means for the results on their way.
fn track(progress: &Progress, journal: &Mutex<Journal>, event: &Event) {
    let Ok(mut c) = progress.lock() else { return };
    let task = match event {
        Event::Outgoing(MqttOutgoing::Publish(pkid)) => c.written(*pkid),
        Event::Incoming(Packet::PubAck(ack)) => c.confirmed(ack.pkid),
        Event::Incoming(Packet::PubComp(comp)) => c.confirmed(comp.pkid),
        _ => return,
    };
    drop(c);
    confirmed(journal, task);
}

/// Signs results as this host (see `auth::SignedResult`).
struct Signer {
    host: String,
    key: Option<Arc<crate::auth::SigningKey>>,
}

async fn publish_results(
    client: AsyncClient,
    topic: String,
    signer: Signer,
    qos: QoS,
    journal: Arc<Mutex<Journal>>,
    mut results: mpsc::Receiver<Outgoing>,
    progress: Arc<Progress>,
) {
    while let Some(outgoing) = results.recv().await {
        let (result, accepted) = match outgoing {
            Outgoing::Result { result, accepted } => (result, accepted),
            Outgoing::Presence { topic, payload } => {
                if let Ok(mut c) = progress.lock() {
                    c.queued(None);
                }
                if client
                    .publish(&topic, QoS::AtLeastOnce, true, payload)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Outgoing::Request {
                topic,
                payload,
                expiry,
            } => {
                if let Ok(mut c) = progress.lock() {
                    c.queued(None);
                }
                let properties = crate::remote::sender::expiring(expiry);
                if client
                    .publish_with_properties(&topic, QoS::AtLeastOnce, false, payload, properties)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let signed =
            crate::auth::SignedResult::new(result.clone(), &signer.host, signer.key.as_deref());
        let payload = match serde_json::to_vec(&signed) {
            Ok(p) => p,
            Err(e) => {
                error!(
                    "remote: cannot serialise the result of task {}: {e}",
                    result.task_id
                );
                continue;
            }
        };
        if accepted {
            if let Ok(mut j) = journal.lock() {
                if let Err(e) = j.done(&result) {
                    error!("remote: task journal {}: {e}", j.path().display());
                }
            }
        }
        // Journaled as published only once the broker confirms it (see
        // `track`): until then it lives in the client's memory only.
        if let Ok(mut c) = progress.lock() {
            c.queued(accepted.then_some(result.task_id));
        }
        // Waits while the broker is away: rumqttc keeps the request and sends
        // it once reconnected.
        if client.publish(&topic, qos, false, payload).await.is_err() {
            return; // the event loop is gone: shutting down
        }
        debug!(
            "remote: result of task {} (code {}) queued for {topic}",
            result.task_id, result.code
        );
    }
}

struct Session {
    settings: RemoteSettings,
    services: Services,
    runner: Arc<Runner>,
    journal: Arc<Mutex<Journal>>,
    results: mpsc::Sender<Outgoing>,
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
    /// Acknowledgements decided but not yet taken by rumqttc's request
    /// queue (full during a burst of results). They wait here instead of
    /// being dropped: a dropped acknowledgement keeps the broker's window
    /// of unacknowledged messages full, and it stops delivering. The
    /// broker's window bounds how many can wait.
    pending_acks: VecDeque<Publish>,
    /// The central rules' commands run lately: one run per rule and window.
    rule_runs: RuleRuns,
}

/// After this many unsolicited-ack failures in a row, the broker's session
/// is discarded with one clean-session connection.
const UNSOLICITED_LIMIT: u32 = 3;

impl Session {
    async fn poll_forever(&mut self, eventloop: &mut EventLoop) {
        loop {
            self.flush_acks();
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

    /// Publishes the host's presence, retained: online, with what it runs.
    fn announce(&self) {
        if let Some(outgoing) = online(&self.settings) {
            self.send(outgoing);
        }
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
            Event::Incoming(Packet::ConnAck(ack)) => {
                self.backoff.reset();
                if let Some(board) = &self.settings.board {
                    board.remote_connected(true);
                }
                // Packet ids start again on a new connection: an old
                // acknowledgement could name another message. The broker
                // delivers those messages again; the journal knows them.
                self.pending_acks.clear();
                let was_down = self.last_problem.take().is_some();
                info!(
                    "remote: {} broker {} as {} (session present: {})",
                    if was_down {
                        "reconnected to"
                    } else {
                        "connected to"
                    },
                    self.broker(),
                    self.settings.connection.client_id,
                    ack.session_present
                );
                // rumqttc does not restore subscriptions; a clean session
                // has none: subscribe on every ConnAck. Commands arrive at
                // QoS 1 at most: the journal makes execution exactly-once
                // across restarts, which QoS 2 state in the client cannot.
                let qos = if self.settings.qos == QoS::AtMostOnce {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                };
                self.announce();
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
            Event::Incoming(Packet::Publish(p)) => self.on_publish(p),
            other => track(&self.progress, &self.journal, &other),
        }
    }

    fn ack(&mut self, p: &Publish) {
        self.pending_acks.push_back(p.clone());
        self.flush_acks();
    }

    /// Hands waiting acknowledgements to rumqttc, in order, as far as its
    /// request queue takes them (the event loop empties it as it polls).
    fn flush_acks(&mut self) {
        while let Some(p) = self.pending_acks.front() {
            if self.client.try_ack(p).is_err() {
                break;
            }
            self.pending_acks.pop_front();
        }
    }

    /// Answers a request that was never accepted: published, not
    /// journaled (it may share its id with an accepted task, whose entry
    /// it must not take over, and it must not grow the journal).
    fn reply(&self, result: TaskResult) {
        self.send(Outgoing::refusal(result));
    }

    /// The result of a task the journal accepted.
    fn finish(&self, result: TaskResult) {
        self.send(Outgoing::accepted(result));
    }

    /// Queues a message for the publisher without waiting (this is the
    /// event loop's task). When [`OUTGOING_CAPACITY`] messages already wait
    /// for a broker that does not take them, this one is dropped, loudly;
    /// an accepted task's result stays `done` in the journal and is sent
    /// again at the next start.
    fn send(&self, outgoing: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(dropped)) = self.results.try_send(outgoing) {
            let what = match dropped {
                Outgoing::Result { result, .. } => format!("the result of task {}", result.task_id),
                Outgoing::Presence { topic, .. } => format!("the presence message on {topic}"),
                Outgoing::Request { topic, .. } => format!("the request on {topic}"),
            };
            warn!("remote: {OUTGOING_CAPACITY} messages wait for the broker; {what} is dropped");
        }
    }

    fn on_publish(&mut self, p: Publish) {
        if let Some(board) = &self.settings.board {
            board.remote_message();
        }
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        // A host's result or presence for central rules: theirs to read,
        // never a command.
        if let Some(fleet) = &self.settings.fleet
            && fleet
                .filters
                .iter()
                .any(|f| crate::config::filter_matches(f, &topic))
        {
            if p.payload.len() as u64 <= self.settings.max_payload {
                (fleet.on_message)(&topic, &p.payload, p.retain);
            }
            return self.ack(&p);
        }
        if p.retain {
            warn!(
                "remote: ignoring a retained message on {topic}: retained messages are never executed, they would run again at every reconnect (clear it with: mosquitto_pub -r -n -t '{topic}')"
            );
            return self.ack(&p);
        }
        if p.payload.len() as u64 > self.settings.max_payload {
            warn!(
                "remote: dropping a {}-byte message on {topic}: larger than MaxPayloadBytes ({})",
                p.payload.len(),
                self.settings.max_payload
            );
            return self.ack(&p);
        }
        let request = match parse(&p.payload) {
            Ok(r) => r,
            Err(Malformed::Unanswerable(why)) => {
                warn!("remote: dropping a message on {topic}: {why}");
                return self.ack(&p);
            }
            Err(Malformed::Invalid { task_id, reason }) => {
                warn!("remote: refusing task {task_id}: {reason}");
                self.reply(TaskResult::now(task_id, code::INVALID_REQUEST, reason));
                return self.ack(&p);
            }
        };
        let task_id = request.task_id();
        if let Request::Command {
            origin: Some(origin),
            ..
        } = &request
        {
            info!("remote: task {task_id} comes from {origin}");
        }
        let now = SystemTime::now();
        let decision = {
            let Ok(journal) = self.journal.lock() else {
                return;
            };
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
            decide(&request, p.dup, journal.phase(task_id), &policy)
        };
        match decision {
            Decision::Ignore(why) => {
                info!("remote: {why}");
                self.ack(&p);
            }
            Decision::Reply(result) => {
                warn!(
                    "remote: task {task_id} refused (code {:#x}): {}",
                    result.code, result.message
                );
                if let Request::Command {
                    service,
                    command,
                    rule: Some(rule),
                    ..
                } = &request
                    && result.code == code::REPEATED_RULE
                {
                    let wanted = crate::task::CommandRef::new(service.as_str(), command.as_str());
                    self.rule_runs.widen(rule, &wanted);
                }
                // Refusals of requests that did not prove their sender are
                // not kept: anyone who may publish could flood the history
                // with them and push out what matters.
                let unproven = [
                    code::UNSIGNED,
                    code::UNKNOWN_KEY,
                    code::BAD_SIGNATURE,
                    code::WRONG_HOST,
                ];
                if !unproven.contains(&result.code) {
                    let who = request
                        .auth()
                        .key
                        .as_ref()
                        .map_or_else(|| "an unsigned request".into(), |k| format!("key {k}"));
                    self.remember(
                        Record::new("refused", &describe(&request), &who)
                            .task(task_id)
                            .result(result.code, &result.message),
                    );
                }
                self.reply(result);
                self.ack(&p);
            }
            Decision::Ask {
                task_id,
                ask,
                who,
                rights,
            } => {
                if !self.accept(&p, task_id, now) {
                    return;
                }
                let kind = ask.kind();
                let what = describe(&request);
                if let (Ask::Rules(_) | Ask::Rollback(_), Some(deployer)) =
                    (&ask, &self.settings.deployer)
                {
                    // Checking and loading a rule set takes seconds: not
                    // on the session's thread.
                    let deployer = Arc::clone(deployer);
                    let results = self.results.clone();
                    let history = self.settings.history.clone();
                    tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let result = match ask {
                            Ask::Rules(bundle) => deployer.push(task_id, &bundle, &who),
                            _ => deployer.rollback(task_id, &who),
                        };
                        info!(
                            "remote: task {task_id} from {who}: code {:#x}: {}",
                            result.code,
                            brief(&result.message)
                        );
                        if let Some(history) = history {
                            history.record(
                                Record::new(kind, &what, &who)
                                    .task(task_id)
                                    .result(result.code, &result.message)
                                    .took(started.elapsed()),
                            );
                        }
                        let _ = results.blocking_send(Outgoing::accepted(result));
                    });
                    return;
                }
                let result = self.answer(task_id, ask, &who, rights.as_ref());
                info!(
                    "remote: task {task_id} from {who}: code {:#x}: {}",
                    result.code,
                    brief(&result.message)
                );
                // Reading the history changes nothing worth recording.
                if kind != "history" {
                    self.remember(
                        Record::new(kind, &what, &who)
                            .task(task_id)
                            .result(result.code, &result.message),
                    );
                }
                self.finish(result);
            }
            Decision::Replace {
                task_id,
                config,
                may_change_block,
                dry_run,
                who,
            } => {
                let push = reconfig::Push {
                    task_id,
                    config: &config,
                    may_change_block,
                    dry_run,
                    who: &who,
                };
                self.start_replacement(&p, push, now)
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
                let wanted = crate::task::CommandRef::new(service.as_str(), command.as_str());
                // A central rule's decision is a rule's: every pause of
                // its command holds it, as it holds this host's own rules.
                let file = rule
                    .as_ref()
                    .map(|r| r.name.split("::").next().unwrap_or_default());
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
                    warn!(
                        "remote: task {task_id} refused (code {:#x}): {reason}",
                        code::PAUSED
                    );
                    self.remember(
                        Record::new("refused", &wanted.to_string(), &who)
                            .task(task_id)
                            .result(code::PAUSED, &reason),
                    );
                    self.reply(TaskResult::now(task_id, code::PAUSED, reason));
                    return self.ack(&p);
                }
                if !self.accept(&p, task_id, now) {
                    return;
                }
                if let Some(rule) = &rule {
                    self.rule_runs.ran(rule, &wanted, task_id, now);
                }
                let runner = Arc::clone(&self.runner);
                let results = self.results.clone();
                let history = self.settings.history.clone();
                tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let result = execute(&runner, task_id, &service, &command, &line, timeout);
                    info!(
                        "remote: task {task_id}: {service}/{command} finished with code {}",
                        result.code
                    );
                    if let Some(history) = history {
                        history.record(
                            Record::new("remote", &format!("{service}/{command}"), &who)
                                .task(task_id)
                                .result(result.code, &result.message)
                                .took(started.elapsed()),
                        );
                    }
                    // Waits for room: this thread has nothing else to do.
                    let _ = results.blocking_send(Outgoing::accepted(result));
                });
            }
        }
    }

    /// Keeps `record` in the history, when there is one.
    fn remember(&self, record: Record) {
        if let Some(history) = &self.settings.history {
            history.record(record);
        }
    }

    /// Carries out a request with a body, here on the session's thread:
    /// each is a small change of a file, or a read.
    fn answer(
        &self,
        task_id: u64,
        ask: Ask,
        who: &str,
        rights: Option<&crate::auth::Rights>,
    ) -> TaskResult {
        let (pauses, history) = (&self.settings.pauses, &self.settings.history);
        let invalid = |e: String| (code::INVALID_REQUEST, e);
        let outcome = match ask {
            Ask::Pause(change) => pauses
                .as_ref()
                .map(|book| book.apply(false, change, who).map_err(invalid)),
            Ask::Resume(change) => pauses
                .as_ref()
                .map(|book| book.apply(true, change, who).map_err(invalid)),
            Ask::History(query) => history.as_ref().map(|h| {
                h.query(&query)
                    .map(|records| history_answer(&records, rights))
                    .map_err(|e| (code::HISTORY_UNAVAILABLE, e))
            }),
            // Carried out beside the session (see `on_publish`).
            Ask::Rules(_) | Ask::Rollback(_) => None,
        };
        let Some(outcome) = outcome else {
            return TaskResult::now(
                task_id,
                code::UNSUPPORTED,
                "this host keeps no pauses, history or rule set to push to",
            );
        };
        match outcome {
            Ok(message) => TaskResult::now(task_id, 0, message),
            Err((code, message)) => TaskResult::now(task_id, code, message),
        }
    }

    /// Records the task as received and running, then acknowledges it;
    /// false (and answered) when the journal could not record it.
    fn accept(&mut self, p: &Publish, task_id: u64, now: SystemTime) -> bool {
        let unix_now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let recorded = self.record(|j| {
            j.received(task_id, unix_now)
                .and_then(|()| j.running(task_id))
        });
        if let Err(e) = recorded {
            self.not_recorded(p, task_id, &e);
            return false;
        }
        self.ack(p);
        true
    }

    /// A task the journal could not record (a full disk, say): refused and
    /// acknowledged, not run. Leaving it unacknowledged would have the
    /// broker deliver it again and again while the disk stays full.
    fn not_recorded(&mut self, p: &Publish, task_id: u64, error: &str) {
        error!("remote: task {task_id} not run: it could not be recorded: {error}");
        self.reply(TaskResult::now(
            task_id,
            code::NOT_RECORDED,
            format!("not run: the task could not be recorded ({error})"),
        ));
        self.ack(p);
    }

    /// Writes to the task journal; the error names the file.
    fn record(
        &self,
        write: impl FnOnce(&mut Journal) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let mut journal = self.journal.lock().map_err(|e| e.to_string())?;
        write(&mut journal).map_err(|e| format!("task journal {}: {e}", journal.path().display()))
    }

    /// A collectd.conf push: validated here, carried out by the helper,
    /// which publishes the result itself.
    fn start_replacement(&mut self, p: &Publish, push: reconfig::Push<'_>, now: SystemTime) {
        let task_id = push.task_id;
        let unix_now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let recorded = self.record(|j| j.received(task_id, unix_now));
        if let Err(e) = recorded {
            return self.not_recorded(p, task_id, &e);
        }
        self.ack(p);
        info!(
            "remote: task {task_id}: collectd.conf replacement requested ({} bytes){}",
            push.config.len(),
            if push.dry_run { ", a dry run" } else { "" }
        );
        let what = if push.dry_run {
            "collectd.conf (dry run)"
        } else {
            "collectd.conf"
        };
        let record = Record::new("config", what, push.who).task(task_id);
        match reconfig::launch(&self.settings.replace, &push) {
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
                if let Err(e) = self.record(|j| j.delegated(task_id)) {
                    error!("remote: {e}");
                }
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
}

/// Bytes of history one answer carries at most: the newest records that
/// fit.
const MAX_HISTORY_ANSWER: usize = 256 * 1024;

/// History records as a result message: one JSON record per line, the
/// newest that fit in [`MAX_HISTORY_ANSWER`]; an outcome the reader's
/// `rights` do not cover withheld (`None`: no trusted keys, all of them).
fn history_answer(records: &[Record], rights: Option<&crate::auth::Rights>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut size = 0;
    for record in records.iter().rev() {
        let mut record = record.clone();
        if rights.is_some_and(|r| !r.reads_outcome_of(&record.kind, record.command())) {
            record.outcome = "(withheld: this key reads the outcomes of the commands it may run; history=all reads every outcome)".into();
        }
        let Ok(line) = serde_json::to_string(&record) else {
            continue;
        };
        size += line.len() + 1;
        if size > MAX_HISTORY_ANSWER {
            break;
        }
        lines.push(line);
    }
    lines.reverse();
    lines.join("\n")
}

/// A result message for the log: its lines joined, at most 300 bytes,
/// escaped (a history answer is for the sender, not the log).
fn brief(message: &str) -> String {
    let joined = message.lines().collect::<Vec<_>>().join(" / ");
    let mut end = joined.len().min(300);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < joined.len() { " ..." } else { "" };
    format!("{}{more}", crate::collectd::loggable(&joined[..end]))
}

/// What `request` asks for, in a history record's words.
fn describe(request: &Request) -> String {
    match request {
        Request::Command {
            service, command, ..
        } => format!("{service}/{command}"),
        Request::Config { dry_run: true, .. } => "collectd.conf (dry run)".into(),
        Request::Config { .. } => "collectd.conf".into(),
        Request::Ask { ask, .. } => ask.describe(),
    }
}

/// Runs one accepted command and turns its outcome into the result message.
fn execute(
    runner: &Runner,
    task_id: u64,
    service: &str,
    command: &str,
    line: &str,
    timeout: Option<Duration>,
) -> TaskResult {
    let started = || info!("remote: task {task_id}: running {service}/{command}");
    let (code, message) = runner
        .run_announced(service, command, line, timeout, started)
        .summary(service, command);
    TaskResult::now(task_id, code, message)
}
