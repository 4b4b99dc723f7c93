//! `lua FILE`: a script in exactly the environment rule files get. The
//! command re-runs itself as a sandboxed child (`--in-sandbox`), so a
//! script that kills its process shows as an error, not a crash.

use super::CliError;
use super::args::LimitArgs;
use crate::lua::{Vm, VmLimits};
use crate::sandbox::watchdog;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitCode;

/// Runs `lua --in-sandbox FILE` as a child and reports how it ended.
pub fn run_sandboxed(file: &Path, limits: LimitArgs) -> Result<ExitCode, CliError> {
    let status = std::env::current_exe()
        .and_then(|exe| {
            let mut command = std::process::Command::new(exe);
            watchdog::tie_to_parent(&mut command);
            command
                .arg("lua")
                .arg("--in-sandbox")
                .args(limits.command_line())
                .arg(file)
                .status()
        })
        .map_err(|e| CliError::Usage(format!("cannot start the sandbox process: {e}")))?;
    match (status.code(), status.signal()) {
        // The watchdog ended it (and said why): a failed script.
        (Some(watchdog::EXIT_OVERRUN), _) => Ok(ExitCode::FAILURE),
        (Some(code), _) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        (None, signal) => {
            let name = signal
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
                .map_or("unknown signal", |s| s.as_str());
            Err(CliError::Failed(format!(
                "{}: the sandbox running the script was killed by {name} (a memory or stack limit, most likely)",
                file.display()
            )))
        }
    }
}

/// Runs the script in this (confined) process; `print` goes to stdout.
pub fn run_here(file: &Path, limits: VmLimits) -> Result<ExitCode, CliError> {
    let source =
        std::fs::read(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    watchdog::die_with_parent();
    watchdog::start(limits.deadline, file.display().to_string());
    if let Some(warning) = crate::sandbox::confine(limits.memory).map_err(CliError::Usage)? {
        eprintln!("warning: {warning}");
    }
    let outcome = Vm::new(limits).and_then(|mut vm| {
        let result = vm.run_chunk(&file.display().to_string(), &source);
        for line in vm.take_printed() {
            say!("{line}");
        }
        result
    });
    outcome
        .map(|_| ExitCode::SUCCESS)
        .map_err(|e| CliError::Failed(e.located(&file.display().to_string())))
}
