//! The history against real collectd and mosquitto: a rule's repair and a
//! signed remote command are recorded with who asked for them, still
//! listed after a restart, read locally (`history`) and over MQTT
//! (`send-history`, only with the right); a flood of decisions keeps the
//! store within `HistoryMaxRecords`.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, keygen};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const PROBE_RULE: &str = r#"
return { probe = function(m)
  if m.plugin == "probe" then return { service = "hello", command = "exec" } end
end }"#;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `history --json` with `extra`: the records.
fn history(socket: &Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["history", "--json", "--limit", "1000", "--socket"])
        .arg(socket)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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
        assert!(records.len() <= 20, "{} records", records.len());
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
