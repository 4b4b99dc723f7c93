//! What both end-to-end benchmarks need: the release build's files, our
//! plugin installed where a test collectd finds it, and waiting for a log
//! line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `target/release` of this checkout (`cargo build --release` first).
pub fn release() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release")
}

/// Copies the release plugin to `<work>/plugins/monitor.so` (collectd
/// refuses symlinks) and returns that directory, for `PluginDir`.
pub fn install_plugin(work: &Path) -> PathBuf {
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        release().join("libcollectd_monitor.so"),
        plugins.join("monitor.so"),
    )
    .expect("build with cargo build --release first");
    plugins
}

/// Waits up to 30 s for `needle` in the file `log`.
pub fn wait_for_line(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} never said {needle:?}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
