//! The files of a rule push: staging the new set beside the rule
//! directory, checking it with `rules check` in a process of its own,
//! keeping the running set for rollback, and swapping directories in one
//! step (`renameat2(RENAME_EXCHANGE)`), so the engine never sees half a
//! set.

use super::bundle::{Bundle, MAX_FILE_BYTES, MAX_FILES, digest};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `rules check` of a pushed set may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of its report read at most.
const MAX_REPORT: u64 = 4 * 1024 * 1024;

/// Where the running set lives, and what checks a new one.
#[derive(Clone, Debug)]
pub struct Places {
    /// `LocalMonitorConfigDir`.
    pub rules_dir: PathBuf,
    /// The config.json the plugin reads (`MonitorConfigPath`).
    pub config_json: Option<PathBuf>,
    /// `StateDir`: the previous set is kept in `rules-previous/`.
    pub state_dir: PathBuf,
    /// `HelperPath`: this program, which runs `rules check`.
    pub helper: PathBuf,
    /// `SandboxUser`: whom the checker of a pushed set runs as.
    pub sandbox_user: Option<String>,
}

/// A file's name and content.
type NamedFile = (String, Vec<u8>);

/// Each file of a set with its size and modification time (ns).
pub type Fingerprint = Vec<(PathBuf, u64, i128)>;

/// What a host runs, as its presence tells it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Versions {
    /// The digest of the rule files.
    pub rule_set: String,
    /// The digest of config.json, when the plugin reads one.
    pub config_json: Option<String>,
}

/// A new set written beside the running one, not yet in place.
#[derive(Debug, Default)]
pub struct Staged {
    pub(super) files: Option<PathBuf>,
    pub(super) config: Option<PathBuf>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Places {
    /// A hidden name beside `path` (same directory, so same filesystem).
    fn beside(path: &Path, tag: &str) -> Result<PathBuf, String> {
        let name = path
            .file_name()
            .ok_or_else(|| format!("{}: no file name", path.display()))?;
        Ok(path.with_file_name(format!(".{}.{tag}", name.to_string_lossy())))
    }

    fn previous(&self) -> PathBuf {
        self.state_dir.join("rules-previous")
    }

    /// The running rule files, by name, and config.json, as they are on
    /// disk (bounded; what does not fit the bounds, and links, which the
    /// engine does not load either, are left out).
    fn running(&self) -> (Vec<NamedFile>, Option<Vec<u8>>) {
        let files = running_files(&self.rules_dir);
        // config.json is the file the plugin was configured with, wherever
        // it points.
        let config = self.config_json.as_ref().and_then(|p| {
            crate::files::read_regular(p, MAX_FILE_BYTES as u64, crate::files::Links::Follow).ok()
        });
        (files, config)
    }

    /// What changes when a file of the running set changes: names, sizes
    /// and modification times, read without opening a file.
    pub fn fingerprint(&self) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        lua_files(&self.rules_dir)
            .into_iter()
            .chain(self.config_json.clone())
            .filter_map(|p| {
                let m = std::fs::metadata(&p).ok()?;
                let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
                Some((p, m.len(), mtime))
            })
            .collect()
    }

    /// The digests of the running rule files and of config.json (see
    /// [`digest`]); apart, so that hosts whose config.json differs (their
    /// own names, brokers) still show one rule set.
    pub fn digest(&self) -> Versions {
        let (files, config) = self.running();
        Versions {
            rule_set: digest(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())), None),
            config_json: config.map(|c| digest([], Some(&c))),
        }
    }
}

/// The rule files of `dir` the engine runs, by name, as they are on disk
/// (bounded; links and what does not fit are left out).
fn running_files(dir: &Path) -> Vec<NamedFile> {
    lua_files(dir)
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            let bytes = crate::files::read_regular(
                &path,
                MAX_FILE_BYTES as u64,
                crate::files::Links::Refuse,
            )
            .ok()?;
            Some((name, bytes))
        })
        .collect()
}

/// The digest of the rule files in `dir` (as a host announces its rule
/// set): what a controller announces of its central rules, so that
/// redundant controllers can tell they run the same ones, and how a swap
/// interrupted by a crash tells whether the rule directory moved.
pub fn rule_set_digest(dir: &Path) -> String {
    let files = running_files(dir);
    digest(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())), None)
}

/// The `*.lua` files directly in `dir` as the engine lists them (it runs
/// exactly these), in name order, at most [`MAX_FILES`] + 1 of them.
fn lua_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = crate::rules::lua_files(dir).unwrap_or_default();
    files.truncate(MAX_FILES + 1);
    files
}

/// Writes `bytes` to a new file `path` with `mode`, synced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    crate::files::write_new(path, bytes, mode).map_err(io(path))
}

