//! What several test files share around the command line and rule files.

use std::process::{Command, Output};

/// A rule firing `hello/exec` for every value of the `probe` plugin.
pub const PROBE_RULE: &str = r#"
return { probe = function(m)
  if m.plugin == "probe" then return { service = "hello", command = "exec" } end
end }"#;

/// `collectd-monitor ARGS`, run to its end.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .output()
        .expect("run collectd-monitor")
}

/// What a command printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Result notifications of rule-run commands so far.
pub fn rule_runs(c: &super::Collectd) -> usize {
    c.log_text()
        .matches("plugin = lua-collectd-monitor-local")
        .count()
}

/// What a command that printed one JSON document per line printed (it
/// must have succeeded).
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
