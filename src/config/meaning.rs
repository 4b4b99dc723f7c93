//! Checks of what settings mean, beyond their types: values that cannot
//! work (a zero limit that quarantines every rule file, topics on which the
//! plugin would answer its own results for ever) and config.json objects
//! that name a key twice (JSON parsers keep the last one in silence).

use super::schema::Settings;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;

/// Records the history may keep: at about 1 KiB each, 1 GiB of disk.
const MAX_HISTORY_RECORDS: u64 = 1_000_000;

/// Why the settings cannot work, naming the key.
pub fn check(s: &Settings) -> Result<(), String> {
    let positive: [(&str, u64); 12] = [
        ("PauseDefaultDuration", s.pause_default_duration),
        ("HistoryMaxRecords", s.history_max_records),
        ("HistoryMaxAge", s.history_max_age),
        ("PauseMaxDuration", s.pause_max_duration),
        ("RuleFuel", s.rule_fuel),
        ("RuleMemoryLimit", s.rule_memory_limit),
        ("RuleTimeout", s.rule_timeout),
        ("RuleCrashLimit", s.rule_crash_limit),
        ("MaxConcurrentCommands", s.max_concurrent_commands),
        ("CommandTimeout", s.command_timeout),
        ("MaxPayloadBytes", s.max_payload_bytes),
        ("KeepAlive", s.keep_alive),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err(format!("key `{key}`: must be greater than 0"));
        }
    }
    if s.history_max_records > MAX_HISTORY_RECORDS {
        return Err(format!(
            "key `HistoryMaxRecords`: at most {MAX_HISTORY_RECORDS}"
        ));
    }
    if s.rule_memory_limit > MAX_RULE_MEMORY_MIB {
        return Err(format!(
            "key `RuleMemoryLimit`: at most {MAX_RULE_MEMORY_MIB} MiB"
        ));
    }
    for (file, limits) in &s.rule_files {
        for (key, value) in [
            ("Fuel", limits.fuel),
            ("MemoryLimit", limits.memory_limit),
            ("Timeout", limits.timeout),
        ] {
            if value == Some(0) {
                return Err(format!(
                    "key `RuleFiles.{file}.{key}`: must be greater than 0"
                ));
            }
        }
        if limits.memory_limit.is_some_and(|m| m > MAX_RULE_MEMORY_MIB) {
            return Err(format!(
                "key `RuleFiles.{file}.MemoryLimit`: at most {MAX_RULE_MEMORY_MIB} MiB"
            ));
        }
    }
    for (name, service) in &s.services {
        if service.timeout == Some(0) {
            return Err(format!(
                "key `Services.{name}.Timeout`: must be greater than 0"
            ));
        }
    }
    // The plugin publishes on these: a broker refuses a wildcard in a topic
    // name (mosquitto drops the connection), and a NUL is never valid.
    for (key, topic) in [
        ("CommandResultTopic", &s.command_result_topic),
        ("StatusTopic", &s.status_topic),
    ] {
        if let Some(topic) = topic
            && let Some(c) = topic.chars().find(|c| matches!(c, '+' | '#' | '\0'))
        {
            return Err(format!(
                "key `{key}`: {c:?} in \"{}\": the plugin publishes on this topic, and a published topic may not hold wildcards",
                topic.escape_debug()
            ));
        }
    }
    if !s.sandbox_user.is_empty()
        && !matches!(nix::unistd::User::from_name(&s.sandbox_user), Ok(Some(u)) if !u.uid.is_root())
    {
        return Err(format!(
            "key `SandboxUser`: {:?} is no user of this host other than root (rule workers run as it; \"\" keeps collectd's user)",
            s.sandbox_user
        ));
    }
    if s.fleet_monitor_config_dir.is_some() {
        if s.host.is_none() {
            return Err("key `FleetMonitorConfigDir`: central rules send requests through the broker: set Host".into());
        }
        if let Some(t) = &s.fleet_status_topic
            && (!t.contains("%{hostname}") || t.contains(['+', '#']))
        {
            return Err(
                "key `FleetStatusTopic`: a topic with %{hostname} (and no wildcard)".into(),
            );
        }
        for (key, topic) in [
            ("FleetCommandTopic", &s.fleet_command_topic),
            ("FleetResultTopic", &s.fleet_result_topic),
        ] {
            match topic {
                Some(t) if t.contains("%{hostname}") && !t.contains(['+', '#']) => {}
                _ => {
                    return Err(format!(
                        "key `{key}`: central rules need it, a topic with %{{hostname}} (and no wildcard)"
                    ));
                }
            }
        }
        for (key, value) in [
            ("FleetTaskWindow", s.fleet_task_window),
            ("FleetRequestTimeout", s.fleet_request_timeout),
        ] {
            if value == 0 {
                return Err(format!("key `{key}`: must be greater than 0"));
            }
        }
        crate::amount::Amount::parse(&s.fleet_max_in_flight)
            .map_err(|e| format!("key `FleetMaxInFlight`: {e}"))?;
        if s.fleet_max_hosts == 0 {
            return Err("key `FleetMaxHosts`: must be greater than 0".into());
        }
        let controllers = &s.fleet_controller_topic;
        if !controllers.is_empty() {
            if !controllers.contains("%{hostname}") || controllers.contains(['+', '#']) {
                return Err("key `FleetControllerTopic`: a topic with %{hostname} (and no wildcard), or \"\" for none".into());
            }
            let filter = controllers.replace("%{hostname}", "+");
            for (key, topic) in [
                ("FleetResultTopic", &s.fleet_result_topic),
                ("FleetStatusTopic", &s.fleet_status_topic),
                ("FleetCommandTopic", &s.fleet_command_topic),
            ] {
                if let Some(t) = topic
                    && (filter_matches(&filter, t)
                        || filter_matches(&t.replace("%{hostname}", "+"), controllers))
                {
                    return Err(format!(
                        "key `FleetControllerTopic`: \"{controllers}\" and {key} \"{t}\" overlap: announcements and the hosts' messages would be taken for each other"
                    ));
                }
            }
        }
    }
    if let (Some(commands), Some(status)) = (&s.command_topic, &s.status_topic)
        && filter_matches(commands, status)
    {
        return Err(format!(
            "key `StatusTopic`: \"{status}\" is also matched by CommandTopic \"{commands}\": the host's presence would arrive as a command"
        ));
    }
    if let (Some(commands), Some(results)) = (&s.command_topic, &s.command_result_topic) {
        // Both expand `%{hostname}` the same way: compare them as written.
        if filter_matches(commands, results) {
            return Err(format!(
                "key `CommandResultTopic`: \"{results}\" is also matched by CommandTopic \"{commands}\": the plugin would take its own results for commands"
            ));
        }
    }
    Ok(())
}

