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

/// `(task_id, code)` of each result message mosquitto_sub printed.
pub fn result_codes(messages: &[String]) -> Vec<(u64, i64)> {
    messages
        .iter()
        .map(|m| {
            let v: serde_json::Value =
                serde_json::from_str(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            (v["task_id"].as_u64().unwrap(), v["code"].as_i64().unwrap())
        })
        .collect()
}

/// True when a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
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
    /// Start collectd as a daemon (no `-f`), tracked through its PID file,
    /// as a config replacement restarts it.
    pub daemonize: bool,
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
        let mut c = Self::new(dir, &conf_path, Some(log), socket, config_json);
        c.daemon = spec.daemonize;
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

/// A running mosquitto on a free loopback port.
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
    conf: PathBuf,
    log: PathBuf,
    /// stderr, where mosquitto reports start-up failures.
    output: Arc<Mutex<String>>,
    /// The test CA, when the listener speaks TLS.
    pub tls: Option<TestCa>,
}

/// Broker options a test may need.
#[derive(Default)]
pub struct MosquittoSpec {
    /// `(user, password)` pairs; when non-empty, anonymous access is off.
    pub users: Vec<(String, String)>,
    /// Content of an ACL file (`user NAME` / `topic readwrite T` lines).
    pub acl: Option<String>,
    /// Keep sessions and queued messages across a restart.
    pub persistent: bool,
    /// Serve TLS with a certificate from a fresh test CA.
    pub tls: bool,
    /// Users of mosquitto's dynamic-security plugin, created with no role:
    /// they may connect but every subscription is refused in the SUBACK
    /// (an `acl_file` never refuses a subscription, it only withholds
    /// messages, which no client can observe).
    pub dynsec_users: Vec<(String, String)>,
    /// Listen on this port instead of a free one.
    pub port: Option<u16>,
    /// With `tls`: clients must present a certificate from the test CA.
    pub require_client_cert: bool,
}

/// A throw-away CA and the certificates it signed: the broker's, for
/// 127.0.0.1, and a client's.
pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=collectd-monitor test CA",
        ]);
        run(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&csr);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let mut client = vec!["req"];
        client.extend(ec);
        client.extend([
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=collectd",
        ]);
        run(&client);
        // Extensions make it an X.509 v3 certificate, which rustls requires.
        std::fs::write(
            dir.join("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "client.ext",
        ]);
        TestCa {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_with(MosquittoSpec::default())
    }

    pub fn start_with(spec: MosquittoSpec) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = spec.port.unwrap_or_else(free_port);
        let log = dir.path().join("mosquitto.log");
        // A log file, not stdout: mosquitto block-buffers a piped stdout.
        let mut conf = format!(
            // No cap on queued messages (mosquitto drops beyond 1000 by
            // default, which a burst test would see as lost results).
            "listener {port} 127.0.0.1\nuser root\nlog_dest file {}\nlog_type all\nallow_anonymous {}\nmax_queued_messages 0\nset_tcp_nodelay true\n",
            log.display(),
            spec.users.is_empty()
        );
        if spec.persistent {
            conf.push_str(&format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            ));
        } else {
            conf.push_str("persistence false\n");
        }
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
        let dynsec = dir.path().join("dynsec.json");
        if !spec.dynsec_users.is_empty() {
            let out = Command::new("mosquitto_ctrl")
                .args([
                    "dynsec",
                    "init",
                    dynsec.to_str().unwrap(),
                    "admin",
                    "admin-pw",
                ])
                .output()
                .expect("run mosquitto_ctrl");
            assert!(
                out.status.success(),
                "dynsec init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            conf.push_str(&format!(
                "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\nplugin_opt_config_file {}\n",
                dynsec.display()
            ));
            conf = conf.replace("allow_anonymous true", "allow_anonymous false");
        }
        let tls = spec.tls.then(|| TestCa::create(dir.path()));
        if let Some(ca) = &tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
                ca.ca_cert.display(),
                ca.server_cert.display(),
                ca.server_key.display(),
                spec.require_client_cert
            ));
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut broker = Mosquitto {
            child: None,
            port,
            dir,
            conf: conf_path,
            log,
            output: Arc::default(),
            tls,
        };
        broker.launch();
        for (user, password) in &spec.dynsec_users {
            let out = Command::new("mosquitto_ctrl")
                .args(broker.client_args())
                .args([
                    "-u",
                    "admin",
                    "-P",
                    "admin-pw",
                    "dynsec",
                    "createClient",
                    user,
                    "-p",
                    password,
                ])
                .output()
                .expect("run mosquitto_ctrl");
            assert!(
                out.status.success(),
                "createClient: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        broker
    }

    fn launch(&mut self) {
        let mut child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/mosquitto (Debian package mosquitto)");
        self.output = capture(child.stderr.take().unwrap());
        self.child = Some(child);
        let port = self.port;
        wait_for("mosquitto to listen", || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "mosquitto exited ({status}):\n{}{}",
                    self.output.lock().unwrap(),
                    self.log_text()
                );
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// Stops the broker gracefully (it saves its sessions when persistent).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM mosquitto");
            child.wait().expect("wait for mosquitto");
        }
    }

    /// Starts a stopped broker again, on the same port and files.
    pub fn start_again(&mut self) {
        self.launch();
    }

    /// Stops and starts the broker on the same port and files.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Everything the broker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Common arguments for mosquitto_pub / mosquitto_sub.
    pub fn client_args(&self) -> Vec<String> {
        let mut args = vec![
            "-h".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
        ];
        if let Some(ca) = &self.tls {
            args.extend(["--cafile".into(), ca.ca_cert.display().to_string()]);
            args.extend(["--cert".into(), ca.client_cert.display().to_string()]);
            args.extend(["--key".into(), ca.client_key.display().to_string()]);
        }
        args
    }

    /// Publishes with mosquitto_pub; `extra` may add `-q 1`, `-r`, `-u`...
    pub fn publish(&self, topic: &str, message: &str, extra: &[&str]) -> std::process::Output {
        Command::new("mosquitto_pub")
            .args(self.client_args())
            .args(["-t", topic, "-m", message])
            .args(extra)
            .output()
            .expect("run mosquitto_pub (Debian package mosquitto-clients)")
    }

    /// Starts mosquitto_sub for `count` messages on `topic` and waits until
    /// the broker has its subscription.
    pub fn subscribe(&self, topic: &str, count: usize, extra: &[&str]) -> Subscriber {
        let id = format!("test-sub-{}", fastrand_id());
        let child = Command::new("mosquitto_sub")
            .args(self.client_args())
            .args(["-t", topic, "-C", &count.to_string(), "-W", "60", "-i", &id])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mosquitto_sub (Debian package mosquitto-clients)");
        // mosquitto logs "<client id> <qos> <topic>" once subscribed.
        wait_for("the subscription to reach the broker", || {
            let log = self.log_text();
            log.lines()
                .any(|l| l.contains(&format!("{id} ")) && l.ends_with(topic))
                .then_some(())
        });
        Subscriber { child: Some(child) }
    }
}

