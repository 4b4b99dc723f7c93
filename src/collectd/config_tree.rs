//! collectd's parsed configuration (`oconfig_item_t`), copied into an owned
//! tree so the config module can validate it without touching C memory.

use super::sys;
use crate::config::{ConfigItem, ConfigValue};
use std::ffi::CStr;

/// Deepest nesting of blocks copied out of collectd's tree. Real configs
/// nest a handful of levels; a pushed config can nest thousands, and the
/// copy must not recurse on untrusted depth.
pub const MAX_DEPTH: usize = 64;

/// Copies collectd's tree, refusing one nested deeper than [`MAX_DEPTH`].
///
/// # Safety
/// `ci` must point to a well-formed config item tree (as collectd passes
/// to complex-config callbacks), valid for the duration of the call.
pub(super) unsafe fn config_item_from_raw(ci: &sys::oconfig_item_t) -> Result<ConfigItem, String> {
    // SAFETY: forwarded from the caller.
    unsafe { from_raw_at(ci, 0) }
}

/// # Safety
/// As [`config_item_from_raw`].
unsafe fn from_raw_at(ci: &sys::oconfig_item_t, depth: usize) -> Result<ConfigItem, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the config nests blocks deeper than {MAX_DEPTH} levels"
        ));
    }
    // SAFETY: per the contract, `key` is null or a C string, and
    // `values`/`children` point to `values_num`/`children_num` elements.
    unsafe {
        let key = if ci.key.is_null() {
            String::new()
        } else {
            CStr::from_ptr(ci.key).to_string_lossy().into_owned()
        };
        let values = slice(ci.values, ci.values_num)
            .iter()
            .map(|v| match v.type_ as u32 {
                sys::OCONFIG_TYPE_NUMBER => ConfigValue::Number(v.value.number),
                sys::OCONFIG_TYPE_BOOLEAN => ConfigValue::Boolean(v.value.boolean != 0),
                _ if v.value.string.is_null() => ConfigValue::String(String::new()),
                _ => ConfigValue::String(
                    CStr::from_ptr(v.value.string)
                        .to_string_lossy()
                        .into_owned(),
                ),
            })
            .collect();
        let children = slice(ci.children, ci.children_num)
            .iter()
            .map(|c| from_raw_at(c, depth + 1))
            .collect::<Result<_, _>>()?;
        Ok(ConfigItem {
            key,
            values,
            children,
        })
    }
}

/// # Safety
/// `ptr` must point to `len` valid elements when `len > 0`.
unsafe fn slice<'a, T>(ptr: *const T, len: i32) -> &'a [T] {
    if ptr.is_null() || len <= 0 {
        &[]
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { std::slice::from_raw_parts(ptr, len as usize) }
    }
}
