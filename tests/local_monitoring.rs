//! Local monitoring end to end, inside a real collectd: values and
//! notifications injected through unixsock reach the rule files (each in
//! its sandbox worker), recovery commands run, and their results come back
//! as collectd notifications (seen in collectd's logfile).

mod common;
use common::cli::PROBE_RULE;

use common::{Collectd, CollectdSpec, memory_kib};
use std::path::{Path, PathBuf};

/// A collectd whose rules live in `<dir>/rules`, with `services` as the
/// config.json `Services` and `extra` more config.json keys.
struct Local {
    collectd: Collectd,
    rules: PathBuf,
}

fn start(files: &[(&str, &str)], services: &str, extra: &str) -> Local {
    start_with(files, services, extra, "")
}

fn start_with(files: &[(&str, &str)], services: &str, extra: &str, conf: &str) -> Local {
    let rules_dir = tempfile::Builder::new()
        .prefix("cm-rules")
        .tempdir()
        .unwrap()
        .keep();
    for (name, text) in files {
        std::fs::write(rules_dir.join(name), text).unwrap();
    }
    let json = format!(
        r#"{{"LocalMonitorConfigDir": "{dir}", "HelperPath": "{helper}", "Services": {services}{extra}}}"#,
        dir = rules_dir.display(),
        helper = env!("CARGO_BIN_EXE_collectd-monitor"),
    );
    let mut collectd = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((json, 0o600)),
        extra_conf: conf.into(),
        ..CollectdSpec::default()
    });
    for (name, _) in files {
        collectd.wait_for_log(&format!("{name}: "));
    }
    Local {
        collectd,
        rules: rules_dir,
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.rules);
    }
}

/// The notification lines collectd's logfile plugin wrote for our results.
fn results(c: &Collectd) -> Vec<String> {
    c.log_text()
        .lines()
        .filter(|l| l.contains("plugin = lua-collectd-monitor-local"))
        .map(str::to_string)
        .collect()
}

fn wait_results(c: &Collectd, n: usize) -> Vec<String> {
    c.wait_until(&format!("{n} result notifications"), || {
        let r = results(c);
        (r.len() >= n).then_some(r)
    })
}

/// The JSON message of a result notification line.
fn message(line: &str) -> serde_json::Value {
    let json = &line[line.find("message = ").expect("message field") + 10..];
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

const HELLO: &str = r#"{"hello": {"commands": {"exec": "/bin/echo \"Hello World!\""}}}"#;

fn example_rules() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/example.lua"))
        .unwrap()
}

#[test]
fn the_old_projects_example_rules_run_hello_and_notify() {
    let example = example_rules();
    let mut l = start(
        &[("example.lua", &example)],
        HELLO,
        r#", "CommandCooldown": 0"#,
    );
    let c = &mut l.collectd;
    c.putval("testhost/memory/memory-free N:5000000000");
    let first = wait_results(c, 1);
    let handler = format!(
        "{}::metric::memory_free_is_under_10GB",
        l.rules.join("example.lua").display()
    );
    assert!(first[0].contains("severity = OKAY"), "{first:?}");
    assert!(first[0].contains("host = testhost"), "{first:?}");
    assert!(first[0].contains(&format!("type = {handler}")), "{first:?}");
    let m = message(&first[0]);
    assert_eq!(m["message"], "Hello World!");
    assert_eq!(m["code"], 0);
    assert!(m["task_id"].is_u64());

    c.putval("testhost/memory/memory-free N:20000000000");
    let second = wait_results(c, 2);
    assert!(
        second[1].contains("::metric::memory_free_is_over_10GB"),
        "{second:?}"
    );

    c.putnotif("severity=failure time=1700000000 host=testhost plugin=nginx message=down");
    let third = wait_results(c, 3);
    assert!(
        third[2].contains("::notification::fail_example"),
        "{third:?}"
    );
    // Our own notifications never reach the notification handlers: the
    // three results above did not fire fail_example again.
    c.putnotif("severity=okay time=1700000000 host=testhost plugin=nginx message=up");
    c.putval("testhost/memory/memory-free N:5000000000");
    let fourth = wait_results(c, 4);
    assert!(
        fourth[3].contains("memory_free_is_under_10GB"),
        "{fourth:?}"
    );
    assert_eq!(
        results(c)
            .iter()
            .filter(|l| l.contains("fail_example"))
            .count(),
        1
    );
}

