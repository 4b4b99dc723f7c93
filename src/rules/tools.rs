//! What `rules check` and `rules test` decide, as data: the command line
//! only prints it. Kept beside the rule engine so a tool's verdict and the
//! plugin's behaviour cannot drift apart.

use super::input::parse_input_line;
use super::set::{Evaluation, RuleSet, lua_files};
use crate::config::Service;
use crate::events::Event;
use crate::lua::VmLimits;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Rule files named on a command line: files as given, directories
/// expanded to their `*.lua` files.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(lua_files(p).map_err(|e| format!("{}: {e}", p.display()))?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// What `rules check` found in one file that loaded.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileCheck {
    pub path: PathBuf,
    /// Unsupported features and field typos (`m.plugn`).
    pub warnings: Vec<String>,
    /// Why each value list gets a new table, `None` when the file's
    /// series tables are refilled (or it has no metric handlers).
    pub fresh_tables: Option<String>,
    pub has_metric_handlers: bool,
    pub handlers: Vec<HandlerCheck>,
}

/// One handler's place in the rule index.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HandlerCheck {
    pub name: String,
    /// The condition it is called on...
    pub indexed: Option<String>,
    /// ...or why it is called on every event.
    pub not_indexed: Option<String>,
}

/// Everything `rules check` says: the files that loaded, and the errors
/// (files that did not load, files without handlers, commands the
/// config lacks). Errors make the check fail.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub files: Vec<FileCheck>,
    pub errors: Vec<String>,
}

/// A rule file read from disk (`Err`: why it could not be): what the
/// checker works on, so that a confined checker reads everything first.
pub type SourceFile = (PathBuf, Result<Vec<u8>, String>);

/// Reads `files` as the plugin does (regular files, bounded, no links).
pub fn read_sources(files: &[PathBuf]) -> Vec<SourceFile> {
    files
        .iter()
        .map(|p| {
            let read = super::read_rule_file(p).map_err(|e| format!("{}: {e}", p.display()));
            (p.clone(), read)
        })
        .collect()
}

/// What `rules check` warns of in a file that loaded (unsupported
/// features, misspelt fields, a decision built and never returned, a
/// comparison that may raise): also what a worker logs once when it loads
/// the file, and `status` shows.
pub fn load_warnings(file: &super::RuleFile, source: &[u8]) -> Vec<String> {
    let source = String::from_utf8_lossy(source);
    crate::lua::unsupported_features(&source)
        .into_iter()
        .chain(file.typos().iter().cloned())
        .chain(crate::lua::comparison_warnings(&source))
        .collect()
}

/// Loads `files` as the plugin would and reports on each; with
/// `services`, every service/command a handler spells out must be there.
pub fn check_files(files: &[PathBuf], services: Option<&BTreeMap<String, Service>>) -> CheckReport {
    check_sources(&read_sources(files), services)
}

/// [`check_files`] of files already read.
pub fn check_sources(
    sources: &[SourceFile],
    services: Option<&BTreeMap<String, Service>>,
) -> CheckReport {
    use super::HandlerKind;
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (path, source) in sources {
        match source
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| super::RuleFile::from_source(path, s, VmLimits::default()))
        {
            Ok(file) => loaded.push((file, source.as_deref().unwrap_or_default())),
            Err(e) => errors.push(e),
        }
    }
    let mut report = CheckReport {
        files: Vec::new(),
        errors,
    };
    for (file, bytes) in &loaded {
        let path = file.path().display();
        let handlers = [
            HandlerKind::Metric,
            HandlerKind::Notification,
            HandlerKind::Missing,
        ]
        .iter()
        .map(|k| file.handler_names(*k).len())
        .sum::<usize>();
        if handlers == 0 {
            report.errors.push(format!(
                "{path}: returns no handlers (a table of metric handlers, a table of notification handlers, or functions)"
            ));
            continue;
        }
        let source = String::from_utf8_lossy(bytes);
        let warnings = load_warnings(file, bytes);
        if let Some(services) = services {
            for r in super::guard::requested_commands(&source) {
                let missing = match services.get(&r.service) {
                    None => Some("service"),
                    Some(s) if !s.commands.contains_key(&r.command) => Some("command"),
                    Some(_) => None,
                };
                if let Some(what) = missing {
                    report.errors.push(format!(
                        "{path}: asks for {r}, and config.json has no such {what}"
                    ));
                }
            }
        }
        let handlers = [
            HandlerKind::Metric,
            HandlerKind::Notification,
            HandlerKind::Missing,
        ]
        .into_iter()
        .flat_map(|kind| file.index_notes(kind))
        .map(|(name, index)| HandlerCheck {
            name,
            indexed: index.as_ref().ok().cloned(),
            not_indexed: index.err(),
        })
        .collect();
        report.files.push(FileCheck {
            path: file.path().to_path_buf(),
            warnings,
            fresh_tables: file.fresh_tables().map(str::to_string),
            has_metric_handlers: !file.handler_names(HandlerKind::Metric).is_empty(),
            handlers,
        });
    }
    report
}

/// How one golden example of a file came out.
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleVerdict {
    pub file: PathBuf,
    /// 1-based, in the file's order.
    pub number: usize,
    /// `service/command` the example expects, `None` for "nothing fires".
    pub expected: Option<String>,
    /// `service/command` of every handler that fired.
    pub got: Vec<String>,
    /// `handler: reason` of every handler that failed, and how the rule
    /// index changed the outcome, if it did.
    pub errors: Vec<String>,
}

impl ExampleVerdict {
    /// Passed: no handler failed, and the expected command fired (or,
    /// expecting nothing, nothing did).
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
            && match &self.expected {
                Some(want) => self.got.contains(want),
                None => self.got.is_empty(),
            }
    }
}

