//! The `collectd-monitor` command: tools for operators and rule authors
//! around the plugin. Thin by design: every subcommand calls library code
//! that the plugin runs too, so what the tool accepts, collectd accepts.

use clap::{Parser, Subcommand};
use collectd_monitor::config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "collectd-monitor",
    version,
    about = "Fault recovery for collectd hosts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with the plugin's config.json.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config.json exactly as the plugin would, and summarise it.
    Check {
        /// Path of the config.json to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    }
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match config::load_json_file(file) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            let s = &loaded.settings;
            println!("{}: OK", file.display());
            match &s.host {
                Some(host) => println!("  MQTT broker: {host} (QoS {})", s.qos.level()),
                None => println!("  MQTT broker: none (remote commands off)"),
            }
            if let Some(dir) = &s.local_monitor_config_dir {
                println!("  rule directory: {}", dir.display());
            }
            for (name, service) in &s.services {
                let commands: Vec<&str> = service.commands.keys().map(String::as_str).collect();
                println!("  service {name}: {}", commands.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
