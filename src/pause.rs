//! Maintenance pauses, as Monit's `unmonitor` and Alertmanager's silences:
//! while a pause matches, a rule's decision is logged and counted as
//! paused instead of run (and, when the pause says so, a remote command is
//! refused). Pauses end by themselves, and are kept in a file so they
//! survive a restart. Pure but for [`Pauses::load`] and [`Pauses::save`].

use crate::task::CommandRef;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest pause file read.
const MAX_FILE: u64 = 1024 * 1024;
/// Pauses kept at once.
pub const MAX_PAUSES: usize = 256;
/// Bytes of a pause's reason, service, command or file name.
const MAX_TEXT: usize = 512;

/// One pause: what it covers, until when, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// A service (`nginx`), or absent for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// A command of that service, or absent for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A rule file's name (`disk.lua`), or absent for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Remote commands are refused too (else only rules are paused).
    #[serde(default)]
    pub remote: bool,
    /// Seconds since the epoch when it ends.
    pub until: u64,
    #[serde(default)]
    pub reason: String,
    /// The hosts it covers, a glob (`web*`): only a controller's pauses
    /// of central repairs name hosts; absent: every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
}

impl Pause {
    /// Whether it covers `command` asked for by the rule file `file`
    /// (`None`: a remote command).
    fn covers(&self, file: Option<&str>, command: &CommandRef) -> bool {
        let service = self.service.as_ref().is_none_or(|s| *s == command.service);
        let cmd = self.command.as_ref().is_none_or(|c| *c == command.command);
        let origin = match file {
            Some(file) => self.file.as_ref().is_none_or(|f| f == file),
            None => self.remote && self.file.is_none(),
        };
        service && cmd && origin
    }

    /// Whether its texts are within what a pause may hold (a pause read
    /// from someone else's message, a host's presence, is taken only then).
    pub fn is_bounded(&self) -> bool {
        [&self.service, &self.command, &self.file, &self.hosts]
            .iter()
            .all(|t| t.as_ref().is_none_or(|t| t.len() <= MAX_TEXT))
            && self.reason.len() <= MAX_TEXT
    }

    /// How `status` shows it.
    pub fn status(&self) -> crate::status::PauseStatus {
        crate::status::PauseStatus {
            what: self.describe(),
            until: crate::task::iso8601(UNIX_EPOCH + Duration::from_secs(self.until)),
            reason: self.reason.clone(),
        }
    }

    /// What makes two pauses the same one: a new pause of a scope
    /// replaces the old, a resume names it.
    fn scope(
        &self,
    ) -> (
        &Option<String>,
        &Option<String>,
        &Option<String>,
        &Option<String>,
    ) {
        (&self.service, &self.command, &self.file, &self.hosts)
    }

    /// Whether it covers `host` (a controller's pause of central repairs).
    pub fn covers_host(&self, host: &str) -> bool {
        self.hosts
            .as_ref()
            .is_none_or(|g| crate::auth::glob_matches(g, host))
    }

    /// What it covers, in words.
    pub fn describe(&self) -> String {
        let what = match (&self.service, &self.command) {
            (Some(s), Some(c)) => format!("{s}/{c}"),
            (Some(s), None) => format!("{s}/*"),
            _ => "every command".into(),
        };
        let file = self
            .file
            .as_ref()
            .map_or(String::new(), |f| format!(" asked for by {f}"));
        let remote = if self.remote {
            " (remote commands too)"
        } else {
            ""
        };
        let hosts = self
            .hosts
            .as_ref()
            .map_or(String::new(), |h| format!(" on {h}"));
        format!("{what}{hosts}{file}{remote}")
    }
}

