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

/// Longest line written to a log; the rest is cut (untrusted text, such as
/// a field name in an MQTT message, can be megabytes).
pub const MAX_LOG_LINE: usize = 4096;

/// A message of several lines (a command's output, a refusal and its
/// cause) on one escaped line: its non-empty lines trimmed and joined by
/// ` / `, at most `max` bytes (cut on a character boundary, marked ` ...`).
pub fn one_line(message: &str, max: usize) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    let mut end = joined.len().min(max);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < joined.len() { " ..." } else { "" };
    format!("{}{more}", loggable(&joined[..end]))
}

/// `text` as one log line: control characters (newlines above all, which
/// would let untrusted text forge log lines) escaped as `\n`, `\r`,
/// `\t`, `\xNN`, and the line cut at [`MAX_LOG_LINE`] bytes.
pub fn loggable(text: &str) -> std::borrow::Cow<'_, str> {
    let clean = !text.chars().any(|c| c.is_control()) && text.len() <= MAX_LOG_LINE;
    if clean {
        return text.into();
    }
    let mut out = String::with_capacity(text.len().min(MAX_LOG_LINE + 32));
    for (i, c) in text.char_indices() {
        if out.len() >= MAX_LOG_LINE {
            out.push_str(&format!(" [{} more bytes cut]", text.len() - i));
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

/// Writes one line to collectd's log. The message is passed as an argument
/// to a constant `"%s"` format, so a `%` in user data can never be read as a
/// format directive. Control characters (interior NULs included) are
/// escaped and long lines cut ([`loggable`]).
pub fn plugin_log(level: LogLevel, message: &str) {
    let text = CString::new(loggable(message).into_owned()).expect("NULs are escaped");
    // SAFETY: both pointers are valid NUL-terminated strings for the whole
    // call; the format is the constant "%s" with exactly one matching
    // `char *` argument, so the variadic call reads exactly what we pass.
    unsafe {
        sys::plugin_log(level as i32, c"%s".as_ptr(), text.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_stays_on_one_bounded_line() {
        assert_eq!(loggable("plain text"), "plain text");
        assert_eq!(
            loggable("x\n[info] monitor: forged\r\t\0\u{1b}"),
            "x\\n[info] monitor: forged\\r\\t\\x00\\x1b"
        );
        let long = "é".repeat(MAX_LOG_LINE);
        let cut = loggable(&long);
        assert!(cut.len() < MAX_LOG_LINE + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!(" [{} more bytes cut]", long.len() - MAX_LOG_LINE)));
    }
}
