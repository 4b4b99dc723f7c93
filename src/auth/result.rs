//! Results a host signs, so a controller can tell a result the host
//! produced from one anyone with publish rights wrote. The host's key is
//! made at its first start (`StateDir/host.key`); its public half is in
//! the host's presence (`hosts --keys` prints the lines a controller keeps
//! in the file `--host-keys` names).
//!
//! The signature covers these lines, each ending with `\n`:
//!
//! ```text
//! collectd-monitor-result-v1
//! host=<the host's collectd Hostname>
//! task_id=<decimal>
//! timestamp=<the result's timestamp, as written>
//! code=<decimal>
//! message_sha256=<lowercase hex SHA-256 of the message>
//! ```

use super::canonical::sha256_hex;
use super::keys::SigningKey;
use crate::task::TaskResult;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The host's key file, in its `StateDir`.
pub const HOST_KEY_FILE: &str = "host.key";

/// First line of the canonical form.
const VERSION: &str = "collectd-monitor-result-v1";

/// A result as a host publishes it: the fields of docs/COMPATIBILITY.md §4,
/// and, when the host has a key, its name and the signature (controllers
/// that do not know them read the four fields as before).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedResult {
    #[serde(flatten)]
    pub result: TaskResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The bytes the signature covers, or `None` when the host name or the
/// timestamp holds a line break (which could forge a line).
fn canonical(result: &TaskResult, host: &str) -> Option<Vec<u8>> {
    if host.contains(['\n', '\r']) || result.timestamp.contains(['\n', '\r']) {
        return None;
    }
    Some(
        format!(
            "{VERSION}\nhost={host}\ntask_id={}\ntimestamp={}\ncode={}\nmessage_sha256={}\n",
            result.task_id,
            result.timestamp,
            result.code,
            sha256_hex(result.message.as_bytes())
        )
        .into_bytes(),
    )
}

impl SignedResult {
    /// `result` signed by `host` with `key`; unsigned without a key.
    pub fn new(result: TaskResult, host: &str, key: Option<&SigningKey>) -> SignedResult {
        let signature = key.and_then(|k| canonical(&result, host).map(|c| k.sign(&c)));
        SignedResult {
            host: signature.as_ref().map(|_| host.to_string()),
            signature,
            result,
        }
    }

    /// Whether `host`, whose public key is `public` (32 bytes), signed it.
    pub fn signed_by(&self, host: &str, public: &[u8]) -> bool {
        let (Some(signed_host), Some(signature)) = (&self.host, &self.signature) else {
            return false;
        };
        let Ok(signature) = BASE64.decode(signature) else {
            return false;
        };
        signed_host == host
            && canonical(&self.result, host).is_some_and(|c| {
                UnparsedPublicKey::new(&ED25519, public)
                    .verify(&c, &signature)
                    .is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_result_verifies_for_its_host_only_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(&dir.path().join("host.key"), "web1").unwrap();
        let public = BASE64.decode(key.public_base64()).unwrap();
        let result = TaskResult::now(7, 0, "done");
        let signed = SignedResult::new(result.clone(), "web1", Some(&key));
        assert!(signed.signed_by("web1", &public));
        assert!(!signed.signed_by("web2", &public));
        let mut changed = signed.clone();
        changed.result.code = 3;
        assert!(!changed.signed_by("web1", &public));
        // On the wire: the old four fields, plus two.
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(json["task_id"], 7);
        assert_eq!(json["host"], "web1");
        let back: TaskResult = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, result);
        let back: SignedResult = serde_json::from_value(json).unwrap();
        assert!(back.signed_by("web1", &public));
        // Without a key, nothing is added.
        let plain = serde_json::to_value(SignedResult::new(result, "web1", None)).unwrap();
        assert!(plain.get("signature").is_none());
        // The same key comes back from the file.
        let again = SigningKey::load_or_create(&dir.path().join("host.key"), "web1").unwrap();
        assert_eq!(again.public_base64(), key.public_base64());
    }
}
