//! `rules check` and `rules test`: print what `crate::rules` decides about
//! rule files (loading, golden examples, a dry run over sample events).

use super::CliError;
use crate::config::{self, Service};
use crate::rules::{Unknown, check_examples, check_sources, dry_run, expand_paths};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit 1 (with the reasons printed already) when anything failed.
fn verdict(failed: bool) -> Result<ExitCode, CliError> {
    if failed {
        Err(CliError::Failed(String::new()))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The Services of `--config FILE`, when given.
fn services_of(config: Option<&Path>) -> Result<Option<BTreeMap<String, Service>>, CliError> {
    Ok(config
        .map(config::load_json_file)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .map(|l| l.settings.services))
}

/// `rules check PATHS`: load each file, list its handlers; with `strict`,
/// a warning fails the check too. With `sandbox` (the host checking a
/// pushed set), everything is read first, then the process confines
/// itself as a rule worker does (as the user given) before a line runs.
pub fn check(
    paths: &[PathBuf],
    config: Option<&Path>,
    strict: bool,
    json: bool,
    sandbox: Option<Option<&str>>,
) -> Result<ExitCode, CliError> {
    let services = services_of(config)?;
    let files = expand_paths(paths).map_err(CliError::Usage)?;
    let sources = crate::rules::read_sources(&files);
    if let Some(user) = sandbox {
        if let Some(warning) =
            crate::sandbox::confine_checker(user, files.len()).map_err(CliError::Failed)?
        {
            eprintln!("warning: {warning}");
        }
    }
    if files.is_empty() {
        return Err(CliError::Failed(format!(
            "no .lua file in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let report = check_sources(&sources, services.as_ref());
    let warned = report.files.iter().any(|f| !f.warnings.is_empty());
    let failed = !report.errors.is_empty() || (strict && warned);
    if json {
        say!("{}", serde_json::to_string(&report).unwrap_or_default());
        return verdict(failed);
    }
    for file in &report.files {
        let path = file.path.display();
        say!("{path}: OK");
        for warning in &file.warnings {
            eprintln!("{path}: warning: {warning}");
        }
        if file.has_metric_handlers {
            match &file.fresh_tables {
                None => say!(
                    "  value-list tables: one per series, refilled with each new value list (no handler keeps one)"
                ),
                Some(why) => {
                    say!("  value-list tables: a new one for every value list, because {why}")
                }
            }
        }
        for h in &file.handlers {
            say!("  {}", h.name);
            match (&h.indexed, &h.not_indexed) {
                (Some(guard), _) => say!("    indexed: {guard}"),
                (None, why) => say!("    not indexed: {}", why.as_deref().unwrap_or("")),
            }
        }
    }
    for e in &report.errors {
        eprintln!("{e}");
    }
    if strict && warned {
        eprintln!("warnings fail the check (--strict)");
    }
    verdict(failed)
}

/// `rules test PATHS --input EVENTS [--config JSON]`: what each event
/// would make the handlers do; runs nothing.
pub fn test(paths: &[PathBuf], input: &Path, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let services = services_of(config)?;
    let files = expand_paths(paths).map_err(CliError::Usage)?;
    let text = std::fs::read_to_string(input)
        .map_err(|e| CliError::Usage(format!("{}: {e}", input.display())))?;
    let (outcomes, errors) = dry_run(&files, &text, services.as_ref());
    for e in &errors {
        eprintln!("{e}");
    }
    for o in &outcomes {
        let n = o.line;
        if let Some(why) = &o.unreadable {
            eprintln!("line {n}: {why}");
            continue;
        }
        let e = &o.evaluation;
        for (file, printed) in &e.printed {
            say!("line {n}: {}: print: {printed}", file.display());
        }
        for (f, unknown) in e.fired.iter().zip(&o.unknown) {
            if let Some(text) = &f.notify {
                say!("line {n}: {} -> notify: {text}", f.handler);
                continue;
            }
            let note = match unknown {
                Some(Unknown::Service) => " (config.json has no such service)",
                Some(Unknown::Command) => " (config.json has no such command)",
                None => "",
            };
            let held = f
                .inhibited
                .as_ref()
                .map(|why| format!(" (inhibited: {why}; not run)"))
                .unwrap_or_default();
            say!(
                "line {n}: {} -> {}/{}{note}{held}",
                f.handler,
                f.service,
                f.command
            );
        }
        for h in &e.held {
            say!("line {n}: {}: held: {}", h.handler, h.reason);
        }
        for err in &e.errors {
            say!("line {n}: {}: error: {}", err.handler, err.reason);
        }
        if e.fired.is_empty() && e.errors.is_empty() && e.held.is_empty() {
            say!("line {n}: nothing fired");
        }
        if let Some(diff) = &o.index_difference {
            say!("line {n}: {diff}");
        }
    }
    verdict(!errors.is_empty() || outcomes.iter().any(|o| o.failed()))
}

/// `rules test PATHS`: each file's golden examples.
pub fn examples(paths: &[PathBuf]) -> Result<ExitCode, CliError> {
    let files = expand_paths(paths).map_err(CliError::Usage)?;
    let (verdicts, load_errors) = check_examples(&files);
    for e in &load_errors {
        eprintln!("{}", e.message);
    }
    let shown = |v: &[String]| {
        if v.is_empty() {
            "nothing fires".to_string()
        } else {
            v.join(", ")
        }
    };
    for v in &verdicts {
        let at = format!("{}: example {}", v.file.display(), v.number);
        if v.passed() {
            say!("{at}: OK ({})", shown(&v.got));
        } else {
            let errors = if v.errors.is_empty() {
                String::new()
            } else {
                format!(" (errors: {})", v.errors.join("; "))
            };
            say!(
                "{at}: FAILED: expected {}, got {}{errors}",
                v.expected.as_deref().unwrap_or("nothing to fire"),
                shown(&v.got),
            );
        }
    }
    if verdicts.is_empty() {
        return Err(CliError::Failed(
            "no examples found: rule files carry them as their third return value, or give --input"
                .into(),
        ));
    }
    // A file without examples is not tested: say so rather than pass it
    // in silence (a file that did not load is reported above).
    for file in &files {
        let loaded = !load_errors.iter().any(|e| e.file == *file);
        if loaded && !verdicts.iter().any(|v| v.file == *file) {
            say!(
                "{}: no examples (its third return value), not tested; give --input to test it",
                file.display()
            );
        }
    }
    verdict(!load_errors.is_empty() || verdicts.iter().any(|v| !v.passed()))
}
