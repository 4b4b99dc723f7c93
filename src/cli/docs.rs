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
    let hidden: Vec<String> = command
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "collectd-monitor", &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == clap_complete::Shell::Bash {
        script = bash_fixed(&script, &hidden);
    }
    print!("{script}");
    Ok(ExitCode::SUCCESS)
}

/// clap_complete's bash script for a program whose name has a hyphen
/// spells its case labels `collectd__subcmd__monitor__subcmd__status`
/// while its loop arrives at `collectd__monitor__subcmd__status`, so no
/// subcommand's options ever complete (clap issue 6421): the labels are
/// spelt as the loop spells them. Hidden subcommands (the rule worker,
/// the replacement helper, `man`) are taken out of the words offered.
fn bash_fixed(script: &str, hidden: &[String]) -> String {
    let script = script.replace("collectd__subcmd__monitor", "collectd__monitor");
    let mut out = String::with_capacity(script.len());
    let mut top_level = false;
    for line in script.split_inclusive('\n') {
        if line.trim() == "collectd__monitor)" {
            top_level = true;
        } else if top_level && line.trim_start().starts_with("opts=\"") {
            top_level = false;
            let indent = &line[..line.len() - line.trim_start().len()];
            let words = line
                .trim()
                .trim_start_matches("opts=\"")
                .trim_end_matches('"');
            let kept: Vec<&str> = words
                .split(' ')
                .filter(|w| !hidden.iter().any(|h| h == w))
                .collect();
            out.push_str(&format!("{indent}opts=\"{}\"\n", kept.join(" ")));
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Writes `collectd-monitor.1`, one page per subcommand
/// (`collectd-monitor-status.1`, ...), `collectd-monitor.conf.5` and
/// `collectd-monitor-rules.5` into `dir`.
pub fn man(dir: &Path) -> Result<ExitCode, CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(
        dir.join("collectd-monitor.conf.5"),
        super::conf_page::render(version),
    )
    .map_err(failed)?;
    std::fs::write(
        dir.join("collectd-monitor-rules.5"),
        super::conf_page::render_rules(version),
    )
    .map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}
