//! Settings: the `<Plugin monitor>` block of collectd.conf and the
//! `config.json` of lua-collectd-monitor, merged into one typed [`Settings`].
//!
//! Both sources use the same key names and the same schema, so an operator
//! can move a key from one file to the other; `config.json` wins where both
//! set a key (whole top-level key, `Services` included). Every error names
//! the file and the key, and nothing here touches collectd: the plugin and
//! the `collectd-monitor config check` command call the same code.

mod block;
mod file_check;
mod load;
mod meaning;
mod reload;
mod schema;
mod tree;

pub use block::{BlockError, PluginBlock};
pub use file_check::{BlockReport, CHECK_KEY};
pub use load::{ConfigError, Loaded, load, load_json_file};
pub use meaning::{filter_matches, no_duplicate_keys};
pub use reload::{ConfigReload, LiveServices, Reloaded, Watcher};
pub use schema::{
    LogDevice, LogLevelName, Missing, Qos, Service, Settings, TOP_LEVEL_KEYS, find_command,
};
pub use tree::{ConfigItem, ConfigValue};
