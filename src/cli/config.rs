//! `config check FILE`: the plugin's own validation of a config.json, or
//! of a collectd.conf's `<Plugin monitor>` block (read by collectd's own
//! parser) merged with the config.json it names, and a summary of what it
//! sets up.

use super::CliError;
use crate::config::{self, BlockReport, Loaded};
use crate::remote::RemoteSettings;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs collectd and this plugin.
pub const DEFAULT_COLLECTD: &str = "/usr/sbin/collectd";
pub const DEFAULT_PLUGIN: &str = "/usr/lib/collectd/monitor.so";

/// What a check found: errors make it fail; the summary says what the
/// configuration sets up.
#[derive(Debug, Default, serde::Serialize)]
pub struct ConfigCheck {
    pub file: PathBuf,
    /// `config.json` or `collectd.conf`.
    pub kind: &'static str,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub summary: Vec<String>,
}

/// Validates `file` as the plugin would and prints the findings.
pub fn check(
    file: &Path,
    json: bool,
    collectd: &Path,
    plugin: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let report = if is_json(file) {
        check_json(file)
    } else {
        // Unless named: the file's own `PluginDir` when it holds the
        // plugin (an install outside /usr/lib/collectd), else the
        // packaged path.
        let plugin = match plugin {
            Some(p) => p.to_path_buf(),
            None => plugin_in_plugin_dir(file).unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGIN)),
        };
        check_collectd_conf(file, collectd, &plugin)?
    };
    if json {
        say!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        for e in &report.errors {
            eprintln!("{e}");
        }
        if report.errors.is_empty() {
            say!("{}: OK", file.display());
            for line in &report.summary {
                say!("  {line}");
            }
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The host name `%{hostname}` stands for: collectd.conf's `Hostname`, else
/// this machine's (collectd's `FQDNLookup` may lengthen it).
fn this_host(configured: Option<&str>) -> String {
    configured.map(str::to_string).unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "%{hostname}".into())
    })
}

/// `monitor.so` in the `PluginDir` a collectd.conf names at its top level,
/// when it is there.
fn plugin_in_plugin_dir(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let line = line.trim();
        let (key, rest) = line.split_once(char::is_whitespace)?;
        if !key.eq_ignore_ascii_case("PluginDir") {
            return None;
        }
        let dir = rest.trim().trim_matches('"');
        let plugin = Path::new(dir).join("monitor.so");
        plugin.is_file().then_some(plugin)
    })
}

