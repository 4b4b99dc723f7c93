//! `send-command` and `send-config` to many hosts (`--hosts`,
//! `--hosts-file`, `--online`): the fan-out with its concurrency and error
//! budget (and for configs, canaries and waves), progress on a terminal,
//! and every host's outcome.

use super::CliError;
use super::args::{BrokerArgs, SigningArgs, TargetArgs};
use crate::remote::fanout::{Fanout, HostOutcome};
use crate::remote::sender::{self, FanoutTopics, gather_presence};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Sends `service`/`command` to every targeted host; exit 0 only when
/// every one answered 0.
pub fn command(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    service: &str,
    command: &str,
) -> Result<ExitCode, CliError> {
    fan_out(broker, signing, targets, None, |_, task_id| {
        sender::command_message(task_id, service, command)
    })
}

/// Sends a request with a JSON body (`pause`, `rules`, ...) to every
/// targeted host (staged when asked), or, without targets, to the one
/// host of `--topic` (signed for `--target`).
pub fn ask(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    stages: Option<(usize, usize)>,
    kind: crate::auth::BodyKind,
    body: serde_json::Value,
) -> Result<ExitCode, CliError> {
    if !targets.given() {
        return match stages {
            Some(_) => Err(CliError::Usage(
                "--canary and --wave-size need hosts: --hosts, --hosts-file or --online".into(),
            )),
            None => super::send::ask(broker, signing, kind, body),
        };
    }
    fan_out(broker, signing, targets, stages, |_, task_id| {
        sender::ask_message(task_id, kind, body.clone())
    })
}

/// Pushes `file` to every targeted host, `%{hostname}` in it replaced by
/// each host's name; with `stages` (canaries, wave size), as a staged
/// rollout.
pub fn config(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    stages: Option<(usize, usize)>,
    file: &std::path::Path,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    fan_out(broker, signing, targets, stages, |host, task_id| {
        sender::config_message(task_id, &text.replace("%{hostname}", host), dry_run)
    })
}

