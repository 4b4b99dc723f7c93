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

/// CPU ticks of the threads of process `pid` whose name starts with
/// `prefix` (the plugin's own threads inside collectd: `monitor-...`).
pub fn thread_ticks(pid: u32, prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|e| ticks(&e.path().join("stat").to_string_lossy()))
        .sum()
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

/// A mosquitto for the benchmarks, on a free loopback port, with queues
/// large enough for bursts: the process and its port.
pub fn start_mosquitto(work: &Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = work.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n"
        ),
    )
    .unwrap();
    let broker = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto");
    std::thread::sleep(Duration::from_millis(300));
    (broker, port)
}

/// The key the simulated hosts sign their results with (one for all of
/// them), kept in `dir`.
pub fn fleet_key(dir: &Path) -> collectd_monitor::auth::SigningKey {
    collectd_monitor::auth::SigningKey::load_or_create(&dir.join("fleet.key"), "fleet").unwrap()
}

/// Answers like the plugin for every host (`collectd/<host>/command` ->
/// `collectd/<host>/result`, code 0, signed with `key` as that host) until
/// the process ends; `ready` once subscribed, `on_request(host)` as each
/// request arrives.
pub fn simulate_fleet(
    port: u16,
    key: collectd_monitor::auth::SigningKey,
    ready: impl FnOnce(),
    mut on_request: impl FnMut(&str),
) {
    use collectd_monitor::mqtt::{Connection, Event, MQTT_MAX_PACKET, Packet, QoS};
    let connection = Connection {
        host: "127.0.0.1".into(),
        port,
        client_id: format!("fleet-simulator-{}", std::process::id()),
        credentials: None,
        tls: None,
        keep_alive: Duration::from_secs(30),
        clean_session: true,
        manual_acks: false,
        max_packet: MQTT_MAX_PACKET,
        last_will: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ready = Some(ready);
    runtime.block_on(async {
        let (client, mut eventloop) = connection.client(100_000).unwrap();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .try_subscribe("collectd/+/command", QoS::AtLeastOnce)
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        ready();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let Some(host) = topic
                        .strip_prefix("collectd/")
                        .and_then(|t| t.strip_suffix("/command"))
                    else {
                        continue;
                    };
                    on_request(host);
                    let request: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    let result = collectd_monitor::task::TaskResult::now(
                        request["task_id"].as_u64().unwrap_or_default(),
                        0,
                        "ok",
                    );
                    let signed =
                        collectd_monitor::auth::SignedResult::new(result, host, Some(&key));
                    let _ = client.try_publish(
                        format!("collectd/{host}/result"),
                        QoS::AtLeastOnce,
                        false,
                        serde_json::to_vec(&signed).unwrap_or_default(),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("fleet simulator: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    });
}

/// Compiles the baseline's trivial write plugin (`benches/null_writer.c`,
/// which only counts) into `plugins/null_writer.so`.
pub fn compile_null_writer(plugins: &Path) {
    let compiled = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-DHAVE_CONFIG_H"])
        .args([
            "-I/usr/include/collectd/core/daemon",
            "-I/usr/include/collectd/core",
            "-I/usr/include/collectd",
        ])
        .arg("-o")
        .arg(plugins.join("null_writer.so"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/null_writer.c"))
        .status()
        .expect("gcc");
    assert!(compiled.success(), "cannot compile benches/null_writer.c");
}

/// A value of collectd's network protocol: its kind (0 counter, 1 gauge,
/// 2 derive, 3 absolute) and its bits.
pub type WireValue = (u8, u64);

/// One value list in collectd's binary protocol, all parts written out
/// (`identity`: plugin, plugin instance, type, type instance).
pub fn push_value_list(
    buf: &mut Vec<u8>,
    host: &str,
    time: u64,
    identity: [&str; 4],
    values: &[WireValue],
) {
    part_str(buf, 0x0000, host);
    part_u64(buf, 0x0008, time);
    part_u64(buf, 0x0009, 10 << 30);
    for (kind, part) in [0x0002, 0x0003, 0x0004, 0x0005].into_iter().zip(identity) {
        part_str(buf, kind, part);
    }
    buf.extend_from_slice(&0x0006u16.to_be_bytes());
    buf.extend_from_slice(&((6 + 9 * values.len()) as u16).to_be_bytes());
    buf.extend_from_slice(&(values.len() as u16).to_be_bytes());
    for (kind, _) in values {
        buf.push(*kind);
    }
    for (kind, bits) in values {
        if *kind == 1 {
            // Gauges are little-endian doubles in this protocol.
            buf.extend_from_slice(&bits.to_le_bytes());
        } else {
            buf.extend_from_slice(&bits.to_be_bytes());
        }
    }
}

/// Now in collectd's time format (2^-30 s).
pub fn cdtime_now() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now.as_secs() << 30) + ((u64::from(now.subsec_nanos()) << 30) / 1_000_000_000)
}

/// Stops `child` with SIGTERM and waits for it: how long it took.
pub fn stop(child: &mut std::process::Child) -> Duration {
    let started = Instant::now();
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    started.elapsed()
}

/// The median of `values` (sorted here); 0 when empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
