//! What to do with a parsed request: a pure function of the request, the
//! journal's memory of its task id, the configured services and the clock.

use super::journal::TaskPhase;
use super::message::{Ask, Request, RuleRef};
use super::repeat::RuleRuns;
use crate::auth::{ConfigRight, TrustedKeys};
use crate::config::{Missing, Service, find_command};
use crate::history::Record;
use crate::task::{TaskResult, code, iso8601};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The context a decision depends on.
pub struct RequestPolicy<'a> {
    pub services: &'a BTreeMap<String, Service>,
    /// Requests stamped further than this from `now` (either way) are refused.
    pub max_age: Duration,
    pub now: SystemTime,
    /// With trusted keys, only requests signed by one of them, for
    /// `hostname`, within the key's rights, go further.
    pub trust: Option<&'a TrustedKeys>,
    /// collectd's `Hostname`, which signatures bind.
    pub hostname: &'a str,
    /// `AllowConfigPush`.
    pub config_push: bool,
    /// `AllowRulesPush`, and a rule directory to push to.
    pub rules_push: bool,
    /// The central rules' commands this host ran lately.
    pub rule_runs: Option<&'a RuleRuns>,
}

/// The verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Run the configured command line.
    Run {
        task_id: u64,
        service: String,
        command: String,
        line: String,
        /// The service's own `Timeout`, if any.
        timeout: Option<Duration>,
        /// The key that signed it (`key ops`), for the log and the history.
        who: String,
        /// The central rule it comes from, if any.
        rule: Option<RuleRef>,
    },
    /// Do not run; answer with this result.
    Reply(TaskResult),
    /// Replace collectd.conf with `config`.
    Replace {
        task_id: u64,
        config: String,
        /// The sender may change this plugin's own block: there are no
        /// trusted keys (as before them), or its key has `config=all`.
        may_change_block: bool,
        /// Only check it and say what would change.
        dry_run: bool,
        who: String,
    },
    /// Carry out a request with a body (a pause, say); `who` names the
    /// key that signed it, for the log and the history, `rights` what it
    /// may (`None`: no trusted keys, every request is anyone's).
    Ask {
        task_id: u64,
        ask: Ask,
        who: String,
        rights: Option<crate::auth::Rights>,
    },
    /// Do not run and do not answer (the broker redelivered a task we
    /// already handled); the reason is logged.
    Ignore(String),
}

/// The history record of a refused request, or `None`: refusals of
/// requests that did not prove their sender are not kept, since anyone
/// who may publish could flood the history with them and push out what
/// matters.
pub fn refusal_record(request: &Request, result: &TaskResult) -> Option<Record> {
    let unproven = [
        code::UNSIGNED,
        code::UNKNOWN_KEY,
        code::BAD_SIGNATURE,
        code::WRONG_HOST,
    ];
    if unproven.contains(&result.code) {
        return None;
    }
    let who = request
        .auth()
        .key
        .as_ref()
        .map_or_else(|| "an unsigned request".into(), |k| format!("key {k}"));
    Some(
        Record::new("refused", &request.describe(), &who)
            .task(result.task_id)
            .result(result.code, &result.message),
    )
}

/// Decides what `request` leads to. `redelivered` is the MQTT DUP flag;
/// `seen` is what the journal knows of the task id.
pub fn decide(
    request: &Request,
    redelivered: bool,
    seen: Option<TaskPhase>,
    policy: &RequestPolicy<'_>,
) -> Decision {
    let sender = match admit(request, redelivered, seen, policy) {
        Ok(sender) => sender,
        Err(decision) => return *decision,
    };
    let task_id = request.task_id();
    match request {
        Request::Ask {
            ask: Ask::Rules(_) | Ask::Rollback(_),
            ..
        } if !policy.rules_push => reply(
            policy,
            task_id,
            code::RULES_PUSH_OFF,
            "this host does not take pushed rule files (AllowRulesPush false, or no LocalMonitorConfigDir)".into(),
        ),
        Request::Ask { ask, .. } => Decision::Ask {
            task_id,
            ask: ask.clone(),
            who: sender.who,
            rights: sender.rights,
        },
        Request::Config { .. } if !policy.config_push => reply(
            policy,
            task_id,
            code::REPLACE_PUSH_OFF,
            "this host does not take pushed configs (AllowConfigPush false)".into(),
        ),
        Request::Config {
            config, dry_run, ..
        } => Decision::Replace {
            task_id,
            config: config.clone(),
            may_change_block: sender.may_change_block,
            dry_run: *dry_run,
            who: sender.who,
        },
        Request::Command {
            service,
            command,
            rule,
            ..
        } => decide_command(task_id, service, command, rule.as_ref(), sender.who, policy),
    }
}

