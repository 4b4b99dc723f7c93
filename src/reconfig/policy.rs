//! What a pushed collectd.conf may do on this host, decided by the host's
//! own settings (which a push cannot change) over everything collectd will
//! read: the pushed text with its includes expanded (`includes.rs`). The
//! plugins it may load and where from, the types files it may read, the
//! files its plugins may write or read, whether it may move collectd's
//! `BaseDir` or this plugin's state, and whether it may change this
//! plugin's own block. Pure: a tree and the host's answers about paths in
//! (`trusted.rs` gives the real ones), a verdict out. docs/remote.md's
//! "Push policy" table lists every setting decided here.

use crate::config::{ConfigItem, ConfigValue};
use crate::task::code;
use std::path::{Component, Path, PathBuf};

/// Plugins that run arbitrary code given their configuration: a pushed
/// config may load them only when `PushAllowedPlugins` names them.
pub const CODE_RUNNING_PLUGINS: &[&str] = &["exec", "python", "perl", "java", "lua"];

/// Where collectd's own types databases live (Debian).
const TYPES_DIR: &str = "/usr/share/collectd";

/// collectd's compiled-in `BaseDir` (Debian), for a config that sets none.
pub const DEFAULT_BASE_DIR: &str = "/var/lib/collectd";

/// Where plugins that read files (tail, table, ...) may read, beside the
/// writable directories: logs and the kernel's own files.
const READABLE_DIRS: &[&str] = &["/var/log", "/proc", "/sys"];

/// Plugin options that name a file or directory collectd writes or
/// creates: `(plugin, option)`, compared as collectd compares them.
pub const WRITTEN_PATHS: &[(&str, &str)] = &[
    ("csv", "DataDir"),
    ("rrdtool", "DataDir"),
    ("rrdcached", "DataDir"),
    ("logfile", "File"),
    ("log_logstash", "File"),
    ("unixsock", "SocketFile"),
    ("email", "SocketFile"),
];

/// Plugin options (or blocks) that name a file collectd reads and turns
/// into values: `(plugin, option)`.
pub const READ_PATHS: &[(&str, &str)] = &[
    ("tail", "File"),
    ("tail_csv", "File"),
    ("table", "Table"),
    ("openvpn", "StatusFile"),
    ("filecount", "Directory"),
];

/// Answers where a path really leads, or why nobody should trust it
/// (someone other than root could change it): `trusted::resolve` on the
/// host, a table in tests.
pub type Resolve<'a> = &'a dyn Fn(&Path) -> Result<PathBuf, String>;

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
    /// `PushWritableDirs`: where the config's plugins may write.
    pub writable_dirs: Vec<PathBuf>,
    /// The running `<Plugin monitor>` block's items, which a push without
    /// the right to change them must keep as they are.
    pub running_block: Option<Vec<ConfigItem>>,
    /// What the running collectd and this plugin use.
    pub running: RunningFiles,
}

/// Paths of the running collectd and of this plugin that a push may not
/// move or write into.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunningFiles {
    /// collectd's `BaseDir` now (absolute): relative paths start there,
    /// and the task journal lives under it by default.
    pub base_dir: Option<PathBuf>,
    /// collectd's `PIDFile` now: a push may keep it.
    pub pid_file: Option<PathBuf>,
    /// `StateDir` (absolute): the task journal, the replacement lock.
    pub state_dir: Option<PathBuf>,
    /// This plugin's other files and directories (collectd.conf,
    /// config.json, rule files, trusted keys, the helper): never written.
    pub protected: Vec<PathBuf>,
    /// What the running collectd.conf already has plugins write (its
    /// logfile, say, from [`written_paths`]): a push may keep writing
    /// them, which gives no new power.
    pub written: Vec<PathBuf>,
}

