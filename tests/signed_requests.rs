//! Signed requests end to end: keys made by `collectd-monitor keygen`, a
//! real collectd whose plugin trusts some of them (`TrustedKeys`), a real
//! mosquitto, requests sent with `send-command --signing-key` and raw
//! messages published with mosquitto_pub. Every refusal has its code and
//! log line, and nothing refused runs.

mod common;
use common::cli::cli;
use common::{Collectd, CollectdSpec, Mosquitto, keygen, result_codes as codes};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const COMMANDS: &str = "cmd/testhost";
const RESULTS: &str = "res/testhost";
const UNSIGNED: i64 = 0x1201;
const UNKNOWN_KEY: i64 = 0x1202;
const BAD_SIGNATURE: i64 = 0x1203;
const WRONG_HOST: i64 = 0x1204;
const NOT_PERMITTED: i64 = 0x1205;
const DUPLICATE: i64 = 0x1100;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Fleet {
    broker: Mosquitto,
    collectd: Collectd,
    dir: tempfile::TempDir,
    ops: PathBuf,
    next: PathBuf,
    rogue: PathBuf,
}

impl Fleet {
    /// collectd trusting `ops` (hello/* only) and `next` (hello/exec, the
    /// key that replaces it), not `rogue`.
    fn start() -> Fleet {
        let broker = Mosquitto::start();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let (ops, ops_pub) = keygen(dir.path(), "ops");
        let (next, next_pub) = keygen(dir.path(), "ops-2027");
        let (rogue, _) = keygen(dir.path(), "rogue");
        // A directory of key files, as during a rotation.
        std::fs::write(
            keys.join("ops.pub"),
            format!("{ops_pub} commands=hello/* config=no\n"),
        )
        .unwrap();
        std::fs::write(
            keys.join("ops-2027.pub"),
            format!("# the next key\n{next_pub} commands=hello/exec\n"),
        )
        .unwrap();
        let ran = dir.path().join("ran.log");
        let config = json!({
            "Host": format!("127.0.0.1:{}", broker.port),
            "CommandTopic": "cmd/%{hostname}",
            "CommandResultTopic": "res/%{hostname}",
            "ReconnectInterval": 1,
            "StateDir": dir.path().join("state"),
            "TrustedKeys": keys,
            "Services": {
                "hello": {"commands": {
                    "exec": "/bin/echo \"Hello World!\"",
                    "append": format!("echo hello >> {}", ran.display()),
                }},
                "nginx": {"commands": {
                    "restart": format!("echo nginx >> {}", ran.display()),
                }}
            }
        });
        let mut collectd = Collectd::start(CollectdSpec {
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            ..Default::default()
        });
        collectd.wait_for_log(
            "only signed requests run; trusted keys: ops (commands=hello/* config=no), ops-2027 (commands=hello/exec config=no)",
        );
        collectd.wait_for_log(&format!("remote: listening for commands on {COMMANDS}"));
        Fleet {
            broker,
            collectd,
            dir,
            ops,
            next,
            rogue,
        }
    }

    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("ran.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The broker and topic arguments of `send-command`/`send-config`.
    fn broker_args(&self) -> Vec<String> {
        let port = self.broker.port.to_string();
        [
            "--host",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            COMMANDS,
            "--result-topic",
            RESULTS,
            "--timeout",
            "30",
            "--json",
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// `send-command` with `extra` arguments: exit status and output.
    fn send(&self, service: &str, command: &str, extra: &[&str]) -> (Option<i32>, String) {
        let broker = self.broker_args();
        let mut args = vec!["send-command", service, command];
        args.extend(self::args(&broker));
        args.extend(extra);
        let out = cli(&args);
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    }

    fn signed(&self, key: &Path, target: &str) -> Vec<String> {
        vec![
            "--signing-key".into(),
            key.display().to_string(),
            "--target".into(),
            target.into(),
        ]
    }

    /// Publishes `message` and returns the code of its result.
    fn publish(&self, message: &str) -> i64 {
        let results = self.broker.subscribe(RESULTS, 1, &[]);
        assert!(self.broker.publish(COMMANDS, message, &[]).status.success());
        codes(&results.messages())[0].1
    }
}

fn code_of(output: &str) -> i64 {
    let line = output
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{output}"));
    serde_json::from_str::<Value>(line).unwrap()["code"]
        .as_i64()
        .unwrap()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn signed_message(key: &Path, host: &str, task_id: u64, service: &str, command: &str) -> Value {
    let key = collectd_monitor::auth::SigningKey::read(key).unwrap();
    let message = collectd_monitor::remote::sender::command_message(task_id, service, command);
    let signed = collectd_monitor::remote::sender::sign(&message, &key, host).unwrap();
    serde_json::from_slice(&signed).unwrap()
}

#[test]
fn only_requests_signed_by_a_trusted_key_for_this_host_within_its_rights_run() {
    let fleet = Fleet::start();
    let ops = fleet.signed(&fleet.ops, "testhost");

    // Signed with a trusted key, within its rights: runs.
    let (status, out) = fleet.send("hello", "append", &args(&ops));
    assert_eq!((status, code_of(&out)), (Some(0), 0), "{out}");
    assert_eq!(fleet.runs(), vec!["hello"]);

    // Unsigned, unknown key, signed for another host, outside the rights.
    let rogue = fleet.signed(&fleet.rogue, "testhost");
    let elsewhere = fleet.signed(&fleet.ops, "web1");
    for (service, command, extra, code, log) in [
        ("hello", "append", vec![], UNSIGNED, "unsigned request"),
        (
            "hello",
            "append",
            args(&rogue),
            UNKNOWN_KEY,
            "key \"rogue\" is not trusted here",
        ),
        (
            "hello",
            "append",
            args(&elsewhere),
            WRONG_HOST,
            "signed by key ops for host \"web1\", not for testhost",
        ),
        (
            "nginx",
            "restart",
            args(&ops),
            NOT_PERMITTED,
            "key ops may not request \"nginx\"/\"restart\" (its rights: commands=hello/* config=no)",
        ),
    ] {
        let (status, out) = fleet.send(service, command, &extra);
        assert_eq!((status, code_of(&out)), (Some(1), code), "{out}");
        fleet.collectd.wait_until(log, || {
            fleet
                .collectd
                .log_text()
                .lines()
                .any(|l| l.contains(&format!("(code {code:#x})")) && l.contains(log))
                .then_some(())
        });
    }

    // Altered after signing: the signature no longer verifies.
    let mut altered = signed_message(&fleet.ops, "testhost", 77, "hello", "exec");
    altered["command"] = "append".into();
    assert_eq!(fleet.publish(&altered.to_string()), BAD_SIGNATURE);
    // Signed for web1 without saying so, published on testhost's topic.
    let mut unsaid = signed_message(&fleet.ops, "web1", 78, "hello", "append");
    unsaid.as_object_mut().unwrap().remove("host");
    assert_eq!(fleet.publish(&unsaid.to_string()), BAD_SIGNATURE);

    // Nothing refused ran.
    assert_eq!(fleet.runs(), vec!["hello"]);

    // A replay of a signed request is refused by the journal.
    let good = signed_message(&fleet.ops, "testhost", 79, "hello", "append");
    assert_eq!(fleet.publish(&good.to_string()), 0);
    assert_eq!(fleet.publish(&good.to_string()), DUPLICATE);
    assert_eq!(fleet.runs(), vec!["hello", "hello"]);
}

#[test]
fn both_keys_of_a_rotation_work_and_a_key_without_push_rights_cannot_push() {
    let fleet = Fleet::start();
    for key in [&fleet.ops, &fleet.next] {
        let (status, out) = fleet.send("hello", "exec", &args(&fleet.signed(key, "testhost")));
        assert_eq!((status, code_of(&out)), (Some(0), 0), "{out}");
    }
    // The new key has only hello/exec.
    let next = fleet.signed(&fleet.next, "testhost");
    let (_, out) = fleet.send("hello", "append", &args(&next));
    assert_eq!(code_of(&out), NOT_PERMITTED, "{out}");

    let conf = fleet.dir.path().join("new.conf");
    std::fs::write(&conf, "LoadPlugin cpu\n").unwrap();
    let ops = fleet.signed(&fleet.ops, "testhost");
    let broker = fleet.broker_args();
    let mut push = vec!["send-config", conf.to_str().unwrap()];
    push.extend(args(&broker));
    push.extend(args(&ops));
    let out = cli(&push);
    let out = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(code_of(&out), NOT_PERMITTED, "{out}");
    assert!(
        out.contains("may not request a collectd.conf push"),
        "{out}"
    );
    assert!(
        !fleet
            .collectd
            .log_text()
            .contains("collectd.conf replacement requested"),
        "{}",
        fleet.collectd.log_text()
    );
    assert!(fleet.runs().is_empty());
}

#[test]
fn keygen_refuses_bad_names_and_never_overwrites_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "ops");
    assert!(public.starts_with("ops ed25519 "), "{public}");
    let before = std::fs::read(&key).unwrap();
    let again = cli(&["keygen", "ops", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let bad = cli(&["keygen", "../evil", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    // A directory that does not exist yet is made, private.
    let fresh = dir.path().join("new/keys");
    let (key, _) = keygen(&fresh, "ci");
    assert!(key.exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn one_host_topics_are_expanded_for_the_target_and_wildcards_refused() {
    let fleet = Fleet::start();
    let port = fleet.broker.port.to_string();
    let key = fleet.ops.to_str().unwrap().to_string();
    let send = |topic: &str, results: &str, timeout: &str, target: bool| {
        let mut args = vec![
            "send-command",
            "hello",
            "append",
            "--host",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            topic,
            "--result-topic",
            results,
            "--timeout",
            timeout,
            "--json",
            "--signing-key",
            &key,
        ];
        if target {
            args.extend(["--target", "testhost"]);
        }
        cli(&args)
    };
    // `%{hostname}` is the --target's name, not a literal topic.
    let out = send("cmd/%{hostname}", "res/%{hostname}", "30", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fleet.runs(), vec!["hello"]);
    for (topic, results, timeout, target, says) in [
        ("cmd/testhost", "res/#", "30", true, "without wildcards"),
        ("cmd/+", "res/testhost", "30", true, "without wildcards"),
        ("cmd/testhost", "res/testhost", "1e300", true, "at most"),
    ] {
        let out = send(topic, results, timeout, target);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    // Unsigned, without --target: `%{hostname}` cannot be guessed.
    let out = cli(&[
        "send-command",
        "hello",
        "append",
        "--host",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "cmd/%{hostname}",
        "--result-topic",
        "res/testhost",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--target"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fleet.runs(), vec!["hello"]);
}
