//! A fleet for central rules' tests: one mosquitto, hosts (real collectd
//! with the plugin) that sign their network traffic as themselves and
//! announce their presence, and central collectds that listen for the
//! hosts' values (verifying signatures with an AuthFile, but also taking
//! unsigned packets, so that the plugin's own check is what is tested).

use super::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Asks for `app/restart` on the host whose `app` value is 0, and on the
/// host a load balancer's `lb` value names as a dead backend.
pub const APP_RULE: &str = r#"
return {
  app_down = function(m)
    if m.plugin == "app" and m.values[1] == 0 then
      return { service = "app", command = "restart" }
    end
  end,
  backend_down = function(m)
    if m.plugin == "lb" and m.values[1] == 0 then
      return { service = "app", command = "restart", host = m.type_instance }
    end
  end,
}
"#;

/// The users the central collectds' network plugin knows (`AuthFile`).
const USERS: &[&str] = &[
    "web1", "web2", "web3", "web4", "web5", "web9", "lb1", "flooder",
];

/// How a host signs what it sends.
pub fn password(user: &str) -> String {
    format!("pw-{user}")
}

pub struct Fleet {
    pub broker: Mosquitto,
    pub work: tempfile::TempDir,
    /// The controller's key pair, and the hosts' trusted-keys file.
    pub key: PathBuf,
    pub trusted: PathBuf,
    /// The central collectds' network `AuthFile`.
    pub auth: PathBuf,
}

/// How a test host differs from a plain one.
#[derive(Default)]
pub struct HostOpts {
    /// The network plugin's user it signs as; `None`: unsigned.
    pub user: Option<String>,
    /// Environment of its collectd (a faked clock).
    pub env: Vec<(String, String)>,
    /// More collectd.conf lines (`Interval 1`).
    pub conf: String,
}

impl HostOpts {
    /// Signs as `name`, as a real host does.
    pub fn signed_as(name: &str) -> HostOpts {
        HostOpts {
            user: Some(name.into()),
            ..HostOpts::default()
        }
    }
}

impl Fleet {
    pub fn new() -> Fleet {
        let broker = Mosquitto::start();
        let work = tempfile::Builder::new()
            .prefix("cm-central")
            .tempdir()
            .unwrap();
        let (key, public) = keygen(&work.path().join("keys"), "controller");
        let trusted = work.path().join("trusted");
        std::fs::write(&trusted, format!("{public} commands=app/*\n")).unwrap();
        let auth = work.path().join("network-users");
        let lines: String = USERS
            .iter()
            .map(|u| format!("{u}: {}\n", password(u)))
            .collect();
        std::fs::write(&auth, lines).unwrap();
        Fleet {
            broker,
            work,
            key,
            trusted,
            auth,
        }
    }

    pub fn marker(&self, host: &str) -> PathBuf {
        self.work.path().join(format!("ran-{host}"))
    }

    /// Lets `host`'s `app/restart` finish (it waits for this file).
    pub fn release(&self, host: &str) {
        std::fs::write(self.work.path().join(format!("release-{host}")), "").unwrap();
    }

    /// How often `host` ran `app/restart` to its end.
    pub fn runs(&self, host: &str) -> usize {
        std::fs::read_to_string(self.marker(host)).map_or(0, |t| t.lines().count())
    }

    /// A host signing its values as itself.
    pub fn host(&self, name: &str, ports: &[u16], exit: i32) -> Collectd {
        self.host_with(name, ports, exit, HostOpts::signed_as(name))
    }

    /// A host sending its values to the central collectds on `ports`; its
    /// `app/restart` waits until the test releases it, then appends to its
    /// marker file and exits with `exit`.
    pub fn host_with(&self, name: &str, ports: &[u16], exit: i32, opts: HostOpts) -> Collectd {
        let config = json!({
            "Host": format!("127.0.0.1:{}", self.broker.port),
            "CommandTopic": "collectd/%{hostname}/command",
            "CommandResultTopic": "collectd/%{hostname}/result",
            "StatusTopic": "collectd/%{hostname}/status",
            "StateDir": self.work.path().join(name),
            "TrustedKeys": self.trusted,
            "CommandTimeout": 600,
            "Services": {"app": {"commands": {"restart": format!(
                "while [ ! -e {release} ]; do sleep 0.1; done; echo restarted >> {marker}; exit {exit}",
                release = self.work.path().join(format!("release-{name}")).display(),
                marker = self.marker(name).display()
            )}}},
        });
        let security = match &opts.user {
            Some(user) => format!(
                "    SecurityLevel Sign\n    Username \"{user}\"\n    Password \"{}\"\n",
                password(user)
            ),
            None => String::new(),
        };
        let servers: String = ports
            .iter()
            .map(|p| format!("  <Server \"127.0.0.1\" \"{p}\">\n{security}  </Server>\n"))
            .collect();
        let mut c = Collectd::start(CollectdSpec {
            hostname: name.into(),
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            // The network plugin sends what it buffered at each flush.
            extra_conf: format!(
                "{}<LoadPlugin network>\n  FlushInterval 1\n</LoadPlugin>\n<Plugin network>\n{servers}</Plugin>\n",
                opts.conf
            ),
            env: opts.env,
            ..Default::default()
        });
        c.wait_for_log(&format!(
            "listening for commands on collectd/{name}/command"
        ));
        c
    }

