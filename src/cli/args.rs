//! Argument groups several subcommands share, and how each turns into the
//! library's settings.

use crate::lua::VmLimits;
use crate::mqtt::{Connection, TlsSettings, parse_host};
use crate::remote::sender::SendOptions;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The per-call limits of a rule file (`RuleFuel`, `RuleMemoryLimit`,
/// `RuleTimeout`), with the plugin's defaults.
#[derive(Args, Clone, Copy, Debug)]
pub struct LimitArgs {
    /// VM fuel per call.
    #[arg(long, default_value_t = VmLimits::DEFAULT_FUEL)]
    pub fuel: u64,
    /// MiB the Lua instance may hold.
    #[arg(long, default_value_t = VmLimits::DEFAULT_MEMORY_MIB)]
    pub memory_limit: u64,
    /// Milliseconds per call.
    #[arg(long, default_value_t = VmLimits::DEFAULT_TIMEOUT_MS)]
    pub timeout: u64,
}

impl LimitArgs {
    /// The VM limits these arguments stand for.
    pub fn vm_limits(self) -> VmLimits {
        VmLimits::from_units(self.fuel, self.memory_limit, self.timeout)
    }

    /// The same limits as arguments, for the sandboxed child of `lua`.
    pub fn command_line(self) -> Vec<OsString> {
        [
            format!("--fuel={}", self.fuel),
            format!("--memory-limit={}", self.memory_limit),
            format!("--timeout={}", self.timeout),
        ]
        .map(OsString::from)
        .to_vec()
    }
}

/// Seconds that must be more than zero.
pub(super) fn positive_seconds(text: &str) -> Result<f64, String> {
    /// A year: longer is surely a slip of the finger (and `1e300` would
    /// not even be a duration).
    const MAX: f64 = 365.0 * 86_400.0;
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX => Ok(s),
        Ok(_) => Err(format!("must be more than 0 and at most {MAX} seconds")),
        Err(e) => Err(e.to_string()),
    }
}

/// How to sign a request, for hosts that trust keys (`TrustedKeys`).
#[derive(Args, Debug)]
pub struct SigningArgs {
    /// Sign the request with this private key (made by `keygen`).
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// The target host's collectd Hostname, which the signature binds.
    #[arg(long, requires = "signing_key")]
    target: Option<String>,
}

impl SigningArgs {
    /// `payload` signed as asked, or as it is without --signing-key.
    pub fn apply(&self, payload: Vec<u8>) -> Result<Vec<u8>, String> {
        match (self.key()?, &self.target) {
            (Some(key), Some(target)) => crate::remote::sender::sign(&payload, &key, target),
            (Some(_), None) => Err("--signing-key needs --target HOSTNAME (the host's collectd Hostname, which the signature binds)".into()),
            (None, _) => Ok(payload),
        }
    }

    /// `--target`: the one host a request is for.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The signing key, when one is given.
    pub fn key(&self) -> Result<Option<crate::auth::SigningKey>, String> {
        self.signing_key
            .as_ref()
            .map(|path| {
                crate::auth::SigningKey::read(path).map_err(|e| format!("--signing-key {e}"))
            })
            .transpose()
    }

    /// For many hosts, each request is signed for its own host: `--target`
    /// would name one.
    pub fn check_fleet(&self) -> Result<(), String> {
        match &self.target {
            Some(_) => Err("--target names one host; with --hosts, --hosts-file or --online each request is signed for its own host".into()),
            None => Ok(()),
        }
    }
}

/// How to reach the broker. Short flags follow mosquitto_pub's (`-p -u
/// -P`, `--cafile`).
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Broker, `host` or `host:port` (1883 by default, 8883 with --tls).
    #[arg(long)]
    host: String,
    /// Broker port (instead of one in --host).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Prefer --password-file or the environment: a password on the
    /// command line is visible to every user of the host.
    #[arg(
        short = 'P',
        long,
        env = "COLLECTD_MONITOR_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, conflicts_with = "password")]
    password_file: Option<PathBuf>,
    /// Use TLS, verifying the broker against the system's CAs or --ca.
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA that signed the broker's certificate (implies --tls).
    #[arg(long, visible_alias = "cafile")]
    ca: Option<PathBuf>,
    /// PEM client certificate (implies --tls; needs --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Do not verify the broker's certificate (insecure).
    #[arg(long)]
    insecure: bool,
}

impl ConnectArgs {
    /// The connection, with a client id of its own (`<role>-<pid>-<n>`);
    /// an error for a broker address that is not `host` or `host:port`, or
    /// a password file that cannot be read.
    pub fn connection(&self, role: &str) -> Result<Connection, String> {
        let tls = self.tls || self.ca.is_some() || self.cert.is_some() || self.insecure;
        let (host, port) = parse_host(&self.host, tls)?;
        let port = self.port.unwrap_or(port);
        let password = match &self.password_file {
            Some(path) => Some(
                crate::files::read_regular(path, 64 * 1024, crate::files::Links::Follow)
                    .map_err(|e| format!("--password-file {}: {e}", path.display()))
                    .map(|bytes| {
                        String::from_utf8_lossy(&bytes)
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    })?,
            ),
            None => self.password.clone(),
        };
        Ok(Connection {
            host,
            port,
            client_id: format!(
                "collectd-monitor-{role}-{}-{}",
                std::process::id(),
                fastrand::u32(..)
            ),
            credentials: self.user.clone().map(|u| (u, password.unwrap_or_default())),
            tls: tls.then(|| TlsSettings {
                ca_file: self.ca.clone(),
                client_auth: self.cert.clone().zip(self.key.clone()),
                skip_verify: self.insecure,
            }),
            keep_alive: Duration::from_secs(30),
            clean_session: true,
            manual_acks: false,
            max_packet: CLI_MAX_PACKET,
            last_will: None,
        })
    }
}