/// Who sent a request that may go further, and what they may.
struct Sender {
    who: String,
    rights: Option<crate::auth::Rights>,
    may_change_block: bool,
}

fn reply(policy: &RequestPolicy<'_>, task_id: u64, code: i64, message: String) -> Decision {
    Decision::Reply(TaskResult {
        task_id,
        timestamp: iso8601(policy.now),
        message,
        code,
    })
}

/// What every request passes, in this order: its sender proven (before
/// anything else: an unauthenticated sender learns nothing of the journal
/// and cannot use up a task id), the right to push config.json, the
/// journal's memory of its task id, and its age.
fn admit(
    request: &Request,
    redelivered: bool,
    seen: Option<TaskPhase>,
    policy: &RequestPolicy<'_>,
) -> Result<Sender, Box<Decision>> {
    let task_id = request.task_id();
    let refuse = |code: i64, message: String| Err(Box::new(reply(policy, task_id, code, message)));
    let (sender, may_push_config_json) = match policy
        .trust
        .map(|t| t.authorize(&request.presented(), policy.hostname))
    {
        None => {
            let who = "an unsigned request".to_string();
            let sender = Sender {
                who,
                rights: None,
                may_change_block: true,
            };
            (sender, true)
        }
        Some(Ok((name, rights))) => {
            let may_push = rights.rules == ConfigRight::All;
            let sender = Sender {
                who: format!("key {name}"),
                may_change_block: rights.config == ConfigRight::All,
                rights: Some(rights),
            };
            (sender, may_push)
        }
        Some(Err(refusal)) => return refuse(refusal.code, refusal.message),
    };
    if let Request::Ask {
        ask: Ask::Rules(bundle),
        ..
    } = request
        && bundle.config.is_some()
        && !may_push_config_json
    {
        // config.json defines the commands that run: as strong as
        // collectd.conf's own block.
        let who = &sender.who;
        return refuse(
            code::NOT_PERMITTED,
            format!("{who} may not push config.json (it needs rules=all)"),
        );
    }
    match seen {
        // Accepted before a restart but never started: run it now.
        None | Some(TaskPhase::Received) => {}
        Some(_) if redelivered => {
            return Err(Box::new(Decision::Ignore(format!(
                "task {task_id}: redelivered by the broker, already handled"
            ))));
        }
        Some(_) => {
            return refuse(
                code::DUPLICATE_TASK,
                format!("task {task_id} already ran or is running; not run again"),
            );
        }
    }
    match staleness(request.timestamp(), policy) {
        Some(why) => refuse(code::STALE, why),
        None => Ok(sender),
    }
}

/// Why a request stamped `stamp` is too old or too far ahead, if it is.
fn staleness(stamp: SystemTime, policy: &RequestPolicy<'_>) -> Option<String> {
    let max = policy.max_age.as_secs();
    if let Ok(age) = policy.now.duration_since(stamp) {
        (age > policy.max_age).then(|| {
            format!(
                "timestamp {} is {} s old, more than CommandMaxAge ({max} s); not run",
                iso8601(stamp),
                age.as_secs()
            )
        })
    } else {
        let ahead = stamp.duration_since(policy.now).unwrap_or_default();
        (ahead > policy.max_age).then(|| {
            format!(
                "timestamp {} is {} s in the future, more than CommandMaxAge ({max} s); check the clocks; not run",
                iso8601(stamp),
                ahead.as_secs()
            )
        })
    }
}

