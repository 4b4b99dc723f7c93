//! The task id of a central decision, derived from what it decides: the
//! rule file and handler, the host, the service/command, and the time
//! window it falls in. Two controllers fed the same values make the same
//! decision with the same id, and the host's task journal runs it once
//! (the second request is answered `0x1100`).
//!
//! The trade-off of the window: a fault that both controllers see on either
//! side of a window's edge gets two ids, so at most one extra run per edge;
//! and within one window, a repeated decision for the same host and command
//! is the same task, so a fault that persists is repaired again only in the
//! next window. Windows of the order of the rule's cooldown fit both.

use crate::task::CommandRef;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First line of what is hashed; a later scheme changes it.
const VERSION: &str = "collectd-monitor-central-task-v1";

/// Task ids stay below 2^53, exact in a JSON double (controllers written
/// in JavaScript), as `send-command`'s do.
const ID_MASK: u64 = (1 << 53) - 1;

/// The id of the decision `rule_file`::`handler` took for `host` asking
/// for `command`, at `time`, with windows of `window` (at least a second).
pub fn derived_task_id(
    rule_file: &str,
    handler: &str,
    host: &str,
    command: &CommandRef,
    time: SystemTime,
    window: Duration,
) -> u64 {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let index = seconds / window.as_secs().max(1);
    // Each field on its own line, lengths first: no choice of names can
    // make two different decisions hash the same text.
    let mut text = format!("{VERSION}\n");
    for field in [rule_file, handler, host, &command.service, &command.command] {
        text.push_str(&format!("{}:{field}\n", field.len()));
    }
    text.push_str(&format!("window={index}\n"));
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    // 0 is no task id anyone sends.
    (u64::from_be_bytes(first) & ID_MASK).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn the_same_decision_in_the_same_window_has_the_same_id_and_others_do_not() {
        let nginx = CommandRef::new("nginx", "restart");
        let window = Duration::from_secs(300);
        let id = |file: &str, handler: &str, host: &str, cmd: &CommandRef, t: u64| {
            derived_task_id(file, handler, host, cmd, at(t), window)
        };
        let first = id("web.lua", "down", "web1", &nginx, 600);
        // Two controllers, anywhere in the same window.
        assert_eq!(first, id("web.lua", "down", "web1", &nginx, 899));
        assert!(first < 1 << 53 && first > 0);
        for other in [
            id("web.lua", "down", "web1", &nginx, 900),
            id("web.lua", "down", "web2", &nginx, 600),
            id("web.lua", "slow", "web1", &nginx, 600),
            id("db.lua", "down", "web1", &nginx, 600),
            id(
                "web.lua",
                "down",
                "web1",
                &CommandRef::new("nginx", "reload"),
                600,
            ),
            // Fields do not run into each other.
            id("web.lua", "downweb1", "", &nginx, 600),
        ] {
            assert_ne!(first, other);
        }
    }
}
