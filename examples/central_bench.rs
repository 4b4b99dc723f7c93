//! The central-rules benchmark (`scripts/bench`): a simulated fleet sends
//! value lists to a central collectd over the network plugin (UDP on
//! loopback, collectd's binary protocol, each host's packets signed as
//! that host: `SecurityLevel Sign` with an `AuthFile` of every host),
//! about 50 000 a second for 1 000 and for 10 000 hosts; the central
//! collectd runs 5 rule files over them (`FleetMonitorConfigDir`), knowing
//! the hosts from `FleetHostKeys`. Midway, 50 hosts report a fault; their
//! repairs go out as signed requests through a local mosquitto to one
//! process answering for every host, its results signed.
//! `CENTRAL_BENCH_UNSIGNED=1` sends unsigned datagrams instead, taken
//! without proof (`FleetAcceptUnprovenValues`), for comparison. Measured: the central collectd's
//! CPU per value list (collectd and its rule workers), the time from the
//! faulty value to the request reaching its host (p50, p99), how many
//! decisions the guards held back, and the UDP datagrams the kernel
//! dropped.
//!
//! `cargo build --release --lib --bins --example central_bench && target/release/examples/central_bench`

mod common;

use common::{part_str, part_u64};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Value lists per second the fleet sends.
const RATE: u64 = 50_000;
/// Seconds of load per run.
const SECONDS: u64 = 10;
/// Hosts that report a fault.
const FAULTS: usize = 50;
/// Value lists of one host in a row, in one signed datagram.
const PER_PACKET: u64 = 15;

/// Five central rule files; `app.lua` repairs the faults.
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

/// When each host received its request.
type Arrivals = Arc<Mutex<HashMap<String, SystemTime>>>;

