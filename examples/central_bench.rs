//! The central-rules benchmark (`scripts/bench`), side by side: a
//! simulated fleet sends value lists to a central collectd over the
//! network plugin (UDP on loopback, collectd's binary protocol, each
//! host's datagrams signed as that host: `SecurityLevel Sign` with an
//! `AuthFile` of every host), shaped like a fleet: every host sends its
//! series (load with its three values, per-CPU states, interfaces with
//! two values each, file systems, memory, disks, an application's health)
//! once a second, 1 000 hosts × 50 series and 10 000 hosts × 5 series,
//! 50 000 value lists a second either way. The same central collectd runs,
//! each on a fresh start, in turn:
//!
//! - `baseline`: a trivial C write plugin that only counts
//!   (`benches/null_writer.c`): collectd's own receive, HMAC, dispatch and
//!   cache cost, the floor;
//! - `monitor`: our plugin with six central rule files
//!   (`FleetMonitorConfigDir`), one of them stateful per host (load above
//!   4 for 3 readings on the same host); midway 50 hosts report a fault,
//!   whose repairs go out as signed requests through a local mosquitto to
//!   one process answering for every host;
//! - `lua`: collectd's stock `lua` plugin (C Lua) running the same six
//!   files' handlers from `collectd.register_write`;
//! - `threshold`: collectd's `threshold` plugin with the equivalent
//!   thresholds (`Hits 3` for the stateful rule).
//!
//! Rounds interleave the configurations (the order turns each round), and
//! the summary gives, per shape, the median over rounds of each
//! configuration's added CPU per value list over the round's baseline
//! (collectd and its rule workers, from `/proc`), the kernel's UDP drops,
//! the time collectd took to stop, and for ours its CPU measured directly
//! (its threads in collectd and its rule workers, per value list), the
//! rule workers' CPU per evaluation and the repairs' reaction.
//!
//! `cargo build --release --lib --bins --example central_bench &&
//! target/release/examples/central_bench [--rounds 5] [--seconds 10]
//! [--rate 50000] [--only NAME]`

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Hosts that report a fault, midway.
const FAULTS: usize = 50;
/// The fleet shapes: hosts × series per host.
const SHAPES: [(usize, usize); 2] = [(1_000, 50), (10_000, 5)];
/// The configurations, in the first round's order.
const CONFIGS: [&str; 4] = ["baseline", "monitor", "lua", "threshold"];

struct Args {
    rounds: usize,
    seconds: u64,
    rate: u64,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 5,
        seconds: 10,
        rate: 50_000,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--rate" => a.rate = value().parse().expect("--rate N"),
            "--only" => a.only = Some(value()),
            other => {
                panic!("unknown flag {other} (--rounds N, --seconds N, --rate N, --only NAME)")
            }
        }
    }
    a
}

/// Six central rule files; `app.lua` repairs the faults, `load_streak.lua`
/// keeps a count per host.
const RULES: &[(&str, &str)] = &[
    (
        "app.lua",
        r#"return { app_down = function(m)
  if m.plugin == "app" and m.values[1] == 0 then return { service = "app", command = "restart" } end
end }"#,
    ),
    (
        "disk.lua",
        r#"return { disk_full = function(m)
  if m.plugin == "df" and m.type_instance == "used" and m.values[1] > 1e15 then return { service = "disk", command = "clean" } end
end }"#,
    ),
    (
        "load.lua",
        r#"return { load_high = function(m)
  if m.plugin == "load" and m.values[1] > 1000 then return { service = "load", command = "shed" } end
end }"#,
    ),
    (
        "load_streak.lua",
        r#"-- Load above 4 for 3 readings in a row on the same host.
local streak = {}
return { load_streak = function(m)
  if m.plugin ~= "load" then return end
  local n = 0
  if m.values[1] > 4 then n = (streak[m.host] or 0) + 1 end
  streak[m.host] = n
  if n >= 3 then return { service = "load", command = "shed" } end
end }"#,
    ),
    (
        "cpu.lua",
        r#"return { cpu_stuck = function(m)
  if m.plugin == "cpu" and m.type_instance == "steal" and m.values[1] < 0 then return { service = "cpu", command = "alert" } end
end }"#,
    ),
    (
        "if.lua",
        r#"return { link_down = function(m)
  if m.plugin == "interface" and m.type == "if_errors" and m.values[1] > 1e15 then return { service = "net", command = "reset" } end
end }"#,
    ),
];

