//! Central rules' decisions, turned into requests to the host each one is
//! for, and what comes back. The I/O around the pure parts of this
//! module: a value list is taken only when it proves its host
//! (`origins.rs`); a decision is held to the known hosts, their pauses
//! and the guards, given a task id derived from the value list's own time,
//! signed with the controller's key and sent through the MQTT session;
//! a host's result counts only when that host signed it, and is matched
//! to what was sent, turned into a result notification and fed back to
//! the guards; presence and the other controllers' announcements keep the
//! roster and the peers current.

use super::guards::{GuardPolicy, Guards, HeldBack, HostFacts, Outcome, Refusal, Verdict};
use super::origins::{Origin, Origins, Unproven};
use super::peers::{Announcement, Peers};
use super::quiet::OncePer;
use super::roster::{Heard, Roster};
use super::task_id::derived_task_id;
use super::unproven::UnprovenBook;
use crate::auth::{SignedResult, SigningKey};
use crate::events::{Notification, Severity};
use crate::local::NotificationSink;
use crate::pause::PauseBook;
use crate::remote::RequestSender;
use crate::remote::presence::{Presence, host_from_topic, status_host, valid_host_name};
use crate::status::{Board, HandlerEvent};
use crate::task::{CommandRef, code, iso8601};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// What central rules need to reach the hosts.
pub struct CentralConfig {
    /// This collectd's own name, on its notifications about the fleet.
    pub hostname: String,
    /// `collectd/%{hostname}/command`.
    pub command_topic: String,
    /// `collectd/%{hostname}/result`.
    pub result_topic: String,
    /// `collectd/%{hostname}/status`: the hosts' presence. Without it,
    /// only the hosts of `host_keys` are known.
    pub status_topic: Option<String>,
    /// `collectd/%{hostname}/controller`: where controllers announce
    /// their window and rule files to each other.
    pub controller_topic: Option<String>,
    /// The window task ids are derived in.
    pub window: Duration,
    /// How long a host has to answer.
    pub timeout: Duration,
    pub key: Option<Arc<SigningKey>>,
    pub guards: GuardPolicy,
    /// Whose value lists prove which hosts.
    pub origins: Origins,
    /// `FleetHostKeys`: the hosts and their result keys, when pinned.
    pub host_keys: Option<BTreeMap<String, Vec<u8>>>,
    /// `FleetMaxHosts`.
    pub max_hosts: usize,
    /// The central rule files' directory (its digest is announced).
    pub rules_dir: PathBuf,
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

    /// The filter of the controllers' announcements.
    pub fn controller_filter(&self) -> Option<String> {
        self.controller_topic
            .as_ref()
            .map(|t| t.replace("%{hostname}", "+"))
    }
}

/// Repairs `status` remembers.
const RECENT: usize = 100;
/// One log line per host (command, reason) and this long.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often the controller looks at its rule files for a new digest.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(30);

/// A repair that ended: its result code (`None`: no answer), and when.
pub(super) struct Ended {
    pub(super) task_id: u64,
    pub(super) host: String,
    pub(super) command: CommandRef,
    pub(super) code: Option<i64>,
    pub(super) at: Instant,
}

/// A request on its way, by task id.
pub(super) struct Pending {
    pub(super) host: String,
    pub(super) command: CommandRef,
    /// `<file>::metric::<handler>`, for the result notification.
    pub(super) handler: String,
    pub(super) sent: Instant,
    /// Another controller requested the same task (0x1100 seen).
    pub(super) duplicate: bool,
}

/// What a central rule decided, as its worker reported it.
pub struct CentralDecision<'a> {
    /// `<file>::metric::<name>`.
    pub handler: &'a str,
    pub command: CommandRef,
    /// The event's series (`host/plugin-instance/type-instance`); its host
    /// is the proven one.
    pub series: &'a str,
    /// The host the handler named; `None`: the series' host.
    pub host: Option<&'a str>,
    /// The event's own time.
    pub time: Option<f64>,
    /// Why the rule holds the decision back itself, if it does.
    pub inhibited: Option<&'a str>,
    /// A notification the rule asked for instead of a command.
    pub notify: Option<&'a str>,
}

