//! Reading, validating and merging the two sources.

use super::block::{BlockError, PluginBlock};
use super::schema::Settings;
use serde_json::{Map, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where a setting came from, for error messages.
const BLOCK_ORIGIN: &str = "<Plugin monitor> block of collectd.conf";

/// The validated settings plus what the operator should hear about.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// The config.json that was read, if any.
    pub config_path: Option<PathBuf>,
    /// Problems that do not stop the plugin (e.g. a world-readable file).
    pub warnings: Vec<String>,
}

/// A configuration the plugin refuses to run with. Each variant names the
/// file, and where possible the key, so the log line alone is enough to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {source}", path.display())]
    Syntax {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Settings from a `<Plugin monitor>` block and the config.json it names.
pub fn load(block: &PluginBlock) -> Result<Loaded, ConfigError> {
    validate(&block.settings, BLOCK_ORIGIN)?;
    let mut merged = block.settings.clone();
    let mut warnings = Vec::new();
    if let Some(path) = &block.monitor_config_path {
        let file = read_json_object(path, &mut warnings)?;
        validate(&file, &path.display().to_string())?;
        // config.json wins, key by key at the top level.
        merged.extend(file);
    }
    let settings = validate(&merged, "merged configuration")?;
    super::meaning::check(&settings).map_err(|message| ConfigError::Invalid {
        origin: match &block.monitor_config_path {
            Some(path) => format!("{} with the {BLOCK_ORIGIN}", path.display()),
            None => BLOCK_ORIGIN.to_string(),
        },
        message,
    })?;
    warnings.extend(super::meaning::warnings(&settings));
    Ok(Loaded {
        settings,
        config_path: block.monitor_config_path.clone(),
        warnings,
    })
}

/// Settings from a config.json alone (what `config check` validates).
pub fn load_json_file(path: &Path) -> Result<Loaded, ConfigError> {
    load(&PluginBlock {
        monitor_config_path: Some(path.to_path_buf()),
        settings: Map::new(),
    })
}

/// Largest config.json read: real ones are a few KiB; the path may come
/// from a pushed collectd.conf, so it is bounded before it is read.
pub const MAX_CONFIG_JSON_BYTES: u64 = 1024 * 1024;

fn read_json_object(
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::files::open_regular(path, MAX_CONFIG_JSON_BYTES, crate::files::Links::Follow)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let mode = meta.permissions().mode();
    if mode & 0o044 != 0 {
        warnings.push(format!(
            "{} is readable by group or others (mode {:o}) and may hold broker credentials; run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    let bytes = crate::files::read_bounded(file, MAX_CONFIG_JSON_BYTES).map_err(read_err)?;
    // Checked before the value is built: serde_json keeps the last of two
    // equal keys in silence. A syntax error is reported by the parse below.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
        super::meaning::no_duplicate_keys(&bytes).map_err(|message| ConfigError::Invalid {
            origin: path.display().to_string(),
            message,
        })?;
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ConfigError::Invalid {
            origin: path.display().to_string(),
            message: format!(
                "the top level must be a JSON object, not {}",
                json_kind(&other)
            ),
        }),
        Err(source) => Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn validate(map: &Map<String, Value>, origin: &str) -> Result<Settings, ConfigError> {
    let value = Value::Object(map.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            e.inner().to_string()
        } else {
            format!("key `{path}`: {}", e.inner())
        };
        ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        }
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogLevelName, Qos};
    use serde_json::json;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn block(path: Option<PathBuf>, settings: Value) -> PluginBlock {
        PluginBlock {
            monitor_config_path: path,
            settings: settings.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn config_json_wins_over_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), r#"{"QoS": 0, "LogLevel": "err"}"#, 0o600);
        let loaded = load(&block(Some(p), json!({"QoS": 1, "Host": "b:1883"}))).unwrap();
        assert_eq!(loaded.settings.qos, Qos::try_from(0).unwrap());
        assert_eq!(loaded.settings.host.as_deref(), Some("b:1883"));
        assert_eq!(loaded.settings.log_level, LogLevelName::Error);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), r#"{"Hots": "x"}"#, 0o600);
        let e = load_json_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        assert!(e.contains("unknown field `Hots`"), "{e}");

        let p = write(dir.path(), r#"{"Secure": "yes"}"#, 0o600);
        let e = load_json_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("key `Secure`") && e.contains("expected a boolean"),
            "{e}"
        );

        let p = write(
            dir.path(),
            r#"{"Services": {"a": {"commands": {"x": 1}}}}"#,
            0o600,
        );
        let e = load_json_file(&p).unwrap_err().to_string();
        assert!(e.contains("key `Services.a.commands.x`"), "{e}");

        let e = load(&block(None, json!({"QoS": 3})))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("<Plugin monitor>") && e.contains("QoS must be 0, 1 or 2"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_missing_files_and_non_objects() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "{\n  \"Host\": ,\n}", 0o600);
        let e = load_json_file(&p).unwrap_err().to_string();
        assert!(e.contains("not valid JSON") && e.contains("line 2"), "{e}");
        let e = load_json_file(&dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.json: cannot read"), "{e}");
        let p = write(dir.path(), "[]", 0o600);
        let e = load_json_file(&p).unwrap_err().to_string();
        assert!(e.contains("must be a JSON object, not an array"), "{e}");
    }

    #[test]
    fn warns_when_readable_by_others_and_accepts_both_command_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"Services": {"a": {"Commands": {"x": "true"}}, "b": {"commands": {"y": "false"}}}}"#,
            0o644,
        );
        let loaded = load_json_file(&p).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("chmod 600"));
        assert_eq!(loaded.settings.services["a"].commands["x"], "true");
        assert_eq!(loaded.settings.services["b"].commands["y"], "false");
    }
}
