//! What a `rules` request carries (rule files by name, config.json) and
//! the checks it passes before anything is written; the digest a host
//! announces of the set it runs. Pure.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rule files one push may carry.
pub const MAX_FILES: usize = 256;
/// Bytes of one rule file, or of config.json.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A new rule set and/or config.json. `files` replaces every rule file
/// (an empty map removes them all); absent, the rule files stay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// The new config.json, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// A rollback request's body: nothing to say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {}

/// A rule file's name as the plugin loads it: `name.lua`, letters,
/// digits, `.`, `-` and `_`, not hidden, at most 128 bytes.
pub fn valid_file_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".lua")
        && name.len() > ".lua".len()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Bundle {
    /// Why it cannot be installed, before anything is written.
    pub fn check(&self) -> Result<(), String> {
        if self.files.is_none() && self.config.is_none() {
            return Err("a rules request carries `files`, `config` or both".into());
        }
        if let Some(files) = &self.files {
            if files.len() > MAX_FILES {
                return Err(format!("{} rule files: at most {MAX_FILES}", files.len()));
            }
            for (name, text) in files {
                if !valid_file_name(name) {
                    return Err(format!(
                        "{name:?} is not a rule file name (name.lua: letters, digits, '.', '-', '_')"
                    ));
                }
                if text.len() > MAX_FILE_BYTES {
                    return Err(format!("{name}: larger than {MAX_FILE_BYTES} bytes"));
                }
            }
        }
        if self
            .config
            .as_ref()
            .is_some_and(|c| c.len() > MAX_FILE_BYTES)
        {
            return Err(format!("config.json: larger than {MAX_FILE_BYTES} bytes"));
        }
        Ok(())
    }

    /// In words: `3 rule files and config.json`.
    pub fn describe(&self) -> String {
        let files = self.files.as_ref().map(|f| match f.len() {
            1 => "1 rule file".to_string(),
            n => format!("{n} rule files"),
        });
        match (files, &self.config) {
            (Some(files), Some(_)) => format!("{files} and config.json"),
            (Some(files), None) => files,
            (None, _) => "config.json".into(),
        }
    }
}

/// The version of a rule set: the first 12 hex digits of a SHA-256 over
/// each file's name and content (in name order) and config.json's.
/// Hosts running the same files and config.json announce the same digest.
pub fn digest<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    config: Option<&[u8]>,
) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, content) in files {
        for part in [name.as_bytes(), content] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
    }
    if let Some(config) = config {
        context.update(b"config.json");
        context.update(&(config.len() as u64).to_be_bytes());
        context.update(config);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes_and_emptiness_are_checked() {
        for bad in [
            "../x.lua",
            ".hidden.lua",
            "x.txt",
            ".lua",
            "a b.lua",
            "x/y.lua",
        ] {
            assert!(!valid_file_name(bad), "{bad}");
        }
        assert!(valid_file_name("disk-90_v2.lua"));
        assert!(Bundle::default().check().is_err());
        let big = Bundle {
            files: Some(BTreeMap::from([(
                "a.lua".into(),
                "x".repeat(MAX_FILE_BYTES + 1),
            )])),
            config: None,
        };
        assert!(big.check().unwrap_err().contains("larger"));
        let empty = Bundle {
            files: Some(BTreeMap::new()),
            config: None,
        };
        assert!(empty.check().is_ok());
        assert_eq!(empty.describe(), "0 rule files");
    }

    #[test]
    fn the_digest_tells_sets_apart() {
        let a = digest([("a.lua", &b"x"[..])], None);
        assert_eq!(a.len(), 12);
        assert_eq!(a, digest([("a.lua", &b"x"[..])], None));
        assert_ne!(a, digest([("a.lua", &b"y"[..])], None));
        assert_ne!(a, digest([("b.lua", &b"x"[..])], None));
        assert_ne!(a, digest([("a.lua", &b"x"[..])], Some(b"{}")));
        // Names and contents cannot run into each other.
        assert_ne!(
            digest([("a.lua", &b"bc"[..])], None),
            digest([("a.luab", &b"c"[..])], None)
        );
    }
}