/// The decisions' state: guards, the known hosts, the other
/// controllers, and the log's memory. One lock, taken briefly.
pub(super) struct Fleet {
    pub(super) guards: Guards,
    pub(super) roster: Roster,
    pub(super) peers: Peers,
    pub(super) quiet: OncePer,
    /// When the rule files' digest was last looked at, and what it was.
    pub(super) announced: Option<(Instant, String)>,
}

/// Counters `status` shows.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) requests_sent: AtomicU64,
    pub(super) results_proven: AtomicU64,
    pub(super) results_unproven: AtomicU64,
    pub(super) requested_by_others: AtomicU64,
}

/// Central rules' side of the plugin.
pub struct Central {
    pub(super) config: CentralConfig,
    pub(super) fleet: Mutex<Fleet>,
    /// Value lists that did not prove their host (the write path records).
    pub(super) unproven: Mutex<UnprovenBook>,
    pub(super) pending: Mutex<HashMap<u64, Pending>>,
    /// Set once the MQTT session runs.
    pub(super) requests: OnceLock<RequestSender>,
    /// The last repairs that ended, newest first, at most [`RECENT`].
    pub(super) recent: Mutex<VecDeque<Ended>>,
    /// The controller's own pauses (`central pause`).
    pub(super) pauses: Arc<PauseBook>,
    pub(super) counts: Counts,
    pub(super) started: SystemTime,
    pub(super) notify: NotificationSink,
    pub(super) board: Arc<Board>,
}

impl Central {
    /// `board` is central rules' own (their rule files), `pauses` the
    /// controller's pauses of central repairs.
    pub fn new(
        config: CentralConfig,
        pauses: Arc<PauseBook>,
        notify: NotificationSink,
        board: Arc<Board>,
    ) -> Central {
        Central {
            fleet: Mutex::new(Fleet {
                guards: Guards::new(config.guards, HashMap::new(), None),
                roster: Roster::new(config.host_keys.clone(), config.max_hosts),
                peers: Peers::new(&config.hostname),
                quiet: OncePer::new(LOG_EVERY),
                announced: None,
            }),
            unproven: Mutex::new(UnprovenBook::new(LOG_EVERY)),
            config,
            pending: Mutex::new(HashMap::new()),
            requests: OnceLock::new(),
            recent: Mutex::default(),
            pauses,
            counts: Counts::default(),
            started: SystemTime::now(),
            notify,
            board,
        }
    }

    /// The filters the hosts' results, their presence and the other
    /// controllers' announcements arrive on.
    pub fn filters(&self) -> Vec<String> {
        std::iter::once(self.config.result_filter())
            .chain(self.config.status_filter())
            .chain(self.config.controller_filter())
            .collect()
    }

    /// Whether a value list of `host` from `origin` goes to central rules
    /// (it proves its host); called on collectd's write path, so it only
    /// counts what it refuses.
    pub fn admit(&self, origin: Origin<'_>, host: &str) -> bool {
        match self.config.origins.speaks_for(origin, host) {
            Ok(()) => true,
            Err(why) => {
                self.refuse(host, why);
                false
            }
        }
    }

    /// Whether a notification goes to central rules: the network plugin
    /// gives received ones no signer, so only this collectd's own do (or
    /// all of them with `FleetAcceptUnprovenValues`).
    pub fn admit_notification(&self, received: bool, host: &str) -> bool {
        if received && !self.config.origins.accepts_unproven() {
            self.refuse(host, Unproven::Notification);
            return false;
        }
        let origin = if received {
            Origin::Network {
                user: None,
                address: None,
            }
        } else {
            Origin::Local
        };
        self.admit(origin, host)
    }

