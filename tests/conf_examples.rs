//! The files under conf/ and rules/ keep working: the README demo starts
//! under a real collectd, and each collectd.conf snippet loads cleanly.

mod common;
use common::{Collectd, Mosquitto, plugin_library};
use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Lines our plugin logged at warning or error level.
fn our_complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("monitor:") && (l.contains("[warning]") || l.contains("[error]")))
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_demo_starts_answers_a_command_and_stops_without_complaints() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("demo");
    let out = Command::new(repo("scripts/install-demo"))
        .arg(&prefix)
        .arg(plugin_library())
        .arg(env!("CARGO_BIN_EXE_collectd-monitor"))
        .arg(broker.port.to_string())
        .output()
        .expect("run scripts/install-demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = String::from_utf8(out.stdout).unwrap();
    let conf = Path::new(conf.trim());
    assert!(prefix.join("lib/monitor.so").is_file());
    assert!(prefix.join("etc/monitor/local/example.lua").is_file());
    assert!(prefix.join("etc/mosquitto.conf").is_file());

    let socket = prefix.join("var/collectd-unixsock");
    let json = prefix.join("etc/monitor/config.json");
    let mut c = Collectd::spawn(dir, conf, None, socket, json);
    let ready = c.wait_for_log("monitor: collectd-monitor");
    assert!(
        ready.contains("3 services with 3 recovery commands"),
        "{ready}"
    );
    c.wait_for_log(
        "remote: only signed requests run; trusted keys: demo (commands=hello/* config=no)",
    );
    c.wait_for_log("remote: listening for commands on collectd/");
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let host = host.trim();
    // The demo's example rules run hello/exec on their own too; a request
    // that meets one of those runs is answered "already running" (0x1007):
    // ask again.
    let send = || {
        Command::new(prefix.join("bin/collectd-monitor"))
            .args([
                "send-command",
                "hello",
                "exec",
                "--host",
                &format!("127.0.0.1:{}", broker.port),
            ])
            .args(["--topic", &format!("collectd/{host}/command")])
            .args([
                "--result-topic",
                &format!("collectd/{host}/result"),
                "--timeout",
                "30",
            ])
            // The demo trusts its own key only.
            .arg("--signing-key")
            .arg(prefix.join("etc/keys/demo.key"))
            .args(["--target", host])
            .output()
            .unwrap()
    };
    let mut sent = send();
    for _ in 0..5 {
        if !String::from_utf8_lossy(&sent.stdout).contains("already running") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        sent = send();
    }
    assert!(
        String::from_utf8_lossy(&sent.stdout).contains("Hello World!"),
        "{}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    c.putval("demo/memory/memory-free N:5000000000");
    // The example rules answer with a command (the memory plugin's own
    // reading may start one too, the cooldown suppresses the rest): stop
    // only once the PUTVAL's rule has decided and every command a rule
    // started is over (a command still running at the stop is ended, and
    // logged so).
    c.wait_until("the example rules' commands to be over", || {
        let log = c.log_text();
        let decided = log.lines().any(|l| {
            l.contains("memory_free_is_under_10GB")
                && (l.contains("suppressed") || l.contains(": running "))
        });
        let started: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split(": running ").nth(1))
            .filter_map(|rest| rest.split(" (task ").nth(1))
            .collect();
        let over = started.iter().all(|task| {
            let id = format!("(task {task}");
            log.lines()
                .any(|l| l.contains(&id) && (l.contains(", code ") || l.contains(" not started: ")))
        });
        (decided && over).then_some(())
    });
    // `status` as the demo's hint says to run it (the file's state is
    // published by the engine as it goes: waited for).
    c.wait_until("status to show example.lua active", || {
        let shown = Command::new(prefix.join("bin/collectd-monitor"))
            .arg("status")
            .arg("--socket")
            .arg(prefix.join("var/monitor/control.sock"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&shown.stdout)
            .contains("example.lua: active")
            .then_some(())
    });
    let status = c.stop();
    assert!(status.success(), "{status}");
    let log = c.log_text();
    assert!(log.contains("monitor: stopped: "), "{log}");
    assert_eq!(our_complaints(&log), Vec::<String>::new());
    // The demo's unixsock socket belongs to a group that exists.
    assert!(!log.contains("No such group"), "{log}");
}

/// Installs a snippet and the config.json files it names under a temp
/// directory and runs collectd on it.
fn run_snippet(snippet: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let etc = root.join("monitor");
    std::fs::create_dir_all(etc.join("local")).unwrap();
    let relocate = |text: String| text.replace("/etc/collectd/monitor", &etc.display().to_string());
    for json in ["config.json", "config-remote.json", "trusted-keys"] {
        let text = std::fs::read_to_string(repo(&format!("conf/{json}"))).unwrap();
        let path = etc.join(json);
        std::fs::write(&path, relocate(text)).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let plugins = root.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(plugin_library(), plugins.join("monitor.so")).unwrap();
    let log = root.join("collectd.log");
    let socket = root.join("sock");
    let conf = root.join("collectd.conf");
    let snippet_text = relocate(std::fs::read_to_string(repo(snippet)).unwrap());
    std::fs::write(
        &conf,
        format!(
            "FQDNLookup false\nHostname \"h\"\nBaseDir \"{r}\"\nPIDFile \"{r}/pid\"\nTypesDB \"/usr/share/collectd/types.db\"\n\
             LoadPlugin logfile\n<Plugin logfile>\n  LogLevel info\n  File \"{log}\"\n  PrintSeverity true\n</Plugin>\n\
             LoadPlugin unixsock\n<Plugin unixsock>\n  SocketFile \"{sock}\"\n</Plugin>\n\
             PluginDir \"{plugins}\"\n{snippet_text}\n",
            r = root.display(),
            log = log.display(),
            sock = socket.display(),
            plugins = plugins.display(),
        ),
    )
    .unwrap();
    let json = etc.join("config.json");
    let mut c = Collectd::spawn(dir, &conf, Some(log), socket, json);
    let ready = c.wait_for_log("monitor: collectd-monitor");
    assert!(c.stop().success());
    let log = c.log_text();
    // The remote example names a broker that does not exist here; its
    // connection attempts are expected to complain.
    let complaints: Vec<String> = our_complaints(&log)
        .into_iter()
        .filter(|l| !l.contains("remote: broker mqtt.example.net:8883"))
        .collect();
    assert_eq!(complaints, Vec::<String>::new(), "{log}");
    ready
}

#[test]
fn local_snippet_loads_cleanly() {
    let ready = run_snippet("conf/monitor-local.conf");
    assert!(
        ready.contains("monitor/config.json") && ready.contains("5 services"),
        "{ready}"
    );
}

#[test]
fn remote_snippet_loads_cleanly_and_config_json_replaces_its_services() {
    let ready = run_snippet("conf/monitor-remote.conf");
    // config-remote.json's Services (hello, collectd) win over the block's.
    assert!(
        ready.contains("config-remote.json")
            && ready.contains("2 services with 3 recovery commands"),
        "{ready}"
    );
}
