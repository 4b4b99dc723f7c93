//! The rule index changes nothing: every rule file of the project and a
//! generated corpus of handler shapes (guards of every supported form,
//! effects before and after them, prints, errors, globals, debounce
//! options, helper functions, reassigned helpers) run against a generated
//! stream of value lists and notifications twice, with the index and
//! calling every handler, and must decide, hold, print and fail alike.

use collectd_monitor::events::{DsType, Event, Metric, Notification, Severity, Value};
use collectd_monitor::lua::VmLimits;
use collectd_monitor::rules::{RuleSet, difference};
use std::path::{Path, PathBuf};

const PLUGINS: &[&str] = &["memory", "df", "cpu", "processes", "load", "disk"];
const INSTANCES: &[&str] = &["", "root", "nginx", "sda", "free", "used"];

/// A deterministic stream of events covering every combination the
/// corpus's conditions test (a small generator: no randomness to flake).
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut n: u64 = 7;
    for round in 0..3 {
        for (i, plugin) in PLUGINS.iter().enumerate() {
            for (j, instance) in INSTANCES.iter().enumerate() {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let value = match (n >> 33) % 5 {
                    0 => f64::NAN,
                    1 => 5e9,
                    2 => 2e10,
                    3 => 0.0,
                    _ => 95.0,
                };
                let time = f64::from(round * 100 + (i * 10 + j) as u32);
                out.push(Event::Metric(Metric {
                    host: if j % 2 == 0 { "web1" } else { "db1" }.into(),
                    plugin: plugin.to_string(),
                    plugin_instance: instance.to_string(),
                    type_: if i % 2 == 0 {
                        "memory"
                    } else {
                        "percent_bytes"
                    }
                    .into(),
                    type_instance: INSTANCES[(i + j) % INSTANCES.len()].to_string(),
                    time,
                    interval: 10.0,
                    values: vec![Value::Gauge(value)],
                    dsnames: vec!["value".into()],
                    dstypes: vec![DsType::Gauge],
                }));
                let severity = match (n >> 40) % 3 {
                    0 => Severity::Failure,
                    1 => Severity::Warning,
                    _ => Severity::Okay,
                };
                out.push(Event::Notification(Notification {
                    severity,
                    time,
                    message: format!("{plugin} {instance}"),
                    host: "web1".into(),
                    plugin: plugin.to_string(),
                    plugin_instance: instance.to_string(),
                    type_: "ps_count".into(),
                    type_instance: String::new(),
                    meta: vec![],
                }));
            }
        }
    }
    out
}

/// Handler bodies: each is indexed or not, and must behave the same.
const BODIES: &[&str] = &[
    // guards of every supported form
    r#"if m.plugin == "memory" and m.type_instance == "free" and m.values[1] <= 1e10 then return A end"#,
    r#"if m.plugin ~= "df" then return end if m.plugin_instance ~= ROOT then return nil end return A"#,
    r#"if "cpu" == m.plugin or m.plugin_instance == "sda" then return A end"#,
    r#"if not (m.plugin == "load") then return end print(m.plugin, m.values[1]) return A"#,
    r#"if is_memory(m) then return A end"#,
    r#"if is_memory(m) and not is_free(m) then return A elseif m.plugin == "disk" then print("disk") end"#,
    r#"if m.plugin:find("^pro") then return A end"#,
    r#"if string.match(m.plugin_instance, "ng") then return A end"#,
    r#"if string.find(m.plugin, "e", 1, true) then print("has e") end"#,
    r#"if m.plugin == "df" then error("broken on df") end"#,
    r#"if m.plugin == "cpu" then return 42 end"#,
    r#"if m.plugin == "memory" then return A else return nil end"#,
    r#"if m.plugin == "memory" then return A else print("else") end"#,
    // effects before the condition: not indexed, still the same outcome
    r#"seen = (seen or 0) + 1 if m.plugin == "cpu" and seen % 2 == 0 then return A end"#,
    r#"counter[m.plugin] = (counter[m.plugin] or 0) + 1 if counter[m.plugin] == 2 then return A end"#,
    r#"print("every", m.plugin) if m.plugin == "df" then return A end"#,
    r#"if m.values[1] ~= m.values[1] then print("nan on", m.plugin) end"#,
    r#"if m.severity == NOTIF_FAILURE then return A end"#,
    r#"if m.severity == 2 and m.plugin == "disk" then return A end"#,
    r#"if m.severity ~= NOTIF_OKAY or m.plugin == "cpu" then print(m.message) end"#,
    r#""#,
];

