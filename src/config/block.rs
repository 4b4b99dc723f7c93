//! The `<Plugin monitor>` block of collectd.conf, turned into the same JSON
//! shape as config.json so one schema validates both:
//!
//! ```text
//! <Plugin monitor>
//!   MonitorConfigPath "/etc/collectd/monitor/config.json"
//!   LocalMonitorConfigDir "/etc/collectd/monitor/local"
//!   QoS 1
//!   <Service "hello">
//!     Command "exec" "/bin/echo 'Hello World!'"
//!   </Service>
//! </Plugin>
//! ```

use super::schema::{RULE_FILE_KEYS, SERVICE_KEYS, TOP_LEVEL_KEYS};
use super::{ConfigItem, ConfigValue};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// A block's content: where config.json is, and the settings written inline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginBlock {
    pub monitor_config_path: Option<PathBuf>,
    /// Inline settings in config.json's shape, validated later by the schema.
    pub settings: Map<String, Value>,
}

/// A block that cannot even be mapped (wrong arity, duplicate keys).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("<Plugin monitor> in collectd.conf: {0}")]
pub struct BlockError(pub String);

impl PluginBlock {
    /// Maps the children of one or more `<Plugin monitor>` blocks.
    pub fn from_items(items: &[ConfigItem]) -> Result<PluginBlock, BlockError> {
        let mut block = PluginBlock::default();
        for item in items {
            if item.key.eq_ignore_ascii_case("MonitorConfigPath") {
                let path = single_string(item)?;
                if block.monitor_config_path.replace(path.into()).is_some() {
                    return Err(duplicate(&item.key));
                }
            } else if item.key.eq_ignore_ascii_case("Service") {
                block.add_service(item)?;
            } else if item.key.eq_ignore_ascii_case("RuleFile") {
                block.add_rule_file(item)?;
            } else {
                let key = canonical(&item.key, TOP_LEVEL_KEYS);
                let value = if LIST_KEYS.contains(&key.as_str()) {
                    list_value(item)?
                } else {
                    single_value(item)?
                };
                if block.settings.insert(key.clone(), value).is_some() {
                    return Err(duplicate(&key));
                }
            }
        }
        Ok(block)
    }

    /// `<RuleFile "disk.lua"> MemoryLimit 16 </RuleFile>` -> `RuleFiles`.
    fn add_rule_file(&mut self, item: &ConfigItem) -> Result<(), BlockError> {
        let name = block_name(item, "<RuleFile \"disk.lua\">")?;
        let files = self.section("RuleFiles")?;
        let mut limits = Map::new();
        for child in &item.children {
            let key = canonical(&child.key, RULE_FILE_KEYS);
            let value = single_value(child)
                .map_err(|e| BlockError(format!("<RuleFile \"{name}\">: {}", e.0)))?;
            if limits.insert(key.clone(), value).is_some() {
                return Err(BlockError(format!(
                    "<RuleFile \"{name}\">: `{key}` given twice"
                )));
            }
        }
        if files.insert(name.clone(), Value::Object(limits)).is_some() {
            return Err(BlockError(format!("<RuleFile \"{name}\"> given twice")));
        }
        Ok(())
    }

    /// The object a named block goes into (`Services`, `RuleFiles`).
    fn section(&mut self, key: &str) -> Result<&mut Map<String, Value>, BlockError> {
        self.settings
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| BlockError(format!("`{key}` given twice")))
    }

    fn add_service(&mut self, item: &ConfigItem) -> Result<(), BlockError> {
        let name = block_name(item, "<Service \"nginx\">")?;
        let services = self.section("Services")?;
        if services.contains_key(&name) {
            return Err(BlockError(format!("<Service \"{name}\"> given twice")));
        }
        let mut service = Map::new();
        let mut commands = Map::new();
        for child in &item.children {
            if child.key.eq_ignore_ascii_case("Command") {
                match child.values.as_slice() {
                    [ConfigValue::String(cmd), ConfigValue::String(line)]
                        if child.children.is_empty() =>
                    {
                        if commands
                            .insert(cmd.clone(), Value::String(line.clone()))
                            .is_some()
                        {
                            return Err(BlockError(format!(
                                "<Service \"{name}\">: Command \"{cmd}\" given twice"
                            )));
                        }
                    }
                    _ => {
                        return Err(BlockError(format!(
                            "<Service \"{name}\">: Command takes two strings, a name and a command line: Command \"restart\" \"systemctl restart {name}\""
                        )));
                    }
                }
            } else {
                let key = canonical(&child.key, SERVICE_KEYS);
                let value = single_value(child)
                    .map_err(|e| BlockError(format!("<Service \"{name}\">: {}", e.0)))?;
                if service.insert(key.clone(), value).is_some() {
                    return Err(BlockError(format!(
                        "<Service \"{name}\">: `{key}` given twice"
                    )));
                }
            }
        }
        service.insert("commands".into(), Value::Object(commands));
        services.insert(name, Value::Object(service));
        Ok(())
    }
}

