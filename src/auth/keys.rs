//! Signing keys: made by `collectd-monitor keygen NAME`, kept by the
//! controller, named in each request so the host knows which public key
//! to check it with.
//!
//! Files (one line each):
//! - `NAME.key`, mode 0600: `collectd-monitor-signing-key-v1 NAME <base64 PKCS#8 v2 document>`;
//! - `NAME.pub`: `NAME ed25519 <base64 32-byte public key>`, the line a
//!   host's `TrustedKeys` takes (with the key's rights added).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::Path;

/// First word of a private key file.
const PRIVATE_TAG: &str = "collectd-monitor-signing-key-v1";

/// Largest key file read (a real one is under 200 bytes).
pub(super) const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

/// Key names go into file names, logs and the canonical form: letters,
/// digits, `.`, `_`, `-`, at most 64, not starting with a dot.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A controller's private key, with its name.
pub struct SigningKey {
    name: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.name)
    }
}

/// A new key pair named `name`: the private key file's text and the public
/// key line.
pub fn generate(name: &str) -> Result<(String, String), KeyError> {
    if !valid_key_name(name) {
        return Err(KeyError::Invalid(format!(
            "key name {name:?}: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.')"
        )));
    }
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| KeyError::Invalid("the system's random source failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
        .map_err(|e| KeyError::Invalid(format!("generated key rejected: {e}")))?;
    let private = format!(
        "{PRIVATE_TAG} {name} {}\n",
        BASE64.encode(document.as_ref())
    );
    let public = format!(
        "{name} ed25519 {}\n",
        BASE64.encode(pair.public_key().as_ref())
    );
    Ok((private, public))
}

impl SigningKey {
    /// Reads a private key file written by `keygen`.
    pub fn read(path: &Path) -> Result<SigningKey, KeyError> {
        let bytes = crate::files::read_regular(path, MAX_KEY_FILE, crate::files::Links::Follow)
            .map_err(|error| KeyError::Io {
                path: path.display().to_string(),
                error,
            })?;
        let text = String::from_utf8_lossy(&bytes);
        let invalid = |why: &str| KeyError::Invalid(format!("{}: {why}", path.display()));
        let words: Vec<&str> = text.split_whitespace().collect();
        let [tag, name, document] = words.as_slice() else {
            return Err(invalid(&format!(
                "not a signing key (expected `{PRIVATE_TAG} NAME KEY`, as keygen writes)"
            )));
        };
        if *tag != PRIVATE_TAG {
            return Err(invalid(&format!(
                "not a signing key (expected `{PRIVATE_TAG} NAME KEY`; a .pub file is the public half)"
            )));
        }
        if !valid_key_name(name) {
            return Err(invalid("the key name is not valid"));
        }
        let document = BASE64
            .decode(document)
            .map_err(|e| invalid(&format!("the key is not base64: {e}")))?;
        let pair = Ed25519KeyPair::from_pkcs8(&document)
            .map_err(|e| invalid(&format!("not an Ed25519 key: {e}")))?;
        Ok(SigningKey {
            name: name.to_string(),
            pair,
        })
    }

    /// The key in `path`, made there first (mode 0600) when there is none:
    /// a host's own key, which signs its results. `name` names a new key
    /// (a host name that is no valid key name gives `host`).
    pub fn load_or_create(path: &Path, name: &str) -> Result<SigningKey, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if !path.exists() {
            let name = if valid_key_name(name) { name } else { "host" };
            let (private, _) = generate(name)?;
            let io = |error| KeyError::Io {
                path: path.display().to_string(),
                error,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            // create_new: two starts at once make one key, and the second
            // reads it.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(private.as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        SigningKey::read(path)
    }

    /// The name requests carry in `key`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, base64 (as in the `.pub` line).
    pub fn public_base64(&self) -> String {
        BASE64.encode(self.pair.public_key().as_ref())
    }

    /// The base64 signature of `canonical`.
    pub fn sign(&self, canonical: &[u8]) -> String {
        BASE64.encode(self.pair.sign(canonical).as_ref())
    }
}

/// Writes `NAME.key` (mode 0600, never over an existing file) and
/// `NAME.pub` into `dir`; returns their paths.
pub fn write_pair(
    dir: &Path,
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let (private, public) = generate(name)?;
    let key_path = dir.join(format!("{name}.key"));
    let pub_path = dir.join(format!("{name}.pub"));
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |error| KeyError::Io { path, error }
    };
    // A directory that does not exist yet is made, private (mode 0700).
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    if pub_path.exists() {
        return Err(KeyError::Io {
            path: pub_path.display().to_string(),
            error: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), KeyError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(io(path))?;
        file.write_all(text.as_bytes()).map_err(io(path))?;
        file.sync_all().map_err(io(path))
    };
    write(&key_path, &private, 0o600)?;
    if let Err(e) = write(&pub_path, &public, 0o644) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path))
}
