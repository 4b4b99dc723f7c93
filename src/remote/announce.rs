//! The host's presence: what it says on its `StatusTopic` (online, what it
//! runs, its pauses and key), at every connection and whenever that
//! changes. Reading the rule files' digests reads files: done off the
//! event loop.

use super::RemoteSettings;
use super::presence::Presence;
use super::publisher::Outgoing;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How often the presence is looked at for a change (rule files loaded
/// after the connection, or removed).
const PRESENCE_REFRESH: Duration = Duration::from_secs(5);

/// What a presence says that may change while the host runs: its rule
/// files, the pauses in force, its versions.
pub(crate) type Said = (Option<u64>, Vec<String>, Option<crate::deploy::Versions>);

fn said(settings: &RemoteSettings) -> Said {
    (
        settings.board.as_ref().map(|b| b.started_and_files().1),
        pauses_in_force(settings),
        settings.deployer.as_ref().map(|d| d.digest()),
    )
}

/// The host's online status, when it has a `StatusTopic` (reads the rule
/// files' digests: not on the event loop); what it says is remembered as
/// the last announced.
pub(super) fn online(settings: &RemoteSettings) -> Option<Outgoing> {
    let topic = settings.status_topic.as_ref()?;
    let board = settings.board.as_ref().map(|b| b.started_and_files());
    let versions = settings.deployer.as_ref().map(|d| d.digest());
    let pauses = pauses_in_force(settings);
    if let Ok(mut announced) = settings.announced.lock() {
        *announced = Some((
            board.as_ref().map(|(_, files)| *files),
            pauses.clone(),
            versions.clone(),
        ));
    }
    let online = Presence {
        hostname: settings.hostname.clone(),
        state: "online".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        since: board.as_ref().map_or_else(
            || crate::task::iso8601(SystemTime::now()),
            |(started, _)| started.clone(),
        ),
        rule_files: board.map(|(_, files)| files),
        config_push: Some(settings.config_push),
        signed_only: Some(settings.trust.is_some()),
        result_key: settings.result_key.as_ref().map(|k| k.public_base64()),
        pauses,
        paused: settings
            .pauses
            .as_ref()
            .map_or_else(Vec::new, |book| book.list()),
        rule_set: versions.as_ref().map(|v| v.rule_set.clone()),
        config_json: versions.and_then(|v| v.config_json),
    };
    Some(Outgoing::Presence {
        topic: topic.clone(),
        payload: online.to_json(),
    })
}

/// The pauses in force, as the presence tells them.
fn pauses_in_force(settings: &RemoteSettings) -> Vec<String> {
    settings.pauses.as_ref().map_or_else(Vec::new, |book| {
        book.list()
            .iter()
            .map(|p| {
                format!(
                    "{} until {}: {}",
                    p.describe(),
                    crate::task::iso8601(UNIX_EPOCH + Duration::from_secs(p.until)),
                    p.reason
                )
            })
            .collect()
    })
}

/// Publishes the presence now (at a connection), built off the loop.
pub(super) async fn announce(settings: RemoteSettings, results: mpsc::Sender<Outgoing>) {
    if let Ok(Some(outgoing)) = tokio::task::spawn_blocking(move || online(&settings)).await {
        let _ = results.send(outgoing).await;
    }
}

/// The offline presence a clean disconnect sends itself (it suppresses
/// the last will).
pub(super) fn offline(settings: &RemoteSettings) -> Option<Outgoing> {
    let topic = settings.status_topic.as_ref()?;
    let mut offline = Presence::will(&settings.hostname);
    offline.since = crate::task::iso8601(SystemTime::now());
    Some(Outgoing::Presence {
        topic: topic.clone(),
        payload: offline.to_json(),
    })
}

/// Announces the presence again whenever the number of rule files (they
/// load after the connection, which announced the count then), the
/// pauses in force or the rule set differ from what the last presence
/// said, whoever sent it (a request that changes them sends it itself,
/// before its answer: see `execute.rs`; a rule set that rolls back by
/// itself is seen here).
pub(super) async fn refresh_presence(settings: RemoteSettings, results: mpsc::Sender<Outgoing>) {
    if settings.board.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(PRESENCE_REFRESH);
    loop {
        tick.tick().await;
        let s = settings.clone();
        let looked = tokio::task::spawn_blocking(move || {
            let now = said(&s);
            let last = s.announced.lock().ok().and_then(|a| a.clone());
            // Before the connection's own presence, there is nothing to
            // correct.
            let changed = last.is_some_and(|last| last != now);
            changed.then(|| online(&s)).flatten()
        });
        if let Ok(Some(outgoing)) = looked.await {
            let _ = results.send(outgoing).await;
        }
    }
}
