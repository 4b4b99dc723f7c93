//! The fleet's presence: real collectd instances with distinct host names
//! on one real mosquitto publish a retained online status (`StatusTopic`);
//! a clean stop says offline, a killed one is marked offline by the broker
//! (the MQTT last will); `collectd-monitor hosts` lists them.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, wait_for};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

fn start(broker: &Mosquitto, hostname: &str, state: &std::path::Path) -> Collectd {
    let config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "StatusTopic": "collectd/%{hostname}/status",
        "KeepAlive": 5,
        "StateDir": state.join(hostname),
    });
    let mut c = Collectd::start(CollectdSpec {
        hostname: hostname.into(),
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    c.wait_for_log(&format!(
        "listening for commands on collectd/{hostname}/command"
    ));
    c
}

/// `hosts --json`: the state of each host.
fn fleet(broker: &Mosquitto) -> BTreeMap<String, Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["--status-topic", "collectd/+/status", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["hostname"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn state_of(broker: &Mosquitto, host: &str) -> Option<String> {
    fleet(broker)
        .get(host)
        .and_then(|v| v["state"].as_str().map(str::to_string))
}

#[test]
fn hosts_lists_the_fleet_online_and_offline() {
    let broker = Mosquitto::start();
    let state = tempfile::tempdir().unwrap();
    let mut web1 = start(&broker, "web1", state.path());
    let mut web2 = start(&broker, "web2", state.path());
    let both = wait_for("both hosts online", || {
        let f = fleet(&broker);
        (f.len() == 2 && f.values().all(|v| v["state"] == "online")).then_some(f)
    });
    let web1_status = &both["web1"];
    assert_eq!(web1_status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(web1_status["config_push"], true);
    assert_eq!(web1_status["signed_only"], false);
    assert!(web1_status["since"].as_str().is_some_and(|s| !s.is_empty()));

    // The summary for people.
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["--status-topic", "collectd/+/status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("web1: online since ") && text.contains("requests not authenticated"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 hosts, 2 online"));

    // A clean stop says so at once.
    assert!(web1.stop().success());
    wait_for("web1 offline", || {
        (state_of(&broker, "web1").as_deref() == Some("offline")).then_some(())
    });
    // A host that vanishes is marked offline by the broker (its will),
    // once the broker notices the silence.
    web2.crash();
    wait_for("web2 offline by its last will", || {
        (state_of(&broker, "web2").as_deref() == Some("offline")).then_some(())
    });
    // Back again: online again.
    web2.start_again();
    wait_for("web2 online again", || {
        (state_of(&broker, "web2").as_deref() == Some("online")).then_some(())
    });
}

/// Status messages anyone with publish rights could write: the host comes
/// from the topic, a message naming another host is not taken, names that
/// are not host names are refused, and nothing reaches the terminal raw.
#[test]
fn forged_status_messages_are_not_taken_and_not_printed_raw() {
    let broker = Mosquitto::start();
    let state = tempfile::tempdir().unwrap();
    let _web1 = start(&broker, "web1", state.path());
    wait_for("web1 online", || {
        (state_of(&broker, "web1").as_deref() == Some("online")).then_some(())
    });
    let forged = |hostname: &str| {
        json!({"hostname": hostname, "state": "offline", "version": "0", "since": ""}).to_string()
    };
    for (topic, hostname) in [
        // Says web1 went away, from another topic.
        ("collectd/evil1/status", "web1"),
        // Clears the screen of whoever lists the fleet.
        ("collectd/evil2/status", "evil2\u{1b}[2J\r"),
        ("collectd/evil3/status", "h#1"),
    ] {
        let out = broker.publish(topic, &forged(hostname), &["-r", "-q", "1"]);
        assert!(out.status.success());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["--status-topic", "collectd/+/status"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("web1: online since "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(
        stderr.matches("warning: status ignored: ").count(),
        3,
        "{stderr}"
    );
    assert!(stderr.contains("evil2\\u{1b}[2J\\r"), "{stderr}");
    assert!(!stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'));
    assert_eq!(state_of(&broker, "web1").as_deref(), Some("online"));
}

/// The presence says how many rule files the host runs, also when they
/// load after the connection was made (and once more when one is added).
#[test]
fn the_presence_counts_the_rule_files_as_they_load() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example.lua");
    for name in ["a.lua", "b.lua"] {
        std::fs::copy(&example, rules.join(name)).unwrap();
    }
    let config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "StatusTopic": "collectd/%{hostname}/status",
        "StateDir": work.path().join("state"),
        "LocalMonitorConfigDir": rules,
        "RuleReloadInterval": 1,
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "Services": {"hello": {"commands": {"exec": "true"}}},
    });
    let _c = Collectd::start(CollectdSpec {
        hostname: "web1".into(),
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    let files = || {
        fleet(&broker)
            .get("web1")
            .and_then(|v| v["rule_files"].as_u64())
    };
    wait_for("two rule files in the presence", || {
        (files() == Some(2)).then_some(())
    });
    std::fs::copy(&example, rules.join("c.lua")).unwrap();
    wait_for("three rule files in the presence", || {
        (files() == Some(3)).then_some(())
    });
}

/// A status message far larger than any host sends is dropped by the
/// broker for `hosts` (its Maximum Packet Size), never read into memory.
#[test]
fn hosts_does_not_read_a_huge_message() {
    let broker = Mosquitto::start();
    let huge =
        json!({"hostname": "big", "state": "online", "version": "x".repeat(20 << 20), "since": ""});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), huge.to_string()).unwrap();
    let out = Command::new("mosquitto_pub")
        .args(broker.client_args())
        .args(["-t", "collectd/big/status", "-r", "-q", "1", "-f"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let small = json!({"hostname": "small", "state": "online", "version": "1", "since": ""});
    let out = broker.publish(
        "collectd/small/status",
        &small.to_string(),
        &["-r", "-q", "1"],
    );
    assert!(out.status.success());
    let hosts = fleet(&broker);
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["small"], "{hosts:?}");
}
