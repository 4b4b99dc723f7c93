//! Test harness: real collectd and real mosquitto daemons, each in its own
//! temporary directory on free loopback resources, killed when dropped
//! (also when the test fails).
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod central;
pub mod cli;
mod collectd;
mod mosquitto;
pub mod netpacket;
#[allow(unused_imports)] // each test binary uses a different part of the harness
pub use collectd::{Collectd, CollectdSpec};
#[allow(unused_imports)]
pub use mosquitto::{Mosquitto, MosquittoSpec, Subscriber, TestCa};

/// How long a daemon may take to show what a test waits for. A deadline for
/// failing instead of hanging, not a performance limit.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The plugin as cargo built it for this test run. `cargo test` compiles the
/// library (cdylib included) into `target/<profile>/deps` next to the test
/// executable; only `cargo build` copies it one level up, so that copy may
/// be stale and is never used.
pub fn plugin_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let lib = exe
        .parent()
        .expect("deps dir")
        .join("libcollectd_monitor.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// Polls `probe` until it returns Some, or panics with `what` after PATIENCE.
pub fn wait_for<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    wait_within(what, PATIENCE, probe)
}

/// The same with a deadline of its own, for work a debug build does
/// slowly (a flood of 100 000 value lists): still a deadline for
/// failing, not a performance limit.
pub fn wait_within<T>(what: &str, patience: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(task_id, code)` of each result message mosquitto_sub printed.
pub fn result_codes(messages: &[String]) -> Vec<(u64, i64)> {
    messages
        .iter()
        .map(|m| {
            let v: serde_json::Value =
                serde_json::from_str(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            (v["task_id"].as_u64().unwrap(), v["code"].as_i64().unwrap())
        })
        .collect()
}

/// True when a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Captures a child's output stream into a shared string.
fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    out
}

/// Whether `text` says one of the `|`-separated `reasons` of a bomb.
pub fn says_one_of(text: &str, reasons: &str) -> bool {
    reasons.split('|').any(|r| text.contains(r))
}

/// Rule code that must never hurt collectd: `(file name, code, what the
/// error says)`, shared by the collectd test and the `lua` CLI test. Where
/// more than one bound can stop a bomb first (a loaded machine reaches the
/// time limit sooner), the alternatives are separated by `|`: the tests
/// assert that the bomb was stopped, not which bound fired first.
pub const BOMBS: &[(&str, &str, &str)] = &[
    ("spin.lua", "while true do end", " limit: "),
    (
        "concat.lua",
        "local s = 'x' while true do s = s .. s end",
        "string length overflow| limit: ",
    ),
    (
        "selfref.lua",
        "local t = {} while true do t[#t + 1] = t end",
        " limit: ",
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
        "memory limit|time limit",
    ),
];

/// A memory figure of a process from /proc/PID/status (`VmRSS` resident
/// now, `VmHWM` the resident peak), in KiB.
pub fn memory_kib(field: &str, pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// `collectd-monitor keygen NAME --dir DIR`: the private key's path (mode
/// 0600, checked) and the public line to trust it with.
pub fn keygen(dir: &std::path::Path, name: &str) -> (PathBuf, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collectd-monitor"))
        .args(["keygen", name, "--dir"])
        .arg(dir)
        .output()
        .expect("run collectd-monitor keygen");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = dir.join(format!("{name}.key"));
    let mode = std::fs::metadata(&key).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    (key, public.trim().to_string())
}
