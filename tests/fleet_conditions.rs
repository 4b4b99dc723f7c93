//! Fleet conditions against real collectd and mosquitto. Silence: a
//! series collectd stops hearing from (collectd's missing callback, after
//! `Timeout` times its interval) reaches the rule files' `missing`
//! handlers, on a host and on a central collectd. Inhibition: a decision
//! its rule holds back while another condition holds is counted, not
//! carried out, and the repair follows once the condition is gone.

mod common;
use common::central::{Fleet, HostOpts, count, guard};
use common::netpacket::{Gauge, now, packets, send};
use common::{Collectd, CollectdSpec, free_port, wait_for};
use serde_json::json;

/// collectd's main loop, which looks for silent series, every second;
/// value lists every second.
const FAST: &str = "Interval 1\n";

/// A host rule: a silent `nginx` series runs `note/<its instance>`; the
/// value handler beside it never fires (its values are never negative).
const NGINX_SILENT: &str = r#"
return {
  nginx_silent = {
    on = "missing",
    match = { plugin = "nginx" },
    handler = function(m)
      if m.silent_for >= 2 and m.interval == 1 and #m.values == 0 then
        return { service = "note", command = m.plugin_instance }
      end
    end,
  },
  nginx_value = function(m)
    if m.plugin == "nginx" and m.values[1] < 0 then
      return { service = "note", command = "a" }
    end
  end,
}
"#;

#[test]
fn a_series_that_stops_fires_the_hosts_missing_handler_once() {
    let rules = tempfile::Builder::new()
        .prefix("cm-rules")
        .tempdir()
        .unwrap();
    std::fs::write(rules.path().join("silent.lua"), NGINX_SILENT).unwrap();
    let marker = rules.path().join("ran");
    let note = |what: &str| format!("echo {what} >> {}", marker.display());
    let json = json!({
        "LocalMonitorConfigDir": rules.path(),
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "Services": {"note": {"commands": {"a": note("a"), "b": note("b")}}},
    });
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((json.to_string(), 0o600)),
        extra_conf: FAST.into(),
        ..CollectdSpec::default()
    });
    c.wait_for_log("silent.lua: loaded");
    let ran = || std::fs::read_to_string(&marker).unwrap_or_default();
    // Series a reports three times, then stops: it goes silent.
    for _ in 0..3 {
        c.putval("testhost/nginx-a/nginx_requests interval=1 N:5");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    c.wait_until("the handler to run note/a", || {
        (ran() == "a\n").then_some(())
    });
    // Then series b: by the time it is found silent, a has been silent
    // for longer and was not reported again.
    for _ in 0..3 {
        c.putval("testhost/nginx-b/nginx_requests interval=1 N:5");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    c.wait_until("the handler to run note/b", || {
        ran().contains('b').then_some(())
    });
    assert_eq!(ran(), "a\nb\n");
    let log = c.log_text();
    let results: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("plugin = lua-collectd-monitor-local"))
        .collect();
    assert_eq!(results.len(), 2, "{log}");
    assert!(
        results
            .iter()
            .all(|l| l.contains("silent.lua::missing::nginx_silent")),
        "{results:?}"
    );
}

/// A central rule: web1's `rule_files_active` series (one of the plugin's
/// own figures, which every host with the plugin sends) falling silent
/// asks web1's caretaker, web2, to run `app/restart`.
const WEB1_SILENT: &str = r#"
return {
  web1_silent = {
    on = "missing",
    match = { host = "web1", type_instance = "rule_files_active" },
    handler = function(m)
      return { service = "app", command = "restart", host = "web2" }
    end,
  },
}
"#;