/// One request per host, built by `build(host, task_id)` and signed for
/// that host when asked; prints every host's outcome.
fn fan_out(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    stages: Option<(usize, usize)>,
    build: impl Fn(&str, u64) -> Vec<u8>,
) -> Result<ExitCode, CliError> {
    let outcomes = gather(broker, signing, targets, stages, build)?;
    print_outcomes(&outcomes, broker.json);
    Ok(if outcomes.values().all(HostOutcome::succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A host's outcome in words, on one line: a result's code and its whole
/// message (lines joined, bounded, escaped: a refusal's cause often
/// follows its first line).
pub fn describe(outcome: &HostOutcome) -> String {
    match outcome {
        HostOutcome::Result { code, message } => {
            format!("code {code} ({code:#x}) {}", one_line(message))
        }
        HostOutcome::TimedOut => "timed out, no answer in time".into(),
        HostOutcome::NotSent => "not sent: the error budget was spent".into(),
    }
}

/// Longest message shown on a summary line.
const LINE_MAX: usize = 400;

/// `message` on one line (see [`crate::collectd::one_line`]).
fn one_line(message: &str) -> String {
    crate::collectd::one_line(message, LINE_MAX)
}

/// The fan-out itself: every targeted host's outcome.
pub fn gather(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    targets: &TargetArgs,
    stages: Option<(usize, usize)>,
    build: impl Fn(&str, u64) -> Vec<u8>,
) -> Result<BTreeMap<String, HostOutcome>, CliError> {
    signing.check_fleet().map_err(CliError::Usage)?;
    let options = broker.options().map_err(CliError::Usage)?;
    let key = signing.key().map_err(CliError::Usage)?;
    let mut hosts = targets.named().map_err(CliError::Usage)?;
    let runtime = super::broker_runtime()?;
    if let (Some(glob), Some(filter)) = (&targets.online, &targets.status_topic) {
        let presence = broker
            .connect()
            .connection("hosts")
            .map_err(CliError::Usage)?;
        let fleet = runtime
            .block_on(gather_presence(
                &presence,
                filter,
                Duration::from_millis(500),
                options.timeout,
            ))
            .map_err(CliError::NoResult)?;
        for why in &fleet.ignored {
            eprintln!(
                "warning: status ignored: {}",
                crate::collectd::loggable(why)
            );
        }
        for (name, status) in fleet.hosts {
            if status.state == "online"
                && crate::auth::glob_matches(glob, &name)
                && !hosts.contains(&name)
            {
                hosts.push(name);
            }
        }
    }
    if hosts.is_empty() {
        return Err(CliError::Usage("no host to send to".into()));
    }
    let host_keys = match &targets.host_keys {
        Some(path) => Some(std::sync::Arc::new(
            crate::auth::TrustedKeys::load_hosts(path)
                .map_err(|e| CliError::Usage(format!("--host-keys: {e}")))?,
        )),
        None => None,
    };
    let topics = FanoutTopics {
        connection: options.connection.clone(),
        command: options.topic.clone(),
        result: options.result_topic.clone(),
        qos: options.qos,
        host_keys,
    };
    let mut fanout = Fanout::new(
        hosts.clone(),
        targets.max_concurrency,
        targets.max_errors,
        options.timeout,
    );
    if let Some((canary, wave)) = stages {
        fanout = fanout.staged(canary, wave);
    }
    let total = hosts.len();
    let terminal = std::io::stderr().is_terminal();
    let request = |host: &str, task_id: u64| {
        let payload = build(host, task_id);
        match &key {
            Some(key) => sender::sign(&payload, key, host),
            None => Ok(payload),
        }
    };
    let progress = |(sent, ok, failed, timed_out): (usize, usize, usize, usize)| {
        if terminal {
            eprint!("\r{sent}/{total} sent, {ok} ok, {failed} failed, {timed_out} timed out ");
        }
    };
    let outcomes = runtime
        .block_on(sender::fan_out(&topics, &hosts, fanout, request, progress))
        .map_err(CliError::NoResult)?;
    if terminal {
        eprintln!();
    }
    Ok(outcomes)
}

/// One JSON line per host, or a summary by outcome.
fn print_outcomes(outcomes: &BTreeMap<String, HostOutcome>, json: bool) {
    if json {
        for (host, outcome) in outcomes {
            let line = match outcome {
                HostOutcome::Result { code, message } => serde_json::json!({
                    "host": host, "outcome": "result", "code": code, "message": message,
                }),
                HostOutcome::TimedOut => serde_json::json!({"host": host, "outcome": "timed_out"}),
                HostOutcome::NotSent => serde_json::json!({"host": host, "outcome": "not_sent"}),
            };
            say!("{line}");
        }
        return;
    }
    for line in summary(outcomes) {
        say!("{line}");
    }
}

/// The summary by outcome: each section only when some host is in it;
/// hosts that succeeded grouped by what they answered (a dry run's
/// changes, a pause's words), those that failed each with its reason.
fn summary(outcomes: &BTreeMap<String, HostOutcome>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut answers: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for (host, outcome) in outcomes {
        if let HostOutcome::Result { code: 0, message } = outcome {
            answers.entry(one_line(message)).or_default().push(host);
        }
    }
    let ok: usize = answers.values().map(Vec::len).sum();
    if ok > 0 {
        let hosts: Vec<&String> = answers.values().flatten().copied().collect();
        match answers.len() {
            1 => {
                let said = answers.keys().next().map(String::as_str).unwrap_or("");
                let said = if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                };
                lines.push(format!("ok ({ok}): {}{said}", join(&hosts)));
            }
            _ => {
                lines.push(format!("ok ({ok}):"));
                for (said, hosts) in &answers {
                    lines.push(format!("  {}: {said}", join(hosts)));
                }
            }
        }
    }
    let failed: Vec<(&String, &HostOutcome)> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, HostOutcome::Result { code, .. } if *code != 0))
        .collect();
    if !failed.is_empty() {
        lines.push(format!("failed ({}):", failed.len()));
        for (host, outcome) in failed {
            lines.push(format!("  {host}: {}", describe(outcome)));
        }
    }
    let group = |keep: &dyn Fn(&HostOutcome) -> bool| -> Vec<&String> {
        outcomes
            .iter()
            .filter(|(_, o)| keep(o))
            .map(|(h, _)| h)
            .collect()
    };
    let timed_out = group(&|o| *o == HostOutcome::TimedOut);
    if !timed_out.is_empty() {
        lines.push(format!(
            "timed out, no answer in time ({}): {}",
            timed_out.len(),
            join(&timed_out)
        ));
        lines.push(
            "  (a request the broker had not delivered by then expires there and never runs; one delivered may still run)".into(),
        );
    }
    let not_sent = group(&|o| *o == HostOutcome::NotSent);
    if !not_sent.is_empty() {
        lines.push(format!(
            "not sent: the error budget was spent or a canary failed ({}): {}",
            not_sent.len(),
            join(&not_sent)
        ));
    }
    lines
}

fn join(hosts: &[&String]) -> String {
    hosts
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64, message: &str) -> HostOutcome {
        HostOutcome::Result {
            code,
            message: message.into(),
        }
    }

    #[test]
    fn a_summary_gives_each_failure_its_cause_and_groups_the_answers() {
        let outcomes = BTreeMap::from([
            (
                "h1".to_string(),
                result(0x3001, "nothing changed:\nsyntax.lua:4: 'then' expected"),
            ),
            ("h2".to_string(), result(0, "would change: LoadPlugin df")),
            ("h3".to_string(), result(0, "would change: LoadPlugin df")),
            ("h4".to_string(), result(0, "nothing would change")),
        ]);
        let lines = summary(&outcomes);
        assert_eq!(
            lines,
            vec![
                "ok (3):".to_string(),
                "  h4: nothing would change".into(),
                "  h2, h3: would change: LoadPlugin df".into(),
                "failed (1):".into(),
                "  h1: code 12289 (0x3001) nothing changed: / syntax.lua:4: 'then' expected".into(),
            ]
        );
        // No empty sections; one answer for all on the ok line.
        let all = BTreeMap::from([("h1".to_string(), result(0, "paused hello/* for 3600 s"))]);
        assert_eq!(
            summary(&all),
            vec!["ok (1): h1: paused hello/* for 3600 s".to_string()]
        );
    }
}
