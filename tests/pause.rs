//! Maintenance pauses against real collectd and mosquitto: a paused
//! rule's decision is logged and counted, not run; the pause survives a
//! restart, ends when resumed or by itself, shows in `status`, and with
//! `--remote` refuses remote commands too.

mod common;
use common::cli::{PROBE_RULE, json_lines, rule_runs as runs, text};
use common::{Collectd, CollectdSpec, Mosquitto, keygen};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap()
}

fn paused(c: &Collectd) -> usize {
    c.log_text().matches("hello/exec paused (upgrade").count()
}

#[test]
fn a_pause_holds_rules_back_across_a_restart_until_resumed_or_over() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("probe.lua"), PROBE_RULE).unwrap();
    let socket = work.path().join("state/control.sock");
    let config = json!({
        "LocalMonitorConfigDir": rules,
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "StateDir": work.path().join("state"),
        "CommandCooldown": 0,
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "cmd/%{hostname}",
        "CommandResultTopic": "res/%{hostname}",
        "StatusTopic": "status/%{hostname}",
        "Services": {"hello": {"commands": {"exec": "echo hi"}}},
    });
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    c.wait_for_log("probe.lua: loaded");
    let out = cli(
        &socket,
        &["pause", "--service", "hello", "--reason", "upgrade"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("paused hello/* for 3600 s"),
        "{}",
        text(&out)
    );

    c.putval("testhost/probe/gauge-x N:1");
    c.wait_until("the decision paused", || (paused(&c) == 1).then_some(()));
    let status: Value =
        serde_json::from_slice(&cli(&socket, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["pauses"][0]["what"], "hello/*", "{status}");
    assert_eq!(status["pauses"][0]["reason"], "upgrade", "{status}");
    // The text status shows it too.
    let shown = text(&cli(&socket, &["status"]));
    assert!(
        shown.contains("paused: hello/* until ") && shown.contains(": upgrade"),
        "{shown}"
    );
    // The host's presence says so too, and `hosts` shows it.
    c.wait_until("the pause in the presence", || {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
            .args(["--status-topic", "status/+"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        listed.contains("paused: hello/* until ").then_some(())
    });

    // Still paused after a restart.
    assert!(c.stop().success());
    c.start_again();
    c.wait_for_log("probe.lua: loaded");
    c.putval("testhost/probe/gauge-x N:2");
    c.wait_until("the decision paused again", || {
        (paused(&c) == 2).then_some(())
    });
    assert_eq!(runs(&c), 0);

    // Resumed: the next decision runs.
    let out = cli(&socket, &["resume", "--service", "hello"]);
    assert!(text(&out).contains("1 pause(s) ended"), "{}", text(&out));
    c.putval("testhost/probe/gauge-x N:3");
    c.wait_until("the command run", || (runs(&c) == 1).then_some(()));

    // A short pause ends by itself: decisions run again once it is over.
    let out = cli(
        &socket,
        &[
            "pause",
            "--service",
            "hello/exec",
            "--for",
            "2s",
            "--reason",
            "upgrade",
        ],
    );
    assert!(
        text(&out).contains("paused hello/exec for 2 s"),
        "{}",
        text(&out)
    );
    // Decisions within it are paused (as above), however many come before
    // it ends; once it has, one runs.
    let mut n = 4;
    c.wait_until("a run after the pause ended", || {
        c.putval(&format!("testhost/probe/gauge-x N:{n}"));
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(300));
        (runs(&c) >= 2).then_some(())
    });

    // With --remote, remote commands are refused too.
    let out = cli(&socket, &["pause", "--remote", "--reason", "upgrade"]);
    assert!(out.status.success(), "{}", text(&out));
    let sent = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", "hello", "exec"])
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args([
            "-t",
            "cmd/testhost",
            "--result-topic",
            "res/testhost",
            "--json",
        ])
        .output()
        .unwrap();
    let result: Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(result["code"], 0x100D, "{result}");
    // A bad pause is refused with its reason.
    let out = cli(&socket, &["pause", "--for", "400d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("at most 86400 s"), "{}", text(&out));

    // Local pauses and resumes are in the history, as remote ones are
    // (written by the history's own thread: waited for).
    let history = |kind: &str| -> Vec<Value> {
        json_lines(&cli(&socket, &["history", "--json", "--kind", kind]))
    };
    c.wait_until("the local pauses recorded", || {
        let paused = history("pause");
        let ok = paused
            .iter()
            .any(|r| r["who"] == "an operator (control socket)" && r["code"] == 0);
        let refused = paused
            .iter()
            .any(|r| r["code"] != 0 && r["outcome"].as_str().unwrap().contains("at most 86400 s"));
        (ok && refused).then_some(())
    });
    c.wait_until("the local resume recorded", || {
        history("resume")
            .iter()
            .any(|r| r["outcome"].as_str().unwrap().contains("1 pause(s) ended"))
            .then_some(())
    });
}

#[test]
fn a_signed_pause_reaches_two_of_three_hosts_and_only_with_the_right() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("probe.lua"), PROBE_RULE).unwrap();
    let (ops, ops_pub) = keygen(work.path(), "ops");
    let (deploy, deploy_pub) = keygen(work.path(), "deploy");
    let keys = work.path().join("trusted-keys");
    std::fs::write(
        &keys,
        format!("{ops_pub} pause=yes\n{deploy_pub} commands=* config=yes\n"),
    )
    .unwrap();
    let names = ["web1", "web2", "web3"];
    let mut hosts: Vec<Collectd> = names
        .iter()
        .map(|name| {
            let config = json!({
                "LocalMonitorConfigDir": rules,
                "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
                "StateDir": work.path().join(name),
                "CommandCooldown": 0,
                "TrustedKeys": keys,
                "Host": format!("127.0.0.1:{}", broker.port),
                "CommandTopic": "collectd/%{hostname}/command",
                "CommandResultTopic": "collectd/%{hostname}/result",
                "Services": {"hello": {"commands": {"exec": "echo hi"}}},
            });
            let mut c = Collectd::start(CollectdSpec {
                hostname: (*name).into(),
                monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
                config_json: Some((config.to_string(), 0o600)),
                ..Default::default()
            });
            c.wait_for_log(&format!(
                "listening for commands on collectd/{name}/command"
            ));
            c.wait_for_log("probe.lua: loaded");
            c
        })
        .collect();
    let send = |verb: &str, key: &Path, extra: &[&str]| -> (Option<i32>, Vec<Value>) {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .arg(verb)
            .args(["--host", &format!("127.0.0.1:{}", broker.port)])
            .args(["-t", "collectd/%{hostname}/command"])
            .args(["--result-topic", "collectd/%{hostname}/result"])
            .args(["--timeout", "60", "--json", "--signing-key"])
            .arg(key)
            .args(extra)
            .output()
            .unwrap();
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code(), lines)
    };

    // A key without `pause=yes` may not pause.
    let (status, refused) = send(
        "send-pause",
        &deploy,
        &[
            "--hosts",
            "web1",
            "--service",
            "hello",
            "--reason",
            "upgrade",
        ],
    );
    assert_eq!(status, Some(1), "{refused:?}");
    assert_eq!(refused[0]["code"], 0x1205, "{refused:?}");

    let (status, paused_hosts) = send(
        "send-pause",
        &ops,
        &[
            "--hosts",
            "web1,web2",
            "--service",
            "hello",
            "--reason",
            "upgrade",
        ],
    );
    assert_eq!(status, Some(0), "{paused_hosts:?}");
    assert_eq!(paused_hosts.len(), 2, "{paused_hosts:?}");
    for outcome in &paused_hosts {
        assert_eq!(outcome["code"], 0, "{outcome}");
        assert!(
            outcome["message"]
                .as_str()
                .unwrap()
                .contains("paused hello/* for 3600 s"),
            "{outcome}"
        );
    }
    for (c, name) in hosts.iter().zip(names) {
        c.putval(&format!("{name}/probe/gauge-x N:1"));
    }
    hosts[0].wait_until("web1 paused", || (paused(&hosts[0]) == 1).then_some(()));
    hosts[1].wait_until("web2 paused", || (paused(&hosts[1]) == 1).then_some(()));
    hosts[2].wait_until("web3 ran it", || (runs(&hosts[2]) == 1).then_some(()));
    assert_eq!(runs(&hosts[0]) + runs(&hosts[1]), 0);
    assert_eq!(paused(&hosts[2]), 0);
    assert!(
        hosts[0]
            .log_text()
            .contains("paused hello/* for 3600 s by key ops: upgrade"),
        "{}",
        hosts[0].log_text()
    );

    // Resumed on one host by a signed request: its next decision runs.
    let (status, resumed) = send(
        "send-resume",
        &ops,
        &["--hosts", "web2", "--service", "hello"],
    );
    assert_eq!(status, Some(0), "{resumed:?}");
    assert!(
        resumed[0]["message"]
            .as_str()
            .unwrap()
            .contains("1 pause(s) ended")
    );
    hosts[1].putval("web2/probe/gauge-x N:2");
    hosts[1].wait_until("web2 ran it", || (runs(&hosts[1]) == 1).then_some(()));
    hosts[0].putval("web1/probe/gauge-x N:2");
    hosts[0].wait_until("web1 still paused", || {
        (paused(&hosts[0]) == 2).then_some(())
    });
    assert_eq!(runs(&hosts[0]), 0);
    for c in &mut hosts {
        assert!(c.stop().success());
    }
}

#[test]
fn a_pauses_file_edited_by_hand_is_bounded_and_one_that_cannot_be_written_loses_no_pause() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // Ten years ahead, by hand: no more than PauseMaxDuration (a day).
    let decade = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 10 * 365 * 86_400;
    let pauses = json!({"pauses": [{"service": "hello", "until": decade, "reason": "forever"}]});
    std::fs::write(state.join("pauses.json"), pauses.to_string()).unwrap();
    let config = json!({"StateDir": state, "PauseMaxDuration": 86_400});
    let c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    let socket = state.join("control.sock");
    let status: Value =
        serde_json::from_slice(&cli(&socket, &["status", "--json"]).stdout).unwrap();
    let until = status["pauses"][0]["until"].as_str().unwrap();
    let until = humantime::parse_rfc3339(until).unwrap();
    let latest = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400 + 60);
    assert!(until <= latest, "{status}");
    drop(c);
    // pauses.json a directory: a new pause takes effect and says it is not
    // kept for a restart (an answer of success, not of failure).
    std::fs::remove_file(state.join("pauses.json")).unwrap();
    std::fs::create_dir(state.join("pauses.json")).unwrap();
    let c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    let out = cli(
        &socket,
        &["pause", "--service", "hello", "--reason", "upgrade"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not kept for a restart"),
        "{}",
        text(&out)
    );
    let status: Value =
        serde_json::from_slice(&cli(&socket, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["pauses"][0]["reason"], "upgrade", "{status}");
    drop(c);
}
