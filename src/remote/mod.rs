//! Remote commands over MQTT (docs/COMPATIBILITY.md §4): a controller publishes
//! `{task_id, timestamp, service, command}`, we run the predefined command
//! and publish `{task_id, timestamp, message, code}`.
//!
//! Everything runs on one dedicated thread with its own single-threaded
//! tokio runtime; collectd's threads never wait for the network.

mod acks;
mod announce;
mod backoff;
mod confirm;
mod decide;
mod execute;
pub mod fanout;
mod history_answer;
mod intake;
mod journal;
mod message;
pub mod presence;
mod publisher;
mod repeat;
pub mod sender;
mod session;

pub use decide::{Decision, RequestPolicy, decide, refusal_record};
pub use journal::{Journal, TaskPhase};
pub use message::{Ask, Malformed, Request, RuleRef, parse};

use crate::actions::Runner;
use crate::config::{LiveServices, Settings};
use crate::mqtt::{Connection, QoS, TlsSettings, parse_host};
use crate::reconfig::ReplaceContext;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The remote part of the settings, checked and with defaults applied.
#[derive(Clone, Debug)]
pub struct RemoteSettings {
    pub connection: Connection,
    pub qos: QoS,
    pub command_topic: String,
    pub result_topic: String,
    pub reconnect: Duration,
    pub max_payload: u64,
    pub max_age: Duration,
    pub journal_path: PathBuf,
    /// collectd's `Hostname`, which signed requests must be signed for.
    pub hostname: String,
    /// `StatusTopic`, expanded: where the host's presence goes.
    pub status_topic: Option<String>,
    /// `AllowConfigPush`.
    pub config_push: bool,
    /// Where the session's state goes, for `status` (set by the plugin).
    pub board: Option<Arc<crate::status::Board>>,
    /// The keys whose signed requests run; `None`: every request runs.
    pub trust: Option<Arc<crate::auth::TrustedKeys>>,
    /// This host's own key (`StateDir/host.key`, made at the first start),
    /// which signs every result it publishes; `None` when it could not be
    /// read or made (results then go out unsigned, as before).
    pub result_key: Option<Arc<crate::auth::SigningKey>>,
    /// Central rules: the hosts' result topics to listen on, and who hears
    /// what arrives there.
    pub fleet: Option<FleetLink>,
    /// Maintenance pauses; one with `remote` refuses a command (0x100D).
    pub pauses: Option<Arc<crate::pause::PauseBook>>,
    /// Where requests and their outcomes are recorded.
    pub history: Option<Arc<crate::history::History>>,
    /// Carries out rule pushes; `None`: they are refused (0x3002).
    pub deployer: Option<Arc<crate::deploy::Deployer>>,
    /// For collectd.conf replacement; the plugin adds what only collectd
    /// knows (its command line, its PID file).
    pub replace: ReplaceContext,
    /// What the last presence said of what may change (see
    /// `announce.rs`), shared by everything that announces it.
    pub(crate) announced: Arc<std::sync::Mutex<Option<announce::Said>>>,
}

impl RemoteSettings {
    /// `None` when no `Host` is configured (remote commands off).
    /// `hostname` is collectd's, for the default client id and `%{hostname}`
    /// in topics.
    pub fn from_settings(s: &Settings, hostname: &str) -> Result<Option<RemoteSettings>, String> {
        let Some(host) = &s.host else {
            return Ok(None);
        };
        let (host, port) = parse_host(host, s.secure)?;
        let topic = |value: &Option<String>, key: &str| {
            value
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| t.replace("%{hostname}", hostname))
                .ok_or_else(|| {
                    format!(
                        "Host is set but {key} is not; both topics are needed for remote commands"
                    )
                })
        };
        let command_topic = topic(&s.command_topic, "CommandTopic")?;
        let result_topic = topic(&s.command_result_topic, "CommandResultTopic")?;
        if s.command_max_age == 0 {
            return Err("CommandMaxAge must be at least 1 second".into());
        }
        let qos = crate::mqtt::qos(s.qos.level());
        // Relative to collectd's BaseDir, which is the working directory
        // once collectd has read its configuration: made absolute now, so
        // the push policy can tell when a new config would move it.
        let state_dir = std::env::current_dir()
            .map(|cwd| cwd.join(&s.state_dir))
            .unwrap_or_else(|_| s.state_dir.clone());
        let connection = connection(s, host, port, hostname)?;
        let replace = replace_context(s, hostname, &state_dir, &connection, &result_topic);
        Ok(Some(RemoteSettings {
            replace,
            connection,
            qos,
            command_topic,
            result_topic,
            reconnect: Duration::from_secs(s.reconnect_interval.unwrap_or(5).max(1)),
            max_payload: s.max_payload_bytes,
            max_age: Duration::from_secs(s.command_max_age),
            journal_path: state_dir.join("tasks.journal"),
            hostname: hostname.to_string(),
            status_topic: s
                .status_topic
                .as_ref()
                .map(|t| t.replace("%{hostname}", hostname)),
            config_push: s.allow_config_push,
            board: None,
            result_key: None,
            fleet: None,
            pauses: None,
            history: None,
            deployer: None,
            announced: Arc::default(),
            trust: match &s.trusted_keys {
                Some(path) => Some(Arc::new(
                    crate::auth::TrustedKeys::load(path)
                        .map_err(|e| format!("TrustedKeys: {e}"))?,
                )),
                None => None,
            },
        }))
    }
}

