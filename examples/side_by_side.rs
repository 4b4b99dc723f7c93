//! Side-by-side benchmark (`scripts/bench`): real collectd 5.12, the same
//! load sent with the network plugin's binary protocol over loopback, in
//! several configurations measured in the same run:
//!
//! - `baseline`: collectd with a trivial C write plugin that only counts
//!   (`benches/null_writer.c`, compiled here with gcc): collectd's own
//!   receive, dispatch and cache cost, the floor;
//! - `(a) monitor, no rules`: our plugin, an empty rule directory;
//! - `(b) monitor, example rules`: our plugin with `rules/example.lua`;
//! - `(c) monitor, 20 rule files`: the shipped rules, copied to 20 files;
//! - `(d) stock lua plugin`: collectd's `lua` plugin (C Lua 5.3) running
//!   the handlers of `rules/example.lua` from `collectd.register_write`.
//!
//! `--worst` makes every value list a `memory/free` value of NaN: it
//! passes the example handlers' identity conditions (nothing is skipped)
//! and neither handler fires (no decision path), as in the issue's worst
//! case.
//!
//! For each it prints CPU per value list of collectd, of collectd's write
//! thread, and of our worker processes, peak RSS, and drops (kernel UDP
//! buffer, our queue, our sandbox feeds).

#[path = "common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HOST: &str = "benchhost";

struct Args {
    values: u64,
    rate: u64,
    only: Option<String>,
    rounds: usize,
}

/// `--worst`: every value list is a `memory/free` value of NaN, so every
/// one passes the example handlers' identity conditions (the rule index
/// can skip nothing) and none makes them fire.
static WORST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn args() -> Args {
    let mut a = Args {
        values: 1_000_000,
        rate: 200_000,
        only: None,
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--values" => a.values = value().parse().expect("--values N"),
            "--rate" => a.rate = value().parse().expect("--rate N"),
            "--only" => a.only = Some(value()),
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            "--worst" => WORST.store(true, std::sync::atomic::Ordering::Relaxed),
            other => panic!(
                "unknown flag {other} (--values N, --rate N, --only NAME, --rounds N, --worst)"
            ),
        }
    }
    a
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One configuration under test.
struct Setup {
    name: &'static str,
    /// collectd.conf lines after the common part.
    conf: String,
}

fn setups(work: &Path) -> Vec<Setup> {
    let release = common::release();
    let plugins = common::install_plugin(work);
    common::compile_null_writer(&plugins);
    let monitor = |name: &str, files: &[(String, PathBuf)]| {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, source) in files {
            std::fs::copy(source, dir.join(file)).unwrap();
        }
        let json = work.join(format!("{name}.json"));
        std::fs::write(
            &json,
            format!(
                r#"{{"LocalMonitorConfigDir": "{}", "HelperPath": "{}", "RuleReloadInterval": 0,
                    "Services": {{"hello": {{"commands": {{"exec": "/bin/echo \"Hello World!\""}}}},
                                 "probe": {{"commands": {{"stamp": "date +%s.%N >> {}"}}, "Cooldown": 0}}}}}}"#,
                dir.display(),
                release.join("collectd-monitor").display(),
                work.join(format!("{name}-stamps")).display()
            ),
        )
        .unwrap();
        format!(
            "PluginDir \"{}\"\nLoadPlugin monitor\n<Plugin monitor>\n  MonitorConfigPath \"{}\"\n</Plugin>\n",
            plugins.display(),
            json.display()
        )
    };
    let example = ("example.lua".to_string(), repo().join("rules/example.lua"));
    // Fires on the sender's reaction markers: the command writes the time
    // it started, for the reaction-time figure.
    let reaction = work.join("reaction.lua");
    std::fs::write(
        &reaction,
        r#"return { reaction = { match = { plugin = "reaction" },
  handler = function(m) return { service = "probe", command = "stamp" } end } }"#,
    )
    .unwrap();
    let reaction = ("reaction.lua".to_string(), reaction);
    let shipped: Vec<PathBuf> = [
        "example",
        "disk_almost_full",
        "process_missing",
        "load_high",
        "notification_restart",
    ]
    .iter()
    .map(|n| repo().join(format!("rules/{n}.lua")))
    .collect();
    let twenty: Vec<(String, PathBuf)> = (0..20)
        .map(|i| (format!("r{i:02}.lua"), shipped[i % shipped.len()].clone()))
        .collect();
    let lua_dir = work.join("lua");
    std::fs::create_dir_all(&lua_dir).unwrap();
    std::fs::write(
        lua_dir.join("bench_rules.lua"),
        format!(
            r#"-- The handlers of rules/example.lua, run by collectd's stock lua plugin.
local metric_handlers = dofile("{}")
collectd.register_write(function(vl)
  for _, handler in pairs(metric_handlers) do handler(vl) end
  return 0
end)
"#,
            repo().join("rules/example.lua").display()
        ),
    )
    .unwrap();
    vec![
        Setup {
            name: "baseline",
            conf: format!(
                "PluginDir \"{}\"\nLoadPlugin null_writer\n",
                plugins.display()
            ),
        },
        Setup {
            name: "(a) monitor, no rules",
            conf: monitor("a", &[]),
        },
        Setup {
            name: "(b) monitor, example rules",
            conf: monitor("b", &[example, reaction]),
        },
        Setup {
            name: "(c) monitor, 20 rule files",
            conf: monitor("c", &twenty),
        },
        Setup {
            name: "(d) stock lua plugin",
            conf: format!(
                "LoadPlugin lua\n<Plugin lua>\n  BasePath \"{}\"\n  Script \"bench_rules.lua\"\n</Plugin>\n",
                lua_dir.display()
            ),
        },
    ]
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Ticks of collectd's write threads (named `writer#N`).
fn writer_ticks(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("writer"))
                })
                .map(|e| common::ticks(&e.path().join("stat").display().to_string()))
                .sum()
        })
        .unwrap_or(0)
}

