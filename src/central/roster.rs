//! The hosts central rules may repair, as Riemann keys its streams by
//! host: the hosts that announced themselves on their status topic (or,
//! with `FleetHostKeys`, exactly the hosts of that file), never a name
//! seen in a value list. Each known host's presence says whether it is
//! online, the key its results are signed with, and its maintenance
//! pauses. Bounded: past `max_hosts`, the host heard from least recently
//! is forgotten (counted). Pure: the caller passes what arrived and when.

use crate::pause::Pause;
use crate::remote::presence::Presence;
use crate::task::CommandRef;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

/// Pauses taken from one host's presence.
const PAUSES_PER_HOST: usize = 32;

/// What a presence message changed, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A host not known before.
    Joined,
    /// Nothing worth a line.
    Known,
    /// The host's result key, first seen (trust on first use).
    KeyPinned,
    /// The presence shows another key than the one kept: results are
    /// still checked with the kept one.
    KeyChanged,
    /// With `FleetHostKeys`, a host not in that file: ignored.
    NotListed,
}

#[derive(Debug)]
struct Entry {
    online: bool,
    /// The key first seen in its presence.
    key: Option<Vec<u8>>,
    pauses: Vec<Pause>,
    /// When it was last heard from, as a sequence number (eviction).
    touched: u64,
}

/// The known hosts.
#[derive(Debug)]
pub struct Roster {
    /// `FleetHostKeys`: host -> result key. When given, the only hosts.
    pinned: BTreeMap<String, Vec<u8>>,
    closed: bool,
    hosts: HashMap<String, Entry>,
    /// `touched` -> host, oldest first.
    order: BTreeMap<u64, String>,
    next: u64,
    max_hosts: usize,
    evicted: u64,
}

/// How many known hosts are in which state, for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RosterCounts {
    pub known: usize,
    pub online: usize,
    pub offline: usize,
    /// Heard of only through `FleetHostKeys`, no presence yet.
    pub silent: usize,
    /// With a maintenance pause of their own in force.
    pub paused: usize,
    pub evicted: u64,
}

impl Roster {
    /// With `pinned` (from `FleetHostKeys`), exactly those hosts with
    /// those keys; else whoever announces itself, at most `max_hosts`.
    pub fn new(pinned: Option<BTreeMap<String, Vec<u8>>>, max_hosts: usize) -> Roster {
        Roster {
            closed: pinned.is_some(),
            pinned: pinned.unwrap_or_default(),
            hosts: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            max_hosts: max_hosts.max(1),
            evicted: 0,
        }
    }

