//! The collectd boundary: the only module of the crate that contains `unsafe`.
//!
//! Everything collectd hands us (config tree, value lists, notifications) is
//! turned into owned or borrow-checked Rust values here, and everything we
//! hand to collectd (log lines, notifications) goes out through safe
//! functions here. The rest of the crate never sees a raw pointer, so it can
//! be unit-tested without a collectd process.

mod config_file;
mod config_tree;
mod dispatch;
mod globals;
mod log;
mod metric;
mod notification;
mod process;
mod register;
mod sys;
mod time;

pub use config_file::{global_option, parse_config_file};
pub use dispatch::dispatch_values;
pub use globals::hostname;
pub use log::{LogLevel, MAX_LOG_LINE, loggable, one_line, plugin_log};
pub use metric::{ValueListRef, push_value_list};
pub use notification::{MESSAGE_MAX_BYTES, NAME_MAX_BYTES, dispatch_notification, truncate_utf8};
pub use process::{close_inherited_fds, release_free_memory, restore_default_sigchld};
pub(crate) use register::export_plugin;
pub use register::{Plugin, register};
pub use time::{cdtime_to_secs, secs_to_cdtime};
