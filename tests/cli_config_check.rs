//! `collectd-monitor config check` validates config.json exactly as the
//! plugin does.

mod common;
use std::path::Path;
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["config", "check"])
        .arg(path)
        .output()
        .expect("run collectd-monitor")
}

#[test]
fn the_shipped_examples_pass_and_are_summarised() {
    for (file, expect) in [
        ("conf/config.json", "service nginx: restart"),
        (
            "conf/config-remote.json",
            "MQTT broker: mqtt.example.net:8883 (TLS, QoS 2",
        ),
    ] {
        // As installed: the files it names (TrustedKeys) next to it.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo.join(file)).unwrap().replace(
            "/etc/collectd/monitor/trusted-keys",
            &repo.join("conf/trusted-keys").display().to_string(),
        );
        let installed = dir.path().join("config.json");
        std::fs::write(&installed, text).unwrap();
        std::fs::set_permissions(
            &installed,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let out = check(&installed);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(": OK") && stdout.contains(expect),
            "{stdout}"
        );
    }
}

#[test]
fn errors_exit_non_zero_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        r#"{"Services": {"web": {"commands": {"restart": ["systemctl"]}}}}"#,
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&path.display().to_string())
            && stderr.contains("key `Services.web.commands.restart`"),
        "{stderr}"
    );
}

#[test]
fn group_readable_files_get_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{}").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let out = check(&path);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "));
}

#[test]
fn incomplete_remote_settings_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"Host": "broker", "CommandTopic": "c"}"#).unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CommandResultTopic"), "{stderr}");

    std::fs::write(&path, r#"{"Host": "broker", "CommandTopic": "c", "CommandResultTopic": "r", "Secure": true, "CACert": "/nonexistent/ca.pem"}"#).unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}

#[test]
fn settings_that_cannot_work_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    for (json, expect) in [
        (
            r#"{"RuleMemoryLimit": 0}"#,
            "key `RuleMemoryLimit`: must be greater than 0",
        ),
        (
            r#"{"RuleFuel": 0}"#,
            "key `RuleFuel`: must be greater than 0",
        ),
        (
            r#"{"RuleTimeout": 0}"#,
            "key `RuleTimeout`: must be greater than 0",
        ),
        (
            r#"{"MaxConcurrentCommands": 0}"#,
            "key `MaxConcurrentCommands`",
        ),
        (
            r#"{"Host": "b", "CommandTopic": "t/%{hostname}", "CommandResultTopic": "t/%{hostname}"}"#,
            "would take its own results for commands",
        ),
        (
            r#"{"Host": "b", "CommandTopic": "c/#", "CommandResultTopic": "r/x", "StatusTopic": "c/x/status"}"#,
            "the host's presence would arrive as a command",
        ),
        (
            r#"{"Services": {"a": {"commands": {"x": "true"}}}, "Services": {}}"#,
            "the key `Services` appears twice",
        ),
    ] {
        std::fs::write(&path, json).unwrap();
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{json}: {stderr}");
        assert!(stderr.contains(expect), "{json}: {stderr}");
    }
    // A file far larger than any config.json is refused before it is read.
    let big = std::fs::File::create(&path).unwrap();
    big.set_len(100 * 1024 * 1024).unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("larger than 1048576 bytes"), "{stderr}");
}

