//! Argument groups several subcommands share, and how each turns into the
//! library's settings.

use crate::lua::VmLimits;
use crate::mqtt::{Connection, MQTT_MAX_PACKET, TlsSettings, parse_host};
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

/// How to reach the broker, and the host's topics.
#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// Broker, `host` or `host:port` (1883 by default, 8883 with --tls).
    #[arg(long)]
    host: String,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Use TLS, verifying the broker against the system's CAs or --ca.
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA that signed the broker's certificate (implies --tls).
    #[arg(long)]
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
    /// The host's CommandTopic.
    #[arg(long)]
    topic: String,
    /// The host's CommandResultTopic.
    #[arg(long)]
    result_topic: String,
    /// MQTT QoS for the request and the result subscription.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Print the raw result message instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl BrokerArgs {
    /// The sender's settings; an error for a broker address that is not
    /// `host` or `host:port`.
    pub fn options(&self) -> Result<SendOptions, String> {
        let tls = self.tls || self.ca.is_some() || self.cert.is_some() || self.insecure;
        let (host, port) = parse_host(&self.host, tls)?;
        Ok(SendOptions {
            connection: Connection {
                host,
                port,
                client_id: format!(
                    "collectd-monitor-send-{}-{}",
                    std::process::id(),
                    fastrand::u32(..)
                ),
                credentials: self
                    .user
                    .clone()
                    .map(|u| (u, self.password.clone().unwrap_or_default())),
                tls: tls.then(|| TlsSettings {
                    ca_file: self.ca.clone(),
                    client_auth: self.cert.clone().zip(self.key.clone()),
                    skip_verify: self.insecure,
                }),
                keep_alive: Duration::from_secs(30),
                clean_session: true,
                manual_acks: false,
                max_packet: MQTT_MAX_PACKET,
            },
            topic: self.topic.clone(),
            result_topic: self.result_topic.clone(),
            qos: crate::mqtt::qos(self.qos),
            timeout: Duration::from_secs_f64(self.timeout.max(0.1)),
        })
    }
}
