//! collectd.conf replacement end to end: real mosquitto, collectd started
//! as a daemon with a PID file, `collectd-monitor send-config`, and the
//! helper process restarting collectd for real.

mod common;
use common::{Collectd, CollectdSpec, Mosquitto, alive, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

const COMMANDS: &str = "cmd/testhost";
const RESULTS: &str = "res/testhost";

struct Setup {
    broker: Mosquitto,
    collectd: Collectd,
    work: TempDir,
}

impl Setup {
    /// A daemonized collectd whose plugin takes commands from a fresh broker.
    /// `collectd_service` is `Services.collectd` (or null).
    fn start(collectd_service: Value, extra: Value) -> Setup {
        let broker = Mosquitto::start();
        // csv refuses directories whose name starts with a dot (".tmpXYZ").
        let work = tempfile::Builder::new()
            .prefix("cm-work")
            .tempdir()
            .unwrap();
        let mut config = json!({
            "Host": format!("127.0.0.1:{}", broker.port),
            "CommandTopic": "cmd/%{hostname}",
            "CommandResultTopic": "res/%{hostname}",
            "ReconnectInterval": 1,
            "StateDir": work.path().join("state"),
            "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
            "CommandTimeout": 20,
            "Services": {"hello": {"commands": {"exec": "echo hi"}}}
        });
        if !collectd_service.is_null() {
            config["Services"]["collectd"] = collectd_service;
        }
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let mut collectd = Collectd::start(CollectdSpec {
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            daemonize: true,
            ..Default::default()
        });
        collectd.wait_for_log(&format!("listening for commands on {COMMANDS}"));
        Setup {
            broker,
            collectd,
            work,
        }
    }

    /// The same, with a `Services.collectd` stop command that waits while
    /// the returned file exists (the test decides when a push goes on).
    fn start_with_held_stop() -> (Setup, PathBuf) {
        let mut s = Setup::start(Value::Null, json!({}));
        let marker = s.work.path().join("hold-stop");
        std::fs::write(&marker, "").unwrap();
        let json_path = s.collectd.config_json.clone();
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let pid_file = s.collectd.pid_file().display().to_string();
        config["Services"]["collectd"] = json!({"commands": {
            "stop": format!("while [ -e {} ]; do sleep 0.1; done; kill $(cat {pid_file})", marker.display()),
        }});
        std::fs::write(&json_path, config.to_string()).unwrap();
        s.collectd.restart();
        s.collectd.wait_for_log("listening for commands");
        (s, marker)
    }

    /// Publishes a push of the good config as task `id`, without waiting
    /// for its result.
    fn publish_push(&self, id: u64) {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let m = json!({"task_id": id, "timestamp": now, "config": self.good_config()}).to_string();
        assert!(
            self.broker
                .publish(COMMANDS, &m, &["-q", "1"])
                .status
                .success()
        );
    }

    /// The pid of the replacement helper once it holds the lock.
    fn helper_with_lock(&self) -> u64 {
        let lock = self.work.path().join("state/replace.lock");
        wait_for("the helper to claim the lock", || {
            let l: Value = serde_json::from_str(&std::fs::read_to_string(&lock).ok()?).ok()?;
            l["helper_pid"].as_u64()
        })
    }

    fn conf_text(&self) -> String {
        std::fs::read_to_string(self.collectd.conf_path()).unwrap()
    }

    /// The running config plus a csv writer into the work directory.
    fn good_config(&self) -> String {
        format!(
            "LoadPlugin csv\n<Plugin csv>\n  DataDir \"{}\"\n</Plugin>\n<LoadPlugin load>\n  Interval 1\n</LoadPlugin>\n{}",
            self.csv_dir().display(),
            self.conf_text()
        )
    }

    /// Under collectd's BaseDir: where the push policy lets csv write.
    fn csv_dir(&self) -> PathBuf {
        self.collectd.dir.path().join("csv")
    }

    fn push(&self, config: &str, extra: &[&str]) -> Output {
        let file = self
            .work
            .path()
            .join(format!("push-{}.conf", fastrand_name()));
        std::fs::write(&file, config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .arg("send-config")
            .arg(&file)
            .args(["--host", &format!("127.0.0.1:{}", self.broker.port)])
            .args([
                "--topic",
                COMMANDS,
                "--result-topic",
                RESULTS,
                "--timeout",
                "90",
                "--json",
            ])
            .args(extra)
            .output()
            .expect("run collectd-monitor send-config")
    }

    /// Pushes and returns (code, message).
    fn push_code(&self, config: &str) -> (i64, String) {
        self.push_code_with(config, &[])
    }

    /// Pushes with more `send-config` arguments; returns (code, message).
    fn push_code_with(&self, config: &str, extra: &[&str]) -> (i64, String) {
        let out = self.push(config, extra);
        let result: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
        let code = result["code"].as_i64().unwrap();
        assert_eq!(out.status.code(), Some(if code == 0 { 0 } else { 1 }));
        (code, result["message"].as_str().unwrap().to_string())
    }
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

#[test]
fn a_good_config_is_applied_and_runs() {
    let s = Setup::start(Value::Null, json!({}));
    let old_pid = s.collectd.pid();
    let old = s.conf_text();
    let new = s.good_config();
    let (code, message) = s.push_code(&new);
    assert_eq!(code, 0, "{message}");
    assert!(message.contains("Succeeded to replace config"), "{message}");
    assert_eq!(s.conf_text(), new);
    assert_eq!(
        std::fs::read_to_string(with_suffix(s.collectd.conf_path(), ".orig")).unwrap(),
        old
    );
    let pid = s.collectd.pid();
    assert_ne!(pid, old_pid);
    assert!(!alive(old_pid));
    // Only the new config loads csv: its files prove collectd runs it.
    s.collectd.wait_until("csv output of the new config", || {
        std::fs::read_dir(s.csv_dir())
            .ok()
            .and_then(|mut d| d.next())
            .map(|_| ())
    });
    // The history of the restarted plugin has the push: accepted before
    // the restart, and the helper's outcome taken in after it.
    let socket = s.work.path().join("state/control.sock");
    let records = s.collectd.wait_until("the push in the history", || {
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(["history", "--json", "--kind", "config", "--socket"])
            .arg(&socket)
            .output()
            .unwrap();
        let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (records.len() == 2).then_some(records)
    });
    assert!(
        records[0]["outcome"]
            .as_str()
            .unwrap()
            .contains("the replacement helper restarts collectd"),
        "{records:?}"
    );
    assert_eq!(records[1]["code"], 0, "{records:?}");
    assert_eq!(records[1]["who"], "an unsigned request", "{records:?}");
    assert_eq!(records[0]["task_id"], records[1]["task_id"], "{records:?}");
}

#[test]
fn a_dry_run_says_what_would_change_and_an_unchanged_config_is_not_applied() {
    let s = Setup::start(Value::Null, json!({}));
    let pid = s.collectd.pid();
    let old = s.conf_text();
    let (code, message) = s.push_code_with(&s.good_config(), &["--dry-run"]);
    assert_eq!(code, 0, "{message}");
    assert!(
        message.starts_with("dry run: the config is valid")
            && message.contains("start loading csv, load"),
        "{message}"
    );
    // Refused as a push would be.
    let exec = format!("LoadPlugin exec\n{old}");
    let (code, message) = s.push_code_with(&exec, &["--dry-run"]);
    assert_eq!(code, 0x200B, "{message}");
    // The same text as now: nothing to do.
    let (code, message) = s.push_code(&old);
    assert_eq!(code, 0, "{message}");
    assert!(message.starts_with("unchanged: "), "{message}");
    assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old));
    assert!(!s.csv_dir().exists());
}

#[test]
fn broken_configs_are_refused_and_nothing_changes() {
    let s = Setup::start(Value::Null, json!({}));
    let pid = s.collectd.pid();
    let old = s.conf_text();
    let (code, message) = s.push_code("<Plugin csv\n");
    assert_eq!(code, 0x2002);
    assert!(
        message.contains("Parse error") && message.contains("line"),
        "{message}"
    );
    let (code, message) = s.push_code("LoadPlugin no_such_plugin\n");
    assert_eq!(code, 0x2002);
    assert!(message.contains("no_such_plugin.so"), "{message}");
    let bad_block = s
        .conf_text()
        .replace("MonitorConfigPath", "Hots \"x\"\n  MonitorConfigPath");
    let (code, message) = s.push_code(&bad_block);
    assert_eq!(code, 0x2002);
    assert!(message.contains("unknown field `Hots`"), "{message}");
    assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old));
}

