//! `config check` of a collectd.conf: collectd's own parser reads the file
//! (inside a collectd started only for that, which runs this plugin's
//! check mode and exits before any plugin starts); what it found of the
//! `<Plugin monitor>` block comes back as a [`BlockReport`], which the CLI
//! loads exactly as the plugin would.

use super::block::PluginBlock;
use super::tree::{ConfigItem, ConfigValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The hidden `<Plugin monitor>` key that turns a collectd started by
/// `config check` into a checker: `CheckConfig "FILE" "REPORT"`.
pub const CHECK_KEY: &str = "CheckConfig";

/// What collectd's parser made of a collectd.conf, as far as this plugin
/// is concerned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockReport {
    /// collectd's parser refused the file (its message has the line).
    pub parse_error: Option<String>,
    /// The file has `LoadPlugin monitor`.
    pub loads_monitor: bool,
    /// The `<Plugin monitor>` block could not be mapped.
    pub block_error: Option<String>,
    pub monitor_config_path: Option<PathBuf>,
    /// The block's settings, in config.json's shape.
    pub settings: Map<String, Value>,
    /// `Include`s of the file left unread (when expanding them failed).
    pub includes: Vec<String>,
    /// Why the file's `Include`s could not be read as collectd reads them.
    #[serde(default)]
    pub include_error: Option<String>,
    /// The file's `Hostname`, if it sets one.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl BlockReport {
    /// The report for a parsed tree.
    pub fn of(root: &ConfigItem) -> BlockReport {
        let mut report = BlockReport::default();
        let mut items = Vec::new();
        for item in &root.children {
            let first = match item.values.first() {
                Some(ConfigValue::String(s)) => Some(s.as_str()),
                _ => None,
            };
            match (item.key.to_ascii_lowercase().as_str(), first) {
                ("loadplugin", Some("monitor")) => report.loads_monitor = true,
                ("plugin", Some("monitor")) => items.extend(item.children.iter().cloned()),
                ("include", Some(path)) => report.includes.push(path.to_string()),
                ("hostname", Some(name)) => report.hostname = Some(name.to_string()),
                _ => {}
            }
        }
        match PluginBlock::from_items(&items) {
            Ok(block) => {
                report.monitor_config_path = block.monitor_config_path;
                report.settings = block.settings;
            }
            Err(e) => report.block_error = Some(e.to_string()),
        }
        report
    }

    /// The block, for [`super::load`].
    pub fn block(&self) -> PluginBlock {
        PluginBlock {
            monitor_config_path: self.monitor_config_path.clone(),
            settings: self.settings.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, value: &str, children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem::string(key, value, children)
    }

    #[test]
    fn finds_the_block_the_load_and_the_includes() {
        let root = ConfigItem::root(vec![
            item("LoadPlugin", "monitor", vec![]),
            item("Include", "/etc/collectd/collectd.conf.d", vec![]),
            item(
                "Plugin",
                "monitor",
                vec![
                    item(
                        "MonitorConfigPath",
                        "/etc/collectd/monitor/config.json",
                        vec![],
                    ),
                    item("LogLevel", "debug", vec![]),
                ],
            ),
        ]);
        let r = BlockReport::of(&root);
        assert!(r.loads_monitor && r.block_error.is_none());
        assert_eq!(r.includes, vec!["/etc/collectd/collectd.conf.d"]);
        assert_eq!(r.settings["LogLevel"], "debug");
        assert_eq!(
            r.block().monitor_config_path,
            Some(PathBuf::from("/etc/collectd/monitor/config.json"))
        );
    }
}