/// A config.json is named `*.json` or starts with `{`; anything else is
/// read as collectd.conf.
fn is_json(file: &Path) -> bool {
    if file.extension().is_some_and(|e| e == "json") {
        return true;
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

fn check_json(file: &Path) -> ConfigCheck {
    let mut report = ConfigCheck {
        file: file.to_path_buf(),
        kind: "config.json",
        ..ConfigCheck::default()
    };
    match config::load_json_file(file) {
        Ok(loaded) => summarise(&loaded, &this_host(None), &mut report),
        Err(e) => report.errors.push(e.to_string()),
    }
    report
}

/// Has collectd's own parser read `file` (in a collectd started for that
/// alone, which runs this plugin's check mode and exits before any plugin
/// starts), then loads the block as the plugin would.
fn check_collectd_conf(
    file: &Path,
    collectd: &Path,
    plugin: &Path,
) -> Result<ConfigCheck, CliError> {
    let mut report = ConfigCheck {
        file: file.to_path_buf(),
        kind: "collectd.conf",
        ..ConfigCheck::default()
    };
    let file = std::path::absolute(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    if !file.is_file() {
        return Err(CliError::Usage(format!("{}: not a file", file.display())));
    }
    let found = parse_with_collectd(&file, collectd, plugin)?;
    if let Some(e) = found.parse_error {
        report.errors.push(format!("{}: {e}", file.display()));
        return Ok(report);
    }
    if let Some(e) = &found.block_error {
        report.errors.push(format!("{}: {e}", file.display()));
        return Ok(report);
    }
    if let Some(why) = &found.include_error {
        for include in &found.includes {
            report.warnings.push(format!(
                "{}: Include {include:?} could not be read as collectd reads it ({why}): a <Plugin monitor> block there is not seen",
                file.display()
            ));
        }
    }
    if !found.loads_monitor {
        report.warnings.push(format!(
            "{}: no `LoadPlugin monitor`: collectd will not load this plugin",
            file.display()
        ));
    }
    match config::load(&found.block()) {
        Ok(loaded) => summarise(&loaded, &this_host(found.hostname.as_deref()), &mut report),
        Err(e) => report.errors.push(format!("{}: {e}", file.display())),
    }
    Ok(report)
}

/// A directory of our own under the system's temporary directory, removed
/// when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// collectd.conf quoting: backslashes and double quotes escaped.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// How long the checking collectd may take (it exits while reading its
/// configuration, normally within milliseconds).
const CHECK_TIME: Duration = Duration::from_secs(30);

fn parse_with_collectd(
    file: &Path,
    collectd: &Path,
    plugin: &Path,
) -> Result<BlockReport, CliError> {
    let usage = |e: String| CliError::Usage(e);
    let dir = std::env::temp_dir().join(format!(
        "collectd-monitor-check-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir(&dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let scratch = Scratch(dir);
    let plugins = scratch.0.join("plugins");
    std::fs::create_dir(&plugins)
        .and_then(|()| std::fs::copy(plugin, plugins.join("monitor.so")).map(|_| ()))
        .map_err(|e| usage(format!("--plugin {}: {e}", plugin.display())))?;
    let report_path = scratch.0.join("report.json");
    let conf = scratch.0.join("check.conf");
    std::fs::write(
        &conf,
        format!(
            "BaseDir {base}\nPIDFile {pid}\nPluginDir {plugins}\nLoadPlugin monitor\n<Plugin monitor>\n  {key} {file} {report}\n</Plugin>\n",
            base = quoted(&scratch.0),
            pid = quoted(&scratch.0.join("collectd.pid")),
            plugins = quoted(&plugins),
            key = config::CHECK_KEY,
            file = quoted(file),
            report = quoted(&report_path),
        ),
    )
    .map_err(|e| usage(format!("{}: {e}", conf.display())))?;
    let mut child = Command::new(collectd)
        .arg("-C")
        .arg(&conf)
        .arg("-f")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| usage(format!("--collectd {}: {e}", collectd.display())))?;
    let deadline = Instant::now() + CHECK_TIME;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().map_err(|e| usage(e.to_string()))?;
    let bytes = crate::files::read_regular(&report_path, 4 << 20, crate::files::Links::Refuse)
        .map_err(|_| {
            CliError::Failed(format!(
                "{} could not check the file (is --plugin this program's monitor.so?): {}{}",
                collectd.display(),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        })?;
    serde_json::from_slice(&bytes).map_err(|e| CliError::Failed(format!("the check's report: {e}")))
}

/// What the loaded settings set up, and the checks the plugin makes
/// before connecting (with a placeholder for collectd's hostname).
fn summarise(loaded: &Loaded, hostname: &str, report: &mut ConfigCheck) {
    report.warnings.extend(loaded.warnings.iter().cloned());
    let s = &loaded.settings;
    if let Some(path) = &loaded.config_path {
        report
            .summary
            .push(format!("config.json: {}", path.display()));
    }
    let remote = RemoteSettings::from_settings(s, hostname).and_then(|r| match r {
        Some(r) => r.connection.mqtt_options().map(|_| Some(r)),
        None => Ok(None),
    });
    let lines = &mut report.summary;
    match remote {
        Err(e) => report.errors.push(format!("remote commands: {e}")),
        Ok(Some(r)) => {
            let c = &r.connection;
            let tls = match &c.tls {
                Some(t) if t.skip_verify => "TLS without certificate verification (insecure)",
                Some(_) => "TLS",
                None => "plain TCP",
            };
            lines.push(format!(
                "MQTT broker: {}:{} ({tls}, QoS {}, client id {})",
                c.host,
                c.port,
                s.qos.level(),
                c.client_id
            ));
            lines.push(format!(
                "commands on {}, results on {}",
                r.command_topic, r.result_topic
            ));
            if let Some(status) = &r.status_topic {
                lines.push(format!("presence on {status} (retained, with a last will)"));
            }
            if !r.config_push {
                lines.push("collectd.conf push: off (AllowConfigPush false)".into());
            } else {
                let p = &r.replace.policy;
                let plugins = match &p.allowed_plugins {
                    Some(list) => list.join(", "),
                    None => format!(
                        "any but {}",
                        crate::reconfig::CODE_RUNNING_PLUGINS.join(", ")
                    ),
                };
                let includes: Vec<String> = p
                    .include_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                lines.push(format!(
                    "collectd.conf push: on; plugins: {plugins}; Include only under: {}",
                    if includes.is_empty() {
                        "(nowhere)".to_string()
                    } else {
                        includes.join(", ")
                    }
                ));
            }
            match &r.trust {
                None => lines.push(
                    "requests: NOT authenticated (no TrustedKeys): whoever may publish on the command topic can run every service".into(),
                ),
                Some(trust) => {
                    lines.push("requests: signed only; trusted keys:".into());
                    for (name, key) in &trust.keys {
                        lines.push(format!("  {name}: {} ({})", key.rights.describe(), key.origin));
                    }
                }
            }
        }
        Ok(None) => lines.push("MQTT broker: none (remote commands off)".into()),
    }
    if let Some(dir) = &s.local_monitor_config_dir {
        lines.push(format!("rule directory: {}", dir.display()));
    }
    for (name, service) in &s.services {
        let commands: Vec<&str> = service.commands.keys().map(String::as_str).collect();
        lines.push(format!("service {name}: {}", commands.join(", ")));
    }
    summarise_central(s, report);
}

/// Central rules' settings, and the files they read checked as the
/// plugin reads them.
fn summarise_central(s: &crate::config::Settings, report: &mut ConfigCheck) {
    let Some(dir) = &s.fleet_monitor_config_dir else {
        return;
    };
    let lines = &mut report.summary;
    lines.push(format!(
        "central rules: {}; requests on {}, results on {}, signed with {}",
        dir.display(),
        s.fleet_command_topic.as_deref().unwrap_or("-"),
        s.fleet_result_topic.as_deref().unwrap_or("-"),
        s.signing_key
            .as_ref()
            .map_or("nothing (no SigningKey)".into(), |k| k
                .display()
                .to_string())
    ));
    lines.push(format!(
        "central guards: {} in repair at once, error budget {} in {} s, host cooldown {} s, window {} s, timeout {} s",
        s.fleet_max_in_flight,
        s.fleet_error_budget,
        s.fleet_budget_window,
        s.fleet_host_cooldown,
        s.fleet_task_window,
        s.fleet_request_timeout
    ));
    match crate::central::Origins::load(
        "%{hostname}",
        s.fleet_accept_unproven_values,
        s.fleet_value_origins.as_deref(),
    ) {
        Err(e) => report.errors.push(format!("FleetValueOrigins: {e}")),
        Ok(_) if s.fleet_accept_unproven_values => report
            .summary
            .push("central values: taken WITHOUT proof (FleetAcceptUnprovenValues)".into()),
        Ok(_) => report.summary.push(format!(
            "central values: a value list counts for the host whose network user signed it{}",
            s.fleet_value_origins
                .as_ref()
                .map_or(String::new(), |p| format!(", and as {} says", p.display()))
        )),
    }
    match &s.fleet_host_keys {
        Some(path) => match crate::auth::TrustedKeys::load_hosts(path) {
            Ok(keys) => report.summary.push(format!(
                "central hosts: the {} of {} with their result keys",
                keys.keys.len(),
                path.display()
            )),
            Err(e) => report.errors.push(format!("FleetHostKeys: {e}")),
        },
        None => report.summary.push(format!(
            "central hosts: those announcing themselves on {} (keys kept from their first presence), at most {}",
            s.fleet_status_topic.as_deref().unwrap_or("(no FleetStatusTopic: none)"),
            s.fleet_max_hosts
        )),
    }
}
