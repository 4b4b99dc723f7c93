//! collectd loads monitor.so, reads its configuration and stops cleanly.

mod common;
use common::{Collectd, CollectdSpec};

const HELLO: &str =
    r#"{"Services": {"hello": {"commands": {"exec": "/bin/echo \"Hello World!\""}}}}"#;

fn spec(block: &str, json: Option<(&str, u32)>) -> CollectdSpec {
    CollectdSpec {
        monitor_block: block.into(),
        config_json: json.map(|(t, m)| (t.to_string(), m)),
        ..Default::default()
    }
}

/// Lines our plugin logged at warning or error level.
fn our_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("monitor:") && (l.contains("[warning]") || l.contains("[error]")))
        .collect()
}

#[test]
fn loads_runs_and_stops_cleanly_on_sigterm() {
    let mut c = Collectd::start(spec(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some((HELLO, 0o600)),
    ));
    assert!(
        c.log_text()
            .contains("plugin \"monitor\" successfully loaded")
    );
    let ready = c.wait_for_log("monitor: collectd-monitor");
    assert!(
        ready.contains("1 services with 1 recovery commands"),
        "{ready}"
    );
    let status = c.stop();
    assert!(status.success(), "collectd exit status {status}");
    let log = c.log_text();
    assert!(log.contains("monitor: stopped: "), "{log}");
    assert!(log.contains("Exiting normally"), "{log}");
    assert_eq!(our_complaints(&log), Vec::<&str>::new());
}

#[test]
fn loads_without_any_plugin_block() {
    let mut c = Collectd::start(CollectdSpec::default());
    let ready = c.wait_for_log("monitor: collectd-monitor");
    assert!(
        ready.contains("from collectd.conf only") && ready.contains("0 services"),
        "{ready}"
    );
    assert!(c.stop().success());
}

#[test]
fn config_json_wins_over_the_block_key_by_key() {
    // The block alone would silence info; config.json's LogLevel wins and
    // its Services replace the block's.
    let block = r#"MonitorConfigPath "@CONFIG_JSON@"
  LogLevel "error"
  <Service "a">
    Command "x" "true"
  </Service>"#;
    let json = r#"{"LogLevel": "info", "Services": {"b": {"commands": {"y": "true", "z": "false"}}, "c": {}}}"#;
    let mut c = Collectd::start(spec(block, Some((json, 0o600))));
    let ready = c.wait_for_log("monitor: collectd-monitor");
    assert!(
        ready.contains("2 services with 2 recovery commands"),
        "{ready}"
    );
}

#[test]
fn block_settings_apply_when_config_json_is_silent() {
    // The same block LogLevel, with no config.json: the plugin runs (its
    // remote half, lacking a topic, says so at error level, after the point
    // where it announces itself at info level), and the info line is not
    // there.
    let block = "LogLevel \"error\"\nHost \"127.0.0.1:1\"\n<Service \"a\">\n  Command \"x\" \"true\"\n</Service>";
    let mut c = Collectd::start(spec(block, None));
    let error = c.wait_for_log("monitor: remote commands disabled");
    assert!(error.contains("CommandTopic"), "{error}");
    assert!(c.stop().success());
    let log = c.log_text();
    assert!(!log.contains("monitor: collectd-monitor"), "{log}");
    assert!(!log.contains("monitor: stopped"), "{log}");
}

/// A broken configuration is logged with file and key, reported as a
/// FAILURE notification (which collectd's logfile shows), and collectd
/// keeps running and accepting values.
fn assert_disabled_with(block: &str, json: Option<(&str, u32)>, expected: &[&str]) {
    let mut c = Collectd::start(spec(block, json));
    let error = c.wait_for_log("monitor: configuration error, plugin disabled until fixed");
    for e in expected {
        assert!(error.contains(e), "{error:?} lacks {e:?}");
    }
    assert!(error.contains("[error]"), "{error}");
    let notification = c.wait_for_log("Notification: severity = FAILURE");
    assert!(
        notification.contains("host = testhost, plugin = monitor, type = config")
            && notification.contains("configuration error"),
        "{notification}"
    );
    c.putval("testhost/memory/memory-free N:1");
    assert!(!c.log_text().contains("monitor: collectd-monitor"));
    assert!(c.stop().success());
}

