//! The fleet's broker ACL (`conf/mosquitto-fleet.acl`) on a real mosquitto
//! with real collectd hosts: each host works with its own topics, and a
//! host's credentials can neither read another host's commands nor answer
//! for it.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, MosquittoSpec, result_codes};
use serde_json::json;
use std::process::Command;

fn host(broker: &Mosquitto, name: &str, state: &std::path::Path) -> Collectd {
    let config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "User": name,
        "Password": format!("{name}-secret"),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "StatusTopic": "collectd/%{hostname}/status",
        "StateDir": state.join(name),
        "Services": {"hello": {"commands": {"exec": "echo hi"}}},
    });
    let mut c = Collectd::start(CollectdSpec {
        hostname: name.into(),
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    c.wait_for_log(&format!(
        "listening for commands on collectd/{name}/command"
    ));
    c
}

#[test]
fn each_host_uses_only_its_own_topics_under_the_fleet_acl() {
    let acl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/mosquitto-fleet.acl"
    ))
    .unwrap();
    let broker = Mosquitto::start_with(MosquittoSpec {
        users: vec![
            ("controller".into(), "controller-secret".into()),
            ("web1".into(), "web1-secret".into()),
            ("web2".into(), "web2-secret".into()),
        ],
        acl: Some(acl),
        ..Default::default()
    });
    let state = tempfile::tempdir().unwrap();
    let _web1 = host(&broker, "web1", state.path());
    let _web2 = host(&broker, "web2", state.path());
    let as_controller = ["-u", "controller", "-P", "controller-secret"];

    // The controller reaches both hosts, and sees their presence.
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", "hello", "exec"])
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["-t", "collectd/%{hostname}/command"])
        .args(["--result-topic", "collectd/%{hostname}/result"])
        .args(["--hosts", "web1,web2", "--timeout", "30", "--json"])
        .args(as_controller)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["--status-topic", "collectd/+/status", "--json"])
        .args(as_controller)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    // web1's credentials do not see web2's commands: of a command to web2
    // and then a message on web1's own topic, only the latter arrives.
    let spy = broker.subscribe(
        "collectd/web2/command",
        1,
        &[
            "-t",
            "collectd/web1/command",
            "-v",
            "-u",
            "web1",
            "-P",
            "web1-secret",
        ],
    );
    let to_web2 = json!({"task_id": 71, "timestamp": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(), "service": "hello", "command": "exec"});
    assert!(
        broker
            .publish(
                "collectd/web2/command",
                &to_web2.to_string(),
                &as_controller
            )
            .status
            .success()
    );
    assert!(
        broker
            .publish("collectd/web1/command", "barrier", &as_controller)
            .status
            .success()
    );
    assert_eq!(
        spy.messages(),
        vec!["collectd/web1/command barrier".to_string()]
    );

    // web1's credentials cannot answer for web2: of a forged result on
    // web2's topic and then one on web1's own, only the latter arrives.
    let results = broker.subscribe("collectd/+/result", 100, &as_controller);
    let forged =
        json!({"task_id": 72, "timestamp": "2026-11-25T00:00:00Z", "message": "forged", "code": 0});
    let as_web1 = ["-u", "web1", "-P", "web1-secret"];
    broker.publish("collectd/web2/result", &forged.to_string(), &as_web1);
    let own =
        json!({"task_id": 73, "timestamp": "2026-11-25T00:00:00Z", "message": "own", "code": 0});
    assert!(
        broker
            .publish("collectd/web1/result", &own.to_string(), &as_web1)
            .status
            .success()
    );
    // (web2's own answer to task 71 may still come in between, on a busy
    // machine: it is web2's to send.)
    let got = result_codes(&results.until(|m| result_codes(m).iter().any(|(id, _)| *id == 73)));
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert!(!ids.contains(&72), "the forged result arrived: {got:?}");
    assert!(ids.iter().all(|id| [71, 73].contains(id)), "{got:?}");
}
