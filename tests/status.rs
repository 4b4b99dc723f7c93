//! `collectd-monitor status` against a real collectd running the plugin
//! with rule files, collectd's real df plugin and a real mosquitto: the
//! control socket is private and answers what the rules did (a handler
//! fired, its command still running, a file quarantined, a df rule that
//! never matched with the df series collectd does send, the broker gone);
//! a stalled client does not stop it.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn status(socket: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .arg("status")
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .output()
        .expect("run collectd-monitor status")
}

fn status_json(socket: &Path) -> Value {
    let out = status(socket, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_shows_rule_files_handlers_the_session_and_counters() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example.lua"),
        rules.join("example.lua"),
    )
    .unwrap();
    std::fs::write(rules.join("broken.lua"), "return {\n").unwrap();
    // A file that loads but would not do what its author meant.
    std::fs::write(
        rules.join("typo.lua"),
        "return { a = function(m) if m.plugn == 'x' then return {service = 'hello', command = 'exec'} end end }",
    )
    .unwrap();
    // Waits for df/percent_bytes; collectd's df plugin without
    // ValuesPercentage sends df_complex.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/disk_almost_full.lua"),
        rules.join("disk.lua"),
    )
    .unwrap();
    // Its worker is killed below: quarantined at the first death.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/load_high.lua"),
        rules.join("crash.lua"),
    )
    .unwrap();
    let socket = work.path().join("state/control.sock");
    let release = work.path().join("release");
    let config = json!({
        "LocalMonitorConfigDir": rules,
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "Host": format!("127.0.0.1:{}", broker.port),
        "CommandTopic": "cmd/%{hostname}",
        "CommandResultTopic": "res/%{hostname}",
        "StateDir": work.path().join("state"),
        "RuleCrashLimit": 1,
        // Still running while the status is read: it ends when the test
        // lets it (or at the command timeout).
        "CommandTimeout": 600,
        "Services": {"hello": {"commands": {"exec": format!(
            "while [ ! -e {} ]; do sleep 0.1; done; echo hi",
            release.display()
        )}}},
    });
    let mut collectd = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((config.to_string(), 0o600)),
        extra_conf: "<LoadPlugin df>\n  Interval 1\n</LoadPlugin>\n<Plugin df>\n  MountPoint \"/\"\n</Plugin>\n".into(),
        ..Default::default()
    });
    collectd.wait_for_log(&format!(
        "control socket for `collectd-monitor status`: {}",
        socket.display()
    ));
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    collectd.wait_for_log("remote: listening for commands on cmd/testhost");

    // Once the files are loaded (values sent before would go to every
    // worker unrouted and not be counted against their conditions):
    collectd.wait_until("four rule files active", || {
        let s = status_json(&socket);
        let active = s["rule_files"]
            .as_array()?
            .iter()
            .filter(|f| f["state"] == "active")
            .count();
        // example, disk, crash (until it crashes) and typo.
        (active == 4).then_some(())
    });
    // A sandbox that dies with RuleCrashLimit 1: quarantined, and said so.
    let crash = status_json(&socket)["rule_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("crash.lua"))
        .unwrap()["worker_pid"]
        .as_u64()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(crash as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // A value the example rules act on.
    collectd.putval("testhost/memory/memory-free N:5000000000");
    let example = rules.join("example.lua").display().to_string();
    let s = collectd.wait_until("the example rule's decision in the status", || {
        let s = status_json(&socket);
        let file = s["rule_files"]
            .as_array()?
            .iter()
            .find(|f| f["path"] == example.as_str())?;
        let disk = s["rule_files"]
            .as_array()?
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("disk.lua")))?;
        let hinted = disk["sent_for_its_plugins"]
            .as_array()?
            .iter()
            .any(|x| x == "testhost/df-root/df_complex-free");
        // (collectd's df plugin sends it every second)
        let quarantined = s["rule_files"].as_array()?.iter().any(|f| {
            f["path"].as_str().is_some_and(|p| p.ends_with("crash.lua"))
                && f["state"] == "quarantined"
        });
        let running = s["running"]
            .as_array()?
            .iter()
            .any(|c| c["service"] == "hello" && c["command"] == "exec");
        let decided = hinted
            && quarantined
            && running
            && file["state"] == "active"
            && file["handlers"].as_array()?.iter().any(|h| {
                h["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("memory_free_is_under_10GB"))
                    && h["decisions"].as_u64() >= Some(1)
            });
        decided.then_some(s)
    });
    let files = s["rule_files"].as_array().unwrap();
    let file = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(file("example.lua")["state"], "active");
    assert!(
        file("example.lua")["series_matched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "testhost/memory/memory-free"),
        "{}",
        file("example.lua")
    );
    assert_eq!(file("disk.lua")["series_matched_count"], 0);
    assert_eq!(file("disk.lua")["wants_plugins"][0], "df");
    assert!(file("example.lua")["evaluations"].as_u64() >= Some(1));
    assert!(
        file("example.lua")["worker_rss_kib"].as_u64() > Some(0),
        "{}",
        file("example.lua")
    );
    // Every thread of a worker runs under the system-call filter (mode 2),
    // its hang watchdog's too.
    let worker = file("example.lua")["worker_pid"].as_u64().unwrap();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{worker}/task"))
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("status")).unwrap())
        .collect();
    assert!(threads.len() >= 2, "the worker and its watchdog");
    for status in &threads {
        assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
    }
    let crash = file("crash.lua");
    assert!(
        crash["note"]
            .as_str()
            .is_some_and(|n| n.contains("quarantined")),
        "{crash}"
    );
    assert_eq!(crash["worker_pid"], Value::Null, "{crash}");
    // What `rules check` would say of typo.lua, said as it loaded: in the
    // log once, and in `status`.
    let typo = wait_for("typo.lua's warning in status", || {
        let status = status_json(&socket);
        status["rule_files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with("typo.lua"))
            .filter(|f| !f["warnings"].as_array().unwrap().is_empty())
            .cloned()
    });
    assert!(
        typo["warnings"][0]
            .as_str()
            .unwrap()
            .contains("reads `m.plugn`, which a value list's table never has"),
        "{typo}"
    );
    let log = collectd.log_text();
    assert_eq!(log.matches("reads `m.plugn`").count(), 1, "{log}");
    let broken = file("broken.lua");
    assert_eq!(broken["state"], "not loaded", "{broken}");
    assert!(
        broken["note"]
            .as_str()
            .is_some_and(|n| n.contains("broken.lua:1: ")),
        "{broken}"
    );
    let handler = file("example.lua")["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            h["name"]
                .as_str()
                .unwrap()
                .ends_with("memory_free_is_under_10GB")
        })
        .unwrap()
        .clone();
    assert_eq!(handler["last_decision"]["what"], "hello/exec", "{handler}");
    assert!(handler["calls"].as_u64() >= Some(1), "{handler}");
    assert_eq!(
        handler["last_decision"]["series"], "testhost/memory/memory-free",
        "{handler}"
    );
    let remote = &s["remote"];
    assert!(remote["connected_since"].is_string(), "{remote}");
    assert_eq!(remote["signed_only"], false);
    assert!(
        s["counters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c[0] == "evaluations" && c[1].as_f64() >= Some(1.0)),
        "{}",
        s["counters"]
    );

    // The same for people.
    let text = String::from_utf8(status(&socket, &[]).stdout).unwrap();
    assert!(
        text.contains(&format!("rule file {example}: active since "))
            && text.contains("memory_free_is_under_10GB: ")
            && text.contains("last decision hello/exec at ")
            && text.contains("remote commands: broker 127.0.0.1:")
            && text.contains("requests NOT authenticated")
            && text.contains("no series matched its conditions yet (it waits for plugin df)")
            && text.contains("collectd does send: testhost/df-root/df_complex-free")
            && text.contains("pauses: none")
            && text.contains("  warning: ")
            && text.contains("reads `m.plugn`"),
        "{text}"
    );
    // A file that does not run is not said to receive anything.
    let broken_block = text
        .split("rule file ")
        .find(|b| b.contains("broken.lua: not loaded"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        !broken_block.contains("receives every value list"),
        "{text}"
    );

    // A client that connects and says nothing does not keep others out.
    let mut stalled = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let out = status(&socket, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = Vec::new();
    let _ = stalled.write_all(b"");
    let _ = stalled.read_to_end(&mut rest);
    // Anything else than `status` is refused with a reason.
    let mut other = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    other.write_all(b"shutdown\n").unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("unknown request \\\"shutdown\\\""),
        "{answer}"
    );

    // The command may end now.
    std::fs::write(&release, "").unwrap();

    // The broker goes away: the session says so.
    let mut broker = broker;
    broker.stop();
    collectd.wait_until("the session to be down in the status", || {
        status_json(&socket)["remote"]["connected_since"]
            .is_null()
            .then_some(())
    });

    // Gone with collectd.
    assert!(collectd.stop().success());
    assert!(!socket.exists());
    let out = status(&socket, &[]);
    assert_eq!(out.status.code(), Some(3));
}
