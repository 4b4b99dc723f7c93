//! `module_register` and the C callbacks collectd calls. Each callback
//! catches panics, so a bug in our code is logged and turned into an error
//! status instead of unwinding into (and aborting) collectd.

use super::config_tree::config_item_from_raw;
use super::log::{LogLevel, plugin_log};
use super::metric::ValueListRef;
use super::notification::{dispatching_on_this_thread, notification_from_raw};
use super::sys;
use crate::config::ConfigItem;
use crate::events::Notification;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

/// The name collectd knows us by: `LoadPlugin monitor`, `<Plugin monitor>`.
const PLUGIN_NAME: &std::ffi::CStr = c"monitor";

/// What collectd's callbacks do, in safe Rust. collectd may call `write` on
/// several `WriteThreads` at once and `notification` on any thread
/// (synchronously inside whoever dispatched it), hence `Send + Sync` and
/// `&self` everywhere.
pub trait Plugin: Send + Sync + 'static {
    /// One `<Plugin monitor>` block; collectd calls this once per block
    /// (possibly never), always before `init`.
    fn config(&self, block: ConfigItem);
    /// After all configuration. An error is logged by collectd, which then
    /// unregisters our callbacks.
    fn init(&self) -> Result<(), String>;
    /// One value list, on a write thread. Must not block.
    fn write(&self, values: &ValueListRef<'_>);
    /// One notification that did not come from us. Must not block.
    fn notification(&self, notification: Notification);
    /// A series collectd stopped hearing from (its missing callback, from
    /// collectd's main loop). Must not block.
    fn missing(&self, missing: crate::events::Missing);
    /// Every interval, on a read thread: dispatch our own figures.
    fn read(&self);
    /// Last call: stop threads and release resources.
    fn shutdown(&self);
}

static PLUGIN: OnceLock<Box<dyn Plugin>> = OnceLock::new();

fn plugin() -> Option<&'static dyn Plugin> {
    PLUGIN.get().map(|b| b.as_ref())
}

/// Runs `f`, turning a panic into a logged error and `on_panic`.
fn guard<T>(callback: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let what = crate::panics::message(&*payload);
            plugin_log(
                LogLevel::Error,
                &format!(
                    "monitor: internal error in the {callback} callback (caught, collectd keeps running): {what}"
                ),
            );
            on_panic
        }
    }
}

/// Defines `module_register`, the entry point collectd looks up after
/// `dlopen`, for the plugin that `$create` (a `fn() -> Box<dyn Plugin>`)
/// builds. A macro so that the plugin's wiring names itself here, and this
/// module (the boundary with C) depends on nothing above it.
macro_rules! export_plugin {
    ($create:path) => {
        /// Entry point collectd looks up after `dlopen`.
        // `no_mangle` is the only unsafe thing here: collectd finds the
        // plugin by this exact symbol name, and nothing else in the
        // library is named so.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn module_register() {
            $crate::collectd::register($create)
        }
    };
}
pub(crate) use export_plugin;

/// What `module_register` does: keeps the plugin and registers the
/// callbacks with collectd.
pub fn register(create: fn() -> Box<dyn Plugin>) {
    guard("module_register", (), || {
        install_panic_logger();
        if PLUGIN.set(create()).is_err() {
            plugin_log(
                LogLevel::Warning,
                "monitor: module_register called twice; ignored",
            );
            return;
        }
        // SAFETY: PLUGIN_NAME is a static C string and the callbacks are
        // `extern "C"` functions with exactly the signatures collectd
        // declares; collectd copies the name and keeps the function pointers,
        // which live as long as this library stays loaded. A null user_data
        // is accepted by plugin_register_write/notification/missing.
        unsafe {
            sys::plugin_register_complex_config(PLUGIN_NAME.as_ptr(), Some(config_cb));
            sys::plugin_register_init(PLUGIN_NAME.as_ptr(), Some(init_cb));
            sys::plugin_register_write(PLUGIN_NAME.as_ptr(), Some(write_cb), std::ptr::null());
            sys::plugin_register_notification(
                PLUGIN_NAME.as_ptr(),
                Some(notification_cb),
                std::ptr::null(),
            );
            sys::plugin_register_missing(PLUGIN_NAME.as_ptr(), Some(missing_cb), std::ptr::null());
            sys::plugin_register_read(PLUGIN_NAME.as_ptr(), Some(read_cb));
            sys::plugin_register_shutdown(PLUGIN_NAME.as_ptr(), Some(shutdown_cb));
        }
    })
}

