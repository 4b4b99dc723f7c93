//! Process-wide settings that collectd imposes on everything it starts.

use nix::sys::signal::{SigHandler, Signal, signal};

/// collectd sets `SIGCHLD` to "ignore", and ignored signals stay ignored
/// across `exec`, so our helper processes start with it too: the kernel
/// then reaps their children at once and no exit status can be read.
/// Helpers call this first, while they are still single-threaded.
pub fn restore_default_sigchld() -> Result<(), String> {
    // SAFETY: installing SIG_DFL registers no handler code, so none of the
    // async-signal-safety hazards of `signal` apply; callers run it before
    // starting threads.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }
        .map(|_| ())
        .map_err(|e| format!("cannot restore the default SIGCHLD disposition: {e}"))
}

/// Closes every file descriptor above stderr. A helper started by collectd
/// inherits collectd's sockets (collectd does not mark them close-on-exec);
/// holding them would keep, say, the network plugin's port busy after
/// collectd exits. Call it first thing, while single-threaded.
pub fn close_inherited_fds() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: plain close(2) on a number: no Rust object in this
        // process owns these descriptors at this point (they were inherited
        // across exec, or belonged to the directory listing dropped above,
        // in which case close fails harmlessly with EBADF).
        unsafe {
            libc::close(fd);
        }
    }
}

/// Gives the memory that `free` kept back to the kernel. A rule worker
/// calls it once its file is loaded: parsing and compiling the file (and
/// the library) leave a megabyte of freed heap behind, which would
/// otherwise count against every worker's resident size.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own allocator state, under
    // glibc's lock; it takes no pointers from us and is safe to call at any
    // time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