/// The pauses in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pauses {
    pub pauses: Vec<Pause>,
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Pauses {
    /// The pause covering `command` for `file` (`None`: remote) at `now`.
    pub fn find(
        &self,
        file: Option<&str>,
        command: &CommandRef,
        now: SystemTime,
    ) -> Option<&Pause> {
        let now = seconds(now);
        self.pauses
            .iter()
            .find(|p| p.until > now && p.covers(file, command))
    }

    /// The pause covering a central decision of the rule file `file` for
    /// `command` on `host` at `now` (a controller's own pauses).
    pub fn find_for_host(
        &self,
        file: &str,
        command: &CommandRef,
        host: &str,
        now: SystemTime,
    ) -> Option<&Pause> {
        let now = seconds(now);
        self.pauses
            .iter()
            .find(|p| p.until > now && p.covers(Some(file), command) && p.covers_host(host))
    }

    /// Adds a pause lasting `length` (at most `max`) from `now`; replaces
    /// one with the same scope. Returns it.
    pub fn add(
        &mut self,
        mut pause: Pause,
        length: Duration,
        max: Duration,
        now: SystemTime,
    ) -> Result<Pause, String> {
        if length.is_zero() {
            return Err("a pause needs a length".into());
        }
        if length > max {
            return Err(format!(
                "a pause may last at most {} s (PauseMaxDuration)",
                max.as_secs()
            ));
        }
        // 256 pauses must fit the file read back at the next start.
        let texts = [&pause.service, &pause.command, &pause.file, &pause.hosts];
        if pause.reason.len() > MAX_TEXT
            || texts
                .iter()
                .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_TEXT))
        {
            return Err(format!(
                "a pause's reason and names are at most {MAX_TEXT} bytes each"
            ));
        }
        if pause.command.is_some() && pause.service.is_none() {
            return Err("a command needs its service".into());
        }
        self.expire(now);
        pause.until = seconds(now).saturating_add(length.as_secs());
        self.pauses.retain(|p| p.scope() != pause.scope());
        if self.pauses.len() >= MAX_PAUSES {
            return Err(format!("{MAX_PAUSES} pauses are in force already"));
        }
        self.pauses.push(pause.clone());
        Ok(pause)
    }

    /// Ends the pauses of exactly this scope (all of them with `all`); how
    /// many ended.
    pub fn resume(&mut self, scope: &Pause, all: bool) -> usize {
        let before = self.pauses.len();
        self.pauses.retain(|p| !all && p.scope() != scope.scope());
        before - self.pauses.len()
    }

    /// Forgets the pauses that ended.
    pub fn expire(&mut self, now: SystemTime) {
        let now = seconds(now);
        self.pauses.retain(|p| p.until > now);
    }

    /// The pauses kept in `path` (none when it does not exist).
    pub fn load(path: &Path) -> Result<Pauses, String> {
        match crate::files::read_regular(path, MAX_FILE, crate::files::Links::Refuse) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pauses::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes them to `path` (mode 0600, replaced whole).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        crate::files::replace_private(path, &text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The pauses of this host, kept in their file: what the responder, the
/// remote session and the control socket share.
#[derive(Debug)]
pub struct PauseBook {
    path: std::path::PathBuf,
    pauses: std::sync::Mutex<Pauses>,
    /// Held while the file is written, never with `pauses`: a rule's
    /// decision looking for a pause never waits for a disk.
    writing: std::sync::Mutex<()>,
    default: Duration,
    max: Duration,
    /// The control requests it answers (`pause`, `resume`), and whether
    /// its pauses may name hosts (a controller's book of central pauses).
    verbs: Verbs,
}

/// The words of a book's control requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verbs {
    pub pause: &'static str,
    pub resume: &'static str,
    /// Its pauses may name hosts.
    pub hosts: bool,
}

impl Verbs {
    /// A host's own pauses: `pause` and `resume`.
    pub const HOST: Verbs = Verbs {
        pause: "pause",
        resume: "resume",
        hosts: false,
    };
    /// A controller's pauses of central repairs.
    pub const CENTRAL: Verbs = Verbs {
        pause: "central-pause",
        resume: "central-resume",
        hosts: true,
    };
}

/// A pause to start or end, as the control socket and a signed `pause`
/// or `resume` request carry it: the JSON fields of a [`Pause`] plus
/// `for` (seconds) and `all`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// As [`Pause::service`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// As [`Pause::command`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// As [`Pause::file`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// As [`Pause::remote`].
    #[serde(default)]
    pub remote: bool,
    /// As [`Pause::hosts`]: a controller's pauses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Why, for the log, `status` and the history.
    #[serde(default)]
    pub reason: String,
    /// How long a pause lasts (`PauseDefaultDuration` without it).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Resume: end every pause, whatever its scope.
    #[serde(default)]
    pub all: bool,
}

