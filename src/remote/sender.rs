//! The controller's side, for `collectd-monitor send-command`: publish a
//! request with a fresh task id and wait for the result carrying the same
//! id, ignoring every other result on the topic.

use crate::auth::SignedResult;
use crate::mqtt::{Connection, Event, Packet, QoS, SubscribeReasonCode, describe, disconnect};
use crate::task::{TaskResult, iso8601};
use std::time::{Duration, SystemTime};

/// Where to send and how long to wait.
#[derive(Clone, Debug)]
pub struct SendOptions {
    pub connection: Connection,
    pub topic: String,
    pub result_topic: String,
    pub qos: QoS,
    pub timeout: Duration,
}

/// A task id unlikely to collide with any other sender's, and exact in a
/// JSON double (below 2^53) for controllers written in JavaScript.
pub fn new_task_id() -> u64 {
    fastrand::u64(1..(1u64 << 53))
}

/// The command message of docs/COMPATIBILITY.md §4, stamped now.
pub fn command_message(task_id: u64, service: &str, command: &str) -> Vec<u8> {
    serde_json::json!({
        "task_id": task_id,
        "timestamp": iso8601(SystemTime::now()),
        "service": service,
        "command": command,
    })
    .to_string()
    .into_bytes()
}

/// The config message of docs/COMPATIBILITY.md §5, stamped now; with
/// `dry_run` the host only checks it and says what would change.
pub fn config_message(task_id: u64, config: &str, dry_run: bool) -> Vec<u8> {
    let mut message = serde_json::json!({
        "task_id": task_id,
        "timestamp": iso8601(SystemTime::now()),
        "config": config,
    });
    if dry_run {
        message["dry_run"] = true.into();
    }
    message.to_string().into_bytes()
}

/// A request whose body is `body` under the field `kind` (`pause`,
/// `resume`, `rules`, `rollback`, `history`).
pub fn ask_message(task_id: u64, kind: crate::auth::BodyKind, body: serde_json::Value) -> Vec<u8> {
    let mut message = serde_json::json!({
        "task_id": task_id,
        "timestamp": iso8601(SystemTime::now()),
    });
    message[kind.name()] = body;
    message.to_string().into_bytes()
}

/// `payload` (a request built above) signed with `key` for the host whose
/// collectd `Hostname` is `host`: it gains `key`, `host` and `signature`.
pub fn sign(payload: &[u8], key: &crate::auth::SigningKey, host: &str) -> Result<Vec<u8>, String> {
    use crate::auth::Signable;
    let mut message: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(payload).map_err(|e| format!("not a request: {e}"))?;
    // Written compactly, as it goes out: a body is signed as written.
    let compact = serde_json::Value::Object(message.clone()).to_string();
    let request = super::parse(compact.as_bytes()).map_err(|e| format!("not a request: {e}"))?;
    let presented = request.presented();
    let signable = Signable {
        key: key.name(),
        host,
        task_id: presented.task_id,
        timestamp: presented.timestamp,
        content: presented.content,
    };
    let signature = key.sign(&signable.canonical()?);
    message.insert("key".into(), key.name().into());
    message.insert("host".into(), host.into());
    message.insert("signature".into(), signature.into());
    Ok(serde_json::Value::Object(message).to_string().into_bytes())
}

/// MQTT 5's message expiry for a request: a broker that has not delivered
/// it within the sender's timeout (the host offline, its session kept)
/// discards it, so "timed out" cannot turn into a run long after the
/// sender gave up. Brokers count whole seconds and expire a message up to
/// one second late: the interval is the timeout less two seconds (at least
/// one), so the message is gone by the time the sender says "timed out".
pub fn expiring(timeout: Duration) -> rumqttc::v5::mqttbytes::v5::PublishProperties {
    let seconds = timeout.as_secs().saturating_sub(2).max(1);
    rumqttc::v5::mqttbytes::v5::PublishProperties {
        message_expiry_interval: Some(u32::try_from(seconds).unwrap_or(u32::MAX)),
        ..Default::default()
    }
}

/// Whether the broker refused a subscription of this SUBACK.
fn refused(ack: &rumqttc::v5::mqttbytes::v5::SubAck) -> bool {
    ack.return_codes
        .iter()
        .any(|c| !matches!(c, SubscribeReasonCode::Success(_)))
}

