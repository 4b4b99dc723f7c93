//! `collectd-monitor lua`, `rules check` and `rules test` on real files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(args)
        .output()
        .expect("run collectd-monitor")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command failed (exit 1) and said `needle` on stderr.
fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

/// The command failed (exit 1) with one of the limits' errors: which
/// limit stops a runaway first depends on how busy the machine is.
fn assert_stopped_by_a_limit(out: &Output, expected: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected) || stderr.contains("time limit"),
        "{stderr}"
    );
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn output_into_a_closed_pipe_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("many.lua");
    // Far more than a pipe holds.
    std::fs::write(
        &script,
        "for i = 1, 20000 do print(string.rep('x', 100)) end",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["lua", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (as `| head -1` goes).
    let out = child.wait_with_output().unwrap();
    assert_eq!(first.len(), 101);
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn lua_runs_a_script_in_the_rule_environment() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(
        &script,
        "print('sum', 1 + 2, 2.0 * 25, NOTIF_FAILURE, io == nil, os.execute == nil)",
    )
    .unwrap();
    let out = run(&["lua", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "sum\t3\t50.0\t1\ttrue\ttrue\n");

    std::fs::write(&script, "error('boom')").unwrap();
    let out = run(&["lua", script.to_str().unwrap()]);
    assert_fails_with(&out, "boom");

    std::fs::write(&script, "local s = string.rep('x', 2^40)").unwrap();
    let out = run(&["lua", script.to_str().unwrap()]);
    assert_fails_with(&out, "more than the 16777216");

    // Catastrophic backtracking ends with an error, not hours of CPU.
    std::fs::write(
        &script,
        "string.find(string.rep('a', 3000), '.-.-.-.-.-.-b')",
    )
    .unwrap();
    let out = run(&["lua", script.to_str().unwrap()]);
    assert_stopped_by_a_limit(&out, "pattern too expensive");

    std::fs::write(&script, "while true do end").unwrap();
    let out = run(&["lua", script.to_str().unwrap()]);
    assert_stopped_by_a_limit(&out, "CPU limit");
}

#[test]
fn rules_check_lists_handlers_and_reports_broken_files() {
    let out = run(&["rules", "check", repo("rules").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("example.lua: OK"), "{stdout}");
    assert!(
        stdout.contains("example.lua::metric::memory_free_is_under_10GB"),
        "{stdout}"
    );
    assert!(
        stdout.contains("example.lua::notification::fail_example"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a_good.lua"), "return function(m) end").unwrap();
    std::fs::write(
        dir.path().join("b_syntax.lua"),
        "return function(m) end end",
    )
    .unwrap();
    std::fs::write(dir.path().join("c_shape.lua"), "return 42").unwrap();
    std::fs::write(dir.path().join("d_field.lua"), "return {x = 1}").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not lua").unwrap();
    std::fs::write(
        dir.path().join("e_meta.lua"),
        "local mt = {__add = function() return 1 end} return function(m) end",
    )
    .unwrap();
    let out = run(&["rules", "check", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("a_good.lua: OK") && stdout.contains("a_good.lua::metric"),
        "{stdout}"
    );
    assert!(stderr.contains("b_syntax.lua:1: "), "{stderr}");
    assert!(
        stderr.contains("c_shape.lua: the first (metric handlers) return value must be"),
        "{stderr}"
    );
    assert!(
        stderr.contains("d_field.lua: the first (metric handlers) return value has `x` = a number"),
        "{stderr}"
    );
    assert!(!stdout.contains("ignored.txt") && !stderr.contains("ignored.txt"));
    assert!(stdout.contains("e_meta.lua: OK"), "{stdout}");
    assert!(
        stderr.contains("e_meta.lua: warning: metamethod __add is not supported"),
        "{stderr}"
    );
}

#[test]
fn rules_test_shows_which_handlers_fire_on_sample_events() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"plugin": "memory", "type": "memory", "type_instance": "free", "values": [5000000000]}"#,
            r#"{"plugin": "memory", "type": "memory", "type_instance": "free", "values": [20000000000]}"#,
            r#"{"plugin": "cpu", "type": "cpu", "type_instance": "idle", "values": [42], "dstypes": ["derive"]}"#,
            r#"{"severity": 1, "plugin": "nginx", "message": "down"}"#,
            r#"{"severity": 4, "message": "fine"}"#,
            r#"not json"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = run(&[
        "rules",
        "test",
        repo("rules/example.lua").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    // The input has a broken line: non-zero exit, but every line is reported.
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("line 1: ")
            && lines[0].ends_with("::metric::memory_free_is_under_10GB -> hello/exec"),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with("::metric::memory_free_is_over_10GB -> hello/exec"),
        "{stdout}"
    );
    assert_eq!(lines[2], "line 3: nothing fired");
    assert!(
        lines[3].ends_with("::notification::fail_example -> hello/exec"),
        "{stdout}"
    );
    assert_eq!(lines[4], "line 5: nothing fired");
    assert!(
        text(&out.stderr).contains("line 6: not JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rules_test_sees_the_exact_tables_and_keeps_state_between_events() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("load.lua");
    // Fires on the third consecutive high load: state lives in a file local.
    std::fs::write(
        &rule,
        r#"
local high = 0
return {
  load_high_3_times = function(m)
    if m.plugin ~= "load" then return nil end
    assert(m.dsnames[0] == "shortterm" and m.dstypes[0] == "gauge", "0-indexed dsnames/dstypes")
    assert(math.type(m.values[1]) == "float" and #m.values == 3)
    if m.values[1] > 4 then high = high + 1 else high = 0 end
    print("high", high)
    if high >= 3 then return {service = "web", command = "restart"} end
  end,
}
"#,
    )
    .unwrap();
    let input = dir.path().join("in.jsonl");
    let load = |v: f64| {
        format!(
            r#"{{"plugin":"load","type":"load","values":[{v},1,1],"dsnames":["shortterm","midterm","longterm"]}}"#
        )
    };
    std::fs::write(&input, [load(5.0), load(6.0), load(7.0)].join("\n")).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"Services": {"web": {"commands": {"restart": "true"}}}}"#,
    )
    .unwrap();
    let out = run(&[
        "rules",
        "test",
        rule.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("line 3: ")
            && stdout.contains("::metric::load_high_3_times -> web/restart"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("web/restart").count(),
        1,
        "fires on the third value only: {stdout}"
    );
    assert!(stdout.contains("print: high\t3"), "{stdout}");

    // A handler returning garbage, or naming a command config.json lacks,
    // is reported and fails the run.
    std::fs::write(&rule, "return { garbage = function(m) return 42 end, typo = function(m) return {service = 'web', command = 'reboot'} end }").unwrap();
    let out = run(&[
        "rules",
        "test",
        rule.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("::metric::garbage: error: returned a number"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> web/reboot (config.json has no such command)"),
        "{stdout}"
    );
}

/// Every rule file under rules/ has sample events in rules/tests/NAME.jsonl
/// and the decisions they must produce in rules/tests/NAME.expected.
#[test]
fn shipped_rules_decide_as_their_golden_files_say() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "lua") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let input = root.join(format!("rules/tests/{name}.jsonl"));
        let expected = std::fs::read_to_string(root.join(format!("rules/tests/{name}.expected")))
            .unwrap_or_else(|e| panic!("rules/{name}.lua has no golden file: {e}"));
        let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
            .current_dir(root)
            .args(["rules", "test", &format!("rules/{name}.lua"), "--input"])
            .arg(&input)
            .args(["--config", "conf/config.json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), expected, "rules/{name}.lua");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} rule files checked");
}

#[test]
fn handler_options_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.lua");
    for (source, message) in [
        (
            "return { x = { hits = 2 } }",
            "without a `handler` function",
        ),
        (
            "return { x = { handler = function() end, hitz = 2 } }",
            "invalid option `hitz`",
        ),
        (
            "return { x = { handler = function() end, match = { plugn = 'df' } } }",
            "unknown field `plugn`",
        ),
        (
            "return { x = { handler = function() end, match = { plugin = { pattern = '[a' } } } }",
            "missing ']'",
        ),
        (
            "return { x = { handler = function() end, give_up = { after = 3 } } }",
            "`give_up` is not",
        ),
    ] {
        std::fs::write(&rule, source).unwrap();
        let out = run(&["rules", "check", rule.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{source}");
        assert!(
            text(&out.stderr).contains(message),
            "{source}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn rules_test_checks_the_examples_a_file_carries() {
    let out = run(&["rules", "test", repo("rules/example.lua").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches(": OK (").count(), 5, "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.lua");
    std::fs::write(
        &rule,
        "return function(m) if m.values[1] > 1 then return {service = 'a', command = 'b'} end end, nil, {\n\
         { metric = { values = {5.0} } },\n\
         { metric = { values = {0.5} }, expect = {service = 'a', command = 'b'} },\n\
         { metric = { values = {9.0} }, expect = {service = 'a', command = 'b'} },\n}",
    )
    .unwrap();
    let out = run(&["rules", "test", rule.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("example 1: FAILED: expected nothing to fire, got a/b"),
        "{stdout}"
    );
    assert!(
        stdout.contains("example 2: FAILED: expected a/b, got nothing fires"),
        "{stdout}"
    );
    assert!(stdout.contains("example 3: OK (a/b)"), "{stdout}");

    std::fs::write(&rule, "return function() end").unwrap();
    let out = run(&["rules", "test", rule.to_str().unwrap()]);
    assert_fails_with(&out, "no examples found");
}

#[test]
fn lua_ends_every_bomb_with_an_error_never_a_signal() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    for (name, code, reason) in common::BOMBS {
        let script = dir.path().join(name);
        std::fs::write(&script, code).unwrap();
        // A generous time limit, so that on a loaded machine each bomb
        // still meets the limit it is about (memory, fuel).
        let out = run(&["lua", "--timeout", "60000", script.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.signal(), None, "{name}: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("error: "), "{name}: {stderr}");
        assert!(common::says_one_of(&stderr, reason), "{name}: {stderr}");
    }
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .filter(|pid| common::alive(*pid))
        .collect()
}

#[test]
fn a_killed_lua_command_leaves_no_sandbox_behind() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("forever.lua");
    std::fs::write(&script, "while true do end").unwrap();
    let mut parent = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["lua", "--fuel", "100000000000000", "--timeout", "600000"])
        .arg(&script)
        .spawn()
        .unwrap();
    let needle = script.display().to_string();
    let child = common::wait_for("the sandbox process", || {
        processes_with(&needle)
            .into_iter()
            .find(|pid| *pid != parent.id())
    });
    parent.kill().unwrap();
    parent.wait().unwrap();
    // The sandbox dies with the command that started it.
    common::wait_for("the sandbox to end with its parent", || {
        (!common::alive(child)).then_some(())
    });
}

/// Every shipped rule file is indexed: `rules check` names a condition on
/// the event's identity for each handler (never `true`, never "not
/// indexed"), and `rules test` finds no difference with the index off.
#[test]
fn rules_check_shows_the_index_of_every_shipped_rule() {
    let out = run(&["rules", "check", repo("rules").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let handlers = stdout.lines().filter(|l| l.contains("::")).count();
    let indexed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("indexed: "))
        .collect();
    assert!(handlers >= 7, "{stdout}");
    assert_eq!(indexed.len(), handlers, "{stdout}");
    assert!(
        indexed.iter().all(|g| *g != "true" && g.contains("==")),
        "{stdout}"
    );
    assert!(stdout.contains(r#"indexed: plugin == "memory" and type_instance == "free""#));
}

/// A handler the index cannot vouch for says why, and still runs.
#[test]
fn rules_check_says_why_a_handler_is_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counting.lua");
    std::fs::write(
        &file,
        "return { count = function(m) total = (total or 0) + 1 if m.plugin == 'cpu' then print(total) end end }",
    )
    .unwrap();
    let out = run(&["rules", "check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("not indexed: runs `total = (total or 0) + 1` before its condition"),
        "{}",
        text(&out.stdout)
    );
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"plugin\":\"memory\",\"values\":[1]}\n{\"plugin\":\"cpu\",\"values\":[1]}\n",
    )
    .unwrap();
    let out = run(&[
        "rules",
        "test",
        file.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("print: 2"),
        "{}",
        text(&out.stdout)
    );
}

/// A debug `event {...}` line copied from the plugin's log is a valid
/// `rules test --input` line.
#[test]
fn rules_test_takes_debug_event_lines_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("from-the-log.txt");
    std::fs::write(
        &input,
        concat!(
            r#"[2026-11-25 10:00:00] [debug] monitor: event {"kind":"metric","host":"web1","plugin":"memory","plugin_instance":"","type":"memory","type_instance":"free","time":1764064800.0,"interval":10.0,"values":[5000000000.0],"dsnames":["value"],"dstypes":["gauge"]}"#,
            "\n",
            r#"[2026-11-25 10:00:01] [debug] monitor: event {"kind":"notification","severity":1,"time":1764064801.0,"message":"down","host":"web1","plugin":"nginx","plugin_instance":"","type":"","type_instance":""}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = run(&[
        "rules",
        "test",
        repo("rules/example.lua").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let line = |n: usize| {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("line {n}: ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        line(1).contains("::memory_free_is_under_10GB -> hello/exec"),
        "{stdout}"
    );
    assert!(line(2).contains("::fail_example -> hello/exec"), "{stdout}");
}

/// `rules check` catches what authors get wrong before collectd runs the
/// file: a directory without rule files, a file without handlers, a field
/// the event table never has.
#[test]
fn rules_check_catches_empty_places_and_misspelt_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_fails_with(&out, "no .lua file in");
    std::fs::write(dir.path().join("none.lua"), "return nil").unwrap();
    std::fs::write(
        dir.path().join("typo.lua"),
        "return { a = function(m) if m.plugn == 'x' and m.value[1] > 1 then print(1) end end }",
    )
    .unwrap();
    let out = run(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_fails_with(&out, "none.lua: returns no handlers");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "reads `m.plugn`, which a value list's table never has (did you mean `m.plugin`?)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `m.values`?"), "{stderr}");
    assert!(
        text(&out.stdout).contains("not indexed: no test of the event's identity"),
        "{}",
        text(&out.stdout)
    );
}

/// `rules check --config` finds a service or command a handler asks for
/// that config.json does not define, before collectd would.
#[test]
fn rules_check_with_a_config_finds_commands_it_lacks() {
    let config = repo("conf/config.json");
    let out = run(&[
        "rules",
        "check",
        repo("rules").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.lua");
    std::fs::write(
        &file,
        r#"return { a = function(m) if m.plugin == "x" then return { service = "helo", command = "exec" } end end,
                   b = function(m) if m.plugin == "y" then return { service = "hello", command = "exc" } end end }"#,
    )
    .unwrap();
    let out = run(&[
        "rules",
        "check",
        file.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_fails_with(
        &out,
        "asks for helo/exec, and config.json has no such service",
    );
    assert!(
        text(&out.stderr).contains("asks for hello/exc, and config.json has no such command"),
        "{}",
        text(&out.stderr)
    );
}

/// `rules check --json`: the same findings as one document, for scripts.
#[test]
fn rules_check_json_has_the_index_the_warnings_and_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo("rules/example.lua"), dir.path().join("example.lua")).unwrap();
    std::fs::write(
        dir.path().join("typo.lua"),
        "return { a = function(m) if m.plugn == 'x' then print(1) end end }",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.lua"), "return {\n").unwrap();
    let out = run(&["rules", "check", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    let example = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("example.lua"))
        .unwrap();
    assert_eq!(example["fresh_tables"], serde_json::Value::Null);
    assert!(
        example["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["indexed"] == "plugin == \"memory\" and type_instance == \"free\""),
        "{example}"
    );
    let typo = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("typo.lua"))
        .unwrap();
    assert!(
        typo["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("did you mean `m.plugin`?")),
        "{typo}"
    );
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.len() == 1 && errors[0].as_str().unwrap().contains("broken.lua:1: "),
        "{errors:?}"
    );
}

/// The mistakes rule authors make, each with a clear word from `rules
/// check` (and exit 1 with --strict), `rules test` and the parser.
#[test]
fn authoring_mistakes_get_clear_messages_and_strict_fails_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"Services": {"nginx": {"commands": {"restart": "true"}}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = config.to_str().unwrap();
    // A decision built and never returned; a service misspelt through a
    // local constant.
    let forgot = write(
        "forgot.lua",
        r#"local SVC = "ngnix"
return {
  load = function(m)
    if m.plugin == "load" then
      local action = { service = SVC, command = "restart" }
    end
  end,
}"#,
    );
    let out = run(&["rules", "check", &forgot, "--config", config]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "handler `load` builds a {service, command} table (line 5) but returns nothing"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("asks for ngnix/restart, and config.json has no such service"),
        "{stderr}"
    );
    // A misspelt field: a warning, exit 0; exit 1 with --strict.
    let typo = write(
        "typo.lua",
        r#"return { disk = function(m)
  if m.plugin == "df" and m.plugin_instnace == "root" then
    return { service = "nginx", command = "restart" }
  end
end }"#,
    );
    let out = run(&["rules", "check", &typo]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rule index leaves that test out"),
        "{}",
        text(&out.stderr)
    );
    assert_fails_with(&run(&["rules", "check", "--strict", &typo]), "--strict");
    // A value ordered with a string: Lua raises an error there, so the
    // rule would never fire: a warning, and --strict fails.
    let ordered = write(
        "ordered.lua",
        r#"return { busy = function(m)
  if m.plugin == "cpu" and m.values[1] > "90" then
    return { service = "nginx", command = "restart" }
  end
end }"#,
    );
    let out = run(&["rules", "check", &ordered]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "line 2: m.values[1] (a number) is compared with a string: Lua raises an error there"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_fails_with(&run(&["rules", "check", "--strict", &ordered]), "--strict");
    // A bare table where `return` belongs: Lua's own words.
    let bare = write(
        "bare.lua",
        "{ service = \"nginx\", command = \"restart\" }\n",
    );
    assert_fails_with(
        &run(&["rules", "check", &bare]),
        "bare.lua:1: unexpected symbol near '{'",
    );
    // A severity test reads as rule authors write it.
    let notif = write(
        "notif.lua",
        r#"return nil, { failed = function(n)
  if n.severity == NOTIF_FAILURE and n.plugin == "app" then
    return { service = "nginx", command = "restart" }
  end
end }"#,
    );
    let out = run(&["rules", "check", &notif]);
    assert!(
        text(&out.stdout).contains("severity == NOTIF_FAILURE"),
        "{}",
        text(&out.stdout)
    );
    // `rules test` without --input says which files it could not test.
    let out = run(&[
        "rules",
        "test",
        &typo,
        repo("rules/example.lua").to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("typo.lua: no examples (its third return value), not tested"),
        "{}",
        text(&out.stdout)
    );
    // A runtime error names its line, in Lua's words, with Lua's
    // description of the value (what `lua5.4` says of the same function).
    let broken = write(
        "broken.lua",
        "local limits = {}\nreturn { over = function(m)\n  local cfg = limits[m.plugin_instance]\n  return cfg.max < 1 and nil\nend }\n",
    );
    let input = write(
        "input.json",
        r#"{"host":"web1","plugin":"df","plugin_instance":"root","type":"percent_bytes","type_instance":"used","values":[95],"dsnames":["value"],"dstypes":["gauge"],"time":0,"interval":10}"#,
    );
    let out = run(&["rules", "test", &broken, "--input", &input]);
    assert!(
        text(&out.stdout).contains("broken.lua:4: attempt to index a nil value (local 'cfg')"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A handler's runtime error reads as `lua5.4`'s for the same function:
/// file, line, Lua's words and its description of the value.
#[test]
fn handler_errors_read_as_lua_5_4_reports_them() {
    let handlers = [
        ("a", "local t = nil; return t.x"),
        ("b", "return #m.nothing"),
        ("c", "undefinedfn()"),
        ("d", "return m.values[1] + m.nope"),
        ("e", "return up.x"),
        ("f", "local s = m.nope; return s .. \"x\""),
        ("g", "return m.values[1] < m.nope"),
        ("h", "return m.nope > 1"),
        ("i", "return helper(nil)"),
        ("j", "m.nope.x = 1"),
        ("l", "return -m.nope"),
        ("n", "return m.nope()"),
        ("o", "return m.host:nomethod()"),
        ("p", "local cfg = {}; return cfg.limits.max"),
    ];
    let head = "local up = nil\nlocal function helper(x) return x.field end\n";
    let body: String = handlers
        .iter()
        .map(|(name, code)| format!("  {name} = function(m) {code} end,\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    // The same lines in both files, so the line numbers compare.
    let rule = dir.path().join("h.lua");
    std::fs::write(&rule, format!("{head}return {{\n{body}}}\n")).unwrap();
    let reference = dir.path().join("h_ref.lua");
    let names: Vec<String> = handlers.iter().map(|(n, _)| format!("{n:?}")).collect();
    std::fs::write(
        &reference,
        format!(
            "{head}local h = {{\n{body}}}\nlocal m = {{ host = \"web1\", values = {{95}} }}\nfor _, k in ipairs({{{}}}) do print(select(2, pcall(h[k], m))) end\n",
            names.join(", ")
        ),
    )
    .unwrap();
    let expected = Command::new("lua5.4")
        .arg("h_ref.lua")
        .current_dir(dir.path())
        .output()
        .expect("lua5.4 (scripts/install-deps installs it)");
    let expected = text(&expected.stdout).replace("h_ref.lua", "h.lua");
    let input = dir.path().join("in.json");
    std::fs::write(
        &input,
        r#"{"host":"web1","plugin":"df","plugin_instance":"root","type":"percent_bytes","type_instance":"used","values":[95],"dsnames":["value"],"dstypes":["gauge"],"time":0,"interval":10}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["rules", "test", "h.lua", "--input", "in.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let ours: String = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": error: ").map(|(_, m)| format!("{m}\n")))
        .collect();
    assert_eq!(ours, expected);
}

#[test]
fn a_file_nested_thousands_deep_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.lua");
    // 10 KB: 5 000 parentheses deep, as Lua refuses ("C stack overflow").
    std::fs::write(
        &deep,
        format!("return {}1{}", "(".repeat(5000), ")".repeat(5000)),
    )
    .unwrap();
    for args in [
        vec!["rules", "check", deep.to_str().unwrap()],
        vec!["lua", deep.to_str().unwrap()],
    ] {
        let out = run(&args);
        assert_fails_with(&out, "C stack overflow");
        assert!(!text(&out.stderr).contains("fatal runtime error"));
    }
    // What Lua takes still loads.
    let fine = dir.path().join("fine.lua");
    std::fs::write(
        &fine,
        format!(
            "return {{ metric = function(m) return {}1{} end }}",
            "(".repeat(150),
            ")".repeat(150)
        ),
    )
    .unwrap();
    let out = run(&["rules", "check", fine.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
