//! The host's presence on the broker (`StatusTopic`): a retained message
//! saying it is online, published at every connection, and the same topic
//! marked offline by the broker (the MQTT last will) when the host goes
//! away, or by the plugin itself when collectd stops. `collectd-monitor
//! hosts` reads these to list the fleet.

use serde::{Deserialize, Serialize};

/// One host's status message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub hostname: String,
    /// `online` or `offline`.
    pub state: String,
    pub version: String,
    /// When the plugin started (online) or stopped (offline), ISO-8601 UTC.
    pub since: String,
    /// Rule files in the rule directory (online only).
    #[serde(default)]
    pub rule_files: Option<u64>,
    /// Whether a pushed collectd.conf is taken (`AllowConfigPush`).
    #[serde(default)]
    pub config_push: Option<bool>,
    /// Whether only signed requests run (`TrustedKeys`).
    #[serde(default)]
    pub signed_only: Option<bool>,
}

impl Presence {
    /// The payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// What the broker publishes if the host vanishes: offline, with no
    /// time of its own (the broker sends it when it notices).
    pub fn will(hostname: &str) -> Presence {
        Presence {
            hostname: hostname.to_string(),
            state: "offline".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            since: String::new(),
            rule_files: None,
            config_push: None,
            signed_only: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_will_reads_back_as_offline() {
        let back: Presence = serde_json::from_slice(&Presence::will("web1").to_json()).unwrap();
        assert_eq!(
            (back.hostname.as_str(), back.state.as_str()),
            ("web1", "offline")
        );
        let partial: Presence =
            serde_json::from_str(r#"{"hostname":"a","state":"online","version":"0","since":"x"}"#)
                .unwrap();
        assert_eq!(partial.rule_files, None);
    }
}
