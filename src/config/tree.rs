//! A collectd configuration as an owned tree: the `<Plugin monitor>`
//! block, a parsed collectd.conf that a push wants to install. Plain data,
//! validated by `config` and `reconfig`; copied out of collectd's
//! `oconfig_item_t` by `crate::collectd`.

use std::fmt;

/// One value of a config line: `Key "string" 1.5 true`.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    String(String),
    Number(f64),
    Boolean(bool),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::String(s) => write!(f, "{s:?}"),
            ConfigValue::Number(n) => write!(f, "{n}"),
            ConfigValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// A config line or block: `Key values...` or `<Key values...> children </Key>`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConfigItem {
    pub key: String,
    pub values: Vec<ConfigValue>,
    pub children: Vec<ConfigItem>,
}

impl ConfigItem {
    /// `Key "value"` with `children`: a tree written in code (the checks'
    /// tests, which read like the collectd.conf they stand for).
    pub fn string(key: &str, value: &str, children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem {
            key: key.into(),
            values: vec![ConfigValue::String(value.into())],
            children,
        }
    }

    /// The root of a file: no key, these lines.
    pub fn root(children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem {
            children,
            ..ConfigItem::default()
        }
    }
}
