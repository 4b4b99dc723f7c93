//! The bytes a signature covers. Plain text, one `name=value` line each,
//! so a controller in any language can build them (docs/security.md gives the
//! exact form and a test vector):
//!
//! ```text
//! collectd-monitor-request-v1
//! key=<key name>
//! host=<the target's collectd Hostname>
//! task_id=<decimal>
//! timestamp=<the message's timestamp, as written>
//! kind=command
//! service=<service>
//! command=<command>
//! ```
//!
//! A central rule's request adds `rule=<file>::<handler>` and
//! `window=<seconds>` after the command (the host runs a command once per
//! rule and window, whichever controller asks).
//!
//! Or, for a collectd.conf push, `kind=config` and
//! `config_sha256=<lowercase hex SHA-256 of the config text>` in place of
//! the last two lines. The kinds with a JSON body (`pause`, `resume`,
//! `rules`, `rollback`, `history`) end with `kind=<kind>` and
//! `body_sha256=<SHA-256 of the body's JSON text, exactly as written in the
//! message>`. Every line ends with `\n`; a value with a line break cannot
//! be signed (it could forge a line).

/// What a request asks for, as the signature covers it.
#[derive(Clone, Debug, PartialEq)]
pub enum Content<'a> {
    Command {
        service: &'a str,
        command: &'a str,
        /// A central rule's decision: the rule (`file::handler`) and its
        /// window in seconds.
        rule: Option<(&'a str, u64)>,
    },
    /// A collectd.conf push; `dry_run`: check it and say what would
    /// change, apply nothing (signed as its own kind, so a signed dry run
    /// cannot be replayed as a push).
    Config { config: &'a str, dry_run: bool },
    /// A request of `kind` whose JSON body (the value of the field named
    /// `kind`) is `body`, as written in the message.
    Body {
        kind: super::BodyKind,
        body: &'a str,
    },
}

/// Everything a signature binds.
#[derive(Clone, Debug, PartialEq)]
pub struct Signable<'a> {
    pub key: &'a str,
    pub host: &'a str,
    pub task_id: u64,
    pub timestamp: &'a str,
    pub content: Content<'a>,
}

/// First line of the canonical form; a later version changes it.
const VERSION: &str = "collectd-monitor-request-v1";

impl Signable<'_> {
    /// The canonical bytes, or which field cannot be signed.
    pub fn canonical(&self) -> Result<Vec<u8>, String> {
        let task_id = self.task_id.to_string();
        let window;
        let digest;
        let mut fields: Vec<(&str, &str)> = vec![
            ("key", self.key),
            ("host", self.host),
            ("task_id", &task_id),
            ("timestamp", self.timestamp),
        ];
        match &self.content {
            Content::Command {
                service,
                command,
                rule,
            } => {
                fields.extend([
                    ("kind", "command"),
                    ("service", service),
                    ("command", command),
                ]);
                if let Some((name, seconds)) = rule {
                    window = seconds.to_string();
                    fields.extend([("rule", *name), ("window", window.as_str())]);
                }
            }
            Content::Config { config, dry_run } => {
                digest = sha256_hex(config.as_bytes());
                let kind = if *dry_run { "config-dry-run" } else { "config" };
                fields.extend([("kind", kind), ("config_sha256", digest.as_str())]);
            }
            Content::Body { kind, body } => {
                digest = sha256_hex(body.as_bytes());
                fields.extend([("kind", kind.name()), ("body_sha256", digest.as_str())]);
            }
        }
        let mut out = format!("{VERSION}\n");
        for (name, value) in fields {
            if value.contains(['\n', '\r']) {
                return Err(format!(
                    "the {name} contains a line break and cannot be signed"
                ));
            }
            out.push_str(&format!("{name}={value}\n"));
        }
        Ok(out.into_bytes())
    }
}

/// Lowercase hex SHA-256.
pub(super) fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_is_the_documented_text() {
        let s = Signable {
            key: "ops",
            host: "web1",
            task_id: 42,
            timestamp: "2026-11-25T12:00:00Z",
            content: Content::Command {
                service: "nginx",
                command: "restart",
                rule: None,
            },
        };
        assert_eq!(
            String::from_utf8(s.canonical().unwrap()).unwrap(),
            "collectd-monitor-request-v1\nkey=ops\nhost=web1\ntask_id=42\ntimestamp=2026-11-25T12:00:00Z\nkind=command\nservice=nginx\ncommand=restart\n"
        );
        let c = Signable {
            content: Content::Config {
                config: "abc",
                dry_run: false,
            },
            ..s.clone()
        };
        assert!(
            String::from_utf8(c.canonical().unwrap())
                .unwrap()
                .ends_with("kind=config\nconfig_sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n")
        );
        // A signed dry run is another kind: it cannot pass for a push.
        let dry = Signable {
            content: Content::Config {
                config: "abc",
                dry_run: true,
            },
            ..s.clone()
        };
        assert!(
            String::from_utf8(dry.canonical().unwrap())
                .unwrap()
                .contains("\nkind=config-dry-run\n")
        );
        let pause = Signable {
            content: Content::Body {
                kind: super::super::BodyKind::Pause,
                body: "abc",
            },
            ..s.clone()
        };
        assert!(
            String::from_utf8(pause.canonical().unwrap())
                .unwrap()
                .ends_with("kind=pause\nbody_sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n")
        );
        let forged = Signable {
            content: Content::Command {
                service: "nginx\ncommand=stop",
                command: "restart",
                rule: None,
            },
            ..s.clone()
        };
        assert!(forged.canonical().unwrap_err().contains("service"));
        let central = Signable {
            content: Content::Command {
                service: "nginx",
                command: "restart",
                rule: Some(("web.lua::down", 300)),
            },
            ..s
        };
        assert!(
            String::from_utf8(central.canonical().unwrap())
                .unwrap()
                .ends_with(
                    "kind=command\nservice=nginx\ncommand=restart\nrule=web.lua::down\nwindow=300\n"
                )
        );
    }
}