    /// A central collectd listening on `port`, running `APP_RULE` with
    /// `extra` settings.
    pub fn central(&self, name: &str, port: u16, extra: Value) -> Collectd {
        self.central_with(name, port, extra, Vec::new())
    }

    /// The same, with environment variables for its collectd.
    pub fn central_with(
        &self,
        name: &str,
        port: u16,
        extra: Value,
        env: Vec<(String, String)>,
    ) -> Collectd {
        self.central_conf(name, port, extra, env, "")
    }

    /// The same, with more collectd.conf lines (`Interval 1`).
    pub fn central_conf(
        &self,
        name: &str,
        port: u16,
        extra: Value,
        env: Vec<(String, String)>,
        conf: &str,
    ) -> Collectd {
        self.central_rules(name, port, extra, env, conf, &[("app.lua", APP_RULE)])
    }

    /// The same, with `rules` (name, text) as its rule files instead of
    /// `APP_RULE`.
    pub fn central_rules(
        &self,
        name: &str,
        port: u16,
        extra: Value,
        env: Vec<(String, String)>,
        conf: &str,
        files: &[(&str, &str)],
    ) -> Collectd {
        let rules = self.work.path().join(format!("{name}-rules"));
        std::fs::create_dir_all(&rules).unwrap();
        for (file, text) in files {
            std::fs::write(rules.join(file), text).unwrap();
        }
        let mut config = json!({
            "Host": format!("127.0.0.1:{}", self.broker.port),
            "CommandTopic": "collectd/%{hostname}/command",
            "CommandResultTopic": "collectd/%{hostname}/result",
            "StateDir": self.work.path().join(name),
            "HelperPath": env!("CARGO_BIN_EXE_collectd-monitor"),
            "FleetMonitorConfigDir": rules,
            "FleetCommandTopic": "collectd/%{hostname}/command",
            "FleetResultTopic": "collectd/%{hostname}/result",
            "FleetStatusTopic": "collectd/%{hostname}/status",
            "SigningKey": self.key,
            "FleetMaxInFlight": "10",
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let mut c = Collectd::start(CollectdSpec {
            hostname: name.into(),
            monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
            config_json: Some((config.to_string(), 0o600)),
            // SecurityLevel None with an AuthFile: signed packets are
            // verified and carry their user, unsigned ones pass without.
            extra_conf: format!(
                "{conf}LoadPlugin network\n<Plugin network>\n  <Listen \"127.0.0.1\" \"{port}\">\n    SecurityLevel None\n    AuthFile \"{}\"\n  </Listen>\n</Plugin>\n",
                self.auth.display()
            ),
            env,
            ..Default::default()
        });
        c.wait_for_log("central: listening for the hosts on collectd/+/result");
        for (file, _) in files {
            c.wait_for_log(&format!("{file}: loaded"));
        }
        c
    }

    /// Waits until central collectd `name` knows `hosts` (their presence
    /// arrived).
    pub fn wait_known(&self, name: &str, hosts: usize) {
        wait_for(&format!("{name} to know {hosts} hosts"), || {
            (self.status(name)["central"]["hosts"]["known"].as_u64() == Some(hosts as u64))
                .then_some(())
        });
    }

    /// The control socket of the collectd named `name` (its StateDir).
    pub fn socket(&self, name: &str) -> PathBuf {
        self.work.path().join(name).join("control.sock")
    }

    /// `collectd-monitor ARGS --socket <name's socket>`.
    pub fn cli(&self, name: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .args(args)
            .arg("--socket")
            .arg(self.socket(name))
            .output()
            .unwrap()
    }

    /// `status --json` of the collectd named `name`.
    pub fn status(&self, name: &str) -> Value {
        let out = self.cli(name, &["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status of {name}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// Lines of `c`'s log containing `needle`.
pub fn count(c: &Collectd, needle: &str) -> usize {
    c.log_text().matches(needle).count()
}

/// The central command state of `command` in a status document.
pub fn guard<'a>(status: &'a Value, command: &str) -> &'a Value {
    status["central"]["commands"]
        .as_array()
        .and_then(|c| c.iter().find(|g| g["command"] == command))
        .unwrap_or(&Value::Null)
}