#[test]
fn a_config_collectd_refuses_is_rolled_back() {
    let s = Setup::start(Value::Null, json!({}));
    let old = s.conf_text();
    let refused = format!("LoadPlugin csv\n<Plugin csv>\n  BogusOption 1\n</Plugin>\n{old}");
    let (code, message) = s.push_code(&refused);
    assert_eq!(code, 0x2007, "{message}");
    assert!(
        message.contains("BogusOption") && message.contains("runs the old config again"),
        "{message}"
    );
    assert_eq!(s.conf_text(), old);
    assert!(s.collectd.daemon_pid().is_some(), "collectd must run again");
}

#[test]
fn a_failing_stop_command_leaves_collectd_running() {
    let s = Setup::start(
        json!({"commands": {"stop": "echo cannot stop; exit 1"}}),
        json!({}),
    );
    let pid = s.collectd.pid();
    let old = s.conf_text();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2003, "{message}");
    assert!(message.contains("cannot stop"), "{message}");
    assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old));
    assert!(!with_suffix(s.collectd.conf_path(), ".new").exists());
}

#[test]
fn write_and_backup_failures_keep_the_old_config_running() {
    let s = Setup::start(Value::Null, json!({}));
    let old = s.conf_text();
    let pid = s.collectd.pid();
    // A directory where the new file must go: the write fails.
    let new_path = with_suffix(s.collectd.conf_path(), ".new");
    std::fs::create_dir(&new_path).unwrap();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2001, "{message}");
    assert_eq!(s.collectd.pid(), pid, "collectd is not touched");
    std::fs::remove_dir(&new_path).unwrap();

    // A directory where the backup must go: collectd is started again.
    std::fs::create_dir(with_suffix(s.collectd.conf_path(), ".orig")).unwrap();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2005, "{message}");
    assert!(message.contains("runs the old config again"), "{message}");
    assert_eq!(s.conf_text(), old);
    assert!(s.collectd.daemon_pid().is_some());
}

