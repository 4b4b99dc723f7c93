//! The keys a host trusts (`TrustedKeys`: a file, or a directory of
//! `*.pub` files), each with its rights, and the check every request goes
//! through when they are set. Default deny: a key line without rights may
//! do nothing.
//!
//! A line: `NAME ed25519 BASE64 [commands=GLOB[,GLOB...]] [config=yes|no|all]
//! [pause=yes] [rules=yes|all] [history=yes|all]`, where a glob is `service/command`
//! with `*` for any text (`hello/*`, `*/status`, `*`). `#` starts a comment.

use super::canonical::{Content, Signable};
use super::keys::{MAX_KEY_FILE, valid_key_name};
use crate::task::code;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, UnparsedPublicKey};
use std::collections::BTreeMap;
use std::path::Path;

/// Files read from a `TrustedKeys` directory at most.
const MAX_KEY_FILES: usize = 1024;
/// Largest file of hosts' result keys read: about 200 000 hosts.
pub const MAX_HOSTS_FILE: u64 = 16 * 1024 * 1024;

/// Whether a key may push collectd.conf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConfigRight {
    #[default]
    No,
    /// Within the host's push policy, keeping this plugin's own block.
    Yes,
    /// Also changing this plugin's own block (its services, keys, policy).
    All,
}

/// What a key may ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// `service/command` globs.
    pub commands: Vec<String>,
    pub config: ConfigRight,
    /// Start and end maintenance pauses (`pause`, `resume`).
    pub pause: bool,
    /// Replace the rule files (`Yes`) and also config.json (`All`: it
    /// defines the commands that run, so it is as strong as `config=all`),
    /// and roll them back.
    pub rules: ConfigRight,
    /// Read the host's history of repairs and requests: `Yes`, every
    /// record, with the outcome (a command's output) only of the commands
    /// the key may run itself; `All`, every outcome.
    pub history: ConfigRight,
}

impl Rights {
    /// Whether `service/command` is within these rights.
    pub fn allows_command(&self, service: &str, command: &str) -> bool {
        let wanted = format!("{service}/{command}");
        self.commands.iter().any(|g| glob_matches(g, &wanted))
    }

    /// For `config check`: `commands=hello/*,nginx/restart config=no`.
    pub fn describe(&self) -> String {
        let commands = if self.commands.is_empty() {
            "none".to_string()
        } else {
            self.commands.join(",")
        };
        let config = match self.config {
            ConfigRight::No => "no",
            ConfigRight::Yes => "yes",
            ConfigRight::All => "all",
        };
        let mut text = format!("commands={commands} config={config}");
        if self.pause {
            text.push_str(" pause=yes");
        }
        for (right, level) in [("rules", self.rules), ("history", self.history)] {
            match level {
                ConfigRight::No => {}
                ConfigRight::Yes => text.push_str(&format!(" {right}=yes")),
                ConfigRight::All => text.push_str(&format!(" {right}=all")),
            }
        }
        text
    }

    /// Whether a history reader with these rights sees `record`'s outcome
    /// (a command's output, a push's message): of the commands it may run
    /// itself with `history=yes`, of everything with `history=all`.
    pub fn reads_outcome_of(&self, kind: &str, command: Option<(&str, &str)>) -> bool {
        self.history == ConfigRight::All
            || (matches!(kind, "rule" | "remote" | "refused")
                && command.is_some_and(|(s, c)| self.allows_command(s, c)))
    }

    /// Whether a request of `kind` with a JSON body is within these rights.
    pub fn allows_kind(&self, kind: super::BodyKind) -> bool {
        use super::BodyKind;
        match kind {
            BodyKind::Pause | BodyKind::Resume => self.pause,
            BodyKind::Rules | BodyKind::Rollback => self.rules != ConfigRight::No,
            BodyKind::History => self.history != ConfigRight::No,
        }
    }
}

/// One trusted public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub public: Vec<u8>,
    pub rights: Rights,
    /// `file:line` it came from, for `config check`.
    pub origin: String,
}

/// Why a request is refused before anything runs: its result code and
/// the reason (which names the key, never the signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

/// The keys a host trusts, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    pub keys: BTreeMap<String, TrustedKey>,
}

impl TrustedKeys {
    /// Reads a key file, or every `*.pub` file of a directory (in name
    /// order). Any bad line is an error naming its file and line: a host
    /// must not start with fewer keys, or other rights, than written.
    pub fn load(path: &Path) -> Result<TrustedKeys, String> {
        Self::load_bounded(path, MAX_KEY_FILE)
    }