    /// Whether a silent series of `host` goes to central rules: only for a
    /// host central rules know (from presence or `FleetHostKeys`, or any
    /// with `FleetAcceptUnprovenValues`); invented names are not counted
    /// one by one, as they cost nothing to make up.
    pub fn admit_missing(&self, host: &str) -> bool {
        self.config.origins.accepts_unproven()
            || self.fleet.lock().is_ok_and(|f| f.roster.known(host))
    }

    /// Whether the origin's source address matters (a `network` line).
    pub fn reads_addresses(&self) -> bool {
        self.config.origins.reads_addresses()
    }

    fn refuse(&self, host: &str, why: Unproven) {
        if let Ok(mut u) = self.unproven.lock() {
            u.record(host, why);
        }
    }

    /// A message on one of [`Central::filters`].
    pub fn message(&self, topic: &str, payload: &[u8], retained: bool) {
        let matches = |f: Option<String>| f.filter(|f| crate::config::filter_matches(f, topic));
        if let Some(filter) = matches(self.config.status_filter()) {
            return self.presence(&filter, topic, payload);
        }
        if let Some(filter) = matches(self.config.controller_filter()) {
            return self.announcement(&filter, topic, payload);
        }
        // A retained result is an old one: never a task of this run.
        if !retained {
            self.result(topic, payload);
        }
    }

    /// Logs `line` once per `key` and interval, and a few lines of
    /// `group` per interval (the rest are counted, see [`Central::tick`]).
    fn once(&self, key: &str, group: &str, line: impl FnOnce() -> String, warning: bool) {
        let admitted = self
            .fleet
            .lock()
            .is_ok_and(|mut f| f.quiet.admit(key, group, Instant::now()));
        if admitted {
            if warning {
                warn!("{}", line());
            } else {
                info!("{}", line());
            }
        }
    }

    /// A host's presence: the roster knows it from now on.
    fn presence(&self, filter: &str, topic: &str, payload: &[u8]) {
        let parsed = serde_json::from_slice::<Presence>(payload)
            .map_err(|e| e.to_string())
            .and_then(|p| status_host(filter, topic, &p).map(|host| (host, p)));
        let (host, presence) = match parsed {
            Ok(found) => found,
            Err(why) => {
                let topic = crate::collectd::loggable(topic).into_owned();
                return self.once(
                    &format!("presence {topic}"),
                    "ignored status messages",
                    || format!("central: a status message on {topic} is ignored: {why}"),
                    true,
                );
            }
        };
        let heard = match self.fleet.lock() {
            Ok(mut f) => f.roster.heard(&host, &presence),
            Err(_) => return,
        };
        match heard {
            Heard::Joined => debug!("central: host {host} known ({})", presence.state),
            Heard::KeyPinned => debug!("central: host {host}'s result key kept"),
            Heard::Known => {}
            Heard::KeyChanged => self.once(
                &format!("key {host}"),
                "changed host keys",
                || format!(
                    "central: host {host} announces another result key than the one kept; its results are checked with the kept key (restart the controller, or put the new key in FleetHostKeys, if the host's key was really replaced)"
                ),
                true,
            ),
            Heard::NotListed => self.once(
                &format!("unlisted {host}"),
                "hosts not in FleetHostKeys",
                || format!("central: host {host} is not in FleetHostKeys; central rules do not repair it"),
                true,
            ),
        }
    }

    /// Another controller's announcement.
    fn announcement(&self, filter: &str, topic: &str, payload: &[u8]) {
        let Some(host) = host_from_topic(filter, topic).filter(|h| valid_host_name(h)) else {
            return;
        };
        let Ok(mut fleet) = self.fleet.lock() else {
            return;
        };
        if payload.is_empty() {
            fleet.peers.gone(&host);
            return;
        }
        let Ok(theirs) = serde_json::from_slice::<Announcement>(payload) else {
            return;
        };
        let differences = fleet.peers.heard(&host, theirs);
        drop(fleet);
        for d in differences {
            warn!("central: controller {host} differs: {d}");
        }
    }

    /// The session's request queue, once it runs.
    pub fn connect(&self, requests: RequestSender) {
        let _ = self.requests.set(requests);
    }