#[test]
fn a_pid_file_left_behind_is_reported_and_collectd_restarted() {
    let s_pid = "@PID@";
    let stop = format!(
        "kill $(cat {s_pid}); while kill -0 $(cat {s_pid}) 2>/dev/null; do sleep 0.1; done; echo 1 > {s_pid}"
    );
    let start = "/usr/sbin/collectd -C @CONF@";
    // The paths are known once collectd runs: write the service afterwards.
    let s = Setup::start(Value::Null, json!({}));
    let pid_file = s.collectd.pid_file().display().to_string();
    let conf = s.collectd.conf_path().display().to_string();
    let json_path = s.collectd.config_json.clone();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    config["Services"]["collectd"] = json!({"commands": {
        "stop": stop.replace(s_pid, &pid_file),
        "start": start.replace("@CONF@", &conf),
    }});
    std::fs::write(&json_path, config.to_string()).unwrap();
    let mut s = s;
    s.collectd.restart();
    s.collectd.wait_for_log("listening for commands");
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2004, "{message}");
    assert!(message.contains("runs the old config again"), "{message}");
    assert!(s.collectd.daemon_pid().is_some());
}

#[test]
fn failed_restart_and_failed_recovery_say_collectd_is_stopped() {
    let s = Setup::start(
        json!({"commands": {"start": "echo no way; exit 1"}}),
        json!({}),
    );
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2008, "{message}");
    assert!(
        message.contains("STOPPED") && message.contains("no way"),
        "{message}"
    );
    assert!(s.collectd.daemon_pid().is_none());
}

