//! `completions SHELL` and `man --out DIR`: shell completions and man
//! pages generated from this command line's own definition, so they never
//! drift from what the program accepts (packaging runs `man`).

use super::{Cli, CliError};
use clap::CommandFactory;
use std::path::Path;
use std::process::ExitCode;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, CliError> {
    let mut command = Cli::command();
    clap_complete::generate(
        shell,
        &mut command,
        "collectd-monitor",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `collectd-monitor.1`, one page per subcommand
/// (`collectd-monitor-status.1`, ...) and `collectd-monitor.conf.5` into
/// `dir`.
pub fn man(dir: &Path) -> Result<ExitCode, CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
    std::fs::write(
        dir.join("collectd-monitor.conf.5"),
        super::conf_page::render(env!("CARGO_PKG_VERSION")),
    )
    .map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}