/// Panics on our own threads have no callback to catch them; this makes
/// sure they still reach collectd's log, then defers to the previous hook.
fn install_panic_logger() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        plugin_log(LogLevel::Error, &format!("monitor: panic: {info}"));
        previous(info);
    }));
}

unsafe extern "C" fn config_cb(ci: *mut sys::oconfig_item_t) -> i32 {
    guard("config", -1, || {
        // SAFETY: collectd passes a valid config tree for the duration of
        // the call (or null, handled by as_ref).
        let Some(raw) = (unsafe { ci.as_ref() }) else {
            return -1;
        };
        // SAFETY: as above; the tree is only read during this call.
        match unsafe { config_item_from_raw(raw) } {
            Ok(block) => {
                if let Some(p) = plugin() {
                    p.config(block);
                }
            }
            Err(e) => super::log::plugin_log(
                super::log::LogLevel::Error,
                &format!("monitor: <Plugin monitor>: {e}; the block is ignored"),
            ),
        }
        // Never a non-zero status: collectd 5.12 exits on a config error.
        0
    })
}

unsafe extern "C" fn init_cb() -> i32 {
    guard("init", -1, || match plugin().map(|p| p.init()) {
        Some(Ok(())) | None => 0,
        Some(Err(e)) => {
            plugin_log(LogLevel::Error, &format!("monitor: init failed: {e}"));
            -1
        }
    })
}

unsafe extern "C" fn write_cb(
    ds: *const sys::data_set_t,
    vl: *const sys::value_list_t,
    _ud: *mut sys::user_data_t,
) -> i32 {
    guard("write", -1, || {
        // SAFETY: inside a write callback collectd guarantees `ds` and `vl`
        // are valid, consistent and unmodified until we return; the
        // ValueListRef does not outlive this closure.
        match unsafe { ValueListRef::from_raw(ds, vl) } {
            Ok(values) => {
                if let Some(p) = plugin() {
                    p.write(&values);
                }
                0
            }
            Err(e) => {
                plugin_log(
                    LogLevel::Error,
                    &format!("monitor: unreadable value list: {e}"),
                );
                -1
            }
        }
    })
}

unsafe extern "C" fn notification_cb(
    n: *const sys::notification_t,
    _ud: *mut sys::user_data_t,
) -> i32 {
    guard("notification", -1, || {
        if dispatching_on_this_thread() {
            return 0;
        }
        // SAFETY: collectd passes a valid notification for the duration of
        // the call (or null, handled by as_ref).
        let Some(raw) = (unsafe { n.as_ref() }) else {
            return -1;
        };
        // SAFETY: as above.
        let notification = unsafe { notification_from_raw(raw) };
        if let Some(p) = plugin() {
            p.notification(notification);
        }
        0
    })
}

unsafe extern "C" fn missing_cb(vl: *const sys::value_list_t, _ud: *mut sys::user_data_t) -> i32 {
    guard("missing", 0, || {
        // SAFETY: collectd passes a valid value list (identity, time and
        // interval set; no values) for the duration of the call, or null,
        // handled by as_ref.
        let Some(raw) = (unsafe { vl.as_ref() }) else {
            return 0;
        };
        if let Some(p) = plugin() {
            p.missing(super::metric::missing_from_raw(raw));
        }
        // Zero: the other plugins' missing callbacks run too (a positive
        // status would stop them).
        0
    })
}

unsafe extern "C" fn read_cb() -> i32 {
    guard("read", -1, || {
        if let Some(p) = plugin() {
            p.read();
        }
        0
    })
}

unsafe extern "C" fn shutdown_cb() -> i32 {
    guard("shutdown", -1, || {
        if let Some(p) = plugin() {
            p.shutdown();
        }
        0
    })
}