#[test]
fn an_unreadable_new_pid_is_reported() {
    let s = Setup::start(Value::Null, json!({"CommandTimeout": 3}));
    let conf = s.collectd.conf_path().display().to_string();
    let json_path = s.collectd.config_json.clone();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    config["Services"]["collectd"] = json!({
        "PIDPath": s.work.path().join("never-written.pid"),
        "commands": {"start": format!("/usr/sbin/collectd -C {conf}")}
    });
    std::fs::write(&json_path, config.to_string()).unwrap();
    let mut s = s;
    s.collectd.restart();
    s.collectd.wait_for_log("listening for commands");
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2009, "{message}");
    assert!(message.contains("never-written.pid"), "{message}");
    assert!(
        s.collectd.daemon_pid().is_some(),
        "collectd runs, only its PID was not found"
    );
}

#[test]
fn two_pushes_at_once_get_one_busy_answer() {
    // The first push's stop waits for the marker: the second push arrives
    // while the first is under way, however busy the machine (without it,
    // a slow machine could take the second after the first had finished).
    let (s, marker) = Setup::start_with_held_stop();
    let results = s.broker.subscribe(RESULTS, 100, &["-q", "1"]);
    s.publish_push(501);
    s.helper_with_lock();
    s.publish_push(502);
    // A result the broker had not confirmed when collectd stopped for the
    // restart is sent again after it (at least once): read until both tasks
    // answered, and count each answer once. Once the second is answered,
    // the first may go on.
    let both = |m: &[String]| {
        let ids: Vec<u64> = common::result_codes(m).iter().map(|(id, _)| *id).collect();
        if ids.contains(&502) {
            let _ = std::fs::remove_file(&marker);
        }
        ids.contains(&501) && ids.contains(&502)
    };
    let mut codes = common::result_codes(&results.until(both));
    codes.sort();
    codes.dedup();
    assert_eq!(codes, vec![(501, 0), (502, 0x2000)]);
}

#[test]
fn a_killed_helper_does_not_block_the_next_push() {
    let (mut s, marker) = Setup::start_with_held_stop();
    s.publish_push(601);
    let helper = s.helper_with_lock();
    Command::new("kill")
        .args(["-9", &helper.to_string()])
        .status()
        .unwrap();
    wait_for("the helper to die", || {
        (!alive(helper as u32)).then_some(())
    });
    // The stop command the helper started lives on in its own process
    // group; it would kill collectd once the marker goes. A helper killed
    // with -9 cannot clean up after itself, so the test does.
    let marker_text = marker.display().to_string();
    Command::new("pkill")
        .args(["-9", "-f", &marker_text])
        .status()
        .unwrap();
    wait_for("the orphaned stop command to die", || {
        let alive = Command::new("pgrep")
            .args(["-f", &marker_text])
            .output()
            .unwrap();
        (!alive.status.success()).then_some(())
    });
    std::fs::remove_file(&marker).unwrap();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0, "{message}");
    s.collectd
        .wait_for_log("took over the stale lock of task 601");
}

#[test]
fn send_config_waits_for_its_own_result() {
    let s = Setup::start(Value::Null, json!({}));
    // Someone else's result, retained, arrives first.
    let other = json!({"task_id": 1, "timestamp": "2020-01-01T00:00:00Z", "message": "not ours", "code": 0});
    assert!(
        s.broker
            .publish(RESULTS, &other.to_string(), &["-r", "-q", "1"])
            .status
            .success()
    );
    let out = s.push("<Plugin csv\n", &[]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["code"].as_i64(), Some(0x2002), "{result}");
    assert_ne!(result["task_id"].as_u64(), Some(1));
}

#[test]
fn a_config_without_this_plugin_is_applied_and_still_answered() {
    let s = Setup::start(Value::Null, json!({}));
    let conf = s.conf_text();
    let cut = conf
        .find("PluginDir")
        .expect("the harness loads the plugin after PluginDir");
    let without_monitor = format!(
        "LoadPlugin csv\n<Plugin csv>\n  DataDir \"{}\"\n</Plugin>\n{}",
        s.csv_dir().display(),
        &conf[..cut]
    );
    let (code, message) = s.push_code(&without_monitor);
    assert_eq!(code, 0, "{message}");
    assert!(
        message.contains("Warning: the new config does not load the monitor plugin"),
        "{message}"
    );
    assert_eq!(s.conf_text(), without_monitor);
}

