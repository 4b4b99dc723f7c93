//! A real collectd 5.12 with the plugin under test, on its own temp
//! directory and unixsock socket.

use super::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// What a test collectd runs: the `<Plugin monitor>` block, an optional
/// config.json (with its file mode) and any extra collectd.conf lines.
pub struct CollectdSpec {
    pub hostname: String,
    pub monitor_block: String,
    pub config_json: Option<(String, u32)>,
    pub extra_conf: String,
    pub load_monitor: bool,
    /// Start collectd as a daemon (no `-f`), tracked through its PID file,
    /// as a config replacement restarts it.
    pub daemonize: bool,
    /// Environment variables collectd starts with (a faked clock).
    pub env: Vec<(String, String)>,
}

impl Default for CollectdSpec {
    fn default() -> Self {
        CollectdSpec {
            hostname: "testhost".into(),
            monitor_block: String::new(),
            config_json: None,
            extra_conf: String::new(),
            load_monitor: true,
            daemonize: false,
            env: Vec::new(),
        }
    }
}

/// A running `collectd -f` with our plugin, logfile and unixsock.
pub struct Collectd {
    /// Started without `-f`; `child` is then unused.
    daemon: bool,
    child: Option<Child>,
    pub dir: TempDir,
    conf: PathBuf,
    /// collectd's log file; `None` when logfile writes to stdout.
    pub log: Option<PathBuf>,
    /// Length of the log when the current run started.
    log_mark: usize,
    pub socket: PathBuf,
    pub config_json: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
}

impl Collectd {
    /// Writes the config, starts collectd and waits until it has finished
    /// initialising every plugin.
    pub fn start(spec: CollectdSpec) -> Collectd {
        // Not tempfile's ".tmpXXXX": csv refuses a DataDir under a directory
        // whose name starts with a dot, and pushed configs write under here.
        let dir = tempfile::Builder::new()
            .prefix("cm-collectd")
            .tempdir()
            .expect("temp dir");
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
        let mut c = Self::new(dir, &conf_path, Some(log), socket, config_json);
        c.daemon = spec.daemonize;
        c.env = spec.env;
        c.launch();
        c
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
        let mut c = Self::new(dir, conf, log, socket, config_json);
        c.launch();
        c
    }

    fn new(
        dir: TempDir,
        conf: &Path,
        log: Option<PathBuf>,
        socket: PathBuf,
        config_json: PathBuf,
    ) -> Collectd {
        Collectd {
            daemon: false,
            child: None,
            dir,
            conf: conf.to_path_buf(),
            log,
            log_mark: 0,
            socket,
            config_json,
            stdout: Arc::default(),
            stderr: Arc::default(),
            env: Vec::new(),
        }
    }

    /// Starts the daemon and waits until every plugin is initialised. Log
    /// lines from an earlier run are not looked at any more.
    fn launch(&mut self) {
        self.log_mark = self.log_text().len();
        if self.daemon {
            let out = Command::new("/usr/sbin/collectd")
                .arg("-C")
                .arg(&self.conf)
                .envs(self.env.iter().cloned())
                .stdin(Stdio::null())
                .output()
                .expect("start /usr/sbin/collectd (Debian package collectd-core)");
            assert!(
                out.status.success(),
                "collectd did not daemonize: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            wait_for("collectd's PID file", || self.daemon_pid());
            self.wait_for_log("Initialization complete");
            return;
        }
        let mut child = Command::new("/usr/sbin/collectd")
            .arg("-f")
            .arg("-C")
            .arg(&self.conf)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/collectd (Debian package collectd-core)");
        self.stdout = capture(child.stdout.take().unwrap());
        self.stderr = capture(child.stderr.take().unwrap());
        self.child = Some(child);
        self.wait_for_log("Initialization complete");
    }

    /// Stops collectd (SIGTERM) and starts it again on the same files.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "collectd exit status {status}");
        self.launch();
    }

    /// The environment of the next start (a test hook, a faked clock).
    pub fn set_env(&mut self, env: Vec<(String, String)>) {
        self.env = env;
    }

    /// Waits until collectd exits on its own (a test hook killed it) and
    /// returns how.
    pub fn wait_exited(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("collectd running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!("collectd did not exit\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as in a crash: no shutdown callback runs.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("collectd running");
        child.kill().expect("SIGKILL collectd");
        child.wait().expect("reap collectd");
    }

    /// Starts collectd again after [`Collectd::stop`] or [`Collectd::crash`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "collectd is still running");
        self.launch();
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

    /// Polls `probe` until it returns Some; on timeout the panic shows
    /// collectd's log.
    pub fn wait_until<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a log line containing `needle` and returns that line.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.wait_in(needle, |c| {
            c.log_text()
                .get(c.log_mark..)
                .unwrap_or_default()
                .to_string()
        })
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
        // The unixsock plugin creates its socket in its own init, which a
        // busy machine may run after our plugin has already logged.
        let mut stream = self.wait_until("collectd's unixsock socket", || {
            UnixStream::connect(&self.socket).ok()
        });
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
        if self.daemon {
            return self.daemon_pid().expect("collectd's PID file");
        }
        self.child.as_ref().expect("running").id()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("collectd.pid")
    }

    /// The live process named by the PID file, if any.
    pub fn daemon_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// SIGTERM, then waits for collectd to exit and returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        if self.daemon {
            let pid = self.pid();
            kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM collectd");
            wait_for("collectd to exit", || (!alive(pid)).then_some(()));
            return std::os::unix::process::ExitStatusExt::from_raw(0);
        }
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
        if let Some(pid) = self.daemon.then(|| self.daemon_pid()).flatten() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