/// Ways to wrap a body: plain, with debounce options, with a `match`.
const WRAPS: &[&str] = &[
    "function(m) BODY end",
    "{ hits = 2, handler = function(m) BODY end }",
    "{ repeat_interval = 150, handler = function(m) BODY end }",
    "{ give_up = { after = 1, within = 1000 }, handler = function(m) BODY end }",
    r#"{ match = { plugin = { pattern = "^[a-m]" } }, hits = 2, handler = function(m) BODY end }"#,
];

/// Prologues: helpers and constants, sometimes ones the index must distrust.
const PROLOGUES: &[&str] = &[
    r#"local A = { service = "s", command = "c" }
local ROOT = "root"
local counter = {}
local function is_memory(m) return m.plugin == "memory" end
local function is_free(x) return x.type_instance == "free" end"#,
    // a helper reassigned later: its first definition must not be trusted
    r#"local A = { service = "s", command = "c" }
local ROOT = "root"
local counter = {}
local is_memory = function(m) return m.plugin == "memory" end
local function is_free(x) return x.type_instance == "free" end
is_memory = function(m) return m.plugin == "cpu" end"#,
    // the string library replaced: pattern guards must not be trusted
    r#"local A = { service = "s", command = "c" }
local ROOT = "root"
local counter = {}
local function is_memory(m) return m.plugin == "memory" end
local function is_free(x) return x.type_instance == "free" end
string.find = function() return nil end
string.match = function() return 1 end"#,
    // a constant reassigned, and the notification constants too
    r#"local A = { service = "s", command = "c" }
local ROOT = "root"
ROOT = "nginx"
NOTIF_FAILURE = 4
local counter = {}
local function is_memory(m) return m.plugin == "memory" end
local function is_free(x) return x.type_instance == "free" end"#,
];

fn compare(dir: &Path, name: &str, source: &str, events: &[Event]) {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    let paths = [path.clone()];
    let (mut indexed, errors) = RuleSet::load_files(&paths, VmLimits::default());
    assert!(errors.is_empty(), "{source}\n{errors:?}");
    let (mut every, _) = RuleSet::load_files(&paths, VmLimits::default());
    every.set_indexed(false);
    for (i, event) in events.iter().enumerate() {
        let (a, b) = match event {
            Event::Metric(m) => (indexed.on_metric(m), every.on_metric(m)),
            Event::Notification(n) => (indexed.on_notification(n), every.on_notification(n)),
            Event::Missing(m) => (indexed.on_missing(m), every.on_missing(m)),
        };
        if let Some(diff) = difference(&a, &b) {
            panic!("{name}, event {i} ({event:?}):\n{diff}\nsource:\n{source}");
        }
    }
}

#[test]
fn the_generated_corpus_behaves_alike_with_and_without_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    let mut files = 0;
    for (p, prologue) in PROLOGUES.iter().enumerate() {
        for (w, wrap) in WRAPS.iter().enumerate() {
            // One file per (prologue, wrap): every body as a metric and as
            // a notification handler, sharing the file's event table.
            let handlers: Vec<String> = BODIES
                .iter()
                .enumerate()
                .map(|(b, body)| format!("  h{b} = {},", wrap.replace("BODY", body)))
                .collect();
            let table = handlers.join("\n");
            let source = format!(
                "{prologue}\nlocal metric_handlers = {{\n{table}\n}}\nlocal notification_handlers = {{\n{table}\n}}\nreturn metric_handlers, notification_handlers\n"
            );
            compare(dir.path(), &format!("corpus_{p}_{w}.lua"), &source, &events);
            // The same handlers assigned one by one into an empty table.
            let filled: Vec<String> = BODIES
                .iter()
                .enumerate()
                .map(|(b, body)| format!("H.h{b} = {}", wrap.replace("BODY", body)))
                .collect();
            let source = format!(
                "{prologue}\nlocal H = {{}}\n{}\nreturn H\n",
                filled.join("\n")
            );
            compare(dir.path(), &format!("filled_{p}_{w}.lua"), &source, &events);
            files += 2;
        }
    }
    assert_eq!(files, 2 * PROLOGUES.len() * WRAPS.len());
}

#[test]
fn the_project_rule_files_behave_alike_with_and_without_the_index() {
    let events = events();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut seen = 0;
    for entry in std::fs::read_dir(&rules).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lua") {
            let source = std::fs::read_to_string(&path).unwrap();
            let dir = tempfile::tempdir().unwrap();
            compare(dir.path(), "rule.lua", &source, &events);
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} rule files found");
}

