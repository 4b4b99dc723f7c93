//! The remote path measured end to end (`scripts/bench`): a local mosquitto
//! and a real collectd with our plugin, in the same run:
//!
//! - raw broker round trip: publish on a topic and receive it back (QoS 1);
//! - command round trip: publish a command, receive its result (the plugin
//!   parses, journals, runs `/bin/echo` and publishes);
//! - throughput: a burst of commands (16 different ones, 16 allowed at
//!   once) at QoS 1, results counted by code (lost, run, refused as busy or
//!   already running);
//! - the command-line tools, process start included: `collectd-monitor
//!   send-command` against `mosquitto_pub` publishing one message.

#[path = "common/mod.rs"]
mod common;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemons {
    children: Vec<Child>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(work: &Path, port: u16) -> Daemons {
    let release = common::release();
    std::fs::write(
        work.join("mosquitto.conf"),
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 100000\nmax_inflight_messages 1000\n"),
    )
    .unwrap();
    let broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(work.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    std::thread::sleep(Duration::from_millis(300));
    let plugins = common::install_plugin(work);
    let json = work.join("config.json");
    std::fs::write(
        &json,
        format!(
            r#"{{"Host": "127.0.0.1:{port}", "QoS": 1, "CommandTopic": "bench/cmd",
                "CommandResultTopic": "bench/result", "StateDir": "{state}",
                "HelperPath": "{helper}",
                "MaxConcurrentCommands": 16,
                "Services": {{"hello": {{"commands": {{{burst_commands}"exec": "/bin/echo hi"}}}}}}}}"#,
            burst_commands = (0..16).map(|i| format!(r#""c{i}": "/bin/echo {i}", "#)).collect::<String>(),
            state = work.join("state").display(),
            helper = release.join("collectd-monitor").display()
        ),
    )
    .unwrap();
    let log = work.join("collectd.log");
    std::fs::write(
        work.join("collectd.conf"),
        format!(
            r#"Hostname "benchhost"
FQDNLookup false
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{log}"
</Plugin>
PluginDir "{plugins}"
LoadPlugin monitor
<Plugin monitor>
  MonitorConfigPath "{json}"
</Plugin>
"#,
            dir = work.display(),
            log = log.display(),
            plugins = plugins.display(),
            json = json.display()
        ),
    )
    .unwrap();
    let collectd = Command::new("/usr/sbin/collectd")
        .args(["-f", "-C"])
        .arg(work.join("collectd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collectd");
    let daemons = Daemons {
        children: vec![collectd, broker],
    };
    common::wait_for_line(&log, "remote: listening for commands");
    daemons
}

/// A client that forwards every received publish as `(topic, payload)`.
async fn client(
    port: u16,
    id: &str,
    subscribe: &str,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(_) => {}
                Err(e) => panic!("MQTT: {e}"),
            }
        }
    });
    client.subscribe(subscribe, QoS::AtLeastOnce).await.unwrap();
    subscribed.recv().await.unwrap();
    (client, rx)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "| {name} | {:.2} ms | {:.2} ms | {} |",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

fn command(task_id: u64) -> Vec<u8> {
    collectd_monitor::remote::sender::command_message(task_id, "hello", "exec")
}

/// One of 16 commands, so a burst is not refused as "already running".
fn burst_command(task_id: u64) -> Vec<u8> {
    let name = format!("c{}", task_id % 16);
    collectd_monitor::remote::sender::command_message(task_id, "hello", &name)
}

fn task_id_and_code(payload: &[u8]) -> (u64, i64) {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    (v["task_id"].as_u64().unwrap(), v["code"].as_i64().unwrap())
}

fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(200, |v| v.parse().expect("--rounds N"));
    let burst: u64 = std::env::args()
        .skip_while(|a| a != "--burst")
        .nth(1)
        .map_or(2000, |v| v.parse().expect("--burst N"));
    let work = tempfile::Builder::new()
        .prefix("cm-remote")
        .tempdir()
        .unwrap();
    let port = free_port();
    let _daemons = start(work.path(), port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| round trip | p50 | p99 | samples |");
    println!("|---|---|---|---|");
    runtime.block_on(async {
        let (raw, mut echoes) = client(port, "bench-raw", "bench/echo").await;
        let mut samples = Vec::new();
        for i in 0..rounds {
            let t = Instant::now();
            raw.publish("bench/echo", QoS::AtLeastOnce, false, i.to_string()).await.unwrap();
            echoes.recv().await.unwrap();
            samples.push(t.elapsed());
        }
        report("raw broker (publish, receive back), QoS 1", samples);

        let (ctl, mut results) = client(port, "bench-ctl", "bench/result").await;
        let mut samples = Vec::new();
        for i in 0..rounds as u64 {
            let t = Instant::now();
            ctl.publish("bench/cmd", QoS::AtLeastOnce, false, command(i + 1)).await.unwrap();
            loop {
                let (_, payload) = results.recv().await.unwrap();
                if task_id_and_code(&payload).0 == i + 1 {
                    break;
                }
            }
            samples.push(t.elapsed());
        }
        report("command -> result (hello/exec = /bin/echo), QoS 1", samples);

        // A burst: every result is counted, by code.
        let first = 1_000_000;
        let started = Instant::now();
        for i in 0..burst {
            ctl.publish("bench/cmd", QoS::AtLeastOnce, false, burst_command(first + i)).await.unwrap();
        }
        let mut codes: HashMap<i64, u64> = HashMap::new();
        let mut answered = std::collections::HashSet::new();
        let mut duplicates = 0u64;
        let mut received = 0;
        // Until every task is answered, then 3 s more for late duplicates.
        while received < burst {
            let wait = if (answered.len() as u64) < burst { 30 } else { 3 };
            match tokio::time::timeout(Duration::from_secs(wait), results.recv()).await {
                Ok(Some((_, payload))) => {
                    let (id, code) = task_id_and_code(&payload);
                    if id >= first {
                        if answered.insert(id) {
                            received += 1;
                            *codes.entry(code).or_default() += 1;
                        } else {
                            duplicates += 1;
                        }
                    }
                }
                _ => break,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!();
        println!(
            "burst of {burst} commands at QoS 1: {received} answered in {elapsed:.2} s ({:.0} results/s), {} lost, {duplicates} answered twice; by code: {}",
            received as f64 / elapsed,
            burst - received,
            {
                let mut c: Vec<_> = codes.iter().collect();
                c.sort();
                c.iter()
                    .map(|(code, n)| format!("{code:#x}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        // The session is still live after the burst.
        let t = Instant::now();
        ctl.publish("bench/cmd", QoS::AtLeastOnce, false, burst_command(first + burst)).await.unwrap();
        let live = loop {
            match tokio::time::timeout(Duration::from_secs(30), results.recv()).await {
                Ok(Some((_, payload))) if task_id_and_code(&payload).0 == first + burst => break true,
                Ok(Some(_)) => continue,
                _ => break false,
            }
        };
        println!(
            "after the burst: one more command {} ({:.1} ms)",
            if live { "answered" } else { "NOT answered within 30 s" },
            t.elapsed().as_secs_f64() * 1000.0
        );
    });

    // The tools, process start included.
    let program = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/collectd-monitor");
    let timed = |cmd: &mut Command| {
        let t = Instant::now();
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    let host = format!("127.0.0.1:{port}");
    let tools = (rounds / 4).max(10);
    let pubs = (0..tools)
        .map(|_| {
            timed(Command::new("mosquitto_pub").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-t",
                "bench/echo",
                "-m",
                "x",
            ]))
        })
        .collect();
    let sends = (0..tools)
        .map(|_| {
            timed(Command::new(&program).args([
                "send-command",
                "hello",
                "exec",
                "--host",
                &host,
                "--qos",
                "1",
                "--topic",
                "bench/cmd",
                "--result-topic",
                "bench/result",
            ]))
        })
        .collect();
    println!();
    println!("| tool, process start included | p50 | p99 | samples |");
    println!("|---|---|---|---|");
    report("mosquitto_pub, one message, QoS 1", pubs);
    report("collectd-monitor send-command hello exec, QoS 1", sends);
}
