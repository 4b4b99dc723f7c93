//! `config check FILE`: the plugin's own validation of a config.json, and
//! a summary of what it sets up.

use super::CliError;
use crate::config;
use crate::remote::RemoteSettings;
use std::path::Path;
use std::process::ExitCode;

/// Validates `file` as the plugin would and prints a summary.
pub fn check(file: &Path) -> Result<ExitCode, CliError> {
    let loaded = config::load_json_file(file).map_err(|e| CliError::Failed(e.to_string()))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let s = &loaded.settings;
    // The same checks the plugin makes before connecting, with a
    // placeholder for collectd's hostname.
    let remote = RemoteSettings::from_settings(s, "%{hostname}")
        .and_then(|r| match r {
            Some(r) => r.connection.mqtt_options().map(|_| Some(r)),
            None => Ok(None),
        })
        .map_err(|e| CliError::Failed(format!("{}: remote commands: {e}", file.display())))?;
    println!("{}: OK", file.display());
    match remote {
        Some(r) => {
            let c = &r.connection;
            let tls = match &c.tls {
                Some(t) if t.skip_verify => "TLS without certificate verification (insecure)",
                Some(_) => "TLS",
                None => "plain TCP",
            };
            println!(
                "  MQTT broker: {}:{} ({tls}, QoS {}, client id {})",
                c.host,
                c.port,
                s.qos.level(),
                c.client_id
            );
            println!(
                "  commands on {}, results on {}",
                r.command_topic, r.result_topic
            );
            if !r.config_push {
                println!("  collectd.conf push: off (AllowConfigPush false)");
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
                println!(
                    "  collectd.conf push: on; plugins: {plugins}; Include only under: {}",
                    if includes.is_empty() {
                        "(nowhere)".to_string()
                    } else {
                        includes.join(", ")
                    }
                );
            }
            match &r.trust {
                None => println!(
                    "  requests: NOT authenticated (no TrustedKeys): whoever may publish on the command topic can run every service"
                ),
                Some(trust) => {
                    println!("  requests: signed only; trusted keys:");
                    for (name, key) in &trust.keys {
                        println!("    {name}: {} ({})", key.rights.describe(), key.origin);
                    }
                }
            }
        }
        None => println!("  MQTT broker: none (remote commands off)"),
    }
    if let Some(dir) = &s.local_monitor_config_dir {
        println!("  rule directory: {}", dir.display());
    }
    for (name, service) in &s.services {
        let commands: Vec<&str> = service.commands.keys().map(String::as_str).collect();
        println!("  service {name}: {}", commands.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
