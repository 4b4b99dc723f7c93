//! `status`: what the running plugin is doing, from its control socket.

use super::CliError;
use crate::status::{Status, fetch};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Where Debian's collectd (`BaseDir /var/lib/collectd`) has the socket
/// with the default `StateDir` and `ControlSocket`.
pub const DEFAULT_SOCKET: &str = "/var/lib/collectd/monitor/control.sock";

/// Asks once, or every `watch` seconds until interrupted.
pub fn run(socket: &Path, json: bool, watch: Option<f64>) -> Result<ExitCode, CliError> {
    loop {
        let status = fetch(socket, Duration::from_secs(10)).map_err(CliError::NoResult)?;
        let text = if json {
            serde_json::to_string(&status).unwrap_or_default() + "\n"
        } else {
            render(&status)
        };
        let Some(every) = watch else {
            say_raw!("{text}");
            return Ok(ExitCode::SUCCESS);
        };
        // Clear the screen, then the new view.
        say_raw!("\x1b[2J\x1b[H{text}");
        std::thread::sleep(Duration::from_secs_f64(every));
    }
}

/// `name value` pairs on one line.
fn pairs<T: std::fmt::Display>(items: &[(String, T)]) -> String {
    items
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Central rules' part of the status.
fn render_central(out: &mut String, c: &crate::status::CentralStatus) {
    let h = &c.hosts;
    let _ = writeln!(
        out,
        "central rules: {} hosts known ({} online, {} offline, {} never heard, {} paused{}), window {} s, rule set {}",
        h.known,
        h.online,
        h.offline,
        h.silent,
        h.paused,
        if h.evicted > 0 {
            format!(", {} forgotten past FleetMaxHosts", h.evicted)
        } else {
            String::new()
        },
        c.window,
        if c.rule_set.is_empty() {
            "-"
        } else {
            &c.rule_set
        }
    );
    render_files(out, &c.rule_files, "central rule file");
    let _ = writeln!(
        out,
        "  {} requests waiting for their host, {} also requested by another controller",
        c.in_flight.len(),
        c.requested_by_others
    );
    for r in &c.in_flight {
        let _ = writeln!(
            out,
            "  {} on {} (task {}), sent {} s ago",
            r.command, r.host, r.task_id, r.age
        );
    }
    for r in c.recent.iter().take(10) {
        let _ = writeln!(
            out,
            "  ended: {} on {} (task {}), {}, {} s ago",
            r.command,
            r.host,
            r.task_id,
            r.code
                .map_or_else(|| "no answer in time".to_string(), |c| format!("code {c}")),
            r.ago
        );
    }
    for g in &c.commands {
        let mut line = format!(
            "  {}: {} in repair, {} of {} failures in the window, {} sent ({} run for another task)",
            g.command, g.in_flight, g.failures, g.error_budget, g.sent, g.done_elsewhere
        );
        if g.stopped {
            line.push_str(", STOPPED (collectd-monitor central resume)");
        }
        if !g.held.is_empty() {
            line.push_str(&format!("; held back: {}", pairs(&g.held)));
        }
        if !g.refused.is_empty() {
            line.push_str(&format!("; refused by hosts: {}", pairs(&g.refused)));
        }
        let _ = writeln!(out, "{line}");
    }
    for u in &c.unproven {
        let _ = writeln!(
            out,
            "  not proven: {} value lists of {}: {}",
            u.values, u.host, u.why
        );
    }
    for p in &c.pauses {
        let _ = writeln!(
            out,
            "  paused by this controller: {} until {}: {}",
            p.what, p.until, p.reason
        );
    }
    for p in &c.peers {
        let _ = writeln!(
            out,
            "  controller {}: window {} s, rule set {}{}",
            p.hostname,
            p.window,
            p.rule_set,
            if p.agrees { "" } else { " (DIFFERS from ours)" }
        );
    }
    let counters: Vec<String> = c
        .counters
        .iter()
        .map(|(name, v)| format!("{name}={v}"))
        .collect();
    let _ = writeln!(out, "  central counters: {}", counters.join(" "));
}

/// Rule files and their handlers, each line starting with `label`.
fn render_files(out: &mut String, files: &[crate::status::FileStatus], label: &str) {
    for f in files {
        let memory = f.worker_rss_kib.map_or(String::new(), |kib| {
            format!(", worker {} KiB resident", kib)
        });
        let _ = writeln!(
            out,
            "{label} {}: {} since {}, {} evaluations{memory}",
            f.path, f.state, f.since, f.evaluations
        );
        if let Some(note) = &f.note {
            let _ = writeln!(out, "  last said: {note}");
        }
        for warning in &f.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        if f.state != "active" {
            // Nothing reaches a file that does not run: what it would
            // receive is beside the point.
        } else if !f.routed {
            let _ = writeln!(
                out,
                "  receives every value list (its handlers are not indexed)"
            );
        } else if f.series_matched.is_empty() {
            let plugins = if f.wants_plugins.is_empty() {
                String::new()
            } else {
                format!(" (it waits for plugin {})", f.wants_plugins.join(", "))
            };
            let _ = writeln!(out, "  no series matched its conditions yet{plugins}");
            if !f.sent_for_its_plugins.is_empty() {
                let _ = writeln!(
                    out,
                    "  collectd does send: {}",
                    f.sent_for_its_plugins.join(", ")
                );
            }
        } else {
            let _ = writeln!(
                out,
                "  series matched: {} ({} in all)",
                f.series_matched.join(", "),
                f.series_matched_count
            );
        }
        if f.handlers.is_empty() {
            let _ = writeln!(out, "  no handler has been called yet");
        }
        for h in &f.handlers {
            let _ = writeln!(
                out,
                "  {}: {} calls, {} decisions, {} held back, {} suppressed by cooldown, {} errors",
                h.name, h.calls, h.decisions, h.held, h.suppressed, h.errors
            );
            if let Some(d) = &h.last_decision {
                let _ = writeln!(
                    out,
                    "    last decision {} at {} on {}",
                    d.what, d.time, d.series
                );
            }
            if let Some(e) = &h.last_error {
                let _ = writeln!(
                    out,
                    "    last error at {} on {}: {}",
                    e.time, e.series, e.what
                );
            }
            if !h.series.is_empty() {
                let _ = writeln!(out, "    series: {}", h.series.join(", "));
            }
        }
    }
}

/// The status as people read it.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "collectd-monitor {} on {}, running since {}",
        s.version, s.hostname, s.started
    );
    if s.rule_files.is_empty() {
        let central = if s.central.is_some() {
            " on this host (central rule files below)"
        } else {
            ""
        };
        let _ = writeln!(out, "rule files: none{central}");
    }
    render_files(&mut out, &s.rule_files, "rule file");
    match &s.remote {
        None => {
            let _ = writeln!(out, "remote commands: off");
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "remote commands: broker {}, topic {}, {}; {}; last message {}; journal {} bytes",
                r.broker,
                r.command_topic,
                if r.signed_only {
                    "signed requests only"
                } else {
                    "requests NOT authenticated"
                },
                r.connected_since
                    .as_ref()
                    .map_or("not connected".to_string(), |t| format!(
                        "connected since {t}"
                    )),
                r.last_message.as_deref().unwrap_or("never"),
                r.journal_bytes
            );
        }
    }
    if s.pauses.is_empty() {
        let _ = writeln!(out, "pauses: none");
    }
    for p in &s.pauses {
        let _ = writeln!(out, "paused: {} until {}: {}", p.what, p.until, p.reason);
    }
    if s.running.is_empty() {
        let _ = writeln!(out, "commands running: none");
    }
    for c in &s.running {
        let _ = writeln!(
            out,
            "command running: {}/{} since {}",
            c.service, c.command, c.since
        );
    }
    if let Some(central) = &s.central {
        render_central(&mut out, central);
    }
    let counters: Vec<String> = s
        .counters
        .iter()
        .map(|(name, v)| format!("{name}={v}"))
        .collect();
    let _ = writeln!(out, "counters: {}", counters.join(" "));
    out
}
