//! The first stage of a message on the command topic: what it is, before
//! anything is decided. Messages for central rules are handed over;
//! retained, oversized and unreadable ones are dropped (logged); the rest
//! is parsed into a typed [`Request`] or refused with the reason.

use super::RemoteSettings;
use super::message::{Malformed, Request, parse};
use crate::mqtt::Publish;
use crate::task::{TaskResult, code};
use tracing::warn;

/// What a message is.
pub(super) enum Intake {
    /// Taken care of (handed to central rules, or dropped and logged):
    /// only to be acknowledged.
    Done,
    /// Refused with this answer (malformed, but it names its task).
    Refused(TaskResult),
    /// A request, for [`super::decide`].
    Request(Box<Request>),
}

/// Sorts `p` (arrived on `topic`).
pub(super) fn intake(p: &Publish, topic: &str, settings: &RemoteSettings) -> Intake {
    // A host's result or presence for central rules: theirs to read,
    // never a command.
    if let Some(fleet) = &settings.fleet
        && fleet
            .filters
            .iter()
            .any(|f| crate::config::filter_matches(f, topic))
    {
        if p.payload.len() as u64 <= settings.max_payload {
            (fleet.on_message)(topic, &p.payload, p.retain);
        }
        return Intake::Done;
    }
    if p.retain {
        warn!(
            "remote: ignoring a retained message on {topic}: retained messages are never executed, they would run again at every reconnect (clear it with: mosquitto_pub -r -n -t '{topic}')"
        );
        return Intake::Done;
    }
    if p.payload.len() as u64 > settings.max_payload {
        warn!(
            "remote: dropping a {}-byte message on {topic}: larger than MaxPayloadBytes ({})",
            p.payload.len(),
            settings.max_payload
        );
        return Intake::Done;
    }
    match parse(&p.payload) {
        Ok(request) => Intake::Request(Box::new(request)),
        Err(Malformed::Unanswerable(why)) => {
            warn!("remote: dropping a message on {topic}: {why}");
            Intake::Done
        }
        Err(Malformed::Invalid { task_id, reason }) => {
            warn!("remote: refusing task {task_id}: {reason}");
            Intake::Refused(TaskResult::now(task_id, code::INVALID_REQUEST, reason))
        }
    }
}
