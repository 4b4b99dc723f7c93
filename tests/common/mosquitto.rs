//! A real mosquitto on a free loopback port (plain, TLS with a test CA,
//! users, ACLs, persistence), and subscribers that collect messages.

use super::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

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
    /// Reads the messages as they come until `done` says that is enough
    /// (or mosquitto_sub ends), then stops it; the messages read.
    pub fn until(mut self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        use std::io::BufRead;
        let mut child = self.child.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut messages = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            messages.push(line);
            if done(&messages) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        messages
    }

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
