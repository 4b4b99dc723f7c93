//! Remote commands end to end: real mosquitto, real collectd running the
//! plugin, real clients (`collectd-monitor send-command`, mosquitto_pub/sub).

mod common;
use common::{
    Collectd, CollectdSpec, Mosquitto, MosquittoSpec, memory_kib, result_codes as codes, wait_for,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};
use tempfile::TempDir;

const COMMANDS: &str = "cmd/testhost";
const RESULTS: &str = "res/testhost";

/// Files a test's commands write, outside collectd's own directory.
struct Work {
    dir: TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn ran_log(&self) -> PathBuf {
        self.dir.path().join("ran.log")
    }
    /// Touched by `slow_append` as it starts.
    fn started_marker(&self) -> PathBuf {
        self.dir.path().join("started")
    }
    /// How many times the `append` command ran.
    fn runs(&self) -> usize {
        std::fs::read_to_string(self.ran_log()).map_or(0, |t| t.lines().count())
    }
}

/// config.json for a plugin talking to `broker`, merged with `extra`.
fn remote_config(broker: &Mosquitto, work: &Work, extra: Value) -> String {
    let mut config = json!({
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "cmd/%{hostname}",
        "CommandResultTopic": "res/%{hostname}",
        "ReconnectInterval": 1,
        "StateDir": work.dir.path().join("state"),
        "Services": {
            "hello": {"commands": {
                "exec": "/bin/echo \"Hello World!\"",
                "fail": "echo failing; exit 3",
                "append": format!("echo ran >> {}", work.ran_log().display()),
                "slow": "sleep 2; echo slept",
                "slow_append": format!(
                    "touch {}; sleep 2; echo ran >> {}",
                    work.started_marker().display(),
                    work.ran_log().display()
                ),
                "slower_append": format!(
                    "touch {}; sleep 10; echo ran >> {}",
                    work.started_marker().display(),
                    work.ran_log().display()
                )
            }}
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

/// collectd with the plugin configured for `broker`, not yet connected.
fn launch_collectd(broker: &Mosquitto, work: &Work, extra: Value) -> Collectd {
    Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((remote_config(broker, work, extra), 0o600)),
        ..Default::default()
    })
}

/// collectd with the plugin subscribed to the command topic.
fn start_collectd(broker: &Mosquitto, work: &Work, extra: Value) -> Collectd {
    let mut c = launch_collectd(broker, work, extra);
    c.wait_for_log(&format!("remote: listening for commands on {COMMANDS}"));
    c
}

fn send_command(broker: &Mosquitto, service: &str, command: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", service, command])
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args([
            "--topic",
            COMMANDS,
            "--result-topic",
            RESULTS,
            "--timeout",
            "30",
        ])
        .args(extra)
        .output()
        .expect("run collectd-monitor send-command")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn command_message(task_id: u64, command: &str) -> String {
    json!({"task_id": task_id, "timestamp": now(), "service": "hello", "command": command})
        .to_string()
}

#[test]
fn send_command_runs_hello_exec_and_prints_its_output() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let mut collectd = start_collectd(&broker, &work, json!({}));
    // Without TrustedKeys, as lua-collectd-monitor: said once at start.
    collectd.wait_for_log("remote: requests are not authenticated (no TrustedKeys)");
    let out = send_command(&broker, "hello", "exec", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("code 0") && stdout.lines().any(|l| l == "Hello World!"),
        "{stdout}"
    );
}

#[test]
fn the_exit_status_is_reported_from_inside_collectd() {
    // collectd ignores SIGCHLD; the status must still come through.
    let broker = Mosquitto::start();
    let work = Work::new();
    let _collectd = start_collectd(&broker, &work, json!({}));
    let out = send_command(&broker, "hello", "fail", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (result["code"].as_i64(), result["message"].as_str()),
        (Some(3), Some("failing"))
    );
}

#[test]
fn unknown_services_and_commands_get_their_codes() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let _collectd = start_collectd(&broker, &work, json!({}));
    for (service, command, code) in [("nginx", "restart", 0x1002), ("hello", "rm", 0x1003)] {
        let out = send_command(&broker, service, command, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["code"].as_i64(), Some(code), "{result}");
    }
}

#[test]
fn malformed_and_huge_messages_change_nothing() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let mut collectd = start_collectd(&broker, &work, json!({}));
    let results = broker.subscribe(RESULTS, 1, &[]);
    for garbage in [
        "garbage".to_string(),
        "[1,2,3]".into(),
        json!({"task_id": "12", "timestamp": now(), "service": "hello", "command": "append"})
            .to_string(),
        json!({"timestamp": now(), "service": "hello", "command": "append"}).to_string(),
    ] {
        assert!(
            broker
                .publish(COMMANDS, &garbage, &["-q", "1"])
                .status
                .success()
        );
    }
    // Just over MaxPayloadBytes (1 MiB): the plugin reads and drops it.
    // 64 MiB: the plugin told the broker in CONNECT (MQTT 5's Maximum
    // Packet Size) not to send it, so collectd never holds it in memory.
    for (name, padding) in [("big", 1024 * 1024), ("huge", 64 * 1024 * 1024)] {
        let path = work.dir.path().join(name);
        let mut big = command_message(1, "append");
        big.push_str(&" ".repeat(padding));
        std::fs::write(&path, big).unwrap();
        let out = Command::new("mosquitto_pub")
            .args(broker.client_args())
            .args(["-t", COMMANDS, "-q", "1", "-f", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // A message with a task id but a missing field is answered.
    let incomplete = json!({"task_id": 77, "timestamp": now(), "service": "hello"}).to_string();
    assert!(
        broker
            .publish(COMMANDS, &incomplete, &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&results.messages()), vec![(77, 0x100B)]);

    collectd.wait_for_log("dropping a message on cmd/testhost: not JSON");
    collectd.wait_for_log("dropping a message on cmd/testhost: not a JSON object");
    collectd.wait_for_log("task_id must be a non-negative JSON integer");
    collectd.wait_for_log("dropping a message on cmd/testhost: no task_id");
    collectd.wait_for_log("larger than MaxPayloadBytes");
    collectd.wait_until("the broker to drop the 64 MiB message", || {
        broker
            .log_text()
            .contains("Dropping too large outgoing PUBLISH")
            .then_some(())
    });
    let peak = memory_kib("VmHWM", collectd.pid());
    assert!(
        peak < 60 * 1024,
        "collectd's peak memory is {peak} KiB: the 64 MiB message was read"
    );
    assert_eq!(work.runs(), 0, "nothing may run");
    let out = send_command(&broker, "hello", "exec", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "collectd's plugin must still answer: {}",
        text(&out.stderr)
    );
}

#[test]
fn a_task_id_runs_once_also_after_a_restart() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let mut collectd = start_collectd(&broker, &work, json!({}));
    let message = command_message(4242, "append");
    let results = broker.subscribe(RESULTS, 2, &["-q", "1"]);
    assert!(
        broker
            .publish(COMMANDS, &message, &["-q", "1"])
            .status
            .success()
    );
    collectd.wait_for_log("task 4242: hello/append finished");
    assert!(
        broker
            .publish(COMMANDS, &message, &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&results.messages()), vec![(4242, 0), (4242, 0x1100)]);
    assert_eq!(work.runs(), 1);

    collectd.restart();
    collectd.wait_for_log("remote: listening for commands");
    let results = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    assert!(
        broker
            .publish(COMMANDS, &message, &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&results.messages()), vec![(4242, 0x1100)]);
    assert_eq!(work.runs(), 1);
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let _collectd = start_collectd(&broker, &work, json!({"CommandMaxAge": 60}));
    let results = broker.subscribe(RESULTS, 2, &[]);
    for (id, stamp) in [(1, "2020-11-26T00:41:19Z"), (2, "2999-01-01T00:00:00Z")] {
        let m = json!({"task_id": id, "timestamp": stamp, "service": "hello", "command": "append"})
            .to_string();
        assert!(broker.publish(COMMANDS, &m, &[]).status.success());
    }
    let mut got = codes(&results.messages());
    got.sort();
    assert_eq!(got, vec![(1, 0x1006), (2, 0x1006)]);
    assert_eq!(work.runs(), 0);
}

#[test]
fn retained_messages_are_never_executed() {
    let broker = Mosquitto::start();
    let work = Work::new();
    assert!(
        broker
            .publish(COMMANDS, &command_message(5, "append"), &["-r", "-q", "1"])
            .status
            .success()
    );
    let mut collectd = start_collectd(&broker, &work, json!({}));
    collectd.wait_for_log("ignoring a retained message on cmd/testhost");
    let out = send_command(&broker, "hello", "exec", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(work.runs(), 0);
}

fn commands_sent_while_down_run_once(qos: u8) {
    let broker = Mosquitto::start();
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": qos, "ClientId": "persistent-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    assert!(collectd.stop().success());
    let qos = qos.to_string();
    let results = broker.subscribe(RESULTS, 1, &["-q", &qos]);
    let sent = broker.publish(COMMANDS, &command_message(900, "append"), &["-q", &qos]);
    assert!(sent.status.success());
    collectd.start_again();
    collectd.wait_for_log("session present: true");
    assert_eq!(codes(&results.messages()), vec![(900, 0)]);
    assert_eq!(work.runs(), 1);
}

#[test]
fn commands_sent_while_collectd_is_down_run_once_when_it_returns_qos1() {
    commands_sent_while_down_run_once(1);
}

#[test]
fn commands_sent_while_collectd_is_down_run_once_when_it_returns_qos2() {
    commands_sent_while_down_run_once(2);
}

/// Publishes `message` at QoS 1 for a command that touches the started
/// marker, and waits until it runs (the log line alone comes too early to
/// crash on).
fn start_marked_task(broker: &Mosquitto, collectd: &Collectd, work: &Work, message: &str) {
    assert!(
        broker
            .publish(COMMANDS, message, &["-q", "1"])
            .status
            .success()
    );
    collectd.wait_until("the command to start", || {
        work.started_marker().exists().then_some(())
    });
}

#[test]
fn a_command_interrupted_by_a_crash_is_reported_and_not_run_again() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "crash-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    let message =
        json!({"task_id": 66, "timestamp": now(), "service": "hello", "command": "slow_append"});
    let message = message.to_string();
    let results = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    start_marked_task(&broker, &collectd, &work, &message);
    collectd.crash();
    collectd.start_again();
    let result = results.messages();
    assert_eq!(codes(&result), vec![(66, 0x1009)], "{result:?}");
    // The orphaned command finishes on its own; nothing starts it again.
    wait_for("the interrupted command to finish", || {
        (work.runs() == 1).then_some(())
    });
    assert!(
        broker
            .publish(COMMANDS, &message, &["-q", "1"])
            .status
            .success()
    );
    collectd.wait_for_log("task 66 refused (code 0x1100)");
    assert_eq!(work.runs(), 1);
}

#[test]
fn a_broker_that_is_down_at_start_is_reached_when_it_comes_up() {
    let port = common::free_port();
    let work = Work::new();
    let absent = Mosquitto::start_with(MosquittoSpec {
        port: Some(port),
        ..Default::default()
    });
    let config = remote_config(&absent, &work, json!({}));
    drop(absent);
    let mut collectd = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config, 0o600)),
        ..Default::default()
    });
    let line = collectd.wait_for_log("retrying in");
    assert!(
        line.contains("[warning]") && line.contains(&port.to_string()),
        "{line}"
    );
    let broker = Mosquitto::start_with(MosquittoSpec {
        port: Some(port),
        ..Default::default()
    });
    collectd.wait_for_log(&format!("listening for commands on {COMMANDS}"));
    let out = send_command(&broker, "hello", "exec", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A persistent subscriber session on the result topic, registered with the
/// broker (which then queues results while it is away); its mosquitto_sub
/// arguments.
fn persistent_reader(broker: &Mosquitto, id: &'static str) -> [&'static str; 5] {
    let session = ["-q", "1", "-c", "-i", id];
    let first = Command::new("mosquitto_sub")
        .args(broker.client_args())
        .args(["-t", RESULTS, "-C", "1", "-W", "1"])
        .args(session)
        .output()
        .unwrap();
    assert!(
        !first.status.success() || first.stdout.is_empty(),
        "no result may exist yet"
    );
    session
}

#[test]
fn a_broker_restart_during_a_command_loses_no_result() {
    let mut broker = Mosquitto::start_with(MosquittoSpec {
        persistent: true,
        ..Default::default()
    });
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "restart-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    let session = persistent_reader(&broker, "result-reader");
    assert!(
        broker
            .publish(COMMANDS, &command_message(31, "slow"), &["-q", "1"])
            .status
            .success()
    );
    collectd.wait_for_log("task 31: running hello/slow");
    broker.restart();
    collectd.wait_for_log("reconnected to broker");
    collectd.wait_for_log("task 31: hello/slow finished");
    let out = Command::new("mosquitto_sub")
        .args(broker.client_args())
        .args(["-t", RESULTS, "-C", "1", "-W", "30"])
        .args(session)
        .output()
        .unwrap();
    let messages: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(codes(&messages), vec![(31, 0)], "{}", text(&out.stderr));
    assert!(messages[0].contains("slept"));
}

/// Results that wait while the broker is away go out with the host's
/// presence message when it returns (`StatusTopic`); collectd then
/// crashes. Each result is confirmed by its own acknowledgement, never by
/// the presence message's: every one reaches the reader, from the first
/// run or sent again by the next one.
#[test]
fn results_waiting_with_presence_survive_a_crash() {
    let mut broker = Mosquitto::start_with(MosquittoSpec {
        persistent: true,
        ..Default::default()
    });
    let work = Work::new();
    let commands: serde_json::Map<String, Value> = (1..=4)
        .map(|i| (format!("s{i}"), json!(format!("sleep 1; echo result {i}"))))
        .collect();
    let extra = json!({
        "CleanSession": false, "QoS": 1, "ClientId": "presence-test",
        "StatusTopic": "status/%{hostname}",
        "Services": {"hello": {"commands": commands}},
    });
    let mut collectd = start_collectd(&broker, &work, extra);
    let session = persistent_reader(&broker, "presence-reader");
    for i in 1..=4u64 {
        let message = json!({"task_id": 70 + i, "timestamp": now(), "service": "hello", "command": format!("s{i}")});
        let out = broker.publish(COMMANDS, &message.to_string(), &["-q", "1"]);
        assert!(out.status.success());
    }
    collectd.wait_until("four commands running", || {
        (collectd.log_text().matches(": running hello/s").count() == 4).then_some(())
    });
    broker.stop();
    collectd.wait_until("four results waiting for the broker", || {
        (collectd.log_text().matches("finished with code 0").count() == 4).then_some(())
    });
    broker.start_again();
    collectd.wait_for_log("reconnected to broker");
    collectd.crash();
    collectd.start_again();
    let out = Command::new("mosquitto_sub")
        .args(broker.client_args())
        .args(["-t", RESULTS, "-C", "4", "-W", "60"])
        .args(session)
        .output()
        .unwrap();
    let messages: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let mut ids: Vec<u64> = codes(&messages).iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids,
        vec![71, 72, 73, 74],
        "{messages:?} {}",
        text(&out.stderr)
    );
}

