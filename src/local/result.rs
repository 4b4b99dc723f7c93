//! The result notification of a rule-triggered command, exactly as the old
//! project sent it (docs/COMPATIBILITY.md §2), within collectd's real field limits.

use crate::collectd::{MESSAGE_MAX_BYTES, NAME_MAX_BYTES, truncate_utf8};
use crate::events::{Notification, Severity};
use serde::Serialize;

/// Kept for existing consumers of the old project's notifications.
pub const RESULT_PLUGIN: &str = "lua-collectd-monitor-local";

/// The plugin name of a central repair's result notification on the
/// controller: told apart from the host's own repairs.
pub const CENTRAL_RESULT_PLUGIN: &str = "monitor-central";

/// Marks a message cut to fit collectd's notification size.
const CUT_MARK: &str = " [truncated]";

#[derive(Serialize)]
struct Message<'a> {
    task_id: u64,
    message: &'a str,
    code: i64,
}

/// The notification for one command run on behalf of `handler` (the label
/// `<file>::metric::<name>`).
pub fn result_notification(
    host: &str,
    handler: &str,
    task_id: u64,
    code: i64,
    output: &str,
) -> Notification {
    Notification {
        severity: if code == 0 {
            Severity::Okay
        } else {
            Severity::Failure
        },
        time: 0.0,
        message: fit_message(task_id, code, output, MESSAGE_MAX_BYTES),
        host: host.to_string(),
        plugin: RESULT_PLUGIN.into(),
        plugin_instance: String::new(),
        type_: fit_type(handler, NAME_MAX_BYTES),
        type_instance: String::new(),
        meta: vec![],
    }
}

/// The notification a rule asked for instead of a command
/// (`{notify = "text"}`): a warning from `handler` (its label as the
/// type, as result notifications have it), the text as the message, cut
/// to fit.
pub fn rule_notification(host: &str, plugin: &str, handler: &str, text: &str) -> Notification {
    Notification {
        severity: Severity::Warning,
        time: 0.0,
        message: crate::collectd::truncate_utf8(text, MESSAGE_MAX_BYTES - 1).to_string(),
        host: host.to_string(),
        plugin: plugin.into(),
        plugin_instance: String::new(),
        type_: fit_type(handler, NAME_MAX_BYTES),
        type_instance: String::new(),
        meta: vec![],
    }
}

/// The JSON message, with the output cut (on a character boundary, marked)
/// so the whole text fits in `max` bytes and stays valid JSON.
pub fn fit_message(task_id: u64, code: i64, output: &str, max: usize) -> String {
    let json = |message: &str| {
        serde_json::to_string(&Message {
            task_id,
            message,
            code,
        })
        .unwrap_or_default()
    };
    let whole = json(output);
    if whole.len() <= max {
        return whole;
    }
    let mut keep = output.len().saturating_sub(whole.len() - max);
    loop {
        let cut = format!("{}{CUT_MARK}", truncate_utf8(output, keep));
        let text = json(&cut);
        if text.len() <= max || keep == 0 {
            return text;
        }
        // Escapes take more room than the characters they stand for.
        keep = keep.saturating_sub((text.len() - max).max(1));
    }
}

/// The handler label as the notification type. A label longer than
/// collectd's type field keeps its end (the handler name, which tells most)
/// behind a `..` that shows it was cut.
pub fn fit_type(handler: &str, max: usize) -> String {
    if handler.len() <= max {
        return handler.to_string();
    }
    let mut start = handler.len() - (max - 2);
    while !handler.is_char_boundary(start) {
        start += 1;
    }
    format!("..{}", &handler[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_old_projects_notification() {
        let n = result_notification("h", "/r/example.lua::metric::low", 7, 0, "Hello World!");
        assert_eq!(n.severity, Severity::Okay);
        assert_eq!(n.plugin, "lua-collectd-monitor-local");
        assert_eq!(n.type_, "/r/example.lua::metric::low");
        assert_eq!(
            n.message,
            r#"{"task_id":7,"message":"Hello World!","code":0}"#
        );
        let failed = result_notification("h", "x", 8, 3, "");
        assert_eq!(failed.severity, Severity::Failure);
    }

    #[test]
    fn long_output_is_cut_into_valid_json_that_fits() {
        for output in [
            "x".repeat(1_000_000),
            "\"".repeat(500),
            "é".repeat(300),
            "\u{1}".repeat(300),
        ] {
            let text = fit_message(1, 2, &output, MESSAGE_MAX_BYTES);
            assert!(text.len() <= MESSAGE_MAX_BYTES, "{} bytes", text.len());
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(v["message"].as_str().unwrap().ends_with(CUT_MARK));
            assert_eq!(
                (v["task_id"].as_u64(), v["code"].as_i64()),
                (Some(1), Some(2))
            );
        }
    }

    #[test]
    fn long_handler_labels_keep_their_end() {
        let label = format!("/{}/f.lua::metric::the_handler", "d".repeat(200));
        let t = fit_type(&label, NAME_MAX_BYTES);
        assert_eq!(t.len(), NAME_MAX_BYTES);
        assert!(t.starts_with("..") && t.ends_with("f.lua::metric::the_handler"));
    }
}