/// The files and directories `root` (a collectd.conf with its includes
/// expanded) has collectd write: its `PIDFile` and the options of
/// [`WRITTEN_PATHS`], relative ones taken from `base`.
pub fn written_paths(root: &ConfigItem, base: &Path) -> Vec<PathBuf> {
    fn walk(plugin: &str, item: &ConfigItem, base: &Path, out: &mut Vec<PathBuf>) {
        for child in &item.children {
            let written = WRITTEN_PATHS
                .iter()
                .any(|(p, k)| *p == plugin && child.key.eq_ignore_ascii_case(k));
            if written {
                out.extend(strings(child).map(|v| base.join(v)));
            }
            walk(plugin, child, base, out);
        }
    }
    let mut out = Vec::new();
    for item in &root.children {
        match item.key.to_ascii_lowercase().as_str() {
            "pidfile" => out.extend(strings(item).map(|v| base.join(v))),
            "plugin" => {
                if let Some(name) = strings(item).next() {
                    walk(&plugin_name(name), item, base, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// A config the policy refuses: the result code and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: i64,
    pub message: String,
}

fn refused<T>(code: i64, message: String) -> Result<T, Refused> {
    Err(Refused { code, message })
}

/// How collectd names a plugin: case does not matter, and `libvirt` is
/// `virt`.
fn plugin_name(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name == "libvirt" {
        "virt".into()
    } else {
        name
    }
}

fn strings(item: &ConfigItem) -> impl Iterator<Item = &str> {
    item.values.iter().filter_map(|v| match v {
        ConfigValue::String(s) => Some(s.as_str()),
        _ => None,
    })
}

impl PushPolicy {
    /// Checks the tree collectd's parser made of a pushed config, with
    /// its includes expanded. `may_change_block`: the sender has the
    /// right to change this plugin's own block.
    pub fn check(
        &self,
        root: &ConfigItem,
        may_change_block: bool,
        resolve: Resolve,
    ) -> Result<(), Refused> {
        let mut block = Vec::new();
        let mut loads_monitor = false;
        let base = self.base_dir(root);
        for item in &root.children {
            match item.key.to_ascii_lowercase().as_str() {
                "plugindir" => {
                    for dir in strings(item) {
                        self.plugin_dir(dir, resolve)?;
                    }
                }
                // `<Plugin x>` counts too: with AutoLoadPlugin it loads x.
                key @ ("loadplugin" | "plugin") => {
                    let Some(name) = strings(item).next() else {
                        continue;
                    };
                    let name = plugin_name(name);
                    // This plugin: every block of it, as collectd hands
                    // them all to it, is checked below.
                    if name == "monitor" {
                        if key == "plugin" {
                            block.extend(item.children.iter().cloned());
                        } else {
                            loads_monitor = true;
                        }
                        continue;
                    }
                    if let Err(why) = self.plugin_allowed(&name) {
                        return refused(code::REPLACE_PLUGIN_REFUSED, why);
                    }
                    if key == "plugin" {
                        self.plugin_paths(&name, item, &base, resolve)?;
                    }
                }
                // A types file is read by collectd, which quotes the lines
                // it cannot parse: only collectd's own, or an allowed place.
                "typesdb" => {
                    for path in strings(item) {
                        self.types_db(path, resolve)?;
                    }
                }
                // Left by the expansion only if it could not be read as
                // collectd reads it.
                "include" => {
                    return refused(
                        code::REPLACE_INCLUDE_REFUSED,
                        "an Include that was not expanded".into(),
                    );
                }
                "basedir" => self.same_base_dir(item, resolve)?,
                "pidfile" => {
                    for path in strings(item) {
                        self.writable("PIDFile", path, &base, resolve)?;
                    }
                }
                _ => {}
            }
        }
        if let (false, Some(running)) = (may_change_block, &self.running_block) {
            if !loads_monitor {
                return refused(
                    code::REPLACE_BLOCK_REFUSED,
                    "the config does not load this plugin, and the key may not change its block (config=all)".into(),
                );
            }
            if block != *running {
                return refused(
                    code::REPLACE_BLOCK_REFUSED,
                    "the config changes <Plugin monitor>, and the key may not change it (config=all)".into(),
                );
            }
        }
        Ok(())
    }

    /// The policy's word on one `Include` path (or an entry of an included
    /// directory): the real path to read. Only plain absolute paths:
    /// collectd passes the path through `wordexp`, which would split it
    /// at blanks and expand `$`, `~` and wildcards.
    pub fn include(&self, path: &str, resolve: Resolve) -> Result<PathBuf, Refused> {
        let refuse = |why: String| Refused {
            code: code::REPLACE_INCLUDE_REFUSED,
            message: format!("Include {path:?}: {why}"),
        };
        if let Some(c) = path.chars().find(|c| !plain(*c)) {
            return Err(refuse(format!(
                "{c:?} is not allowed in a pushed Include (collectd expands paths like a shell)"
            )));
        }
        let plain_path = Path::new(path);
        if !plain_path.is_absolute() || has_parent(plain_path) {
            return Err(refuse(format!(
                "a pushed config may include only absolute paths under {}",
                list(&self.include_dirs)
            )));
        }
        let real = resolve(plain_path).map_err(refuse)?;
        if !under_any(&real, &self.include_dirs, resolve) {
            return Err(refuse(format!(
                "a pushed config may include only absolute paths under {}",
                list(&self.include_dirs)
            )));
        }
        Ok(real)
    }

    /// The new config's `StateDir`, resolved, must be the running one: the
    /// task journal that keeps requests at most once lives there.
    pub fn same_state_dir(&self, new: &Path, resolve: Resolve) -> Result<(), Refused> {
        let Some(running) = &self.running.state_dir else {
            return Ok(());
        };
        let base = self
            .running
            .base_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_DIR.into());
        let new = base.join(new);
        if same(&new, running, resolve) {
            return Ok(());
        }
        refused(
            code::REPLACE_PATH_REFUSED,
            format!(
                "the config moves StateDir from {} to {}, where the task journal would not follow: move it by hand",
                running.display(),
                new.display()
            ),
        )
    }

    fn base_dir(&self, root: &ConfigItem) -> PathBuf {
        root.children
            .iter()
            .rev()
            .filter(|i| i.key.eq_ignore_ascii_case("basedir"))
            .find_map(|i| strings(i).next())
            .map(PathBuf::from)
            .or_else(|| self.running.base_dir.clone())
            .unwrap_or_else(|| DEFAULT_BASE_DIR.into())
    }

    fn same_base_dir(&self, item: &ConfigItem, resolve: Resolve) -> Result<(), Refused> {
        let Some(running) = &self.running.base_dir else {
            return Ok(());
        };
        for dir in strings(item) {
            if !same(Path::new(dir), running, resolve) {
                return refused(
                    code::REPLACE_PATH_REFUSED,
                    format!(
                        "BaseDir {dir:?}: a push may not move collectd's BaseDir ({}), where this plugin keeps its task journal",
                        running.display()
                    ),
                );
            }
        }
        Ok(())
    }

    fn plugin_dir(&self, dir: &str, resolve: Resolve) -> Result<(), Refused> {
        let refuse = |why: String| Refused {
            code: code::REPLACE_PLUGIN_REFUSED,
            message: format!("PluginDir {dir:?}: {why}"),
        };
        let real = resolve(Path::new(dir)).map_err(refuse)?;
        if self
            .plugin_dirs
            .iter()
            .any(|d| resolve(d).is_ok_and(|d| d == real))
        {
            return Ok(());
        }
        Err(refuse(format!(
            "a pushed config may load plugins only from {}",
            list(&self.plugin_dirs)
        )))
    }

    fn types_db(&self, path: &str, resolve: Resolve) -> Result<(), Refused> {
        let refuse = |why: String| Refused {
            code: code::REPLACE_INCLUDE_REFUSED,
            message: format!("TypesDB {path:?}: {why}"),
        };
        let written = Path::new(path);
        if !written.is_absolute() || has_parent(written) {
            return Err(refuse("not a plain absolute path".into()));
        }
        let real = resolve(written).map_err(refuse)?;
        let own = [PathBuf::from(TYPES_DIR)];
        if under_any(&real, &own, resolve) || under_any(&real, &self.include_dirs, resolve) {
            return Ok(());
        }
        Err(refuse(format!(
            "a pushed config may read types only under {TYPES_DIR} or {}",
            list(&self.include_dirs)
        )))
    }

    /// The path options of one plugin's block, at any depth.
    fn plugin_paths(
        &self,
        plugin: &str,
        item: &ConfigItem,
        base: &Path,
        resolve: Resolve,
    ) -> Result<(), Refused> {
        for child in &item.children {
            let named = |table: &[(&str, &str)]| {
                table
                    .iter()
                    .any(|(p, k)| *p == plugin && child.key.eq_ignore_ascii_case(k))
            };
            for value in strings(child) {
                if value
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("file:"))
                {
                    return refused(
                        code::REPLACE_PATH_REFUSED,
                        format!(
                            "<Plugin {plugin}> {} {value:?}: a pushed config may not name file: URLs",
                            child.key
                        ),
                    );
                }
                if named(WRITTEN_PATHS) {
                    let what = format!("<Plugin {plugin}> {}", child.key);
                    self.writable(&what, value, base, resolve)?;
                } else if named(READ_PATHS) {
                    let what = format!("<Plugin {plugin}> {}", child.key);
                    self.readable(&what, value, resolve)?;
                }
            }
            self.plugin_paths(plugin, child, base, resolve)?;
        }
        Ok(())
    }

    /// A file or directory collectd will write or create.
    fn writable(
        &self,
        what: &str,
        path: &str,
        base: &Path,
        resolve: Resolve,
    ) -> Result<(), Refused> {
        // csv and logfile write to collectd's own output streams.
        if ["stdout", "stderr"]
            .iter()
            .any(|s| path.eq_ignore_ascii_case(s))
        {
            return Ok(());
        }
        let refuse = |why: String| Refused {
            code: code::REPLACE_PATH_REFUSED,
            message: format!("{what} {path:?}: {why}"),
        };
        let real = resolve(&base.join(path)).map_err(refuse)?;
        let the_pid_file = self
            .running
            .pid_file
            .as_ref()
            .is_some_and(|p| same(&real, p, resolve));
        let already_written = self.running.written.iter().any(|p| same(&real, p, resolve));
        if !the_pid_file && !already_written && !under_any(&real, &self.writable_dirs, resolve) {
            return Err(refuse(format!(
                "a pushed config may write only under {}",
                list(&self.writable_dirs)
            )));
        }
        self.not_protected(&real, resolve).map_err(refuse)
    }

    /// A file whose content collectd reads into values.
    fn readable(&self, what: &str, path: &str, resolve: Resolve) -> Result<(), Refused> {
        let refuse = |why: String| Refused {
            code: code::REPLACE_PATH_REFUSED,
            message: format!("{what} {path:?}: {why}"),
        };
        let written = Path::new(path);
        if !written.is_absolute() {
            return Err(refuse("not an absolute path".into()));
        }
        let real = resolve(written).map_err(refuse)?;
        let readable: Vec<PathBuf> = READABLE_DIRS
            .iter()
            .map(PathBuf::from)
            .chain(self.writable_dirs.iter().cloned())
            .collect();
        if !under_any(&real, &readable, resolve) {
            return Err(refuse(format!(
                "a pushed config may read files only under {}",
                list(&readable)
            )));
        }
        self.not_protected(&real, resolve).map_err(refuse)
    }

    /// Neither inside nor above this plugin's own files, the directories
    /// collectd loads code and configuration from, or its types.
    fn not_protected(&self, real: &Path, resolve: Resolve) -> Result<(), String> {
        let own = [
            self.running.state_dir.iter().cloned().collect::<Vec<_>>(),
            self.running.protected.clone(),
            self.include_dirs.clone(),
            self.plugin_dirs.clone(),
            vec![PathBuf::from(TYPES_DIR)],
        ]
        .concat();
        for p in own {
            let p = resolve(&p).unwrap_or(p);
            if real.starts_with(&p) || p.starts_with(real) {
                return Err(format!(
                    "{} would reach {}, which a pushed config may not write or read",
                    real.display(),
                    p.display()
                ));
            }
        }
        Ok(())
    }

    fn plugin_allowed(&self, name: &str) -> Result<(), String> {
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("{name:?} is not a plugin name"));
        }
        match &self.allowed_plugins {
            Some(allowed) if allowed.iter().any(|a| plugin_name(a) == name) => Ok(()),
            Some(allowed) => Err(format!(
                "plugin {name:?} is not in PushAllowedPlugins ({})",
                allowed.join(", ")
            )),
            None if CODE_RUNNING_PLUGINS.contains(&name) => Err(format!(
                "plugin {name:?} runs arbitrary code; a pushed config may load it only if PushAllowedPlugins names it"
            )),
            None => Ok(()),
        }
    }
}

/// A character a plain path may hold: none that `wordexp` would act on.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-+,:@=%".contains(c)
}

