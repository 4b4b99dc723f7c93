//! Test harness: real collectd and real mosquitto daemons, each in its own
//! temporary directory on free loopback resources, killed when dropped
//! (also when the test fails).
#![allow(dead_code)] // each test binary uses a different part of the harness

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a daemon may take to show what a test waits for. A deadline for
/// failing instead of hanging, not a performance limit.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The plugin as cargo built it for this test run. `cargo test` compiles the
/// library (cdylib included) into `target/<profile>/deps` next to the test
/// executable; only `cargo build` copies it one level up, so that copy may
/// be stale and is never used.
pub fn plugin_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let lib = exe
        .parent()
        .expect("deps dir")
        .join("libcollectd_monitor.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// Polls `probe` until it returns Some, or panics with `what` after PATIENCE.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Captures a child's output stream into a shared string.
fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    out
}

/// What a test collectd runs: the `<Plugin monitor>` block, an optional
/// config.json (with its file mode) and any extra collectd.conf lines.
pub struct CollectdSpec {
    pub hostname: String,
    pub monitor_block: String,
    pub config_json: Option<(String, u32)>,
    pub extra_conf: String,
    pub load_monitor: bool,
}

impl Default for CollectdSpec {
    fn default() -> Self {
        CollectdSpec {
            hostname: "testhost".into(),
            monitor_block: String::new(),
            config_json: None,
            extra_conf: String::new(),
            load_monitor: true,
        }
    }
}

/// A running `collectd -f` with our plugin, logfile and unixsock.
pub struct Collectd {
    child: Option<Child>,
    pub dir: TempDir,
    /// collectd's log file; `None` when logfile writes to stdout.
    pub log: Option<PathBuf>,
    pub socket: PathBuf,
    pub config_json: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Collectd {
    /// Writes the config, starts collectd and waits until it has finished
    /// initialising every plugin.
    pub fn start(spec: CollectdSpec) -> Collectd {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let plugins = root.join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(plugin_library(), plugins.join("monitor.so")).unwrap();
        let config_json = root.join("config.json");
        if let Some((text, mode)) = &spec.config_json {
            std::fs::write(&config_json, text).unwrap();
            std::fs::set_permissions(&config_json, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let log = root.join("collectd.log");
        let socket = root.join("unixsock");
        let monitor = if spec.load_monitor {
            format!(
                "PluginDir \"{plugins}\"\nLoadPlugin monitor\n<Plugin monitor>\n{block}\n</Plugin>\n",
                plugins = plugins.display(),
                block = spec
                    .monitor_block
                    .replace("@CONFIG_JSON@", &config_json.display().to_string()),
            )
        } else {
            String::new()
        };
        let conf = format!(
            r#"Hostname "{host}"
FQDNLookup false
BaseDir "{root}"
PIDFile "{root}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 10
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{log}"
  Timestamp true
  PrintSeverity true
</Plugin>
LoadPlugin unixsock
<Plugin unixsock>
  SocketFile "{socket}"
  SocketPerms "0600"
</Plugin>
{extra}
{monitor}"#,
            host = spec.hostname,
            root = root.display(),
            log = log.display(),
            socket = socket.display(),
            extra = spec.extra_conf,
        );
        let conf_path = root.join("collectd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        Self::spawn(dir, &conf_path, Some(log), socket, config_json)
    }

    /// Starts collectd on an existing config file that logs to `log` (or
    /// stdout when `None`) and listens on `socket`.
    pub fn spawn(
        dir: TempDir,
        conf: &Path,
        log: Option<PathBuf>,
        socket: PathBuf,
        config_json: PathBuf,
    ) -> Collectd {
        let mut child = Command::new("/usr/sbin/collectd")
            .arg("-f")
            .arg("-C")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/collectd (Debian package collectd-core)");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let mut c = Collectd {
            child: Some(child),
            dir,
            log,
            socket,
            config_json,
            stdout,
            stderr,
        };
        c.wait_for_log("Initialization complete");
        c
    }

    pub fn log_text(&self) -> String {
        match &self.log {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => self.stdout_text(),
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- collectd.log ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.log_text(),
            self.stdout_text(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits for a log line containing `needle` and returns that line.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.wait_in(needle, |c| c.log_text())
    }

    /// Waits for a line containing `needle` on collectd's stdout (where our
    /// `LogDevice "stdout"` writes).
    pub fn wait_for_stdout(&mut self, needle: &str) -> String {
        self.wait_in(needle, |c| c.stdout_text())
    }

    fn wait_in(&mut self, needle: &str, text: impl Fn(&Self) -> String) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = text(self).lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "collectd exited ({status}) before logging {needle:?}\n{}",
                    self.diagnostics()
                );
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {needle:?}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one unixsock command and returns collectd's status line.
    pub fn command(&self, line: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("connect to unixsock");
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).unwrap();
        reply.trim_end().to_string()
    }

    /// PUTVAL through unixsock, asserting collectd accepted it.
    pub fn putval(&self, args: &str) {
        let reply = self.command(&format!("PUTVAL {args}"));
        assert!(reply.starts_with("0 "), "PUTVAL {args}: {reply}");
    }

    /// PUTNOTIF through unixsock, asserting collectd accepted it.
    pub fn putnotif(&self, args: &str) {
        let reply = self.command(&format!("PUTNOTIF {args}"));
        assert!(reply.starts_with("0 "), "PUTNOTIF {args}: {reply}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then waits for collectd to exit and returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("collectd running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM collectd");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "collectd did not exit after SIGTERM\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collectd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running mosquitto on a free loopback port.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
    log: PathBuf,
    /// stderr, where mosquitto reports start-up failures.
    output: Arc<Mutex<String>>,
}

/// Broker options a test may need.
#[derive(Default)]
pub struct MosquittoSpec {
    /// `(user, password)` pairs; when non-empty, anonymous access is off.
    pub users: Vec<(String, String)>,
    /// Content of an ACL file (`user NAME` / `topic readwrite T` lines).
    pub acl: Option<String>,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_with(MosquittoSpec::default())
    }

    pub fn start_with(spec: MosquittoSpec) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("mosquitto.log");
        // A log file, not stdout: mosquitto block-buffers a piped stdout.
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence false\nuser root\nlog_dest file {}\nlog_type all\nallow_anonymous {}\n",
            log.display(),
            spec.users.is_empty()
        );
        if !spec.users.is_empty() {
            let passwd = dir.path().join("passwd");
            std::fs::write(&passwd, "").unwrap();
            for (user, password) in &spec.users {
                let status = Command::new("mosquitto_passwd")
                    .args(["-b", passwd.to_str().unwrap(), user, password])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run mosquitto_passwd");
                assert!(status.success(), "mosquitto_passwd failed");
            }
            conf.push_str(&format!("password_file {}\n", passwd.display()));
        }
        if let Some(acl) = &spec.acl {
            let path = dir.path().join("acl");
            std::fs::write(&path, acl).unwrap();
            conf.push_str(&format!("acl_file {}\n", path.display()));
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/mosquitto (Debian package mosquitto)");
        let output = capture(child.stderr.take().unwrap());
        let mut broker = Mosquitto {
            child,
            port,
            dir,
            log,
            output,
        };
        wait_for("mosquitto to listen", || {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!(
                    "mosquitto exited ({status}):\n{}",
                    broker.output.lock().unwrap()
                );
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        broker
    }

    /// Everything the broker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
