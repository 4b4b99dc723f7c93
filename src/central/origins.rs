//! Who may speak for a host's values. A central decision repairs a host,
//! so the value list it was made on must come from that host: collectd's
//! network plugin marks what it received (`network:received`), with the
//! user whose key signed or encrypted the packet (`network:username`,
//! verified against its `AuthFile`) and the source address
//! (`network:ip_address`). By default the user must be the host
//! (`Username "web1"` on web1's `Server`), and this collectd's own
//! plugins speak for this collectd only. The file `FleetValueOrigins`
//! adds to that; `FleetAcceptUnprovenValues` (a lab) turns the proof off.
//! Pure: the plugin reads the marks, this decides.
//!
//! ```text
//! user NAME HOSTGLOB...       values signed by NAME speak for these hosts
//! network CIDR HOSTGLOB...    values from these addresses, signed or not
//!                             (a UDP source can be forged: labs only)
//! local HOSTGLOB...           this collectd's own plugins (snmp, ping)
//! asks HOSTGLOB HOSTGLOB...   a decision on the first host's values may
//!                             name a host of the others
//! ```

use crate::auth::glob_matches;
use std::net::IpAddr;
use std::path::Path;

/// Largest origins file read.
const MAX_FILE: u64 = 1024 * 1024;

/// Where a value list came from, as collectd marked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// One of this collectd's own plugins (no `network:received`).
    Local,
    /// The network plugin: the user whose key signed or encrypted the
    /// packet (`None`: neither), and the sender's address.
    Network {
        user: Option<&'a str>,
        address: Option<IpAddr>,
    },
}

/// Why a value list does not prove its host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unproven {
    /// Received neither signed nor encrypted.
    Unsigned,
    /// Signed by a user who does not speak for the host.
    OtherUser(String),
    /// Made by this collectd's own plugins for another host.
    Local,
    /// Not a value list: collectd's network plugin gives notifications
    /// no user, so none proves its host.
    Notification,
}

impl std::fmt::Display for Unproven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unproven::Unsigned => write!(f, "received unsigned"),
            Unproven::OtherUser(user) => write!(
                f,
                "signed by user {}, who does not speak for it",
                crate::collectd::loggable(user)
            ),
            Unproven::Local => write!(f, "made by this collectd's own plugins"),
            Unproven::Notification => write!(f, "a notification (they carry no signer)"),
        }
    }
}

/// An address range, `10.1.0.0/16` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Network {
    base: IpAddr,
    bits: u8,
}

impl Network {
    fn parse(text: &str) -> Result<Network, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or a CIDR range"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?}: the prefix is 0 to {max}"))?,
            None => max,
        };
        Ok(Network { base, bits })
    }

    fn contains(&self, address: IpAddr) -> bool {
        fn prefix(bytes: &[u8], bits: u8) -> impl Iterator<Item = u8> + '_ {
            bytes.iter().enumerate().map(move |(i, b)| {
                let used = (i32::from(bits) - 8 * i as i32).clamp(0, 8) as u32;
                b & (0xffu16 << (8 - used)) as u8
            })
        }
        let address = match (self.base, address) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            _ => address,
        };
        match (self.base, address) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                prefix(&a.octets(), self.bits).eq(prefix(&b.octets(), self.bits))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                prefix(&a.octets(), self.bits).eq(prefix(&b.octets(), self.bits))
            }
            _ => false,
        }
    }
}

/// The origins file and the built-in rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origins {
    /// This collectd's Hostname: its own plugins speak for it.
    own_host: String,
    /// `FleetAcceptUnprovenValues`: every value list speaks for its host
    /// and may name any other.
    accept_unproven: bool,
    users: Vec<(String, Vec<String>)>,
    networks: Vec<(Network, Vec<String>)>,
    local: Vec<String>,
    asks: Vec<(String, Vec<String>)>,
}

impl Origins {
    /// The built-in rules only: a user speaks for the host of its name,
    /// this collectd's plugins for `own_host`.
    pub fn new(own_host: &str, accept_unproven: bool) -> Origins {
        Origins {
            own_host: own_host.to_string(),
            accept_unproven,
            ..Origins::default()
        }
    }

