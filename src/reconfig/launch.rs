//! The plugin's half of a config push: check the new collectd.conf with
//! collectd's own parser, take the lock, and hand the job to a detached
//! helper process. Everything here runs inside collectd, on the MQTT thread.

use super::invocation::Invocation;
use super::job::Job;
use super::lock::{self, Busy};
use super::policy::{PushPolicy, Refused};
use super::validate::{DEFAULT_PLUGIN_DIR, validate};
use super::{includes, trusted};
use crate::collectd::parse_config_file;
use crate::config::Service;
use crate::mqtt::Connection;
use crate::task::{TaskResult, code};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the plugin knows that a replacement needs.
#[derive(Clone, Debug)]
pub struct ReplaceContext {
    /// collectd's Hostname: results are signed as this host.
    pub hostname: String,
    /// How this collectd was started (None if /proc was unreadable).
    pub invocation: Option<Invocation>,
    /// `Services.collectd` from the configuration.
    pub service: Option<Service>,
    /// collectd's `PIDFile` global option.
    pub pid_file: Option<PathBuf>,
    pub helper: PathBuf,
    pub state_dir: PathBuf,
    pub timeout_secs: u64,
    pub connection: Connection,
    pub result_topic: String,
    pub qos: u8,
    /// What a pushed config may do here.
    pub policy: super::PushPolicy,
}

/// A pushed collectd.conf, as the host takes it.
#[derive(Clone, Copy, Debug)]
pub struct Push<'a> {
    pub task_id: u64,
    pub config: &'a str,
    /// The sender may change this plugin's own block.
    pub may_change_block: bool,
    /// Only check it and say what would change.
    pub dry_run: bool,
    /// Who asked (`key ops`), for the history record the helper leaves.
    pub who: &'a str,
}

/// Starts a replacement (`Ok(None)`: the helper publishes the result), or
/// answers at once: a dry run's verdict, or a config identical to the
/// running one, which is not applied (`Ok(Some)`); or says why not.
pub fn launch(ctx: &ReplaceContext, push: &Push<'_>) -> Result<Option<TaskResult>, TaskResult> {
    let Push {
        task_id,
        config,
        may_change_block,
        dry_run,
        who,
    } = *push;
    let fail = |code: i64, message: String| TaskResult::now(task_id, code, message);
    let Some(invocation) = ctx.invocation.clone() else {
        return Err(fail(
            code::REPLACE_WRITE_FAILED,
            "collectd's command line is unreadable; cannot restart it".into(),
        ));
    };
    let service = ctx.service.clone().unwrap_or_default();
    let config_path = service
        .config_path
        .clone()
        .unwrap_or_else(|| invocation.config.clone());
    std::fs::create_dir_all(&ctx.state_dir).map_err(|e| {
        fail(
            code::REPLACE_WRITE_FAILED,
            format!("{}: {e}", ctx.state_dir.display()),
        )
    })?;

    // The file as it is now: a push of the same text changes nothing, and
    // a dry run says what would change.
    let current = crate::files::read_regular(
        &config_path,
        MAX_INCLUDED_BYTES * 16,
        crate::files::Links::Follow,
    )
    .map(|b| String::from_utf8_lossy(&b).into_owned())
    .unwrap_or_default();
    if current == config {
        return Ok(Some(TaskResult::now(
            task_id,
            0,
            format!(
                "unchanged: {} already has this text; nothing applied, collectd not restarted",
                config_path.display()
            ),
        )));
    }
    let checked = check(
        &ctx.state_dir,
        task_id,
        config,
        &ctx.policy,
        may_change_block,
    )
    .map_err(|r| fail(r.code, r.message))?;
    if dry_run {
        let mut message = format!(
            "dry run: the config is valid and allowed here; applying it would {}",
            super::changes::describe(&current, config)
        );
        for warning in &checked {
            message.push_str(&format!("\nwarning: {warning}"));
        }
        return Ok(Some(TaskResult::now(task_id, 0, message)));
    }

    let lock_path = ctx.state_dir.join("replace.lock");
    match lock::acquire(&lock_path, task_id) {
        Ok(Some(note)) => tracing::warn!("remote: task {task_id}: {note}"),
        Ok(None) => {}
        Err(Busy::Running { task_id: other }) => {
            return Err(fail(
                code::REPLACE_BUSY,
                format!("another replacement (task {other}) is running"),
            ));
        }
        Err(Busy::Broken(e)) => {
            return Err(fail(
                code::REPLACE_WRITE_FAILED,
                format!("replacement lock: {e}"),
            ));
        }
    }
    let mut invocation = invocation;
    if let (Some(cmd), Some(argv0)) = (&service.command_path, invocation.argv.first_mut()) {
        *argv0 = cmd.display().to_string();
    }
    let job = Job {
        task_id,
        new_config: config.to_string(),
        config_path,
        pid_file: service
            .pid_path
            .clone()
            .or_else(|| ctx.pid_file.clone())
            .or(invocation.pid_file.clone()),
        old_pid: std::process::id(),
        invocation,
        start_command: service.commands.get("start").cloned(),
        stop_command: service.commands.get("stop").cloned(),
        timeout_secs: ctx.timeout_secs,
        connection: ctx.connection.clone(),
        result_topic: ctx.result_topic.clone(),
        qos: ctx.qos,
        report_path: report_path(&ctx.state_dir, task_id),
        publish_patience_secs: ctx.timeout_secs.saturating_mul(3).clamp(10, 120),
        lock_path: lock_path.clone(),
        warnings: checked,
        hostname: ctx.hostname.clone(),
        host_key: Some(ctx.state_dir.join(crate::auth::HOST_KEY_FILE)),
        who: who.to_string(),
    };
    let job_path = ctx.state_dir.join(format!("replace-{task_id}.job"));
    let started = job
        .write(&job_path)
        .and_then(|()| spawn_helper(ctx, task_id, &job_path));
    if let Err(e) = started {
        lock::release(&lock_path, task_id);
        let _ = std::fs::remove_file(&job_path);
        return Err(fail(
            code::SPAWN_FAILED,
            format!("cannot start the replacement helper: {e}"),
        ));
    }
    Ok(None)
}