#[test]
fn tls_is_verified_against_the_configured_ca() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        tls: true,
        ..Default::default()
    });
    let ca = broker.tls.as_ref().unwrap().ca_cert.clone();
    let work = Work::new();
    let _collectd = start_collectd(&broker, &work, json!({"Secure": true, "CACert": ca}));
    let out = send_command(&broker, "hello", "exec", &["--ca", ca.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Hello World!"));

    let out = send_command(&broker, "hello", "exec", &["--tls"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("certificate"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_untrusted_broker_certificate_is_refused_and_logged() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        tls: true,
        ..Default::default()
    });
    let work = Work::new();
    let other_ca = tempfile::tempdir().unwrap();
    let other = common::TestCa::create(other_ca.path());
    let mut collectd = launch_collectd(
        &broker,
        &work,
        json!({"Secure": true, "CACert": other.ca_cert}),
    );
    let line = collectd.wait_for_log("TLS handshake failed");
    assert!(
        line.contains("[error]") && line.contains("retrying"),
        "{line}"
    );
}

/// Connection attempts the broker has seen so far.
fn attempts(broker: &Mosquitto) -> usize {
    broker
        .log_text()
        .matches("New connection from 127.0.0.1")
        .count()
}

#[test]
fn a_wrong_password_is_logged_and_retried_with_backoff() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        users: vec![("collectd".into(), "right".into())],
        ..Default::default()
    });
    let work = Work::new();
    let mut collectd = launch_collectd(
        &broker,
        &work,
        json!({"User": "collectd", "Password": "wrong"}),
    );
    let line = collectd.wait_for_log("the broker refused the login");
    assert!(
        line.contains("[error]") && line.contains("User/Password"),
        "{line}"
    );
    // Backoff doubles from 1 s: by the 4th attempt about 7 s have passed. A
    // busy loop would have made thousands of attempts by then.
    wait_for("four connection attempts", || {
        (attempts(&broker) >= 4).then_some(())
    });
    let attempts_now = attempts(&broker);
    assert!(
        attempts_now <= 5,
        "{attempts_now} attempts: reconnection is not backing off"
    );
    let log = collectd.log_text();
    assert_eq!(
        log.matches("refused the login").count(),
        1,
        "one error per incident:\n{log}"
    );
}