fn fastrand_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A mosquitto_sub waiting for a number of messages.
pub struct Subscriber {
    child: Option<Child>,
}

impl Subscriber {
    /// Waits for mosquitto_sub to exit and returns the messages it printed.
    pub fn messages(mut self) -> Vec<String> {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mosquitto_sub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Rule code that must never hurt collectd: `(file name, code, what the
/// error says)`, shared by the collectd test and the `lua` CLI test. Where
/// more than one bound can stop a bomb first (a loaded machine reaches the
/// time limit sooner), the alternatives are separated by `|`: the tests
/// assert that the bomb was stopped, not which bound fired first.
/// Whether `text` says one of the `|`-separated `reasons` of a bomb.
pub fn says_one_of(text: &str, reasons: &str) -> bool {
    reasons.split('|').any(|r| text.contains(r))
}

pub const BOMBS: &[(&str, &str, &str)] = &[
    ("spin.lua", "while true do end", " limit: "),
    (
        "concat.lua",
        "local s = 'x' while true do s = s .. s end",
        "string length overflow| limit: ",
    ),
    (
        "selfref.lua",
        "local t = {} while true do t[#t + 1] = t end",
        " limit: ",
    ),
    (
        "recursion.lua",
        "local function f(n) return 1 + f(n + 1) end return f(1)",
        "limit",
    ),
    ("rep.lua", "return string.rep('x', 2^40)", "string.rep"),
    (
        "unpack.lua",
        "return table.unpack({}, 1, 1e9)",
        "too many results to unpack",
    ),
    (
        "pattern.lua",
        "return string.find(string.rep('a', 30000), '(a*)*b')",
        "pattern too expensive",
    ),
    ("errors.lua", "error('always broken')", "always broken"),
    (
        "bigstrings.lua",
        "local t = {} for i = 1, 100 do t[i] = string.rep('x', 16 * 1024 * 1024 - 1) end",
        "memory limit|time limit",
    ),
];

/// A memory figure of a process from /proc/PID/status (`VmRSS` resident
/// now, `VmHWM` the resident peak), in KiB.
pub fn memory_kib(field: &str, pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