/// Processes whose parent is `pid`, with their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            (ppid == pid).then(|| (p, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
}

/// The worker process running the rule file `name`.
fn worker_of(c: &Collectd, name: &str) -> u32 {
    c.wait_until(&format!("the worker of {name}"), || {
        children(c.pid())
            .into_iter()
            .find(|(_, cmd)| cmd.contains("rule-worker") && cmd.contains(name))
            .map(|(pid, _)| pid)
    })
}

#[test]
fn bad_rules_never_take_collectd_down_and_healthy_files_keep_firing() {
    let bombs = common::BOMBS;
    let sources: Vec<(String, String)> = bombs
        .iter()
        .map(|(name, body, _)| (name.to_string(), format!("return function(m) {body} end")))
        .collect();
    let mut files: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    files.push(("healthy.lua", PROBE_RULE));
    // A generous time limit for this file, so that the memory limit is what
    // stops it even on a loaded machine (and per-file limits are exercised).
    let mut l = start(
        &files,
        HELLO,
        r#", "CommandCooldown": 0, "RuleFiles": {"bigstrings.lua": {"Timeout": 60000}}"#,
    );
    let c = &mut l.collectd;
    let pid = c.pid();
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    let rss_before = memory_kib("VmRSS", pid);
    for round in 2..=4 {
        c.putval(&format!("testhost/probe/gauge-x N:{round}"));
        let r = wait_results(c, round);
        assert!(r[round - 1].contains("healthy.lua::metric::probe"), "{r:?}");
        assert!(common::alive(pid), "collectd died");
    }
    for (name, _, reason) in bombs {
        let line = c.wait_for_log(&format!("{name}::metric failed on testhost/"));
        assert!(common::says_one_of(&line, reason), "{name}: {line}");
    }
    let rss_after = memory_kib("VmRSS", pid);
    assert!(
        rss_after < rss_before + 8 * 1024,
        "collectd grew from {rss_before} to {rss_after} KiB"
    );
    // Every file still has its worker: limits stop calls, not sandboxes.
    for (name, _, _) in bombs {
        worker_of(c, name);
    }
    assert!(!c.log_text().contains("sandbox died"), "{}", c.log_text());
}

#[test]
fn workers_are_confined() {
    let l = start(&[("healthy.lua", PROBE_RULE)], HELLO, "");
    let worker = worker_of(&l.collectd, "healthy.lua");
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // Not root: collectd runs as root here, the worker as SandboxUser
    // (nobody), with none of root's groups.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let ids = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the test runs as root"
    );
    assert_eq!(ids("Uid:"), vec![nobody.uid.as_raw(); 4], "{status}");
    assert_eq!(ids("Gid:"), vec![nobody.gid.as_raw(); 4], "{status}");
    assert!(ids("Groups:").is_empty(), "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{worker}/limits")).unwrap();
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{limits}"))
            .split_whitespace()
            .find(|w| w.chars().all(|c| c.is_ascii_digit()))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(line("Max open files"), 3, "{limits}");
    assert!(line("Max address space") < 1 << 30, "{limits}");
    // Only its three pipes are open.
    let fds = std::fs::read_dir(format!("/proc/{worker}/fd"))
        .unwrap()
        .count();
    assert_eq!(fds, 3);
    l.collectd.putval("testhost/probe/gauge-x N:1");
    wait_results(&l.collectd, 1);
}