fn has_parent(path: &Path) -> bool {
    path.components().any(|c| matches!(c, Component::ParentDir))
}

/// `real` is one of `dirs` (resolved) or inside one.
fn under_any(real: &Path, dirs: &[PathBuf], resolve: Resolve) -> bool {
    dirs.iter()
        .any(|d| real.starts_with(resolve(d).unwrap_or_else(|_| d.clone())))
}

/// The same place: as written, or once links are resolved.
fn same(a: &Path, b: &Path, resolve: Resolve) -> bool {
    let clean = |p: &Path| p.components().collect::<PathBuf>();
    clean(a) == clean(b) || matches!((resolve(a), resolve(b)), (Ok(x), Ok(y)) if x == y)
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
            writable_dirs: vec!["/var/lib/collectd".into(), "/var/log/collectd".into()],
            running_block: Some(vec![item("Host", "broker", vec![])]),
            running: RunningFiles {
                base_dir: Some("/var/lib/collectd".into()),
                pid_file: Some("/run/collectd.pid".into()),
                state_dir: Some("/var/lib/collectd/monitor".into()),
                protected: vec!["/etc/collectd/collectd.conf".into()],
                written: Vec::new(),
            },
        }
    }

    #[test]
    fn a_push_may_keep_writing_what_the_running_config_writes() {
        let logfile = |path: &str| item("Plugin", "logfile", vec![item("File", path, vec![])]);
        let running = root(vec![
            item("LoadPlugin", "logfile", vec![]),
            logfile("/var/log/collectd.log"),
        ]);
        let written = written_paths(&running, Path::new("/var/lib/collectd"));
        assert_eq!(written, vec![PathBuf::from("/var/log/collectd.log")]);
        let keeps = with_monitor(
            vec![
                item("LoadPlugin", "logfile", vec![]),
                logfile("/var/log/collectd.log"),
            ],
            "broker",
        );
        // Refused without knowing what runs; taken once it does.
        assert_eq!(check(&policy(), &keeps, false), code::REPLACE_PATH_REFUSED);
        let mut p = policy();
        p.running.written = written;
        assert_eq!(check(&p, &keeps, false), 0);
        // Another file outside the writable directories is still refused.
        let other = with_monitor(
            vec![
                item("LoadPlugin", "logfile", vec![]),
                logfile("/var/log/other.log"),
            ],
            "broker",
        );
        assert_eq!(check(&p, &other, false), code::REPLACE_PATH_REFUSED);
    }

    /// The host's file system in these tests: `/link` leads to
    /// `/usr/lib/collectd`, `/var/lib/collectd/evil` to `/etc`, and
    /// anything under `/home` may be changed by a user.
    fn fs(path: &Path) -> Result<PathBuf, String> {
        let clean: PathBuf = path.components().collect();
        if clean.starts_with("/home") {
            return Err(format!(
                "{} is writable by others than root",
                clean.display()
            ));
        }
        for (link, to) in [
            ("/link", "/usr/lib/collectd"),
            ("/var/lib/collectd/evil", "/etc"),
        ] {
            if let Ok(rest) = clean.strip_prefix(link) {
                return Ok(Path::new(to).join(rest));
            }
        }
        Ok(clean)
    }

    fn with_monitor(mut items: Vec<ConfigItem>, host: &str) -> ConfigItem {
        items.push(item("LoadPlugin", "monitor", vec![]));
        items.push(item("Plugin", "monitor", vec![item("Host", host, vec![])]));
        root(items)
    }

    fn code(r: Result<(), Refused>) -> i64 {
        r.map_or_else(|e| e.code, |()| 0)
    }

    fn check(p: &PushPolicy, config: &ConfigItem, may_change_block: bool) -> i64 {
        code(p.check(config, may_change_block, &fs))
    }

    #[test]
    fn code_running_plugins_need_the_allow_list_and_the_list_is_exact() {
        let p = policy();
        let cpu = with_monitor(vec![item("LoadPlugin", "cpu", vec![])], "broker");
        assert_eq!(check(&p, &cpu, false), 0);
        for evil in [
            item("LoadPlugin", "exec", vec![]),
            item("LoadPlugin", "Python", vec![]),
            item("Plugin", "perl", vec![]),
            item("LoadPlugin", "../x/exec", vec![]),
        ] {
            let config = with_monitor(vec![evil], "broker");
            assert_eq!(check(&p, &config, true), code::REPLACE_PLUGIN_REFUSED);
        }
        let listed = PushPolicy {
            allowed_plugins: Some(vec!["exec".into()]),
            ..policy()
        };
        let exec = with_monitor(vec![item("LoadPlugin", "EXEC", vec![])], "broker");
        assert_eq!(check(&listed, &exec, false), 0);
        assert_eq!(check(&listed, &cpu, false), code::REPLACE_PLUGIN_REFUSED);
    }

    #[test]
    fn plugins_load_only_from_trusted_plugin_dirs() {
        let p = policy();
        for (dir, want) in [
            ("/usr/lib/collectd/", 0),
            // A link to the allowed directory is that directory...
            ("/link", 0),
            ("/tmp/evil", code::REPLACE_PLUGIN_REFUSED),
            // ...but not when someone else could swap it.
            ("/home/u/link", code::REPLACE_PLUGIN_REFUSED),
        ] {
            let config = with_monitor(vec![item("PluginDir", dir, vec![])], "broker");
            assert_eq!(check(&p, &config, true), want, "{dir}");
        }
    }

    #[test]
    fn includes_only_plain_paths_from_the_allowed_directories() {
        let p = policy();
        for (path, ok) in [
            ("/etc/collectd/collectd.conf.d", true),
            ("/etc/collectd/../shadow", false),
            ("/etc/shadow", false),
            ("relative.conf", false),
            // wordexp would split, expand or glob these.
            ("/etc/collectd/a /etc/shadow", false),
            ("/etc/collectd/$HOME", false),
            ("/etc/collectd/*", false),
            ("~root/x", false),
        ] {
            assert_eq!(p.include(path, &fs).is_ok(), ok, "{path}");
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
            assert_eq!(check(&p, &config, false), want, "{path}");
        }
    }

    #[test]
    fn every_monitor_block_counts_however_it_is_spelled() {
        let p = policy();
        let changed = with_monitor(vec![], "evil-broker");
        assert_eq!(check(&p, &changed, false), code::REPLACE_BLOCK_REFUSED);
        assert_eq!(check(&p, &changed, true), 0);
        let dropped = root(vec![item("LoadPlugin", "cpu", vec![])]);
        assert_eq!(check(&p, &dropped, false), code::REPLACE_BLOCK_REFUSED);
        let kept = with_monitor(vec![], "broker");
        assert_eq!(check(&p, &kept, false), 0);
        // A second block, spelled as collectd accepts it, is this plugin's.
        let second = with_monitor(
            vec![item(
                "Plugin",
                "Monitor",
                vec![item("PushAllowedPlugins", "exec", vec![])],
            )],
            "broker",
        );
        assert_eq!(check(&p, &second, false), code::REPLACE_BLOCK_REFUSED);
        let loaded_as = root(vec![
            item("LoadPlugin", "MONITOR", vec![]),
            item("Plugin", "monitor", vec![item("Host", "broker", vec![])]),
        ]);
        assert_eq!(check(&p, &loaded_as, false), 0);
    }

    #[test]
    fn plugins_write_only_in_collectds_directories_and_never_into_its_own() {
        let p = policy();
        let csv = |dir: &str| {
            with_monitor(
                vec![
                    item("LoadPlugin", "csv", vec![]),
                    item("Plugin", "csv", vec![item("DataDir", dir, vec![])]),
                ],
                "broker",
            )
        };
        for (dir, want) in [
            ("/var/lib/collectd/csv", 0),
            ("csv", 0),
            ("stdout", 0),
            ("/etc/cron.d", code::REPLACE_PATH_REFUSED),
            // Through a link that leads out.
            ("/var/lib/collectd/evil/cron.d", code::REPLACE_PATH_REFUSED),
            // Above the task journal.
            ("/var/lib/collectd", code::REPLACE_PATH_REFUSED),
            ("/var/lib/collectd/monitor/x", code::REPLACE_PATH_REFUSED),
        ] {
            assert_eq!(check(&p, &csv(dir), false), want, "{dir}");
        }
        for (key, value, want) in [
            ("PIDFile", "/run/collectd.pid", 0),
            ("PIDFile", "/etc/passwd", code::REPLACE_PATH_REFUSED),
            ("PIDFile", "/var/lib/collectd/c.pid", 0),
            ("BaseDir", "/var/lib/collectd/", 0),
            ("BaseDir", "/srv/elsewhere", code::REPLACE_PATH_REFUSED),
        ] {
            let config = with_monitor(vec![item(key, value, vec![])], "broker");
            assert_eq!(check(&p, &config, false), want, "{key} {value}");
        }
        let log = |file: &str| {
            with_monitor(
                vec![item("Plugin", "LogFile", vec![item("File", file, vec![])])],
                "broker",
            )
        };
        assert_eq!(check(&p, &log("/var/log/collectd/c.log"), false), 0);
        // Where includes are read from, or collectd.conf itself.
        for file in [
            "/etc/collectd/collectd.conf.d/evil.conf",
            "/etc/collectd/collectd.conf",
        ] {
            assert_eq!(
                check(&p, &log(file), false),
                code::REPLACE_PATH_REFUSED,
                "{file}"
            );
        }
    }

    #[test]
    fn plugins_read_only_logs_and_kernel_files_and_no_file_urls() {
        let p = policy();
        let tail = |file: &str| {
            with_monitor(
                vec![item("Plugin", "tail", vec![item("File", file, vec![])])],
                "broker",
            )
        };
        assert_eq!(check(&p, &tail("/var/log/syslog"), false), 0);
        assert_eq!(
            check(&p, &tail("/etc/shadow"), false),
            code::REPLACE_PATH_REFUSED
        );
        let curl = with_monitor(
            vec![item(
                "Plugin",
                "curl_json",
                vec![item("URL", "FILE:///etc/shadow", vec![])],
            )],
            "broker",
        );
        assert_eq!(check(&p, &curl, false), code::REPLACE_PATH_REFUSED);
    }

    #[test]
    fn the_state_directory_stays_where_the_journal_is() {
        let p = policy();
        assert!(p.same_state_dir(Path::new("monitor"), &fs).is_ok());
        assert!(
            p.same_state_dir(Path::new("/var/lib/collectd/monitor/"), &fs)
                .is_ok()
        );
        let e = p.same_state_dir(Path::new("/tmp/new"), &fs).unwrap_err();
        assert_eq!(e.code, code::REPLACE_PATH_REFUSED);
    }
}