/// The one string argument of a named block (`<Service "nginx">`).
fn block_name(item: &ConfigItem, example: &str) -> Result<String, BlockError> {
    match item.values.as_slice() {
        [ConfigValue::String(name)] if !name.is_empty() => Ok(name.clone()),
        _ => Err(BlockError(format!(
            "<{}> needs exactly one argument, its name: {example}",
            item.key
        ))),
    }
}

/// collectd's keys are case-insensitive; the schema's are not. Unknown keys
/// keep their spelling so the schema's error names them as written.
fn canonical(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map_or_else(|| key.to_string(), |k| k.to_string())
}

fn duplicate(key: &str) -> BlockError {
    BlockError(format!("`{key}` given twice"))
}

/// Keys that take a list: `PushAllowedPlugins "cpu" "memory"`.
const LIST_KEYS: &[&str] = &["PushAllowedPlugins", "PushIncludeDirs", "PushWritableDirs"];

fn list_value(item: &ConfigItem) -> Result<Value, BlockError> {
    if !item.children.is_empty() {
        return Err(BlockError(format!("`{}` is not a block", item.key)));
    }
    item.values
        .iter()
        .map(|v| match v {
            ConfigValue::String(s) => Ok(Value::String(s.clone())),
            other => Err(BlockError(format!(
                "`{}` takes strings, got {other}",
                item.key
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn single_value(item: &ConfigItem) -> Result<Value, BlockError> {
    if !item.children.is_empty() {
        return Err(BlockError(format!("`{}` is not a block", item.key)));
    }
    match item.values.as_slice() {
        [ConfigValue::String(s)] => Ok(Value::String(s.clone())),
        [ConfigValue::Boolean(b)] => Ok(Value::Bool(*b)),
        // Integral numbers become JSON integers so integer fields accept them.
        [ConfigValue::Number(n)] if n.fract() == 0.0 && *n >= 0.0 && *n < 2f64.powi(53) => {
            Ok(Value::from(*n as u64))
        }
        [ConfigValue::Number(n)] => Ok(serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        values => Err(BlockError(format!(
            "`{}` takes exactly one value, got {}",
            item.key,
            values.len()
        ))),
    }
}

fn single_string(item: &ConfigItem) -> Result<String, BlockError> {
    match single_value(item)? {
        Value::String(s) => Ok(s),
        other => Err(BlockError(format!(
            "`{}` takes a string, got {other}",
            item.key
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, values: Vec<ConfigValue>) -> ConfigItem {
        ConfigItem {
            key: key.into(),
            values,
            children: vec![],
        }
    }
    fn s(v: &str) -> ConfigValue {
        ConfigValue::String(v.into())
    }

    #[test]
    fn maps_keys_case_insensitively_and_services() {
        let items = vec![
            line("monitorconfigpath", vec![s("/etc/x.json")]),
            line("qos", vec![ConfigValue::Number(1.0)]),
            line("Secure", vec![ConfigValue::Boolean(true)]),
            ConfigItem {
                key: "Service".into(),
                values: vec![s("hello")],
                children: vec![
                    line("Command", vec![s("exec"), s("/bin/echo hi")]),
                    line("pidpath", vec![s("/run/x.pid")]),
                ],
            },
        ];
        let b = PluginBlock::from_items(&items).unwrap();
        assert_eq!(b.monitor_config_path, Some("/etc/x.json".into()));
        assert_eq!(
            Value::Object(b.settings),
            serde_json::json!({
                "QoS": 1, "Secure": true,
                "Services": {"hello": {"commands": {"exec": "/bin/echo hi"}, "PIDPath": "/run/x.pid"}}
            })
        );
    }

    #[test]
    fn maps_rule_file_blocks_to_rule_files() {
        let items = vec![ConfigItem {
            key: "rulefile".into(),
            values: vec![s("disk.lua")],
            children: vec![
                line("memorylimit", vec![ConfigValue::Number(16.0)]),
                line("Fuel", vec![ConfigValue::Number(1000.0)]),
            ],
        }];
        let b = PluginBlock::from_items(&items).unwrap();
        assert_eq!(
            Value::Object(b.settings),
            serde_json::json!({"RuleFiles": {"disk.lua": {"MemoryLimit": 16, "Fuel": 1000}}})
        );
        let twice = vec![items[0].clone(), items[0].clone()];
        assert!(
            PluginBlock::from_items(&twice)
                .unwrap_err()
                .0
                .contains("given twice")
        );
    }

    #[test]
    fn rejects_wrong_arity_and_duplicates() {
        let two = vec![line("Host", vec![s("a"), s("b")])];
        assert!(
            PluginBlock::from_items(&two)
                .unwrap_err()
                .0
                .contains("exactly one value")
        );
        let dup = vec![line("Host", vec![s("a")]), line("host", vec![s("b")])];
        assert!(
            PluginBlock::from_items(&dup)
                .unwrap_err()
                .0
                .contains("`Host` given twice")
        );
        let bad_cmd = vec![ConfigItem {
            key: "Service".into(),
            values: vec![s("x")],
            children: vec![line("Command", vec![s("only-name")])],
        }];
        assert!(
            PluginBlock::from_items(&bad_cmd)
                .unwrap_err()
                .0
                .contains("two strings")
        );
    }
}
