//! Publishing with the broker's confirmation, and leaving cleanly: for
//! the short-lived clients (the config-replacement helper, `send-command`).

use super::connection::{AsyncClient, Connection, Event, EventLoop, Outgoing, Packet, QoS};
use std::time::Duration;

/// Publishes one message and waits until the broker has it (PUBACK or
/// PUBCOMP for QoS 1 and 2, the write for QoS 0). Used by the
/// config-replacement helper, which must report even when the new config
/// no longer loads the plugin.
pub async fn publish_confirmed(
    connection: &Connection,
    topic: &str,
    qos: QoS,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let (client, mut eventloop) = connection.client(16)?;
    let broker = format!("{}:{}", connection.host, connection.port);
    let exchange = async {
        let mut payload = Some(payload);
        loop {
            match eventloop
                .poll()
                .await
                .map_err(|e| format!("broker {broker}: {}", super::describe(&e)))?
            {
                Event::Incoming(Packet::ConnAck(_)) => {
                    if let Some(p) = payload.take() {
                        client
                            .try_publish(topic, qos, false, p)
                            .map_err(|e| format!("publish: {e}"))?;
                    }
                }
                Event::Outgoing(Outgoing::Publish(_)) if qos == QoS::AtMostOnce => {
                    return Ok(());
                }
                Event::Incoming(Packet::PubAck(_)) if qos == QoS::AtLeastOnce => return Ok(()),
                Event::Incoming(Packet::PubComp(_)) if qos == QoS::ExactlyOnce => return Ok(()),
                _ => {}
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "broker {broker}: no acknowledgement within {} s",
                timeout.as_secs()
            ))
        });
    disconnect(&client, &mut eventloop, Duration::from_millis(500)).await;
    outcome
}

/// Sends DISCONNECT and polls until it is written, at most `grace`.
pub async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop, grace: Duration) {
    if client.try_disconnect().is_err() {
        return;
    }
    let _ = tokio::time::timeout(grace, async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}
