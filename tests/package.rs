//! The Debian package, built by `scripts/package`: its contents and
//! permissions (`dpkg-deb`), `lintian` without errors, and a real install
//! on this machine next to Debian's collectd packages (the CI machine is
//! disposable and root; the package is purged even when the test fails):
//! collectd started with Debian's own collectd.conf loads the plugin through
//! the installed conf.d snippet and an example rule fires; `dpkg -r`
//! leaves only the conffiles (and collectd still starts); `dpkg -P` leaves
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Purges the package when dropped, whatever happened.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["-P", "collectd-monitor"])
            .output();
    }
}

/// A collectd run in the foreground, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's own collectd.conf, with only what a test needs changed: its
/// own BaseDir, PID file and log file, and a fixed host name.
fn debian_conf(dir: &Path) -> PathBuf {
    let stock = std::fs::read_to_string("/usr/share/doc/collectd-core/examples/collectd.conf")
        .expect("collectd-core's example collectd.conf");
    let log = dir.join("collectd.log");
    let conf = stock
        .replace(
            "#BaseDir \"/var/lib/collectd\"",
            &format!(
                "BaseDir \"{0}\"\nPIDFile \"{0}/collectd.pid\"",
                dir.display()
            ),
        )
        .replace("FQDNLookup true", "Hostname \"pkgtest\"\nFQDNLookup false")
        .replace("LoadPlugin syslog", "LoadPlugin logfile")
        .replace(
            "<Plugin syslog>\n\tLogLevel info\n</Plugin>",
            &format!(
                "<Plugin logfile>\n\tLogLevel info\n\tFile \"{}\"\n</Plugin>",
                log.display()
            ),
        );
    assert!(conf.contains("LoadPlugin logfile") && conf.contains(&log.display().to_string()));
    assert!(conf.contains("<Include \"/etc/collectd/collectd.conf.d\">"));
    let path = dir.join("collectd.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn start_collectd(conf: &Path) -> Daemon {
    Daemon(
        Command::new("/usr/sbin/collectd")
            .arg("-C")
            .arg(conf)
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start collectd"),
    )
}

/// Waits until the log has `needle`; no time limit of its own beyond a
/// generous one for a stuck daemon.
fn wait_for_log(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_package_is_clean_installs_fires_a_rule_and_goes_away() {
    let out = Command::new(repo().join("scripts/package"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deb = text(&out.stdout).trim().to_string();
    assert!(deb.ends_with(".deb"), "{deb}");

    // Contents and permissions.
    let listing = text(&run("dpkg-deb", &["-c", &deb]).stdout);
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/collectd-monitor"),
        ("-rw-r--r--", "./usr/lib/collectd/monitor.so"),
        ("-rw-r--r--", "./etc/collectd/collectd.conf.d/monitor.conf"),
        ("-rw-------", "./etc/collectd/monitor/config.json"),
        ("-rw-r--r--", "./usr/share/man/man1/collectd-monitor.1.gz"),
        (
            "-rw-r--r--",
            "./usr/share/man/man1/collectd-monitor-status.1.gz",
        ),
        (
            "-rw-r--r--",
            "./usr/share/bash-completion/completions/collectd-monitor",
        ),
        (
            "-rw-r--r--",
            "./usr/share/doc/collectd-monitor/examples/rules/example.lua",
        ),
        ("-rw-r--r--", "./usr/share/doc/collectd-monitor/copyright"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{mode} {path} not in\n{listing}"
        );
    }
    let info = text(&run("dpkg-deb", &["-I", &deb]).stdout);
    assert!(
        info.contains("collectd-core (>= 5.12)") && info.contains("collectd-core (<< 5.13)"),
        "{info}"
    );
    let conffiles = text(&run("dpkg-deb", &["-f", &deb, "Conffiles"]).stdout)
        + &text(
            &run(
                "sh",
                &[
                    "-c",
                    &format!("dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles"),
                ],
            )
            .stdout,
        );
    assert!(
        conffiles.contains("/etc/collectd/collectd.conf.d/monitor.conf")
            && conffiles.contains("/etc/collectd/monitor/config.json"),
        "{conffiles}"
    );
    // Stripped: a few MiB, not the 50 MiB of a build with debug info.
    let size = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(name))
            .and_then(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .unwrap()
    };
    assert!(size("./usr/bin/collectd-monitor") < 20 << 20, "{listing}");
    assert!(
        size("./usr/lib/collectd/monitor.so") < 20 << 20,
        "{listing}"
    );

    // lintian: no errors (the remaining warnings are listed in docs/install.md).
    let lint = run("lintian", &["--tag-display-limit", "0", &deb]);
    let report = text(&lint.stdout);
    assert!(
        !report.lines().any(|l| l.starts_with("E:")),
        "{report}{}",
        text(&lint.stderr)
    );

    // Installed for real, next to Debian's collectd-core.
    let _installed = Installed;
    let install = run("dpkg", &["-i", &deb]);
    assert!(
        install.status.success(),
        "{}{}",
        text(&install.stdout),
        text(&install.stderr)
    );
    assert_eq!(
        std::fs::metadata("/etc/collectd/monitor/config.json")
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    std::fs::copy(
        "/usr/share/doc/collectd-monitor/examples/rules/example.lua",
        "/etc/collectd/monitor/local/example.lua",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = debian_conf(dir.path());
    let log = dir.path().join("collectd.log");
    {
        let _collectd = start_collectd(&conf);
        wait_for_log(&log, "monitor: collectd-monitor ");
        wait_for_log(&log, "/etc/collectd/monitor/local/example.lua: loaded");
        // Debian's collectd.conf loads the memory plugin: one of the
        // example's two handlers acts on its first reading.
        wait_for_log(
            &log,
            "/etc/collectd/monitor/local/example.lua::metric::memory_free_is_",
        );
        wait_for_log(&log, ": running hello/exec");
        let status = run(
            "/usr/bin/collectd-monitor",
            &[
                "status",
                "--socket",
                &dir.path()
                    .join("monitor/control.sock")
                    .display()
                    .to_string(),
            ],
        );
        assert!(status.status.success(), "{}", text(&status.stderr));
        assert!(
            text(&status.stdout).contains("example.lua: active"),
            "{}",
            text(&status.stdout)
        );
        // Removed while collectd runs the plugin (and no init system runs
        // this collectd): the removal says so.
        let remove = run("dpkg", &["-r", "collectd-monitor"]);
        assert!(remove.status.success(), "{}", text(&remove.stderr));
        assert!(
            text(&remove.stderr).contains("still runs the removed plugin"),
            "{}",
            text(&remove.stderr)
        );
    }
    std::fs::remove_file("/etc/collectd/monitor/local/example.lua").unwrap();

    // Removed: the conffiles stay, and collectd still starts with them.
    assert!(!Path::new("/usr/bin/collectd-monitor").exists());
    assert!(!Path::new("/usr/lib/collectd/monitor.so").exists());
    assert!(Path::new("/etc/collectd/collectd.conf.d/monitor.conf").exists());
    assert!(Path::new("/etc/collectd/monitor/config.json").exists());
    std::fs::remove_file(&log).unwrap();
    {
        let _collectd = start_collectd(&conf);
        wait_for_log(&log, "Initialization complete");
    }

    // Purged: nothing left.
    let purge = run("dpkg", &["-P", "collectd-monitor"]);
    assert!(purge.status.success(), "{}", text(&purge.stderr));
    for gone in [
        "/etc/collectd/collectd.conf.d/monitor.conf",
        "/etc/collectd/monitor",
        "/usr/share/doc/collectd-monitor",
        "/usr/share/collectd-monitor",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    let known = run("dpkg", &["-s", "collectd-monitor"]);
    assert!(!known.status.success(), "{}", text(&known.stdout));
}
