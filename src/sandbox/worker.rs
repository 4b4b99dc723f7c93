//! The rule worker: the process one rule file runs in
//! (`collectd-monitor rule-worker`). It reads the file, confines itself,
//! loads the file, then evaluates the batches of events the plugin writes
//! on its stdin and writes [`Report`]s on its stdout, until stdin closes.
//!
//! Whatever the file does, the worst outcome is this process ending: the
//! plugin sees its stdout close, logs why, and starts a new one.

use super::confine::confine;
use super::wire::{Report, read_frame, write_frame};
use crate::events::Event;
use crate::events::batch::BatchReader;
use crate::lua::{Limit, VmLimits};
use crate::rules::{Evaluation, RuleFile, RuleSet, event_series};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Exit status when the worker gives up on its own (after a `Fatal` report).
pub const EXIT_FATAL: u8 = 3;
/// Exit status when the file did not load (after a `LoadFailed` report).
pub const EXIT_LOAD_FAILED: u8 = 4;

/// Runs the worker on stdin/stdout. `sandbox`: `Some(user)` confines it
/// (as `user` once the file is read, when given); `None` skips the
/// confinement (for tests of the protocol alone).
pub fn run(path: &Path, limits: VmLimits, sandbox: Option<Option<&str>>) -> u8 {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = serve(path, limits, sandbox, &mut io::stdin().lock(), &mut out);
    let _ = out.flush();
    code
}

/// The worker's loop over any pair of streams.
pub fn serve<W: Write>(
    path: &Path,
    limits: VmLimits,
    sandbox: Option<Option<&str>>,
    input: &mut impl io::Read,
    out: &mut W,
) -> u8 {
    let send = |out: &mut W, report: Report| write_frame(out, &report.encode()).is_ok();
    let sandboxed = sandbox.is_some();
    if sandboxed {
        super::watchdog::die_with_parent();
        // Before the file is even opened: nothing of collectd's (its
        // unixsock listening socket, say) stays open in this process.
        crate::collectd::close_inherited_fds();
    }
    let source = match crate::rules::read_rule_file(path) {
        Ok(source) => source,
        Err(e) => {
            let error = format!("{}: {e}", path.display());
            send(out, Report::LoadFailed { error });
            return EXIT_LOAD_FAILED;
        }
    };
    if let Some(Some(user)) = sandbox {
        // Read as collectd's user; run as one who may read nothing else.
        if let Err(e) = super::confine::drop_privileges(user) {
            let reason = format!("cannot enter the sandbox: {e}");
            send(out, Report::Fatal { reason });
            return EXIT_FATAL;
        }
        // A change of user clears the tie to the parent: tie again.
        super::watchdog::die_with_parent();
    }
    if sandboxed {
        super::watchdog::start(limits.deadline, path.display().to_string());
        match confine(limits.memory) {
            Ok(None) => {}
            Ok(Some(message)) => {
                send(out, Report::Warning { message });
            }
            Err(e) => {
                let reason = format!("cannot enter the sandbox: {e}");
                send(out, Report::Fatal { reason });
                return EXIT_FATAL;
            }
        }
    }
    let file = match RuleFile::from_source(path, &source, limits) {
        Ok(file) => file,
        Err(error) => {
            send(out, Report::LoadFailed { error });
            return EXIT_LOAD_FAILED;
        }
    };
    let warnings = crate::rules::load_warnings(&file, &source);
    let ready = Report::Ready {
        // The metric table's handlers, `missing` ones included.
        metric: file.handler_names(crate::rules::HandlerKind::Metric).len()
            + file.handler_names(crate::rules::HandlerKind::Missing).len(),
        notification: file
            .handler_names(crate::rules::HandlerKind::Notification)
            .len(),
        metric_guard: file.file_guard(crate::rules::HandlerKind::Metric),
        notification_guard: file.file_guard(crate::rules::HandlerKind::Notification),
    };
    let mut set = RuleSet::from_files(vec![file]);
    crate::collectd::release_free_memory();
    // Reused for every event: decoding allocates only while strings grow.
    let mut slot = Event::Metric(crate::events::Metric::default());
    if !send(out, ready) {
        return 0;
    }
    // What `rules check` would warn of, said once as the file loads.
    for message in warnings {
        if !send(out, Report::Warning { message }) {
            return 0;
        }
    }
    loop {
        let frame = match read_frame(input) {
            Ok(Some(frame)) => frame,
            // The plugin closed our stdin: a normal stop.
            Ok(None) => return 0,
            Err(e) => {
                let reason = format!("reading from the plugin: {e}");
                send(out, Report::Fatal { reason });
                return EXIT_FATAL;
            }
        };
        let mut batch = match BatchReader::new(&frame) {
            Ok(batch) => batch,
            Err(reason) => {
                send(out, Report::Fatal { reason });
                return EXIT_FATAL;
            }
        };
        let (seq, count) = (batch.seq, u64::from(batch.count()));
        let mut hit_memory_limit = false;
        loop {
            match batch.next_into(&mut slot) {
                Ok(true) => {}
                Ok(false) => break,
                Err(reason) => {
                    send(out, Report::Fatal { reason });
                    return EXIT_FATAL;
                }
            }
            let evaluation = match &slot {
                Event::Metric(m) => set.on_metric(m),
                Event::Notification(n) => set.on_notification(n),
                Event::Missing(m) => set.on_missing(m),
            };
            for report in reports(evaluation, &slot) {
                hit_memory_limit |= matches!(
                    report,
                    Report::Failed {
                        limit: Some(Limit::Memory),
                        ..
                    }
                );
                if !send(out, report) {
                    return 0;
                }
            }
        }
        // A call stopped at the memory limit leaves what it stored in
        // globals behind; if that is most of the limit, every next call
        // would hit it again: start afresh instead.
        let bearable = if hit_memory_limit {
            limits.memory / 2
        } else {
            limits.memory
        };
        if let Some(file) = set.broken_file() {
            let reason = format!(
                "{}: the Lua VM failed internally (reported with the handler above); starting the file afresh",
                file.path().display()
            );
            send(out, Report::Fatal { reason });
            return EXIT_FATAL;
        }
        if let Some(reason) = set.memory_held_over(bearable) {
            send(out, Report::Fatal { reason });
            return EXIT_FATAL;
        }
        let calls = set.take_calls();
        if !send(
            out,
            Report::Done {
                seq,
                events: count,
                calls,
            },
        ) {
            return 0;
        }
    }
}