    /// The hosts' result keys (`hosts --keys`, `--host-keys`,
    /// `FleetHostKeys`): one line per host, so a file may be as large as
    /// a fleet's ([`MAX_HOSTS_FILE`]).
    pub fn load_hosts(path: &Path) -> Result<TrustedKeys, String> {
        Self::load_bounded(path, MAX_HOSTS_FILE)
    }

    fn load_bounded(path: &Path, max_file: u64) -> Result<TrustedKeys, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let files = if meta.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pub"))
                // A hidden `.x.pub` (an editor's or a copy's leftover) is
                // not a key anyone meant to trust.
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                })
                .take(MAX_KEY_FILES + 1)
                .collect();
            if files.len() > MAX_KEY_FILES {
                return Err(format!(
                    "{}: more than {MAX_KEY_FILES} key files",
                    path.display()
                ));
            }
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut trusted = TrustedKeys::default();
        for file in files {
            let bytes = crate::files::read_regular(&file, max_file, crate::files::Links::Refuse)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
            trusted.add_lines(&file.display().to_string(), text)?;
        }
        Ok(trusted)
    }

    /// Adds the keys of one file's text.
    pub fn add_lines(&mut self, file: &str, text: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let origin = format!("{file}:{}", n + 1);
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, key) = parse_line(line).map_err(|e| format!("{origin}: {e}"))?;
            if let Some(first) = self.keys.get(&name) {
                return Err(format!(
                    "{origin}: key {name} is already trusted by {}",
                    first.origin
                ));
            }
            self.keys.insert(name, TrustedKey { origin, ..key });
        }
        Ok(())
    }

    /// Checks a request for this host: signed, by a trusted key, for this
    /// host, with a good signature, within the key's rights. Returns the
    /// key's name and rights.
    pub fn authorize(
        &self,
        request: &Presented<'_>,
        hostname: &str,
    ) -> Result<(String, Rights), Refusal> {
        let refuse = |code: i64, message: String| Err(Refusal { code, message });
        let (Some(name), Some(signature)) = (request.key, request.signature) else {
            return refuse(
                code::UNSIGNED,
                "unsigned request: this host runs only requests signed with a trusted key".into(),
            );
        };
        let Some(trusted) = self.keys.get(name) else {
            return refuse(
                code::UNKNOWN_KEY,
                format!("key {name:?} is not trusted here"),
            );
        };
        if let Some(host) = request.host
            && host != hostname
        {
            return refuse(
                code::WRONG_HOST,
                format!("signed by key {name} for host {host:?}, not for {hostname}"),
            );
        }
        let signable = Signable {
            key: name,
            host: hostname,
            task_id: request.task_id,
            timestamp: request.timestamp,
            content: request.content.clone(),
        };
        let canonical = match signable.canonical() {
            Ok(c) => c,
            Err(why) => return refuse(code::BAD_SIGNATURE, format!("key {name}: {why}")),
        };
        let good = BASE64.decode(signature).is_ok_and(|sig| {
            UnparsedPublicKey::new(&ED25519, &trusted.public)
                .verify(&canonical, &sig)
                .is_ok()
        });
        if !good {
            return refuse(
                code::BAD_SIGNATURE,
                format!(
                    "the signature does not verify with key {name} for host {hostname} (altered, signed with another key, or for another host)"
                ),
            );
        }
        let (allowed, what) = match request.content {
            Content::Command {
                service, command, ..
            } => (
                trusted.rights.allows_command(service, command),
                format!("{service:?}/{command:?}"),
            ),
            Content::Config { .. } => (
                trusted.rights.config != ConfigRight::No,
                "a collectd.conf push".into(),
            ),
            Content::Body { kind, .. } => (
                trusted.rights.allows_kind(kind),
                format!("a {kind} request"),
            ),
        };
        if !allowed {
            return refuse(
                code::NOT_PERMITTED,
                format!(
                    "key {name} may not request {what} (its rights: {})",
                    trusted.rights.describe()
                ),
            );
        }
        Ok((name.to_string(), trusted.rights.clone()))
    }
}

/// A request as it arrived, with what signed requests add.
#[derive(Clone, Debug)]
pub struct Presented<'a> {
    pub key: Option<&'a str>,
    pub signature: Option<&'a str>,
    /// The host the sender says it signed for.
    pub host: Option<&'a str>,
    pub task_id: u64,
    /// As written in the message.
    pub timestamp: &'a str,
    pub content: Content<'a>,
}

