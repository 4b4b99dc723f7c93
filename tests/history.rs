//! The history against real collectd and mosquitto: a rule's repair and a
//! signed remote command are recorded with who asked for them, still
//! listed after a restart, read locally (`history`) and over MQTT
//! (`send-history`, only with the right); a flood of decisions keeps the
//! store within `HistoryMaxRecords`.

mod common;
use common::cli::{PROBE_RULE, cli, json_lines, text};
use common::{Collectd, CollectdSpec, Mosquitto, keygen};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

/// `history --json` with `extra`: the records.
fn history(socket: &Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["history", "--json", "--limit", "1000", "--socket"])
        .arg(socket)
        .args(extra)
        .output()
        .unwrap();
    json_lines(&out)
}

#[test]
fn repairs_are_recorded_with_their_origin_kept_across_a_restart_and_bounded() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("probe.lua"), PROBE_RULE).unwrap();
    let (ops, ops_pub) = keygen(work.path(), "ops");
    let (reader, reader_pub) = keygen(work.path(), "reader");
    let keys = work.path().join("trusted-keys");
    std::fs::write(
        &keys,
        format!("{ops_pub} commands=hello/*\n{reader_pub} history=yes\n"),
    )
    .unwrap();
    let state = work.path().join("state");
    let socket = state.join("control.sock");
    let config = json!({
        "LocalMonitorConfigDir": rules,
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "StateDir": state,
        "CommandCooldown": 0,
        "HistoryMaxRecords": 20,
        "TrustedKeys": keys,
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "Services": {"hello": {"commands": {"exec": "echo hi from hello"}}},
    });
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    c.wait_for_log("probe.lua: loaded");
    c.wait_for_log("listening for commands on collectd/testhost/command");

    // A rule's repair, and a remote command signed by `ops`.
    c.putval("testhost/probe/gauge-x N:1");
    // The remote command is sent once the rule's run is over: the same
    // command running twice at once is refused (0x1007), by design.
    c.wait_until("the rule's repair recorded", || {
        (!history(&socket, &[]).is_empty()).then_some(())
    });
    let broker_args = [
        "--host".to_string(),
        format!("127.0.0.1:{}", broker.port),
        "-t".into(),
        "collectd/%{hostname}/command".into(),
        "--result-topic".into(),
        "collectd/%{hostname}/result".into(),
        "--timeout".into(),
        "60".into(),
    ];
    let mut send = vec!["send-command", "hello", "exec", "--signing-key"];
    send.push(ops.to_str().unwrap());
    send.extend(["--target", "testhost"]);
    let broker_refs: Vec<&str> = broker_args.iter().map(String::as_str).collect();
    // One host: its own topics.
    let one_host: Vec<String> = broker_refs
        .iter()
        .map(|a| a.replace("%{hostname}", "testhost"))
        .collect();
    let mut send_args = send.clone();
    send_args.extend(one_host.iter().map(String::as_str));
    let sent = cli(&send_args);
    assert!(sent.status.success(), "{}", text(&sent));
    c.wait_until("both recorded", || {
        (history(&socket, &[]).len() >= 2).then_some(())
    });

    // Kept across a restart, each with who asked for it.
    assert!(c.stop().success());
    c.start_again();
    c.wait_for_log("listening for commands on collectd/testhost/command");
    let records = history(&socket, &["--service", "hello"]);
    let rule = records
        .iter()
        .find(|r| r["kind"] == "rule")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert!(
        rule["who"].as_str().unwrap().contains("probe.lua"),
        "{rule}"
    );
    assert_eq!(rule["what"], "hello/exec", "{rule}");
    assert_eq!(rule["code"], 0, "{rule}");
    assert!(
        rule["outcome"].as_str().unwrap().contains("hi from hello"),
        "{rule}"
    );
    assert_eq!(rule["series"], "testhost/probe/gauge-x", "{rule}");
    let remote = records
        .iter()
        .find(|r| r["kind"] == "remote")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(remote["who"], "key ops", "{remote}");
    assert_eq!(remote["code"], 0, "{remote}");
    assert!(remote["task_id"].as_u64().is_some(), "{remote}");
    let human = cli(&["history", "--socket", socket.to_str().unwrap()]);
    assert!(
        text(&human).contains(" remote hello/exec code 0"),
        "{}",
        text(&human)
    );

    // Over MQTT: only a key with `history=yes` may read it.
    let ask = |key: &Path| -> Output {
        let mut args = vec![
            "send-history",
            "--hosts",
            "testhost",
            "--json",
            "--signing-key",
        ];
        args.push(key.to_str().unwrap());
        args.extend(&broker_refs);
        cli(&args)
    };
    let refused = ask(&ops);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("0x1205"), "{}", text(&refused));
    let read = ask(&reader);
    assert!(read.status.success(), "{}", text(&read));
    let remote_records: Vec<Value> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        remote_records
            .iter()
            .any(|r| r["host"] == "testhost" && r["who"] == "key ops"),
        "{remote_records:?}"
    );
    // The refused read is recorded as refused; reads themselves are not.
    assert!(
        history(&socket, &["--kind", "refused"])
            .iter()
            .any(|r| r["code"] == 0x1205),
        "{:?}",
        history(&socket, &[])
    );

    // A flood of paused decisions: the store keeps its bound.
    let out = cli(&[
        "pause",
        "--service",
        "hello",
        "--reason",
        "flood",
        "--socket",
        socket.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for i in 0..200 {
        c.putval(&format!("testhost/probe/gauge-x N:{i}"));
    }
    c.wait_until("the flood recorded", || {
        let records = history(&socket, &[]);
        let kept = records.iter().filter(|r| r["kind"] != "refused").count();
        assert!(kept <= 20, "{kept} records");
        let paused = records
            .iter()
            .filter(|r| {
                r["outcome"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("paused (flood")
            })
            .count();
        (paused == 20).then_some(())
    });
    assert!(c.stop().success());
}

/// A host keeping at most `max_records` history records, trusting `keys`
/// (`(name, rights)`), with `hello/exec` and `secret/show`; its broker.
struct Host {
    broker: Mosquitto,
    work: tempfile::TempDir,
    collectd: Collectd,
    socket: std::path::PathBuf,
    keys: std::collections::BTreeMap<String, std::path::PathBuf>,
}

impl Host {
    fn start(max_records: u64, keys: &[(&str, &str)], before: impl FnOnce(&Path)) -> Host {
        let broker = Mosquitto::start();
        let work = tempfile::tempdir().unwrap();
        let rules = work.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("probe.lua"), PROBE_RULE).unwrap();
        let mut lines = String::new();
        let mut paths = std::collections::BTreeMap::new();
        for (name, rights) in keys {
            let (key, public) = keygen(work.path(), name);
            lines.push_str(&format!("{public} {rights}\n"));
            paths.insert(name.to_string(), key);
        }
        let trusted = work.path().join("trusted-keys");
        std::fs::write(&trusted, lines).unwrap();
        let state = work.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        before(&state);
        let config = json!({
            "LocalMonitorConfigDir": rules,
            "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
            "StateDir": state,
            "CommandCooldown": 0,
            "HistoryMaxRecords": max_records,
            "TrustedKeys": trusted,
            "Host": format!("127.0.0.1:{}", broker.port),
            "CommandTopic": "collectd/%{hostname}/command",
            "CommandResultTopic": "collectd/%{hostname}/result",
            "Services": {
                "hello": {"commands": {"exec": "echo hi from hello"}},
                "secret": {"commands": {"show": "echo DB_PASSWORD=hunter2"}},
            },
        });
        let mut collectd = Collectd::start(CollectdSpec {
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            ..Default::default()
        });
        collectd.wait_for_log("listening for commands on collectd/testhost/command");
        Host {
            broker,
            work,
            collectd,
            socket: state.join("control.sock"),
            keys: paths,
        }
    }

    fn broker_args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            format!("127.0.0.1:{}", self.broker.port),
            "-t".into(),
            "collectd/testhost/command".into(),
            "--result-topic".into(),
            "collectd/testhost/result".into(),
            "--timeout".into(),
            "60".into(),
        ]
    }

    /// `send-command SERVICE COMMAND` signed by `key`; its output.
    fn send(&self, key: &str, service: &str, command: &str) -> String {
        let mut args = vec![
            "send-command".to_string(),
            service.into(),
            command.into(),
            "--target".into(),
            "testhost".into(),
            "--signing-key".into(),
            self.keys[key].display().to_string(),
        ];
        args.extend(self.broker_args());
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    }

    /// `send-history --json` signed by `key`: the records.
    fn remote_history(&self, key: &str) -> Vec<Value> {
        let mut args = vec![
            "send-history".to_string(),
            "--hosts".into(),
            "testhost".into(),
            "--json".into(),
            "--limit".into(),
            "1000".into(),
            "--signing-key".into(),
            self.keys[key].display().to_string(),
        ];
        args.extend(self.broker_args());
        json_lines(&cli(&args.iter().map(String::as_str).collect::<Vec<_>>()))
    }
}

