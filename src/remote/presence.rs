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
    /// The public half of the key this host signs its results with
    /// (base64 Ed25519), for controllers to keep (`hosts --keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    /// The maintenance pauses in force (`nginx/* until ...: reason`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<String>,
    /// The same pauses as data: what a controller holds its central
    /// repairs of this host to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<crate::pause::Pause>,
    /// The digest of the rule files this host runs: hosts with the same
    /// one run the same set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<String>,
    /// The digest of its config.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_json: Option<String>,
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
            result_key: None,
            pauses: Vec::new(),
            paused: Vec::new(),
            rule_set: None,
            config_json: None,
        }
    }
}

/// Whether `name` can be a host in a topic and on a terminal: letters,
/// digits, `.`, `-` and `_`, at most 253 bytes (a DNS name). Anything else
/// (a `#`, an escape sequence) is someone's mistake or attack.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The host a status message is about, from the topic it came on: the
/// level of `topic` where `filter` has its first `+` (the broker's ACL
/// lets each host write only its own topic, not what the payload claims).
/// `None` when the filter has no `+` (then only the payload names it) or
/// the topic is shorter.
pub fn host_from_topic(filter: &str, topic: &str) -> Option<String> {
    let level = filter.split('/').position(|l| l == "+")?;
    topic.split('/').nth(level).map(str::to_string)
}

/// Which host a status message on `topic` stands for, or why it is not
/// taken: the topic's host and the payload's must agree, and be a valid
/// name.
pub fn status_host(filter: &str, topic: &str, status: &Presence) -> Result<String, String> {
    let host = host_from_topic(filter, topic).unwrap_or_else(|| status.hostname.clone());
    if !valid_host_name(&host) {
        return Err(format!("{host:?} is not a valid host name"));
    }
    if status.hostname != host {
        return Err(format!(
            "the message names {:?}, the topic {host:?}",
            status.hostname
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_comes_from_the_topic_and_must_agree_with_the_message() {
        let filter = "collectd/+/status";
        let web1 = Presence::will("web1");
        assert_eq!(
            status_host(filter, "collectd/web1/status", &web1),
            Ok("web1".into())
        );
        // Written under another host's topic, or naming another host.
        assert!(status_host(filter, "collectd/web2/status", &web1).is_err());
        for bad in ["h#1", "a\x1b[2J", "", "x y"] {
            assert!(!valid_host_name(bad), "{bad:?}");
            let status = Presence::will(bad);
            assert!(status_host("s/#", "s/x", &status).is_err(), "{bad:?}");
        }
        assert!(valid_host_name("web-1.example_2"));
        assert_eq!(host_from_topic("a/b", "a/b"), None);
    }

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
