//! One entry of the history, and which entries a query wants: pure.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of a record's outcome kept (the first lines of a command's output
/// are what tells what happened; the rest went out in its result).
const MAX_OUTCOME: usize = 1024;
/// Bytes of the other texts of a record.
const MAX_TEXT: usize = 512;
/// Records one query returns at most.
pub const MAX_LIMIT: usize = 1000;
/// Records one query returns without `limit`.
const DEFAULT_LIMIT: usize = 100;

/// What happened, when, on whose behalf, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When it ended, ISO-8601 UTC.
    pub at: String,
    /// `rule` (a local rule's decision), `remote` (a remote command),
    /// `config` (a collectd.conf push), `pause`, `resume`, `refused` (a
    /// request not carried out).
    pub kind: String,
    /// What was asked for: `service/command`, `collectd.conf`, a pause's
    /// scope.
    pub what: String,
    /// Who asked: the rule (`file.lua::metric::handler`), or the key
    /// (`key ops`; `unsigned` without trusted keys).
    pub who: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<u64>,
    /// The result code (0 success); none for what did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// How it ended, in words (the first part of a command's output).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The series a rule acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// A refusal repeated (the same request again, a replay): how many
    /// times, `at` being the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Record {
    /// A record of `kind` for `what`, asked for by `who`, ending now.
    pub fn new(kind: &str, what: &str, who: &str) -> Record {
        Record {
            at: crate::task::iso8601(SystemTime::now()),
            kind: kind.to_string(),
            what: bounded(what, MAX_TEXT),
            who: bounded(who, MAX_TEXT),
            task_id: None,
            code: None,
            outcome: String::new(),
            duration_ms: None,
            series: None,
            count: None,
        }
    }

    /// With its task id.
    pub fn task(self, task_id: u64) -> Record {
        Record {
            task_id: Some(task_id),
            ..self
        }
    }

    /// With its result: code and message (bounded).
    pub fn result(self, code: i64, message: &str) -> Record {
        Record {
            code: Some(code),
            outcome: bounded(message, MAX_OUTCOME),
            ..self
        }
    }

    /// With an outcome that has no code (paused, accepted).
    pub fn outcome(self, text: &str) -> Record {
        Record {
            outcome: bounded(text, MAX_OUTCOME),
            ..self
        }
    }

    /// With how long it took.
    pub fn took(self, duration: std::time::Duration) -> Record {
        Record {
            duration_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
            ..self
        }
    }

    /// With the series a rule acted on.
    pub fn on_series(self, series: &str) -> Record {
        Record {
            series: Some(bounded(series, MAX_TEXT)),
            ..self
        }
    }

    /// Its service, when `what` is `service/command`.
    fn service(&self) -> Option<&str> {
        self.what.split_once('/').map(|(s, _)| s)
    }

    /// `service/command`, when `what` is one.
    pub fn command(&self) -> Option<(&str, &str)> {
        self.what
            .split_once('/')
            .filter(|(s, c)| !s.is_empty() && !c.is_empty() && !c.contains('/'))
    }

    /// A refusal: kept in a share of its own, repeats counted in one.
    pub fn is_refusal(&self) -> bool {
        self.kind == "refused"
    }

    /// Whether `later` is the same refusal again (the same request from
    /// the same sender, refused the same way).
    pub fn repeats(&self, later: &Record) -> bool {
        self.is_refusal()
            && later.is_refusal()
            && (&self.what, &self.who, self.task_id, self.code)
                == (&later.what, &later.who, later.task_id, later.code)
    }
}

/// Which records a reader wants (`history --since --service --kind
/// --limit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Only records from this many seconds ago on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_secs: Option<u64>,
    /// Only this service's (`nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Only this kind (`rule`, `remote`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The newest this many (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl Query {
    /// How many records it returns at most.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// The oldest key (microseconds since the epoch) it wants, at `now`.
    pub fn oldest(&self, now: SystemTime) -> u64 {
        self.since_secs.map_or(0, |secs| {
            micros(now).saturating_sub(secs.saturating_mul(1_000_000))
        })
    }

    /// Whether `record` is one it wants (time aside).
    pub fn wants(&self, record: &Record) -> bool {
        self.service
            .as_ref()
            .is_none_or(|s| record.service() == Some(s.as_str()))
            && self.kind.as_ref().is_none_or(|k| *k == record.kind)
    }
}

/// Microseconds since the epoch: the store's keys.
pub fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn texts_are_bounded_on_character_boundaries() {
        let r = Record::new("rule", &"é".repeat(600), "x").result(0, &"ü".repeat(2000));
        assert!(r.what.len() <= MAX_TEXT + "…".len());
        assert!(r.outcome.len() <= MAX_OUTCOME + "…".len());
        assert!(r.outcome.ends_with('…'));
    }

    #[test]
    fn queries_select_by_service_kind_and_time() {
        let r = Record::new("rule", "nginx/restart", "web.lua::metric::down");
        let q = |service: Option<&str>, kind: Option<&str>| Query {
            service: service.map(Into::into),
            kind: kind.map(Into::into),
            ..Query::default()
        };
        assert!(q(None, None).wants(&r));
        assert!(q(Some("nginx"), Some("rule")).wants(&r));
        assert!(!q(Some("ngin"), None).wants(&r));
        assert!(!q(None, Some("remote")).wants(&r));
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let since = Query {
            since_secs: Some(10),
            ..Query::default()
        };
        assert_eq!(since.oldest(now), 90_000_000);
        assert_eq!(Query::default().oldest(now), 0);
        let many = Query {
            limit: Some(1_000_000),
            ..Query::default()
        };
        assert_eq!(many.limit(), MAX_LIMIT);
    }
}