#[test]
fn a_replayed_request_cannot_push_out_what_ran() {
    let host = Host::start(20, &[("ops", "commands=hello/*")], |_| {});
    host.collectd.putval("testhost/probe/gauge-x N:1");
    host.send("ops", "hello", "exec");
    host.collectd.wait_until("both recorded", || {
        (history(&host.socket, &[]).len() >= 2).then_some(())
    });
    // A request really signed by ops, dated a year ago, captured and
    // replayed 2 500 times.
    let key = collectd_monitor::auth::SigningKey::read(&host.keys["ops"]).unwrap();
    let old = json!({"task_id": 77, "timestamp": "2025-12-01T00:00:00Z", "service": "hello", "command": "exec"});
    let signed =
        collectd_monitor::remote::sender::sign(old.to_string().as_bytes(), &key, "testhost")
            .unwrap();
    let lines = format!("{}\n", String::from_utf8(signed).unwrap()).repeat(2500);
    let mut publish = Command::new("mosquitto_pub")
        .args(host.broker.client_args())
        .args(["-t", "collectd/testhost/command", "-q", "1", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    publish
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(publish.wait().unwrap().success());
    let records = host.collectd.wait_until("every replay counted", || {
        let records = history(&host.socket, &[]);
        let refused = records.iter().find(|r| r["kind"] == "refused")?;
        (refused["count"] == 2500).then_some(records)
    });
    // What ran is still there; the replays are one record.
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"rule") && kinds.contains(&"remote"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "refused").count(),
        1,
        "{kinds:?}"
    );
    let refused = records.iter().find(|r| r["kind"] == "refused").unwrap();
    assert_eq!(
        (&refused["code"], &refused["task_id"]),
        (&json!(0x1006), &json!(77))
    );
}

