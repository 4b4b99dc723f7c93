//! Everything the session publishes goes through one task, in order: the
//! results of tasks (journaled `done` first, `published` once the broker
//! confirms), presence, and central rules' requests. It may wait (for the
//! broker, for the journal's disk); the event loop never does.

use super::confirm::Confirmations;
use super::journal::{JournalWriter, Line, TaskPhase};
use crate::mqtt::{AsyncClient, Event, Outgoing as MqttOutgoing, Packet, QoS};
use crate::reconfig;
use crate::task::{TaskResult, code};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

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
    pub(super) fn accepted(result: TaskResult) -> Outgoing {
        Outgoing::Result {
            result,
            accepted: true,
        }
    }

    pub(super) fn refusal(result: TaskResult) -> Outgoing {
        Outgoing::Result {
            result,
            accepted: false,
        }
    }

    /// What it is, for a log line saying it was dropped.
    pub(super) fn describe(&self) -> String {
        match self {
            Outgoing::Result { result, .. } => format!("the result of task {}", result.task_id),
            Outgoing::Presence { topic, .. } => format!("the presence message on {topic}"),
            Outgoing::Request { topic, .. } => format!("the request on {topic}"),
        }
    }
}

/// Which results the broker has confirmed: shared by the publisher (which
/// queues them) and the event loop (which sees them written and confirmed).
pub(super) type Progress = Mutex<Confirmations>;

/// What an event of the client means for the results on their way: a
/// confirmed one is journaled as published (without waiting for it).
pub(super) fn track(progress: &Progress, journal: &JournalWriter, event: &Event) {
    let Ok(mut c) = progress.lock() else { return };
    let task = match event {
        Event::Outgoing(MqttOutgoing::Publish(pkid)) => c.written(*pkid),
        Event::Incoming(Packet::PubAck(ack)) => c.confirmed(ack.pkid),
        Event::Incoming(Packet::PubComp(comp)) => c.confirmed(comp.pkid),
        _ => return,
    };
    drop(c);
    if let Some(task) = task {
        // Errors are logged by the writer; a result not marked published
        // is sent once more after a restart, which is harmless.
        drop(journal.write(vec![Line::phase(task, TaskPhase::Published)]));
    }
}

/// Signs results as this host (see `auth::SignedResult`).
pub(super) struct Signer {
    pub host: String,
    pub key: Option<Arc<crate::auth::SigningKey>>,
}

/// Where results go, and how.
pub(super) struct Publisher {
    pub client: AsyncClient,
    pub topic: String,
    pub signer: Signer,
    pub qos: QoS,
    pub journal: JournalWriter,
    pub progress: Arc<Progress>,
    /// Held from counting a message to handing it to the client, so that
    /// [`Confirmations`] counts them in the client's order.
    pub handing: tokio::sync::Mutex<()>,
}

impl Publisher {
    /// Publishes what arrives until every sender is gone, `closing` turns
    /// true and what was queued is handed over, or the client is gone. An
    /// accepted task's result waits for its `done` line in a task of its
    /// own: a stalled disk holds back that result only.
    pub(super) async fn run(
        self: Arc<Self>,
        mut queue: mpsc::Receiver<Outgoing>,
        mut closing: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut closed = false;
        loop {
            let next = tokio::select! {
                biased;
                next = queue.recv() => next,
                _ = closing.wait_for(|c| *c), if !closed => {
                    // Senders elsewhere (central rules) live on: take what
                    // is queued, then end.
                    queue.close();
                    closed = true;
                    continue;
                }
            };
            let Some(outgoing) = next else { return };
            let sent = match outgoing {
                Outgoing::Result {
                    result,
                    accepted: true,
                } => {
                    let me = Arc::clone(&self);
                    tokio::spawn(async move {
                        // On disk before it goes out: a crash after
                        // publishing must not report the task as
                        // interrupted. A failure is logged by the writer;
                        // the result still goes out.
                        let _ = me.journal.write(vec![Line::done(&result)]).await;
                        me.result(result, true).await
                    });
                    true
                }
                Outgoing::Result { result, .. } => self.result(result, false).await,
                Outgoing::Presence { topic, payload } => {
                    let _handing = self.handing.lock().await;
                    self.queued(None);
                    let publish = self.client.publish(&topic, QoS::AtLeastOnce, true, payload);
                    publish.await.is_ok()
                }
                Outgoing::Request {
                    topic,
                    payload,
                    expiry,
                } => {
                    let _handing = self.handing.lock().await;
                    self.queued(None);
                    let properties = crate::remote::sender::expiring(expiry);
                    let publish = self.client.publish_with_properties(
                        &topic,
                        QoS::AtLeastOnce,
                        false,
                        payload,
                        properties,
                    );
                    publish.await.is_ok()
                }
            };
            if !sent {
                return; // the event loop is gone: shutting down
            }
        }
    }

    fn queued(&self, task: Option<u64>) {
        if let Ok(mut c) = self.progress.lock() {
            c.queued(task);
        }
    }

    /// One result, queued for the broker; false when the client is gone.
    async fn result(&self, result: TaskResult, accepted: bool) -> bool {
        let signed = crate::auth::SignedResult::new(
            result.clone(),
            &self.signer.host,
            self.signer.key.as_deref(),
        );
        let payload = match serde_json::to_vec(&signed) {
            Ok(p) => p,
            Err(e) => {
                error!(
                    "remote: cannot serialise the result of task {}: {e}",
                    result.task_id
                );
                return true;
            }
        };
        let _handing = self.handing.lock().await;
        // Journaled as published only once the broker confirms it (see
        // `track`): until then it lives in the client's memory only.
        self.queued(accepted.then_some(result.task_id));
        // Waits while the broker is away: rumqttc keeps the request and
        // sends it once reconnected.
        let publish = self.client.publish(&self.topic, self.qos, false, payload);
        if publish.await.is_err() {
            return false;
        }
        debug!(
            "remote: result of task {} (code {}) queued for {}",
            result.task_id, result.code, self.topic
        );
        true
    }
}

/// Tasks left unfinished by the previous run: results to send again, and
/// commands that were running (never run again; reported as interrupted).
pub(super) async fn replay_unfinished(journal: &JournalWriter, results: &mpsc::Sender<Outgoing>) {
    for result in journal.unpublished() {
        info!(
            "remote: sending the result of task {} again (not confirmed sent before the restart)",
            result.task_id
        );
        let _ = results.send(Outgoing::accepted(result)).await;
    }
    for task_id in journal.interrupted() {
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

/// Publishes the results replacement helpers left in the state directory.
pub(super) async fn forward_reports(
    state_dir: std::path::PathBuf,
    results: mpsc::Sender<Outgoing>,
) {
    let mut tick = tokio::time::interval(REPORT_SCAN);
    loop {
        tick.tick().await;
        let dir = state_dir.clone();
        // Files: read and removed off the loop.
        let taken = tokio::task::spawn_blocking(move || {
            reconfig::pending_reports(&dir)
                .into_iter()
                .filter(|(path, _)| std::fs::remove_file(path).is_ok())
                .map(|(_, result)| result)
                .collect::<Vec<_>>()
        });
        for result in taken.await.unwrap_or_default() {
            info!(
                "remote: publishing the result of replacement task {} left by its helper",
                result.task_id
            );
            let _ = results.send(Outgoing::accepted(result)).await;
        }
    }
}
