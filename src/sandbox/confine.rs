//! What a rule worker (and the checker of a pushed rule set) does to itself
//! before it runs a line of a rule file: drop every descriptor but its
//! pipes, give up root for an unprivileged user (`SandboxUser`), cap its
//! address space, and install a seccomp filter that leaves it only the
//! system calls a computation needs (read and write on the pipes it
//! already has, memory, time, exit).
//!
//! The Lua library is already a closed world; this is the second wall, for
//! the day a bug in the VM or in our library lets a rule reach further.

use nix::sys::resource::{Resource, setrlimit};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;

/// Address space granted on top of the Lua memory limit: the binary, its
/// libraries, the stack, and room for one last allocation to be refused
/// after the VM's own limit has been passed between two fuel slices.
const ADDRESS_SPACE_BASE: u64 = 256 * 1024 * 1024;

/// The only system calls a worker may make once confined. Anything else
/// fails with EPERM (not a kill: a refused call is an error message, not a
/// mysterious crash).
const ALLOWED: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_sched_yield,
    // A thread's start-up in the C library (harmless: per-thread
    // registrations of the thread's own memory).
    libc::SYS_rseq,
    libc::SYS_set_robust_list,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// Gives up collectd's user for `user` (its uid, its primary group, no
/// supplementary groups), when running as root: a rule then cannot read
/// or write what only root may, whatever else fails. A process that is
/// not root has nothing to give up, and keeps its user.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, User, setgid, setgroups, setuid};
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let found = User::from_name(user)
        .map_err(|e| format!("SandboxUser {user}: {e}"))?
        .ok_or_else(|| format!("SandboxUser {user}: no such user"))?;
    if found.uid.is_root() {
        return Err(format!("SandboxUser {user} is root"));
    }
    setgroups(&[]).map_err(|e| format!("cannot drop the supplementary groups: {e}"))?;
    setgid(found.gid).map_err(|e| format!("cannot take group {}: {e}", found.gid))?;
    setuid(found.uid).map_err(|e| format!("cannot take user {user}: {e}"))?;
    // A process that can become root again has given up nothing.
    if setuid(Uid::from_raw(0)).is_ok() || nix::unistd::setgid(Gid::from_raw(0)).is_ok() {
        return Err(format!(
            "still able to become root after taking user {user}"
        ));
    }
    Ok(())
}

/// Confines a checker of `files` rule files that has read them already
/// (`rules check --sandbox`): tied to its parent, as `user` when given,
/// then the limits and filter of a rule worker, with room for every file's
/// VM. The watchdog must run already (`watchdog::start`).
pub fn confine_checker(user: Option<&str>, files: usize) -> Result<Option<String>, String> {
    super::watchdog::die_with_parent();
    if let Some(user) = user {
        drop_privileges(user)?;
        super::watchdog::die_with_parent();
    }
    let memory = crate::lua::VmLimits::default()
        .memory
        .saturating_mul(files.max(1));
    confine(memory)
}

/// Confines the calling process, all its threads. `memory` is the Lua
/// limit in bytes. Call it after reading the rule file and before running
/// it. The resource limits are required; a kernel that refuses the seccomp
/// filter (old, or a container that forbids it) gives a warning instead,
/// returned for the caller to pass on: the closed Lua library still holds.
pub fn confine(memory: usize) -> Result<Option<String>, String> {
    crate::collectd::close_inherited_fds();
    let address_space = ADDRESS_SPACE_BASE.saturating_add(2 * memory as u64);
    setrlimit(Resource::RLIMIT_AS, address_space, address_space)
        .map_err(|e| format!("cannot limit the address space: {e}"))?;
    // No core files from a worker that aborts on a failed allocation.
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("cannot disable core files: {e}"))?;
    // Even if a file descriptor leaked in, no new one can be made.
    setrlimit(Resource::RLIMIT_NOFILE, 3, 3)
        .map_err(|e| format!("cannot limit file descriptors: {e}"))?;
    Ok(install_seccomp().err().map(|e| {
        format!("{e}; running without the system-call filter (rlimits and the closed Lua library still apply)")
    }))
}

fn install_seccomp() -> Result<(), String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("seccomp: unsupported architecture: {e:?}"))?;
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        ALLOWED.iter().map(|nr| (*nr, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let program: BpfProgram = filter.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    // Sets no_new_privs and loads the filter for every thread of the
    // process (TSYNC): the hang watchdog's thread already runs.
    seccompiler::apply_filter_all_threads(&program).map_err(|e| format!("seccomp: {e}"))
}