/// The largest message the command line takes from the broker: a result or
/// status message larger than this (someone else's, surely: a host's
/// result is at most its `CommandOutputLimit`) is dropped by the broker
/// (MQTT 5 Maximum Packet Size) and never read into memory.
pub const CLI_MAX_PACKET: u32 = 16 * 1024 * 1024;

/// How to reach the broker, and the host's topics.
#[derive(Args, Debug)]
pub struct BrokerArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The host's CommandTopic.
    #[arg(short = 't', long)]
    topic: String,
    /// The host's CommandResultTopic.
    #[arg(long)]
    result_topic: String,
    /// MQTT QoS for the request and the result subscription.
    #[arg(short = 'q', long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 60.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Print the raw result message instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl BrokerArgs {
    /// How to reach the broker.
    pub fn connect(&self) -> &ConnectArgs {
        &self.connect
    }

    /// The sender's settings (see [`ConnectArgs::connection`]); the
    /// topics are templates (`%{hostname}`) for many hosts.
    pub fn options(&self) -> Result<SendOptions, String> {
        for (flag, topic) in [("-t", &self.topic), ("--result-topic", &self.result_topic)] {
            if topic.contains(['+', '#']) {
                return Err(format!(
                    "{flag} {topic:?}: a host's own topic, without wildcards (`+`, `#`)"
                ));
            }
        }
        Ok(SendOptions {
            connection: self.connect.connection("send")?,
            topic: self.topic.clone(),
            result_topic: self.result_topic.clone(),
            qos: crate::mqtt::qos(self.qos),
            timeout: Duration::from_secs_f64(self.timeout),
        })
    }

    /// The same for one host: `%{hostname}` in the topics is `target`
    /// (`--target`), and without it an error rather than a literal topic
    /// nobody listens on.
    pub fn for_one_host(&self, target: Option<&str>) -> Result<SendOptions, String> {
        let mut options = self.options()?;
        for topic in [&mut options.topic, &mut options.result_topic] {
            if topic.contains("%{hostname}") {
                let host = target.ok_or_else(|| {
                    format!("{topic:?} names %{{hostname}}: give --target HOSTNAME, or --hosts")
                })?;
                *topic = topic.replace("%{hostname}", host);
            }
        }
        Ok(options)
    }
}

/// Many hosts at once (`send-command`): who, how many at a time, and how
/// many failures stop the rest, as AWS SSM Run Command's MaxConcurrency
/// and MaxErrors.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Hosts by collectd Hostname, comma-separated; -t and --result-topic
    /// are then templates with %{hostname}.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// A file of host names, one per line (`#` starts a comment).
    #[arg(long)]
    pub hosts_file: Option<PathBuf>,
    /// The hosts online whose name matches this glob (`web*`), from the
    /// presence on --status-topic.
    #[arg(long, requires = "status_topic")]
    pub online: Option<String>,
    /// The hosts' StatusTopic as a filter (`collectd/+/status`), for --online.
    #[arg(long)]
    pub status_topic: Option<String>,
    /// A file of the hosts' result keys (`HOST ed25519 KEY` lines, as
    /// `hosts --keys` prints them): a result then counts only when its host
    /// signed it.
    #[arg(long)]
    pub host_keys: Option<PathBuf>,
    /// Hosts in flight at once: a number or a percentage of the targets.
    #[arg(long, default_value = "10", value_parser = crate::remote::fanout::Amount::parse)]
    pub max_concurrency: crate::remote::fanout::Amount,
    /// Failed or timed-out hosts allowed before no further host is sent
    /// the request (those in flight finish): a number or a percentage.
    #[arg(long, default_value = "0", value_parser = crate::remote::fanout::Amount::parse)]
    pub max_errors: crate::remote::fanout::Amount,
}

impl TargetArgs {
    /// Whether any target flag was given (else: one host, as before).
    pub fn given(&self) -> bool {
        !self.hosts.is_empty() || self.hosts_file.is_some() || self.online.is_some()
    }

    /// The named hosts (from --hosts and --hosts-file), in order, each
    /// once; an error for a name that cannot be part of a topic.
    pub fn named(&self) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = self.hosts.iter().map(|h| h.trim().to_string()).collect();
        if let Some(path) = &self.hosts_file {
            let bytes = crate::files::read_regular(path, 16 << 20, crate::files::Links::Follow)
                .map_err(|e| format!("--hosts-file {}: {e}", path.display()))?;
            names.extend(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_string()),
            );
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
        if let Some(bad) = names
            .iter()
            .find(|n| !crate::remote::presence::valid_host_name(n))
        {
            return Err(format!(
                "host {bad:?}: a host name is letters, digits, '.', '-' and '_'"
            ));
        }
        Ok(names)
    }
}

/// A count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A staged config rollout (`send-config` to many hosts).
#[derive(Args, Debug)]
pub struct RolloutArgs {
    /// Push to this many hosts first; the rest only if every one of them
    /// answered 0.
    #[arg(long, requires = "wave_size")]
    pub canary: Option<usize>,
    /// After the canaries, push in waves of this many hosts, each once the
    /// previous one has finished.
    #[arg(long, requires = "canary", value_parser = at_least_one)]
    pub wave_size: Option<usize>,
}

impl RolloutArgs {
    /// `(canaries, wave size)`, when a staged rollout is asked for.
    pub fn stages(&self) -> Option<(usize, usize)> {
        self.canary.zip(self.wave_size)
    }
}