/// Writes the files of a set into a new directory `dir`.
fn write_set<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir(dir).map_err(io(dir))?;
    for (name, bytes) in files {
        write_new(&dir.join(name), bytes, 0o644)?;
    }
    Ok(())
}

/// Writes `bundle` beside the running set.
pub fn stage(places: &Places, bundle: &Bundle, task_id: u64) -> Result<Staged, String> {
    let mut staged = Staged::default();
    if let Some(files) = &bundle.files {
        let dir = Places::beside(&places.rules_dir, &format!("incoming-{task_id}"))?;
        staged.files = Some(dir.clone());
        write_set(&dir, files.iter().map(|(n, t)| (n.as_str(), t.as_bytes())))
            .inspect_err(|_| discard(&staged))?;
    }
    if let Some(config) = &bundle.config {
        let Some(path) = &places.config_json else {
            discard(&staged);
            return Err("this plugin reads no config.json file (no MonitorConfigPath)".into());
        };
        let new = Places::beside(path, &format!("new-{task_id}"))?;
        let _ = std::fs::remove_file(&new);
        staged.config = Some(new.clone());
        write_new(&new, config.as_bytes(), 0o600).inspect_err(|_| discard(&staged))?;
    }
    Ok(staged)
}

/// Removes what [`stage`] wrote.
pub fn discard(staged: &Staged) {
    if let Some(dir) = &staged.files {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(config) = &staged.config {
        let _ = std::fs::remove_file(config);
    }
}

/// Checks a staged set as `rules check` does, in a process of its own (a
/// rule file that crashes or hangs the checker cannot touch collectd),
/// against the new config.json or the running one; and the new
/// config.json as the plugin would load it. The error lists every
/// problem with the file's name and line.
pub fn check(places: &Places, staged: &Staged) -> Result<(), CheckError> {
    if let Some(config) = &staged.config {
        crate::config::load_json_file(config).map_err(|e| {
            CheckError::Invalid(format!(
                "config.json: {}",
                e.to_string()
                    .replace(&config.display().to_string(), "config.json")
            ))
        })?;
        let refused = super::settings::refused_changes(
            &json_object(places.config_json.as_deref())?,
            &json_object(Some(config))?,
        );
        if !refused.is_empty() {
            return Err(CheckError::Settings(refused));
        }
    }
    let dir = staged.files.as_ref().unwrap_or(&places.rules_dir);
    if lua_files(dir).is_empty() {
        return Ok(());
    }
    // Confined as a rule worker: a pushed file's top level runs there.
    let mut command = Command::new(&places.helper);
    crate::sandbox::watchdog::tie_to_parent(&mut command);
    command.args(["rules", "check", "--json", "--sandbox"]);
    if let Some(user) = &places.sandbox_user {
        command.arg(format!("--sandbox-user={user}"));
    }
    command.arg(dir);
    if let Some(config) = staged.config.as_ref().or(places.config_json.as_ref()) {
        command.arg("--config").arg(config);
    }
    // Its exit status is not known inside collectd (see `run_bounded`):
    // the report says it all.
    let report = run_bounded(command, CHECK_TIMEOUT).map_err(CheckError::Invalid)?;
    let report: serde_json::Value = serde_json::from_slice(&report)
        .map_err(|e| CheckError::Invalid(format!("rules check answered no report: {e}")))?;
    let prefix = format!("{}/", dir.display());
    let errors: Vec<String> = report["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .map(|e| e.replace(&prefix, ""))
        .collect();
    if errors.is_empty() && report["files"].is_array() {
        Ok(())
    } else if errors.is_empty() {
        Err(CheckError::Invalid("rules check answered no report".into()))
    } else {
        Err(CheckError::Invalid(errors.join("\n")))
    }
}

/// Why a staged set is not installed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// It does not load, or a command it asks for is not configured.
    #[error("{0}")]
    Invalid(String),
    /// The pushed config.json changes settings only the host's own files
    /// set.
    #[error(
        "config.json may not change {}: who may do what and where state lives stay as this host's own files set them (a push may change Services and rule options)",
        .0.join(", ")
    )]
    Settings(Vec<String>),
}

/// The top-level object of the JSON file at `path` (none: empty).
fn json_object(
    path: Option<&Path>,
) -> Result<serde_json::Map<String, serde_json::Value>, CheckError> {
    let Some(path) = path else {
        return Ok(serde_json::Map::new());
    };
    let bytes =
        crate::files::read_regular(path, MAX_FILE_BYTES as u64, crate::files::Links::Follow)
            .map_err(|e| CheckError::Invalid(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CheckError::Invalid(format!("{}: {e}", path.display())))
}

/// Runs `command`, killing it past `timeout`; the first [`MAX_REPORT`]
/// bytes of its output. Not its exit status: collectd ignores `SIGCHLD`,
/// so the kernel reaps its children and `waitpid` fails with `ECHILD`,
/// which here only says the child is gone.
fn run_bounded(mut command: Command, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run rules check: {e}"))?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_REPORT).read_to_end(&mut out);
        }
        out
    });
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "rules check took more than {} s",
                    timeout.as_secs()
                ));
            }
            Ok(Some(_)) => break,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
            Err(e) => return Err(format!("rules check: {e}")),
        }
    }
    Ok(reader.join().unwrap_or_default())
}