#[test]
fn the_closed_world_gives_nil_or_errors_and_changes_nothing_on_disk() {
    let marker = tempfile::Builder::new()
        .prefix("cm-marker")
        .tempdir()
        .unwrap();
    let victim = marker.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let rule = format!(
        r#"
local victim = "{victim}"
return {{ probe = function(m)
  if m.plugin ~= "probe" then return end
  local tries = {{
    io = function() return io.open(victim, "w") end,
    execute = function() return os.execute("rm " .. victim) end,
    remove = function() return os.remove(victim) end,
    rename = function() return os.rename(victim, victim .. ".x") end,
    exit = function() return os.exit(1) end,
    getenv = function() return os.getenv("HOME") end,
    tmpname = function() return os.tmpname() end,
    require = function() return require("os") end,
    package = function() return package.loaded end,
    dofile = function() return dofile(victim) end,
    loadfile = function() return loadfile(victim) end,
    load = function() return load("return 1") end,
    binary = function() return load("\27Lua") end,
    debug = function() return debug.getinfo(1) end,
    collect = function() return collectgarbage("collect") end,
  }}
  local names = {{}}
  for name in pairs(tries) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local ok, value = pcall(tries[name])
    print(name, ok and value == nil and "nil" or (not ok and "error" or "VALUE " .. tostring(value)))
  end
  return {{ service = "hello", command = "exec" }}
end }}"#,
        victim = victim.display()
    );
    let l = start(&[("closed.lua", &rule)], HELLO, "");
    l.collectd.putval("testhost/probe/gauge-x N:1");
    wait_results(&l.collectd, 1);
    let log = l.collectd.log_text();
    let printed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("closed.lua: print: "))
        .collect();
    assert_eq!(printed.len(), 15, "{log}");
    for line in &printed {
        assert!(!line.contains("VALUE"), "{line}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(marker.path()).unwrap().count(), 1);
}

#[test]
fn a_dead_sandbox_is_restarted_then_quarantined_until_the_file_changes() {
    // Its own service: the runner never runs one service/command twice at
    // the same time, and both files fire on the same value.
    let bad = PROBE_RULE
        .replace("probe =", "bad =")
        .replace("\"hello\"", "\"other\"");
    let mut l = start(
        &[("bad.lua", &bad), ("healthy.lua", PROBE_RULE)],
        r#"{"hello": {"commands": {"exec": "echo hi"}}, "other": {"commands": {"exec": "echo ho"}}}"#,
        r#", "CommandCooldown": 0, "RuleCrashLimit": 3, "RuleReloadInterval": 1"#,
    );
    let c = &mut l.collectd;
    let kill = |pid: u32| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    let first = worker_of(c, "bad.lua");
    kill(first);
    c.wait_for_log("bad.lua: its sandbox died");
    c.wait_for_log("restarting now");
    let second = c.wait_until("a new worker", || {
        Some(worker_of(c, "bad.lua")).filter(|p| *p != first)
    });
    kill(second);
    c.wait_for_log("restarting in 500");
    let third = c.wait_until("a third worker", || {
        Some(worker_of(c, "bad.lua")).filter(|p| *p != second)
    });
    kill(third);
    c.wait_for_log("bad.lua: quarantined after 3 sandbox deaths");
    // The other file never stopped: both of its results arrive, and the
    // quarantined one has no worker.
    c.putval("testhost/probe/gauge-x N:1");
    let r = wait_results(c, 1);
    assert!(r[0].contains("healthy.lua::metric::probe"), "{r:?}");
    assert!(
        !children(c.pid())
            .iter()
            .any(|(_, cmd)| cmd.contains("bad.lua")),
        "a quarantined file has no worker"
    );
    // A change on disk lifts the quarantine.
    std::fs::write(l.rules.join("bad.lua"), format!("{bad}\n-- fixed")).unwrap();
    c.wait_for_log("bad.lua: changed on disk; out of quarantine");
    worker_of(c, "bad.lua");
    c.putval("testhost/probe/gauge-x N:2");
    c.wait_until("both files firing", || {
        results(c)
            .iter()
            .any(|l| l.contains("bad.lua::metric::bad"))
            .then_some(())
    });
}

#[test]
fn command_outcomes_are_reported_and_a_hanging_command_blocks_nothing() {
    let fire_on = |plugin: &str, service: &str| {
        format!(
            r#"return {{ {service} = function(m)
  if m.plugin == "{plugin}" then return {{ service = "{service}", command = "run" }} end
end }}"#
        )
    };
    let services = r#"{
        "hang": {"commands": {"run": "sleep 1000"}, "Timeout": 3},
        "big": {"commands": {"run": "head -c 1000000 /dev/zero | tr '\\0' x"}},
        "missing": {"commands": {"run": "/nonexistent/command"}},
        "fails": {"commands": {"run": "echo failing; exit 3"}},
        "hello": {"commands": {"run": "echo hello"}}
    }"#;
    let files: Vec<(String, String)> = ["hang", "big", "missing", "fails", "hello"]
        .iter()
        .map(|s| (format!("{s}.lua"), fire_on(&format!("p{s}"), s)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut l = start(&refs, services, "");
    let c = &mut l.collectd;
    c.putval("testhost/phang/gauge-x N:1");
    c.wait_for_log("running hang/run");
    c.putval("testhost/phello/gauge-x N:1");
    let r = wait_results(c, 1);
    assert!(
        r[0].contains("hello.lua::metric::hello"),
        "hello must not wait for hang: {r:?}"
    );
    for p in ["pbig", "pmissing", "pfails"] {
        c.putval(&format!("testhost/{p}/gauge-x N:1"));
    }
    let r = wait_results(c, 5);
    let find = |handler: &str| -> (String, serde_json::Value) {
        let line = r
            .iter()
            .find(|l| l.contains(&format!("{handler}.lua::metric::{handler}")))
            .unwrap_or_else(|| panic!("{handler}: {r:?}"))
            .clone();
        let m = message(&line);
        (line, m)
    };
    let (line, m) = find("hang");
    assert!(line.contains("severity = FAILURE"), "{line}");
    assert_eq!(m["code"], 0x1004, "{line}");
    assert!(
        m["message"].as_str().unwrap().contains("timed out"),
        "{line}"
    );
    let (line, m) = find("big");
    assert!(line.contains("severity = OKAY"), "{line}");
    assert!(
        m["message"].as_str().unwrap().ends_with("[truncated]"),
        "{line}"
    );
    let (line, m) = find("missing");
    assert!(line.contains("severity = FAILURE"), "{line}");
    assert_eq!(m["code"], 127, "{line}");
    let (line, m) = find("fails");
    assert!(line.contains("severity = FAILURE"), "{line}");
    assert_eq!(
        (m["code"].as_i64(), m["message"].as_str()),
        (Some(3), Some("failing"))
    );
    // The hang result came last, after everything injected later.
    assert!(r[4].contains("hang.lua"), "{r:?}");
}

#[test]
fn the_cooldown_suppresses_repeats_and_lets_the_next_one_through() {
    let mut l = start(
        &[("healthy.lua", PROBE_RULE)],
        HELLO,
        r#", "CommandCooldown": 10"#,
    );
    let c = &mut l.collectd;
    let started = std::time::Instant::now();
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    c.putval("testhost/probe/gauge-x N:2");
    // However long the second value took to come (less than the cooldown).
    let line = c.wait_for_log("(cooldown 10 s)");
    assert!(line.contains("hello/exec suppressed: it ran "), "{line}");
    assert_eq!(results(c).len(), 1);
    let mut n = 3;
    let second = c.wait_until("the run after the cooldown", || {
        c.putval(&format!("testhost/probe/gauge-x N:{n}"));
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(250));
        (results(c).len() == 2).then(std::time::Instant::now)
    });
    assert!(
        second.duration_since(started) >= std::time::Duration::from_secs(10),
        "ran again before the cooldown was over"
    );
}

