//! Notifications in both directions: the ones collectd hands to our
//! notification callback, and the ones we dispatch (command results, plugin
//! health) with collectd's real field limits.

use super::metric::fixed_str;
use super::sys;
use super::time::{cdtime_to_secs, secs_to_cdtime};
use crate::events::{MetaValue, Notification, Severity};
use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::c_char;

/// Longest `message` collectd keeps, in bytes (its buffer minus the NUL).
pub const MESSAGE_MAX_BYTES: usize = sys::NOTIF_MAX_MSG_LEN as usize - 1;
/// Longest host/plugin/type/instance name collectd keeps, in bytes.
pub const NAME_MAX_BYTES: usize = sys::DATA_MAX_NAME_LEN as usize - 1;

/// # Safety
/// `n` must point to a notification that is valid for the duration of
/// the call, with a well-formed (null-terminated) meta list, as inside
/// collectd's notification callbacks.
pub(super) unsafe fn notification_from_raw(n: &sys::notification_t) -> Notification {
    let mut meta = Vec::new();
    let mut cursor = n.meta;
    // SAFETY (loop): each `cursor` is either null or a node of collectd's
    // meta list, valid for the call; union members are read according to
    // the node's type tag, as collectd writes them.
    while let Some(node) = unsafe { cursor.as_ref() } {
        let value = unsafe {
            match node.type_ {
                sys::notification_meta_type_e_NM_TYPE_STRING => {
                    let s = node.nm_value.nm_string;
                    if s.is_null() {
                        None
                    } else {
                        Some(MetaValue::String(
                            CStr::from_ptr(s).to_string_lossy().into_owned(),
                        ))
                    }
                }
                sys::notification_meta_type_e_NM_TYPE_SIGNED_INT => {
                    Some(MetaValue::Signed(node.nm_value.nm_signed_int))
                }
                sys::notification_meta_type_e_NM_TYPE_UNSIGNED_INT => {
                    Some(MetaValue::Unsigned(node.nm_value.nm_unsigned_int))
                }
                sys::notification_meta_type_e_NM_TYPE_DOUBLE => {
                    Some(MetaValue::Double(node.nm_value.nm_double))
                }
                sys::notification_meta_type_e_NM_TYPE_BOOLEAN => {
                    Some(MetaValue::Boolean(node.nm_value.nm_boolean))
                }
                _ => None,
            }
        };
        if let Some(value) = value {
            meta.push((fixed_str(&node.name).into_owned(), value));
        }
        cursor = node.next;
    }
    Notification {
        // collectd only produces 1, 2 and 4; anything else is treated as
        // the most severe so it is not ignored.
        severity: Severity::try_from(n.severity).unwrap_or(Severity::Failure),
        time: cdtime_to_secs(n.time),
        message: fixed_str(&n.message).into_owned(),
        host: fixed_str(&n.host).into_owned(),
        plugin: fixed_str(&n.plugin).into_owned(),
        plugin_instance: fixed_str(&n.plugin_instance).into_owned(),
        type_: fixed_str(&n.type_).into_owned(),
        type_instance: fixed_str(&n.type_instance).into_owned(),
        meta,
    }
}

/// collectd's struct for `n`, its fields cut to collectd's limits.
fn notification_to_raw(n: &Notification) -> sys::notification_t {
    let mut raw = sys::notification_t {
        severity: n.severity as i32,
        time: secs_to_cdtime(n.time),
        ..Default::default()
    };
    copy_truncated(&mut raw.message, &n.message);
    copy_truncated(&mut raw.host, &n.host);
    copy_truncated(&mut raw.plugin, &n.plugin);
    copy_truncated(&mut raw.plugin_instance, &n.plugin_instance);
    copy_truncated(&mut raw.type_, &n.type_);
    copy_truncated(&mut raw.type_instance, &n.type_instance);
    raw
}

/// The longest prefix of `s` that fits in `max` bytes and ends on a
/// character boundary, so a cut never produces invalid UTF-8.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(super) fn copy_truncated(dst: &mut [c_char], src: &str) {
    let kept = truncate_utf8(src, dst.len() - 1);
    // Interior NULs would silently shorten the field in C; stop at the first.
    let kept = kept.split('\0').next().unwrap_or("");
    for (d, s) in dst.iter_mut().zip(kept.bytes()) {
        *d = s as c_char;
    }
    dst[kept.len()] = 0;
}

thread_local! {
    /// Set while this thread is inside `plugin_dispatch_notification` for a
    /// notification of ours. collectd calls notification callbacks
    /// synchronously in the dispatching thread, so this is how our own
    /// callback recognises, and skips, what we emitted ourselves.
    static DISPATCHING: Cell<bool> = const { Cell::new(false) };
}

/// True while the current thread is dispatching one of our notifications.
pub(super) fn dispatching_on_this_thread() -> bool {
    DISPATCHING.with(Cell::get)
}

/// Sends a notification through collectd to every notification consumer
/// (logfile, network, ...), except our own callback. Fields longer than
/// collectd allows are cut on a character boundary. Meta entries are not sent.
pub fn dispatch_notification(n: &Notification) -> Result<(), i32> {
    let raw = notification_to_raw(n);
    let previous = DISPATCHING.with(|d| d.replace(true));
    // SAFETY: `raw` is a fully initialised notification on our stack with a
    // null meta list; collectd only reads it during the call and copies what
    // it keeps.
    let status = unsafe { sys::plugin_dispatch_notification(&raw) };
    DISPATCHING.with(|d| d.set(previous));
    if status == 0 { Ok(()) } else { Err(status) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }

    #[test]
    fn raw_fields_respect_collectd_limits() {
        let n = Notification {
            severity: Severity::Warning,
            time: 0.0,
            message: "é".repeat(200),
            host: "h".into(),
            plugin: "p\0hidden".into(),
            plugin_instance: String::new(),
            type_: "t".repeat(300),
            type_instance: String::new(),
            meta: vec![],
        };
        let raw = notification_to_raw(&n);
        // SAFETY: `raw` is a live local with a null meta list.
        let back = unsafe { notification_from_raw(&raw) };
        assert_eq!(
            back.message.len(),
            254,
            "255 bytes would split a 2-byte char"
        );
        assert_eq!(back.type_.len(), NAME_MAX_BYTES);
        assert_eq!(back.plugin, "p");
        assert_eq!(back.severity, Severity::Warning);
    }
}
