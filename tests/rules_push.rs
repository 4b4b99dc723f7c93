//! Rule sets pushed to three real collectd hosts over a real mosquitto:
//! a broken file is refused by the canary with its line and nothing
//! changes; a good set reaches every host through a canary and a wave and
//! runs; `hosts` tells the versions; a rollback request puts the previous
//! set back; a file quarantined within the grace period rolls its host
//! back by itself; a key without `rules=all` cannot push config.json.

mod common;
use common::cli::{cli, rule_runs as runs};
use common::{Collectd, CollectdSpec, Mosquitto};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const NAMES: [&str; 3] = ["web1", "web2", "web3"];

fn rule(plugin: &str) -> String {
    format!(
        r#"return {{ probe = function(m)
  if m.plugin == "{plugin}" then return {{ service = "hello", command = "exec" }} end
end }}"#
    )
}

struct Fleet {
    broker: Mosquitto,
    work: tempfile::TempDir,
    hosts: Vec<Collectd>,
    deploy: PathBuf,
    operator: PathBuf,
}

impl Fleet {
    fn rules_dir(&self, i: usize) -> PathBuf {
        self.work.path().join(NAMES[i]).join("rules")
    }

    /// `send-rules` (or another push command) to `hosts` with `extra`:
    /// exit status and each host's outcome.
    fn push(
        &self,
        command: &str,
        key: &Path,
        hosts: &str,
        extra: &[&str],
    ) -> (Option<i32>, BTreeMap<String, Value>) {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .arg(command)
            .args(extra)
            .args(["--host", &format!("127.0.0.1:{}", self.broker.port)])
            .args(["-t", "collectd/%{hostname}/command"])
            .args(["--result-topic", "collectd/%{hostname}/result"])
            .args([
                "--timeout",
                "120",
                "--json",
                "--hosts",
                hosts,
                "--signing-key",
            ])
            .arg(key)
            .output()
            .unwrap();
        let outcomes = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["host"].as_str().unwrap().to_string(), v)
            })
            .collect();
        (out.status.code(), outcomes)
    }

    /// Each online host's rule set, from `hosts --json`.
    fn rule_sets(&self) -> BTreeMap<String, String> {
        let out = cli(&[
            "hosts",
            "--host",
            &format!("127.0.0.1:{}", self.broker.port),
            "--status-topic",
            "collectd/+/status",
            "--json",
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                Some((
                    v["hostname"].as_str()?.to_string(),
                    v["rule_set"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    fn wait_for_sets(
        &self,
        what: &str,
        want: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        common::wait_for(what, || {
            let sets = self.rule_sets();
            want(&sets).then_some(sets)
        })
    }
}

fn start() -> Fleet {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let (deploy, deploy_pub) = common::keygen(work.path(), "deploy");
    let (operator, operator_pub) = common::keygen(work.path(), "operator");
    let keys = work.path().join("trusted-keys");
    std::fs::write(
        &keys,
        format!("{deploy_pub} rules=yes\n{operator_pub} rules=all\n"),
    )
    .unwrap();
    let hosts = NAMES
        .iter()
        .map(|name| {
            let rules = work.path().join(name).join("rules");
            std::fs::create_dir_all(&rules).unwrap();
            std::fs::write(rules.join("probe.lua"), rule("probe")).unwrap();
            let config = json!({
                "LocalMonitorConfigDir": rules,
                "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
                "StateDir": work.path().join(name).join("state"),
                "CommandCooldown": 0,
                "RuleReloadInterval": 1,
                // The first death quarantines (the test kills a worker);
                // a generous time limit, so that no other death happens
                // on a busy machine.
                "RuleCrashLimit": 1,
                "RuleTimeout": 60000,
                "RulesGracePeriod": 600,
                "TrustedKeys": keys,
                "Host": format!("127.0.0.1:{}", broker.port),
                "CommandTopic": "collectd/%{hostname}/command",
                "CommandResultTopic": "collectd/%{hostname}/result",
                "StatusTopic": "collectd/%{hostname}/status",
                "Services": {"hello": {"commands": {"exec": "echo hi"}}},
            });
            let mut c = Collectd::start(CollectdSpec {
                hostname: (*name).into(),
                monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
                config_json: Some((config.to_string(), 0o600)),
                ..Default::default()
            });
            c.wait_for_log("probe.lua: loaded");
            c.wait_for_log(&format!(
                "listening for commands on collectd/{name}/command"
            ));
            c
        })
        .collect();
    Fleet {
        broker,
        work,
        hosts,
        deploy,
        operator,
    }
}

#[test]
fn a_rule_set_reaches_the_fleet_through_a_canary_and_comes_back_when_it_fails() {
    let mut f = start();
    let all = NAMES.join(",");
    let first = f.wait_for_sets("three hosts with a rule set", |s| s.len() == 3);
    let v1 = first["web1"].clone();
    assert!(first.values().all(|d| *d == v1), "{first:?}");

    // A broken file: the canary refuses it with its line; nothing changes
    // anywhere, and the others are never sent it.
    let sets = f.work.path().join("sets");
    let broken = sets.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("probe.lua"), rule("probe2")).unwrap();
    std::fs::write(
        broken.join("bad.lua"),
        "return {\n  metric = function(m)\n    if m.plugin == then return nil end\n  end\n}\n",
    )
    .unwrap();
    let broken_arg = broken.to_str().unwrap();
    let (status, outcomes) = f.push(
        "send-rules",
        &f.deploy,
        &all,
        &[broken_arg, "--canary", "1", "--wave-size", "2"],
    );
    assert_eq!(status, Some(1), "{outcomes:?}");
    let refused: Vec<_> = outcomes
        .values()
        .filter(|o| o["outcome"] == "result")
        .collect();
    assert_eq!(refused.len(), 1, "{outcomes:?}");
    assert_eq!(refused[0]["code"], 0x3001, "{outcomes:?}");
    let message = refused[0]["message"].as_str().unwrap();
    assert!(message.contains("bad.lua:3:"), "{message}");
    assert_eq!(
        outcomes
            .values()
            .filter(|o| o["outcome"] == "not_sent")
            .count(),
        2,
        "{outcomes:?}"
    );
    for i in 0..3 {
        let dir = f.rules_dir(i);
        assert!(!dir.join("bad.lua").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("probe.lua")).unwrap(),
            rule("probe")
        );
    }

    // A good set: canary, then a wave of two; every host runs it.
    let good = sets.join("good");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(good.join("probe2.lua"), rule("probe2")).unwrap();
    let (status, outcomes) = f.push(
        "send-rules",
        &f.deploy,
        &all,
        &[good.to_str().unwrap(), "--canary", "1", "--wave-size", "2"],
    );
    assert_eq!(status, Some(0), "{outcomes:?}");
    for (host, o) in &outcomes {
        assert_eq!(o["code"], 0, "{host}: {o}");
        assert!(
            o["message"]
                .as_str()
                .unwrap()
                .contains("installed 1 rule file"),
            "{o}"
        );
    }
    for i in 0..3 {
        assert!(!f.rules_dir(i).join("probe.lua").exists());
    }
    let second = f.wait_for_sets("every host on the new set", |s| {
        s.len() == 3 && s.values().all(|d| *d != v1)
    });
    let v2 = second["web1"].clone();
    assert!(second.values().all(|d| *d == v2), "{second:?}");
    f.hosts[1].putval("web2/probe2/gauge-x N:1");
    f.hosts[1].wait_until("the new rule ran", || {
        (runs(&f.hosts[1]) == 1).then_some(())
    });

    // A rollback request puts web2's previous set back.
    let (status, outcomes) = f.push("send-rules", &f.deploy, "web2", &["--rollback"]);
    assert_eq!(status, Some(0), "{outcomes:?}");
    // The host announced its set before it answered: read at once.
    assert_eq!(f.rule_sets().get("web2"), Some(&v1));
    assert_eq!(
        std::fs::read_to_string(f.rules_dir(1).join("probe.lua")).unwrap(),
        rule("probe")
    );

    // config.json needs rules=all.
    let config = f.work.path().join("new-config.json");
    std::fs::write(&config, "{}").unwrap();
    let (status, outcomes) = f.push(
        "send-monitor-config",
        &f.deploy,
        "web1",
        &[config.to_str().unwrap()],
    );
    assert_eq!(status, Some(1), "{outcomes:?}");
    assert_eq!(outcomes["web1"]["code"], 0x1205, "{outcomes:?}");
    // A config.json the plugin would refuse is refused by the host.
    std::fs::write(&config, r#"{"NoSuchKey": 1}"#).unwrap();
    let (_, outcomes) = f.push(
        "send-monitor-config",
        &f.operator,
        "web1",
        &[config.to_str().unwrap()],
    );
    assert_eq!(outcomes["web1"]["code"], 0x3001, "{outcomes:?}");
    assert!(
        outcomes["web1"]["message"]
            .as_str()
            .unwrap()
            .contains("NoSuchKey"),
        "{outcomes:?}"
    );

    // On web3, a set whose file is quarantined within the grace period
    // (its worker killed, with RuleCrashLimit 1) rolls back by itself.
    let third = sets.join("third");
    std::fs::create_dir_all(&third).unwrap();
    std::fs::write(third.join("probe3.lua"), rule("probe3")).unwrap();
    let (status, outcomes) = f.push("send-rules", &f.deploy, "web3", &[third.to_str().unwrap()]);
    assert_eq!(status, Some(0), "{outcomes:?}");
    let socket = f.work.path().join("web3/state/control.sock");
    let worker = f.hosts[2].wait_until("probe3.lua's worker", || {
        let out = cli(&["status", "--json", "--socket", socket.to_str().unwrap()]);
        let s: Value = serde_json::from_slice(&out.stdout).ok()?;
        s["rule_files"].as_array()?.iter().find_map(|file| {
            (file["path"].as_str()?.ends_with("probe3.lua") && file["state"] == "active")
                .then(|| file["worker_pid"].as_u64())
                .flatten()
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    f.hosts[2].wait_for_log("rolled back by itself");
    f.wait_for_sets("web3 back on the second set", |s| {
        s.get("web3") == Some(&v2)
    });
    assert!(f.rules_dir(2).join("probe2.lua").exists());
    assert!(!f.rules_dir(2).join("probe3.lua").exists());
    for c in &mut f.hosts {
        assert!(c.stop().success());
    }
}
