//! Maintenance pauses against real collectd and mosquitto: a paused
//! rule's decision is logged and counted, not run; the pause survives a
//! restart, ends when resumed or by itself, shows in `status`, and with
//! `--remote` refuses remote commands too.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const PROBE_RULE: &str = r#"
return { probe = function(m)
  if m.plugin == "probe" then return { service = "hello", command = "exec" } end
end }"#;

fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .arg("--socket")
        .arg(socket)
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

/// Result notifications of rule-run commands so far.
fn runs(c: &Collectd) -> usize {
    c.log_text()
        .matches("plugin = lua-collectd-monitor-local")
        .count()
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
    assert!(out.status.success(), "{}", text(&out));
    c.putval("testhost/probe/gauge-x N:4");
    c.wait_until("the decision paused", || (paused(&c) == 3).then_some(()));
    let mut n = 5;
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
}
