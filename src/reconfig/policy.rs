//! What a pushed collectd.conf may do on this host, decided by the host's
//! own settings (which a push cannot change): the plugins it may load,
//! where it may look for them, the files it may include, and whether it
//! may change this plugin's own block. Pure: a parsed tree in, a verdict
//! out.

use crate::config::{ConfigItem, ConfigValue};
use crate::task::code;
use std::path::{Component, Path, PathBuf};

/// Plugins that run arbitrary code given their configuration: a pushed
/// config may load them only when `PushAllowedPlugins` names them.
pub const CODE_RUNNING_PLUGINS: &[&str] = &["exec", "python", "perl", "java", "lua"];

/// Where collectd's own types databases live (Debian).
const TYPES_DIR: &str = "/usr/share/collectd";

/// The host's push policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushPolicy {
    /// `PushAllowedPlugins`; `None`: any but [`CODE_RUNNING_PLUGINS`].
    pub allowed_plugins: Option<Vec<String>>,
    /// `PushIncludeDirs`.
    pub include_dirs: Vec<PathBuf>,
    /// Where plugins may be loaded from: collectd's default directory and
    /// the one this plugin was loaded from.
    pub plugin_dirs: Vec<PathBuf>,
    /// The running `<Plugin monitor>` block's items, which a push without
    /// the right to change them must keep as they are.
    pub running_block: Option<Vec<ConfigItem>>,
}

/// A config the policy refuses: the result code and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: i64,
    pub message: String,
}

