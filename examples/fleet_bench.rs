//! The fleet benchmark (`scripts/bench`): a local mosquitto, and one
//! process that answers like the plugin for thousands of hosts
//! (`collectd/<host>/command` -> `collectd/<host>/result`, code 0); then
//! `collectd-monitor send-command --hosts-file` to 1 000 and 10 000 of
//! them at once. Measured: the wall time until every result is gathered,
//! the CLI's peak memory, and that nothing was lost.
//!
//! `cargo build --release --bins --example fleet_bench && target/release/examples/fleet_bench`

use collectd_monitor::mqtt::{Connection, Event, MQTT_MAX_PACKET, Packet, QoS};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Answers every command of every host until killed.
fn simulate(port: u16) {
    let connection = Connection {
        host: "127.0.0.1".into(),
        port,
        client_id: "fleet-simulator".into(),
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
    runtime.block_on(async {
        let (client, mut eventloop) = connection.client(100_000).unwrap();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .try_subscribe("collectd/+/command", QoS::AtLeastOnce)
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => println!("ready"),
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let Some(host) = topic
                        .strip_prefix("collectd/")
                        .and_then(|t| t.strip_suffix("/command"))
                    else {
                        continue;
                    };
                    let request: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    let result = serde_json::json!({
                        "task_id": request["task_id"],
                        "timestamp": "2026-11-25T00:00:00Z",
                        "message": "ok",
                        "code": 0,
                    });
                    let _ = client.try_publish(
                        format!("collectd/{host}/result"),
                        QoS::AtLeastOnce,
                        false,
                        result.to_string(),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("simulator: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, port] = args.as_slice()
        && flag == "--simulate"
    {
        simulate(port.parse().unwrap());
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        work.path().join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n"
        ),
    )
    .unwrap();
    let mut broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(work.path().join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    std::thread::sleep(Duration::from_millis(300));
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