#[test]
fn an_acl_refusal_of_the_command_topic_is_logged() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        dynsec_users: vec![("collectd".into(), "pw".into())],
        ..Default::default()
    });
    let work = Work::new();
    let mut collectd = launch_collectd(
        &broker,
        &work,
        json!({"User": "collectd", "Password": "pw"}),
    );
    let line = collectd.wait_for_log("refused the subscription to cmd/testhost");
    assert!(line.contains("[error]"), "{line}");
}

#[test]
fn an_incomplete_remote_configuration_disables_remote_commands_only() {
    let mut collectd = Collectd::start(CollectdSpec {
        monitor_block: "Host \"127.0.0.1:1\"\nLogDevice \"stdout\"\nLogLevel \"debug\"".into(),
        ..Default::default()
    });
    // LogDevice "stdout": our own lines go to collectd's stdout.
    collectd.wait_for_stdout(
        "[error] monitor: remote commands disabled: Host is set but CommandTopic is not",
    );
    collectd.wait_for_log(
        "Notification: severity = FAILURE, host = testhost, plugin = monitor, type = config",
    );
    // The rest of the plugin still works: values still reach the engine.
    collectd.putval("testhost/memory/memory-free N:1");
    collectd.wait_for_stdout(r#""plugin":"memory""#);
}

#[test]
fn a_broker_requiring_client_certificates_is_reached_with_one() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        tls: true,
        require_client_cert: true,
        ..Default::default()
    });
    let ca = broker.tls.as_ref().unwrap();
    let (ca_file, cert, key) = (
        ca.ca_cert.clone(),
        ca.client_cert.clone(),
        ca.client_key.clone(),
    );
    let work = Work::new();
    // "CAFile" is accepted as another name of CACert.
    let tls = json!({"Secure": true, "CAFile": ca_file, "CertificateFile": cert, "CertificateKeyFile": key});
    let _collectd = start_collectd(&broker, &work, tls);
    let ca_arg = ca_file.to_str().unwrap();
    let with_cert = [
        "--ca",
        ca_arg,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let out = send_command(&broker, "hello", "exec", &with_cert);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = send_command(&broker, "hello", "exec", &["--ca", ca_arg]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a client without a certificate must be refused"
    );
}