#[test]
fn a_history_key_reads_only_the_outcomes_its_rights_cover() {
    let host = Host::start(
        100,
        &[
            ("ops", "commands=hello/*,secret/*"),
            ("reader", "history=yes"),
            ("hello_reader", "history=yes commands=hello/*"),
            ("auditor", "history=all"),
        ],
        |_| {},
    );
    host.send("ops", "secret", "show");
    host.send("ops", "hello", "exec");
    host.collectd.wait_until("both recorded", || {
        (history(&host.socket, &["--kind", "remote"]).len() == 2).then_some(())
    });
    let outcome = |records: &[Value], what: &str| -> String {
        records
            .iter()
            .find(|r| r["what"] == what && r["kind"] == "remote")
            .unwrap_or_else(|| panic!("{records:?}"))["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let reader = host.remote_history("reader");
    assert!(
        outcome(&reader, "secret/show").contains("withheld"),
        "{reader:?}"
    );
    assert!(
        outcome(&reader, "hello/exec").contains("withheld"),
        "{reader:?}"
    );
    assert!(!serde_json::to_string(&reader).unwrap().contains("hunter2"));
    let hello_reader = host.remote_history("hello_reader");
    assert!(outcome(&hello_reader, "hello/exec").contains("hi from hello"));
    assert!(outcome(&hello_reader, "secret/show").contains("withheld"));
    let auditor = host.remote_history("auditor");
    assert!(outcome(&auditor, "secret/show").contains("DB_PASSWORD=hunter2"));
    // Locally (root, on the host), everything.
    let local = history(&host.socket, &[]);
    assert!(outcome(&local, "secret/show").contains("hunter2"));
}

#[test]
fn a_damaged_history_is_moved_aside_reported_and_a_new_one_kept() {
    let host = Host::start(
        100,
        &[("ops", "commands=hello/*"), ("reader", "history=yes")],
        |state| {
            std::fs::write(state.join("history.redb"), b"\0\0garbage, not a history").unwrap();
        },
    );
    let line = host.collectd.wait_until("the notification", || {
        host.collectd
            .log_text()
            .lines()
            .find(|l| {
                l.contains("Notification: severity = FAILURE") && l.contains("type = history")
            })
            .map(str::to_string)
    });
    assert!(line.contains("moved aside"), "{line}");
    host.send("ops", "hello", "exec");
    host.collectd.wait_until("recorded in the new history", || {
        (history(&host.socket, &["--kind", "remote"]).len() == 1).then_some(())
    });
    assert_eq!(host.remote_history("reader").len(), 1);
    let aside = std::fs::read_dir(host.work.path().join("state"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("history.redb.damaged-")
        })
        .count();
    assert_eq!(aside, 1);
}