/// collectd's binary protocol: one value list, all parts written out.
fn push_value_list(buf: &mut Vec<u8>, i: u64, time: u64) {
    // A realistic mix; 1 % are memory/free values that the example rules
    // act on.
    let series = i % 500;
    let worst = WORST.load(std::sync::atomic::Ordering::Relaxed);
    let (plugin, pinst, type_, tinst, values): (&str, String, &str, &str, Vec<(u8, u64)>) =
        match if worst { 0 } else { i % 100 } {
            0 => (
                "memory",
                String::new(),
                "memory",
                "free",
                // (In the worst case NaN, which neither of the example's
                // complementary comparisons admits: every handler runs,
                // none fires.)
                vec![(1, if worst { f64::NAN } else { 5e9 }.to_bits())],
            ),
            1..=40 => ("cpu", format!("{series}"), "cpu", "user", vec![(2, i)]),
            41..=70 => (
                "interface",
                format!("eth{series}"),
                "if_octets",
                "",
                vec![(2, i), (2, i * 2)],
            ),
            71..=90 => (
                "df",
                format!("d{series}"),
                "df_complex",
                "used",
                vec![(1, (i as f64).to_bits())],
            ),
            _ => (
                "load",
                format!("{series}"),
                "load",
                "",
                vec![(1, 0.5f64.to_bits()); 3],
            ),
        };
    common::push_value_list(buf, HOST, time, [plugin, &pinst, type_, tinst], &values);
}