#[test]
fn a_silent_host_is_repaired_by_its_caretaker_once_and_an_unproven_series_fires_nothing() {
    let fleet = Fleet::new();
    let port = free_port();
    let rules = fleet.work.path().join("central-rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("silent.lua"), WEB1_SILENT).unwrap();
    // A decision on web1's silence may name web2.
    let origins = fleet.work.path().join("origins");
    std::fs::write(&origins, "asks web1 web2\n").unwrap();
    let mut central = fleet.central_conf(
        "central",
        port,
        json!({"FleetValueOrigins": origins}),
        Vec::new(),
        FAST,
    );
    central.wait_for_log("silent.lua: loaded");
    let mut web1 = fleet.host_with(
        "web1",
        &[port],
        0,
        HostOpts {
            conf: FAST.into(),
            ..HostOpts::signed_as("web1")
        },
    );
    let web2 = fleet.host("web2", &[port], 0);
    fleet.release("web2");
    fleet.wait_known("central", 2);
    // A series of web1 that web1 never sent, unsigned (anyone can send
    // one, once), that the rule's filter admits: collectd finds it silent
    // after twice its 10 s interval, and no rule file hears of it.
    send(
        port,
        &packets(
            &[Gauge {
                host: "web1",
                plugin: "spoof",
                type_instance: "rule_files_active",
                value: 1.0,
                time: now(),
            }],
            None,
        ),
    );
    let counter = |name: &str| {
        let status = fleet.status("central");
        status["central"]["counters"]
            .as_array()
            .and_then(|c| c.iter().find(|p| p[0] == name))
            .and_then(|p| p[1].as_f64())
            .unwrap_or(0.0)
    };
    wait_for(
        "the spoofed series to be found silent and kept from the rules",
        || (counter("silences_unseen") >= 1.0).then_some(()),
    );
    assert_eq!(fleet.runs("web2"), 0);
    assert_eq!(count(&central, "requested on collectd/web2/command"), 0);
    // web1 dies without a word: its series fall silent, web2 repairs it.
    web1.crash();
    let line = central.wait_for_log("Notification: severity = OKAY");
    assert!(
        line.contains("host = web2") && line.contains("silent.lua::missing::web1_silent"),
        "{line}"
    );
    assert_eq!(fleet.runs("web2"), 1);
    assert_eq!(fleet.runs("web1"), 0);
    assert_eq!(
        count(&central, "requested on collectd/web2/command"),
        1,
        "{}",
        central.log_text()
    );
    assert!(counter("silences") >= 2.0);
    drop(web2);
}

/// The shipped example: the app is restarted unless its database is down.
const APP_INHIBITED: &str = include_str!("../rules/app_inhibited.lua");

#[test]
fn a_local_repair_is_held_while_the_database_is_down_and_runs_once_it_is_back() {
    let rules = tempfile::Builder::new()
        .prefix("cm-rules")
        .tempdir()
        .unwrap();
    std::fs::write(rules.path().join("app_inhibited.lua"), APP_INHIBITED).unwrap();
    let marker = rules.path().join("ran");
    let json = json!({
        "LocalMonitorConfigDir": rules.path(),
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "Services": {"app": {"commands": {"restart": format!("echo restarted >> {}", marker.display())}}},
    });
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((json.to_string(), 0o600)),
        ..CollectdSpec::default()
    });
    c.wait_for_log("app_inhibited.lua: loaded");
    c.putval("testhost/postgresql/gauge-up N:0");
    c.putval("testhost/app/gauge-up N:0");
    c.wait_for_log("app/restart inhibited (database down): not run");
    c.putval("testhost/postgresql/gauge-up N:1");
    c.putval("testhost/app/gauge-up N:0");
    c.wait_until("the repair once the database is back", || {
        std::fs::read_to_string(&marker)
            .is_ok_and(|t| t == "restarted\n")
            .then_some(())
    });
    assert_eq!(
        count(&c, "inhibited (database down)"),
        1,
        "{}",
        c.log_text()
    );
}

#[test]
fn a_central_repair_is_held_while_the_hosts_database_is_down_and_sent_once_it_is_back() {
    let fleet = Fleet::new();
    let port = free_port();
    let central = fleet.central_rules(
        "central",
        port,
        json!({}),
        Vec::new(),
        "",
        &[("app_inhibited.lua", APP_INHIBITED)],
    );
    let web1 = fleet.host("web1", &[port], 0);
    fleet.release("web1");
    fleet.wait_known("central", 1);
    web1.putval("web1/postgresql/gauge-up N:0");
    web1.putval("web1/app/gauge-up N:0");
    let inhibited = || {
        guard(&fleet.status("central"), "app/restart")["held"]
            .as_array()
            .and_then(|h| h.iter().find(|p| p[0] == "inhibited"))
            .and_then(|p| p[1].as_u64())
            .unwrap_or(0)
    };
    wait_for("the repair to be held back as inhibited", || {
        (inhibited() >= 1).then_some(())
    });
    assert_eq!(fleet.runs("web1"), 0);
    assert_eq!(count(&central, "requested on collectd/web1/command"), 0);
    assert!(
        count(&central, "held back (inhibited: database down)") >= 1,
        "{}",
        central.log_text()
    );
    web1.putval("web1/postgresql/gauge-up N:1");
    web1.putval("web1/app/gauge-up N:0");
    wait_for("web1 to be repaired", || {
        (fleet.runs("web1") == 1).then_some(())
    });
    assert_eq!(count(&central, "requested on collectd/web1/command"), 1);
}