#[test]
fn trusted_keys_are_listed_with_their_rights_and_bad_key_lines_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("trusted.keys");
    let public = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    std::fs::write(
        &keys,
        format!(
            "ops ed25519 {public} commands=hello/*,nginx/restart config=yes\nci ed25519 {public}\n"
        ),
    )
    .unwrap();
    let path = dir.path().join("config.json");
    let config = serde_json::json!({
        "Host": "broker", "CommandTopic": "c/%{hostname}", "CommandResultTopic": "r/%{hostname}",
        "TrustedKeys": keys,
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("requests: signed only")
            && stdout.contains(&format!(
                "ops: commands=hello/*,nginx/restart config=yes ({}:1)",
                keys.display()
            ))
            && stdout.contains("ci: commands=none config=no"),
        "{stdout}"
    );
    std::fs::write(&keys, format!("ops ed25519 {public} commands=hello\n")).unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TrustedKeys: ")
            && stderr.contains(":1: key ops: command right \"hello\" is not service/command"),
        "{stderr}"
    );
    // Without TrustedKeys the summary says requests are not authenticated.
    let config = serde_json::json!({
        "Host": "broker", "CommandTopic": "c/%{hostname}", "CommandResultTopic": "r/%{hostname}",
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let stdout = String::from_utf8_lossy(&check(&path).stdout).into_owned();
    assert!(stdout.contains("requests: NOT authenticated"), "{stdout}");
}

/// `config check` of a collectd.conf: collectd's own parser reads it, the
/// `<Plugin monitor>` block is merged with its config.json as the plugin
/// would, and errors name the file (and, from the parser, the line).
#[test]
fn a_collectd_conf_is_read_by_collectds_parser_and_its_block_checked() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("config.json");
    std::fs::write(
        &json,
        r#"{"Host": "broker", "CommandTopic": "c/%{hostname}", "CommandResultTopic": "r/%{hostname}"}"#,
    )
    .unwrap();
    std::fs::set_permissions(&json, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let conf = dir.path().join("collectd.conf");
    let run = |text: &str, extra: &[&str]| {
        std::fs::write(&conf, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(["config", "check"])
            .arg(&conf)
            .arg("--plugin")
            .arg(common::plugin_library())
            .args(extra)
            .output()
            .expect("run collectd-monitor")
    };
    let good = format!(
        "Hostname \"web1\"\nLoadPlugin cpu\nLoadPlugin monitor\n<Plugin monitor>\n  MonitorConfigPath \"{}\"\n  LogLevel \"info\"\n  <Service \"hello\">\n    Command \"exec\" \"echo hi\"\n  </Service>\n</Plugin>\n",
        json.display()
    );
    let out = run(&good, &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("config.json: {}", json.display()))
            && stdout.contains("MQTT broker: broker:1883")
            // `%{hostname}` as collectd will expand it: the file's Hostname.
            && stdout.contains("client id collectd-monitor-web1)")
            && stdout.contains("service hello: exec"),
        "{stdout}"
    );
    assert!(!stderr.contains("no `LoadPlugin monitor`"), "{stderr}");

    // The packaged layout: collectd.conf only includes a directory, whose
    // file loads the plugin; the plugin found through `PluginDir`.
    let conf_d = dir.path().join("collectd.conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(
        conf_d.join("monitor.conf"),
        format!(
            "LoadPlugin monitor\n<Plugin monitor>\n  MonitorConfigPath \"{}\"\n</Plugin>\n",
            json.display()
        ),
    )
    .unwrap();
    std::fs::write(conf_d.join("other.txt"), "this is not read\n").unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(common::plugin_library(), plugins.join("monitor.so")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "PluginDir \"{}\"\nLoadPlugin cpu\n<Include \"{}\">\n  Filter \"*.conf\"\n</Include>\n",
            plugins.display(),
            conf_d.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["config", "check"])
        .arg(&conf)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("MQTT broker: broker:1883"),
        "the included block: {stdout}"
    );
    assert!(
        !stderr.contains("no `LoadPlugin monitor`") && !stderr.contains("Include"),
        "{stderr}"
    );

    // collectd's parser: the line of the mistake (collectd counts the end
    // of line 4 as line 5, as when it reads the file itself).
    let out = run(
        "LoadPlugin monitor\n<Plugin monitor>\n  LogLevel \"info\"\n<Plugin\n",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("Parse error in file `{}', line 5", conf.display())),
        "{stderr}"
    );

    // The block, as the plugin reads it.
    let out = run(
        "LoadPlugin monitor\n<Plugin monitor>\n  Hots \"x\"\n</Plugin>\n",
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kind"], "collectd.conf");
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("Hots")),
        "{report}"
    );
}

/// Usage errors of the new commands exit 2 and say what is wrong.
#[test]
fn usage_errors_of_status_and_config_check_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("collectd.conf");
    std::fs::write(&conf, "LoadPlugin cpu\n").unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(args)
            .output()
            .unwrap()
    };
    for (args, says) in [
        (
            vec!["status", "--watch", "0"],
            "must be more than 0 and at most",
        ),
        (
            vec![
                "config",
                "check",
                conf.to_str().unwrap(),
                "--collectd",
                "/nonexistent/collectd",
                "--plugin",
                common::plugin_library().to_str().unwrap(),
            ],
            "--collectd /nonexistent/collectd",
        ),
        (
            vec![
                "config",
                "check",
                conf.to_str().unwrap(),
                "--plugin",
                "/nonexistent/monitor.so",
            ],
            "--plugin /nonexistent/monitor.so",
        ),
        (
            vec!["config", "check", "/nonexistent/collectd.conf"],
            "/nonexistent/collectd.conf",
        ),
    ] {
        let out = cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn central_settings_are_summarised_their_files_checked_and_no_proof_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let origins = dir.path().join("origins");
    let keys = dir.path().join("host-keys");
    std::fs::write(&origins, "user relay1 web*\nasks lb* web*\n").unwrap();
    std::fs::write(
        &keys,
        "web1 ed25519 A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n",
    )
    .unwrap();
    let config = |extra: &str| {
        format!(
            r#"{{"Host": "broker", "CommandTopic": "collectd/c/command", "CommandResultTopic": "collectd/c/result",
                "FleetMonitorConfigDir": "{}", "FleetCommandTopic": "collectd/%{{hostname}}/command",
                "FleetResultTopic": "collectd/%{{hostname}}/result", "FleetStatusTopic": "collectd/%{{hostname}}/status"{extra}}}"#,
            dir.path().display()
        )
    };
    let write = |text: String| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    };
    write(config(&format!(
        r#", "FleetValueOrigins": "{}", "FleetHostKeys": "{}""#,
        origins.display(),
        keys.display()
    )));
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("central rules: "), "{stdout}");
    assert!(stdout.contains("the 1 of"), "{stdout}");
    assert!(
        stdout.contains(&format!("as {} says", origins.display())),
        "{stdout}"
    );
    // A bad origins line fails the check with its line.
    std::fs::write(&origins, "allow everyone\n").unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("origins:1:"), "{stderr}");
    // No proof: loud.
    write(config(r#", "FleetAcceptUnprovenValues": true"#));
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING: FleetAcceptUnprovenValues is true"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("WITHOUT proof"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