/// A rule file that did not load, and why (the message names the file).
#[derive(Clone, Debug)]
pub struct LoadError {
    pub file: PathBuf,
    pub message: String,
}

/// Runs each file's golden examples in order, each file on a fresh state;
/// returns the verdicts and the files that failed to load.
pub fn check_examples(files: &[PathBuf]) -> (Vec<ExampleVerdict>, Vec<LoadError>) {
    let mut verdicts = Vec::new();
    let mut load_errors = Vec::new();
    for path in files {
        let (mut set, errors) =
            RuleSet::load_files(std::slice::from_ref(path), VmLimits::default());
        let (mut every, _) = RuleSet::load_files(std::slice::from_ref(path), VmLimits::default());
        every.set_indexed(false);
        load_errors.extend(errors.into_iter().map(|message| LoadError {
            file: path.clone(),
            message,
        }));
        let examples = set
            .files()
            .first()
            .map(|f| f.examples().to_vec())
            .unwrap_or_default();
        for (i, example) in examples.iter().enumerate() {
            let evaluation = evaluate(&mut set, &example.event);
            let all = evaluate(&mut every, &example.event);
            let mut errors: Vec<String> = evaluation
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.handler, e.reason))
                .collect();
            errors.extend(difference(&evaluation, &all));
            verdicts.push(ExampleVerdict {
                file: path.clone(),
                number: i + 1,
                expected: example.expect.as_ref().map(ToString::to_string),
                // An inhibited decision is not what an example expects to
                // run.
                got: evaluation
                    .fired
                    .iter()
                    .filter(|f| f.inhibited.is_none() && f.notify.is_none())
                    .map(|f| format!("{}/{}", f.service, f.command))
                    .collect(),
                errors,
            });
        }
    }
    (verdicts, load_errors)
}

fn evaluate(set: &mut RuleSet, event: &Event) -> Evaluation {
    match event {
        Event::Metric(m) => set.on_metric(m),
        Event::Notification(n) => set.on_notification(n),
        Event::Missing(m) => set.on_missing(m),
    }
}

/// Why a decision cannot be carried out with a given config.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    Service,
    Command,
}

/// What one line of a `rules test --input` file led to.
#[derive(Debug)]
pub struct LineOutcome {
    /// 1-based line number in the input file.
    pub line: usize,
    /// The line's event could not be read.
    pub unreadable: Option<String>,
    pub evaluation: Evaluation,
    /// For each fired decision (same order), what config.json lacks for it.
    pub unknown: Vec<Option<Unknown>>,
    /// How calling every handler (no rule index) came out differently.
    pub index_difference: Option<String>,
}

impl LineOutcome {
    /// A handler failed, the line was unreadable, a decision names a
    /// service or command config.json does not have, or the rule index
    /// changed an outcome.
    pub fn failed(&self) -> bool {
        self.unreadable.is_some()
            || !self.evaluation.errors.is_empty()
            || self.unknown.iter().any(Option::is_some)
            || self.index_difference.is_some()
    }
}

/// How two evaluations of one event differ, if they do: decisions,
/// debounce, prints, and which handlers failed.
pub fn difference(indexed: &Evaluation, every: &Evaluation) -> Option<String> {
    let failed =
        |e: &Evaluation| -> Vec<String> { e.errors.iter().map(|x| x.handler.clone()).collect() };
    let parts = [
        (
            "decisions",
            format!("{:?}", indexed.fired),
            format!("{:?}", every.fired),
        ),
        (
            "held",
            format!("{:?}", indexed.held),
            format!("{:?}", every.held),
        ),
        (
            "prints",
            format!("{:?}", indexed.printed),
            format!("{:?}", every.printed),
        ),
        (
            "failed handlers",
            format!("{:?}", failed(indexed)),
            format!("{:?}", failed(every)),
        ),
    ];
    parts
        .into_iter()
        .find(|(_, a, b)| a != b)
        .map(|(what, a, b)| format!("the rule index changed the {what}: {a} with it, {b} without"))
}

/// Feeds each non-empty line of `input` (one event as JSON) to the rule
/// files, checking decisions against `services` when given, and compares
/// every outcome with a second copy of the files that calls every handler
/// (no rule index). Returns the outcomes and the files that did not load.
pub fn dry_run(
    files: &[PathBuf],
    input: &str,
    services: Option<&BTreeMap<String, Service>>,
) -> (Vec<LineOutcome>, Vec<String>) {
    let (mut set, load_errors) = RuleSet::load_files(files, VmLimits::default());
    let (mut every, _) = RuleSet::load_files(files, VmLimits::default());
    every.set_indexed(false);
    let mut out = Vec::new();
    for (i, text) in input.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line = i + 1;
        let (evaluation, unreadable, index_difference) = match parse_input_line(text) {
            Ok(event) => {
                let indexed = evaluate(&mut set, &event);
                let all = evaluate(&mut every, &event);
                let diff = difference(&indexed, &all);
                (indexed, None, diff)
            }
            Err(e) => (Evaluation::default(), Some(e.to_string()), None),
        };
        let unknown = evaluation
            .fired
            .iter()
            .map(|f| {
                f.notify.is_none().then_some(())?;
                let service = services?.get(&f.service);
                match service {
                    None => Some(Unknown::Service),
                    Some(s) if !s.commands.contains_key(&f.command) => Some(Unknown::Command),
                    Some(_) => None,
                }
            })
            .collect();
        out.push(LineOutcome {
            line,
            unreadable,
            evaluation,
            unknown,
            index_difference,
        });
    }
    (out, load_errors)
}
