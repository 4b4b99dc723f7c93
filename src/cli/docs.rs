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

/// Writes `collectd-monitor.1` and one page per subcommand
/// (`collectd-monitor-status.1`, ...) into `dir`.
pub fn man(dir: &Path) -> Result<ExitCode, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    Ok(ExitCode::SUCCESS)
}