impl PauseBook {
    /// The pauses kept in `path` (an unreadable file is reported, and the
    /// book starts empty).
    pub fn open(
        path: std::path::PathBuf,
        default: Duration,
        max: Duration,
        verbs: Verbs,
    ) -> (PauseBook, Option<String>) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let (mut pauses, problem) = match Pauses::load(&path) {
            Ok(p) => (p, None),
            Err(e) => (Pauses::default(), Some(e)),
        };
        // A file edited by hand cannot pause longer than a request may,
        // nor hold what a request could not.
        let latest = seconds(SystemTime::now()).saturating_add(max.as_secs());
        pauses.pauses.retain(Pause::is_bounded);
        pauses.pauses.truncate(MAX_PAUSES);
        for p in &mut pauses.pauses {
            p.until = p.until.min(latest);
        }
        let book = PauseBook {
            path,
            pauses: std::sync::Mutex::new(pauses),
            writing: std::sync::Mutex::new(()),
            default,
            max,
            verbs,
        };
        (book, problem)
    }

    /// The pause covering `command` for the rule file `file` (`None`: a
    /// remote command), now.
    pub fn find(&self, file: Option<&str>, command: &CommandRef) -> Option<Pause> {
        self.lock().find(file, command, SystemTime::now()).cloned()
    }

    /// The pauses in force, for `status` and the presence.
    pub fn list(&self) -> Vec<Pause> {
        let mut pauses = self.lock();
        pauses.expire(SystemTime::now());
        pauses.pauses.clone()
    }

    /// The pauses; a panic elsewhere while they were held leaves them
    /// whole (each change is one statement), so they stay in force rather
    /// than failing open.
    fn lock(&self) -> std::sync::MutexGuard<'_, Pauses> {
        self.pauses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pause covering a central decision (see [`Pauses::find_for_host`]), now.
    pub fn find_for_host(&self, file: &str, command: &CommandRef, host: &str) -> Option<Pause> {
        self.lock()
            .find_for_host(file, command, host, SystemTime::now())
            .cloned()
    }

    /// Answers `pause {...}` and `resume {...}` (its [`Verbs`]); `None`
    /// for other requests.
    pub fn control(&self, line: &str) -> Option<String> {
        let (verb, json) = line.split_once(' ').unwrap_or((line, "{}"));
        if verb != self.verbs.pause && verb != self.verbs.resume {
            return None;
        }
        let change: Change = match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) => return Some(format!("error: {verb}: {e}")),
        };
        Some(
            match self.apply(verb == self.verbs.resume, change, "an operator") {
                Ok(answer) => answer,
                Err(e) => format!("error: {e}"),
            },
        )
    }

    /// Starts (or with `resume`, ends) a pause asked for by `who`; the
    /// answer in words, or why not.
    pub fn apply(&self, resume: bool, change: Change, who: &str) -> Result<String, String> {
        if change.hosts.is_some() && !self.verbs.hosts {
            return Err(
                "a host's own pause covers this host: only a controller's pauses (central pause) name hosts"
                    .into(),
            );
        }
        let scope = Pause {
            hosts: change.hosts,
            service: change.service,
            command: change.command,
            file: change.file,
            remote: change.remote,
            until: 0,
            reason: change.reason,
        };
        let answer = {
            let mut pauses = self.lock();
            if resume {
                let n = pauses.resume(&scope, change.all);
                tracing::info!("{n} pause(s) ended by {who}");
                format!("{n} pause(s) ended")
            } else {
                let length = change.seconds.map_or(self.default, Duration::from_secs);
                let p = pauses.add(scope, length, self.max, SystemTime::now())?;
                tracing::warn!(
                    "paused {} for {} s by {who}: {}",
                    p.describe(),
                    length.as_secs(),
                    p.reason.escape_debug()
                );
                format!("paused {} for {} s", p.describe(), length.as_secs())
            }
        };
        // The change took effect: a file that cannot be written only
        // loses it at the next restart, which the answer says. The file is
        // written from the pauses as they are once the writing is ours, so
        // the last change is the one kept.
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pauses = self.lock().clone();
        Ok(match pauses.save(&self.path) {
            Ok(()) => answer,
            Err(e) => {
                tracing::warn!("{answer}, but not kept for a restart: {e}");
                format!("{answer}, but not kept for a restart: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause(service: Option<&str>, command: Option<&str>, file: Option<&str>) -> Pause {
        Pause {
            service: service.map(Into::into),
            command: command.map(Into::into),
            file: file.map(Into::into),
            remote: false,
            until: 0,
            reason: "upgrade".into(),
            hosts: None,
        }
    }

    #[test]
    fn a_pause_covers_its_scope_until_it_ends() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let hour = Duration::from_secs(3600);
        let mut p = Pauses::default();
        p.add(pause(Some("nginx"), None, None), hour, hour, t0)
            .unwrap();
        let restart = CommandRef::new("nginx", "restart");
        let other = CommandRef::new("db", "restart");
        assert!(p.find(Some("web.lua"), &restart, t0).is_some());
        assert!(p.find(Some("web.lua"), &other, t0).is_none());
        // Remote commands go on unless the pause says so.
        assert!(p.find(None, &restart, t0).is_none());
        let later = t0 + hour;
        assert!(p.find(Some("web.lua"), &restart, later).is_none());
        // One file's decisions only.
        p.add(pause(None, None, Some("disk.lua")), hour, hour, t0)
            .unwrap();
        assert!(p.find(Some("disk.lua"), &other, t0).is_some());
        assert!(p.find(Some("web.lua"), &other, t0).is_none());
        let mut remote = pause(Some("db"), Some("restart"), None);
        remote.remote = true;
        p.add(remote, hour, hour, t0).unwrap();
        assert!(p.find(None, &other, t0).is_some());
        assert_eq!(p.resume(&pause(Some("nginx"), None, None), false), 1);
        assert!(p.find(Some("web.lua"), &restart, t0).is_none());
        assert_eq!(p.resume(&pause(None, None, None), true), 2);
    }

    #[test]
    fn lengths_are_bounded_and_scopes_make_sense() {
        let t0 = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let mut p = Pauses::default();
        assert!(p.add(pause(None, None, None), hour * 2, hour, t0).is_err());
        assert!(
            p.add(pause(None, None, None), Duration::ZERO, hour, t0)
                .is_err()
        );
        assert!(p.add(pause(None, Some("x"), None), hour, hour, t0).is_err());
        let mut long = pause(None, None, None);
        long.reason = "x".repeat(MAX_TEXT + 1);
        assert!(p.add(long, hour, hour, t0).is_err());
        // The same scope again replaces it.
        p.add(pause(None, None, None), hour, hour, t0).unwrap();
        p.add(pause(None, None, None), hour / 2, hour, t0).unwrap();
        assert_eq!(p.pauses.len(), 1);
    }

    #[test]
    fn pauses_survive_in_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pauses.json");
        assert_eq!(Pauses::load(&path).unwrap(), Pauses::default());
        let mut p = Pauses::default();
        let hour = Duration::from_secs(3600);
        p.add(
            pause(Some("nginx"), None, None),
            hour,
            hour,
            SystemTime::now(),
        )
        .unwrap();
        p.save(&path).unwrap();
        assert_eq!(Pauses::load(&path).unwrap(), p);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
