//! Central rules end to end: collectd hosts send their values to a central
//! collectd (network plugin, UDP on loopback); the central collectd runs
//! rule files over them (`FleetMonitorConfigDir`) and sends each repair,
//! signed, to the host it is for, through a real mosquitto; the host runs
//! it and answers; the central collectd logs the result notification.

mod common;
use common::central::{APP_RULE, Fleet, count};
use common::{Collectd, free_port, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

#[test]
fn a_fault_on_one_host_is_repaired_on_that_host_and_reported_centrally() {
    let fleet = Fleet::new();
    let port = free_port();
    let mut central = fleet.central("central", port, json!({}));
    let web1 = fleet.host("web1", &[port], 0);
    let web2 = fleet.host("web2", &[port], 0);
    fleet.release("web2");
    fleet.wait_known("central", 2);
    web1.putval("web1/app/gauge-up N:1");
    web2.putval("web2/app/gauge-up N:0");
    let line = central.wait_for_log("Notification: severity = OKAY");
    assert!(
        line.contains("host = web2") && line.contains("plugin = monitor-central,"),
        "{line}"
    );
    assert!(line.contains("app.lua::metric::app_down"), "{line}");
    assert_eq!(fleet.runs("web2"), 1);
    // The request was signed: web2 trusts only the controller's key.
    assert!(count(&web2, "running app/restart") == 1);
    // web1 was healthy: no request reached it, and it ran nothing.
    assert_eq!(fleet.runs("web1"), 0);
    assert_eq!(count(&web1, "running app/restart"), 0);
    assert_eq!(count(&central, "requested on collectd/web1/command"), 0);
    // The host's log says who asked; the controller's status lists the repair.
    assert_eq!(
        count(&web2, "comes from central: "),
        1,
        "{}",
        web2.log_text()
    );
    let status = fleet.status("central");
    let recent = &status["central"]["recent"][0];
    assert_eq!(
        (&recent["host"], &recent["command"], &recent["code"]),
        (&json!("web2"), &json!("app/restart"), &json!(0)),
        "{status}"
    );
}

#[test]
fn two_central_collectds_fed_the_same_values_cause_one_run() {
    let fleet = Fleet::new();
    let (p1, p2) = (free_port(), free_port());
    let central1 = fleet.central("central1", p1, json!({}));
    let central2 = fleet.central("central2", p2, json!({}));
    let web1 = fleet.host("web1", &[p1, p2], 0);
    fleet.wait_known("central1", 1);
    fleet.wait_known("central2", 1);
    web1.putval("web1/app/gauge-up N:0");
    // Both requests reach the host (the second while the first still runs,
    // or after: the journal answers it either way), then it may finish.
    wait_for("both requests at the host", || {
        (count(&web1, "running app/restart") == 1 && count(&web1, "refused (code 0x1100)") == 1)
            .then_some(())
    });
    fleet.release("web1");
    let done = "central: app/restart on web1 (task ";
    let done = |c: &Collectd| {
        c.log_text()
            .lines()
            .filter(|l| l.contains(done) && l.contains("finished with code"))
            .count()
    };
    wait_for("both controllers heard the result", || {
        (done(&central1) == 1 && done(&central2) == 1).then_some(())
    });
    // One run on the host, whose result both controllers report; the
    // second request was answered 0x1100, which both read.
    assert_eq!(
        fleet.runs("web1"),
        1,
        "{}\n{}",
        web1.log_text(),
        central1.log_text()
    );
    assert_eq!(count(&web1, "running app/restart"), 1);
    for c in [&central1, &central2] {
        assert_eq!(count(c, "finished with code 0"), 1, "{}", c.log_text());
    }
    let duplicate = "was requested by another controller too";
    assert!(count(&central1, duplicate) + count(&central2, duplicate) >= 1);
    // `status` counts what the log says.
    for (name, c) in [("central1", &central1), ("central2", &central2)] {
        let status = fleet.status(name);
        assert_eq!(
            status["central"]["requested_by_others"].as_u64(),
            Some(count(c, duplicate) as u64),
            "{status}"
        );
    }
    assert_eq!(
        count(&web1, "refused (code 0x1100)"),
        1,
        "{}",
        web1.log_text()
    );
}

#[test]
fn the_guards_hold_back_repairs_past_the_concurrency_and_stop_at_the_error_budget() {
    let fleet = Fleet::new();
    let port = free_port();
    let mut central = fleet.central(
        "central",
        port,
        json!({"FleetMaxInFlight": "1", "FleetErrorBudget": 2, "FleetHostCooldown": 0}),
    );
    // Each repair runs until released, and fails.
    let hosts: Vec<Collectd> = ["web1", "web2", "web3"]
        .iter()
        .map(|h| fleet.host(h, &[port], 3))
        .collect();
    fleet.wait_known("central", 3);
    hosts[0].putval("web1/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web1/command");
    // While web1's repair runs, web2's fault is held back.
    hosts[1].putval("web2/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web2 held back");
    assert!(held.contains("(concurrency)"), "{held}");
    fleet.release("web1");
    central.wait_for_log("finished with code 3");
    fleet.release("web2");
    // Sent once web1's is over; its failure is the second: the budget stops
    // the command, and says so.
    hosts[1].putval("web2/app/gauge-up N:0");
    let stopped = central.wait_for_log("Notification: severity = FAILURE, host = central");
    assert!(
        stopped.contains("central repairs of app/restart stopped"),
        "{stopped}"
    );
    hosts[2].putval("web3/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web3 held back");
    assert!(held.contains("(stopped)"), "{held}");
    assert_eq!(
        (fleet.runs("web1"), fleet.runs("web2"), fleet.runs("web3")),
        (1, 1, 0)
    );

    // `status` shows the guards; an operator resumes the command.
    let cli = |args: &[&str]| {
        let out = fleet.cli("central", args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status: Value = serde_json::from_str(&cli(&["status", "--json"])).unwrap();
    let guard = &status["central"]["commands"][0];
    assert_eq!(guard["command"], "app/restart", "{status}");
    assert_eq!(guard["stopped"], true, "{guard}");
    assert_eq!(guard["failures"], 2, "{guard}");
    assert_eq!(
        guard["held"],
        json!([["stopped", 1], ["concurrency", 1]]),
        "{guard}"
    );
    let text = cli(&["status"]);
    assert!(
        text.contains("app/restart: 0 in repair, 2 of 2 failures in the window, 2 sent (0 run for another task), STOPPED"),
        "{text}"
    );
    let answer = cli(&["central", "resume", "app/restart"]);
    assert!(
        answer.contains("central repairs of app/restart resumed"),
        "{answer}"
    );
    fleet.release("web3");
    hosts[2].putval("web3/app/gauge-up N:0");
    central.wait_for_log("requested on collectd/web3/command");
    wait_for("web3 repaired", || (fleet.runs("web3") == 1).then_some(()));
}

#[test]
fn a_host_whose_presence_says_offline_gets_no_request() {
    let fleet = Fleet::new();
    // web9's presence, as its last will leaves it when it vanishes.
    let offline = json!({"hostname": "web9", "state": "offline", "version": "0", "since": ""});
    let out = fleet.broker.publish(
        "collectd/web9/status",
        &offline.to_string(),
        &["-r", "-q", "1"],
    );
    assert!(out.status.success());
    // web1's values may speak for web9 (a relay, as a proxy collectd is).
    let origins = fleet.work.path().join("origins");
    std::fs::write(&origins, "user web1 web1 web9\n").unwrap();
    let port = free_port();
    let mut central = fleet.central("central", port, json!({"FleetValueOrigins": origins}));
    let web1 = fleet.host("web1", &[port], 0);
    fleet.release("web1");
    fleet.wait_known("central", 2);
    // A value of web9 reaches the central collectd through web1's network
    // plugin: a fault, but web9 is offline.
    web1.putval("web9/app/gauge-up N:0");
    let held = central.wait_for_log("app/restart for web9 held back");
    assert!(held.contains("(offline)"), "{held}");
    // web1 is online: its fault is repaired.
    web1.putval("web1/app/gauge-up N:0");
    central.wait_for_log("central: app/restart on web1 (task");
    assert_eq!(count(&central, "requested on collectd/web9/command"), 0);
    assert_eq!(fleet.runs("web1"), 1);
}

#[test]
fn a_decision_may_name_another_host_only_where_the_origins_file_allows_it() {
    let fleet = Fleet::new();
    let port = free_port();
    let origins = fleet.work.path().join("origins");
    std::fs::write(&origins, "asks lb* web*\n").unwrap();
    let mut central = fleet.central("central", port, json!({"FleetValueOrigins": origins}));
    let lb = fleet.host("lb1", &[port], 0);
    let web1 = fleet.host("web1", &[port], 0);
    fleet.release("web1");
    fleet.wait_known("central", 2);
    // web1's own values may not name another host: held back.
    web1.putval("web1/lb/gauge-lb1 N:0");
    let held = central.wait_for_log("app/restart for lb1 held back");
    assert!(held.contains("(unproven)"), "{held}");
    // The load balancer says its backend web1 is down.
    lb.putval("lb1/lb/gauge-web1 N:0");
    let line = central.wait_for_log("Notification: severity = OKAY");
    assert!(line.contains("host = web1"), "{line}");
    assert_eq!((fleet.runs("web1"), fleet.runs("lb1")), (1, 0));
    assert_eq!(count(&central, "requested on collectd/lb1/command"), 0);
}

#[test]
fn rules_check_and_test_work_on_central_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.lua");
    std::fs::write(&file, APP_RULE).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        r#"{"host": "web2", "plugin": "app", "type": "gauge", "type_instance": "up", "values": [0]}"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(args)
            .output()
            .unwrap()
    };
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = run(&["rules", "check", &path(&file)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["rules", "test", &path(&file), "--input", &path(&input)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("app/restart"), "{stdout}");
}