#[test]
fn a_result_the_helper_cannot_publish_is_published_by_the_restarted_plugin() {
    let mut s = Setup::start(Value::Null, json!({"CommandTimeout": 3}));
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let m = json!({"task_id": 777, "timestamp": now, "config": s.good_config()}).to_string();
    assert!(
        s.broker
            .publish(COMMANDS, &m, &["-q", "1"])
            .status
            .success()
    );
    s.collectd.wait_for_log("task 777: the new config is valid");
    // The broker goes away while the helper works.
    s.broker.stop();
    let report = s.work.path().join("state/replace-report-777.json");
    s.collectd
        .wait_until("the helper's report file", || report.exists().then_some(()));
    s.broker.restart();
    let results = s.broker.subscribe(RESULTS, 1, &["-q", "1"]);
    let got: Value = serde_json::from_str(&results.messages()[0]).unwrap();
    assert_eq!(
        (got["task_id"].as_u64(), got["code"].as_i64()),
        (Some(777), Some(0)),
        "{got}"
    );
    s.collectd
        .wait_for_log("publishing the result of replacement task 777 left by its helper");
    assert!(!report.exists());
}

#[test]
fn a_failed_rename_restarts_collectd_with_the_old_config() {
    // The stop command swaps the new file for a directory, so the rename
    // over collectd.conf fails (root ignores read-only permissions).
    let s = Setup::start(Value::Null, json!({}));
    let conf = s.collectd.conf_path().display().to_string();
    let pid_file = s.collectd.pid_file().display().to_string();
    let json_path = s.collectd.config_json.clone();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    config["Services"]["collectd"] = json!({
        "ConfigPath": conf,
        "commands": {
            "stop": format!("kill $(cat {pid_file}); rm -f {conf}.new; mkdir {conf}.new"),
            "start": format!("/usr/sbin/collectd -C {conf}"),
        }
    });
    std::fs::write(&json_path, config.to_string()).unwrap();
    let mut s = s;
    s.collectd.restart();
    s.collectd.wait_for_log("listening for commands");
    let old = s.conf_text();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x2006, "{message}");
    assert!(message.contains("runs the old config again"), "{message}");
    assert_eq!(s.conf_text(), old);
    assert!(s.collectd.daemon_pid().is_some());
}

/// Attacks on validation itself: each pushed config must be answered with
/// a refusal while collectd keeps running, and never be delivered again.
#[test]
fn hostile_configs_are_refused_without_hurting_collectd() {
    let s = Setup::start(Value::Null, json!({}));
    let pid = s.collectd.pid();
    let old = s.conf_text();
    // 9000 nested blocks: the copy of collectd's tree recursed once per
    // level on the MQTT thread and overflowed its stack; here collectd's
    // parser makes an empty tree of it, which passed validation and had
    // collectd stopped and rolled back. 70 levels parse, and are refused
    // for their depth.
    let deep = format!("{}{}", "<B>\n".repeat(9000), "</B>\n".repeat(9000));
    let (code, message) = s.push_code(&deep);
    assert_eq!(code, 0x2002, "{message}");
    assert!(message.contains("empty config"), "{message}");
    let nested = format!(
        "{}{}{}",
        "<B \"x\">\n".repeat(70),
        "</B>\n".repeat(70),
        s.conf_text()
    );
    let (code, message) = s.push_code(&nested);
    assert_eq!(code, 0x2002, "{message}");
    assert!(message.contains("deeper than 64"), "{message}");
    let deep_named = format!("{}{}", "<B \"x\">\n".repeat(9000), "</B>\n".repeat(9000));
    let (code, message) = s.push_code(&deep_named);
    assert_eq!(code, 0x2002, "{message}");
    assert!(alive(pid), "collectd died validating a deep config");
    // Our own block naming a device or a FIFO as its config.json: read
    // without a bound, /dev/zero filled collectd's memory and a FIFO
    // blocked the MQTT thread for ever.
    let fifo = s.work.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for target in [Path::new("/dev/zero"), fifo.as_path()] {
        let hostile = s.conf_text().replace(
            &format!("MonitorConfigPath \"{}\"", s.collectd.config_json.display()),
            &format!("MonitorConfigPath \"{}\"", target.display()),
        );
        assert_ne!(hostile, s.conf_text(), "the test must change the path");
        let (code, message) = s.push_code(&hostile);
        assert_eq!(code, 0x2002, "{message}");
        assert!(message.contains("not a regular file"), "{message}");
        assert!(alive(pid));
    }
    // Still answering, and nothing changed.
    let (code, _) = s.push_code("<Plugin csv\n");
    assert_eq!(code, 0x2002);
    assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old));
}