#[test]
fn refusals_never_overwrite_a_running_task_or_grow_the_journal() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "refusal-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    let refusals = broker.subscribe(RESULTS, 22, &["-q", "1"]);
    let running =
        json!({"task_id": 67, "timestamp": now(), "service": "hello", "command": "slower_append"});
    start_marked_task(&broker, &collectd, &work, &running.to_string());
    // The same id again, and a malformed request reusing it: both refused.
    // Neither may take the running task's place in the journal.
    let duplicate =
        json!({"task_id": 67, "timestamp": now(), "service": "hello", "command": "exec"});
    assert!(
        broker
            .publish(COMMANDS, &duplicate.to_string(), &["-q", "1"])
            .status
            .success()
    );
    let malformed = json!({"task_id": 67, "timestamp": now(), "service": "hello"});
    assert!(
        broker
            .publish(COMMANDS, &malformed.to_string(), &["-q", "1"])
            .status
            .success()
    );
    // Refusals with large unknown fields, for ids never accepted: answered,
    // but nothing of them belongs in the journal.
    let field = "x".repeat(100_000);
    for id in 1000..1020u64 {
        let m = format!(
            r#"{{"task_id": {id}, "timestamp": "{}", "{field}": 1}}"#,
            now()
        );
        assert!(broker.publish(COMMANDS, &m, &["-q", "1"]).status.success());
    }
    let refused = codes(&refusals.messages());
    assert_eq!(refused.len(), 22, "{refused:?}");
    assert!(refused.iter().all(|(_, code)| *code != 0), "{refused:?}");
    let journal = work.dir.path().join("state/tasks.journal");
    let size = std::fs::metadata(&journal).unwrap().len();
    assert!(size < 16 * 1024, "the journal grew to {size} bytes");
    let after = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    collectd.crash();
    collectd.start_again();
    // The running task is reported as interrupted after the crash.
    assert_eq!(codes(&after.messages()), vec![(67, 0x1009)]);
    wait_for("the interrupted command to finish", || {
        (work.runs() == 1).then_some(())
    });
}