/// Where a helper that could not publish leaves its result.
pub fn report_path(state_dir: &Path, task_id: u64) -> PathBuf {
    state_dir.join(format!("replace-report-{task_id}.json"))
}

/// Results helpers left behind: `(path, result)` pairs to publish and remove.
pub fn pending_reports(state_dir: &Path) -> Vec<(PathBuf, TaskResult)> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("replace-report-") && n.ends_with(".json"))
        })
        .filter_map(|p| {
            let result = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p, result))
        })
        .collect()
}

/// Included files are parsed only when they are regular files of at most
/// this size.
const MAX_INCLUDED_BYTES: u64 = 1024 * 1024;

/// Parses the text with collectd's parser, expands its includes as
/// collectd will (each path held to the policy before it is read), holds
/// the whole to the host's push policy (a refused config is not looked at
/// further), then validates it; returns the warnings for the result
/// message, or the refusal.
fn check(
    state_dir: &Path,
    task_id: u64,
    config: &str,
    policy: &PushPolicy,
    may_change_block: bool,
) -> Result<Vec<String>, Refused> {
    let invalid = |message: String| Refused {
        code: code::REPLACE_INVALID,
        message,
    };
    let path = state_dir.join(format!("incoming-{task_id}.conf"));
    std::fs::write(&path, config).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let parsed = parse_config_file(&path);
    let _ = std::fs::remove_file(&path);
    let tree = parsed.map_err(|e| {
        invalid(format!(
            "collectd's parser: {}",
            e.replace(&path.display().to_string(), "<new config>")
        ))
    })?;
    let resolve = |p: &Path| trusted::resolve(p);
    let allow = |p: &str| policy.include(p, &resolve);
    let parse = |p: &Path| {
        crate::files::open_regular(p, MAX_INCLUDED_BYTES, crate::files::Links::Follow)
            .map_err(|e| e.to_string())?;
        parse_config_file(p)
    };
    let tree = includes::expand(
        tree,
        &includes::Reader {
            allow: &allow,
            parse: &parse,
        },
    )?;
    policy.check(&tree, may_change_block, &resolve)?;
    let checked =
        validate(&tree, Path::new(DEFAULT_PLUGIN_DIR), &|p: &Path| p.exists()).map_err(invalid)?;
    if let Some(new) = &checked.state_dir {
        policy.same_state_dir(new, &resolve)?;
    }
    Ok(checked.warnings)
}

fn spawn_helper(ctx: &ReplaceContext, task_id: u64, job_path: &Path) -> Result<(), String> {
    let log_path = ctx.state_dir.join(format!("replace-{task_id}.log"));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    // Under systemd, stopping collectd kills its whole control group, this
    // helper included: start the helper as a unit of its own instead.
    let mut command = if Path::new("/run/systemd/system").is_dir() {
        let mut c = Command::new("systemd-run");
        c.args([
            "--quiet",
            "--collect",
            "--unit",
            &format!("collectd-monitor-replace-{task_id}"),
            "--",
        ]);
        c.arg(&ctx.helper);
        c
    } else {
        Command::new(&ctx.helper)
    };
    command
        .arg("replace-config")
        .arg("--job")
        .arg(job_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("{}: {e} (set HelperPath)", ctx.helper.display()))
}
