//! Central rules against attackers and operators in maintenance, each
//! test carrying out what fooled the controller before: spoofed and
//! wrongly signed value lists, a flood of invented host names, hosts
//! that refuse (stale clocks, pauses) or do not exist, forged results,
//! a host's own maintenance pause, two controllers with other windows
//! and clocks, and what `status` and the log say meanwhile. Real
//! collectd hosts signing their network traffic, central collectds,
//! one mosquitto.

mod common;
use common::central::{Fleet, HostOpts, count, guard};
use common::netpacket::{self, Gauge};
use common::{free_port, memory_kib, wait_for, wait_within};
use serde_json::json;

/// A host's collectd with its clock `offset` seconds off (libfaketime).
fn clock_off(offset: i64) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1".into(),
        ),
        ("FAKETIME".into(), format!("{offset:+}")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// The task id of the last request `central` logged for `host`.
fn task_of(central: &common::Collectd, host: &str) -> u64 {
    let needle = format!("requested on collectd/{host}/command (task ");
    let text = central.log_text();
    let line = text.lines().rev().find(|l| l.contains(&needle)).unwrap();
    line.rsplit("(task ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// One app value list of `host`, now.
fn app(host: &str, value: f64) -> Gauge<'_> {
    Gauge {
        host,
        plugin: "app",
        type_instance: "up",
        value,
        time: netpacket::now(),
    }
}

#[test]
fn a_spoofed_or_wrongly_signed_value_list_causes_no_request() {
    let fleet = Fleet::new();
    let port = free_port();
    let mut central = fleet.central("central", port, json!({}));
    let web1 = fleet.host("web1", &[port], 0);
    let web3 = fleet.host("web3", &[port], 0);
    fleet.release("web1");
    fleet.wait_known("central", 2);
    // One unsigned datagram claiming web1's app is down.
    netpacket::send(port, &netpacket::packets(&[app("web1", 0.0)], None));
    // web3's collectd, signing as web3, says the same of web1.
    web3.putval("web1/app/gauge-up N:0");
    // Signed as web1 with the wrong password: collectd drops it itself.
    netpacket::send(
        port,
        &netpacket::packets(&[app("web1", 0.0)], Some(("web1", "guessed"))),
    );
    central.wait_for_log("Hash mismatch");
    let unproven = wait_for("both claims counted as unproven", || {
        let status = fleet.status("central");
        let web1 = status["central"]["unproven"]
            .as_array()?
            .iter()
            .find(|u| u["host"] == "web1")?
            .clone();
        (web1["values"] == 2).then_some(web1)
    });
    assert!(
        unproven["why"]
            .as_str()
            .is_some_and(|w| w.contains("received unsigned") || w.contains("user web3")),
        "{unproven}"
    );
    let line = central.wait_for_log("value list(s) of host web1 not taken by central rules");
    assert!(line.contains("FleetValueOrigins"), "{line}");
    assert_eq!(count(&central, "requested on collectd/web1/command"), 0);
    assert_eq!(count(&web1, "running app/restart"), 0);
    // web1's own signed value is believed.
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web1/command");
    wait_for("web1 repaired", || (fleet.runs("web1") == 1).then_some(()));
    assert_eq!(count(&central, "requested on collectd/web1/command"), 1);
}

/// 100 000 app value lists of invented hosts `{prefix}N`, reporting a
/// 1 s interval (collectd's cache forgets them after 2 s): half unsigned,
/// half signed by `flooder`.
fn flood(port: u16, prefix: &str) {
    let names: Vec<String> = (0..100_000).map(|i| format!("{prefix}{i}")).collect();
    let lists: Vec<Gauge<'_>> = names.iter().map(|n| app(n, 0.0)).collect();
    let flooder = common::central::password("flooder");
    netpacket::send(port, &netpacket::packets(&lists[..50_000], None));
    netpacket::send(
        port,
        &netpacket::packets(&lists[50_000..], Some(("flooder", &flooder))),
    );
}

/// Waits until `central`'s collectd forgot the invented series (its value
/// cache drops a series after twice its interval).
fn forgotten(central: &common::Collectd) {
    let patience = std::time::Duration::from_secs(120);
    wait_within("collectd to forget the invented series", patience, || {
        let reply = central.command("LISTVAL");
        let n: usize = reply.split(' ').next()?.parse().ok()?;
        (n < 100).then_some(())
    });
}

#[test]
fn a_flood_of_invented_host_names_leaves_limits_memory_and_a_real_repair_intact() {
    let fleet = Fleet::new();
    let port = free_port();
    // `flooder` may speak for `fake*`: its values reach the rules.
    let origins = fleet.work.path().join("origins");
    std::fs::write(&origins, "user flooder fake*\n").unwrap();
    let central = fleet.central(
        "central",
        port,
        json!({"FleetMaxInFlight": "10%", "FleetValueOrigins": origins}),
    );
    let hosts: Vec<_> = ["web1", "web2", "web3"]
        .iter()
        .map(|h| fleet.host(h, &[port], 0))
        .collect();
    fleet.wait_known("central", 3);
    flood(port, "fake");
    fleet.release("web2");
    // Central rules take every proven value list in turn: the flood's
    // first (slowly, in a debug build), then web2's. web2 says it again
    // every two seconds, as a host does every interval: a datagram may
    // be lost while the flood fills the socket's buffer.
    let patience = std::time::Duration::from_secs(300);
    let mut said = std::time::Instant::now() - std::time::Duration::from_secs(2);
    wait_within("web2 repaired", patience, || {
        if said.elapsed() >= std::time::Duration::from_secs(2) {
            hosts[1].putval("web2/app/gauge-up N:0");
            said = std::time::Instant::now();
        }
        (fleet.runs("web2") == 1).then_some(())
    });
    let status = wait_for("the flood seen by central rules", || {
        let status = fleet.status("central");
        let held = guard(&status, "app/restart")["held"].clone();
        let unknown = held.as_array()?.iter().find(|h| h[0] == "unknown_host")?[1].as_u64()?;
        let unproven = status["central"]["counters"]
            .as_array()?
            .iter()
            .find(|c| c[0] == "values_unproven")?[1]
            .as_f64()?;
        (unknown > 1000 && unproven > 1000.0).then_some(status)
    });
    // Nothing went to an invented host, and the fleet is still three.
    assert_eq!(count(&central, "requested on collectd/fake"), 0);
    assert_eq!(
        status["central"]["hosts"]["known"], 3,
        "{}",
        status["central"]["hosts"]
    );
    assert!(status["central"]["unproven"].as_array().unwrap().len() <= 10);
    let size = status.to_string().len();
    assert!(size < 64 * 1024, "status is {size} bytes");
    // A bounded log: a few lines per reason and minute, not one per name.
    let lines = central
        .log_text()
        .lines()
        .filter(|l| l.contains("central: "))
        .count();
    assert!(lines < 100, "{lines} central lines");
    // Two more floods of other names: what the controller keeps stays
    // bounded (collectd's own value cache holds each series a while,
    // whoever else is loaded: docs/performance.md compares the memory with and
    // without the plugin).
    let entries = |status: &serde_json::Value| {
        status["central"]["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c[0] == "state_entries")
            .unwrap()[1]
            .as_f64()
            .unwrap()
    };
    let after_one = entries(&fleet.status("central"));
    for prefix in ["fakeb", "fakec"] {
        flood(port, prefix);
        forgotten(&central);
    }
    let after_three = entries(&fleet.status("central"));
    assert!(after_one < 10_000.0, "{after_one} entries");
    assert!(
        after_three <= after_one + 100.0,
        "{after_one} -> {after_three} entries"
    );
    println!(
        "central collectd: {after_three} state entries, {} KiB resident after three floods",
        memory_kib("VmRSS", central.pid())
    );
    assert_eq!(fleet.status("central")["central"]["hosts"]["known"], 3);
}

#[test]
fn ghosts_stale_clocks_and_paused_hosts_spend_no_error_budget() {
    let fleet = Fleet::new();
    let port = free_port();
    // web1 relays the ghosts' values (they may speak for them).
    let origins = fleet.work.path().join("origins");
    std::fs::write(&origins, "user web1 web1 ghost*\n").unwrap();
    let mut central = fleet.central(
        "central",
        port,
        json!({
            "FleetErrorBudget": 2,
            "FleetHostCooldown": 0,
            "FleetValueOrigins": origins,
        }),
    );
    let web1 = fleet.host("web1", &[port], 3);
    let web2 = fleet.host("web2", &[port], 0);
    // web3's clock is ten minutes behind.
    let web3 = fleet.host_with(
        "web3",
        &[port],
        0,
        HostOpts {
            env: clock_off(-600),
            ..HostOpts::signed_as("web3")
        },
    );
    fleet.wait_known("central", 3);
    // 30 hosts that never announced themselves.
    for i in 0..30 {
        web1.putval(&format!("ghost{i}/app/gauge-up N:0"));
    }
    let held = central.wait_for_log("for ghost");
    assert!(held.contains("(unknown_host)"), "{held}");
    // The stale host refuses: its clock is off.
    web3.putval("web3/app/gauge-up N:0");
    let refused = central.wait_for_log("on web3 (task");
    assert!(
        refused.contains("0x1006") && refused.contains("clock"),
        "{refused}"
    );
    // A host paused for maintenance: held by the controller, or refused
    // by the host if the controller had not heard of the pause yet.
    let out = fleet.cli(
        "web2",
        &[
            "pause",
            "--service",
            "app",
            "--for",
            "10m",
            "--remote",
            "--reason",
            "upgrade",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sent again every few seconds: on a loaded machine a decision may
    // first be held for another passing reason (web2's presence said
    // offline after a missed keep-alive, say); the pause must show.
    let mut polls = 0;
    let status = wait_for("web2's decision held or refused", || {
        if polls % 100 == 0 {
            web2.putval("web2/app/gauge-up N:0");
        }
        polls += 1;
        let status = fleet.status("central");
        let g = guard(&status, "app/restart");
        let said = |list: &str| {
            g[list]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x[0] == "paused"))
        };
        (said("held") || said("refused")).then_some(status)
    });
    let g = guard(&status, "app/restart");
    assert_eq!(g["failures"], 0, "{g}");
    assert_eq!(g["stopped"], false, "{g}");
    assert!(
        g["refused"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == "stale"),
        "{g}"
    );
    assert_eq!(fleet.runs("web2") + fleet.runs("web3"), 0);
    // A repair that really fails spends the budget: one of two.
    fleet.release("web1");
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("app/restart on web1 (task");
    let status = wait_for("web1's failure counted", || {
        let status = fleet.status("central");
        (guard(&status, "app/restart")["failures"] == 1).then_some(status)
    });
    assert_eq!(guard(&status, "app/restart")["stopped"], false);
    assert_eq!(count(&central, "central repairs of app/restart stopped"), 0);
    assert_eq!(count(&central, "requested on collectd/ghost"), 0);
}

/// A result for `host` in the hosts' format, signed by a key that is not
/// `host`'s (or unsigned).
fn forged(host: &str, task_id: u64, code: i64, signed: bool) -> String {
    use base64::Engine;
    use ring::signature::KeyPair;
    let timestamp = "2026-01-01T00:00:00Z";
    let message = "forged by mallory";
    let mut result = json!({
        "task_id": task_id, "timestamp": timestamp, "message": message, "code": code,
    });
    if signed {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, message.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let text = format!(
            "collectd-monitor-result-v1\nhost={host}\ntask_id={task_id}\ntimestamp={timestamp}\ncode={code}\nmessage_sha256={hex}\n"
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        result["host"] = host.into();
        result["signature"] = b64.encode(key.sign(text.as_bytes())).into();
        let _ = key.public_key();
    }
    result.to_string()
}

#[test]
fn a_forged_result_changes_nothing_and_is_counted() {
    let fleet = Fleet::new();
    let port = free_port();
    let mut central = fleet.central("central", port, json!({"FleetErrorBudget": 1}));
    let web1 = fleet.host("web1", &[port], 3);
    let web2 = fleet.host("web2", &[port], 0);
    fleet.wait_known("central", 2);
    // web2's repair will succeed; a forger says it failed, twice.
    web2.putval("web2/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web2/command");
    let task = task_of(&central, "web2");
    for signed in [false, true] {
        let out = fleet.broker.publish(
            "collectd/web2/result",
            &forged("web2", task, 1, signed),
            &["-q", "1"],
        );
        assert!(out.status.success());
    }
    wait_for("both forgeries counted", || {
        let status = fleet.status("central");
        let n = status["central"]["counters"]
            .as_array()?
            .iter()
            .find(|c| c[0] == "results_unproven")?[1]
            .as_f64()?;
        (n == 2.0).then_some(())
    });
    central.wait_for_log("is not signed with host web2's key; ignored");
    // web1's repair will fail; a forger says it succeeded.
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web1/command");
    let task1 = task_of(&central, "web1");
    let out = fleet.broker.publish(
        "collectd/web1/result",
        &forged("web1", task1, 0, true),
        &["-q", "1"],
    );
    assert!(out.status.success());
    // The real results.
    fleet.release("web2");
    central.wait_for_log("app/restart on web2 (task");
    fleet.release("web1");
    central.wait_for_log("app/restart on web1 (task");
    central.wait_for_log("central repairs of app/restart stopped");
    let text = central.log_text();
    assert!(!text.contains("forged by mallory"), "{text}");
    assert_eq!(
        count(&central, "Notification: severity = OKAY"),
        1,
        "{text}"
    );
    // One FAILURE for web1's real failure, one for the stop it caused.
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Notification: severity = FAILURE"))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().any(|l| l.contains("host = web1")));
    let recent = fleet.status("central")["central"]["recent"].clone();
    let codes: Vec<(String, i64)> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().into(),
                r["code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("web2".into(), 0)) && codes.contains(&("web1".into(), 3)),
        "{codes:?}"
    );
}

#[test]
fn a_pause_on_the_host_or_the_controller_holds_central_repairs() {
    let fleet = Fleet::new();
    let port = free_port();
    // A window of a second: web1 is repaired again within the test.
    let mut central = fleet.central(
        "central",
        port,
        json!({"FleetHostCooldown": 0, "FleetTaskWindow": 1}),
    );
    let web1 = fleet.host("web1", &[port], 0);
    fleet.release("web1");
    fleet.wait_known("central", 1);
    // A maintenance pause on web1 itself (rules only, not --remote).
    let out = fleet.cli(
        "web1",
        &[
            "pause",
            "--service",
            "app",
            "--for",
            "10m",
            "--reason",
            "upgrade",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the controller to hear of the pause", || {
        (fleet.status("central")["central"]["hosts"]["paused"] == 1).then_some(())
    });
    web1.putval("web1/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web1 held back");
    assert!(held.contains("(paused)"), "{held}");
    assert_eq!(count(&central, "requested on collectd/web1/command"), 0);
    let out = fleet.cli("web1", &["resume", "--service", "app"]);
    assert!(out.status.success());
    wait_for("the controller to hear of the resume", || {
        (fleet.status("central")["central"]["hosts"]["paused"] == 0).then_some(())
    });
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web1/command");
    wait_for("web1 repaired", || (fleet.runs("web1") == 1).then_some(()));
    // The controller's own pause, as a silence: kept across a restart.
    let out = fleet.cli(
        "central",
        &[
            "central",
            "pause",
            "app/restart",
            "--hosts",
            "web*",
            "--for",
            "1h",
            "--reason",
            "window",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    central.restart();
    central.wait_for_log("app.lua: loaded");
    fleet.wait_known("central", 1);
    let pauses = fleet.status("central")["central"]["pauses"].clone();
    assert_eq!(pauses[0]["what"], "app/restart on web*", "{pauses}");
    web1.putval("web1/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web1 held back");
    assert!(held.contains("(paused)"), "{held}");
    let out = fleet.cli(
        "central",
        &["central", "resume", "app/restart", "--hosts", "web*"],
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("1 pause(s) ended"), "{answer}");
    web1.putval("web1/app/gauge-up N:0");
    wait_for("web1 repaired again", || {
        (fleet.runs("web1") == 2).then_some(())
    });
}

#[test]
fn two_controllers_with_other_windows_and_clocks_run_a_repair_once() {
    let fleet = Fleet::new();
    let (p1, p2) = (free_port(), free_port());
    let mut central1 = fleet.central("central1", p1, json!({"FleetTaskWindow": 300}));
    // The second one's window is 7 s and its clock 20 s ahead.
    let central2 = fleet.central_with("central2", p2, json!({"FleetTaskWindow": 7}), clock_off(20));
    let web1 = fleet.host("web1", &[p1, p2], 0);
    fleet.wait_known("central1", 1);
    fleet.wait_known("central2", 1);
    let differs = central1.wait_for_log("controller central2 differs");
    assert!(differs.contains("FleetTaskWindow is 7 s"), "{differs}");
    web1.putval("web1/app/gauge-up N:0");
    // Both requests reach the host, with other task ids (other windows):
    // one runs, the other is refused as the same rule's, within its window.
    wait_for("both requests at the host", || {
        let text = web1.log_text();
        (text.contains("running app/restart") && text.contains("refused (code 0x1101)"))
            .then_some(())
    });
    let refused = web1
        .log_text()
        .lines()
        .find(|l| l.contains("refused (code 0x1101)"))
        .unwrap()
        .to_string();
    assert!(
        refused.contains("ran for rule app.lua::app_down"),
        "{refused}"
    );
    fleet.release("web1");
    // Each controller sent one request; one heard its run, the other that
    // it ran for another task; neither counts a failure.
    let guards = wait_for("both controllers heard", || {
        let g: Vec<serde_json::Value> = ["central1", "central2"]
            .iter()
            .map(|name| guard(&fleet.status(name), "app/restart").clone())
            .collect();
        let over = g.iter().all(|g| g["sent"] == 1 && g["in_flight"] == 0);
        let elsewhere: u64 = g.iter().filter_map(|g| g["done_elsewhere"].as_u64()).sum();
        (over && elsewhere == 1).then_some(g)
    });
    for g in &guards {
        assert_eq!(
            g["failures"],
            0,
            "{g}\n{}\n{}",
            central1.log_text(),
            central2.log_text()
        );
    }
    assert_eq!(fleet.runs("web1"), 1, "{}", web1.log_text());
    assert_eq!(count(&web1, "running app/restart"), 1);
    let peers = fleet.status("central1")["central"]["peers"].clone();
    assert_eq!(peers[0]["hostname"], "central2", "{peers}");
    assert_eq!(peers[0]["agrees"], false, "{peers}");
}

#[test]
fn the_controllers_status_shows_its_rule_files_and_a_held_host_is_logged_once() {
    let fleet = Fleet::new();
    let port = free_port();
    let mut central = fleet.central("central", port, json!({"FleetMaxInFlight": "1"}));
    let web1 = fleet.host("web1", &[port], 0);
    let web2 = fleet.host("web2", &[port], 0);
    fleet.wait_known("central", 2);
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web1/command");
    // While web1's repair runs, web2's fault comes five times.
    for _ in 0..5 {
        web2.putval("web2/app/gauge-up N:0");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let status = wait_for("five decisions held back", || {
        let status = fleet.status("central");
        let held = guard(&status, "app/restart")["held"].clone();
        (held == json!([["concurrency", 5]])).then_some(status)
    });
    assert_eq!(count(&central, "app/restart for web2 held back"), 1);
    let files = status["central"]["rule_files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]["path"].as_str().unwrap().ends_with("app.lua"));
    assert_eq!(files[0]["state"], "active");
    assert!(
        files[0]["evaluations"].as_u64().unwrap() >= 6,
        "{}",
        files[0]
    );
    let since = files[0]["since"].clone();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = fleet.status("central");
    assert_eq!(again["central"]["rule_files"][0]["since"], since);
    let received = again["central"]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == "values_received")
        .unwrap()[1]
        .as_f64()
        .unwrap();
    assert!(received >= 6.0, "{again}");
    let out = fleet.cli("central", &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("central rule file ") && text.contains("app.lua: active"),
        "{text}"
    );
    assert!(text.contains("2 hosts known (2 online"), "{text}");
    fleet.release("web1");
    // As it stops, the controller says what central rules took.
    assert!(central.stop().success());
    let line = central
        .log_text()
        .lines()
        .find(|l| l.contains("central: stopped: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no central summary\n{}", central.log_text()));
    let taken: u64 = line
        .split("central: stopped: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(taken >= 6, "{line}");
}

#[test]
fn a_keys_file_from_hosts_keys_names_the_hosts_central_rules_repair() {
    let fleet = Fleet::new();
    let port = free_port();
    let web1 = fleet.host("web1", &[port], 0);
    let web2 = fleet.host("web2", &[port], 0);
    fleet.release("web1");
    fleet.release("web2");
    // The operator keeps web1's line of `hosts --keys`, not web2's.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args([
            "hosts",
            "--keys",
            "--host",
            &format!("127.0.0.1:{}", fleet.broker.port),
        ])
        .args(["--status-topic", "collectd/+/status"])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(keys.lines().count(), 2, "{keys}");
    let web1_line: String = keys.lines().filter(|l| l.starts_with("web1 ")).collect();
    let file = fleet.work.path().join("host-keys");
    std::fs::write(&file, format!("{web1_line}\n")).unwrap();
    let mut central = fleet.central("central", port, json!({"FleetHostKeys": file}));
    fleet.wait_known("central", 1);
    web2.putval("web2/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web2 held back");
    assert!(held.contains("(unknown_host)"), "{held}");
    web1.putval("web1/app/gauge-up N:0");
    // web1's result is signed with the key of the file: believed.
    let line = central.wait_for_log("Notification: severity = OKAY");
    assert!(line.contains("host = web1"), "{line}");
    assert_eq!((fleet.runs("web1"), fleet.runs("web2")), (1, 0));
    let hosts = fleet.status("central")["central"]["hosts"].clone();
    assert_eq!(
        (&hosts["known"], &hosts["online"]),
        (&json!(1), &json!(1)),
        "{hosts}"
    );
}
