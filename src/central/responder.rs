//! Central rules' decisions, turned into requests to the host each one is
//! for: held to the guards, given the derived task id, signed with the
//! controller's key, sent through the MQTT session; and the hosts' results,
//! matched to what was sent, turned into result notifications with the
//! repaired host's name, and fed back to the guards.

use super::guards::{GuardPolicy, Guards, Outcome, Verdict};
use super::task_id::derived_task_id;
use crate::auth::{SignedResult, SigningKey};
use crate::events::{Notification, Severity};
use crate::remote::RequestSender;
use crate::status::{Board, HandlerEvent};
use crate::task::{CommandRef, code};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

use crate::local::NotificationSink;

/// What central rules need to reach the hosts.
pub struct CentralConfig {
    /// This collectd's own name, on its notifications about the fleet.
    pub hostname: String,
    /// `collectd/%{hostname}/command`.
    pub command_topic: String,
    /// `collectd/%{hostname}/result`.
    pub result_topic: String,
    /// `collectd/%{hostname}/status`: the hosts' presence, when they
    /// announce it; a host that says offline is sent nothing.
    pub status_topic: Option<String>,
    /// The window task ids are derived in.
    pub window: Duration,
    /// How long a host has to answer.
    pub timeout: Duration,
    pub key: Option<Arc<SigningKey>>,
    pub guards: GuardPolicy,
}

impl CentralConfig {
    /// The filter the hosts' results arrive on (`%{hostname}` as `+`).
    pub fn result_filter(&self) -> String {
        self.result_topic.replace("%{hostname}", "+")
    }

    /// The filter of the hosts' presence, if they announce it.
    pub fn status_filter(&self) -> Option<String> {
        self.status_topic
            .as_ref()
            .map(|t| t.replace("%{hostname}", "+"))
    }
}

/// Repairs `status` remembers.
const RECENT: usize = 100;

/// A repair that ended: its result code (`None`: timed out), and when.
struct Ended {
    task_id: u64,
    host: String,
    command: CommandRef,
    code: Option<i64>,
    at: Instant,
}

/// A request on its way, by task id.
struct Pending {
    host: String,
    command: CommandRef,
    /// `<file>::metric::<handler>`, for the result notification.
    handler: String,
    sent: Instant,
    /// Another controller requested the same task (0x1100 seen).
    duplicate: bool,
}

/// Central rules' side of the plugin.
pub struct Central {
    config: CentralConfig,
    guards: Mutex<Guards>,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Set once the MQTT session runs.
    requests: OnceLock<RequestSender>,
    /// The last repairs that ended, newest first, at most [`RECENT`].
    recent: Mutex<std::collections::VecDeque<Ended>>,
    /// Requests another controller made too (the host's 0x1100 seen).
    requested_by_others: AtomicU64,
    notify: NotificationSink,
    board: Arc<Board>,
}

impl Central {
    pub fn new(config: CentralConfig, notify: NotificationSink, board: Arc<Board>) -> Central {
        Central {
            guards: Mutex::new(Guards::new(config.guards, HashMap::new(), None)),
            config,
            pending: Mutex::new(HashMap::new()),
            requests: OnceLock::new(),
            recent: Mutex::default(),
            requested_by_others: AtomicU64::new(0),
            notify,
            board,
        }
    }

    /// The filters the hosts' results (and presence) arrive on.
    pub fn filters(&self) -> Vec<String> {
        std::iter::once(self.config.result_filter())
            .chain(self.config.status_filter())
            .collect()
    }

    /// A message on one of [`Central::filters`].
    pub fn message(&self, topic: &str, payload: &[u8], retained: bool) {
        if let Some(filter) = self.config.status_filter()
            && crate::config::filter_matches(&filter, topic)
        {
            return self.presence(&filter, topic, payload);
        }
        // A retained result is an old one: never a task of this run.
        if !retained {
            self.result(topic, payload);
        }
    }

    /// A host's presence: offline hosts are sent nothing.
    fn presence(&self, filter: &str, topic: &str, payload: &[u8]) {
        let Ok(status) = serde_json::from_slice::<crate::remote::presence::Presence>(payload)
        else {
            return;
        };
        let Ok(host) = crate::remote::presence::status_host(filter, topic, &status) else {
            return;
        };
        let online = status.state == "online";
        if let Ok(mut g) = self.guards.lock() {
            g.presence(&host, online);
        }
    }

    /// The session's request queue, once it runs.
    pub fn connect(&self, requests: RequestSender) {
        let _ = self.requests.set(requests);
    }

