//! `collectd-monitor replace-config --job FILE`: the process that outlives
//! the collectd it restarts. It detaches, runs the procedure, and publishes
//! the one result itself; if the broker cannot be reached it leaves a report
//! file that the restarted plugin publishes.

use super::host::RealHost;
use super::job::Job;
use super::lock;
use super::procedure::replace;
use crate::collectd::{close_inherited_fds, restore_default_sigchld};
use crate::mqtt::publish_confirmed;
use crate::task::TaskResult;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs one replacement; returns the process exit status.
pub fn run_helper(job_path: &Path) -> i32 {
    close_inherited_fds();
    if let Err(e) = restore_default_sigchld() {
        eprintln!("replace-config: {e}");
    }
    // Leave collectd's session and process group, so its end is not ours.
    let _ = nix::unistd::setsid();
    let job = match Job::read(job_path) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("replace-config: cannot read the job: {e}");
            return 2;
        }
    };
    let _ = std::fs::remove_file(job_path);
    if let Err(e) = lock::claim(&job.lock_path, job.task_id) {
        eprintln!(
            "replace-config: task {}: cannot record our pid in the lock: {e}",
            job.task_id
        );
    }
    log(&job, "replacing collectd.conf");
    let started = Instant::now();
    let outcome = replace(&mut RealHost::new(&job));
    let mut message = outcome.message;
    if outcome.code == 0 {
        for warning in &job.warnings {
            message.push_str(" Warning: ");
            message.push_str(warning);
        }
    }
    log(
        &job,
        &format!("finished with code {:#x}: {message}", outcome.code),
    );
    let result = TaskResult::now(job.task_id, outcome.code, message);
    // collectd holds the history's file; the restarted plugin takes this in.
    if let Some(state_dir) = job.report_path.parent() {
        let record = crate::history::Record::new("config", "collectd.conf", &job.who)
            .task(job.task_id)
            .result(result.code, &result.message)
            .took(started.elapsed());
        if let Err(e) = crate::history::leave(state_dir, &record) {
            log(&job, &format!("the history record is lost: {e}"));
        }
    }
    deliver(&job, &result);
    lock::release(&job.lock_path, job.task_id);
    0
}

fn log(job: &Job, what: &str) {
    eprintln!(
        "{} replace-config task {}: {what}",
        crate::task::iso8601(std::time::SystemTime::now()),
        job.task_id
    );
}

/// Publishes the result, or leaves it in the report file for the plugin.
fn deliver(job: &Job, result: &TaskResult) {
    let key = job
        .host_key
        .as_deref()
        .and_then(|p| crate::auth::SigningKey::read(p).ok());
    let signed = crate::auth::SignedResult::new(result.clone(), &job.hostname, key.as_ref());
    let payload = serde_json::to_vec(&signed).unwrap_or_default();
    let qos = crate::mqtt::qos(job.qos);
    let mut connection = job.connection.clone();
    // Not the plugin's id: the restarted plugin may be connected already.
    connection.client_id = format!("{}-replace-{}", connection.client_id, job.task_id);
    connection.clean_session = true;
    connection.manual_acks = false;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(
                job,
                &format!("no runtime to publish with ({e}); leaving a report"),
            );
            return write_report(job, result);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(job.publish_patience_secs);
    loop {
        let attempt = runtime.block_on(publish_confirmed(
            &connection,
            &job.result_topic,
            qos,
            payload.clone(),
            Duration::from_secs(10),
        ));
        match attempt {
            Ok(()) => return log(job, "result published"),
            Err(e) if Instant::now() > deadline => {
                log(
                    job,
                    &format!(
                        "cannot publish the result ({e}); leaving it for the plugin in {}",
                        job.report_path.display()
                    ),
                );
                return write_report(job, result);
            }
            Err(e) => {
                log(
                    job,
                    &format!("publishing the result failed ({e}); retrying"),
                );
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

fn write_report(job: &Job, result: &TaskResult) {
    let tmp = job.report_path.with_extension("tmp");
    let written = serde_json::to_vec(result)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &job.report_path));
    if let Err(e) = written {
        log(
            job,
            &format!(
                "cannot write the report {}: {e}; the result is lost",
                job.report_path.display()
            ),
        );
    }
}