#[test]
fn unknown_key_in_config_json_disables_the_plugin_not_collectd() {
    assert_disabled_with(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some((r#"{"Hots": "broker"}"#, 0o600)),
        &["config.json", "unknown field `Hots`"],
    );
}

#[test]
fn wrong_type_in_config_json_names_the_key() {
    assert_disabled_with(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some((r#"{"CleanSession": "no"}"#, 0o600)),
        &["config.json", "key `CleanSession`", "expected a boolean"],
    );
}

#[test]
fn wrong_type_in_the_block_names_the_block_and_key() {
    assert_disabled_with(
        "QoS \"two\"",
        None,
        &["<Plugin monitor> block of collectd.conf", "key `QoS`"],
    );
}

#[test]
fn unknown_key_in_the_block_is_an_error() {
    assert_disabled_with(
        "Hots \"broker\"",
        None,
        &["<Plugin monitor>", "unknown field `Hots`"],
    );
}

#[test]
fn missing_config_json_is_an_error() {
    assert_disabled_with(
        "MonitorConfigPath \"/nonexistent/config.json\"",
        None,
        &["/nonexistent/config.json: cannot read"],
    );
}

#[test]
fn malformed_config_json_reports_the_position() {
    assert_disabled_with(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some(("{\n \"QoS\": 1,\n}", 0o600)),
        &["config.json: not valid JSON", "line 3"],
    );
}

#[test]
fn world_readable_config_json_is_warned_about() {
    let mut c = Collectd::start(spec(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some((HELLO, 0o644)),
    ));
    let warning = c.wait_for_log("is readable by group or others");
    assert!(
        warning.contains("[warning]") && warning.contains("chmod 600"),
        "{warning}"
    );
    c.wait_for_log("monitor: collectd-monitor");
}

#[test]
fn collectd_stops_when_the_state_directory_was_removed_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let json = format!(r#"{{"StateDir": "{}"}}"#, state.display());
    let mut c = Collectd::start(spec(
        "MonitorConfigPath \"@CONFIG_JSON@\"",
        Some((&json, 0o600)),
    ));
    c.wait_for_log("control socket for `collectd-monitor status`");
    assert!(state.join("control.sock").exists());
    // A tmp cleaner, or an operator.
    std::fs::remove_dir_all(&state).unwrap();
    let status = c.stop();
    assert!(status.success(), "collectd exit status {status}");
}

/// A collectd whose only log plugin is syslog, with nothing listening on
/// the syslog socket (a container): the plugin's lines go to
/// `StateDir/monitor.log` too, rather than nowhere.
#[test]
fn with_syslog_and_no_syslog_socket_the_plugin_logs_to_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(common::plugin_library(), plugins.join("monitor.so")).unwrap();
    let state = dir.path().join("state");
    let conf = dir.path().join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            "Hostname \"testhost\"\nBaseDir \"{base}\"\nPIDFile \"{base}/collectd.pid\"\nInterval 10\nLoadPlugin syslog\nPluginDir \"{plugins}\"\nLoadPlugin monitor\n<Plugin monitor>\n  StateDir \"{state}\"\n</Plugin>\n",
            base = dir.path().display(),
            plugins = plugins.display(),
            state = state.display(),
        ),
    )
    .unwrap();
    /// collectd, stopped however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _collectd = Running(
        std::process::Command::new("/usr/sbin/collectd")
            .args(["-f", "-C"])
            .arg(&conf)
            .env(
                "COLLECTD_MONITOR_TEST_DEV_LOG",
                dir.path().join("no-such-socket"),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("collectd"),
    );
    let log = state.join("monitor.log");
    let text = common::wait_for("the plugin's own log", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("monitor: collectd-monitor ") && t.contains(" ready"))
    });
    assert!(text.contains("nothing listens on /dev/log"), "{text}");
}
