//! One command to many hosts: ten real collectd instances (distinct host
//! names and state directories) on one real mosquitto, `send-command`
//! with `--hosts`, `--online` and the error budget; a host whose command
//! fails, and one that is not running.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Output};

const HOSTS: usize = 10;
/// Killed before the commands: its requests time out.
const OFFLINE: &str = "web7";
/// Its hello/exec exits 3.
const FAILING: &str = "web3";

fn start(broker: &Mosquitto, hostname: &str, state: &std::path::Path) -> Collectd {
    let exec = if hostname == FAILING {
        "echo broken; exit 3"
    } else {
        "echo hi"
    };
    let config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "StatusTopic": "collectd/%{hostname}/status",
        "StateDir": state.join(hostname),
        "Services": {"hello": {"commands": {"exec": exec}}},
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

/// `send-command hello exec` with `extra`: exit status and each host's
/// outcome.
fn send(broker: &Mosquitto, extra: &[&str]) -> (Option<i32>, BTreeMap<String, Value>) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", "hello", "exec"])
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["-t", "collectd/%{hostname}/command"])
        .args(["--result-topic", "collectd/%{hostname}/result"])
        // Per host; generous, so that only the stopped host times out
        // on a busy machine.
        .args(["--timeout", "30", "--json"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code(), by_host(&out.stdout))
}

