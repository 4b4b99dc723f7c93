//! What both end-to-end benchmarks need: the release build's files, our
//! plugin installed where a test collectd finds it, and waiting for a log
//! line.
// Each example uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `target/release` of this checkout (`cargo build --release` first).
pub fn release() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release")
}

/// Copies the release plugin to `<work>/plugins/monitor.so` (collectd
/// refuses symlinks) and returns that directory, for `PluginDir`.
pub fn install_plugin(work: &Path) -> PathBuf {
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        release().join("libcollectd_monitor.so"),
        plugins.join("monitor.so"),
    )
    .expect("build with cargo build --release first");
    plugins
}

/// Waits up to 30 s for `needle` in the file `log`.
pub fn wait_for_line(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} never said {needle:?}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// CPU ticks (utime + stime) of a process or a thread, from its stat file.
pub fn ticks(stat_path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the comm: state(0) ppid(1) ... utime(11) stime(12).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// The kernel's count of UDP datagrams dropped for a full receive buffer.
pub fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A string part of collectd's network protocol (`kind`: host 0, plugin 2,
/// plugin instance 3, type 4, type instance 5).
pub fn part_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    buf.extend_from_slice(&kind.to_be_bytes());
    buf.extend_from_slice(&((s.len() + 5) as u16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// A number part (time 8 and interval 9, in 2^-30 s).
pub fn part_u64(buf: &mut Vec<u8>, kind: u16, v: u64) {
    buf.extend_from_slice(&kind.to_be_bytes());
    buf.extend_from_slice(&12u16.to_be_bytes());
    buf.extend_from_slice(&v.to_be_bytes());
}