/// Keeps the running set (rule files and config.json) in
/// `StateDir/rules-previous`, replacing what was kept before.
pub fn keep_previous(places: &Places) -> Result<(), String> {
    let (files, config) = places.running();
    let previous = places.previous();
    let tmp = places.state_dir.join("rules-previous.new");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&places.state_dir).map_err(io(&places.state_dir))?;
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    write_set(
        &tmp.join("files"),
        files.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
    )?;
    if let Some(config) = config {
        write_new(&tmp.join("config.json"), &config, 0o600)?;
    }
    super::swap::crash_point("before-keeping");
    // Never a moment without a kept set: the new one takes the old one's
    // place in one step, and the old one (now at `tmp`) goes after.
    if previous.exists() {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        renameat2(
            AT_FDCWD,
            tmp.as_path(),
            AT_FDCWD,
            previous.as_path(),
            RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| format!("{}: {e}", previous.display()))?;
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))
    } else {
        std::fs::rename(&tmp, &previous).map_err(io(&previous))
    }
}

/// The kept set as a bundle, or `None` when nothing is kept.
pub fn previous_bundle(places: &Places) -> Result<Option<Bundle>, String> {
    let previous = places.previous();
    if !previous.join("files").is_dir() {
        return Ok(None);
    }
    let read = |path: &Path| -> Result<String, String> {
        let bytes =
            crate::files::read_regular(path, MAX_FILE_BYTES as u64, crate::files::Links::Refuse)
                .map_err(io(path))?;
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))
    };
    let mut files = std::collections::BTreeMap::new();
    for path in lua_files(&previous.join("files")) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(name, read(&path)?);
    }
    let config_path = previous.join("config.json");
    let config = if config_path.exists() && places.config_json.is_some() {
        Some(read(&config_path)?)
    } else {
        None
    };
    Ok(Some(Bundle {
        files: Some(files),
        config,
    }))
}

/// Removes what an interrupted push left beside the running set.
pub fn sweep(places: &Places) {
    for (path, tag) in [
        (Some(&places.rules_dir), ".incoming-"),
        (places.config_json.as_ref(), ".new-"),
    ] {
        let Some(path) = path else { continue };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let prefix = format!(".{}{tag}", name.to_string_lossy());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let p = entry.path();
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host's places under `root`, for the deploy tests.
    pub(in crate::deploy) fn places(root: &Path) -> Places {
        Places {
            rules_dir: root.join("rules"),
            config_json: Some(root.join("config.json")),
            state_dir: root.join("state"),
            helper: PathBuf::from("/nonexistent"),
            sandbox_user: None,
        }
    }

    #[test]
    fn a_set_is_swapped_whole_and_the_old_one_kept() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        std::fs::create_dir(&p.rules_dir).unwrap();
        std::fs::write(p.rules_dir.join("old.lua"), "return {}").unwrap();
        std::fs::write(p.config_json.as_ref().unwrap(), "{}").unwrap();
        let before = p.digest();
        assert!(before.config_json.is_some());
        let bundle = Bundle {
            files: Some(BTreeMap::from([("new.lua".into(), "return {}".into())])),
            config: Some("{\"Services\": {}}".into()),
        };
        let staged = stage(&p, &bundle, 7).unwrap();
        keep_previous(&p).unwrap();
        super::super::swap::install(&p, &staged, 1).unwrap();
        assert!(p.rules_dir.join("new.lua").exists());
        assert!(!p.rules_dir.join("old.lua").exists());
        assert_ne!(p.digest(), before);
        // Nothing left beside the set.
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // The kept set brings the old one back.
        let back = previous_bundle(&p).unwrap().unwrap();
        assert_eq!(
            back.files.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["old.lua"]
        );
        assert_eq!(back.config.as_deref(), Some("{}"));
        let staged = stage(&p, &back, 8).unwrap();
        keep_previous(&p).unwrap();
        super::super::swap::install(&p, &staged, 1).unwrap();
        assert_eq!(p.digest(), before);
        // An interrupted push leaves nothing after a sweep.
        stage(&p, &bundle, 9).unwrap();
        sweep(&p);
        let left = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(left, 0);
    }
}
