//! `hosts`: the fleet as the broker knows it, from the hosts' retained
//! presence messages (`StatusTopic`).

use super::CliError;
use super::args::ConnectArgs;
use crate::collectd::loggable;
use crate::remote::sender::gather_presence;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// What `hosts` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    Summary,
    Json,
    /// Each host's result key, as a `--host-keys` line.
    Keys,
}

impl Show {
    /// From the flags.
    pub fn of(json: bool, keys: bool) -> Show {
        match (json, keys) {
            (true, _) => Show::Json,
            (_, true) => Show::Keys,
            _ => Show::Summary,
        }
    }
}

/// Lists every host with a status message under `filter`.
pub fn run(
    connect: &ConnectArgs,
    filter: &str,
    show: Show,
    timeout: f64,
) -> Result<ExitCode, CliError> {
    let connection = connect.connection("hosts").map_err(CliError::Usage)?;
    let runtime = super::broker_runtime()?;
    let fleet = runtime
        .block_on(gather_presence(
            &connection,
            filter,
            Duration::from_millis(500),
            Duration::from_secs_f64(timeout),
        ))
        .map_err(CliError::NoResult)?;
    for why in &fleet.ignored {
        eprintln!("warning: status ignored: {}", loggable(why));
    }
    let hosts = fleet.hosts;
    for (name, h) in &hosts {
        match (show, &h.result_key) {
            (Show::Json, _) => {
                say!("{}", serde_json::to_string(h).unwrap_or_default());
                continue;
            }
            // Keys are base64: anything else is not printed.
            (Show::Keys, Some(key))
                if key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
            {
                say!("{name} ed25519 {key}");
                continue;
            }
            (Show::Keys, _) => continue,
            (Show::Summary, _) => {}
        }
        let detail = match (h.rule_files, h.config_push, h.signed_only) {
            (Some(files), Some(push), Some(signed)) => format!(
                ", {files} rule files, config push {}, {}",
                if push { "on" } else { "off" },
                if signed {
                    "signed requests only"
                } else {
                    "requests not authenticated"
                }
            ),
            _ => String::new(),
        };
        let since = if h.since.is_empty() {
            String::new()
        } else {
            format!(" since {}", h.since)
        };
        // The message's own words, escaped: a terminal is no place for
        // what anyone with publish rights wrote.
        let paused = if h.pauses.is_empty() {
            String::new()
        } else {
            format!("; paused: {}", h.pauses.join("; "))
        };
        let rule_set = h
            .rule_set
            .as_ref()
            .map_or(String::new(), |d| format!(", rule set {d}"))
            + &h.config_json
                .as_ref()
                .map_or(String::new(), |d| format!(", config.json {d}"));
        let line = format!(
            "{name}: {}{since}, version {}{detail}{rule_set}{paused}",
            h.state, h.version
        );
        say!("{}", loggable(&line));
    }
    if show == Show::Summary {
        let online = hosts.values().filter(|h| h.state == "online").count();
        eprintln!("{} hosts, {online} online", hosts.len());
        // Which hosts run which rule set, most common first.
        let mut sets: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, h) in &hosts {
            if let (Some(d), "online") = (&h.rule_set, h.state.as_str()) {
                sets.entry(d.as_str()).or_default().push(name.as_str());
            }
        }
        if sets.len() > 1 {
            let mut sets: Vec<_> = sets.into_iter().collect();
            sets.sort_by_key(|(_, names)| std::cmp::Reverse(names.len()));
            for (digest, names) in sets {
                eprintln!(
                    "rule set {}: {} host(s): {}",
                    loggable(digest),
                    names.len(),
                    loggable(&names.join(", "))
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