    /// A central rule in `file` decided (`decision`).
    pub fn fire(&self, file: &Path, decision: CentralDecision<'_>) {
        let CentralDecision {
            handler,
            command,
            series,
            host,
            time,
            inhibited,
            notify,
        } = decision;
        let path = file.display().to_string();
        if let Some(text) = notify {
            return self.notice(&path, handler, series, host, text);
        }
        self.board.handler(
            &path,
            handler,
            HandlerEvent::Decision {
                series: series.to_string(),
                command: command.to_string(),
            },
        );
        let source = series.split('/').next().unwrap_or_default();
        let host = host.unwrap_or(source);
        if !valid_host_name(host) {
            let host = crate::collectd::loggable(host).into_owned();
            return self.once(
                &format!("name {host}"),
                "decisions for no host name",
                || format!("central: rule {handler} decided for {host:?} on {series}, which is no host name; not sent"),
                true,
            );
        }
        // The file's name, not its path: redundant controllers may keep
        // the same rules in different places.
        let rule_file = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let now = Instant::now();
        let verdict = {
            let Ok(mut fleet) = self.fleet.lock() else {
                return;
            };
            let facts = HostFacts {
                proven: self.config.origins.may_ask(source, host),
                known: fleet.roster.known(host),
                paused: fleet
                    .roster
                    .paused(host, &rule_file, &command, SystemTime::now())
                    .is_some()
                    || self
                        .pauses
                        .find_for_host(&rule_file, &command, host)
                        .is_some(),
                offline: fleet.roster.online(host) == Some(false),
                inhibited: inhibited.is_some(),
                fleet: fleet.roster.size(),
            };
            fleet.guards.decide(now, host, &command, facts)
        };
        if let Verdict::Held(why) = verdict {
            self.board.handler(&path, handler, HandlerEvent::Held);
            return self.once(
                &format!("held {host} {command} {}", why.as_str()),
                &format!("held-back decisions of {command} ({})", why.as_str()),
                || {
                    let because = inhibited
                        .filter(|_| why == HeldBack::Inhibited)
                        .map(|r| format!(": {}", crate::collectd::one_line(r, 200)))
                        .unwrap_or_default();
                    format!(
                        "central: rule {handler}: {command} for {host} held back ({}{because}); said once a minute per host, command and reason, counted in status",
                        why.as_str()
                    )
                },
                false,
            );
        }
        let name = handler.rsplit("::").next().unwrap_or(handler);
        let rule = format!("{rule_file}::{name}");
        // The value list's own time: the same at every controller.
        let decided_at = time
            .filter(|t| t.is_finite() && *t > 0.0)
            .map_or_else(SystemTime::now, |t| UNIX_EPOCH + Duration::from_secs_f64(t));
        let task_id = derived_task_id(
            &rule_file,
            name,
            host,
            &command,
            decided_at,
            self.config.window,
        );
        let message = serde_json::json!({
            "task_id": task_id,
            "timestamp": iso8601(SystemTime::now()),
            "service": command.service,
            "command": command.command,
            "rule": rule,
            "window": self.config.window.as_secs(),
            // For the host's log: which controller and rule decided it.
            "origin": format!("{}: {handler}", self.config.hostname),
        })
        .to_string()
        .into_bytes();
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
        self.counts.requests_sent.fetch_add(1, Ordering::Relaxed);
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
        if let Ok(mut f) = self.fleet.lock() {
            f.guards.cancel(host, command);
        }
    }

