//! The messages a controller publishes on `CommandTopic` (docs/COMPATIBILITY.md §4, §5),
//! parsed strictly: a task id must be a JSON integer, a timestamp ISO-8601
//! UTC, and nothing else may hide in the message.

use crate::auth::BodyKind;
use serde::Deserialize;
use serde_json::Value;
use std::time::SystemTime;

/// A well-formed request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Run `Services.<service>.commands.<command>`.
    Command {
        task_id: u64,
        timestamp: SystemTime,
        service: String,
        command: String,
        auth: Auth,
        /// Who decided it, for the host's log (central rules name their
        /// rule file and handler); not covered by the signature.
        origin: Option<String>,
        /// A central rule's decision: the host runs the command once per
        /// rule and window (covered by the signature).
        rule: Option<RuleRef>,
    },
    /// Replace collectd.conf with `config`; with `dry_run`, only check it
    /// and say what would change.
    Config {
        task_id: u64,
        timestamp: SystemTime,
        config: String,
        auth: Auth,
        dry_run: bool,
    },
    /// A request whose JSON body is the value of the field that names its
    /// kind (`{"pause": {...}}`); signed over the body as written.
    Ask {
        task_id: u64,
        timestamp: SystemTime,
        auth: Auth,
        /// The body exactly as written: the signature covers its digest.
        body: String,
        ask: Ask,
    },
}

/// The central rule a request comes from, and the window within which
/// the host runs its command once, whichever controller asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// `file::handler`.
    pub name: String,
    /// Seconds.
    pub window: u64,
}

/// Bytes of a rule name in a request.
const MAX_RULE_NAME: usize = 512;

/// What a request with a JSON body asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// Start a maintenance pause.
    Pause(crate::pause::Change),
    /// End maintenance pauses.
    Resume(crate::pause::Change),
    /// Read the history.
    History(crate::history::Query),
    /// Replace the rule files and/or config.json.
    Rules(crate::deploy::Bundle),
    /// Put the previous rule set back.
    Rollback(crate::deploy::Rollback),
}

impl Ask {
    /// The field name, which is also the kind a signature covers.
    pub fn kind(&self) -> BodyKind {
        match self {
            Ask::Pause(_) => BodyKind::Pause,
            Ask::Resume(_) => BodyKind::Resume,
            Ask::History(_) => BodyKind::History,
            Ask::Rules(_) => BodyKind::Rules,
            Ask::Rollback(_) => BodyKind::Rollback,
        }
    }

    /// What it asks for, in a history record's words.
    pub fn describe(&self) -> String {
        match self {
            Ask::Pause(c) | Ask::Resume(c) => serde_json::to_string(c).unwrap_or_default(),
            Ask::History(_) => "history".into(),
            Ask::Rules(bundle) => bundle.describe(),
            Ask::Rollback(_) => "the previous rule set".into(),
        }
    }

    fn parse(kind: BodyKind, body: &str) -> Result<Ask, String> {
        fn body_of<T: serde::de::DeserializeOwned>(
            kind: BodyKind,
            body: &str,
        ) -> Result<T, String> {
            serde_json::from_str(body).map_err(|e| format!("{kind}: {e}"))
        }
        Ok(match kind {
            BodyKind::Pause => Ask::Pause(body_of(kind, body)?),
            BodyKind::Resume => Ask::Resume(body_of(kind, body)?),
            BodyKind::History => Ask::History(body_of(kind, body)?),
            BodyKind::Rules => Ask::Rules(body_of(kind, body)?),
            BodyKind::Rollback => Ask::Rollback(body_of(kind, body)?),
        })
    }
}

/// What a signed request adds to the old format: the key's name, the
/// signature, optionally the host it was signed for; and the timestamp as
/// written (the signature covers the text, not the parsed time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Auth {
    pub key: Option<String>,
    pub signature: Option<String>,
    pub host: Option<String>,
    pub timestamp: String,
}

