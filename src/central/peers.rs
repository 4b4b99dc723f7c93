//! Redundant controllers know of each other: each announces (retained, on
//! `FleetControllerTopic`) the window its task ids are derived in and the
//! digest of its central rule files, and warns when a peer's differ, since
//! then the same fault can give two task ids (the hosts still run it once
//! per rule and window, see `remote/repeat.rs`, but an operator should
//! know). Pure: the caller passes what arrived.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Peers remembered at once.
const MAX_PEERS: usize = 64;

/// What a controller announces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub hostname: String,
    /// `FleetTaskWindow`, seconds.
    pub window: u64,
    /// The digest of its central rule files.
    pub rule_set: String,
    pub version: String,
    /// When it started, ISO-8601 UTC.
    pub since: String,
}

/// How a peer's announcement differs from ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    Window { theirs: u64, ours: u64 },
    RuleSet { theirs: String, ours: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Window { theirs, ours } => write!(
                f,
                "its FleetTaskWindow is {theirs} s, ours {ours} s: the same fault gets other task ids (the hosts still run it once per rule within the larger window)"
            ),
            Difference::RuleSet { theirs, ours } => write!(
                f,
                "it runs other central rule files (digest {}, ours {ours})",
                crate::collectd::loggable(theirs)
            ),
        }
    }
}

/// The other controllers as last heard.
#[derive(Debug)]
pub struct Peers {
    me: String,
    ours: Option<Announcement>,
    peers: BTreeMap<String, Announcement>,
}

impl Peers {
    /// `me`: this controller's hostname (its own announcement comes back).
    pub fn new(me: &str) -> Peers {
        Peers {
            me: me.to_string(),
            ours: None,
            peers: BTreeMap::new(),
        }
    }

    fn differences(ours: &Announcement, theirs: &Announcement) -> Vec<Difference> {
        let mut out = Vec::new();
        if theirs.window != ours.window {
            out.push(Difference::Window {
                theirs: theirs.window,
                ours: ours.window,
            });
        }
        if theirs.rule_set != ours.rule_set {
            out.push(Difference::RuleSet {
                theirs: theirs.rule_set.clone(),
                ours: ours.rule_set.clone(),
            });
        }
        out
    }

    /// What we announce now; the peers that differ from it where they did
    /// not before.
    pub fn ours(&mut self, ours: Announcement) -> Vec<(String, Vec<Difference>)> {
        let before = self.ours.replace(ours.clone());
        self.peers
            .values()
            .filter_map(|p| {
                let now = Self::differences(&ours, p);
                let then = before.as_ref().map(|b| Self::differences(b, p));
                (!now.is_empty() && then.as_ref() != Some(&now)).then(|| (p.hostname.clone(), now))
            })
            .collect()
    }

    /// A peer's announcement on its topic (`host` from the topic); how it
    /// differs from ours, when that is news.
    pub fn heard(&mut self, host: &str, theirs: Announcement) -> Vec<Difference> {
        if host == self.me || theirs.hostname != host {
            return Vec::new();
        }
        if !self.peers.contains_key(host) && self.peers.len() >= MAX_PEERS {
            return Vec::new();
        }
        let Some(ours) = &self.ours else {
            self.peers.insert(host.to_string(), theirs);
            return Vec::new();
        };
        let now = Self::differences(ours, &theirs);
        let then = self
            .peers
            .get(host)
            .map(|before| Self::differences(ours, before));
        self.peers.insert(host.to_string(), theirs);
        if then.as_ref() == Some(&now) {
            Vec::new()
        } else {
            now
        }
    }

    /// A peer that stopped (its announcement cleared).
    pub fn gone(&mut self, host: &str) {
        self.peers.remove(host);
    }

    /// The peers, each with whether it agrees with us, for `status`.
    pub fn list(&self) -> Vec<(Announcement, bool)> {
        self.peers
            .values()
            .map(|p| {
                let same = self
                    .ours
                    .as_ref()
                    .is_some_and(|o| Self::differences(o, p).is_empty());
                (p.clone(), same)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(host: &str, window: u64, rules: &str) -> Announcement {
        Announcement {
            hostname: host.into(),
            window,
            rule_set: rules.into(),
            version: "0".into(),
            since: String::new(),
        }
    }

    #[test]
    fn a_peer_that_differs_is_told_once_per_change() {
        let mut p = Peers::new("c1");
        assert!(p.ours(said("c1", 300, "aaa")).is_empty());
        assert!(p.heard("c1", said("c1", 300, "aaa")).is_empty());
        assert!(p.heard("c2", said("c2", 300, "aaa")).is_empty());
        assert_eq!(
            p.heard("c2", said("c2", 7, "aaa")),
            vec![Difference::Window {
                theirs: 7,
                ours: 300
            }]
        );
        assert!(p.heard("c2", said("c2", 7, "aaa")).is_empty());
        // Our rule files change: the peer now differs in both.
        let news = p.ours(said("c1", 300, "bbb"));
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].1.len(), 2);
        // A topic that names another host than the message: ignored.
        assert!(p.heard("c3", said("c2", 1, "x")).is_empty());
        assert_eq!(p.list().len(), 1);
        assert!(!p.list()[0].1);
        p.gone("c2");
        assert!(p.list().is_empty());
    }
}
