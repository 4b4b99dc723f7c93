//! Local monitoring end to end, inside a real collectd: values and
//! notifications injected through unixsock reach the rule files (each in
//! its sandbox worker), recovery commands run, and their results come back
//! as collectd notifications (seen in collectd's logfile).

mod common;

use common::{Collectd, CollectdSpec};
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

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
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

const PROBE_RULE: &str = r#"
return { probe = function(m)
  if m.plugin == "probe" then return { service = "hello", command = "exec" } end
end }"#;

#[test]
fn bad_rules_never_take_collectd_down_and_healthy_files_keep_firing() {
    let bombs: &[(&str, &str, &str)] = &[
        ("spin.lua", "while true do end", " limit: "),
        (
            "concat.lua",
            "local s = 'x' while true do s = s .. s end",
            "string length overflow",
        ),
        (
            "selfref.lua",
            "local t = {} while true do t[#t + 1] = t end",
            "limit",
        ),
        (
            "recursion.lua",
            "local function f(n) return 1 + f(n + 1) end return f(1)",
            "limit",
        ),
        ("rep.lua", "return string.rep('x', 2^40)", "string.rep"),
        (
            "unpack.lua",
            "return table.unpack({}, 1, 1e9)",
            "too many results to unpack",
        ),
        (
            "pattern.lua",
            "return string.find(string.rep('a', 30000), '(a*)*b')",
            "pattern too expensive",
        ),
        ("errors.lua", "error('always broken')", "always broken"),
        (
            "bigstrings.lua",
            "local t = {} for i = 1, 100 do t[i] = string.rep('x', 16 * 1024 * 1024 - 1) end",
            "memory limit",
        ),
    ];
    let sources: Vec<(String, String)> = bombs
        .iter()
        .map(|(name, body, _)| (name.to_string(), format!("return function(m) {body} end")))
        .collect();
    let mut files: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    files.push(("healthy.lua", PROBE_RULE));
    let mut l = start(&files, HELLO, r#", "CommandCooldown": 0"#);
    let c = &mut l.collectd;
    let pid = c.pid();
    c.putval("testhost/probe/gauge-x N:1");
    wait_results(c, 1);
    let rss_before = rss_kib(pid);
    for round in 2..=4 {
        c.putval(&format!("testhost/probe/gauge-x N:{round}"));
        let r = wait_results(c, round);
        assert!(r[round - 1].contains("healthy.lua::metric::probe"), "{r:?}");
        assert!(common::alive(pid), "collectd died");
    }
    for (name, _, reason) in bombs {
        let line = c.wait_for_log(&format!("{name}::metric failed on testhost/"));
        assert!(line.contains(reason), "{name}: {line}");
    }
    let rss_after = rss_kib(pid);
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