/// collectd's `threshold` plugin doing what the six files do.
const THRESHOLDS: &str = r#"LoadPlugin threshold
<Plugin threshold>
  <Plugin "app">
    <Type "gauge">
      FailureMin 0.5
    </Type>
  </Plugin>
  <Plugin "df">
    <Type "df_complex">
      Instance "used"
      FailureMax 1000000000000000
    </Type>
  </Plugin>
  <Plugin "load">
    <Type "load">
      DataSource "shortterm"
      FailureMax 4
      Hits 3
    </Type>
  </Plugin>
  <Plugin "cpu">
    <Type "cpu">
      Instance "steal"
      FailureMin 0
    </Type>
  </Plugin>
  <Plugin "interface">
    <Type "if_errors">
      FailureMax 1000000000000000
    </Type>
  </Plugin>
</Plugin>
"#;

/// One series of a host: identity (plugin, plugin instance, type, type
/// instance) and its number of values with their kind (1 gauge, 2 derive).
type Series = ([String; 4], usize, u8);

/// A host's series, the first `n` of a realistic host's 50: the five a
/// 10 000-host fleet sends first (load, the application, one CPU state, a
/// file system, an interface), then the rest.
fn series(n: usize) -> Vec<Series> {
    let s = |p: &str, pi: &str, t: &str, ti: &str, count: usize, kind: u8| {
        ([p, pi, t, ti].map(String::from), count, kind)
    };
    let mut all = vec![
        s("load", "", "load", "", 3, 1),
        s("app", "", "gauge", "up", 1, 1),
        s("cpu", "0", "cpu", "user", 1, 2),
        s("df", "root", "df_complex", "used", 1, 1),
        s("interface", "eth0", "if_octets", "", 2, 2),
    ];
    for cpu in 0..4 {
        for state in [
            "user",
            "system",
            "idle",
            "wait",
            "steal",
            "nice",
            "interrupt",
        ] {
            if (cpu, state) != (0, "user") {
                all.push(s("cpu", &cpu.to_string(), "cpu", state, 1, 2));
            }
        }
    }
    for t in ["if_packets", "if_errors", "if_dropped"] {
        all.push(s("interface", "eth0", t, "", 2, 2));
    }
    for (fs, states) in [
        ("root", &["free", "reserved"][..]),
        ("var", &["used", "free", "reserved"][..]),
    ] {
        for state in states {
            all.push(s("df", fs, "df_complex", state, 1, 1));
        }
    }
    for state in [
        "used",
        "free",
        "cached",
        "buffered",
        "slab_recl",
        "slab_unrecl",
    ] {
        all.push(s("memory", "", "memory", state, 1, 1));
    }
    for t in ["disk_octets", "disk_ops", "disk_time"] {
        all.push(s("disk", "sda", t, "", 2, 2));
    }
    all.push(s("processes", "", "ps_state", "running", 1, 1));
    assert_eq!(all.len(), 50);
    all.truncate(n);
    all
}

/// The values of `series` at reading `reading`: plausible and never a
/// fault (load 0.5, the application up, counters rising, disks half full),
/// or the application down.
fn values(series: &Series, reading: u64, fault: bool) -> Vec<common::WireValue> {
    let ([plugin, ..], count, kind) = series;
    let gauge = |v: f64| (1, v.to_bits());
    (0..*count)
        .map(|_| match (plugin.as_str(), kind) {
            ("app", _) => gauge(if fault { 0.0 } else { 1.0 }),
            ("load", _) => gauge(0.5),
            (_, 2) => (2, reading * 1000),
            _ => gauge(5e9),
        })
        .collect()
}

/// `payload` signed as `host` (its password is `pw-<host>`), as the
/// host's network plugin signs it.
fn signed(payload: &[u8], host: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, format!("pw-{host}").as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(host.as_bytes());
    ctx.update(payload);
    let tag = ctx.sign();
    let mut out = Vec::with_capacity(payload.len() + 36 + host.len());
    out.extend_from_slice(&0x0200u16.to_be_bytes());
    out.extend_from_slice(&((36 + host.len()) as u16).to_be_bytes());
    out.extend_from_slice(tag.as_ref());
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(payload);
    out
}

fn host_name(h: usize) -> String {
    format!("host{h:05}")
}