/// Publishes `payload` once subscribed to the result topic, and returns the
/// result whose task id is `task_id`.
pub async fn send(
    options: &SendOptions,
    task_id: u64,
    payload: Vec<u8>,
) -> Result<TaskResult, String> {
    let (client, mut eventloop) = options.connection.client(16)?;
    let broker = format!("{}:{}", options.connection.host, options.connection.port);
    let exchange = async {
        let mut payload = Some(payload);
        loop {
            let event = eventloop
                .poll()
                .await
                .map_err(|e| format!("broker {broker}: {}", describe(&e)))?;
            match event {
                Event::Incoming(Packet::ConnAck(_)) => {
                    client
                        .try_subscribe(&options.result_topic, options.qos)
                        .map_err(|e| format!("subscribe: {e}"))?;
                }
                Event::Incoming(Packet::SubAck(ack)) => {
                    if refused(&ack) {
                        return Err(format!(
                            "the broker refused the subscription to {}",
                            options.result_topic
                        ));
                    }
                    if let Some(p) = payload.take() {
                        client
                            .try_publish_with_properties(
                                &options.topic,
                                options.qos,
                                false,
                                p,
                                expiring(options.timeout),
                            )
                            .map_err(|e| format!("publish: {e}"))?;
                    }
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == options.result_topic => {
                    match serde_json::from_slice::<TaskResult>(&p.payload) {
                        Ok(result) if result.task_id == task_id => return Ok(result),
                        _ => {} // someone else's result, or not a result
                    }
                }
                _ => {}
            }
        }
    };
    let outcome = match tokio::time::timeout(options.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no result for task {task_id} on {} within {} s",
            options.result_topic,
            options.timeout.as_secs_f64()
        )),
    };
    disconnect(&client, &mut eventloop, Duration::from_millis(500)).await;
    outcome
}

/// The fleet's presence: subscribes to `filter` (`collectd/+/status`) and
/// gathers the retained status messages the broker sends, until none has
/// come for `quiet` (or `limit` passed); by the host name each message's
/// topic gives (see `presence::status_host`).
pub async fn gather_presence(
    connection: &Connection,
    filter: &str,
    quiet: Duration,
    limit: Duration,
) -> Result<Fleet, String> {
    let (client, mut eventloop) = connection.client(16)?;
    let broker = format!("{}:{}", connection.host, connection.port);
    let mut hosts = std::collections::BTreeMap::new();
    let mut ignored = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut subscribed = false;
    let outcome = loop {
        // Once subscribed, a pause of `quiet` ends the gathering.
        let wait = if subscribed {
            quiet.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        let event = match tokio::time::timeout(wait, eventloop.poll()).await {
            Err(_) if subscribed => break Ok(()),
            Err(_) => {
                break Err(format!(
                    "broker {broker}: no subscription within {} s",
                    limit.as_secs_f64()
                ));
            }
            Ok(Err(e)) => break Err(format!("broker {broker}: {}", describe(&e))),
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                    break Err(format!("subscribe: {e}"));
                }
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if refused(&ack) {
                    break Err(format!("the broker refused the subscription to {filter}"));
                }
                subscribed = true;
            }
            Event::Incoming(Packet::Publish(p)) => {
                // A message that is not a status is not a host.
                let Ok(status) = serde_json::from_slice::<super::presence::Presence>(&p.payload)
                else {
                    continue;
                };
                let topic = String::from_utf8_lossy(&p.topic);
                match super::presence::status_host(filter, &topic, &status) {
                    Ok(host) => {
                        hosts.insert(host, status);
                    }
                    Err(why) => ignored.push(format!("{topic}: {why}")),
                }
            }
            _ => {}
        }
    };
    disconnect(&client, &mut eventloop, Duration::from_millis(500)).await;
    outcome.map(|()| Fleet { hosts, ignored })
}

/// What [`gather_presence`] found.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Each host's status, by the host name its topic gives.
    pub hosts: std::collections::BTreeMap<String, super::presence::Presence>,
    /// Status messages not taken, each with its topic and why (untrusted
    /// text: escape it before printing).
    pub ignored: Vec<String>,
}

/// Where a fan-out goes: the topics as templates with `%{hostname}`, and
/// how to wait.
#[derive(Clone, Debug)]
pub struct FanoutTopics {
    pub connection: Connection,
    /// `collectd/%{hostname}/command`.
    pub command: String,
    /// `collectd/%{hostname}/result`.
    pub result: String,
    pub qos: QoS,
    /// The hosts' result keys (`--host-keys`): when set, a result counts
    /// only with its host's valid signature.
    pub host_keys: Option<std::sync::Arc<crate::auth::TrustedKeys>>,
}