fn parse_line(line: &str) -> Result<(String, TrustedKey), String> {
    let mut words = line.split_whitespace();
    let (Some(name), Some(kind), Some(key)) = (words.next(), words.next(), words.next()) else {
        return Err("expected `NAME ed25519 KEY [commands=...] [config=yes|no]`".into());
    };
    if !valid_key_name(name) {
        return Err(format!("key name {name:?} is not valid"));
    }
    if kind != "ed25519" {
        return Err(format!(
            "key type {kind:?}: only ed25519 keys are supported"
        ));
    }
    let public = BASE64
        .decode(key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| format!("key {name}: not a base64 Ed25519 public key (32 bytes)"))?;
    let mut rights = Rights::default();
    let mut given = Vec::new();
    for word in words {
        // `config=yes config=no` would otherwise mean its last word.
        let right = word.split_once('=').map_or(word, |(r, _)| r);
        if given.contains(&right) {
            return Err(format!("key {name}: {right}= is given twice"));
        }
        given.push(right);
        match word.split_once('=') {
            Some(("commands", globs)) => {
                for glob in globs.split(',').filter(|g| !g.is_empty()) {
                    if glob != "*" && !glob.contains('/') {
                        return Err(format!(
                            "key {name}: command right {glob:?} is not service/command (use `hello/*` or `*`)"
                        ));
                    }
                    rights.commands.push(glob.to_string());
                }
            }
            Some(("config", "yes")) => rights.config = ConfigRight::Yes,
            Some(("config", "all")) => rights.config = ConfigRight::All,
            Some(("config", "no")) => rights.config = ConfigRight::No,
            Some(("config", other)) => {
                return Err(format!("key {name}: config={other}: use yes, no or all"));
            }
            Some((right @ ("rules" | "history"), value)) => {
                let level = match value {
                    "yes" => ConfigRight::Yes,
                    "all" => ConfigRight::All,
                    "no" => ConfigRight::No,
                    other => {
                        return Err(format!("key {name}: {right}={other}: use yes, no or all"));
                    }
                };
                match right {
                    "rules" => rights.rules = level,
                    _ => rights.history = level,
                }
            }
            Some(("pause", value)) => {
                rights.pause = match value {
                    "yes" => true,
                    "no" => false,
                    other => return Err(format!("key {name}: pause={other}: use yes or no")),
                };
            }
            _ => {
                return Err(format!(
                    "key {name}: unknown right {word:?} (commands=..., config=yes|no|all, pause=yes, rules=yes|all or history=yes)"
                ));
            }
        }
    }
    Ok((
        name.to_string(),
        TrustedKey {
            public,
            rights,
            origin: String::new(),
        },
    ))
}