impl PushPolicy {
    /// Checks the tree collectd's parser made of a pushed config.
    /// `may_change_block`: the sender has the right to change this
    /// plugin's own block.
    pub fn check(&self, root: &ConfigItem, may_change_block: bool) -> Result<(), Refused> {
        let refuse = |code: i64, message: String| Err(Refused { code, message });
        let mut block = Vec::new();
        let mut loads_monitor = false;
        for item in &root.children {
            let strings = || {
                item.values.iter().filter_map(|v| match v {
                    ConfigValue::String(s) => Some(s.as_str()),
                    _ => None,
                })
            };
            match item.key.to_ascii_lowercase().as_str() {
                "plugindir" => {
                    for dir in strings() {
                        if !self.plugin_dirs.iter().any(|d| same_dir(d, Path::new(dir))) {
                            return refuse(
                                code::REPLACE_PLUGIN_REFUSED,
                                format!(
                                    "PluginDir {dir:?}: a pushed config may load plugins only from {}",
                                    list(&self.plugin_dirs)
                                ),
                            );
                        }
                    }
                }
                // `<Plugin x>` counts too: with AutoLoadPlugin it loads x.
                key @ ("loadplugin" | "plugin") => {
                    for name in strings().take(1) {
                        // This plugin: its block is checked below.
                        if name == "monitor" {
                            if key == "plugin" {
                                block.extend(item.children.iter().cloned());
                            } else {
                                loads_monitor = true;
                            }
                            continue;
                        }
                        if let Err(why) = self.plugin_allowed(name) {
                            return refuse(code::REPLACE_PLUGIN_REFUSED, why);
                        }
                    }
                }
                // A types file is read by collectd, which quotes the lines
                // it cannot parse: only collectd's own, or an allowed place.
                "typesdb" => {
                    for path in strings() {
                        let path = Path::new(path);
                        let own = path.starts_with(TYPES_DIR)
                            && !path.components().any(|c| matches!(c, Component::ParentDir));
                        if !own && !self.include_allowed(path) {
                            return refuse(
                                code::REPLACE_INCLUDE_REFUSED,
                                format!(
                                    "TypesDB {:?}: a pushed config may read types only under {TYPES_DIR} or {}",
                                    path.display(),
                                    list(&self.include_dirs)
                                ),
                            );
                        }
                    }
                }
                "include" => {
                    for path in strings() {
                        if !self.include_allowed(Path::new(path)) {
                            return refuse(
                                code::REPLACE_INCLUDE_REFUSED,
                                format!(
                                    "Include {path:?}: a pushed config may include only absolute paths under {}",
                                    list(&self.include_dirs)
                                ),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        if let (false, Some(running)) = (may_change_block, &self.running_block) {
            if !loads_monitor {
                return refuse(
                    code::REPLACE_BLOCK_REFUSED,
                    "the config does not load this plugin, and the key may not change its block (config=all)".into(),
                );
            }
            if block != *running {
                return refuse(
                    code::REPLACE_BLOCK_REFUSED,
                    "the config changes <Plugin monitor>, and the key may not change it (config=all)".into(),
                );
            }
        }
        Ok(())
    }

    fn plugin_allowed(&self, name: &str) -> Result<(), String> {
        let name = name.to_ascii_lowercase();
        match &self.allowed_plugins {
            Some(allowed) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&name)) => Ok(()),
            Some(allowed) => Err(format!(
                "plugin {name:?} is not in PushAllowedPlugins ({})",
                allowed.join(", ")
            )),
            None if CODE_RUNNING_PLUGINS.contains(&name.as_str()) => Err(format!(
                "plugin {name:?} runs arbitrary code; a pushed config may load it only if PushAllowedPlugins names it"
            )),
            None => Ok(()),
        }
    }

    fn include_allowed(&self, path: &Path) -> bool {
        path.is_absolute()
            && !path.components().any(|c| matches!(c, Component::ParentDir))
            && self.include_dirs.iter().any(|d| path.starts_with(d))
    }
}

/// The same directory: as written, or once links are resolved (a link to
/// an allowed directory is that directory).
fn same_dir(a: &Path, b: &Path) -> bool {
    let clean = |p: &Path| p.components().collect::<PathBuf>();
    clean(a) == clean(b)
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(none)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The directory the shared object holding this code was loaded from
/// (where collectd found `monitor.so`), read from `/proc/self/maps`.
pub fn this_library_dir() -> Option<PathBuf> {
    let here = this_library_dir as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (from, to) = fields.next()?.split_once('-')?;
        let (from, to) = (
            usize::from_str_radix(from, 16).ok()?,
            usize::from_str_radix(to, 16).ok()?,
        );
        let path = fields.nth(4)?;
        (from <= here && here < to && path.starts_with('/'))
            .then(|| Path::new(path).parent().map(Path::to_path_buf))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, value: &str, children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem::string(key, value, children)
    }

    fn root(children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem::root(children)
    }

    fn policy() -> PushPolicy {
        PushPolicy {
            allowed_plugins: None,
            include_dirs: vec!["/etc/collectd".into()],
            plugin_dirs: vec!["/usr/lib/collectd".into()],
            running_block: Some(vec![item("Host", "broker", vec![])]),
        }
    }

    fn with_monitor(mut items: Vec<ConfigItem>, host: &str) -> ConfigItem {
        items.push(item("LoadPlugin", "monitor", vec![]));
        items.push(item("Plugin", "monitor", vec![item("Host", host, vec![])]));
        root(items)
    }

    fn code(r: Result<(), Refused>) -> i64 {
        r.map_or_else(|e| e.code, |()| 0)
    }

    #[test]
    fn code_running_plugins_need_the_allow_list_and_the_list_is_exact() {
        let p = policy();
        let cpu = with_monitor(vec![item("LoadPlugin", "cpu", vec![])], "broker");
        assert_eq!(code(p.check(&cpu, false)), 0);
        for evil in [
            item("LoadPlugin", "exec", vec![]),
            item("LoadPlugin", "Python", vec![]),
            item("Plugin", "perl", vec![]),
        ] {
            let config = with_monitor(vec![evil], "broker");
            assert_eq!(code(p.check(&config, true)), code::REPLACE_PLUGIN_REFUSED);
        }
        let listed = PushPolicy {
            allowed_plugins: Some(vec!["exec".into()]),
            ..policy()
        };
        let exec = with_monitor(vec![item("LoadPlugin", "exec", vec![])], "broker");
        assert_eq!(code(listed.check(&exec, false)), 0);
        assert_eq!(
            code(listed.check(&cpu, false)),
            code::REPLACE_PLUGIN_REFUSED
        );
        let elsewhere = with_monitor(vec![item("PluginDir", "/tmp/evil", vec![])], "broker");
        assert_eq!(
            code(p.check(&elsewhere, true)),
            code::REPLACE_PLUGIN_REFUSED
        );
        let same = with_monitor(
            vec![item("PluginDir", "/usr/lib/collectd/", vec![])],
            "broker",
        );
        assert_eq!(code(p.check(&same, false)), 0);
    }

    #[test]
    fn includes_only_from_the_allowed_directories() {
        let p = policy();
        for (path, want) in [
            ("/etc/collectd/collectd.conf.d", 0),
            ("/etc/collectd/../shadow", code::REPLACE_INCLUDE_REFUSED),
            ("/etc/shadow", code::REPLACE_INCLUDE_REFUSED),
            ("relative.conf", code::REPLACE_INCLUDE_REFUSED),
        ] {
            let config = with_monitor(vec![item("Include", path, vec![])], "broker");
            assert_eq!(code(p.check(&config, false)), want, "{path}");
        }
        for (path, want) in [
            ("/usr/share/collectd/types.db", 0),
            ("/etc/collectd/my-types.db", 0),
            ("/etc/shadow", code::REPLACE_INCLUDE_REFUSED),
            (
                "/usr/share/collectd/../../../etc/shadow",
                code::REPLACE_INCLUDE_REFUSED,
            ),
        ] {
            let config = with_monitor(vec![item("TypesDB", path, vec![])], "broker");
            assert_eq!(code(p.check(&config, false)), want, "{path}");
        }
    }

    #[test]
    fn the_monitor_block_stays_unless_the_sender_may_change_it() {
        let p = policy();
        let changed = with_monitor(vec![], "evil-broker");
        assert_eq!(code(p.check(&changed, false)), code::REPLACE_BLOCK_REFUSED);
        assert_eq!(code(p.check(&changed, true)), 0);
        let dropped = root(vec![item("LoadPlugin", "cpu", vec![])]);
        assert_eq!(code(p.check(&dropped, false)), code::REPLACE_BLOCK_REFUSED);
        let kept = with_monitor(vec![], "broker");
        assert_eq!(code(p.check(&kept, false)), 0);
    }

    #[test]
    fn this_library_is_found_in_the_process_maps() {
        // In a test binary the code is in the executable itself.
        let dir = this_library_dir().expect("a mapping holds this function");
        assert!(
            std::env::current_exe().unwrap().starts_with(&dir),
            "{dir:?}"
        );
    }
}