    /// A host's presence on its own status topic.
    pub fn heard(&mut self, host: &str, presence: &Presence) -> Heard {
        if self.closed && !self.pinned.contains_key(host) {
            return Heard::NotListed;
        }
        let key = presence
            .result_key
            .as_deref()
            .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
            .filter(|k| k.len() == 32);
        let pauses: Vec<Pause> = presence
            .paused
            .iter()
            .filter(|p| p.is_bounded())
            .take(PAUSES_PER_HOST)
            .cloned()
            .collect();
        let online = presence.state == "online";
        self.next += 1;
        let touched = self.next;
        if let Some(entry) = self.hosts.get_mut(host) {
            self.order.remove(&entry.touched);
            self.order.insert(touched, host.to_string());
            entry.touched = touched;
            entry.online = online;
            // The will (offline, by the broker) carries no pauses and no
            // key: the last ones said stay.
            if online {
                entry.pauses = pauses;
            }
            let kept = self.pinned.get(host).or(entry.key.as_ref());
            return match (kept, key) {
                (Some(kept), Some(new)) if *kept != new => Heard::KeyChanged,
                (None, Some(new)) => {
                    entry.key = Some(new);
                    Heard::KeyPinned
                }
                _ => Heard::Known,
            };
        }
        if self.hosts.len() >= self.max_hosts
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.hosts.remove(&oldest);
            self.evicted += 1;
        }
        let differs = matches!((self.pinned.get(host), &key), (Some(p), Some(k)) if p != k);
        self.order.insert(touched, host.to_string());
        self.hosts.insert(
            host.to_string(),
            Entry {
                online,
                key: if self.closed { None } else { key },
                pauses,
                touched,
            },
        );
        if differs {
            Heard::KeyChanged
        } else {
            Heard::Joined
        }
    }

    /// Whether central rules may repair `host`.
    pub fn known(&self, host: &str) -> bool {
        if self.closed {
            self.pinned.contains_key(host)
        } else {
            self.hosts.contains_key(host)
        }
    }

    /// The known hosts: the base of every share-based limit.
    pub fn size(&self) -> usize {
        if self.closed {
            self.pinned.len()
        } else {
            self.hosts.len()
        }
    }

    /// `Some(online)` when the host's presence was heard.
    pub fn online(&self, host: &str) -> Option<bool> {
        self.hosts.get(host).map(|e| e.online)
    }

    /// The key `host`'s results must be signed with: the pinned one, or
    /// the first its presence showed.
    pub fn key(&self, host: &str) -> Option<&[u8]> {
        self.pinned
            .get(host)
            .or_else(|| self.hosts.get(host)?.key.as_ref())
            .map(Vec::as_slice)
    }

    /// The host's own pause covering a central decision of the rule file
    /// `file` asking for `command`, at `now`.
    pub fn paused(
        &self,
        host: &str,
        file: &str,
        command: &CommandRef,
        now: SystemTime,
    ) -> Option<&Pause> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.hosts.get(host)?.pauses.iter().find(|p| {
            p.until > now
                && p.service.as_ref().is_none_or(|s| *s == command.service)
                && p.command.as_ref().is_none_or(|c| *c == command.command)
                && p.file.as_ref().is_none_or(|f| f == file)
        })
    }

    /// Hosts it keeps state for (for the memory bound).
    pub fn entries(&self) -> usize {
        self.hosts.len() + self.pinned.len()
    }

    /// For `status`, at `now`.
    pub fn counts(&self, now: SystemTime) -> RosterCounts {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let online = self.hosts.values().filter(|e| e.online).count();
        let paused = self
            .hosts
            .values()
            .filter(|e| e.pauses.iter().any(|p| p.until > now))
            .count();
        let heard = self.hosts.len();
        RosterCounts {
            known: self.size(),
            online,
            offline: heard - online,
            silent: if self.closed {
                self.pinned
                    .keys()
                    .filter(|h| !self.hosts.contains_key(*h))
                    .count()
            } else {
                0
            },
            paused,
            evicted: self.evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(host: &str, online: bool, key: Option<[u8; 32]>) -> Presence {
        let mut p = Presence::will(host);
        if online {
            p.state = "online".into();
        }
        p.result_key = key.map(|k| base64::engine::general_purpose::STANDARD.encode(k));
        p
    }

    #[test]
    fn hosts_are_known_by_their_presence_and_keep_their_first_key() {
        let mut r = Roster::new(None, 10);
        assert!(!r.known("web1"));
        assert_eq!(
            r.heard("web1", &presence("web1", true, None)),
            Heard::Joined
        );
        assert!(r.known("web1") && r.online("web1") == Some(true));
        assert_eq!(r.key("web1"), None);
        assert_eq!(
            r.heard("web1", &presence("web1", true, Some([1; 32]))),
            Heard::KeyPinned
        );
        assert_eq!(r.key("web1"), Some(&[1u8; 32][..]));
        // Another key later: loud, and the first one stays.
        assert_eq!(
            r.heard("web1", &presence("web1", true, Some([2; 32]))),
            Heard::KeyChanged
        );
        assert_eq!(r.key("web1"), Some(&[1u8; 32][..]));
        // The broker's will: offline, still known.
        assert_eq!(
            r.heard("web1", &presence("web1", false, None)),
            Heard::Known
        );
        assert_eq!((r.known("web1"), r.online("web1")), (true, Some(false)));
        assert_eq!(r.size(), 1);
    }

    #[test]
    fn a_keys_file_closes_the_roster() {
        let pinned = BTreeMap::from([("web1".to_string(), vec![7u8; 32])]);
        let mut r = Roster::new(Some(pinned), 10);
        assert!(r.known("web1"));
        assert_eq!(r.online("web1"), None);
        assert_eq!(
            r.heard("web9", &presence("web9", true, None)),
            Heard::NotListed
        );
        assert!(!r.known("web9"));
        assert_eq!(
            r.heard("web1", &presence("web1", true, Some([8; 32]))),
            Heard::KeyChanged
        );
        assert_eq!(r.key("web1"), Some(&[7u8; 32][..]));
        assert_eq!(
            r.counts(SystemTime::now()),
            RosterCounts {
                known: 1,
                online: 1,
                offline: 0,
                silent: 0,
                paused: 0,
                evicted: 0
            }
        );
    }

    #[test]
    fn past_the_cap_the_least_recently_heard_host_goes() {
        let mut r = Roster::new(None, 3);
        for h in ["a", "b", "c"] {
            r.heard(h, &presence(h, true, None));
        }
        r.heard("a", &presence("a", true, None));
        r.heard("d", &presence("d", true, None));
        assert!(!r.known("b"));
        assert!(r.known("a") && r.known("c") && r.known("d"));
        assert_eq!((r.size(), r.counts(SystemTime::now()).evicted), (3, 1));
    }

    #[test]
    fn a_hosts_own_pauses_cover_central_decisions_until_they_end() {
        let mut r = Roster::new(None, 10);
        let mut p = presence("web1", true, None);
        let now = SystemTime::now();
        let until = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
        p.paused = vec![Pause {
            service: Some("app".into()),
            command: None,
            file: None,
            remote: false,
            until,
            reason: "upgrade".into(),
            hosts: None,
        }];
        r.heard("web1", &p);
        let restart = CommandRef::new("app", "restart");
        assert!(r.paused("web1", "app.lua", &restart, now).is_some());
        assert!(
            r.paused("web1", "app.lua", &CommandRef::new("db", "restart"), now)
                .is_none()
        );
        let later = now + std::time::Duration::from_secs(61);
        assert!(r.paused("web1", "app.lua", &restart, later).is_none());
        // The will keeps the pauses said before.
        r.heard("web1", &presence("web1", false, None));
        assert!(r.paused("web1", "app.lua", &restart, now).is_some());
    }
}