#[test]
fn untrusted_text_cannot_forge_log_lines() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let mut collectd = start_collectd(&broker, &work, json!({}));
    let forged = "[info] monitor: remote: task 4242: running nginx/restart";
    let field = format!("x\n{forged}");
    let message = json!({"task_id": 4243, "timestamp": now(), "service": "hello", "command": "exec", field: 1});
    let results = broker.subscribe(RESULTS, 1, &[]);
    assert!(
        broker
            .publish(COMMANDS, &message.to_string(), &[])
            .status
            .success()
    );
    assert_eq!(codes(&results.messages()), vec![(4243, 0x100B)]);
    let line = collectd.wait_for_log("refusing task 4243");
    assert!(line.contains(&format!("x\\n{forged}")), "{line}");
    let log = collectd.log_text();
    assert!(
        !log.lines()
            .any(|l| l.starts_with(forged) || l.contains(&format!("] {forged}"))),
        "{log}"
    );
}

/// A tmpfs of `size` mounted on `dir` for the length of a test (the tests
/// run as root, as CI does); unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            text(&out.stderr)
        );
        SmallDisk { dir }
    }

    /// Fills the file system to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.dir.join("filler")).unwrap();
        while filler.write_all(&[0u8; 512]).is_ok() {}
        let _ = filler.write_all(&[0u8; 1]);
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_refuses_tasks_and_at_most_once_survives_it() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let disk = SmallDisk::mount(work.dir.path().join("state"), "64k");
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "full-disk-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    disk.fill();
    // Commands until one cannot be recorded: each is answered, none is
    // left to be delivered again, and the refused one does not run.
    let mut refused = None;
    for id in 100..400u64 {
        let results = broker.subscribe(RESULTS, 1, &["-q", "1"]);
        let message = command_message(id, "append");
        assert!(
            broker
                .publish(COMMANDS, &message, &["-q", "1"])
                .status
                .success()
        );
        let got = codes(&results.messages());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, id);
        if got[0].1 == 0x100C {
            refused = Some(id);
            break;
        }
        assert_eq!(got[0].1, 0, "{got:?}");
    }
    let refused = refused.expect("a full disk must refuse a task");
    assert_eq!(work.runs() as u64, refused - 100, "the refused task ran");
    collectd.wait_for_log(&format!("task {refused} not run: it could not be recorded"));
    // Room again: the next task's record must not be glued to a torn one.
    disk.free();
    let started = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    let slow =
        json!({"task_id": 500, "timestamp": now(), "service": "hello", "command": "slower_append"});
    start_marked_task(&broker, &collectd, &work, &slow.to_string());
    collectd.crash();
    collectd.start_again();
    assert_eq!(codes(&started.messages()), vec![(500, 0x1009)]);
    let again = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    assert!(
        broker
            .publish(COMMANDS, &slow.to_string(), &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&again.messages()), vec![(500, 0x1100)]);
    let runs_before = refused - 100;
    wait_for("the interrupted command to finish", || {
        (work.runs() as u64 == runs_before + 1).then_some(())
    });
    drop(collectd);
}

