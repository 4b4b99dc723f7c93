//! collectd's own configuration parser and global options, for checking a
//! collectd.conf pushed over MQTT exactly as collectd will read it, without
//! starting anything (`collectd -t` checks nothing in Debian's build and
//! `collectd -T` runs every plugin).

use super::config_tree::config_item_from_raw;
use super::sys;
use crate::config::ConfigItem;
use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

/// collectd's parser keeps global state and prints its errors on stderr:
/// one parse at a time.
static PARSER: Mutex<()> = Mutex::new(());

unsafe extern "C" {
    /// The line counter of collectd's flex scanner. `oconfig_parse_file`
    /// does not reset it, so without help a parse error in a new file is
    /// reported at the line count of collectd.conf plus the real line.
    static mut yylineno: std::os::raw::c_int;

    /// Frees the flex scanner's buffers and resets its globals. After a
    /// parse error the scanner keeps the unread rest of that file in its
    /// buffer, and the next parse would read it first.
    fn yylex_destroy() -> std::os::raw::c_int;
}

/// Parses `path` with collectd's `oconfig_parse_file`. On failure, the
/// parser's own message (which it prints on stderr) is the error.
pub fn parse_config_file(path: &Path) -> Result<ConfigItem, String> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: path contains a NUL byte", path.display()))?;
    let _one_at_a_time = PARSER
        .lock()
        .map_err(|_| "config parser lock poisoned".to_string())?;
    let (tree, stderr) = capture_stderr(|| {
        // SAFETY: `yylineno` and `yylex_destroy` are exported by collectd's
        // flex scanner (`yylex_destroy` only frees the scanner's own
        // buffers, which nothing else holds between parses);
        // the PARSER lock held here makes us its only user at runtime
        // (collectd itself parses only at start-up). `c_path` is a valid C
        // string for the call. The returned
        // tree is owned by us, read by `from_raw` and freed exactly once
        // with `oconfig_free`, its matching deallocator.
        unsafe {
            std::ptr::addr_of_mut!(yylineno).write(1);
            let root = sys::oconfig_parse_file(c_path.as_ptr());
            // The file is closed by now; nothing of this parse may reach
            // the next one.
            yylex_destroy();
            if root.is_null() {
                return None;
            }
            let tree = config_item_from_raw(&*root);
            sys::oconfig_free(root);
            Some(tree)
        }
    });
    tree.unwrap_or_else(|| {
        let message = stderr.trim();
        Err(if message.is_empty() {
            format!("{}: collectd's parser rejected the file", path.display())
        } else {
            message.to_string()
        })
    })
}

/// Runs `f` with file descriptor 2 pointing into a pipe, and returns what
/// was written there. Anything else collectd prints on stderr meanwhile is
/// captured too; the parse takes microseconds. The pipe is made
/// close-on-exec, and the drain ends once `f` has returned and the pipe
/// is empty, not at end of file: a child another thread forked meanwhile
/// inherits descriptor 2 and may hold the pipe open for as long as it
/// lives.
fn capture_stderr<T>(f: impl FnOnce() -> T) -> (T, String) {
    let setup = (|| {
        let saved = nix::unistd::dup(std::io::stderr()).ok()?;
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        Some((saved, reader, writer))
    })();
    let Some((saved, reader, writer)) = setup else {
        return (f(), String::new());
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || drain_until_done(std::fs::File::from(reader), &done))
    };
    let redirected = nix::unistd::dup2_stderr(&writer).is_ok();
    drop(writer);
    let value = f();
    let _ = nix::unistd::dup2_stderr(&saved);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let text = drain.join().unwrap_or_default();
    (value, if redirected { text } else { String::new() })
}

/// Reads `pipe` (at most 64 KiB kept) until its end, or until `done` and
/// nothing more is waiting in it.
fn drain_until_done(mut pipe: std::fs::File, done: &std::sync::atomic::AtomicBool) -> String {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    const KEPT: usize = 64 * 1024;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let ready = {
            let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(20u8)).unwrap_or(0)
        };
        if ready == 0 {
            if finished {
                break;
            }
            continue;
        }
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = KEPT.saturating_sub(text.len());
                text.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// A collectd global option (`PIDFile`, `BaseDir`, `Hostname`, ...) as
/// collectd resolved it from its command line and configuration.
pub fn global_option(name: &str) -> Option<String> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: `c_name` is a valid C string; collectd returns a pointer into
    // its own option table (or null), valid while collectd runs, which we
    // copy at once.
    unsafe {
        let value = sys::global_option_get(c_name.as_ptr());
        if value.is_null() {
            None
        } else {
            Some(CStr::from_ptr(value).to_string_lossy().into_owned())
        }
    }
}
