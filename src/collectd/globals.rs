//! Read-only access to collectd's global variables.

use super::sys;
use std::ffi::CStr;

/// collectd's configured `Hostname` (what it stamps on its own values), which
/// is what our notifications must carry, not `gethostname()`. `None` before
/// collectd has set it (during `module_register` and config parsing).
pub fn hostname() -> Option<String> {
    // SAFETY: `hostname_g` is a `char *` global owned by collectd. It is set
    // once by collectd's `init_global_variables()` before any plugin `init`
    // callback runs and is not freed while plugins run. We read the pointer
    // value (copying it) and, when non-null, a NUL-terminated string from it.
    unsafe {
        let ptr = std::ptr::addr_of!(sys::hostname_g).read();
        if ptr.is_null() {
            return None;
        }
        Some(CStr::from_ptr(ptr).to_string_lossy().into_owned())
    }
}
