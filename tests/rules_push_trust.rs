//! Pushed rule sets and config.json against an attacker holding a
//! `rules=all` key, and against crashes: a pushed config.json cannot move
//! the journal or drop the trusted keys; a push killed at any step leaves
//! one whole set (and the previous one kept); the checker of a pushed set
//! runs confined and unprivileged. One real collectd host, one mosquitto.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A rule asking for `hello/exec` on `plugin`'s value lists.
fn rule(plugin: &str) -> String {
    format!(
        r#"return {{ probe = function(m)
  if m.plugin == "{plugin}" then return {{ service = "hello", command = "exec" }} end
end }}"#
    )
}

struct Host {
    broker: Mosquitto,
    work: tempfile::TempDir,
    collectd: Collectd,
    /// A key with `rules=all`.
    operator: PathBuf,
    config: Value,
}

impl Host {
    fn start(env: Vec<(String, String)>) -> Host {
        let broker = Mosquitto::start();
        let work = tempfile::tempdir().unwrap();
        let (operator, operator_pub) = common::keygen(work.path(), "operator");
        let keys = work.path().join("trusted-keys");
        std::fs::write(
            &keys,
            format!("{operator_pub} rules=all commands=hello/*\n"),
        )
        .unwrap();
        let rules = work.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(rules.join("probe.lua"), rule("probe")).unwrap();
        let config = json!({
            "LocalMonitorConfigDir": rules,
            "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
            "StateDir": work.path().join("state"),
            "RuleReloadInterval": 1,
            "TrustedKeys": keys,
            "Host": format!("127.0.0.1:{}", broker.port),
            "CommandTopic": "collectd/%{hostname}/command",
            "CommandResultTopic": "collectd/%{hostname}/result",
            "Services": {"hello": {"commands": {"exec": "echo hi"}}},
        });
        let mut collectd = Collectd::start(CollectdSpec {
            hostname: "web1".into(),
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            env,
            ..Default::default()
        });
        collectd.wait_for_log("probe.lua: loaded");
        collectd.wait_for_log("listening for commands on collectd/web1/command");
        Host {
            broker,
            work,
            collectd,
            operator,
            config,
        }
    }

    fn rules(&self) -> PathBuf {
        self.work.path().join("rules")
    }

    /// `send-rules ARGS` to web1 signed by the operator: the host's answer
    /// (`None`: no answer within `timeout` seconds).
    fn push(&self, args: &[&str], timeout: u64) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .arg("send-rules")
            .args(args)
            .args(["--host", &format!("127.0.0.1:{}", self.broker.port)])
            .args(["-t", "collectd/%{hostname}/command"])
            .args(["--result-topic", "collectd/%{hostname}/result"])
            .args([
                "--timeout",
                &timeout.to_string(),
                "--json",
                "--hosts",
                "web1",
            ])
            .arg("--signing-key")
            .arg(&self.operator)
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let v: Value = serde_json::from_str(line.lines().next()?).ok()?;
        (v["outcome"] == "result").then_some(v)
    }

    /// A config.json file for a push: the host's own, changed by `change`.
    fn config_file(&self, name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
        let mut config = self.config.clone();
        change(&mut config);
        let path = self.work.path().join(name);
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    /// The config.json the host runs.
    fn running_config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.collectd.config_json).unwrap()).unwrap()
    }
}

#[test]
fn a_pushed_config_json_cannot_move_the_journal_or_drop_the_trusted_keys() {
    let host = Host::start(Vec::new());
    let path = |p: &Path| p.to_str().unwrap().to_string();
    for (name, setting, change) in [
        (
            "moved.json",
            "StateDir",
            Box::new(|c: &mut Value| c["StateDir"] = json!("/tmp/elsewhere"))
                as Box<dyn FnOnce(&mut Value)>,
        ),
        (
            "keyless.json",
            "TrustedKeys",
            Box::new(|c: &mut Value| {
                c.as_object_mut().unwrap().remove("TrustedKeys");
            }),
        ),
        (
            "broker.json",
            "Host",
            Box::new(|c: &mut Value| c["Host"] = json!("evil.example:1883")),
        ),
    ] {
        let file = host.config_file(name, change);
        let answer = host.push(&["--config", &path(&file)], 60).unwrap();
        assert_eq!(answer["code"], 0x3007, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("may not change {setting}")),
            "{message}"
        );
        assert_eq!(host.running_config(), host.config, "{name} was installed");
    }
    // The commands may change.
    let file = host.config_file("services.json", |c| {
        c["Services"]["newsvc"] = json!({"commands": {"go": "echo go"}});
    });
    let answer = host.push(&["--config", &path(&file)], 60).unwrap();
    assert_eq!(answer["code"], 0, "{answer}");
    assert!(host.running_config()["Services"]["newsvc"].is_object());
}

