//! Signed requests: who may ask a host for what. A controller signs each
//! request with an Ed25519 key (`keys.rs`); the signature covers a
//! canonical byte string that binds the target host, the task and its
//! content (`canonical.rs`); a host that trusts keys (`TrustedKeys`)
//! checks the signature and the key's rights before anything runs
//! (`trust.rs`). Hosts sign their results with a key of their own
//! (`result.rs`). The cryptography is `ring`'s.

mod canonical;
mod keys;
mod kind;
mod result;
mod trust;

pub use canonical::{Content, Signable};
pub use keys::{KeyError, SigningKey, generate, valid_key_name, write_pair};
pub use kind::BodyKind;
pub use result::{HOST_KEY_FILE, SignedResult};
pub use trust::{ConfigRight, Presented, Refusal, Rights, TrustedKey, TrustedKeys, glob_matches};