    /// A central rule in `file` decided on a value list of `series`
    /// (`host/plugin-instance/type-instance`), for `host` when the handler
    /// named one, else for the value list's host.
    pub fn fire(
        &self,
        file: &Path,
        handler: &str,
        command: CommandRef,
        series: &str,
        host: Option<&str>,
    ) {
        let path = file.display().to_string();
        self.board.handler(
            &path,
            handler,
            HandlerEvent::Decision {
                series: series.to_string(),
                command: command.to_string(),
            },
        );
        let host = host.unwrap_or_else(|| series.split('/').next().unwrap_or_default());
        if !crate::remote::presence::valid_host_name(host) {
            warn!(
                "central: rule {handler} decided for {series:?}, whose host is no host name; not sent"
            );
            return;
        }
        let now = Instant::now();
        let verdict = match self.guards.lock() {
            Ok(mut g) => g.decide(now, host, &command),
            Err(_) => return,
        };
        if let Verdict::Held(why) = verdict {
            self.board.handler(&path, handler, HandlerEvent::Held);
            info!(
                "central: rule {handler}: {command} for {host} held back ({})",
                why.as_str()
            );
            return;
        }
        // The file's name, not its path: redundant controllers may keep
        // the same rules in different places. The handler label names the
        // handler within it.
        let rule = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = handler.rsplit("::").next().unwrap_or(handler);
        let task_id = derived_task_id(
            &rule,
            name,
            host,
            &command,
            SystemTime::now(),
            self.config.window,
        );
        let mut message: serde_json::Value = serde_json::from_slice(
            &crate::remote::sender::command_message(task_id, &command.service, &command.command),
        )
        .unwrap_or_default();
        // For the host's log: which controller and rule decided it.
        message["origin"] = format!("{}: {handler}", self.config.hostname).into();
        let message = message.to_string().into_bytes();
        let payload = match &self.config.key {
            Some(key) => match crate::remote::sender::sign(&message, key, host) {
                Ok(signed) => signed,
                Err(e) => {
                    warn!("central: cannot sign the request for {host}: {e}");
                    self.forget(host, &command);
                    return;
                }
            },
            None => message,
        };
        let topic = self.config.command_topic.replace("%{hostname}", host);
        let sent = self
            .requests
            .get()
            .is_some_and(|r| r.send(topic.clone(), payload, self.config.timeout));
        if !sent {
            warn!(
                "central: rule {handler}: {command} for {host} not sent: no broker connection (or its queue is full)"
            );
            self.forget(host, &command);
            return;
        }
        info!(
            "central: rule {handler} on {series}: {command} requested on {topic} (task {task_id})"
        );
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(
                task_id,
                Pending {
                    host: host.to_string(),
                    command,
                    handler: handler.to_string(),
                    sent: now,
                    duplicate: false,
                },
            );
        }
    }

    /// A request that never left counts as no repair at all.
    fn forget(&self, host: &str, command: &CommandRef) {
        if let Ok(mut g) = self.guards.lock() {
            g.cancel(host, command);
        }
    }

    /// A message on a host's result topic.
    fn result(&self, topic: &str, payload: &[u8]) {
        let filter = self.config.result_filter();
        let Some(host) = crate::remote::presence::host_from_topic(&filter, topic) else {
            return;
        };
        let Ok(signed) = serde_json::from_slice::<SignedResult>(payload) else {
            return;
        };
        let result = signed.result;
        // The same task id requested again (by a redundant controller): the
        // host runs it once and answers the second request 0x1100 on the
        // same topic, which every controller reads. The task's own result
        // follows; wait for it.
        if result.code == code::DUPLICATE_TASK {
            if let Ok(mut p) = self.pending.lock()
                && let Some(x) = p.get_mut(&result.task_id).filter(|x| x.host == host)
                && !x.duplicate
            {
                x.duplicate = true;
                self.requested_by_others.fetch_add(1, Ordering::Relaxed);
                info!(
                    "central: {} on {host} (task {}) was requested by another controller too; the host runs it once",
                    x.command, result.task_id
                );
            }
            return;
        }
        let pending = self.pending.lock().ok().and_then(|mut p| {
            let matches = p.get(&result.task_id).is_some_and(|x| x.host == host);
            if matches {
                p.remove(&result.task_id)
            } else {
                None
            }
        });
        // Another controller's task, a replay, or a result from the wrong
        // topic: not ours.
        let Some(pending) = pending else {
            return;
        };
        // The same command runs there for another task (another
        // controller's decision in a neighbouring window, a local rule):
        // the repair is under way, and no failure of this controller's.
        let outcome = match result.code {
            0 => Outcome::Succeeded,
            code::ALREADY_RUNNING => Outcome::DoneElsewhere,
            _ => Outcome::Failed,
        };
        if outcome == Outcome::DoneElsewhere {
            info!(
                "central: {} on {host} (task {}) not run: it runs there already for another task",
                pending.command, result.task_id
            );
        } else {
            info!(
                "central: {} on {host} (task {}) finished with code {}",
                pending.command, result.task_id, result.code
            );
            let notification = crate::local::result_notification(
                &host,
                &pending.handler,
                result.task_id,
                result.code,
                &result.message,
            );
            if let Err(status) = (self.notify)(&notification) {
                warn!(
                    "central: could not dispatch the result of task {} (status {status})",
                    result.task_id
                );
            }
        }
        self.remember(result.task_id, &pending, Some(result.code));
        self.finished(&host, &pending.command, outcome);
    }

    fn remember(&self, task_id: u64, p: &Pending, code: Option<i64>) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.push_front(Ended {
                task_id,
                host: p.host.clone(),
                command: p.command.clone(),
                code,
                at: Instant::now(),
            });
            recent.truncate(RECENT);
        }
    }

    /// What `status` shows of central rules.
    pub fn status(&self) -> crate::status::CentralStatus {
        let now = Instant::now();
        let commands = match self.guards.lock() {
            Ok(g) => g.commands(now),
            Err(_) => return Default::default(),
        };
        let requested_by_others = self.requested_by_others.load(Ordering::Relaxed);
        let mut in_flight: Vec<crate::status::CentralRequest> = self
            .pending
            .lock()
            .map(|p| {
                p.iter()
                    .map(|(id, x)| crate::status::CentralRequest {
                        task_id: *id,
                        host: x.host.clone(),
                        command: x.command.to_string(),
                        age: now.saturating_duration_since(x.sent).as_secs(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        in_flight.sort_by(|a, b| (&a.host, a.task_id).cmp(&(&b.host, b.task_id)));
        crate::status::CentralStatus {
            commands: commands
                .into_iter()
                .map(|c| crate::status::CentralCommand {
                    command: c.command.to_string(),
                    in_flight: c.in_flight,
                    failures: c.failures,
                    error_budget: c.error_budget,
                    stopped: c.stopped,
                    held: c
                        .held
                        .into_iter()
                        .map(|(why, n)| (why.as_str().to_string(), n))
                        .collect(),
                })
                .collect(),
            in_flight,
            requested_by_others,
            recent: self
                .recent
                .lock()
                .map(|r| {
                    r.iter()
                        .map(|e| crate::status::CentralRepair {
                            task_id: e.task_id,
                            host: e.host.clone(),
                            command: e.command.to_string(),
                            code: e.code,
                            ago: now.saturating_duration_since(e.at).as_secs(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A control request (`central-resume SERVICE/COMMAND`): the answer, or `None`
    /// for a request that is not central rules'.
    pub fn control(&self, request: &str) -> Option<String> {
        let target = request.strip_prefix("central-resume ")?.trim();
        let Some((service, command)) = target.split_once('/') else {
            return Some(format!("resume {target:?}: name a service/command"));
        };
        let command = CommandRef::new(service, command);
        let resumed = self.guards.lock().is_ok_and(|mut g| g.resume(&command));
        Some(if resumed {
            info!("central: repairs of {command} resumed by an operator");
            format!("central repairs of {command} resumed")
        } else {
            format!("central repairs of {command} were not stopped")
        })
    }

    /// Requests without an answer within the timeout: timed out.
    pub fn expire(&self, now: Instant) {
        let expired: Vec<(u64, Pending)> = match self.pending.lock() {
            Ok(mut p) => {
                let ids: Vec<u64> = p
                    .iter()
                    .filter(|(_, x)| now.saturating_duration_since(x.sent) >= self.config.timeout)
                    .map(|(id, _)| *id)
                    .collect();
                ids.into_iter()
                    .filter_map(|id| p.remove(&id).map(|x| (id, x)))
                    .collect()
            }
            Err(_) => return,
        };
        for (task_id, p) in expired {
            warn!(
                "central: {} on {} (task {task_id}) timed out: no result within {} s",
                p.command,
                p.host,
                self.config.timeout.as_secs()
            );
            self.remember(task_id, &p, None);
            self.finished(&p.host, &p.command, Outcome::TimedOut);
        }
    }

    fn finished(&self, host: &str, command: &CommandRef, outcome: Outcome) {
        let stopped = self
            .guards
            .lock()
            .ok()
            .and_then(|mut g| g.finished(Instant::now(), host, command, outcome));
        let Some(stopped) = stopped else {
            return;
        };
        let message = format!(
            "central repairs of {} stopped: {} failed or timed out within {} s (the error budget); they stay stopped until resumed",
            stopped.command,
            stopped.failures,
            stopped.window.as_secs()
        );
        warn!("central: {message}");
        let notification = Notification {
            severity: Severity::Failure,
            time: 0.0,
            message,
            host: self.config.hostname.clone(),
            plugin: "monitor".into(),
            plugin_instance: String::new(),
            type_: "central".into(),
            type_instance: stopped.command.to_string(),
            meta: vec![],
        };
        let _ = (self.notify)(&notification);
    }
}
