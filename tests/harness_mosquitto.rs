//! The broker harness the MQTT tests stand on: a real mosquitto on a free
//! loopback port, with optional users, ACLs and TLS, reached by real clients.

mod common;
use common::{Mosquitto, MosquittoSpec};

#[test]
fn anonymous_broker_delivers_messages() {
    let broker = Mosquitto::start();
    let sub = broker.subscribe("test/topic", 1, &["-q", "1"]);
    assert!(
        broker
            .publish("test/topic", "ping", &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(sub.messages(), vec!["ping"]);
}

#[test]
fn users_and_acls_are_enforced() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        users: vec![("alice".into(), "secret".into())],
        acl: Some("user alice\ntopic readwrite allowed/#\n".into()),
        ..Default::default()
    });
    let alice = ["-u", "alice", "-P", "secret"];
    let sub = broker.subscribe("allowed/x", 1, &alice);
    assert!(broker.publish("allowed/x", "ping", &alice).status.success());
    assert_eq!(sub.messages(), vec!["ping"]);
    let refused = broker.publish("allowed/x", "m", &["-u", "alice", "-P", "wrong"]);
    assert!(
        !refused.status.success(),
        "a wrong password must be refused"
    );
    let anonymous = broker.publish("allowed/x", "m", &[]);
    assert!(
        !anonymous.status.success(),
        "anonymous access must be refused"
    );
}

#[test]
fn tls_listener_serves_the_test_ca_and_survives_a_restart() {
    let mut broker = Mosquitto::start_with(MosquittoSpec {
        tls: true,
        persistent: true,
        ..Default::default()
    });
    let sub = broker.subscribe("t", 1, &[]);
    assert!(broker.publish("t", "secure", &[]).status.success());
    assert_eq!(sub.messages(), vec!["secure"]);
    let plain = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-t",
            "t",
            "-m",
            "x",
        ])
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "a plain-text client must not get through a TLS listener"
    );
    broker.restart();
    assert!(broker.publish("t", "again", &[]).status.success());
}
