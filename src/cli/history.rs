//! `history`: what ran on this host, why and for whom (through the
//! plugin's control socket); `send-history`: the same from many hosts, as
//! signed requests over MQTT.

use super::CliError;
use super::args::{BrokerArgs, SigningArgs, TargetArgs};
use crate::history::{Query, Record};
use crate::remote::fanout::HostOutcome;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Which records to show.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Only records of the last DURATION (30m, 2h, 7d).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Only this service's records.
    #[arg(long)]
    service: Option<String>,
    /// Only records of this kind: rule, remote, config, pause, resume,
    /// refused.
    #[arg(long)]
    kind: Option<String>,
    /// The newest this many records (at most 1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

impl QueryArgs {
    fn query(&self) -> Result<Query, CliError> {
        let since_secs = self
            .since
            .as_ref()
            .map(|s| {
                humantime::parse_duration(s)
                    .map(|d| d.as_secs())
                    .map_err(|_| {
                        CliError::Usage(format!("--since {s:?}: a duration such as 30m, 2h or 7d"))
                    })
            })
            .transpose()?;
        if self.limit == 0 || self.limit > crate::history::MAX_LIMIT {
            return Err(CliError::Usage(format!(
                "--limit: 1 to {}",
                crate::history::MAX_LIMIT
            )));
        }
        Ok(Query {
            since_secs,
            service: self.service.clone(),
            kind: self.kind.clone(),
            limit: Some(self.limit),
        })
    }
}

/// `history`: this host's records, oldest first.
pub fn local(socket: &Path, args: &QueryArgs, json: bool) -> Result<ExitCode, CliError> {
    let query = serde_json::to_string(&args.query()?).unwrap_or_default();
    let answer =
        crate::status::control(socket, &format!("history {query}"), Duration::from_secs(10))
            .map_err(CliError::NoResult)?;
    if let Some(error) = answer.strip_prefix("error: ") {
        return Err(CliError::Failed(error.to_string()));
    }
    print_lines(None, &answer, json);
    Ok(ExitCode::SUCCESS)
}

/// `send-history --hosts ...`: each host's records, by host; exit 1 when
/// a host did not answer.
pub fn remote(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    args: &QueryArgs,
) -> Result<ExitCode, CliError> {
    if !targets.given() {
        return Err(CliError::Usage(
            "send-history needs hosts: --hosts, --hosts-file or --online".into(),
        ));
    }
    let body = serde_json::to_value(args.query()?).unwrap_or_default();
    let outcomes = super::fleet::gather(broker, signing, targets, None, |_, task_id| {
        crate::remote::sender::ask_message(task_id, crate::auth::BodyKind::History, body.clone())
    })?;
    let mut all_answered = true;
    for (host, outcome) in &outcomes {
        match outcome {
            HostOutcome::Result { code: 0, message } => {
                print_lines(Some(host), message, broker.json)
            }
            other => {
                all_answered = false;
                eprintln!("{host}: {}", super::fleet::describe(other));
            }
        }
    }
    Ok(if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints an answer's records (one JSON record per line), with the host's
/// name when there are many.
fn print_lines(host: Option<&str>, answer: &str, json: bool) {
    for line in answer.lines().filter(|l| !l.is_empty()) {
        let Ok(record) = serde_json::from_str::<Record>(line) else {
            eprintln!(
                "warning: not a history record: {}",
                crate::collectd::loggable(line)
            );
            continue;
        };
        if json {
            let mut value = serde_json::to_value(&record).unwrap_or_default();
            if let Some(host) = host {
                value["host"] = host.into();
            }
            say!("{value}");
        } else {
            let host = host.map_or(String::new(), |h| format!("{h} "));
            say!("{host}{}", human(&record));
        }
    }
}

/// One record in a line: `when kind what code N (1.2 s) by who [on series]: outcome`.
fn human(r: &Record) -> String {
    let code = r.code.map_or(String::new(), |c| format!(" code {c}"));
    let took = r.duration_ms.map_or(String::new(), |ms| {
        format!(" ({:.1} s)", ms as f64 / 1000.0)
    });
    let task = r.task_id.map_or(String::new(), |t| format!(" task {t}"));
    let series = r
        .series
        .as_ref()
        .map_or(String::new(), |s| format!(" on {s}"));
    let outcome = r.outcome.lines().next().unwrap_or("");
    crate::collectd::loggable(&format!(
        "{} {} {}{code}{took}{task} by {}{series}: {outcome}",
        r.at, r.kind, r.what, r.who
    ))
    .into_owned()
}