/// `keygen NAME` into `dir`; the public line.
fn keygen(dir: &Path, name: &str) -> String {
    common::keygen(dir, name).1
}

#[test]
fn a_signed_push_is_held_to_the_host_push_policy() {
    let keys = tempfile::tempdir().unwrap();
    let deploy = keygen(keys.path(), "deploy");
    let admin = keygen(keys.path(), "admin");
    let trusted = keys.path().join("trusted");
    std::fs::write(
        &trusted,
        format!("{deploy} config=yes\n{admin} config=all\n"),
    )
    .unwrap();
    let s = Setup::start(Value::Null, json!({"TrustedKeys": trusted}));
    let pid = s.collectd.pid();
    let old = s.conf_text();
    let sign = |name: &str| {
        vec![
            "--signing-key".to_string(),
            keys.path()
                .join(format!("{name}.key"))
                .display()
                .to_string(),
            "--target".to_string(),
            "testhost".to_string(),
        ]
    };
    let deploy_args = sign("deploy");
    let deploy_args: Vec<&str> = deploy_args.iter().map(String::as_str).collect();
    let marker = s.work.path().join("pwned");
    // The attacks of the issue: a plugin that runs commands, a file of the
    // host quoted back through an Include, a new service in our own block.
    let exec = format!(
        "LoadPlugin exec\n<Plugin exec>\n  Exec \"nobody\" \"/bin/touch\" \"{}\"\n</Plugin>\n{old}",
        marker.display()
    );
    let secret = s.work.path().join("secret.conf");
    std::fs::write(&secret, "\"TOP-SECRET-LINE\"\n").unwrap();
    let include = format!("Include \"{}\"\n{old}", secret.display());
    let service = old.replace(
        "<Plugin monitor>\n",
        "<Plugin monitor>\n<Service \"pwn\">\n  Command \"x\" \"touch /tmp/pwned\"\n</Service>\n",
    );
    assert_ne!(service, old, "the test must change the block");
    for (config, code, says) in [
        (&exec, 0x200B, "plugin \"exec\" runs arbitrary code"),
        (
            &include,
            0x200C,
            "a pushed config may include only absolute paths under /etc/collectd",
        ),
        (&service, 0x200D, "changes <Plugin monitor>"),
    ] {
        let (got, message) = s.push_code_with(config, &deploy_args);
        assert_eq!(got, code, "{message}");
        assert!(message.contains(says), "{message}");
        assert!(!message.contains("TOP-SECRET"), "{message}");
        assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old.clone()));
        let logged = format!("replacement refused (code {code:#x}): ");
        s.collectd.wait_until(&logged, || {
            s.collectd.log_text().contains(&logged).then_some(())
        });
    }
    // Unsigned: refused before any of it.
    let (got, _) = s.push_code(&s.good_config());
    assert_eq!(got, 0x1201);
    // A key with config=all may change the block; an allowed config runs.
    let admin_args = sign("admin");
    let admin_args: Vec<&str> = admin_args.iter().map(String::as_str).collect();
    let new = s.good_config();
    let (got, message) = s.push_code_with(&new, &deploy_args);
    assert_eq!(got, 0, "{message}");
    assert_eq!(s.conf_text(), new);
    // (The restarted collectd finds the next push queued in its session.)
    let (got, message) = s.push_code_with(&service, &admin_args);
    assert_eq!(got, 0, "{message}");
    assert!(!marker.exists());
}

