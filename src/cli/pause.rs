//! `pause` and `resume`: maintenance pauses on this host, through the
//! plugin's control socket; the same arguments make the bodies of
//! `send-pause` and `send-resume` (sent by `fleet::ask`).

use super::CliError;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// What a pause covers and for how long.
#[derive(Args, Debug)]
pub struct PauseArgs {
    /// How long (30m, 2h, 90s); default `PauseDefaultDuration`.
    #[arg(long = "for", value_name = "DURATION")]
    length: Option<String>,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Why, for the log and `status`.
    #[arg(long, default_value = "")]
    reason: String,
    /// Refuse remote commands it covers too (code 0x100D).
    #[arg(long)]
    remote: bool,
}

/// Which pauses end.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// End every pause.
    #[arg(long)]
    all: bool,
}

/// What a pause or resume is about: `--service S[/C]` and `--file F`.
#[derive(Args, Debug)]
struct ScopeArgs {
    /// Only this service, or service/command.
    #[arg(long, value_name = "SERVICE[/COMMAND]")]
    service: Option<String>,
    /// Only the decisions of this rule file (its name, `disk.lua`).
    #[arg(long, value_name = "RULEFILE")]
    file: Option<String>,
}

impl ScopeArgs {
    fn json(&self) -> serde_json::Value {
        scope(self.service.as_deref(), self.file.as_deref())
    }
}

/// The scope fields of a pause: `service[/command]` and the rule file.
fn scope(service: Option<&str>, file: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({});
    if let Some(service) = service {
        match service.split_once('/') {
            Some((s, c)) => {
                v["service"] = s.into();
                v["command"] = c.into();
            }
            None => v["service"] = service.into(),
        }
    }
    if let Some(file) = file {
        v["file"] = file.into();
    }
    v
}

/// `--for`: `30m`, `2h`, `90s` or seconds.
fn seconds(length: &str) -> Result<u64, CliError> {
    humantime::parse_duration(length)
        .map(|d| d.as_secs())
        .or_else(|_| length.parse::<u64>())
        .map_err(|_| {
            CliError::Usage(format!(
                "--for {length:?}: a duration such as 30m, 2h or 90s"
            ))
        })
}

impl PauseArgs {
    /// The request body: the fields of a pause (`crate::pause::Change`).
    pub fn body(&self) -> Result<serde_json::Value, CliError> {
        let mut request = self.scope.json();
        if let Some(length) = &self.length {
            request["for"] = seconds(length)?.into();
        }
        request["reason"] = self.reason.as_str().into();
        request["remote"] = self.remote.into();
        Ok(request)
    }
}

/// A controller's pause of central repairs, or its end.
#[derive(Args, Debug)]
pub struct CentralScopeArgs {
    /// `service` or `service/command`; none: every command.
    #[arg(value_name = "SERVICE[/COMMAND]")]
    what: Option<String>,
    /// Only hosts whose name matches this glob (`web*`).
    #[arg(long, value_name = "GLOB")]
    hosts: Option<String>,
    /// Only the decisions of this central rule file (its name).
    #[arg(long, value_name = "RULEFILE")]
    file: Option<String>,
}

impl CentralScopeArgs {
    fn json(&self) -> serde_json::Value {
        let mut v = scope(self.what.as_deref(), self.file.as_deref());
        if let Some(hosts) = &self.hosts {
            v["hosts"] = hosts.as_str().into();
        }
        v
    }
}

/// `central pause`: what, and for how long.
#[derive(Args, Debug)]
pub struct CentralPauseArgs {
    #[command(flatten)]
    scope: CentralScopeArgs,
    /// How long (30m, 2h, 90s); default `PauseDefaultDuration`.
    #[arg(long = "for", value_name = "DURATION")]
    length: Option<String>,
    /// Why, for the log and `status`.
    #[arg(long, default_value = "")]
    reason: String,
}

impl CentralPauseArgs {
    /// The control request's body.
    pub fn body(&self) -> Result<serde_json::Value, CliError> {
        let mut request = self.scope.json();
        if let Some(length) = &self.length {
            request["for"] = seconds(length)?.into();
        }
        request["reason"] = self.reason.as_str().into();
        Ok(request)
    }
}

/// `central resume`: which stop and pauses end.
#[derive(Args, Debug)]
pub struct CentralResumeArgs {
    #[command(flatten)]
    scope: CentralScopeArgs,
    /// End every pause of central repairs.
    #[arg(long)]
    all: bool,
}

impl CentralResumeArgs {
    /// The control request's body.
    pub fn body(&self) -> serde_json::Value {
        let mut request = self.scope.json();
        request["all"] = self.all.into();
        request
    }
}

impl ResumeArgs {
    /// The request body.
    pub fn body(&self) -> serde_json::Value {
        let mut request = self.scope.json();
        request["all"] = self.all.into();
        request
    }
}

/// Sends `verb {json}` to this host's plugin and prints the answer; an
/// answer that is an error exits 1.
pub fn local(socket: &Path, verb: &str, request: serde_json::Value) -> Result<ExitCode, CliError> {
    let answer = crate::status::control(
        socket,
        &format!("{verb} {request}"),
        Duration::from_secs(10),
    )
    .map_err(CliError::NoResult)?;
    match answer.strip_prefix("error: ") {
        Some(error) => Err(CliError::Failed(error.to_string())),
        None => {
            say!("{answer}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