/// The broker connection these settings describe.
fn connection(s: &Settings, host: String, port: u16, hostname: &str) -> Result<Connection, String> {
    let credentials = match (&s.user, &s.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (Some(u), None) => Some((u.clone(), String::new())),
        (None, Some(_)) => return Err("Password is set without User".into()),
        (None, None) => None,
    };
    let tls = s.secure.then(|| TlsSettings {
        ca_file: s.ca_cert.clone(),
        client_auth: s
            .certificate_file
            .clone()
            .zip(s.certificate_key_file.clone()),
        skip_verify: !s.verify_peer,
    });
    if s.certificate_file.is_some() != s.certificate_key_file.is_some() {
        return Err("CertificateFile and CertificateKeyFile go together".into());
    }
    Ok(Connection {
        host,
        port,
        client_id: s
            .client_id
            .clone()
            .unwrap_or_else(|| format!("collectd-monitor-{hostname}")),
        credentials,
        tls,
        keep_alive: Duration::from_secs(s.keep_alive),
        clean_session: s.clean_session,
        manual_acks: true,
        last_will: s.status_topic.as_ref().map(|t| {
            (
                t.replace("%{hostname}", hostname),
                presence::Presence::will(hostname).to_json(),
            )
        }),
        // The broker drops what MaxPayloadBytes would refuse anyway.
        max_packet: u32::try_from(s.max_payload_bytes)
            .unwrap_or(u32::MAX)
            .saturating_add(crate::mqtt::PUBLISH_OVERHEAD),
    })
}

/// What a collectd.conf replacement needs to know of these settings (the
/// plugin adds its command line and PID file).
fn replace_context(
    s: &Settings,
    hostname: &str,
    state_dir: &std::path::Path,
    connection: &Connection,
    result_topic: &str,
) -> ReplaceContext {
    ReplaceContext {
        hostname: hostname.to_string(),
        invocation: None,
        service: s.services.get("collectd").cloned(),
        pid_file: None,
        helper: s.helper_path.clone(),
        state_dir: state_dir.to_path_buf(),
        timeout_secs: s.command_timeout,
        connection: connection.clone(),
        result_topic: result_topic.to_string(),
        qos: s.qos.level(),
        policy: crate::reconfig::PushPolicy {
            allowed_plugins: s.push_allowed_plugins.clone(),
            include_dirs: s.push_include_dirs.clone(),
            plugin_dirs: [PathBuf::from(crate::reconfig::DEFAULT_PLUGIN_DIR)]
                .into_iter()
                .chain(crate::reconfig::this_library_dir())
                .collect(),
            writable_dirs: s.push_writable_dirs.clone(),
            // The plugin sets it from collectd's configuration.
            running_block: None,
            running: crate::reconfig::RunningFiles {
                state_dir: Some(state_dir.to_path_buf()),
                protected: [&s.trusted_keys, &s.local_monitor_config_dir]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .chain([s.helper_path.clone()])
                    .collect(),
                ..Default::default()
            },
        },
    }
}

/// Hears a message for central rules: its topic, payload, and whether it
/// was retained.
pub type FleetHandler = Arc<dyn Fn(&str, &[u8], bool) + Send + Sync>;

/// The link between the session and central rules: the hosts' results
/// (and presence) arrive on `filters` (`collectd/+/result`) and go to
/// `on_message`; requests go out through [`Remote::requests`].
#[derive(Clone)]
pub struct FleetLink {
    pub filters: Vec<String>,
    pub on_message: FleetHandler,
}

impl std::fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FleetLink({:?})", self.filters)
    }
}

/// Sends requests to other hosts through this session's connection, in
/// order with everything else it publishes.
#[derive(Clone)]
pub struct RequestSender(tokio::sync::mpsc::Sender<publisher::Outgoing>);

impl RequestSender {
    /// Queues `payload` for `topic` (QoS 1, expiring at the broker after
    /// `expiry`); false when the queue is full (the broker is away for
    /// long): the caller counts the request as not sent.
    pub fn send(&self, topic: String, payload: Vec<u8>, expiry: Duration) -> bool {
        self.0
            .try_send(publisher::Outgoing::Request {
                topic,
                payload,
                expiry,
            })
            .is_ok()
    }