#[test]
fn a_journal_that_is_not_a_file_disables_remote_commands_without_hanging_collectd() {
    let broker = Mosquitto::start();
    let work = Work::new();
    std::fs::create_dir_all(work.dir.path().join("state/tasks.journal")).unwrap();
    let mut collectd = launch_collectd(&broker, &work, json!({}));
    let line = collectd.wait_for_log("remote commands disabled");
    assert!(line.contains("tasks.journal"), "{line}");
    assert!(line.contains("not a regular file (a directory)"), "{line}");
    // Local work goes on, and collectd stops when asked.
    collectd.putval("testhost/probe/gauge-x N:1");
    assert!(collectd.stop().success());
}

#[test]
fn a_result_topic_the_plugin_listens_on_is_a_config_error() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let extra = json!({"CommandResultTopic": "cmd/%{hostname}"});
    let mut collectd = launch_collectd(&broker, &work, extra);
    let line = collectd.wait_for_log("would take its own results for commands");
    assert!(line.contains("CommandResultTopic"), "{line}");
    // Before, one command made the plugin answer its own results for ever.
    assert!(
        broker
            .publish(COMMANDS, &command_message(1, "exec"), &[])
            .status
            .success()
    );
    collectd.putval("testhost/probe/gauge-x N:1");
    assert!(!collectd.log_text().contains("listening for commands"));
    assert!(collectd.stop().success());
}

