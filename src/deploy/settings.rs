//! What a pushed config.json may change, as OpAMP's agent-side allow-list:
//! the commands (`Services`) and how rules run (their limits, cooldowns,
//! the command runner's bounds, the log level). Everything else decides
//! who may do what and where state lives (`TrustedKeys`, `StateDir`, the
//! push switches, the broker and its topics, `SigningKey`, the history's
//! bounds, `HelperPath`, the rule directories, `SandboxUser`) and stays
//! as the host's own file says: a push that changes one is refused naming
//! it. Pure: the caller passes both files' JSON objects.

use serde_json::{Map, Value};

/// The top-level keys a pushed config.json may change.
pub const PUSHABLE: &[&str] = &[
    "Services",
    "RuleFuel",
    "RuleMemoryLimit",
    "RuleTimeout",
    "RuleCrashLimit",
    "RuleReloadInterval",
    "RuleFiles",
    "CommandCooldown",
    "CommandTimeout",
    "MaxConcurrentCommands",
    "CommandOutputLimit",
    "LogLevel",
    "PauseDefaultDuration",
];

/// The keys outside [`PUSHABLE`] whose value `pushed` would change from
/// `running` (set, unset or different), in name order.
pub fn refused_changes(running: &Map<String, Value>, pushed: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = running.keys().chain(pushed.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !PUSHABLE.contains(&k.as_str()))
        .filter(|k| running.get(*k) != pushed.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn services_and_rule_options_may_change_trust_and_state_may_not() {
        let running = object(json!({
            "Host": "broker:1883",
            "TrustedKeys": "/etc/collectd/monitor/trusted-keys",
            "Services": {"app": {"commands": {"restart": "a"}}},
            "RuleTimeout": 500,
        }));
        let fine = object(json!({
            "Host": "broker:1883",
            "TrustedKeys": "/etc/collectd/monitor/trusted-keys",
            "Services": {"newsvc": {"commands": {"go": "b"}}},
            "RuleTimeout": 900,
            "CommandCooldown": 0,
        }));
        assert!(refused_changes(&running, &fine).is_empty());
        // Moving the journal, dropping the keys, another broker, turning
        // pushes on: each named.
        let mut bad = fine.clone();
        bad.insert("StateDir".into(), json!("/tmp/elsewhere"));
        bad.remove("TrustedKeys");
        bad.insert("Host".into(), json!("evil:1883"));
        bad.insert("AllowConfigPush".into(), json!(true));
        assert_eq!(
            refused_changes(&running, &bad),
            ["AllowConfigPush", "Host", "StateDir", "TrustedKeys"]
        );
        // The same value written again is no change.
        let mut same = fine;
        same.insert("SandboxUser".into(), json!("nobody"));
        let mut with = running.clone();
        with.insert("SandboxUser".into(), json!("nobody"));
        assert!(refused_changes(&with, &same).is_empty());
    }
}
