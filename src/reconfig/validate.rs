//! Checks on a parsed collectd.conf before anything on the host is touched:
//! every plugin it loads exists, its types databases exist, and our own
//! `<Plugin monitor>` block is valid. Warnings (the new config would cut
//! the host off from remote control) go into the result message.

use crate::config::{self, PluginBlock};
use crate::config::{ConfigItem, ConfigValue};
use std::path::{Path, PathBuf};

/// Where collectd looks for plugins before any `PluginDir` line (Debian).
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/collectd";

/// What a valid config leaves to say.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub warnings: Vec<String>,
    /// The new monitor settings' `StateDir` as written, when the config
    /// loads this plugin: the push policy keeps it where the journal is.
    pub state_dir: Option<PathBuf>,
}

/// Validates the tree `oconfig_parse_file` returned for the new config.
/// `exists` answers for files on this host.
pub fn validate(
    root: &ConfigItem,
    default_plugin_dir: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Checked, String> {
    if root.children.is_empty() {
        // collectd 5.12 exits at start with "Configuration file ... is
        // empty" (its parser also gives an empty tree for some hostile
        // inputs, such as thousands of nested blocks).
        return Err(
            "the config has no settings: collectd refuses to start with an empty config".into(),
        );
    }
    let mut plugin_dir = default_plugin_dir.to_path_buf();
    let mut loads_monitor = false;
    let mut monitor_items = Vec::new();
    let mut warnings = Vec::new();
    for item in &root.children {
        let key = item.key.to_ascii_lowercase();
        match key.as_str() {
            "plugindir" => plugin_dir = PathBuf::from(string_value(item)?),
            "loadplugin" => {
                let name = string_value(item)?;
                let file = plugin_dir.join(format!("{name}.so"));
                if !exists(&file) {
                    return Err(format!(
                        "LoadPlugin \"{name}\": there is no {} on this host",
                        file.display()
                    ));
                }
                loads_monitor |= name.eq_ignore_ascii_case("monitor");
            }
            "typesdb" => {
                for value in &item.values {
                    if let ConfigValue::String(path) = value {
                        if !exists(Path::new(path)) {
                            return Err(format!("TypesDB \"{path}\": no such file on this host"));
                        }
                    }
                }
            }
            "plugin" if matches!(item.values.first(), Some(ConfigValue::String(n)) if n.eq_ignore_ascii_case("monitor")) =>
            {
                monitor_items.extend(item.children.iter().cloned());
            }
            "include" => warnings.push(format!(
                "Include {} was not checked: its files are read by collectd only",
                item.values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            _ => {}
        }
    }
    if !loads_monitor {
        warnings.push("the new config does not load the monitor plugin: this host will no longer answer remote commands".into());
        return Ok(Checked {
            warnings,
            state_dir: None,
        });
    }
    let block = PluginBlock::from_items(&monitor_items).map_err(|e| e.to_string())?;
    let loaded = config::load(&block)
        .map_err(|e| format!("the new config's monitor settings are invalid: {e}"))?;
    if loaded.settings.host.is_none() {
        warnings.push("the new config's monitor settings have no Host: this host will no longer answer remote commands".into());
    }
    Ok(Checked {
        warnings,
        state_dir: Some(loaded.settings.state_dir),
    })
}

fn string_value(item: &ConfigItem) -> Result<String, String> {
    match item.values.as_slice() {
        [ConfigValue::String(s), ..] => Ok(s.clone()),
        _ => Err(format!("`{}` needs a string argument", item.key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, value: &str) -> ConfigItem {
        ConfigItem::string(key, value, vec![])
    }

    fn root(children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem::root(children)
    }

    fn only(files: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| files.iter().any(|f| Path::new(f) == p)
    }

    #[test]
    fn plugins_are_looked_up_in_the_plugin_dir_in_force() {
        let exists = only(&["/usr/lib/collectd/cpu.so", "/opt/p/monitor.so"]);
        let ok = root(vec![
            item("LoadPlugin", "cpu"),
            item("PluginDir", "/opt/p"),
            item("LoadPlugin", "monitor"),
        ]);
        let checked = validate(&ok, Path::new(DEFAULT_PLUGIN_DIR), &exists).unwrap();
        assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
        assert!(checked.warnings[0].contains("no Host"));
        let bad = root(vec![item("PluginDir", "/opt/p"), item("LoadPlugin", "cpu")]);
        let e = validate(&bad, Path::new(DEFAULT_PLUGIN_DIR), &exists).unwrap_err();
        assert!(e.contains("/opt/p/cpu.so"), "{e}");
    }

    #[test]
    fn types_db_and_our_block_are_checked() {
        let exists = only(&["/usr/lib/collectd/monitor.so"]);
        let e = validate(
            &root(vec![item("TypesDB", "/nope/types.db")]),
            Path::new(DEFAULT_PLUGIN_DIR),
            &exists,
        )
        .unwrap_err();
        assert!(e.contains("/nope/types.db"));
        let mut block = item("Plugin", "monitor");
        block.children.push(item("Hots", "x"));
        let e = validate(
            &root(vec![item("LoadPlugin", "monitor"), block]),
            Path::new(DEFAULT_PLUGIN_DIR),
            &exists,
        )
        .unwrap_err();
        assert!(e.contains("unknown field `Hots`"), "{e}");
    }

    #[test]
    fn warns_when_the_new_config_drops_this_plugin() {
        let config = root(vec![item("Hostname", "web1")]);
        let checked = validate(&config, Path::new(DEFAULT_PLUGIN_DIR), &only(&[])).unwrap();
        assert!(checked.warnings[0].contains("does not load the monitor plugin"));
    }

    #[test]
    fn an_empty_config_is_refused() {
        let e = validate(&root(vec![]), Path::new(DEFAULT_PLUGIN_DIR), &only(&[])).unwrap_err();
        assert!(e.contains("empty config"), "{e}");
    }
}