/// The result filters to subscribe: one wildcard when `%{hostname}` is a
/// whole level of the template, else each host's own topic.
fn result_filters(template: &str, hosts: &[String]) -> Vec<String> {
    let whole_level = template
        .split('/')
        .all(|level| level == "%{hostname}" || !level.contains("%{hostname}"));
    if whole_level {
        vec![template.replace("%{hostname}", "+")]
    } else {
        hosts
            .iter()
            .map(|h| template.replace("%{hostname}", h))
            .collect()
    }
}

/// The host and result `p` carries, when it answers one of `tasks` on its
/// host's own result topic (which the broker lets only that host write: a
/// client allowed one result topic cannot answer for the fleet), signed by
/// the host when its key is known.
fn proven_result(
    topics: &FanoutTopics,
    tasks: &std::collections::HashMap<u64, String>,
    p: &crate::mqtt::Publish,
) -> Option<(String, crate::task::TaskResult)> {
    let signed = serde_json::from_slice::<SignedResult>(&p.payload).ok()?;
    let host = tasks.get(&signed.result.task_id)?;
    if p.topic != topics.result.replace("%{hostname}", host).as_bytes() {
        return None;
    }
    if let Some(keys) = &topics.host_keys
        && !keys
            .keys
            .get(host)
            .is_some_and(|k| signed.signed_by(host, &k.public))
    {
        eprintln!(
            "warning: a result for {host} (task {}) without {host}'s signature is ignored",
            signed.result.task_id
        );
        return None;
    }
    Some((host.clone(), signed.result))
}

/// Sends one request to many hosts as `fanout` decides (concurrency,
/// error budget, per-host timeout) over one connection, and gathers their
/// results by task id. `request(host, task_id)` builds each host's
/// payload (signed for it, when asked); `progress` hears the counts as
/// they change.
pub async fn fan_out(
    topics: &FanoutTopics,
    hosts: &[String],
    mut fanout: super::fanout::Fanout,
    request: impl Fn(&str, u64) -> Result<Vec<u8>, String>,
    mut progress: impl FnMut((usize, usize, usize, usize)),
) -> Result<std::collections::BTreeMap<String, super::fanout::HostOutcome>, String> {
    use std::collections::HashMap;
    // Room for every request at once: a full queue never refuses one.
    let (client, mut eventloop) = topics.connection.client(hosts.len() + 64)?;
    let broker = format!("{}:{}", topics.connection.host, topics.connection.port);
    let mut tasks: HashMap<u64, String> = HashMap::new();
    let mut subscribed = false;
    let outcome = loop {
        let now = std::time::Instant::now();
        fanout.tick(now);
        if subscribed {
            while let Some(host) = fanout.next(now) {
                let task_id = new_task_id();
                let payload = request(&host, task_id)?;
                let topic = topics.command.replace("%{hostname}", &host);
                client
                    .try_publish_with_properties(
                        &topic,
                        topics.qos,
                        false,
                        payload,
                        expiring(fanout.timeout()),
                    )
                    .map_err(|e| format!("publish to {topic}: {e}"))?;
                tasks.insert(task_id, host);
            }
            progress(fanout.counts());
            if fanout.finished() {
                break Ok(());
            }
        }
        let wait = fanout
            .next_deadline()
            .map_or(Duration::from_millis(200), |d| {
                d.saturating_duration_since(now)
                    .min(Duration::from_millis(200))
            });
        let event = match tokio::time::timeout(wait, eventloop.poll()).await {
            Err(_) => continue,
            Ok(Err(e)) => break Err(format!("broker {broker}: {}", describe(&e))),
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                let filters = result_filters(&topics.result, hosts)
                    .into_iter()
                    .map(|f| rumqttc::v5::mqttbytes::v5::Filter::new(f, topics.qos));
                if let Err(e) = client.try_subscribe_many(filters) {
                    break Err(format!("subscribe: {e}"));
                }
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if refused(&ack) {
                    break Err(format!(
                        "the broker refused the subscription to {}",
                        topics.result
                    ));
                }
                subscribed = true;
            }
            Event::Incoming(Packet::Publish(p)) => {
                if let Some((host, result)) = proven_result(topics, &tasks, &p) {
                    tasks.remove(&result.task_id);
                    fanout.result(&host, result.code, result.message);
                }
            }
            _ => {}
        }
    };
    disconnect(&client, &mut eventloop, Duration::from_millis(500)).await;
    outcome.map(|()| fanout.outcomes())
}
