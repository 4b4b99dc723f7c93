//! `send-rules` and `send-monitor-config`: a rule set and/or config.json
//! to one host or many (with canaries and waves as `send-config`), and
//! `send-rules --rollback`.

use super::CliError;
use crate::deploy::{Bundle, valid_file_name};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reads a file to push: regular, bounded, UTF-8.
fn read_text(path: &Path) -> Result<String, CliError> {
    let bytes = crate::files::read_regular(
        path,
        crate::deploy::MAX_FILE_BYTES as u64,
        crate::files::Links::Follow,
    )
    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("{}: not UTF-8 text", path.display())))
}

/// The bundle of `paths` (files, or directories of `*.lua` files) and an
/// optional config.json.
pub fn bundle(paths: &[PathBuf], config: Option<&Path>) -> Result<Bundle, CliError> {
    let mut bundle = Bundle::default();
    if !paths.is_empty() {
        let mut files = BTreeMap::new();
        for path in crate::rules::expand_paths(paths).map_err(CliError::Usage)? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !valid_file_name(&name) {
                return Err(CliError::Usage(format!(
                    "{}: a rule file is name.lua (letters, digits, '.', '-', '_')",
                    path.display()
                )));
            }
            if files.insert(name.clone(), read_text(&path)?).is_some() {
                return Err(CliError::Usage(format!("two files are named {name}")));
            }
        }
        bundle.files = Some(files);
    }
    if let Some(config) = config {
        bundle.config = Some(read_text(config)?);
    }
    bundle.check().map_err(CliError::Usage)?;
    Ok(bundle)
}

/// The request body of a bundle.
pub fn body(bundle: &Bundle) -> serde_json::Value {
    serde_json::to_value(bundle).unwrap_or_default()
}