/// `--json` output: each host's outcome line, by host.
fn by_host(stdout: &[u8]) -> BTreeMap<String, Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["host"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn a_command_fans_out_to_the_fleet_within_its_concurrency_and_error_budget() {
    let broker = Mosquitto::start();
    let state = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..HOSTS).map(|i| format!("web{i}")).collect();
    let mut fleet: Vec<Collectd> = names
        .iter()
        .map(|n| start(&broker, n, state.path()))
        .collect();
    // All ten online; then one is killed, and the broker marks it offline
    // (its last will).
    let online = |broker: &Mosquitto| -> BTreeMap<String, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(["hosts", "--host", &format!("127.0.0.1:{}", broker.port)])
            .args(["--status-topic", "collectd/+/status", "--json"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["hostname"].as_str().unwrap().to_string(),
                    v["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    common::wait_for("ten hosts online", || {
        let f = online(&broker);
        (f.len() == HOSTS && f.values().all(|s| s == "online")).then_some(())
    });
    fleet[7].crash();
    common::wait_for("the killed host offline", || {
        (online(&broker).get(OFFLINE).map(String::as_str) == Some("offline")).then_some(())
    });

    // Every host named: the failing one answers 3, the stopped one times
    // out, the others run it; with the budget at 100 % nothing is held back.
    let all = names.join(",");
    let (status, outcomes) = send(
        &broker,
        &[
            "--hosts",
            &all,
            "--max-concurrency",
            "3",
            "--max-errors",
            "100%",
        ],
    );
    assert_eq!(status, Some(1), "{outcomes:?}");
    assert_eq!(outcomes.len(), HOSTS, "{outcomes:?}");
    for (host, o) in &outcomes {
        match host.as_str() {
            FAILING => {
                assert_eq!(
                    (&o["outcome"], &o["code"]),
                    (&json!("result"), &json!(3)),
                    "{o}"
                );
                assert_eq!(o["message"], "broken");
            }
            OFFLINE => assert_eq!(o["outcome"], "timed_out", "{o}"),
            _ => assert_eq!(
                (&o["outcome"], &o["code"]),
                (&json!("result"), &json!(0)),
                "{o}"
            ),
        }
    }

    // One at a time, no error allowed: the failing host first stops the
    // rest, which are never sent the request.
    let (status, outcomes) = send(
        &broker,
        &[
            "--hosts",
            "web3,web0,web1,web2",
            "--max-concurrency",
            "1",
            "--max-errors",
            "0",
        ],
    );
    assert_eq!(status, Some(1));
    assert_eq!(outcomes["web3"]["code"], 3);
    for host in ["web0", "web1", "web2"] {
        assert_eq!(outcomes[host]["outcome"], "not_sent", "{outcomes:?}");
    }

    // The hosts online whose name matches: the stopped one is not among
    // them, so nothing times out.
    let (status, outcomes) = send(
        &broker,
        &[
            "--online",
            "web*",
            "--status-topic",
            "collectd/+/status",
            "--max-concurrency",
            "50%",
            "--max-errors",
            "1",
        ],
    );
    assert_eq!(status, Some(1), "{outcomes:?}");
    assert_eq!(outcomes.len(), HOSTS - 1, "{outcomes:?}");
    assert!(!outcomes.contains_key(OFFLINE));
    assert_eq!(
        outcomes.values().filter(|o| o["code"] == 0).count(),
        HOSTS - 2,
        "{outcomes:?}"
    );

    // All succeed: exit 0.
    let (status, outcomes) = send(&broker, &["--hosts", "web0,web1,web2,web4"]);
    assert_eq!(status, Some(0), "{outcomes:?}");

    // A staged config rollout whose canary refuses the config: the other
    // hosts are never tried. `%{hostname}` is each host's own name.
    let conf = state.path().join("push.conf");
    std::fs::write(&conf, "LoadPlugin %{hostname}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .arg("send-config")
        .arg(&conf)
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["-t", "collectd/%{hostname}/command"])
        .args(["--result-topic", "collectd/%{hostname}/result"])
        .args(["--timeout", "30", "--json"])
        .args(["--hosts", "web0,web1,web2,web4,web5"])
        .args(["--canary", "1", "--wave-size", "2", "--max-errors", "100%"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let outcomes = by_host(&out.stdout);
    assert_eq!(outcomes["web0"]["code"], 0x2002, "{outcomes:?}");
    assert!(
        outcomes["web0"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("LoadPlugin \"web0\"")),
        "{outcomes:?}"
    );
    for host in ["web1", "web2", "web4", "web5"] {
        assert_eq!(outcomes[host]["outcome"], "not_sent", "{outcomes:?}");
    }
}

/// A request that timed out before its host took it is not run later: the
/// broker keeps it for the host's persistent session only until the
/// sender's timeout (MQTT 5 message expiry), then discards it.
#[test]
fn a_request_that_timed_out_undelivered_never_runs_later() {
    let broker = Mosquitto::start();
    let state = tempfile::tempdir().unwrap();
    let config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "collectd/%{hostname}/command",
        "CommandResultTopic": "collectd/%{hostname}/result",
        "StateDir": state.path().join("late"),
        "CleanSession": false,
        "QoS": 1,
        "ClientId": "late-host",
        "Services": {"hello": {"commands": {"exec": "echo hi"}}},
    });
    let mut late = Collectd::start(CollectdSpec {
        hostname: "late".into(),
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        ..Default::default()
    });
    let listening = "listening for commands on collectd/late/command";
    late.wait_for_log(listening);
    assert!(late.stop().success());
    let send = |timeout: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(["send-command", "hello", "exec", "--hosts", "late"])
            .args(["--host", &format!("127.0.0.1:{}", broker.port)])
            .args(["-t", "collectd/%{hostname}/command"])
            .args(["--result-topic", "collectd/%{hostname}/result"])
            .args(["--timeout", timeout])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // (Brokers count whole seconds: a timeout of 4 s expires the request
    // within 3.)
    let first = send("4");
    assert!(
        first.contains("timed out, no answer in time (1): late"),
        "{first}"
    );
    assert!(first.contains("expires there and never runs"), "{first}");
    late.start_again();
    late.wait_until("the host back", || {
        (late.log_text().matches(listening).count() == 2).then_some(())
    });
    // The broker hands a persistent session what it kept, in order: had it
    // kept the first request, it would run before this one.
    let second = send("60");
    assert!(second.contains("ok (1): late"), "{second}");
    let log = late.log_text();
    assert_eq!(log.matches(": running hello/exec").count(), 1, "{log}");
}

/// `send-command hello exec --hosts ghost1` (with `extra`) while a forger
/// answers its request on `topic`: each host's outcome, and stderr.
fn forged_answer(
    broker: &Mosquitto,
    topic: &str,
    extra: &[&str],
) -> (BTreeMap<String, Value>, String) {
    let requests = broker.subscribe("collectd/+/command", 1, &["-q", "1"]);
    let sender = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", "hello", "exec", "--hosts", "ghost1"])
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["-t", "collectd/%{hostname}/command"])
        .args(["--result-topic", "collectd/%{hostname}/result"])
        .args(["--timeout", "5", "--json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request: Value = serde_json::from_str(&requests.messages()[0]).unwrap();
    let forged = json!({
        "task_id": request["task_id"],
        "timestamp": "2026-01-01T00:00:00Z",
        "message": "forged",
        "code": 0,
    });
    let out = broker.publish(topic, &forged.to_string(), &["-q", "1"]);
    assert!(out.status.success());
    let out = sender.wait_with_output().unwrap();
    (
        by_host(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A client that may read the command topics and write one result topic of
/// its own cannot answer for the fleet: a host's result counts only on that
/// host's result topic.
#[test]
fn a_result_counts_only_on_its_hosts_own_topic() {
    let broker = Mosquitto::start();
    let (hosts, _) = forged_answer(&broker, "collectd/evil/result", &[]);
    assert_eq!(hosts["ghost1"]["outcome"], "timed_out", "{hosts:?}");
}

/// Hosts sign their results with a key of their own, announced in their
/// presence: with the keys `hosts --keys` printed, a fan-out counts a
/// result only with its host's signature, even one written on the host's
/// own result topic.
#[test]
fn signed_results_tell_the_host_from_anyone_who_can_write_its_topic() {
    let broker = Mosquitto::start();
    let state = tempfile::tempdir().unwrap();
    let _hosts: Vec<Collectd> = ["web1", "web2"]
        .iter()
        .map(|n| start(&broker, n, state.path()))
        .collect();
    let keys_file = state.path().join("host-keys");
    let keys = common::wait_for("both hosts' result keys", || {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args([
                "hosts",
                "--keys",
                "--host",
                &format!("127.0.0.1:{}", broker.port),
            ])
            .args(["--status-topic", "collectd/+/status"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.lines().count() == 2).then_some(text)
    });
    assert!(keys.starts_with("web1 ed25519 "), "{keys}");
    // A host that has not announced a key yet: its result cannot count.
    std::fs::write(
        &keys_file,
        format!("{keys}ghost1 ed25519 {}\n", "A".repeat(43) + "="),
    )
    .unwrap();
    let keys_arg = keys_file.to_str().unwrap();
    let (status, outcomes) = send(&broker, &["--hosts", "web1,web2", "--host-keys", keys_arg]);
    assert_eq!(status, Some(0), "{outcomes:?}");
    assert!(outcomes.values().all(|o| o["code"] == 0), "{outcomes:?}");

    // A forged result on ghost1's own topic (an ACL mistake lets someone
    // write it): ignored with the keys, counted without them.
    let own_topic = "collectd/ghost1/result";
    let (hosts, stderr) = forged_answer(&broker, own_topic, &["--host-keys", keys_arg]);
    assert_eq!(hosts["ghost1"]["outcome"], "timed_out", "{hosts:?}");
    assert!(
        stderr.contains("without ghost1's signature is ignored"),
        "{stderr}"
    );
    let (hosts, _) = forged_answer(&broker, own_topic, &[]);
    assert_eq!(hosts["ghost1"]["outcome"], "result", "{hosts:?}");
}