/// What is allowed but weakens the plugin, said at every start and by
/// `config check`.
pub fn warnings(s: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if s.fleet_monitor_config_dir.is_none() {
        return out;
    }
    if s.fleet_accept_unproven_values {
        out.push("WARNING: FleetAcceptUnprovenValues is true: central rules take every value list for the host it names, so anyone who can send to this collectd's network plugin picks the host to repair (a lab setting: use SecurityLevel Sign and leave it false)".into());
    }
    if s.fleet_status_topic.is_none() && s.fleet_host_keys.is_none() {
        out.push("central rules know no host: set FleetStatusTopic (the hosts announce themselves) or FleetHostKeys (the hosts and their keys); until then every decision is held back (unknown_host)".into());
    }
    if s.signing_key.is_none() {
        out.push("central rules sign nothing (no SigningKey): hosts with TrustedKeys refuse their requests".into());
    }
    out
}

/// Largest `RuleMemoryLimit` (MiB): the sandbox's address-space limit is
/// twice it plus a base, and must stay a number the kernel takes.
pub const MAX_RULE_MEMORY_MIB: u64 = 1 << 20;

/// Whether the MQTT topic filter `filter` (with `+` and `#`) matches the
/// topic name `topic`.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match (part, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// Parses a JSON text, failing on the first object that names a key twice
/// (with the key's path).
pub fn no_duplicate_keys(json: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    Unique::deserialize(&mut de)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Any JSON value, checked for repeated keys in its objects.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{key}` appears twice in one object (only one would count)"
                )));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Settings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn zero_limits_and_looping_topics_are_refused() {
        assert!(check(&settings("{}")).is_ok());
        for (json, key) in [
            (r#"{"RuleMemoryLimit": 0}"#, "RuleMemoryLimit"),
            (r#"{"RuleFuel": 0}"#, "RuleFuel"),
            (r#"{"RuleTimeout": 0}"#, "RuleTimeout"),
            (r#"{"MaxConcurrentCommands": 0}"#, "MaxConcurrentCommands"),
            (
                r#"{"RuleFiles": {"a.lua": {"Timeout": 0}}}"#,
                "RuleFiles.a.lua.Timeout",
            ),
            (
                r#"{"Services": {"x": {"Timeout": 0}}}"#,
                "Services.x.Timeout",
            ),
            (
                r#"{"CommandTopic": "c/%{hostname}", "CommandResultTopic": "c/%{hostname}"}"#,
                "CommandResultTopic",
            ),
            (
                r#"{"CommandTopic": "c/#", "CommandResultTopic": "c/r/%{hostname}"}"#,
                "CommandResultTopic",
            ),
            (r#"{"CommandResultTopic": "res/+"}"#, "CommandResultTopic"),
            (r#"{"StatusTopic": "status/#"}"#, "StatusTopic"),
        ] {
            let e = check(&settings(json)).unwrap_err();
            assert!(e.contains(&format!("`{key}`")), "{json}: {e}");
        }
        let ok = r#"{"CommandTopic": "cmd/%{hostname}", "CommandResultTopic": "res/%{hostname}"}"#;
        assert!(check(&settings(ok)).is_ok());
    }

    #[test]
    fn mqtt_filters_match_as_brokers_do() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("#", "x/y"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(!filter_matches("a/b/c", "a/b"));
    }

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert!(no_duplicate_keys(br#"{"a": 1, "b": [{"c": 1}]}"#).is_ok());
        let e = no_duplicate_keys(br#"{"Host": "a", "Host": "b"}"#).unwrap_err();
        assert!(e.contains("`Host` appears twice"), "{e}");
        let e =
            no_duplicate_keys(br#"{"S": {"x": {"commands": {"r": "a", "r": "b"}}}}"#).unwrap_err();
        assert!(e.contains("`r` appears twice"), "{e}");
    }
}