#[test]
fn editing_a_rule_file_changes_behaviour_and_a_broken_edit_keeps_the_old_version() {
    let mut l = start(
        &[("edit.lua", PROBE_RULE)],
        HELLO,
        r#", "CommandCooldown": 0, "RuleReloadInterval": 1"#,
    );
    let path = l.rules.join("edit.lua");
    let c = &mut l.collectd;
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    let v2 = PROBE_RULE
        .replace("\"probe\"", "\"probe2\"")
        .replace("probe =", "second =");
    std::fs::write(&path, v2).unwrap();
    c.wait_for_log("edit.lua: reloaded");
    c.putval("testhost/probe/gauge-x N:2");
    c.putval("testhost/probe2/gauge-x N:2");
    let r = wait_results(c, 2);
    assert!(r[1].contains("edit.lua::metric::second"), "{r:?}");
    std::fs::write(&path, "return {").unwrap();
    let line = c.wait_for_log("the changed file was not loaded, the previous version stays active");
    assert!(line.contains("edit.lua:1:"), "{line}");
    c.putval("testhost/probe2/gauge-x N:3");
    let r = wait_results(c, 3);
    assert!(r[2].contains("edit.lua::metric::second"), "{r:?}");
    assert_eq!(r.len(), 3, "the first version's handler is gone: {r:?}");
}