#[test]
fn a_load_rise_on_three_of_four_hosts_gives_one_notification_and_no_command() {
    let fleet = Fleet::new();
    let port = free_port();
    // The four web hosts are known from a host-key file (their values
    // come from this test, signed as each host).
    let public = std::fs::read_to_string(&fleet.trusted).unwrap();
    let public = public.split_whitespace().nth(2).unwrap();
    let keys = fleet.work.path().join("host-keys");
    let lines: String = (1..=4)
        .map(|i| format!("web{i} ed25519 {public}\n"))
        .collect();
    std::fs::write(&keys, lines).unwrap();
    let mut central = fleet.central_rules(
        "central",
        port,
        json!({"FleetHostKeys": keys}),
        Vec::new(),
        "",
        &[("pool_load.lua", include_str!("../rules/pool_load.lua"))],
    );
    fleet.wait_known("central", 4);
    let start = now() - 30.0;
    for reading in 0..3 {
        for i in 1..=4 {
            let host = format!("web{i}");
            let value = if i == 4 { 1.0 } else { 9.5 };
            let password = common::central::password(&host);
            send(
                port,
                &packets(
                    &[Gauge {
                        host: &host,
                        plugin: "load",
                        type_instance: "",
                        value,
                        time: start + f64::from(reading) * 10.0,
                    }],
                    Some((&host, &password)),
                ),
            );
        }
    }
    let counter = |name: &str| {
        fleet.status("central")["central"]["counters"]
            .as_array()
            .and_then(|c| c.iter().find(|p| p[0] == name))
            .and_then(|p| p[1].as_f64())
            .unwrap_or(0.0)
    };
    wait_for("the twelve value lists to be evaluated", || {
        (counter("evaluations") >= 12.0).then_some(())
    });
    let line = central.wait_for_log("Notification: severity = WARNING");
    assert!(
        line.contains("pool_load.lua::metric::load_high")
            && line.contains("web pool: 3 of 4 hosts loaded"),
        "{line}"
    );
    // One notification for the three hosts that asked, and no request.
    assert_eq!(
        count(&central, "Notification: severity = WARNING"),
        1,
        "{}",
        central.log_text()
    );
    assert_eq!(count(&central, "requested on collectd/"), 0);
}

#[test]
fn a_local_notify_decision_dispatches_one_warning_a_minute_and_runs_nothing() {
    let rules = tempfile::Builder::new()
        .prefix("cm-rules")
        .tempdir()
        .unwrap();
    std::fs::write(
        rules.path().join("note.lua"),
        r#"return { app_slow = function(m)
  if m.plugin == "app" then
    print("seen " .. m.values[1])
    return { notify = "app slow: " .. m.values[1] }
  end
end }"#,
    )
    .unwrap();
    let json = json!({
        "LocalMonitorConfigDir": rules.path(),
        "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
        "Services": {},
    });
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((json.to_string(), 0o600)),
        ..CollectdSpec::default()
    });
    c.wait_for_log("note.lua: loaded");
    c.putval("testhost/app/gauge-latency N:5");
    let line = c.wait_for_log("Notification: severity = WARNING");
    assert!(
        line.contains("note.lua::metric::app_slow") && line.contains("app slow: 5"),
        "{line}"
    );
    // A second request within the minute: evaluated, no second warning.
    c.putval("testhost/app/gauge-latency N:6");
    // A third value's print is reported after the second's decision.
    c.putval("testhost/app/gauge-latency N:7");
    c.wait_for_log("seen 7");
    assert_eq!(count(&c, "notification: app slow"), 1);
    assert_eq!(count(&c, "Notification: severity = WARNING"), 1);
}