/// What one event's evaluation tells the plugin (usually nothing).
fn reports(evaluation: Evaluation, event: &Event) -> Vec<Report> {
    let Evaluation {
        fired,
        held,
        errors,
        printed,
    } = evaluation;
    let mut out = Vec::new();
    if fired.is_empty() && held.is_empty() && errors.is_empty() && printed.is_empty() {
        return out;
    }
    let series = event_series(event);
    out.extend(
        printed
            .into_iter()
            .map(|(_, line)| Report::Printed { line }),
    );
    out.extend(errors.into_iter().map(|e| Report::Failed {
        handler: e.handler,
        limit: e.limit,
        reason: e.reason,
        series: series.clone(),
    }));
    out.extend(held.into_iter().map(|h| Report::Held {
        handler: h.handler,
        reason: h.reason,
    }));
    out.extend(fired.into_iter().map(|f| {
        Report::Fired {
            handler: f.handler,
            service: f.service,
            command: f.command,
            series: series.clone(),
            host: f.host,
            cooldown: f.cooldown,
            inhibited: f.inhibited,
            notify: f.notify,
            time: Some(match event {
                Event::Metric(m) => m.time,
                Event::Notification(n) => n.time,
                // The last value's: the same on every controller that
                // finds the series silent.
                Event::Missing(m) => m.series.time,
            })
            .filter(|t| t.is_finite() && *t > 0.0),
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::batch::BatchEncoder;
    use crate::events::{Metric, Value};

    fn metric(free: f64) -> Event {
        Event::Metric(Metric {
            host: "h".into(),
            plugin: "memory".into(),
            plugin_instance: String::new(),
            type_: "memory".into(),
            type_instance: "free".into(),
            time: 1.0,
            interval: 10.0,
            values: vec![Value::Gauge(free)],
            dsnames: vec!["value".into()],
            dstypes: vec![crate::events::DsType::Gauge],
        })
    }

    fn run_worker(source: &str, batches: &[Vec<Event>]) -> (u8, Vec<Report>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.lua");
        std::fs::write(&path, source).unwrap();
        let mut input = Vec::new();
        for (seq, events) in batches.iter().enumerate() {
            let mut enc = BatchEncoder::new(seq as u64);
            events.iter().for_each(|e| enc.push(e));
            input.extend(enc.finish());
        }
        let mut output = Vec::new();
        // Only the fuel can run out, however slow the machine.
        let limits = VmLimits {
            fuel: 100_000,
            deadline: std::time::Duration::from_secs(600),
            ..VmLimits::default()
        };
        let code = serve(&path, limits, None, &mut input.as_slice(), &mut output);
        let mut reports = Vec::new();
        let mut r = output.as_slice();
        while let Some(frame) = read_frame(&mut r).unwrap() {
            reports.push(Report::decode(&frame).unwrap());
        }
        (code, reports)
    }

    #[test]
    fn evaluates_batches_in_order_and_reports_decisions_errors_and_prints() {
        let source = r#"
            local n = 0
            return {
              low = function(m) n = n + 1 print("seen", n)
                if m.values[1] < 10 then return {service = "s", command = "c"} end end,
              bad = function(m) error("always") end,
              spin = function(m) while true do end end,
            }"#;
        let (code, reports) = run_worker(source, &[vec![metric(5.0)], vec![metric(50.0)]]);
        assert_eq!(code, 0);
        assert!(matches!(reports[0], Report::Ready { metric: 3, .. }));
        let fired: Vec<_> = reports
            .iter()
            .filter(|r| matches!(r, Report::Fired { service, .. } if service == "s"))
            .collect();
        assert_eq!(fired.len(), 1, "{reports:?}");
        assert!(reports.contains(&Report::Printed {
            line: "seen\t2".into()
        }));
        let limits: Vec<_> = reports
            .iter()
            .filter_map(|r| match r {
                Report::Failed { limit, series, .. } => Some((*limit, series.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(limits.len(), 4, "{reports:?}");
        assert!(limits.contains(&(Some(crate::lua::Limit::Cpu), "h/memory/memory-free".into())));
        assert!(limits.contains(&(None, "h/memory/memory-free".into())));
        assert!(
            matches!(reports.last(), Some(Report::Done { seq: 1, events: 1, calls }) if !calls.is_empty()),
            "{reports:?}"
        );
    }

    #[test]
    fn a_file_that_does_not_load_says_why() {
        let (code, reports) = run_worker("return +", &[]);
        assert_eq!(code, EXIT_LOAD_FAILED);
        assert!(
            matches!(&reports[0], Report::LoadFailed { error } if error.contains("r.lua:1:")),
            "{reports:?}"
        );
    }

    #[test]
    fn memory_held_in_globals_past_the_limit_ends_the_worker() {
        let source = r#"
            big = {}
            return function(m) for i = 1, 200000 do big[#big + 1] = string.rep("x", 100) .. i end end"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.lua");
        std::fs::write(&path, source).unwrap();
        let mut input = Vec::new();
        let mut enc = BatchEncoder::new(0);
        enc.push(&metric(1.0));
        input.extend(enc.finish());
        let mut output = Vec::new();
        // Only the memory can run out, however slow the machine.
        let limits = VmLimits {
            memory: 8 * 1024 * 1024,
            fuel: u64::MAX,
            deadline: std::time::Duration::from_secs(600),
        };
        let code = serve(&path, limits, None, &mut input.as_slice(), &mut output);
        let text = String::from_utf8_lossy(&output);
        assert_eq!(code, EXIT_FATAL, "{text}");
        assert!(text.contains("memory limit"), "{text}");
    }
}