#[test]
fn self_monitoring_values_reach_collectd() {
    let data = tempfile::Builder::new()
        .prefix("cm-work")
        .tempdir()
        .unwrap();
    let conf = format!(
        "Interval 1\nLoadPlugin csv\n<Plugin csv>\n  DataDir \"{}\"\n  StoreRates false\n</Plugin>\n",
        data.path().display()
    );
    let mut l = start_with(
        &[
            ("healthy.lua", PROBE_RULE),
            ("errors.lua", "return function() error('x') end"),
        ],
        HELLO,
        "",
        &conf,
    );
    let c = &mut l.collectd;
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    let dir = data.path().join("testhost/monitor");
    let latest = |name: &str| -> Option<f64> {
        let file = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}-"))
            })?;
        let text = std::fs::read_to_string(file.path()).ok()?;
        text.lines().last()?.split(',').nth(1)?.parse().ok()
    };
    // csv writes each value to its own file as it arrives: on a busy
    // machine one file can still show an earlier interval than another, so
    // wait until every figure has caught up rather than reading once.
    let figures = c.wait_until("self-monitoring values with the command counted", || {
        let run = latest("derive-commands_run")?;
        (run >= 1.0).then_some(())?;
        (latest("gauge-rule_files_active")? == 2.0).then_some(())?;
        Some([
            latest("derive-values_received")?,
            latest("derive-evaluations")?,
            latest("derive-handler_errors")?,
            latest("gauge-rule_files_active")?,
            latest("gauge-queue_depth")?,
        ])
    });
    let [received, evaluations, errors, active, depth] = figures;
    assert!(received >= 1.0, "{figures:?}");
    assert!(evaluations >= 2.0, "both files saw the value: {figures:?}");
    assert!(errors >= 1.0, "{figures:?}");
    assert_eq!(active, 2.0);
    assert!(depth >= 0.0);
}

#[test]
fn services_added_to_config_json_are_used_without_a_restart() {
    let rule = PROBE_RULE.replace("\"hello\"", "\"late\"");
    let mut l = start(
        &[("late.lua", &rule)],
        HELLO,
        r#", "CommandCooldown": 0, "RuleReloadInterval": 1"#,
    );
    let c = &mut l.collectd;
    c.putval("testhost/probe/gauge-x N:1");
    c.wait_for_log("asked for late/exec on testhost/probe/gauge-x: unknown service \"late\"");
    let json = std::fs::read_to_string(&c.config_json).unwrap();
    let json = json.replace(
        r#""Services": {"#,
        r#""Services": {"late": {"commands": {"exec": "echo late"}}, "#,
    );
    std::fs::write(&c.config_json, json).unwrap();
    c.wait_for_log("config.json changed: Services reloaded (2 services)");
    c.putval("testhost/probe/gauge-x N:2");
    let r = wait_results(c, 1);
    assert_eq!(message(&r[0])["message"], "late");
    // A broken edit keeps what runs.
    std::fs::write(&c.config_json, "{").unwrap();
    c.wait_for_log("config.json changed but does not load; the running configuration stays");
    c.putval("testhost/probe/gauge-x N:3");
    assert_eq!(message(&wait_results(c, 2)[1])["message"], "late");
}