/// One value list of `host` in collectd's binary protocol.
fn push_value_list(buf: &mut Vec<u8>, host: &str, i: u64, time: u64, fault: bool) {
    let (plugin, pinst, type_, tinst, value): (&str, &str, &str, &str, (u8, u64)) = if fault {
        ("app", "", "gauge", "up", (1, 0f64.to_bits()))
    } else {
        match i % 10 {
            0..=3 => ("cpu", "0", "cpu", "user", (2, i)),
            4..=5 => ("interface", "eth0", "if_octets", "", (2, i)),
            6..=7 => (
                "df",
                "root",
                "df_complex",
                "used",
                (1, (i as f64).to_bits()),
            ),
            8 => ("load", "", "load", "", (1, 0.5f64.to_bits())),
            _ => ("app", "", "gauge", "up", (1, 1f64.to_bits())),
        }
    };
    part_str(buf, 0x0000, host);
    part_u64(buf, 0x0008, time);
    part_u64(buf, 0x0009, 10 << 30);
    part_str(buf, 0x0002, plugin);
    part_str(buf, 0x0003, pinst);
    part_str(buf, 0x0004, type_);
    part_str(buf, 0x0005, tinst);
    buf.extend_from_slice(&0x0006u16.to_be_bytes());
    buf.extend_from_slice(&15u16.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.push(value.0);
    if value.0 == 1 {
        buf.extend_from_slice(&value.1.to_le_bytes());
    } else {
        buf.extend_from_slice(&value.1.to_be_bytes());
    }
}

/// `CENTRAL_BENCH_UNSIGNED=1`: the fleet sends unsigned datagrams and the
/// central collectd takes them all (`FleetAcceptUnprovenValues`), for the
/// cost of the proof.
fn unsigned() -> bool {
    std::env::var_os("CENTRAL_BENCH_UNSIGNED").is_some()
}

/// `payload` signed as `host` (its password is `pw-<host>`), as the
/// host's network plugin signs it.
fn signed(payload: &[u8], host: &str) -> Vec<u8> {
    if unsigned() {
        return payload.to_vec();
    }
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

/// Sends the load for `hosts` hosts, each host's value lists in datagrams
/// of its own, signed; the faults midway. Returns when each faulty host's
/// value went out.
fn send(port: u16, hosts: usize) -> HashMap<String, SystemTime> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let names: Vec<String> = (0..hosts).map(|h| format!("host{h:05}")).collect();
    let total = RATE * SECONDS;
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
    for i in 0..total {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let time = (now.as_secs() << 30) + ((u64::from(now.subsec_nanos()) << 30) / 1_000_000_000);
        let host = &names[((i / PER_PACKET) as usize) % hosts];
        if i == fault_at {
            flush(&mut packet, host);
            // Each fault in a datagram of its own, sent at a known time.
            for faulty in names.iter().step_by((hosts / FAULTS).max(1)).take(FAULTS) {
                let mut one = Vec::new();
                push_value_list(&mut one, faulty, i, time, true);
                faults.insert(faulty.clone(), SystemTime::now());
                let _ = socket.send(&signed(&one, faulty));
            }
        }
        push_value_list(&mut packet, host, i, time, false);
        if i % PER_PACKET == PER_PACKET - 1 {
            flush(&mut packet, host);
        }
        if i % 1000 == 999 {
            let due = Duration::from_secs_f64((i + 1) as f64 / RATE as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let last = &names[((total / PER_PACKET) as usize) % hosts];
    flush(&mut packet, last);
    faults
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One run with `hosts` simulated hosts; prints a table row.
fn run(work: &Path, broker: u16, hosts: usize, arrivals: &Arrivals, fleet_key: &str) {
    let dir = work.join(format!("central-{hosts}"));
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for (name, text) in RULES {
        std::fs::write(rules.join(name), text).unwrap();
    }
    let plugins = common::install_plugin(&dir);
    let release = common::release();
    let keygen = Command::new(release.join("collectd-monitor"))
        .args(["keygen", "controller", "--dir"])
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    // Every host's network user and result key.
    let names = (0..hosts).map(|h| format!("host{h:05}"));
    let auth: String = names.clone().map(|h| format!("{h}: pw-{h}\n")).collect();
    std::fs::write(dir.join("network-users"), auth).unwrap();
    let keys: String = names
        .map(|h| format!("{h} ed25519 {fleet_key}\n"))
        .collect();
    std::fs::write(dir.join("host-keys"), keys).unwrap();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = serde_json::json!({
        "Host": format!("127.0.0.1:{broker}"),
        "CommandTopic": "collectd/central/command",
        "CommandResultTopic": "collectd/central/result",
        "StateDir": dir.join("state"),
        "HelperPath": release.join("collectd-monitor"),
        "FleetMonitorConfigDir": rules,
        "FleetCommandTopic": "collectd/%{hostname}/command",
        "FleetResultTopic": "collectd/%{hostname}/result",
        "SigningKey": dir.join("keys/controller.key"),
        "FleetHostKeys": dir.join("host-keys"),
        "FleetAcceptUnprovenValues": unsigned(),
        "FleetMaxInFlight": "20",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
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
    SecurityLevel {level}
    AuthFile "{dir}/network-users"
  </Listen>
</Plugin>
PluginDir "{plugins}"
LoadPlugin monitor
<Plugin monitor>
  MonitorConfigPath "{dir}/config.json"
</Plugin>
"#,
        plugins = plugins.display(),
        dir = dir.display(),
        log = log.display(),
        level = if unsigned() { "None" } else { "Sign" },
    );
    std::fs::write(dir.join("collectd.conf"), conf).unwrap();
    let mut collectd = Command::new("/usr/sbin/collectd")
        .args(["-f", "-C"])
        .arg(dir.join("collectd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collectd");
    common::wait_for_line(&log, "central: listening for the hosts");
    common::wait_for_line(&log, "if.lua: loaded");
    arrivals.lock().unwrap().clear();
    let pid = collectd.id();
    let cpu = |pid: u32| {
        common::ticks(&format!("/proc/{pid}/stat"))
            + common::children(pid)
                .iter()
                .map(|c| common::ticks(&format!("/proc/{c}/stat")))
                .sum::<u64>()
    };
    let (cpu_before, drops_before) = (cpu(pid), common::udp_rcvbuf_errors());
    let faults = send(port, hosts);
    // Repairs still on their way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < FAULTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let cpu_ticks = cpu(pid) - cpu_before;
    let drops = common::udp_rcvbuf_errors() - drops_before;
    let status = Command::new(release.join("collectd-monitor"))
        .args(["status", "--json", "--socket"])
        .arg(dir.join("state/control.sock"))
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    let held: u64 = status["central"]["commands"]
        .as_array()
        .map(|c| {
            c.iter()
                .flat_map(|c| c["held"].as_array().cloned().unwrap_or_default())
                .filter_map(|h| h[1].as_u64())
                .sum()
        })
        .unwrap_or(0);
    let arrived = arrivals.lock().unwrap().clone();
    let mut reactions: Vec<Duration> = faults
        .iter()
        .filter_map(|(host, sent)| arrived.get(host)?.duration_since(*sent).ok())
        .collect();
    reactions.sort();
    let ticks_per_second = 100.0;
    let sent = (RATE * SECONDS) as f64;
    println!(
        "| {hosts} | {:.2} µs | {:.0} ms | {:.0} ms | {} of {FAULTS} | {held} | {drops} |",
        cpu_ticks as f64 / ticks_per_second * 1e6 / sent,
        percentile(&reactions, 0.5).as_secs_f64() * 1000.0,
        percentile(&reactions, 0.99).as_secs_f64() * 1000.0,
        reactions.len(),
    );
    let _ = collectd.kill();
    let _ = collectd.wait();
}

fn main() {
    let work = tempfile::Builder::new()
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
    println!(
        "{RATE} value lists/s for {SECONDS} s, each host's datagrams signed (SecurityLevel Sign), 5 central rule files, a fault on {FAULTS} hosts, FleetMaxInFlight 20"
    );
    println!(
        "| hosts | central CPU per value list | fault to request at the host, p50 | p99 | repairs requested | decisions held back | UDP datagrams dropped |"
    );
    println!("|---|---|---|---|---|---|---|");
    for hosts in [1_000, 10_000] {
        run(work.path(), broker, hosts, &arrivals, &public);
    }
    let _ = mosquitto.kill();
    let _ = mosquitto.wait();
}
