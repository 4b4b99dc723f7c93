//! Completions and man pages come from the command line's own definition:
//! every subcommand is in them, and the pages are clean roff.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .output()
        .expect("run collectd-monitor")
}

/// Every subcommand, as the program's own `--help` lists them (a new one
/// is checked without anyone adding it here).
fn subcommands() -> Vec<String> {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect();
    for known in ["send-command", "send-config", "status", "hosts", "rules"] {
        assert!(
            names.iter().any(|n| n == known),
            "--help lacks {known}: {help}"
        );
    }
    names
}

#[test]
fn completions_know_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in subcommands() {
            assert!(script.contains(&sub), "{shell} completion lacks {sub}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_cover_every_subcommand_and_render_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = dir.path().join("collectd-monitor.1");
    let text = std::fs::read_to_string(&main).unwrap();
    for sub in subcommands() {
        // roff writes a hyphen as `\-`.
        assert!(
            text.contains(&sub.replace('-', "\\-")),
            "collectd-monitor.1 lacks {sub}"
        );
    }
    for page in [
        "status",
        "send-command",
        "config-check",
        "rules-check",
        "keygen",
    ] {
        let path = dir.path().join(format!("collectd-monitor-{page}.1"));
        assert!(path.is_file(), "no page for {page}");
        // groff: every warning on, output discarded; a warning is a defect.
        let checked = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("groff (groff-base) is installed by scripts/install-deps");
        assert!(
            checked.status.success() && checked.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let status = std::fs::read_to_string(dir.path().join("collectd-monitor-status.1")).unwrap();
    assert!(status.contains("Exit status"), "{status}");
    // The configuration page: every key of docs/configuration.md's table.
    let conf = std::fs::read_to_string(dir.path().join("collectd-monitor.conf.5")).unwrap();
    for key in [
        "TrustedKeys",
        "AllowConfigPush",
        "ControlSocket",
        "RuleMemoryLimit",
        "CommandMaxAge",
    ] {
        assert!(conf.contains(&format!(".TP\n\\fB{key}\\fR")), "{key}");
    }
    // The rule files' page: docs/rules.md's "Rule files" and "The sandbox".
    let rules_page = dir.path().join("collectd-monitor-rules.5");
    let rules = std::fs::read_to_string(&rules_page).unwrap();
    assert!(
        rules.contains(".SS Handler options")
            && rules.contains(".SH THE SANDBOX")
            && rules.contains("memory_free_is_under_10GB"),
        "{rules}"
    );
    for page in [&rules_page, &dir.path().join("collectd-monitor.conf.5")] {
        let checked = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(page)
            .output()
            .unwrap();
        assert!(
            checked.status.success() && checked.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

/// What bash offers after `collectd-monitor WORDS... <TAB>`, with the
/// generated script sourced (the function bash's `complete` would call).
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(script).unwrap();
    let function = text
        .lines()
        .next()
        .and_then(|l| l.strip_suffix("() {"))
        .unwrap_or_else(|| panic!("no function first in the script:\n{text}"))
        .to_string();
    let all: Vec<String> = std::iter::once("collectd-monitor")
        .chain(words.iter().copied())
        .map(|w| format!("'{w}'"))
        .collect();
    let current = words.last().copied().unwrap_or("");
    let previous = if words.len() >= 2 {
        words[words.len() - 2]
    } else {
        "collectd-monitor"
    };
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; {function} collectd-monitor '{current}' '{previous}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        all.join(" "),
        words.len(),
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Options complete after every public subcommand (clap_complete's bash
/// script for a hyphenated program name matched none); the internal
/// subcommands are not offered.
#[test]
fn bash_completes_every_subcommands_options_and_hides_the_internal_ones() {
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("collectd-monitor.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    for sub in subcommands() {
        let offered = bash_completes(&script, &[&sub, "--"]);
        assert!(
            offered.iter().any(|o| o == "--help"),
            "{sub} --<TAB>: {offered:?}"
        );
    }
    assert!(bash_completes(&script, &["status", "--"]).contains(&"--socket".to_string()));
    let rules = bash_completes(&script, &["send-rules", "--"]);
    assert!(rules.contains(&"--canary".to_string()), "{rules:?}");
    let top = bash_completes(&script, &[""]);
    assert!(top.contains(&"send-rules".to_string()), "{top:?}");
    for internal in ["rule-worker", "replace-config", "man"] {
        assert!(!top.contains(&internal.to_string()), "{top:?}");
    }
}
