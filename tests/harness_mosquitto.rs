//! The broker harness the MQTT tests stand on: a real mosquitto on a free
//! loopback port, with optional users and ACLs, reached by real clients.

mod common;
use common::{Mosquitto, MosquittoSpec, wait_for};
use std::process::{Command, Stdio};

fn publish(
    port: u16,
    auth: Option<(&str, &str)>,
    topic: &str,
    message: &str,
) -> std::process::Output {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        message,
    ]);
    if let Some((user, password)) = auth {
        cmd.args(["-u", user, "-P", password]);
    }
    cmd.output()
        .expect("run mosquitto_pub (Debian package mosquitto-clients)")
}

/// Subscribes with mosquitto_sub, waits until the broker has the
/// subscription, publishes, and returns what the subscriber received.
fn round_trip(broker: &Mosquitto, auth: Option<(&str, &str)>, topic: &str) -> String {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
        "-C",
        "1",
        "-W",
        "30",
    ]);
    cmd.args(["-i", "harness-sub"]);
    if let Some((user, password)) = auth {
        cmd.args(["-u", user, "-P", password]);
    }
    let sub = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mosquitto_sub");
    wait_for("the subscription to reach the broker", || {
        broker.log_text().contains("harness-sub 1 ").then_some(())
    });
    let out = publish(broker.port, auth, topic, "ping");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sub.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn anonymous_broker_delivers_messages() {
    let broker = Mosquitto::start();
    assert_eq!(round_trip(&broker, None, "test/topic"), "ping");
}

#[test]
fn users_and_acls_are_enforced() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        users: vec![("alice".into(), "secret".into())],
        acl: Some("user alice\ntopic readwrite allowed/#\n".into()),
    });
    assert_eq!(
        round_trip(&broker, Some(("alice", "secret")), "allowed/x"),
        "ping"
    );
    let refused = publish(broker.port, Some(("alice", "wrong")), "allowed/x", "m");
    assert!(
        !refused.status.success(),
        "a wrong password must be refused"
    );
    let anonymous = publish(broker.port, None, "allowed/x", "m");
    assert!(
        !anonymous.status.success(),
        "anonymous access must be refused"
    );
}
