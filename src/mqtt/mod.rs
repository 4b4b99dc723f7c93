//! Talking to the MQTT broker, for everything in this project that does:
//! the plugin's command session (`remote`), the config-replacement helper
//! (`reconfig`) and the `send-command` tool. One place for connection
//! settings, TLS, host parsing, the QoS mapping, publishing with the
//! broker's confirmation, and the wording of connection errors.

mod connection;
mod errors;
mod publish;
mod tls;

pub use connection::{
    AsyncClient, ConnectReturnCode, Connection, ConnectionError, Event, EventLoop, MQTT_MAX_PACKET,
    MqttOptions, Outgoing, PUBLISH_OVERHEAD, Packet, Publish, QoS, StateError, SubscribeReasonCode,
    parse_host, qos,
};
pub use errors::{describe, needs_operator};
pub use publish::{disconnect, publish_confirmed};
pub use tls::TlsSettings;