#[test]
fn a_rule_directory_that_appears_later_is_picked_up_and_its_absence_logged_once() {
    let parent = tempfile::Builder::new()
        .prefix("cm-rules")
        .tempdir()
        .unwrap();
    let dir = parent.path().join("later");
    let json = format!(
        r#"{{"LocalMonitorConfigDir": "{dir}", "HelperPath": "{helper}", "RuleReloadInterval": 1, "Services": {HELLO}}}"#,
        dir = dir.display(),
        helper = env!("CARGO_BIN_EXE_collectd-monitor"),
    );
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "MonitorConfigPath \"@CONFIG_JSON@\"".into(),
        config_json: Some((json, 0o600)),
        ..CollectdSpec::default()
    });
    c.wait_for_log("later: No such file or directory");
    // A few more checks go by without another line.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(c.log_text().matches("No such file or directory").count(), 1);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("probe.lua"), PROBE_RULE).unwrap();
    c.wait_for_log("readable again");
    c.wait_for_log("probe.lua: loaded");
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(&c, 1);
}

/// Handlers that compare a gauge every way Lua can, against a literal and
/// against a threshold that is not a constant.
const NAN_RULES: &str = r#"
local limit = 90
limit = limit + 0
local function fire(name) return { service = "cmp", command = name } end
return {
  a_seen = function(m) if m.plugin == "nantest" then print("saw " .. tostring(m.values[1])) end end,
  gt = function(m) if m.plugin == "nantest" and m.values[1] > 90 then return fire("gt") end end,
  ge = function(m) if m.plugin == "nantest" and m.values[1] >= 90 then return fire("ge") end end,
  lt = function(m) if m.plugin == "nantest" and m.values[1] < 90 then return fire("lt") end end,
  le = function(m) if m.plugin == "nantest" and m.values[1] <= 90 then return fire("le") end end,
  gt_var = function(m) if m.plugin == "nantest" and m.values[1] > limit then return fire("gt_var") end end,
  le_var = function(m) if m.plugin == "nantest" and limit >= m.values[1] then return fire("le_var") end end,
  not_le = function(m) if m.plugin == "nantest" and not (m.values[1] <= 90) then print("not le") end end,
  probe = function(m) if m.plugin == "probe" then return fire("probe") end end,
}"#;

