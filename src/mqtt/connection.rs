//! How to reach the broker, shared by the plugin's session, the config
//! replacement helper and the `send-command` tool so all speak to the
//! broker the same way: MQTT 5, which lets a client tell the broker the
//! largest packet it accepts (the broker then drops a larger message
//! instead of delivering it, so it is never read into memory here).

use super::tls::{TlsSettings, client_config};
pub use rumqttc::Outgoing;
pub use rumqttc::v5::mqttbytes::QoS;
pub use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, Publish, SubscribeReasonCode};
pub use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::{NetworkOptions, Transport};
use std::time::Duration;

/// The largest packet MQTT can carry (its variable-length header's limit).
pub const MQTT_MAX_PACKET: u32 = 268_435_455;

/// Room for what a PUBLISH carries besides its payload: fixed header,
/// topic (at most 65 535 bytes), packet id and properties.
pub const PUBLISH_OVERHEAD: u32 = 70 * 1024;

/// The QoS of a configured level (0, 1 or 2; a larger one is 2).
pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Publishes in flight at once (QoS 1/2, awaiting their PUBACK/PUBCOMP).
/// rumqttc's MQTT 5 client sizes its table by this and would otherwise
/// take 65 535 slots (14 MB written at start: 9 ms on every
/// `send-command`); 100 is its MQTT 3.1.1 client's default, enough for
/// a 10 000-command burst.
const MAX_INFLIGHT: u16 = 100;

/// A session that outlives its connection (MQTT 5's session expiry in
/// seconds: this value means never, as a persistent 3.1.1 session).
const SESSION_NEVER_EXPIRES: u32 = u32::MAX;

/// Everything needed to open an MQTT connection. Serializable so the
/// config-replacement helper reaches the broker exactly as the plugin does.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    pub tls: Option<TlsSettings>,
    pub keep_alive: Duration,
    pub clean_session: bool,
    /// Acknowledge incoming messages only when told to (`AsyncClient::ack`),
    /// so a command is acknowledged after it is journaled, not on receipt.
    pub manual_acks: bool,
    /// The largest packet this client accepts, announced to the broker in
    /// CONNECT: the broker drops a larger message for this client, and
    /// one that arrives anyway ends the connection before it is read.
    pub max_packet: u32,
    /// `(topic, payload)` the broker publishes, retained, when this client
    /// goes away without a clean disconnect (the host's presence).
    pub last_will: Option<(String, Vec<u8>)>,
}

impl Connection {
    /// rumqttc options for this connection; fails when TLS files are unusable.
    pub fn mqtt_options(&self) -> Result<MqttOptions, String> {
        let mut o = MqttOptions::new(&self.client_id, &self.host, self.port);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        o.set_keep_alive(self.keep_alive.max(Duration::from_secs(5)))
            .set_clean_start(self.clean_session)
            .set_session_expiry_interval((!self.clean_session).then_some(SESSION_NEVER_EXPIRES))
            .set_manual_acks(self.manual_acks)
            .set_outgoing_inflight_upper_limit(MAX_INFLIGHT)
            .set_max_packet_size(Some(self.max_packet.clamp(1024, MQTT_MAX_PACKET)))
            .set_network_options(network);
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user, password);
        }
        if let Some((topic, payload)) = &self.last_will {
            o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                topic,
                payload.clone(),
                QoS::AtLeastOnce,
                true,
                None,
            ));
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(client_config(tls)?));
        }
        Ok(o)
    }
}

impl Connection {
    /// A client and its event loop. Nagle's algorithm is off: MQTT packets
    /// are small and each one waits for an answer, and with it on every
    /// command round trip took 40-90 ms longer (delayed ACKs), even on
    /// loopback.
    pub fn client(&self, capacity: usize) -> Result<(AsyncClient, EventLoop), String> {
        Ok(AsyncClient::new(self.mqtt_options()?, capacity))
    }
}

/// Splits `host`, `host:port` or `[v6]:port`; the port defaults to 1883, or
/// 8883 with TLS.
pub fn parse_host(text: &str, tls: bool) -> Result<(String, u16), String> {
    let default_port = if tls { 8883 } else { 1883 };
    let bad = || format!("Host {text:?} is not `host` or `host:port`");
    if text.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), port.parse().map_err(|_| bad())?)),
            None if after.is_empty() => Ok((host.to_string(), default_port)),
            None => Err(bad()),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Ok((host.to_string(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Err(bad()),
        None => Ok((text.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_default_ports() {
        assert_eq!(parse_host("broker", false), Ok(("broker".into(), 1883)));
        assert_eq!(parse_host("broker", true), Ok(("broker".into(), 8883)));
        assert_eq!(parse_host("broker:1999", true), Ok(("broker".into(), 1999)));
        assert_eq!(parse_host("[::1]:1999", false), Ok(("::1".into(), 1999)));
        assert_eq!(parse_host("[::1]", false), Ok(("::1".into(), 1883)));
        assert!(parse_host("broker:port", false).is_err());
        assert!(parse_host("", false).is_err());
        assert!(parse_host("a:b:c", false).is_err());
    }
}