impl Request {
    /// What it asks for, in a history record's words.
    pub fn describe(&self) -> String {
        match self {
            Request::Command {
                service, command, ..
            } => format!("{service}/{command}"),
            Request::Config { dry_run: true, .. } => "collectd.conf (dry run)".into(),
            Request::Config { .. } => "collectd.conf".into(),
            Request::Ask { ask, .. } => ask.describe(),
        }
    }

    pub fn task_id(&self) -> u64 {
        match self {
            Request::Command { task_id, .. }
            | Request::Config { task_id, .. }
            | Request::Ask { task_id, .. } => *task_id,
        }
    }

    pub fn timestamp(&self) -> SystemTime {
        match self {
            Request::Command { timestamp, .. }
            | Request::Config { timestamp, .. }
            | Request::Ask { timestamp, .. } => *timestamp,
        }
    }

    /// The request's signature fields.
    pub fn auth(&self) -> &Auth {
        match self {
            Request::Command { auth, .. }
            | Request::Config { auth, .. }
            | Request::Ask { auth, .. } => auth,
        }
    }

    /// The request as signature checks see it.
    pub fn presented(&self) -> crate::auth::Presented<'_> {
        let auth = self.auth();
        crate::auth::Presented {
            key: auth.key.as_deref(),
            signature: auth.signature.as_deref(),
            host: auth.host.as_deref(),
            task_id: self.task_id(),
            timestamp: &auth.timestamp,
            content: match self {
                Request::Command {
                    service,
                    command,
                    rule,
                    ..
                } => crate::auth::Content::Command {
                    service,
                    command,
                    rule: rule.as_ref().map(|r| (r.name.as_str(), r.window)),
                },
                Request::Config {
                    config, dry_run, ..
                } => crate::auth::Content::Config {
                    config,
                    dry_run: *dry_run,
                },
                Request::Ask { body, ask, .. } => crate::auth::Content::Body {
                    kind: ask.kind(),
                    body,
                },
            },
        }
    }
}