    /// Publishes `payload` on `topic`, retained (a controller's
    /// announcement); false when the queue is full.
    pub fn announce(&self, topic: String, payload: Vec<u8>) -> bool {
        self.0
            .try_send(publisher::Outgoing::Presence { topic, payload })
            .is_ok()
    }
}

/// Opens the task journal; tasks older than the accepted window are
/// forgotten (they are refused as stale anyway).
fn open_journal(settings: &RemoteSettings) -> Result<Journal, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Tasks older than the accepted window are refused as stale anyway.
    let retention = settings
        .max_age
        .as_secs()
        .saturating_mul(2)
        .saturating_add(3600);
    let journal = Journal::open(&settings.journal_path, now, retention)
        .map_err(|e| format!("task journal {}: {e}", settings.journal_path.display()))?;
    if journal.skipped_lines > 0 {
        tracing::warn!(
            "remote: task journal {}: skipped {} unreadable line(s) (torn write after a crash?)",
            settings.journal_path.display(),
            journal.skipped_lines
        );
    }
    Ok(journal)
}

/// Tells `status` where the session goes and logs, once at start, what
/// protects this host: the broker's certificate check and the keys whose
/// requests run.
fn report_start(settings: &RemoteSettings) {
    if settings
        .connection
        .tls
        .as_ref()
        .is_some_and(|t| t.skip_verify)
    {
        tracing::warn!(
            "remote: VerifyPeer is false: the broker's certificate is NOT checked; anyone on the path can impersonate it"
        );
    }
    if let Some(board) = &settings.board {
        board.remote_started(
            &format!("{}:{}", settings.connection.host, settings.connection.port),
            &settings.command_topic,
            settings.trust.is_some(),
            &settings.journal_path,
        );
    }
    match &settings.trust {
        None => tracing::warn!(
            "remote: requests are not authenticated (no TrustedKeys): whoever may publish on {} can run every configured command{}",
            settings.command_topic,
            if settings.replace.service.is_some() {
                " and replace collectd.conf"
            } else {
                ""
            }
        ),
        Some(trust) => tracing::info!(
            "remote: only signed requests run; trusted keys: {}",
            trust
                .keys
                .iter()
                .map(|(name, k)| format!("{name} ({})", k.rights.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Longest wait at shutdown for the journal's last writes.
const JOURNAL_GRACE: Duration = Duration::from_secs(5);

/// The running remote thread.
pub struct Remote {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// The journal's writer, which ends once the session's handles are
    /// gone and what they queued is on disk.
    journal: Option<(journal::JournalWriter, JoinHandle<()>)>,
    requests: RequestSender,
}

impl Remote {
    /// Opens the journal and starts the session thread. Fails (and nothing
    /// runs) when the journal cannot be opened: without it, "at most once"
    /// could not be kept.
    pub fn start(
        mut settings: RemoteSettings,
        services: Arc<LiveServices>,
        runner: Arc<Runner>,
    ) -> Result<Remote, String> {
        let key_path = settings.replace.state_dir.join(crate::auth::HOST_KEY_FILE);
        match crate::auth::SigningKey::load_or_create(&key_path, &settings.hostname) {
            Ok(key) => settings.result_key = Some(Arc::new(key)),
            Err(e) => tracing::warn!("remote: results go out unsigned: host key {e}"),
        }
        let journal = open_journal(&settings)?;
        report_start(&settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("monitor-mqtt-cmd")
            .build()
            .map_err(|e| format!("cannot start the MQTT runtime: {e}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let (outgoing, outgoing_rx) = tokio::sync::mpsc::channel(session::OUTGOING_CAPACITY);
        let requests = RequestSender(outgoing.clone());
        let (journal, journal_thread) = journal.into_writer();
        let journal_handle = journal.clone();
        let thread = std::thread::Builder::new()
            .name("monitor-mqtt".into())
            .spawn(move || {
                let queue = (outgoing, outgoing_rx);
                runtime.block_on(session::run(
                    settings, services, runner, journal, queue, stop_rx,
                ));
                // Commands still running are left to finish on their own;
                // the journal reports them as interrupted at the next start.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| format!("cannot start the MQTT thread: {e}"))?;
        Ok(Remote {
            stop,
            thread: Some(thread),
            journal: Some((journal_handle, journal_thread)),
            requests,
        })
    }

    /// Where central rules hand their requests.
    pub fn requests(&self) -> RequestSender {
        self.requests.clone()
    }

    /// Disconnects and joins the thread.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // What the session queued is written before collectd goes on
        // stopping; a disk that does not answer holds it back at most
        // [`JOURNAL_GRACE`] (the lines are then lost as in a crash, which
        // the journal is made for).
        if let Some((journal, t)) = self.journal.take() {
            journal.close();
            let deadline = std::time::Instant::now() + JOURNAL_GRACE;
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!("remote: the task journal's last writes did not finish in time");
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop();
    }
}