/// A value list only the reaction rule acts on, in a packet of its own.
fn reaction_marker(seq: u64, time: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    use common::part_str;
    part_str(&mut buf, 0x0000, HOST);
    buf.extend_from_slice(&0x0008u16.to_be_bytes());
    buf.extend_from_slice(&12u16.to_be_bytes());
    buf.extend_from_slice(&time.to_be_bytes());
    part_str(&mut buf, 0x0002, "reaction");
    part_str(&mut buf, 0x0003, &seq.to_string());
    part_str(&mut buf, 0x0004, "gauge");
    buf.extend_from_slice(&0x0006u16.to_be_bytes());
    buf.extend_from_slice(&15u16.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.push(1);
    buf.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
    buf
}

/// Value lists between two reaction markers.
const MARKER_EVERY: u64 = 10_000;

/// Sends `n` value lists at `rate` per second, with a reaction marker every
/// [`MARKER_EVERY`]; returns when each marker was sent.
fn send(port: u16, n: u64, rate: u64) -> Vec<SystemTime> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let base = (now.as_secs() << 30) + ((u64::from(now.subsec_nanos()) << 30) / 1_000_000_000);
    let started = Instant::now();
    let mut packet = Vec::with_capacity(1452);
    let mut markers = Vec::new();
    for i in 0..n {
        if i % MARKER_EVERY == MARKER_EVERY / 2 {
            markers.push(SystemTime::now());
            socket
                .send(&reaction_marker(i, base + i * 1074 + 1))
                .unwrap();
        }
        let before = packet.len();
        // 1 µs apart: every series' times strictly increase.
        push_value_list(&mut packet, i, base + i * 1074);
        if packet.len() > 1452 {
            let tail = packet.split_off(before);
            socket.send(&packet).unwrap();
            packet = tail;
        }
        if i % 1000 == 999 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    if !packet.is_empty() {
        socket.send(&packet).unwrap();
    }
    markers
}

/// Reaction times: each marker's send time against the time its command
/// wrote (in order; commands 100 ms apart do not overtake each other).
fn reactions(markers: &[SystemTime], stamps: &Path) -> Vec<Duration> {
    let text = std::fs::read_to_string(stamps).unwrap_or_default();
    markers
        .iter()
        .zip(text.lines())
        .filter_map(|(sent, line)| {
            let ran = UNIX_EPOCH + Duration::from_secs_f64(line.trim().parse().ok()?);
            ran.duration_since(*sent).ok()
        })
        .collect()
}

struct Run {
    collectd_cpu: u64,
    writer_cpu: u64,
    workers_cpu: u64,
    collectd_hwm: u64,
    workers_rss: u64,
    udp_drops: u64,
    ours: String,
    seconds: f64,
    markers: Vec<SystemTime>,
}

fn run(setup: &Setup, work: &Path, a: &Args) -> Run {
    let dir = work.join(setup.name.replace(|c: char| !c.is_alphanumeric(), "_"));
    // A fresh directory each round: its log must not say "Initialization
    // complete" before this collectd does.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let log = dir.join("collectd.log");
    let conf = format!(
        r#"Hostname "{HOST}"
FQDNLookup false
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 10
WriteThreads 1
WriteQueueLimitHigh 0
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{log}"
</Plugin>
LoadPlugin network
<Plugin network>
  Listen "127.0.0.1" "{port}"
</Plugin>
{extra}"#,
        dir = dir.display(),
        log = log.display(),
        extra = setup.conf
    );
    let conf_path = dir.join("collectd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child: Child = Command::new("/usr/sbin/collectd")
        .args(["-f", "-C"])
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collectd");
    let pid = child.id();
    common::wait_for_line(&log, "Initialization complete");
    // Let the workers load.
    std::thread::sleep(Duration::from_secs(1));
    let stat = format!("/proc/{pid}/stat");
    let workers = common::children(pid);
    let workers_ticks = |ws: &[u32]| -> u64 {
        ws.iter()
            .map(|w| common::ticks(&format!("/proc/{w}/stat")))
            .sum()
    };
    let (c0, w0, k0, u0) = (
        common::ticks(&stat),
        writer_ticks(pid),
        workers_ticks(&workers),
        common::udp_rcvbuf_errors(),
    );
    let started = Instant::now();
    let markers = send(port, a.values, a.rate);
    // Wait until collectd and the workers are idle again.
    let mut last = (common::ticks(&stat), workers_ticks(&workers));
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = (common::ticks(&stat), workers_ticks(&workers));
        if now == last {
            break;
        }
        last = now;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (c1, w1, k1, u1) = (
        common::ticks(&stat),
        writer_ticks(pid),
        workers_ticks(&workers),
        common::udp_rcvbuf_errors(),
    );
    let collectd_hwm = status_kib(pid, "VmHWM:");
    // Proportional set size: the program's pages are shared by all the
    // workers, each counts its share once.
    let workers_rss = workers.iter().map(|w| pss_kib(*w)).sum();
    let _ = nix_kill(pid);
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let ours = text
        .lines()
        .filter(|l| l.contains("monitor: stopped:"))
        .map(|l| l.split("monitor: ").nth(1).unwrap_or(l).to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Run {
        collectd_cpu: c1 - c0,
        writer_cpu: w1 - w0,
        workers_cpu: k1 - k0,
        collectd_hwm,
        workers_rss,
        udp_drops: u1 - u0,
        ours,
        seconds,
        markers,
    }
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    Command::new("kill")
        .arg(pid.to_string())
        .status()
        .map(|_| ())
}

fn main() {
    let a = args();
    let work = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KEEP").is_some())
        .prefix("cm-bench")
        .tempdir()
        .unwrap();
    let tick_us = 1e6 / 100.0; // USER_HZ
    let per_vl = |t: u64| t as f64 * tick_us / a.values as f64;
    println!(
        "{} value lists at {}/s per configuration, WriteThreads 1; CPU in µs per value list",
        a.values, a.rate
    );
    println!(
        "| configuration | collectd CPU | of which write thread | our workers CPU | total | peak RSS collectd | workers PSS | UDP drops | our counters |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut totals = Vec::new();
    let mut reaction_line = String::new();
    let all: Vec<Setup> = setups(work.path())
        .into_iter()
        .filter(|s| a.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .collect();
    for round in 0..a.rounds {
        // Interleaved: each round starts with the next configuration.
        for i in 0..all.len() {
            let setup = &all[(i + round) % all.len()];
            // Each round's reaction times from its own stamps.
            let _ = std::fs::remove_file(work.path().join("b-stamps"));
            let r = run(setup, work.path(), &a);
            let total = per_vl(r.collectd_cpu + r.workers_cpu);
            let stamps = work.path().join("b-stamps");
            if setup.name.starts_with("(b)") {
                let mut times = reactions(&r.markers, &stamps);
                times.sort();
                if !times.is_empty() {
                    let pick = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
                    reaction_line = format!(
                        "reaction, (b): a marker value list to its command writing the time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} markers answered)",
                        pick(0.5).as_secs_f64() * 1e3,
                        pick(0.99).as_secs_f64() * 1e3,
                        times.last().unwrap().as_secs_f64() * 1e3,
                        times.len(),
                        r.markers.len()
                    );
                }
            }
            totals.push((round, setup.name, total, per_vl(r.writer_cpu)));
            println!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} MiB | {} MiB | {} | {} ({:.1} s) |",
                setup.name,
                per_vl(r.collectd_cpu),
                per_vl(r.writer_cpu),
                per_vl(r.workers_cpu),
                total,
                r.collectd_hwm / 1024,
                r.workers_rss / 1024,
                r.udp_drops,
                if r.ours.is_empty() {
                    "-".to_string()
                } else {
                    r.ours
                },
                r.seconds
            );
        }
    }
    if !reaction_line.is_empty() {
        println!();
        println!("{reaction_line}");
    }
    // Per round, each configuration's figure less the baseline's; their
    // medians over the rounds (the machine drifts between runs).
    let added = |prefix: &str, total: bool| -> Vec<f64> {
        (0..a.rounds)
            .filter_map(|round| {
                let get = |p: &str| {
                    totals
                        .iter()
                        .find(|(r, n, _, _)| *r == round && n.starts_with(p))
                        .map(|(_, _, t, w)| if total { *t } else { *w })
                };
                Some(get(prefix)? - get("baseline")?)
            })
            .collect()
    };
    let describe = |v: &mut Vec<f64>| {
        let med = common::median(v);
        format!(
            "{med:+.2} µs ({:+.2} to {:+.2})",
            v.first().copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0)
        )
    };
    let (mut b, mut d) = (added("(b)", true), added("(d)", true));
    if !b.is_empty() && !d.is_empty() {
        // (Before the medians sort them.)
        let mut ratios: Vec<f64> = b.iter().zip(&d).map(|(b, d)| b / d).collect();
        println!();
        println!(
            "medians over {} rounds (min to max), per value list over the round's baseline:",
            a.rounds
        );
        println!(
            "our write callback (write thread, (a)): {}",
            describe(&mut added("(a)", false))
        );
        println!(
            "(a) monitor, no rules: {}",
            describe(&mut added("(a)", true))
        );
        println!("(b) monitor, example rules: {}", describe(&mut b));
        println!(
            "(c) monitor, 20 rule files: {}",
            describe(&mut added("(c)", true))
        );
        println!("(d) stock lua plugin: {}", describe(&mut d));
        println!(
            "(b) / (d): {:.2} (ratio of the medians), {:.2} (median of the rounds' ratios)",
            common::median(&mut b) / common::median(&mut d),
            common::median(&mut ratios)
        );
    }
}
