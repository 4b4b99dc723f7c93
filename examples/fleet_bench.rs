//! The fleet benchmark (`scripts/bench`): a local mosquitto, and one
//! process that answers like the plugin for thousands of hosts
//! (`collectd/<host>/command` -> `collectd/<host>/result`, code 0); then
//! `collectd-monitor send-command --hosts-file` to 1 000 and 10 000 of
//! them at once. Measured: the wall time until every result is gathered,
//! the CLI's peak memory, and that nothing was lost.
//!
//! `cargo build --release --bins --example fleet_bench && target/release/examples/fleet_bench`

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, port] = args.as_slice()
        && flag == "--simulate"
    {
        let keys = tempfile::tempdir().unwrap();
        let key = common::fleet_key(keys.path());
        common::simulate_fleet(port.parse().unwrap(), key, || println!("ready"), |_| {});
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (mut broker, port) = common::start_mosquitto(work.path());
    let mut simulator = Command::new(std::env::current_exe().unwrap())
        .args(["--simulate", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(simulator.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    println!("| hosts | time until every result | results (code 0) | CLI peak RSS |");
    println!("|---|---|---|---|");
    for n in [1_000, 10_000] {
        let hosts = work.path().join(format!("hosts-{n}"));
        let names: Vec<String> = (0..n).map(|i| format!("host{i:05}")).collect();
        std::fs::write(&hosts, names.join("\n")).unwrap();
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/release/collectd-monitor"
            ))
            .args(["send-command", "hello", "exec"])
            .args(["--host", &format!("127.0.0.1:{port}")])
            .args(["-t", "collectd/%{hostname}/command"])
            .args(["--result-topic", "collectd/%{hostname}/result"])
            .arg("--hosts-file")
            .arg(&hosts)
            .args([
                "--max-concurrency",
                "100%",
                "--timeout",
                "120",
                "--json",
                "-q",
                "1",
            ])
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let ok = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"code\":0"))
            .count();
        let rss_kib: u64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        println!(
            "| {n} | {:.2} s | {ok} of {n} | {} MiB |",
            elapsed.as_secs_f64(),
            rss_kib / 1024
        );
    }
    let _ = simulator.kill();
    let _ = broker.kill();
    let _ = simulator.wait();
    let _ = broker.wait();
}