/// Publishes every line of `messages` as one QoS 1 message with a single
/// mosquitto_pub (`-l`), as fast as the broker takes them.
fn publish_lines(broker: &Mosquitto, messages: &[String]) {
    use std::io::Write;
    let mut child = Command::new("mosquitto_pub")
        .args(broker.client_args())
        .args(["-t", COMMANDS, "-q", "1", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run mosquitto_pub");
    let mut stdin = child.stdin.take().unwrap();
    for m in messages {
        writeln!(stdin, "{m}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_burst_of_commands_is_answered_once_each_and_the_session_stays_live() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "burst-test"});
    let collectd = start_collectd(&broker, &work, persistent);
    let burst: Vec<String> = (1..=2000).map(|id| command_message(id, "exec")).collect();
    let results = broker.subscribe(RESULTS, 2000, &["-q", "1"]);
    publish_lines(&broker, &burst);
    let got = codes(&results.messages());
    let mut ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2000, "each command answered once");
    // Ran, or refused because the same command was already running or
    // MaxConcurrentCommands were: an answer each way.
    let odd: Vec<&(u64, i64)> = got
        .iter()
        .filter(|(_, code)| ![0, 0x1007, 0x1008].contains(code))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    // "running" is logged of the commands that ran, not of the refused.
    let ran = got.iter().filter(|(_, code)| *code == 0).count();
    let log = collectd.log_text();
    assert_eq!(log.matches(": running hello/exec").count(), ran);
    // Every message was acknowledged in its session: had one been lost, the
    // session would have had to start again (a second subscription line)
    // for the broker to send it again.
    assert_eq!(
        log.matches("remote: listening for commands on").count(),
        1,
        "{log}"
    );
    // The session is still live: fifty more, each answered.
    let after: Vec<String> = (3001..=3050)
        .map(|id| command_message(id, "exec"))
        .collect();
    let results = broker.subscribe(RESULTS, 50, &["-q", "1"]);
    publish_lines(&broker, &after);
    let got = codes(&results.messages());
    let mut ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (3001..=3050).collect::<Vec<u64>>());
}

#[test]
fn commands_still_running_end_when_collectd_stops() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let pid_file = work.dir.path().join("command.pid");
    let extra = json!({"Services": {"hello": {"commands": {
        "long": format!("echo $$ > {}; exec sleep 600", pid_file.display())
    }}}});
    let mut collectd = start_collectd(&broker, &work, extra);
    assert!(
        broker
            .publish(COMMANDS, &command_message(7, "long"), &[])
            .status
            .success()
    );
    let pid: u32 = collectd.wait_until("the command to start", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    assert!(common::alive(pid));
    assert!(collectd.stop().success());
    collectd.wait_until("the command to end with collectd", || {
        (!common::alive(pid)).then_some(())
    });
    assert!(
        collectd
            .log_text()
            .contains("1 recovery command(s) still running were ended")
    );
}

#[test]
fn a_result_waiting_for_the_broker_survives_a_crash() {
    let mut broker = Mosquitto::start_with(MosquittoSpec {
        persistent: true,
        ..Default::default()
    });
    let work = Work::new();
    let persistent = json!({"CleanSession": false, "QoS": 1, "ClientId": "puback-test"});
    let mut collectd = start_collectd(&broker, &work, persistent);
    assert!(
        broker
            .publish(COMMANDS, &command_message(41, "slow"), &["-q", "1"])
            .status
            .success()
    );
    collectd.wait_for_log("task 41: running hello/slow");
    // The broker goes away: the result can only wait in the MQTT client.
    broker.stop();
    collectd.wait_for_log("task 41: hello/slow finished");
    // Its result journaled (the journal's own thread writes it).
    let journal = work.dir.path().join("state/tasks.journal");
    collectd.wait_until("the result journaled", || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .contains(r#"{"id":41,"phase":"done""#)
            .then_some(())
    });
    collectd.crash();
    broker.start_again();
    let results = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    collectd.start_again();
    // Not confirmed by the broker before the crash: sent again.
    let got = results.messages();
    assert_eq!(codes(&got), vec![(41, 0)], "{got:?}");
    assert!(got[0].contains("slept"), "{got:?}");
}

/// send-command in mosquitto_pub's habits: short flags, the password from
/// a file or the environment (never only the command line), and exit 2
/// for usage errors.
#[test]
fn send_command_takes_short_flags_and_a_password_from_a_file_or_the_environment() {
    let broker = Mosquitto::start_with(MosquittoSpec {
        users: vec![("collectd".into(), "right".into())],
        ..Default::default()
    });
    let work = Work::new();
    let _collectd = start_collectd(
        &broker,
        &work,
        json!({"User": "collectd", "Password": "right"}),
    );
    let password_file = work.dir.path().join("password");
    std::fs::write(&password_file, "right\n").unwrap();
    let port = broker.port.to_string();
    let send = |extra: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"));
        c.args([
            "send-command",
            "hello",
            "exec",
            "--host",
            "127.0.0.1",
            "-p",
            &port,
        ])
        .args([
            "-t",
            COMMANDS,
            "--result-topic",
            RESULTS,
            "-q",
            "1",
            "-u",
            "collectd",
        ])
        .args(extra)
        .env_remove("COLLECTD_MONITOR_PASSWORD");
        if let Some(pw) = env {
            c.env("COLLECTD_MONITOR_PASSWORD", pw);
        }
        c.output().unwrap()
    };
    let out = send(&["--password-file", password_file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Hello World!"));
    let out = send(&[], Some("right"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = send(&["-P", "wrong"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    // Usage errors: exit 2, with what is wrong.
    for (args, says) in [
        (vec!["--timeout", "0"], "more than 0"),
        (vec!["--timeout", "-1"], "'-1'"),
        (
            vec!["--password-file", "/nonexistent/pw"],
            "--password-file",
        ),
    ] {
        let out = send(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["send-command", "hello", "exec", "--host", "127.0.0.1:abc"])
        .args(["-t", COMMANDS, "--result-topic", RESULTS])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("host:port"),
        "{}",
        text(&out.stderr)
    );
}

/// While the journal's disk does not answer (a test gate holds every
/// journal write), a task waits for it, unacknowledged, and nothing else
/// does: a refusal is answered and acknowledged, and a new presence goes
/// out. A crash meanwhile loses the task to no one: the broker delivers it
/// again and it runs once; the refusal, acknowledged, is not delivered
/// again.
#[test]
fn a_stalled_journal_holds_back_only_the_task_waiting_for_it() {
    let broker = Mosquitto::start();
    let work = Work::new();
    let gate = work.dir.path().join("journal-gate");
    let state = work.dir.path().join("state");
    let settings = json!({
        "CleanSession": false, "QoS": 1, "ClientId": "stalled-journal",
        "StatusTopic": "status/%{hostname}",
    });
    let mut collectd = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((remote_config(&broker, &work, settings), 0o600)),
        env: vec![(
            "COLLECTD_MONITOR_TEST_JOURNAL_GATE".into(),
            gate.display().to_string(),
        )],
        ..Default::default()
    });
    collectd.wait_for_log(&format!("remote: listening for commands on {COMMANDS}"));
    std::fs::write(&gate, "").unwrap();
    let stalled = broker.publish(COMMANDS, &command_message(700, "append"), &["-q", "1"]);
    assert!(stalled.status.success());
    collectd.wait_for_log("a write waits for the test gate");

    // A refusal is answered meanwhile.
    let refusal = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    let unknown = json!({"task_id": 701, "timestamp": now(), "service": "nosuch", "command": "x"});
    assert!(
        broker
            .publish(COMMANDS, &unknown.to_string(), &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&refusal.messages()), vec![(701, 0x1002)]);

    // A change of the presence goes out meanwhile (the retained one first).
    let presence = broker.subscribe("status/testhost", 2, &[]);
    let paused = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["pause", "--service", "hello/exec", "--reason", "disk-check"])
        .arg("--socket")
        .arg(state.join("control.sock"))
        .output()
        .unwrap();
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let said = presence.messages();
    assert!(said[1].contains("disk-check"), "{said:?}");
    assert_eq!(work.runs(), 0, "task 700 ran before it was recorded");

    // A crash while task 700 waits: it was never acknowledged, so the
    // broker delivers it again, and it runs once.
    collectd.crash();
    std::fs::remove_file(&gate).unwrap();
    let results = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    collectd.start_again();
    assert_eq!(codes(&results.messages()), vec![(700, 0)]);
    assert_eq!(work.runs(), 1);
    let again = broker.subscribe(RESULTS, 1, &["-q", "1"]);
    assert!(
        broker
            .publish(COMMANDS, &command_message(700, "append"), &["-q", "1"])
            .status
            .success()
    );
    assert_eq!(codes(&again.messages()), vec![(700, 0x1100)]);
    assert_eq!(work.runs(), 1);
}