#[test]
fn a_nan_gauge_fires_no_comparison() {
    let commands: Vec<String> = ["gt", "ge", "lt", "le", "gt_var", "le_var", "probe"]
        .iter()
        .map(|c| format!(r#""{c}": "echo {c}""#))
        .collect();
    let services = format!(r#"{{"cmp": {{"commands": {{{}}}}}}}"#, commands.join(", "));
    let mut l = start(
        &[("nan.lua", NAN_RULES)],
        &services,
        r#", "CommandCooldown": 0"#,
    );
    let c = &mut l.collectd;
    // A gauge collectd does not know ("U") arrives as NaN.
    c.putval("testhost/nantest/gauge-x N:U");
    c.wait_for_log("print: saw ");
    let seen = c.log_text();
    assert!(
        seen.contains("print: saw nan") || seen.contains("print: saw -nan"),
        "{seen}"
    );
    // `not (NaN <= 90)` is true in Lua: the handler ran its body.
    c.wait_for_log("print: not le");
    // A value after it: once its result is in, the NaN's would be too.
    c.putval("testhost/probe/gauge-x N:1");
    let r = wait_results(c, 1);
    assert!(r[0].contains("::metric::probe"), "{r:?}");
    c.putval("testhost/nantest/gauge-x N:95");
    wait_results(c, 4);
    c.putval("testhost/probe/gauge-x N:2");
    let r = wait_results(c, 5);
    let mut handlers: Vec<&str> = r
        .iter()
        .map(|l| {
            let name = &l[l.find("::metric::").expect("a handler label") + 10..];
            name.split([',', ' ']).next().unwrap_or(name)
        })
        .collect();
    handlers.sort();
    // The NaN fired nothing; 95 fired the three "greater" handlers.
    assert_eq!(handlers, ["ge", "gt", "gt_var", "probe", "probe"], "{r:?}");
}

/// Handlers that order a value with a string: Lua raises an error, so
/// they never fire.
const STRING_COMPARE_RULES: &str = r#"local function fire(name) return { service = "cmp", command = name } end
return {
  value_vs_string = function(m)
    if m.plugin == "strcmp" and m.values[1] > "4" then return fire("value") end
  end,
  field_vs_number = function(m)
    if m.plugin == "strcmp" and m.type_instance <= 4 then return fire("field") end
  end,
  probe = function(m) if m.plugin == "probe" then return fire("probe") end end,
}"#;

#[test]
fn a_value_ordered_with_a_string_fires_nothing_and_its_error_names_the_line() {
    let services = r#"{"cmp": {"commands": {"value": "echo value", "field": "echo field", "probe": "echo probe"}}}"#;
    let mut l = start(
        &[("strcmp.lua", STRING_COMPARE_RULES)],
        services,
        r#", "CommandCooldown": 0"#,
    );
    let c = &mut l.collectd;
    c.putval("testhost/strcmp/gauge-3 N:95");
    let line = c.wait_for_log("strcmp.lua:4: attempt to compare string with number");
    assert!(
        line.contains("strcmp.lua::metric::value_vs_string failed"),
        "{line}"
    );
    let line = c.wait_for_log("strcmp.lua:7: attempt to compare string with number");
    assert!(
        line.contains("strcmp.lua::metric::field_vs_number failed"),
        "{line}"
    );
    // A value after them: once its result is in, theirs would be too.
    c.putval("testhost/probe/gauge-x N:1");
    let r = wait_results(c, 1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("::metric::probe"), "{r:?}");
}

#[test]
fn rule_files_that_are_not_plain_files_are_refused_before_they_are_read() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "SECRET-TOKEN-1234 is not Lua").unwrap();
    let mut l = start(
        &[("healthy.lua", PROBE_RULE)],
        HELLO,
        r#", "RuleReloadInterval": 1"#,
    );
    // Dropped into the rule directory while collectd runs (hot reload).
    let fifo = l.rules.join("fifo.lua");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", l.rules.join("zero.lua")).unwrap();
    std::os::unix::fs::symlink(&secret, l.rules.join("secret.lua")).unwrap();
    let huge = std::fs::File::create(l.rules.join("huge.lua")).unwrap();
    huge.set_len(2_500_000_000).unwrap(); // sparse: 2.5 GB that take no disk
    let c = &mut l.collectd;
    for (name, reason) in [
        ("fifo.lua", "not a regular file (a FIFO)"),
        ("zero.lua", "symbolic link"),
        ("secret.lua", "symbolic link"),
        ("huge.lua", "larger than 4194304 bytes"),
    ] {
        let line = c.wait_for_log(&format!("{name}: "));
        let log = c.log_text();
        assert!(
            log.lines().any(|l| l.contains(name) && l.contains(reason)),
            "{name}: {line}\n{log}"
        );
    }
    assert!(!c.log_text().contains("SECRET-TOKEN"), "{}", c.log_text());
    // The healthy file still works, and no worker is left waiting on the
    // FIFO (or holding anything of collectd's).
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    assert!(common::alive(c.pid()));
    let stuck: Vec<_> = children(c.pid())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("fifo.lua") || cmd.contains("zero.lua"))
        .collect();
    assert!(stuck.is_empty(), "{stuck:?}");
}

#[test]
fn workers_die_when_collectd_is_killed() {
    // A worker busy in a call that its limits allow to run for minutes: it
    // reads nothing, so only the tie to its parent can end it.
    let spin =
        r#"return { spin = function(m) if m.plugin == "spin" then while true do end end end }"#;
    let mut l = start(
        &[("spin.lua", spin)],
        HELLO,
        r#", "RuleFuel": 100000000000000, "RuleTimeout": 600000"#,
    );
    let worker = worker_of(&l.collectd, "spin.lua");
    l.collectd.putval("testhost/spin/gauge-x N:1");
    // Busy: its CPU time grows.
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
    };
    l.collectd
        .wait_until("the worker to spin", || (cpu(worker) > 20).then_some(()));
    l.collectd.crash();
    common::wait_for("the worker to end with collectd", || {
        (!common::alive(worker)).then_some(())
    });
}