/// Sends `rate` value lists a second for `seconds` s: every host's series
/// in turn, each host's in datagrams of its own (at most 1 300 bytes),
/// signed; midway, the application of [`FAULTS`] hosts reports down, each
/// in a datagram of its own. Returns when each faulty host's value went out.
fn send(port: u16, shape: (usize, usize), rate: u64, seconds: u64) -> HashMap<String, SystemTime> {
    let (hosts, per_host) = shape;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let names: Vec<String> = (0..hosts).map(host_name).collect();
    let all = series(per_host);
    let total = rate * seconds;
    let fault_at = total / 2;
    let started = Instant::now();
    let mut packet = Vec::with_capacity(1452);
    let mut faults = HashMap::new();
    let flush = |packet: &mut Vec<u8>, host: &str| {
        if !packet.is_empty() {
            let _ = socket.send(&signed(packet, host));
            packet.clear();
        }
    };
    let per_reading = (hosts * per_host) as u64;
    for i in 0..total {
        let reading = i / per_reading;
        let host = ((i % per_reading) as usize) / per_host;
        let s = &all[(i % per_reading) as usize % per_host];
        let time = common::cdtime_now();
        if i == fault_at {
            flush(&mut packet, &names[host]);
            for faulty in names.iter().step_by((hosts / FAULTS).max(1)).take(FAULTS) {
                let mut one = Vec::new();
                let identity = s_ref(&all[1]);
                common::push_value_list(
                    &mut one,
                    faulty,
                    time,
                    identity,
                    &values(&all[1], reading, true),
                );
                faults.insert(faulty.clone(), SystemTime::now());
                let _ = socket.send(&signed(&one, faulty));
            }
        }
        common::push_value_list(
            &mut packet,
            &names[host],
            time,
            s_ref(s),
            &values(s, reading, false),
        );
        let last_of_host = (i + 1) % per_host as u64 == 0;
        if last_of_host || packet.len() > 1300 {
            flush(&mut packet, &names[host]);
        }
        if i % 1000 == 999 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    faults
}

fn s_ref(s: &Series) -> [&str; 4] {
    let [a, b, c, d] = &s.0;
    [a, b, c, d]
}

/// When each host received its request.
type Arrivals = Arc<Mutex<HashMap<String, SystemTime>>>;

/// What one run measured.
struct Run {
    /// CPU of collectd and its rule workers, in µs per value list sent.
    cpu_us: f64,
    /// CPU of the rule workers alone, in µs.
    workers_us: f64,
    /// CPU of the plugin's own threads in collectd and its rule workers,
    /// in µs per value list sent: what ours costs measured directly, not
    /// as a difference of two noisy totals (all but its write callback,
    /// which runs on collectd's threads; criterion's `enqueue` has that).
    plugin_us: f64,
    udp_drops: u64,
    stop: Duration,
    /// Our plugin's line at stop, and its evaluations.
    summary: String,
    evaluations: u64,
    reactions: Vec<Duration>,
}

/// The directory of one shape: the hosts' network users and keys, the
/// rule files, the lua plugin's script, the compiled plugins.
struct Shape {
    dir: PathBuf,
    plugins: PathBuf,
    hosts: usize,
    per_host: usize,
}

fn prepare(work: &Path, (hosts, per_host): (usize, usize), fleet_key: &str) -> Shape {
    let dir = work.join(format!("central-{hosts}x{per_host}"));
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for (name, text) in RULES {
        std::fs::write(rules.join(name), text).unwrap();
    }
    let plugins = common::install_plugin(&dir);
    common::compile_null_writer(&plugins);
    let release = common::release();
    let keygen = Command::new(release.join("collectd-monitor"))
        .args(["keygen", "controller", "--dir"])
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let names = (0..hosts).map(host_name);
    let auth: String = names.clone().map(|h| format!("{h}: pw-{h}\n")).collect();
    std::fs::write(dir.join("network-users"), auth).unwrap();
    let keys: String = names
        .map(|h| format!("{h} ed25519 {fleet_key}\n"))
        .collect();
    std::fs::write(dir.join("host-keys"), keys).unwrap();
    // The stock lua plugin: every handler of every file, on every value list.
    let mut script = String::from("local handlers = {}\n");
    for (name, _) in RULES {
        script.push_str(&format!(
            "for _, h in pairs(dofile(\"{}\")) do handlers[#handlers + 1] = h end\n",
            rules.join(name).display()
        ));
    }
    script.push_str(
        "collectd.register_write(function(vl)\n  for i = 1, #handlers do handlers[i](vl) end\n  return 0\nend)\n",
    );
    std::fs::write(dir.join("central_rules.lua"), script).unwrap();
    Shape {
        dir,
        plugins,
        hosts,
        per_host,
    }
}

/// One run of `config` on `shape`.
fn run(shape: &Shape, config: &str, broker: u16, arrivals: &Arrivals, a: &Args) -> Run {
    let dir = shape.dir.join(config);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let release = common::release();
    let extra = match config {
        "baseline" => "LoadPlugin null_writer\n".to_string(),
        "lua" => format!(
            "LoadPlugin lua\n<Plugin lua>\n  BasePath \"{}\"\n  Script \"central_rules.lua\"\n</Plugin>\n",
            shape.dir.display()
        ),
        "threshold" => THRESHOLDS.to_string(),
        _ => {
            let config = serde_json::json!({
                "Host": format!("127.0.0.1:{broker}"),
                "CommandTopic": "collectd/central/command",
                "CommandResultTopic": "collectd/central/result",
                "StateDir": dir.join("state"),
                "HelperPath": release.join("collectd-monitor"),
                "FleetMonitorConfigDir": shape.dir.join("rules"),
                "FleetCommandTopic": "collectd/%{hostname}/command",
                "FleetResultTopic": "collectd/%{hostname}/result",
                "SigningKey": shape.dir.join("keys/controller.key"),
                "FleetHostKeys": shape.dir.join("host-keys"),
                "FleetMaxInFlight": "20",
            });
            std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
            format!(
                "LoadPlugin monitor\n<Plugin monitor>\n  MonitorConfigPath \"{}/config.json\"\n</Plugin>\n",
                dir.display()
            )
        }
    };
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join("collectd.log");
    let conf = format!(
        r#"Hostname "central"
FQDNLookup false
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 10
WriteQueueLimitHigh 1000000
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{log}"
</Plugin>
LoadPlugin network
<Plugin network>
  <Listen "127.0.0.1" "{port}">
    SecurityLevel Sign
    AuthFile "{shape}/network-users"
  </Listen>
</Plugin>
{plugin_dir}{extra}"#,
        plugin_dir = if matches!(config, "baseline" | "monitor") {
            format!("PluginDir \"{}\"\n", shape.plugins.display())
        } else {
            String::new()
        },
        dir = dir.display(),
        shape = shape.dir.display(),
        log = log.display(),
    );
    std::fs::write(dir.join("collectd.conf"), conf).unwrap();
    let mut collectd = Command::new("/usr/sbin/collectd")
        .args(["-f", "-C"])
        .arg(dir.join("collectd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collectd");
    common::wait_for_line(&log, "Initialization complete");
    if config == "monitor" {
        common::wait_for_line(&log, "central: listening for the hosts");
        common::wait_for_line(&log, "if.lua: loaded");
    }
    arrivals.lock().unwrap().clear();
    let pid = collectd.id();
    let workers = || -> u64 {
        common::children(pid)
            .iter()
            .map(|c| common::ticks(&format!("/proc/{c}/stat")))
            .sum()
    };
    let own = || common::ticks(&format!("/proc/{pid}/stat"));
    let threads = || common::thread_ticks(pid, "monitor-");
    let (own0, workers0, threads0, drops0) =
        (own(), workers(), threads(), common::udp_rcvbuf_errors());
    let faults = send(port, (shape.hosts, shape.per_host), a.rate, a.seconds);
    if config == "monitor" {
        // Repairs still on their way.
        let deadline = Instant::now() + Duration::from_secs(30);
        while arrivals.lock().unwrap().len() < FAULTS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Until collectd and the workers are idle again.
    let mut last = (own(), workers());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = (own(), workers());
        if now == last {
            break;
        }
        last = now;
    }
    let (own1, workers1, threads1, drops1) =
        (own(), workers(), threads(), common::udp_rcvbuf_errors());
    let stop = common::stop(&mut collectd);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let summary = text
        .lines()
        .find_map(|l| l.split("central: stopped: ").nth(1))
        .unwrap_or("")
        .to_string();
    let evaluations = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" evaluations by central rule files"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let arrived = arrivals.lock().unwrap().clone();
    let mut reactions: Vec<Duration> = faults
        .iter()
        .filter_map(|(host, sent)| arrived.get(host)?.duration_since(*sent).ok())
        .collect();
    reactions.sort();
    let sent = (a.rate * a.seconds) as f64;
    let tick_us = 1e6 / 100.0;
    Run {
        cpu_us: (own1 - own0 + workers1 - workers0) as f64 * tick_us / sent,
        workers_us: (workers1 - workers0) as f64 * tick_us,
        plugin_us: (threads1.saturating_sub(threads0) + workers1 - workers0) as f64 * tick_us
            / sent,
        udp_drops: drops1 - drops0,
        stop,
        summary,
        evaluations,
        reactions,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a = args();
    let work = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KEEP").is_some())
        .prefix("cm-central-bench")
        .tempdir()
        .unwrap();
    let (mut mosquitto, broker) = common::start_mosquitto(work.path());
    let arrivals: Arrivals = Arc::default();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let fleet = Arc::clone(&arrivals);
    let key = common::fleet_key(work.path());
    let public = key.public_base64();
    std::thread::spawn(move || {
        common::simulate_fleet(
            broker,
            key,
            move || {
                let _ = ready.send(());
            },
            |host| {
                fleet
                    .lock()
                    .unwrap()
                    .entry(host.to_string())
                    .or_insert_with(SystemTime::now);
            },
        )
    });
    is_ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the fleet simulator subscribed");
    let shapes: Vec<Shape> = SHAPES
        .iter()
        .map(|s| prepare(work.path(), *s, &public))
        .collect();
    let configs: Vec<&str> = CONFIGS
        .iter()
        .copied()
        .filter(|c| *c == "baseline" || a.only.as_deref().is_none_or(|o| c.contains(o)))
        .collect();
    println!(
        "{} value lists/s for {} s per run, signed (SecurityLevel Sign), {} rounds; CPU of collectd and its rule workers per value list",
        a.rate, a.seconds, a.rounds
    );
    println!(
        "| round | shape | configuration | CPU µs per value list | UDP drops | stop | our line at stop |"
    );
    println!("|---|---|---|---|---|---|---|");
    // (shape, config) -> the runs, in round order.
    let mut runs: HashMap<(usize, &str), Vec<Run>> = HashMap::new();
    for round in 0..a.rounds {
        for (s, shape) in shapes.iter().enumerate() {
            let mut order = configs.clone();
            let turn = round % order.len();
            order.rotate_left(turn);
            for config in order {
                let r = run(shape, config, broker, &arrivals, &a);
                println!(
                    "| {} | {}×{} | {config} | {:.2} | {} | {:.2} s | {} |",
                    round + 1,
                    shape.hosts,
                    shape.per_host,
                    r.cpu_us,
                    r.udp_drops,
                    r.stop.as_secs_f64(),
                    if r.summary.is_empty() {
                        "-"
                    } else {
                        &r.summary
                    },
                );
                runs.entry((s, config)).or_default().push(r);
            }
        }
    }
    println!();
    println!(
        "Medians over {} rounds (min–max), added CPU per value list over the round's baseline:",
        a.rounds
    );
    println!(
        "| shape | configuration | added µs per value list | of the lua plugin's | UDP drops (all rounds) | stop, median | ours directly, µs per value list | worker µs per evaluation | repairs requested, reaction p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (s, shape) in shapes.iter().enumerate() {
        let base = &runs[&(s, "baseline")];
        let added = |config: &str| -> Vec<f64> {
            runs.get(&(s, config))
                .map(|rs| {
                    rs.iter()
                        .zip(base)
                        .map(|(r, b)| r.cpu_us - b.cpu_us)
                        .collect()
                })
                .unwrap_or_default()
        };
        let lua = common::median(&mut added("lua"));
        for config in &configs {
            let rs = &runs[&(s, *config)];
            let mut add = added(config);
            let med = common::median(&mut add);
            let (lo, hi) = (
                add.first().copied().unwrap_or(0.0),
                add.last().copied().unwrap_or(0.0),
            );
            let mut stops: Vec<f64> = rs.iter().map(|r| r.stop.as_secs_f64()).collect();
            let mut per_eval: Vec<f64> = rs
                .iter()
                .filter(|r| r.evaluations > 0)
                .map(|r| r.workers_us / r.evaluations as f64)
                .collect();
            let mut reactions: Vec<Duration> =
                rs.iter().flat_map(|r| r.reactions.clone()).collect();
            reactions.sort();
            let repairs: Vec<String> = rs.iter().map(|r| r.reactions.len().to_string()).collect();
            println!(
                "| {}×{} | {config} | {med:+.2} ({lo:+.2} to {hi:+.2}) | {} | {} | {:.2} s | {} | {} | {} |",
                shape.hosts,
                shape.per_host,
                if *config == "baseline" || lua == 0.0 {
                    "-".to_string()
                } else {
                    format!("{:.2}", med / lua)
                },
                rs.iter().map(|r| r.udp_drops).sum::<u64>(),
                common::median(&mut stops),
                if *config == "monitor" {
                    let mut direct: Vec<f64> = rs.iter().map(|r| r.plugin_us).collect();
                    format!("{:.2}", common::median(&mut direct))
                } else {
                    "-".to_string()
                },
                if per_eval.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.2}", common::median(&mut per_eval))
                },
                if *config == "monitor" {
                    format!(
                        "{} of {FAULTS}, {:.0} / {:.0} ms",
                        repairs.join(", "),
                        percentile(&reactions, 0.5).as_secs_f64() * 1e3,
                        percentile(&reactions, 0.99).as_secs_f64() * 1e3
                    )
                } else {
                    "-".to_string()
                },
            );
        }
    }
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
}
