//! Values we dispatch ourselves: the plugin's self-monitoring figures go
//! through collectd like any other plugin's, so operators graph and alert
//! on the monitor with the tools they already use.

use super::notification::copy_truncated;
use super::sys;
use crate::events::Value;

/// Dispatches one value list with collectd's hostname, the current time and
/// the read interval (collectd fills in empty/zero fields). Names longer
/// than collectd allows are cut.
pub fn dispatch_values(
    plugin: &str,
    plugin_instance: &str,
    type_: &str,
    type_instance: &str,
    values: &[Value],
) -> Result<(), i32> {
    let mut raw_values: Vec<sys::value_t> = values
        .iter()
        .map(|v| match *v {
            Value::Gauge(g) => sys::value_t { gauge: g },
            Value::Derive(d) => sys::value_t { derive: d },
            Value::Counter(c) => sys::value_t { counter: c },
            Value::Absolute(a) => sys::value_t { absolute: a },
        })
        .collect();
    let mut vl = sys::value_list_t {
        values: raw_values.as_mut_ptr(),
        values_len: raw_values.len(),
        ..Default::default()
    };
    copy_truncated(&mut vl.plugin, plugin);
    copy_truncated(&mut vl.plugin_instance, plugin_instance);
    copy_truncated(&mut vl.type_, type_);
    copy_truncated(&mut vl.type_instance, type_instance);
    // SAFETY: `vl` is fully initialised, points at `raw_values` (alive
    // until after the call, with `values_len` elements) and has a null meta
    // list; collectd copies what it keeps before returning.
    let status = unsafe { sys::plugin_dispatch_values(&vl) };
    if status == 0 { Ok(()) } else { Err(status) }
}
