//! `keygen NAME`: a signing key pair for the controller.

use super::CliError;
use crate::auth::{KeyError, valid_key_name, write_pair};
use std::path::Path;
use std::process::ExitCode;

/// Writes `DIR/NAME.key` and `DIR/NAME.pub` and says what to do with them.
pub fn run(name: &str, dir: &Path) -> Result<ExitCode, CliError> {
    if !valid_key_name(name) {
        return Err(CliError::Usage(format!(
            "key name {name:?}: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.')"
        )));
    }
    let (private, public) = write_pair(dir, name).map_err(|e| match e {
        KeyError::Invalid(m) => CliError::Usage(m),
        io @ KeyError::Io { .. } => CliError::Failed(io.to_string()),
    })?;
    say!(
        "private key: {} (mode 0600; keep it on the controller)",
        private.display()
    );
    say!("public key:  {}", public.display());
    say!(
        "Trust it on a host: add its line to the file or directory TrustedKeys names, with the key's rights, e.g.\n  {} commands=hello/*,nginx/restart config=no",
        std::fs::read_to_string(&public).unwrap_or_default().trim()
    );
    Ok(ExitCode::SUCCESS)
}