/// The attacks of a key allowed to push collectd.conf (`config=yes`) on
/// root: each refused with its code, the config and collectd untouched,
/// and nothing of it written; then a refused push leaves nothing behind,
/// and a config that loads this plugin through an allowed include (as the
/// package does) is applied.
#[test]
fn a_config_push_key_cannot_reach_root() {
    let keys = tempfile::tempdir().unwrap();
    let deploy = keygen(keys.path(), "deploy");
    let trusted = keys.path().join("trusted");
    std::fs::write(&trusted, format!("{deploy} config=yes\n")).unwrap();
    let work = tempfile::Builder::new().prefix("cm-inc").tempdir().unwrap();
    let (inc, pkg) = (work.path().join("inc"), work.path().join("pkg"));
    std::fs::create_dir(&inc).unwrap();
    std::fs::create_dir(&pkg).unwrap();
    let s = Setup::start(
        Value::Null,
        json!({"TrustedKeys": trusted, "PushIncludeDirs": [inc, pkg]}),
    );
    let pid = s.collectd.pid();
    let old = s.conf_text();
    let args = [
        "--signing-key".to_string(),
        keys.path().join("deploy.key").display().to_string(),
        "--target".to_string(),
        "testhost".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let base = s.collectd.dir.path();
    let plugins = base.join("plugins");

    // A link to the plugin directory, in a directory anyone may write.
    let open = s.work.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&plugins, open.join("plugins")).unwrap();
    // A file outside collectd's directories, which a PIDFile would overwrite.
    let victim = s.work.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // An included file that loads exec.
    let evil = inc.join("evil.conf");
    std::fs::write(&evil, "LoadPlugin exec\n").unwrap();
    let second_block = format!(
        "{old}\n<Plugin \"Monitor\">\n  PushAllowedPlugins \"exec\" \"logfile\"\n</Plugin>\n"
    );
    let plugin_dir = old.replace(
        &format!("PluginDir \"{}\"", plugins.display()),
        &format!("PluginDir \"{}\"", open.join("plugins").display()),
    );
    assert_ne!(plugin_dir, old, "the test must change PluginDir");
    let pid_file = old.replace(
        &format!("PIDFile \"{}/collectd.pid\"", base.display()),
        &format!("PIDFile \"{}\"", victim.display()),
    );
    assert_ne!(pid_file, old, "the test must change PIDFile");
    let base_dir = old.replace(
        &format!("BaseDir \"{}\"", base.display()),
        &format!("BaseDir \"{}\"", s.work.path().display()),
    );
    assert_ne!(base_dir, old, "the test must change BaseDir");
    let log_in_includes = old.replace(
        &format!("File \"{}/collectd.log\"", base.display()),
        &format!("File \"{}/evil.log\"", inc.display()),
    );
    assert_ne!(log_in_includes, old, "the test must change the log file");
    let include = format!("Include \"{}\"\n{old}", evil.display());
    let split = format!("Include \"{} /etc/passwd\"\n{old}", evil.display());
    for (config, code, says) in [
        (&second_block, 0x200D, "changes <Plugin monitor>"),
        (&plugin_dir, 0x200B, "writable by others than root"),
        (&pid_file, 0x200E, "may write only under"),
        (&base_dir, 0x200E, "may not move collectd's BaseDir"),
        (&log_in_includes, 0x200E, "evil.log"),
        (&include, 0x200B, "plugin \"exec\" runs arbitrary code"),
        (&split, 0x200C, "' ' is not allowed"),
    ] {
        let (got, message) = s.push_code_with(config, &args);
        assert_eq!(got, code, "{message}");
        assert!(message.contains(says), "{message}");
        assert_eq!((s.collectd.pid(), s.conf_text()), (pid, old.clone()));
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!inc.join("evil.log").exists());

    // A broken push leaves nothing behind for the next one; that one loads
    // this plugin through an include of an allowed directory, as the
    // package's conffile does.
    // (collectd's parser stops at the first line; the rest must not stay
    // in its buffer.)
    let (got, message) = s.push_code_with(&format!("</Plugin>\n{old}"), &args);
    assert_eq!(got, 0x2002, "{message}");
    std::fs::write(pkg.join("load-plugin.conf"), "LoadPlugin monitor\n").unwrap();
    let packaged = old.replace(
        "LoadPlugin monitor\n",
        &format!("Include \"{}/load-plugin.conf\"\n", pkg.display()),
    );
    assert_ne!(
        packaged, old,
        "the test must load the plugin through the include"
    );
    let (got, message) = s.push_code_with(&packaged, &args);
    assert_eq!(got, 0, "{message}");
    assert_eq!(s.conf_text(), packaged);
}