/// The rule index in real collectd: a file whose handler can only act on
/// plugin "wanted" is sent only those value lists (the plugin's shutdown
/// line counts what each file evaluated), and still acts on every one.
#[test]
fn a_file_receives_only_the_value_lists_its_handlers_may_act_on() {
    let rules = r#"
local function is_wanted(m) return m.plugin == "wanted" end
return {
  seen = function(m)
    if is_wanted(m) then print("wanted " .. m.type_instance) end
  end,
}
"#;
    let mut l = start(&[("routed.lua", rules)], "{}", "");
    let c = &mut l.collectd;
    c.wait_for_log("routed.lua: loaded");
    for i in 0..20 {
        c.putval(&format!("testhost/other/gauge-o{i} N:{i}"));
    }
    c.putval("testhost/wanted/gauge-a N:1");
    c.putval("testhost/wanted/gauge-b N:2");
    c.wait_for_log("print: wanted a");
    c.wait_for_log("print: wanted b");
    let status = c.stop();
    assert!(status.success(), "{status}");
    let log = c.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("monitor: stopped: "))
        .expect("the shutdown line");
    // Every event handled, our self-monitoring values included, reaches
    // a file that has not said yet what it acts on; once it has, the 20
    // "other" value lists are never sent to it.
    let number_before = |what: &str| -> u64 {
        let at = line.find(what).expect(what);
        line[..at]
            .rsplit(' ')
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .expect("a count")
    };
    let handled = number_before(" events handled");
    let evaluated = number_before(" evaluations by rule files");
    assert!(evaluated >= 2 && evaluated + 20 <= handled, "{line}");
    assert!(!log.contains("print: wanted o"), "{log}");
}

#[test]
fn a_handlers_own_cooldown_is_not_silenced_by_another_rule_and_errors_name_their_line() {
    let df = r#"
return { disk = function(m)
  if m.plugin == "df" then return { service = "app", command = "restart" } end
end }"#;
    let load = r#"
return { high = {
  cooldown = 3600,
  handler = function(m)
    if m.plugin == "load" then return { service = "app", command = "restart" } end
  end,
} }"#;
    // A cooldown longer than any duration: for ever, not a crash.
    let forever = r#"
return { once = {
  cooldown = 1e300,
  handler = function(m)
    if m.plugin == "forever" then return { service = "app", command = "restart" } end
  end,
} }"#;
    let broken = r#"local limits = {}
return { over = function(m)
  if m.plugin ~= "broken" then return end
  local cfg = limits[m.plugin_instance]
  return cfg.max < 1 and nil
end }"#;
    let mut l = start(
        &[
            ("df.lua", df),
            ("load.lua", load),
            ("forever.lua", forever),
            ("broken.lua", broken),
        ],
        r#"{"app": {"commands": {"restart": "echo restarted"}}}"#,
        r#", "CommandCooldown": 3600"#,
    );
    let c = &mut l.collectd;
    c.putval("testhost/df-root/percent_bytes-used N:95");
    wait_results(c, 1);
    // The shared cooldown would hold app/restart back for an hour; the
    // load rule's own cooldown is its own.
    c.putval("testhost/load/load N:5:5:5");
    let r = wait_results(c, 2);
    assert!(
        r.iter().any(|l| l.contains("load.lua::metric::high")),
        "{r:?}"
    );
    // Within its own cooldown it is held back; the df rule by the shared one.
    c.putval("testhost/load/load N:6:6:6");
    c.wait_for_log("load.lua::metric::high: app/restart suppressed");
    c.putval("testhost/df-root/percent_bytes-used N:96");
    c.wait_for_log("df.lua::metric::disk: app/restart suppressed");
    assert_eq!(results(c).len(), 2);
    c.putval("testhost/forever/gauge N:1");
    let r = wait_results(c, 3);
    assert!(
        r.iter().any(|l| l.contains("forever.lua::metric::once")),
        "{r:?}"
    );
    c.putval("testhost/forever/gauge N:2");
    c.wait_for_log("forever.lua::metric::once: app/restart suppressed");
    assert_eq!(results(c).len(), 3);
    // A VM error names its file and line, in Lua's words.
    c.putval("testhost/broken-x/gauge-y N:1");
    let line = c.wait_for_log("broken.lua:5: attempt to index a nil value (local 'cfg')");
    assert!(line.contains("broken.lua::metric::over failed"), "{line}");
}