    /// A message on a host's result topic: taken only when the host
    /// signed it with its key.
    fn result(&self, topic: &str, payload: &[u8]) {
        let filter = self.config.result_filter();
        let Some(host) = host_from_topic(&filter, topic).filter(|h| valid_host_name(h)) else {
            return;
        };
        let Ok(signed) = serde_json::from_slice::<SignedResult>(payload) else {
            return;
        };
        let proven = self.fleet.lock().is_ok_and(|f| {
            f.roster
                .key(&host)
                .is_some_and(|key| signed.signed_by(&host, key))
        });
        let result = signed.result;
        if !proven {
            self.counts.results_unproven.fetch_add(1, Ordering::Relaxed);
            return self.once(
                &format!("result {host}"),
                "unproven results",
                || format!(
                    "central: a result on {topic} (task {}) is not signed with host {host}'s key; ignored (said once a minute per host, counted in status)",
                    result.task_id
                ),
                true,
            );
        }
        self.counts.results_proven.fetch_add(1, Ordering::Relaxed);
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
                self.counts
                    .requested_by_others
                    .fetch_add(1, Ordering::Relaxed);
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
        // Another controller's task, a replay: not ours.
        let Some(pending) = pending else {
            return;
        };
        let outcome = Outcome::of_code(result.code);
        let message = crate::collectd::loggable(&result.message).into_owned();
        match outcome {
            Outcome::DoneElsewhere => {
                self.counts
                    .requested_by_others
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    "central: {} on {host} (task {}) not run: it runs or ran there for another task ({message})",
                    pending.command, result.task_id
                );
            }
            Outcome::Refused(why) => {
                let clock = if why == Refusal::Stale {
                    " (the host's clock and this one's disagree: check NTP on both)"
                } else {
                    ""
                };
                warn!(
                    "central: {} on {host} (task {}) refused by the host, code {:#x} ({}){clock}: {message}; not a failed repair",
                    pending.command,
                    result.task_id,
                    result.code,
                    why.as_str()
                );
            }
            Outcome::Succeeded | Outcome::Failed | Outcome::TimedOut => {
                info!(
                    "central: {} on {host} (task {}) finished with code {}",
                    pending.command, result.task_id, result.code
                );
                let notification = crate::events::Notification {
                    plugin: crate::local::CENTRAL_RESULT_PLUGIN.into(),
                    ..crate::local::result_notification(
                        &host,
                        &pending.handler,
                        result.task_id,
                        result.code,
                        &result.message,
                    )
                };
                if let Err(status) = (self.notify)(&notification) {
                    warn!(
                        "central: could not dispatch the result of task {} (status {status})",
                        result.task_id
                    );
                }
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

    /// A control request: `central-resume {json}` (a stopped command and
    /// the controller's pauses of that scope), `central-pause {json}`;
    /// `None` for a request that is not central rules'.
    pub fn control(&self, request: &str) -> Option<String> {
        let (verb, json) = request.split_once(' ').unwrap_or((request, "{}"));
        if verb == "central-pause" {
            return self.pauses.control(request);
        }
        if verb != "central-resume" {
            return None;
        }
        let change: crate::pause::Change = match serde_json::from_str(json) {
            Ok(c) => c,
            Err(e) => return Some(format!("error: central-resume: {e}")),
        };
        let mut said = Vec::new();
        if let (Some(service), Some(command)) = (&change.service, &change.command) {
            let command = CommandRef::new(service, command);
            if self
                .fleet
                .lock()
                .is_ok_and(|mut f| f.guards.resume(&command))
            {
                info!("central: repairs of {command} resumed by an operator");
                said.push(format!("central repairs of {command} resumed"));
            } else {
                said.push(format!("central repairs of {command} were not stopped"));
            }
        }
        match self.pauses.apply(true, change, "an operator") {
            Ok(answer) => said.push(format!("central pauses: {answer}")),
            Err(e) => return Some(format!("error: {e}")),
        }
        Some(said.join("; "))
    }

    /// The clock: requests without an answer within the timeout, the
    /// guards' memory, the log of unproven values, the announcement.
    pub fn tick(&self, now: Instant) {
        self.expire(now);
        if let Ok(mut f) = self.fleet.lock() {
            f.guards.prune(now);
        }
        let lines = self
            .unproven
            .lock()
            .map(|mut u| u.report(now))
            .unwrap_or_default();
        for line in lines {
            warn!("{line}");
        }
        let held = self
            .fleet
            .lock()
            .map(|mut f| f.quiet.held(now))
            .unwrap_or_default();
        for (group, n) in held {
            info!(
                "central: {n} more line(s) of {group} not logged in the last minute (status counts them)"
            );
        }
        self.announce(now);
    }

    /// Publishes this controller's window and rule-set digest (retained)
    /// when it changed, and says which peers now differ.
    fn announce(&self, now: Instant) {
        let (Some(topic), Some(requests)) = (&self.config.controller_topic, self.requests.get())
        else {
            return;
        };
        let due = self.fleet.lock().is_ok_and(|f| {
            f.announced
                .as_ref()
                .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= ANNOUNCE_EVERY)
        });
        if !due {
            return;
        }
        let digest = crate::deploy::rule_set_digest(&self.config.rules_dir);
        let ours = Announcement {
            hostname: self.config.hostname.clone(),
            window: self.config.window.as_secs(),
            rule_set: digest.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            since: iso8601(self.started),
        };
        let Ok(mut fleet) = self.fleet.lock() else {
            return;
        };
        let changed = fleet.announced.as_ref().is_none_or(|(_, d)| *d != digest);
        fleet.announced = Some((now, digest));
        if !changed {
            return;
        }
        let news = fleet.peers.ours(ours.clone());
        drop(fleet);
        for (peer, differences) in news {
            for d in differences {
                warn!("central: controller {peer} differs: {d}");
            }
        }
        let payload = serde_json::to_vec(&ours).unwrap_or_default();
        if !requests.announce(topic.replace("%{hostname}", &self.config.hostname), payload) {
            warn!(
                "central: the announcement to the other controllers is not sent: no broker connection (or its queue is full)"
            );
        }
    }

    /// Requests without an answer within the timeout: timed out, or, when
    /// the host went offline meanwhile, not a failure.
    fn expire(&self, now: Instant) {
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
            let offline = self
                .fleet
                .lock()
                .is_ok_and(|f| f.roster.online(&p.host) == Some(false));
            let outcome = if offline {
                Outcome::Refused(Refusal::WentOffline)
            } else {
                Outcome::TimedOut
            };
            warn!(
                "central: {} on {} (task {task_id}) got no answer within {} s{}",
                p.command,
                p.host,
                self.config.timeout.as_secs(),
                if offline {
                    ": the host went offline (not a failed repair)"
                } else {
                    ""
                }
            );
            self.remember(task_id, &p, None);
            self.finished(&p.host, &p.command, outcome);
        }
    }