/// Every body as a plain metric handler after `prologue`.
fn metric_file(prologue: &str) -> String {
    let handlers: Vec<String> = BODIES
        .iter()
        .enumerate()
        .map(|(b, body)| format!("  h{b} = function(m) {body} end,"))
        .collect();
    format!(
        "{prologue}\nlocal metric_handlers = {{\n{}\n}}\nreturn metric_handlers\n",
        handlers.join("\n")
    )
}

#[test]
fn the_corpus_exercises_the_index() {
    // The comparison above is only worth something if the index really
    // skips handlers: count the handlers of the first corpus file it
    // indexes.
    let dir = tempfile::tempdir().unwrap();
    let source = metric_file(PROLOGUES[0]);
    let path = dir.path().join("c.lua");
    std::fs::write(&path, source).unwrap();
    let (set, errors) = RuleSet::load_files(&[path], VmLimits::default());
    assert!(errors.is_empty(), "{errors:?}");
    let notes = set.files()[0].index_notes(collectd_monitor::rules::HandlerKind::Metric);
    let indexed = notes
        .iter()
        .filter(|(_, n)| n.as_ref().is_ok_and(|g| g != "true"))
        .count();
    assert!(indexed >= 10, "{notes:#?}");
}

/// Handlers that keep their table, or part of it, past the call: the file
/// they are in must build a table per value list, and behave alike.
const KEEPING_HANDLERS: &[&str] = &[
    r#"function(m) local k = K(m) if last[k] then print(last[k][1]) end last[k] = m.values end"#,
    r#"function(m) local k = K(m) local f = function() return m.values[1], m.time end if saved[k] then print(saved[k]()) end saved[k] = f end"#,
    r#"function(m) local k = K(m) if prev[k] then print(prev[k].values[1], prev[k].time) end prev[k] = m end"#,
    r#"function(m) local k = K(m) if held[k] then print(held[k][0], #held[k]) end held[k] = m.dsnames end"#,
    r#"function(...) local m = ... local k = K(m) if kept[k] then print(kept[k].values[1]) end kept[k] = m end"#,
];

/// The keeping handlers keep their tables by series (`K(m)`): a table kept
/// per series would show the current value list where a kept table shows
/// the one it was kept from.
const KEEPING_PROLOGUE: &str = "last, saved, prev, held, kept = {}, {}, {}, {}, {}\n";
const SERIES_KEY: &str = "(m.host .. m.plugin .. m.plugin_instance .. m.type .. m.type_instance)";

#[test]
fn handlers_that_keep_their_table_get_a_table_per_value_list_and_behave_alike() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    let reading = r#"function(m) if m.plugin == "memory" then print(m.values[1], m.time) end end"#;
    for (i, keeping) in KEEPING_HANDLERS.iter().enumerate() {
        let keeping = keeping.replace("K(m)", SERIES_KEY);
        let source = format!("{KEEPING_PROLOGUE}return {{ a = {reading}, b = {keeping} }}\n");
        let name = format!("keeping_{i}.lua");
        compare(dir.path(), &name, &source, &events);
        let (set, _) = RuleSet::load_files(&[dir.path().join(&name)], VmLimits::default());
        assert!(
            set.files()[0].fresh_tables().is_some(),
            "{keeping} keeps its table, yet the file's tables are kept per series"
        );
    }
    // The reading handler alone is one whose tables are kept per series,
    // and it still prints each value list's own values.
    let name = "reading.lua";
    compare(
        dir.path(),
        name,
        &format!("return {{ a = {reading} }}\n"),
        &events,
    );
    let (set, _) = RuleSet::load_files(&[dir.path().join(name)], VmLimits::default());
    assert_eq!(set.files()[0].fresh_tables(), None);
}

#[test]
fn the_corpus_files_use_tables_kept_per_series() {
    // The comparisons above cover the tables kept per series only if the
    // corpus files qualify for them: all but the one whose helper is
    // reassigned (the analysis cannot vouch for what `is_memory(m)` does
    // with `m`).
    let dir = tempfile::tempdir().unwrap();
    for (p, prologue) in PROLOGUES.iter().enumerate().filter(|(p, _)| *p != 1) {
        let source = metric_file(prologue);
        let path = dir.path().join(format!("c{p}.lua"));
        std::fs::write(&path, source).unwrap();
        let (set, errors) = RuleSet::load_files(&[path], VmLimits::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.files()[0].fresh_tables(), None, "prologue {p}");
    }
}