/// Why a message is not a request.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Malformed {
    /// Nothing to answer: there is no task id to address a result to.
    #[error("dropped, no task_id to answer: {0}")]
    Unanswerable(String),
    /// Has a task id, so the sender gets this reason back.
    #[error("task {task_id}: {reason}")]
    Invalid { task_id: u64, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFields {
    task_id: u64,
    timestamp: String,
    service: String,
    command: String,
    // Signed requests add these (unsigned ones keep lua-collectd-monitor's
    // format).
    key: Option<String>,
    signature: Option<String>,
    host: Option<String>,
    origin: Option<String>,
    // A central rule's decision (both or neither).
    rule: Option<String>,
    window: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFields {
    task_id: u64,
    timestamp: String,
    config: String,
    key: Option<String>,
    signature: Option<String>,
    host: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Parses one payload.
pub fn parse(payload: &[u8]) -> Result<Request, Malformed> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Malformed::Unanswerable(format!("not JSON: {e}")))?;
    let Value::Object(map) = &value else {
        return Err(Malformed::Unanswerable("not a JSON object".into()));
    };
    let task_id = match map.get("task_id") {
        None => return Err(Malformed::Unanswerable("no task_id".into())),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        Some(other) => {
            return Err(Malformed::Unanswerable(format!(
                "task_id must be a non-negative JSON integer, got {other}"
            )));
        }
    };
    let invalid = |reason: String| Malformed::Invalid { task_id, reason };
    // A JSON object keeps the last of two equal keys: a signature checked
    // over one `service` must not stand for a request with another.
    crate::config::no_duplicate_keys(payload).map_err(invalid)?;
    let kinds: Vec<BodyKind> = BodyKind::ALL
        .into_iter()
        .filter(|k| map.contains_key(k.name()))
        .collect();
    if !kinds.is_empty() {
        return parse_ask(payload, task_id, &kinds).map_err(invalid);
    }
    if map.contains_key("config") {
        let f: ConfigFields = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        Ok(Request::Config {
            task_id: f.task_id,
            timestamp: parse_timestamp(&f.timestamp).map_err(invalid)?,
            config: f.config,
            auth: auth(f.key, f.signature, f.host, f.timestamp).map_err(invalid)?,
            dry_run: f.dry_run,
        })
    } else {
        let f: CommandFields = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let rule = match (f.rule, f.window) {
            (None, None) => None,
            (Some(name), Some(window)) if !name.is_empty() && name.len() <= MAX_RULE_NAME => {
                Some(RuleRef { name, window })
            }
            (Some(_), Some(_)) => {
                return Err(invalid(format!("`rule` is 1 to {MAX_RULE_NAME} bytes")));
            }
            _ => return Err(invalid("`rule` and `window` go together".into())),
        };
        Ok(Request::Command {
            rule,
            task_id: f.task_id,
            timestamp: parse_timestamp(&f.timestamp).map_err(invalid)?,
            service: f.service,
            command: f.command,
            auth: auth(f.key, f.signature, f.host, f.timestamp).map_err(invalid)?,
            origin: f.origin,
        })
    }
}

/// A request with a JSON body: exactly one kind, and besides it only the
/// fields every request has.
fn parse_ask(payload: &[u8], task_id: u64, kinds: &[BodyKind]) -> Result<Request, String> {
    use serde_json::value::RawValue;
    let [kind] = *kinds else {
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        return Err(format!(
            "one request asks for one thing, not {}",
            names.join(" and ")
        ));
    };
    let mut fields: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let body = fields
        .remove(kind.name())
        .map(|b| b.get().to_string())
        .unwrap_or_default();
    let ask = Ask::parse(kind, &body)?;
    let mut text = |name: &str| -> Result<Option<String>, String> {
        fields
            .remove(name)
            .map(|v| serde_json::from_str::<String>(v.get()).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let timestamp = text("timestamp")?.ok_or("missing field `timestamp`")?;
    let (key, signature, host) = (text("key")?, text("signature")?, text("host")?);
    fields.remove("task_id");
    if let Some(unknown) = fields.keys().next() {
        return Err(format!("unknown field `{unknown}` in a {kind} request"));
    }
    Ok(Request::Ask {
        task_id,
        timestamp: parse_timestamp(&timestamp)?,
        auth: auth(key, signature, host, timestamp)?,
        body,
        ask,
    })
}

fn auth(
    key: Option<String>,
    signature: Option<String>,
    host: Option<String>,
    timestamp: String,
) -> Result<Auth, String> {
    if key.is_some() != signature.is_some() {
        return Err("`key` and `signature` go together".into());
    }
    Ok(Auth {
        key,
        signature,
        host,
        timestamp,
    })
}

fn parse_timestamp(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text)
        .map_err(|e| format!("timestamp {text:?} is not ISO-8601 UTC (2020-11-26T00:41:19Z): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused() {
        for payload in [
            r#"{"task_id": 1, "timestamp": "2020-11-26T00:41:19Z", "service": "hello", "service": "nginx", "command": "exec"}"#,
            r#"{"task_id": 1, "task_id": 2, "timestamp": "2020-11-26T00:41:19Z", "service": "hello", "command": "exec"}"#,
            r#"{"task_id": 1, "timestamp": "2020-11-26T00:41:19Z", "config": "x", "key": "a", "key": "b"}"#,
        ] {
            let Err(Malformed::Invalid { reason, .. }) = parse(payload.as_bytes()) else {
                panic!("accepted: {payload}");
            };
            assert!(reason.contains("appears twice"), "{reason}");
        }
    }

    #[test]
    fn parses_the_seed_formats() {
        let r = parse(br#"{"task_id": 3126260400, "timestamp": "2020-11-26T00:41:19Z", "service": "hello", "command": "exec"}"#)
            .unwrap();
        assert_eq!(r.task_id(), 3126260400);
        assert!(
            matches!(r, Request::Command { ref service, ref command, .. } if service == "hello" && command == "exec")
        );
        let r = parse(
            br#"{"task_id": 1, "timestamp": "2021-01-03T04:45:09Z", "config": "LoadPlugin cpu\n"}"#,
        )
        .unwrap();
        assert!(matches!(r, Request::Config { ref config, .. } if config == "LoadPlugin cpu\n"));
    }

    #[test]
    fn a_pause_request_keeps_its_body_as_written() {
        let payload = br#"{"task_id": 5, "timestamp": "2020-11-26T00:41:19Z", "pause": {"service": "nginx",  "for": 60}}"#;
        let r = parse(payload).unwrap();
        let Request::Ask { body, ask, .. } = &r else {
            panic!("{r:?}");
        };
        assert_eq!(body, r#"{"service": "nginx",  "for": 60}"#);
        let Ask::Pause(change) = ask else {
            panic!("{ask:?}")
        };
        assert_eq!(change.service.as_deref(), Some("nginx"));
        assert_eq!(change.seconds, Some(60));
        assert_eq!(r.task_id(), 5);
        for (bad, why) in [
            (
                r#"{"task_id": 5, "timestamp": "2020-11-26T00:41:19Z", "pause": {}, "resume": {}}"#,
                "one thing",
            ),
            (
                r#"{"task_id": 5, "timestamp": "2020-11-26T00:41:19Z", "pause": {}, "service": "x"}"#,
                "unknown field `service`",
            ),
            (
                r#"{"task_id": 5, "timestamp": "2020-11-26T00:41:19Z", "pause": {"forever": true}}"#,
                "unknown field `forever`",
            ),
            (r#"{"task_id": 5, "pause": {}}"#, "timestamp"),
        ] {
            let Err(Malformed::Invalid { reason, .. }) = parse(bad.as_bytes()) else {
                panic!("accepted: {bad}");
            };
            assert!(reason.contains(why), "{bad}: {reason}");
        }
    }

    #[test]
    fn messages_without_a_usable_task_id_are_unanswerable() {
        for payload in [
            &b"garbage"[..],
            b"[1,2]",
            b"\"text\"",
            br#"{"timestamp": "2020-11-26T00:41:19Z", "service": "a", "command": "b"}"#,
            br#"{"task_id": "12", "service": "a", "command": "b"}"#,
            br#"{"task_id": 1.5, "service": "a", "command": "b"}"#,
            br#"{"task_id": -1, "service": "a", "command": "b"}"#,
        ] {
            assert!(
                matches!(parse(payload), Err(Malformed::Unanswerable(_))),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn bad_fields_are_answered_with_the_reason() {
        let e =
            parse(br#"{"task_id": 7, "timestamp": "yesterday", "service": "a", "command": "b"}"#)
                .unwrap_err();
        assert!(
            matches!(e, Malformed::Invalid { task_id: 7, ref reason } if reason.contains("ISO-8601")),
            "{e}"
        );
        let e = parse(br#"{"task_id": 7, "timestamp": "2020-11-26T00:41:19Z", "service": "a"}"#)
            .unwrap_err();
        assert!(
            matches!(e, Malformed::Invalid { ref reason, .. } if reason.contains("missing field `command`")),
            "{e}"
        );
        let e = parse(br#"{"task_id": 7, "timestamp": "2020-11-26T00:41:19Z", "service": "a", "command": "b", "shell": "rm -rf /"}"#)
            .unwrap_err();
        assert!(
            matches!(e, Malformed::Invalid { ref reason, .. } if reason.contains("unknown field `shell`")),
            "{e}"
        );
        let e = parse(
            br#"{"task_id": 7, "timestamp": "2020-11-26T00:41:19Z", "service": 1, "command": "b"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, Malformed::Invalid { .. }), "{e}");
    }
}