#[test]
fn a_host_with_config_push_off_refuses_every_push() {
    let s = Setup::start(Value::Null, json!({"AllowConfigPush": false}));
    let old = s.conf_text();
    let (code, message) = s.push_code(&s.good_config());
    assert_eq!(code, 0x200A, "{message}");
    assert!(message.contains("AllowConfigPush false"), "{message}");
    assert_eq!(s.conf_text(), old);
}

/// A staged rollout for real: three daemonized collectd hosts on one
/// broker take the same templated config (`%{hostname}`), the canary first,
/// then a wave of two; each host restarts with it.
#[test]
fn a_staged_rollout_replaces_every_hosts_config_canary_first_then_in_waves() {
    let broker = Mosquitto::start();
    // Each host's directory is reachable as <fleet>/<host>: the one config
    // names its paths through it.
    let fleet = tempfile::Builder::new()
        .prefix("cm-fleet")
        .tempdir()
        .unwrap();
    let names = ["web0", "web1", "web2"];
    let mut hosts: Vec<Collectd> = names
        .iter()
        .map(|name| {
            let config = json!({
                "Host": format!("127.0.0.1:{}", broker.port),
                "CommandTopic": "collectd/%{hostname}/command",
                "CommandResultTopic": "collectd/%{hostname}/result",
                "ReconnectInterval": 1,
                "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
                "CommandTimeout": 20,
                "Services": {"hello": {"commands": {"exec": "echo hi"}}}
            });
            Collectd::start(CollectdSpec {
                hostname: (*name).into(),
                monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
                config_json: Some((config.to_string(), 0o600)),
                daemonize: true,
                ..Default::default()
            })
        })
        .collect();
    for (name, host) in names.iter().zip(&mut hosts) {
        std::os::unix::fs::symlink(host.dir.path(), fleet.path().join(name)).unwrap();
        host.wait_for_log(&format!(
            "listening for commands on collectd/{name}/command"
        ));
    }
    // web0's config, its directory and name made templates, plus a csv
    // writer whose files prove each host runs the new config.
    let web0 = std::fs::read_to_string(hosts[0].conf_path()).unwrap();
    let template = format!(
        "LoadPlugin csv\n<Plugin csv>\n  DataDir \"{}/%{{hostname}}/csv\"\n</Plugin>\n{}",
        fleet.path().display(),
        web0.replace(
            &hosts[0].dir.path().display().to_string(),
            &format!("{}/%{{hostname}}", fleet.path().display())
        )
        .replace("Hostname \"web0\"", "Hostname \"%{hostname}\"")
    );
    assert!(template.contains("Hostname \"%{hostname}\""), "{template}");
    let file = fleet.path().join("fleet.conf");
    std::fs::write(&file, &template).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .arg("send-config")
        .arg(&file)
        .args(["--host", &format!("127.0.0.1:{}", broker.port)])
        .args(["-t", "collectd/%{hostname}/command"])
        .args(["--result-topic", "collectd/%{hostname}/result"])
        .args(["--timeout", "90", "--json"])
        .args([
            "--hosts",
            "web0,web1,web2",
            "--canary",
            "1",
            "--wave-size",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains("\"code\":0")), "{stdout}");
    for (name, host) in names.iter().zip(&hosts) {
        let expected = template.replace("%{hostname}", name);
        assert_eq!(std::fs::read_to_string(host.conf_path()).unwrap(), expected);
        wait_for("csv output of the new config", || {
            std::fs::read_dir(fleet.path().join(name).join("csv"))
                .ok()
                .and_then(|mut d| d.next())
                .map(|_| ())
        });
    }
}
