//! The remote path without the network: parse a command message, decide
//! (duplicate/stale/lookup), serialize the result, unsigned and signed
//! (Ed25519 verification against trusted keys); a task's journal records;
//! and validating a parsed 500-line collectd.conf tree.

use collectd_monitor::config::Service;
use collectd_monitor::config::{ConfigItem, ConfigValue};
use collectd_monitor::reconfig::{DEFAULT_PLUGIN_DIR, validate};
use collectd_monitor::remote::{Decision, Journal, RequestPolicy, decide, parse};
use collectd_monitor::task::TaskResult;
use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn command(c: &mut Criterion) {
    let mut hello = Service::default();
    hello.commands.insert("exec".into(), "/bin/echo hi".into());
    let services = BTreeMap::from([("hello".to_string(), hello)]);
    let now = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let payload = format!(
        r#"{{"task_id": 3126260400, "timestamp": "{stamp}", "service": "hello", "command": "exec"}}"#
    );
    // The signed form of the same request, and a host trusting its key.
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = collectd_monitor::auth::write_pair(dir.path(), "ops").unwrap();
    let key = collectd_monitor::auth::SigningKey::read(&private).unwrap();
    let signed = collectd_monitor::remote::sender::sign(payload.as_bytes(), &key, "web1").unwrap();
    let mut trust = collectd_monitor::auth::TrustedKeys::default();
    let line = std::fs::read_to_string(public).unwrap();
    trust
        .add_lines("keys", &format!("{} commands=hello/*", line.trim()))
        .unwrap();
    for (name, payload, trust) in [
        (
            "remote_path/parse_decide_serialize",
            payload.as_bytes(),
            None,
        ),
        (
            "remote_path/parse_verify_decide_serialize_signed",
            &signed[..],
            Some(&trust),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let request = parse(black_box(payload)).unwrap();
                let policy = RequestPolicy {
                    services: &services,
                    max_age: Duration::from_secs(300),
                    now,
                    trust,
                    hostname: "web1",
                    config_push: true,
                    rules_push: true,
                    rule_runs: None,
                };
                let decision = decide(&request, false, None, &policy);
                assert!(matches!(decision, Decision::Run { .. }), "{decision:?}");
                let result = TaskResult::now(request.task_id(), 0, "Hello World!");
                black_box((decision, serde_json::to_vec(&result).unwrap()))
            })
        });
    }
}

fn config_tree(lines: usize) -> ConfigItem {
    let s = |v: &str| ConfigValue::String(v.into());
    let mut children = vec![ConfigItem {
        key: "TypesDB".into(),
        values: vec![s("/usr/share/collectd/types.db")],
        children: vec![],
    }];
    let plugins = [
        "cpu",
        "memory",
        "load",
        "df",
        "interface",
        "disk",
        "processes",
        "csv",
        "logfile",
        "unixsock",
    ];
    while children.len() < lines {
        for p in plugins {
            children.push(ConfigItem {
                key: "LoadPlugin".into(),
                values: vec![s(p)],
                children: vec![],
            });
            children.push(ConfigItem {
                key: "Plugin".into(),
                values: vec![s(p)],
                children: (0..3)
                    .map(|i| ConfigItem {
                        key: format!("Option{i}"),
                        values: vec![s("value")],
                        children: vec![],
                    })
                    .collect(),
            });
        }
    }
    ConfigItem {
        key: String::new(),
        values: vec![],
        children,
    }
}

fn validation(c: &mut Criterion) {
    let tree = config_tree(500);
    let exists = |_: &Path| true;
    c.bench_function("remote_path/validate_500_line_config", |b| {
        b.iter(|| {
            black_box(validate(
                black_box(&tree),
                Path::new(DEFAULT_PLUGIN_DIR),
                &exists,
            ))
        })
    });
}

/// One task's life in the journal as the session writes it: received,
/// running, done (with its result), published; each line is fsynced. The
/// journal lives under target/ (on the project's disk, as a state
/// directory would; /tmp may be memory).
fn journal(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut journal = Journal::open(&dir.path().join("tasks.journal"), now, 3600).unwrap();
    let mut id = 0u64;
    c.bench_function("remote_path/journal_one_task", |b| {
        b.iter(|| {
            id += 1;
            journal.received(id, now).unwrap();
            journal.running(id).unwrap();
            journal
                .done(&TaskResult::now(id, 0, "Hello World!"))
                .unwrap();
            journal.published(id).unwrap();
        })
    });
}

/// The journal's size and cost per task stay bounded however many tasks it
/// remembers and however large their output: 10 000 tasks whose results
/// are 64 KiB (`CommandOutputLimit`'s default) first, then one more such
/// task per iteration. Prints the file's size after each phase.
fn journal_large_output(c: &mut Criterion) {
    const TASKS: u64 = 10_000;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("tasks.journal");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut journal = Journal::open(&path, now, 3600).unwrap();
    let output = "x".repeat(64 * 1024);
    let task = |journal: &mut Journal, id: u64| {
        journal.received(id, now).unwrap();
        journal.running(id).unwrap();
        journal
            .done(&TaskResult::now(id, 0, output.clone()))
            .unwrap();
        journal.published(id).unwrap();
    };
    let started = std::time::Instant::now();
    let mut largest = 0;
    for id in 1..=TASKS {
        task(&mut journal, id);
        largest = largest.max(std::fs::metadata(&path).unwrap().len());
    }
    eprintln!(
        "journal: {TASKS} tasks of 64 KiB output in {:.1} s ({:.2} ms per task); file at most {} KiB, now {} KiB",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1000.0 / TASKS as f64,
        largest / 1024,
        std::fs::metadata(&path).unwrap().len() / 1024
    );
    let mut id = TASKS;
    c.bench_function("remote_path/journal_task_64k_output_10k_remembered", |b| {
        b.iter(|| {
            id += 1;
            task(&mut journal, id);
        })
    });
    eprintln!(
        "journal: {} tasks remembered, file {} KiB",
        id,
        std::fs::metadata(&path).unwrap().len() / 1024
    );
}

criterion_group!(benches, command, validation, journal, journal_large_output);
criterion_main!(benches);
