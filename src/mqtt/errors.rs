//! One wording of connection errors, for the plugin's log and the
//! `send-command` tool alike: what went wrong, in the terms of the
//! setting that fixes it.

use super::connection::{ConnectReturnCode, ConnectionError, StateError};

/// What went wrong with the broker connection, for a log line or an error
/// message (the caller adds which broker).
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword) => {
            "the broker refused the login: bad user name or password (User/Password)".to_string()
        }
        ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => {
            "the broker refused the login: not authorized (check User/Password and the broker's access rules)"
                .to_string()
        }
        ConnectionError::ConnectionRefused(ConnectReturnCode::UnsupportedProtocolVersion)
        | ConnectionError::MqttState(StateError::Deserialization(_)) => {
            format!(
                "the broker's answer is not MQTT 5 ({e}); collectd-monitor needs a broker that speaks MQTT 5 (mosquitto 1.6 or later, EMQX, HiveMQ and VerneMQ do)"
            )
        }
        ConnectionError::ConnectionRefused(other) => {
            format!("the broker refused the connection: {other:?}")
        }
        ConnectionError::MqttState(StateError::IncomingPacketTooLarge { pkt_size, max }) => {
            format!(
                "the broker sent a {pkt_size}-byte packet although this client accepts at most {max} bytes (MaxPayloadBytes and room for the topic); a broker that ignores MQTT 5's Maximum Packet Size sends it again at every connection: set the broker's message_size_limit"
            )
        }
        ConnectionError::Tls(e) => format!("TLS handshake failed: {e}"),
        other => other.to_string(),
    }
}

/// Whether retrying alone cannot fix `e` (credentials, TLS, a broker that
/// does not fit): worth an error, where a broker that is away is a warning.
pub fn needs_operator(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::ConnectionRefused(_)
            | ConnectionError::Tls(_)
            | ConnectionError::MqttState(
                StateError::IncomingPacketTooLarge { .. } | StateError::Deserialization(_)
            )
    )
}
