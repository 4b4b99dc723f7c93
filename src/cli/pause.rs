//! `pause` and `resume`: maintenance pauses on this host, through the
//! plugin's control socket.

use super::CliError;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// What a pause or resume is about: `--service S[/C]` and `--file F`.
pub struct Scope<'a> {
    pub service: Option<&'a str>,
    pub file: Option<&'a str>,
}

impl Scope<'_> {
    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({});
        if let Some(service) = self.service {
            match service.split_once('/') {
                Some((s, c)) => {
                    v["service"] = s.into();
                    v["command"] = c.into();
                }
                None => v["service"] = service.into(),
            }
        }
        if let Some(file) = self.file {
            v["file"] = file.into();
        }
        v
    }
}

/// Sends `verb {json}` and prints the answer; an answer that is an error
/// exits 1.
fn ask(socket: &Path, verb: &str, request: &serde_json::Value) -> Result<ExitCode, CliError> {
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

/// `pause [--for DURATION] [--service S[/C]] [--file F] [--reason TEXT] [--remote]`.
pub fn pause(
    socket: &Path,
    scope: &Scope<'_>,
    length: Option<&str>,
    reason: &str,
    remote: bool,
) -> Result<ExitCode, CliError> {
    let mut request = scope.json();
    if let Some(length) = length {
        let seconds = humantime::parse_duration(length)
            .map(|d| d.as_secs())
            .or_else(|_| length.parse::<u64>())
            .map_err(|_| {
                CliError::Usage(format!(
                    "--for {length:?}: a duration such as 30m, 2h or 90s"
                ))
            })?;
        request["for"] = seconds.into();
    }
    request["reason"] = reason.into();
    request["remote"] = remote.into();
    ask(socket, "pause", &request)
}

/// `resume [--service S[/C]] [--file F] [--all]`.
pub fn resume(socket: &Path, scope: &Scope<'_>, all: bool) -> Result<ExitCode, CliError> {
    let mut request = scope.json();
    request["all"] = all.into();
    ask(socket, "resume", &request)
}