/// The host's answer, or the crash it died of, while a push runs with
/// collectd killed at `step`; then collectd starts again without the hook.
fn push_killed_at(host: &mut Host, step: &str, args: &[&str]) {
    host.collectd.stop();
    host.collectd
        .set_env(vec![("COLLECTD_MONITOR_TEST_CRASH_AT".into(), step.into())]);
    host.collectd.start_again();
    host.collectd
        .wait_for_log("listening for commands on collectd/web1/command");
    // No answer: the host dies in the middle.
    assert_eq!(host.push(args, 5), None);
    let status = host.collectd.wait_exited();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
    host.collectd.set_env(Vec::new());
    host.collectd.start_again();
}

#[test]
fn a_push_killed_at_any_step_leaves_one_whole_set_and_the_previous_one_kept() {
    let mut host = Host::start(Vec::new());
    let sets = host.work.path().join("sets");
    let set = |name: &str, files: &[&str]| {
        let dir = sets.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(format!("{f}.lua")), rule(f)).unwrap();
        }
        dir.to_str().unwrap().to_string()
    };
    // A first push, so that a set is kept for rollback.
    let second = set("second", &["second"]);
    assert_eq!(host.push(&[&second], 60).unwrap()["code"], 0);
    let newsvc = host.config_file("newsvc.json", |c| {
        c["Services"]["newsvc"] = json!({"commands": {"go": "echo go"}});
    });
    let third = set("third", &["newrule"]);
    // Killed after the rule directory moved, before config.json did.
    push_killed_at(
        &mut host,
        "after-rules-swap",
        &[&third, "--config", newsvc.to_str().unwrap()],
    );
    let line = host.collectd.wait_for_log("rules: the rule push of task");
    assert!(line.contains("undone"), "{line}");
    host.collectd.wait_for_log("second.lua: loaded");
    assert!(host.rules().join("second.lua").exists());
    assert!(!host.rules().join("newrule.lua").exists());
    assert!(host.running_config()["Services"]["newsvc"].is_null());
    // Killed while keeping the running set for rollback: nothing moved,
    // and a set is still kept (the running one, as the push above kept
    // it): a push and its rollback work.
    push_killed_at(&mut host, "before-keeping", &[&third]);
    host.collectd.wait_for_log("second.lua: loaded");
    assert!(host.rules().join("second.lua").exists());
    let fourth = set("fourth", &["fourth"]);
    assert_eq!(host.push(&[&fourth], 60).unwrap()["code"], 0);
    let answer = host.push(&["--rollback"], 60).unwrap();
    assert_eq!(answer["code"], 0, "{answer}");
    assert!(host.rules().join("second.lua").exists());
    assert!(!host.rules().join("fourth.lua").exists());
    // Killed once everything moved: the push stays.
    push_killed_at(
        &mut host,
        "after-config",
        &[&third, "--config", newsvc.to_str().unwrap()],
    );
    let line = host.collectd.wait_for_log("rules: the rule push of task");
    assert!(line.contains("it stays"), "{line}");
    host.collectd.wait_for_log("newrule.lua: loaded");
    assert!(host.running_config()["Services"]["newsvc"].is_object());
}

/// Reads `/proc/PID/status` of every `rules check --sandbox` process.
fn checkers() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("check\0--json\0--sandbox"))
        })
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .collect()
}

#[test]
fn the_checker_of_a_pushed_set_runs_confined_as_the_sandbox_user() {
    let host = Host::start(Vec::new());
    // Files whose top level spins until the VM stops it: the checker
    // runs them one after the other, long enough to be looked at.
    let dir = host.work.path().join("spinning");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..16 {
        std::fs::write(
            dir.join(format!("spin{i}.lua")),
            "local n = 0 while true do n = n + 1 end",
        )
        .unwrap();
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, done) = (seen.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                seen.lock().unwrap().extend(checkers());
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let answer = host.push(&[dir.to_str().unwrap()], 120).unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap();
    assert_eq!(answer["code"], 0x3001, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("limit"),
        "{answer}"
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the checker was never seen");
    let confined = seen.iter().find(|s| s.contains("\nSeccomp:\t2\n"));
    let status = confined.unwrap_or_else(|| panic!("never seen confined: {seen:?}"));
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
    let uid = format!("\nUid:\t{0}\t{0}\t{0}\t{0}\n", nobody.uid);
    assert!(status.contains(&uid), "{status}");
    // Nothing changed.
    assert!(host.rules().join("probe.lua").exists());
    wait_for("no checker left", || checkers().is_empty().then_some(()));
}