/// A command request: the configured line to run, or why not.
fn decide_command(
    task_id: u64,
    service: &str,
    command: &str,
    rule: Option<&RuleRef>,
    who: String,
    policy: &RequestPolicy<'_>,
) -> Decision {
    if policy.services.is_empty() {
        return reply(
            policy,
            task_id,
            code::NO_SERVICES,
            "no services are configured".into(),
        );
    }
    let (svc, line) = match find_command(policy.services, service, command) {
        Ok(found) => found,
        Err(missing) => {
            let code = match missing {
                Missing::Service => code::UNKNOWN_SERVICE,
                Missing::Command => code::UNKNOWN_COMMAND,
            };
            return reply(policy, task_id, code, missing.message(service, command));
        }
    };
    let wanted = crate::task::CommandRef::new(service, command);
    if let (Some(rule), Some(runs)) = (rule, policy.rule_runs)
        && let Some(earlier) = runs.earlier(rule, &wanted, policy.now)
    {
        let why = super::repeat::refusal(rule, &wanted, earlier);
        return reply(policy, task_id, code::REPEATED_RULE, why);
    }
    Decision::Run {
        task_id,
        service: service.to_string(),
        command: command.to_string(),
        line: line.to_string(),
        timeout: svc.timeout.map(Duration::from_secs),
        who,
        rule: rule.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> BTreeMap<String, Service> {
        let mut hello = Service::default();
        hello.commands.insert("exec".into(), "/bin/echo hi".into());
        BTreeMap::from([("hello".to_string(), hello)])
    }

    fn command(service: &str, cmd: &str, age_secs: i64) -> Request {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let timestamp = if age_secs >= 0 {
            now - Duration::from_secs(age_secs as u64)
        } else {
            now + Duration::from_secs((-age_secs) as u64)
        };
        Request::Command {
            task_id: 9,
            timestamp,
            service: service.into(),
            command: cmd.into(),
            auth: Default::default(),
            origin: None,
            rule: None,
        }
    }

    fn decide_now(r: &Request, dup: bool, seen: Option<TaskPhase>) -> Decision {
        let services = services();
        let policy = RequestPolicy {
            services: &services,
            max_age: Duration::from_secs(300),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            trust: None,
            hostname: "web1",
            config_push: true,
            rules_push: true,
            rule_runs: None,
        };
        decide(r, dup, seen, &policy)
    }

    fn code_of(d: Decision) -> i64 {
        match d {
            Decision::Reply(r) => r.code,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn runs_only_configured_commands() {
        assert_eq!(
            decide_now(&command("hello", "exec", 10), false, None),
            Decision::Run {
                task_id: 9,
                service: "hello".into(),
                command: "exec".into(),
                line: "/bin/echo hi".into(),
                timeout: None,
                who: "an unsigned request".into(),
                rule: None,
            }
        );
        assert_eq!(
            code_of(decide_now(&command("nginx", "exec", 10), false, None)),
            code::UNKNOWN_SERVICE
        );
        assert_eq!(
            code_of(decide_now(&command("hello", "rm", 10), false, None)),
            code::UNKNOWN_COMMAND
        );
        let empty = BTreeMap::new();
        let policy = RequestPolicy {
            services: &empty,
            max_age: Duration::from_secs(300),
            now: SystemTime::now(),
            trust: None,
            hostname: "web1",
            config_push: true,
            rules_push: true,
            rule_runs: None,
        };
        let r = Request::Command {
            task_id: 1,
            timestamp: SystemTime::now(),
            service: "a".into(),
            command: "b".into(),
            auth: Default::default(),
            origin: None,
            rule: None,
        };
        assert_eq!(code_of(decide(&r, false, None, &policy)), code::NO_SERVICES);
    }

    #[test]
    fn refuses_stale_and_future_timestamps() {
        assert_eq!(
            code_of(decide_now(&command("hello", "exec", 301), false, None)),
            code::STALE
        );
        assert_eq!(
            code_of(decide_now(&command("hello", "exec", -301), false, None)),
            code::STALE
        );
        assert!(matches!(
            decide_now(&command("hello", "exec", -299), false, None),
            Decision::Run { .. }
        ));
    }

    #[test]
    fn duplicates_are_answered_redeliveries_ignored_unstarted_tasks_run() {
        let r = command("hello", "exec", 1);
        for phase in [TaskPhase::Running, TaskPhase::Done, TaskPhase::Published] {
            assert_eq!(
                code_of(decide_now(&r, false, Some(phase))),
                code::DUPLICATE_TASK
            );
            assert!(matches!(
                decide_now(&r, true, Some(phase)),
                Decision::Ignore(_)
            ));
        }
        assert!(matches!(
            decide_now(&r, true, Some(TaskPhase::Received)),
            Decision::Run { .. }
        ));
    }

    #[test]
    fn a_central_rules_command_runs_once_per_rule_and_window() {
        let services = services();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut runs = RuleRuns::default();
        let rule = RuleRef {
            name: "app.lua::down".into(),
            window: 300,
        };
        let hello = crate::task::CommandRef::new("hello", "exec");
        runs.ran(&rule, &hello, 5, now - Duration::from_secs(10));
        let mut r = command("hello", "exec", 1);
        if let Request::Command { rule: r, .. } = &mut r {
            *r = Some(rule.clone());
        }
        let policy = |runs| RequestPolicy {
            services: &services,
            max_age: Duration::from_secs(300),
            now,
            trust: None,
            hostname: "web1",
            config_push: true,
            rules_push: true,
            rule_runs: runs,
        };
        assert_eq!(
            code_of(decide(&r, false, None, &policy(Some(&runs)))),
            code::REPEATED_RULE
        );
        // Without that memory (or for a plain remote command) it runs.
        assert!(matches!(
            decide(&r, false, None, &policy(None)),
            Decision::Run { rule: Some(_), .. }
        ));
        assert!(matches!(
            decide(
                &command("hello", "exec", 1),
                false,
                None,
                &policy(Some(&runs))
            ),
            Decision::Run { rule: None, .. }
        ));
    }
}
