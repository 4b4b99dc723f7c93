//! The `collectd-monitor` command: tools for operators and rule authors
//! around the plugin, and the processes the plugin starts (rule workers,
//! the config-replacement helper). Everything lives in the library's
//! `cli` module.

fn main() -> std::process::ExitCode {
    collectd_monitor::cli::main()
}