/// `*` matches any text (also `/`); everything else matches itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// The test vector of docs/security.md: the key made from the seed 00 01 .. 1f.
    fn vector_key() -> Ed25519KeyPair {
        let seed: Vec<u8> = (0u8..32).collect();
        Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
    }

    fn command<'a>(key: Option<&'a str>, signature: Option<&'a str>) -> Presented<'a> {
        Presented {
            key,
            signature,
            host: None,
            task_id: 42,
            timestamp: "2026-11-25T12:00:00Z",
            content: Content::Command {
                service: "nginx",
                command: "restart",
                rule: None,
            },
        }
    }

    fn trusted(rights: &str) -> TrustedKeys {
        let mut t = TrustedKeys::default();
        let public = BASE64.encode(vector_key().public_key().as_ref());
        t.add_lines("keys", &format!("ops ed25519 {public} {rights}\n"))
            .unwrap();
        t
    }

    #[test]
    fn a_directory_trusts_its_visible_pub_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let line = |name: &str| format!("{name} ed25519 {}\n", BASE64.encode([7u8; 32]));
        std::fs::write(dir.path().join("ops.pub"), line("ops")).unwrap();
        std::fs::write(dir.path().join(".old.pub"), line("old")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a key").unwrap();
        let keys = TrustedKeys::load(dir.path()).unwrap();
        assert_eq!(keys.keys.keys().collect::<Vec<_>>(), ["ops"]);
    }

    fn signature(host: &str, content: Content<'_>) -> String {
        let s = Signable {
            key: "ops",
            host,
            task_id: 42,
            timestamp: "2026-11-25T12:00:00Z",
            content,
        };
        BASE64.encode(vector_key().sign(&s.canonical().unwrap()).as_ref())
    }

    #[test]
    fn the_readme_test_vector_holds() {
        let public = BASE64.encode(vector_key().public_key().as_ref());
        let sig = signature(
            "web1",
            Content::Command {
                service: "nginx",
                command: "restart",
                rule: None,
            },
        );
        assert_eq!(public, "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
        assert_eq!(
            sig,
            "JDXscfaL8WXpNvRNLXqczI2aS6/8C8H/zvzg5hF3ugWaur8HbtNg0K9Dx+tzwEaVfZIO+WnzoLxCq0RH+hntCQ=="
        );
    }

    #[test]
    fn each_refusal_has_its_code_and_a_good_request_passes() {
        let nginx = Content::Command {
            service: "nginx",
            command: "restart",
            rule: None,
        };
        let good = signature("web1", nginx.clone());
        let keys = trusted("commands=nginx/*,hello/exec config=no");
        assert_eq!(
            keys.authorize(&command(Some("ops"), Some(&good)), "web1"),
            Ok(("ops".into(), keys.keys["ops"].rights.clone()))
        );
        let code = |r: Result<(String, Rights), Refusal>| r.unwrap_err().code;
        assert_eq!(
            code(keys.authorize(&command(None, None), "web1")),
            code::UNSIGNED
        );
        assert_eq!(
            code(keys.authorize(&command(Some("dev"), Some(&good)), "web1")),
            code::UNKNOWN_KEY
        );
        // Signed for web1, presented to web2 (with or without `host`).
        assert_eq!(
            code(keys.authorize(&command(Some("ops"), Some(&good)), "web2")),
            code::BAD_SIGNATURE
        );
        let claimed = Presented {
            host: Some("web1"),
            ..command(Some("ops"), Some(&good))
        };
        assert_eq!(code(keys.authorize(&claimed, "web2")), code::WRONG_HOST);
        let altered = Presented {
            task_id: 43,
            ..command(Some("ops"), Some(&good))
        };
        assert_eq!(code(keys.authorize(&altered, "web1")), code::BAD_SIGNATURE);
        assert_eq!(
            code(keys.authorize(&command(Some("ops"), Some("not base64!")), "web1")),
            code::BAD_SIGNATURE
        );
        // Within the signature, outside the rights.
        let narrow = trusted("commands=hello/*");
        assert_eq!(
            code(narrow.authorize(&command(Some("ops"), Some(&good)), "web1")),
            code::NOT_PERMITTED
        );
        let config = Content::Config {
            dry_run: false,
            config: "LoadPlugin cpu\n",
        };
        let push = Presented {
            content: config.clone(),
            ..command(Some("ops"), None)
        };
        let sig = signature("web1", config);
        let push = Presented {
            signature: Some(&sig),
            ..push
        };
        assert_eq!(code(keys.authorize(&push, "web1")), code::NOT_PERMITTED);
        assert!(trusted("config=yes").authorize(&push, "web1").is_ok());
        // A pause needs `pause=yes`; `config=all` or `commands=*` is not it.
        let pause = Content::Body {
            kind: crate::auth::BodyKind::Pause,
            body: "{}",
        };
        let sig = signature("web1", pause.clone());
        let pause = Presented {
            content: pause,
            signature: Some(&sig),
            ..command(Some("ops"), None)
        };
        for other in ["config=all commands=*", "rules=yes history=yes"] {
            assert_eq!(
                code(trusted(other).authorize(&pause, "web1")),
                code::NOT_PERMITTED
            );
        }
        assert!(trusted("pause=yes").authorize(&pause, "web1").is_ok());
        // Default deny: a key without rights may do nothing.
        assert_eq!(
            code(trusted("").authorize(&command(Some("ops"), Some(&good)), "web1")),
            code::NOT_PERMITTED
        );
    }

    #[test]
    fn key_lines_are_checked_and_globs_match_as_documented() {
        let mut t = TrustedKeys::default();
        for (line, why) in [
            ("ops rsa AAAA", "only ed25519"),
            ("ops ed25519 AAAA", "not a base64 Ed25519 public key"),
            ("../x ed25519 AAAA", "not valid"),
            ("ops", "expected"),
        ] {
            let e = t.add_lines("f", line).unwrap_err();
            assert!(e.starts_with("f:1: ") && e.contains(why), "{line}: {e}");
        }
        let public = BASE64.encode([7u8; 32]);
        for (rights, why) in [
            ("commands=hello", "not service/command"),
            ("config=maybe", "use yes, no or all"),
            ("shell=yes", "unknown right"),
            ("config=yes config=no", "config= is given twice"),
        ] {
            let e = t
                .add_lines("f", &format!("ops ed25519 {public} {rights}"))
                .unwrap_err();
            assert!(e.contains(why), "{rights}: {e}");
        }
        t.add_lines(
            "f",
            &format!("# comment\nops ed25519 {public} # trailing\n"),
        )
        .unwrap();
        let e = t
            .add_lines("g", &format!("ops ed25519 {public}"))
            .unwrap_err();
        assert!(e.contains("already trusted by f:2"), "{e}");
        for (glob, text, want) in [
            ("hello/*", "hello/exec", true),
            ("hello/*", "hellox/exec", false),
            ("*/status", "nginx/status", true),
            ("*", "any/thing", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxc", false),
            ("nginx/restart", "nginx/restart", true),
            ("nginx/restart", "nginx/restarts", false),
        ] {
            assert_eq!(glob_matches(glob, text), want, "{glob} {text}");
        }
    }
}