    fn finished(&self, host: &str, command: &CommandRef, outcome: Outcome) {
        let stopped = self
            .fleet
            .lock()
            .ok()
            .and_then(|mut f| f.guards.finished(Instant::now(), host, command, outcome));
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

    /// A rule asked for a notification instead of a command: dispatched
    /// on this collectd, one a minute per handler (a storm across a pool
    /// makes one, not one per host); no request goes out.
    fn notice(&self, path: &str, handler: &str, series: &str, host: Option<&str>, text: &str) {
        self.board.handler(
            path,
            handler,
            HandlerEvent::Decision {
                series: series.to_string(),
                command: "notify".into(),
            },
        );
        let admitted = self.fleet.lock().is_ok_and(|mut f| {
            f.quiet.admit(
                &format!("notify {handler}"),
                "rule notifications",
                Instant::now(),
            )
        });
        if !admitted {
            return;
        }
        let host = host.unwrap_or_else(|| series.split('/').next().unwrap_or_default());
        info!(
            "central: rule {handler} on {series}: notification: {}",
            crate::collectd::one_line(text, 200)
        );
        let notification = crate::local::rule_notification(
            host,
            crate::local::CENTRAL_RESULT_PLUGIN,
            handler,
            text,
        );
        let _ = (self.notify)(&notification);
    }

    /// What `status` shows of central rules (the caller adds the rule
    /// files and the queue's counters).
    pub fn status(&self) -> crate::status::CentralStatus {
        super::view::status(self)
    }

    /// Central rules' own counters (unproven values, requests, results).
    pub fn counters(&self) -> Vec<(String, f64)> {
        super::view::counters(self)
    }
}
