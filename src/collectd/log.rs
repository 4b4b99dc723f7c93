//! collectd's log (`plugin_log`), so our messages obey the `LogLevel` of
//! whatever log plugin (logfile, syslog, log_logstash) the operator loaded.

use super::sys;
use std::ffi::CString;

/// collectd's log severities (syslog numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error = sys::LOG_ERR as isize,
    Warning = sys::LOG_WARNING as isize,
    Notice = sys::LOG_NOTICE as isize,
    Info = sys::LOG_INFO as isize,
    Debug = sys::LOG_DEBUG as isize,
}

/// Writes one line to collectd's log. The message is passed as an argument
/// to a constant `"%s"` format, so a `%` in user data can never be read as a
/// format directive. Interior NUL bytes are replaced rather than cutting the
/// line short.
pub fn plugin_log(level: LogLevel, message: &str) {
    let text = CString::new(message).unwrap_or_else(|_| {
        CString::new(message.replace('\0', "\\0")).expect("NULs were replaced")
    });
    // SAFETY: both pointers are valid NUL-terminated strings for the whole
    // call; the format is the constant "%s" with exactly one matching
    // `char *` argument, so the variadic call reads exactly what we pass.
    unsafe {
        sys::plugin_log(level as i32, c"%s".as_ptr(), text.as_ptr());
    }
}
