//! How collectd was started, so the replacement helper can find its config
//! and start it again the same way. collectd has no API for its config
//! path: read its command line as its own getopt does (`-C file`,
//! `-P pidfile`, `-f`), relative to the directory it was started in.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// collectd's compiled-in default config path on Debian.
pub const DEFAULT_CONFIG: &str = "/etc/collectd/collectd.conf";

/// collectd's command line and what it implies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Working directory at start (collectd moves to its BaseDir later).
    pub cwd: PathBuf,
    pub config: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// `-f`: collectd stays in the foreground.
    pub foreground: bool,
}

impl Invocation {
    /// Reads `/proc/self/cmdline` and the working directory. Call it from
    /// `module_register`, before collectd changes directory.
    pub fn of_this_process() -> Option<Invocation> {
        let raw = std::fs::read("/proc/self/cmdline").ok()?;
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Some(parse(argv, &std::env::current_dir().ok()?))
    }
}

/// Interprets collectd's options `BhtTfC:P:` like getopt, including
/// `-Cfile` and grouped flags such as `-fC file`.
pub fn parse(argv: Vec<String>, cwd: &Path) -> Invocation {
    let mut config = None;
    let mut pid_file = None;
    let mut foreground = false;
    let mut i = 1;
    while i < argv.len() {
        let arg = &argv[i];
        if arg == "--" || !arg.starts_with('-') || arg.len() < 2 {
            break;
        }
        for (pos, flag) in arg.char_indices().skip(1) {
            match flag {
                'f' => foreground = true,
                'C' | 'P' => {
                    let rest = &arg[pos + 1..];
                    let value = if rest.is_empty() {
                        i += 1;
                        argv.get(i).cloned().unwrap_or_default()
                    } else {
                        rest.to_string()
                    };
                    let path = cwd.join(value);
                    if flag == 'C' {
                        config = Some(path)
                    } else {
                        pid_file = Some(path)
                    }
                    break;
                }
                _ => {}
            }
        }
        i += 1;
    }
    Invocation {
        argv,
        cwd: cwd.to_path_buf(),
        config: config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        pid_file,
        foreground,
    }
}

/// The directory the shared object holding this code was loaded from
/// (where collectd found `monitor.so`), read from `/proc/self/maps`.
pub fn this_library_dir() -> Option<PathBuf> {
    let here = this_library_dir as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (from, to) = fields.next()?.split_once('-')?;
        let (from, to) = (
            usize::from_str_radix(from, 16).ok()?,
            usize::from_str_radix(to, 16).ok()?,
        );
        let path = fields.nth(4)?;
        (from <= here && here < to && path.starts_with('/'))
            .then(|| Path::new(path).parent().map(Path::to_path_buf))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_options_like_getopt() {
        let cwd = Path::new("/srv");
        let i = parse(
            args(&["collectd", "-f", "-C", "conf/c.conf", "-P/run/c.pid"]),
            cwd,
        );
        assert_eq!(i.config, Path::new("/srv/conf/c.conf"));
        assert_eq!(i.pid_file.as_deref(), Some(Path::new("/run/c.pid")));
        assert!(i.foreground);
        let i = parse(args(&["collectd", "-fC", "/etc/x.conf"]), cwd);
        assert_eq!(
            (i.config.as_path(), i.foreground),
            (Path::new("/etc/x.conf"), true)
        );
        let i = parse(args(&["/usr/sbin/collectd"]), cwd);
        assert_eq!(
            (i.config.as_path(), i.pid_file, i.foreground),
            (Path::new(DEFAULT_CONFIG), None, false)
        );
    }

    #[test]
    fn this_library_is_found_in_the_process_maps() {
        // In a test binary the code is in the executable itself.
        let dir = this_library_dir().expect("a mapping holds this function");
        assert!(
            std::env::current_exe().unwrap().starts_with(&dir),
            "{dir:?}"
        );
    }
}