    /// Adds the lines of an origins file (`text`, named `file` in errors).
    pub fn with_lines(mut self, file: &str, text: &str) -> Result<Origins, String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = |e: String| format!("{file}:{}: {e}", n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            let globs = |from: usize| -> Result<Vec<String>, String> {
                if words.len() <= from {
                    return Err(at(format!("{:?} names no host", words[0])));
                }
                Ok(words[from..].iter().map(|w| w.to_string()).collect())
            };
            match words[0] {
                "user" if words.len() > 1 => self.users.push((words[1].to_string(), globs(2)?)),
                "network" if words.len() > 1 => {
                    let net = Network::parse(words[1]).map_err(at)?;
                    self.networks.push((net, globs(2)?));
                }
                "local" => self.local.extend(globs(1)?),
                "asks" if words.len() > 1 => self.asks.push((words[1].to_string(), globs(2)?)),
                other => {
                    return Err(at(format!(
                        "{other:?} with what follows is no origin line (user NAME HOSTS..., network CIDR HOSTS..., local HOSTS..., asks HOST HOSTS...)"
                    )));
                }
            }
        }
        Ok(self)
    }

    /// The built-in rules with the lines of the file at `path`.
    pub fn load(
        own_host: &str,
        accept_unproven: bool,
        path: Option<&Path>,
    ) -> Result<Origins, String> {
        let origins = Origins::new(own_host, accept_unproven);
        let Some(path) = path else {
            return Ok(origins);
        };
        let bytes = crate::files::read_regular(path, MAX_FILE, crate::files::Links::Follow)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
        origins.with_lines(&path.display().to_string(), &text)
    }

    /// Whether the source address is needed to decide (a `network` line).
    pub fn reads_addresses(&self) -> bool {
        !self.networks.is_empty() && !self.accept_unproven
    }

    /// Whether proof is off (`FleetAcceptUnprovenValues`).
    pub fn accepts_unproven(&self) -> bool {
        self.accept_unproven
    }

    /// Whether a value list from `origin` speaks for `host`.
    pub fn speaks_for(&self, origin: Origin<'_>, host: &str) -> Result<(), Unproven> {
        let any = |globs: &[String]| globs.iter().any(|g| glob_matches(g, host));
        if self.accept_unproven {
            return Ok(());
        }
        match origin {
            Origin::Local if host == self.own_host || any(&self.local) => Ok(()),
            Origin::Local => Err(Unproven::Local),
            Origin::Network { user, address } => {
                if let Some(user) = user
                    && (user == host
                        || self
                            .users
                            .iter()
                            .any(|(name, globs)| name == user && any(globs)))
                {
                    return Ok(());
                }
                if let Some(address) = address
                    && self
                        .networks
                        .iter()
                        .any(|(net, globs)| net.contains(address) && any(globs))
                {
                    return Ok(());
                }
                Err(user.map_or(Unproven::Unsigned, |u| Unproven::OtherUser(u.to_string())))
            }
        }
    }

    /// Whether a decision made on a (proven) value list of `source` may
    /// send a repair to `target`.
    pub fn may_ask(&self, source: &str, target: &str) -> bool {
        self.accept_unproven
            || source == target
            || self.asks.iter().any(|(from, to)| {
                glob_matches(from, source) && to.iter().any(|g| glob_matches(g, target))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(user: Option<&str>, address: Option<&str>) -> Origin<'static> {
        Origin::Network {
            user: user.map(|u| Box::leak(u.to_string().into_boxed_str()) as &str),
            address: address.map(|a| a.parse().unwrap()),
        }
    }

    #[test]
    fn by_default_only_a_user_of_the_hosts_name_speaks_for_it() {
        let o = Origins::new("central", false);
        assert_eq!(o.speaks_for(net(Some("web1"), None), "web1"), Ok(()));
        assert_eq!(
            o.speaks_for(net(Some("web3"), Some("10.0.0.3")), "web1"),
            Err(Unproven::OtherUser("web3".into()))
        );
        assert_eq!(
            o.speaks_for(net(None, Some("10.0.0.1")), "web1"),
            Err(Unproven::Unsigned)
        );
        // This collectd's own plugins: for itself only.
        assert_eq!(o.speaks_for(Origin::Local, "central"), Ok(()));
        assert_eq!(o.speaks_for(Origin::Local, "web1"), Err(Unproven::Local));
        assert!(o.may_ask("web1", "web1"));
        assert!(!o.may_ask("lb1", "web1"));
        assert!(!o.reads_addresses());
    }

    #[test]
    fn the_file_adds_users_networks_local_plugins_and_asks() {
        let o = Origins::new("central", false)
            .with_lines(
                "origins",
                "# comment\n\
                 user hv1 hv1 vm-*   # the hypervisor\n\
                 network 10.9.0.0/16 lab-*\n\
                 network fd00::/8 lab6-*\n\
                 local switch-*\n\
                 asks lb* web*\n",
            )
            .unwrap();
        assert_eq!(o.speaks_for(net(Some("hv1"), None), "vm-3"), Ok(()));
        assert!(o.speaks_for(net(Some("hv2"), None), "vm-3").is_err());
        assert_eq!(o.speaks_for(net(None, Some("10.9.200.1")), "lab-1"), Ok(()));
        assert_eq!(
            o.speaks_for(net(None, Some("::ffff:10.9.0.1")), "lab-1"),
            Ok(())
        );
        assert!(o.speaks_for(net(None, Some("10.8.0.1")), "lab-1").is_err());
        assert!(o.speaks_for(net(None, Some("10.9.0.1")), "web1").is_err());
        assert_eq!(o.speaks_for(net(None, Some("fd12::1")), "lab6-a"), Ok(()));
        assert_eq!(o.speaks_for(Origin::Local, "switch-7"), Ok(()));
        assert!(o.may_ask("lb1", "web9"));
        assert!(!o.may_ask("web9", "lb1"));
        assert!(o.reads_addresses());
        let lab = Origins::new("central", true);
        assert_eq!(lab.speaks_for(net(None, None), "anything"), Ok(()));
        assert!(lab.may_ask("a", "b"));
    }

    #[test]
    fn a_bad_line_is_named_with_its_number() {
        for (text, says) in [
            ("user web1\n", "1: \"user\" names no host"),
            (
                "\nnetwork 10.0.0.0/33 a\n",
                "2: \"10.0.0.0/33\": the prefix is 0 to 32",
            ),
            ("network nonsense a\n", "not an address"),
            ("allow web1 web2\n", "no origin line"),
            ("local\n", "names no host"),
        ] {
            let e = Origins::new("c", false).with_lines("f", text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let n = Network::parse("192.168.1.77/24").unwrap();
        assert!(n.contains("192.168.1.1".parse().unwrap()));
        assert!(!n.contains("192.168.2.1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
    }
}
