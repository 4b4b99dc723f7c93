//! Value lists: collectd's `value_list_t` + `data_set_t`, borrowed
//! ([`ValueListRef`], free to inspect on the write path) or owned ([`Metric`],
//! what crosses threads and processes).

use super::sys;
use super::time::cdtime_to_secs;
use crate::events::{DsType, Metric, Value};
use std::borrow::Cow;
use std::os::raw::c_char;

/// A data source type from collectd's numbering.
fn ds_type_from_raw(t: i32) -> Option<DsType> {
    match t as u32 {
        sys::DS_TYPE_COUNTER => Some(DsType::Counter),
        sys::DS_TYPE_GAUGE => Some(DsType::Gauge),
        sys::DS_TYPE_DERIVE => Some(DsType::Derive),
        sys::DS_TYPE_ABSOLUTE => Some(DsType::Absolute),
        _ => None,
    }
}

/// Appends one value list to a batch straight from collectd's callback,
/// without an owned copy: this is all a write thread of collectd pays per
/// value.
pub fn push_value_list(buf: &mut Vec<u8>, v: &ValueListRef<'_>) {
    let ids = [
        v.host(),
        v.plugin(),
        v.plugin_instance(),
        v.type_(),
        v.type_instance(),
    ];
    crate::events::batch::put_metric(buf, ids, v.time(), v.interval(), v.values());
}

/// Why a value list handed to us could not be read. collectd checks these
/// itself before calling writers, so seeing one means a bug elsewhere; we
/// report it instead of trusting the data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueListError {
    #[error("null value list or data set")]
    Null,
    #[error("value list has {values} values but data set `{ds}` has {sources} sources")]
    LengthMismatch {
        ds: String,
        values: usize,
        sources: usize,
    },
    #[error("data set `{ds}` has unknown data source type {ty}")]
    UnknownType { ds: String, ty: i32 },
}

/// A value list as collectd passed it to our write callback, valid only for
/// the duration of that callback. Reading identity fields costs no
/// allocation, so cheap filters can run before [`ValueListRef::to_metric`].
pub struct ValueListRef<'a> {
    ds: &'a sys::data_set_t,
    vl: &'a sys::value_list_t,
}

impl<'a> ValueListRef<'a> {
    /// # Safety
    /// `ds` and `vl` must be null or point to a data set and a value list that
    /// stay valid and unmodified for `'a`, with `vl.values` pointing to
    /// `vl.values_len` values and `ds.ds` to `ds.ds_num` sources (as collectd
    /// guarantees inside a write callback).
    pub(super) unsafe fn from_raw(
        ds: *const sys::data_set_t,
        vl: *const sys::value_list_t,
    ) -> Result<Self, ValueListError> {
        // SAFETY: the caller guarantees validity for 'a when non-null.
        let (ds, vl) = unsafe {
            match (ds.as_ref(), vl.as_ref()) {
                (Some(ds), Some(vl)) => (ds, vl),
                _ => return Err(ValueListError::Null),
            }
        };
        let this = ValueListRef { ds, vl };
        if vl.values_len != ds.ds_num
            || (vl.values_len > 0 && (vl.values.is_null() || ds.ds.is_null()))
        {
            return Err(ValueListError::LengthMismatch {
                ds: this.ds_name().into_owned(),
                values: vl.values_len,
                sources: ds.ds_num,
            });
        }
        for source in this.sources() {
            if ds_type_from_raw(source.type_).is_none() {
                return Err(ValueListError::UnknownType {
                    ds: this.ds_name().into_owned(),
                    ty: source.type_,
                });
            }
        }
        Ok(this)
    }

    pub fn host(&self) -> Cow<'a, str> {
        fixed_str(&self.vl.host)
    }
    pub fn plugin(&self) -> Cow<'a, str> {
        fixed_str(&self.vl.plugin)
    }
    pub fn plugin_instance(&self) -> Cow<'a, str> {
        fixed_str(&self.vl.plugin_instance)
    }
    pub fn type_(&self) -> Cow<'a, str> {
        fixed_str(&self.vl.type_)
    }
    pub fn type_instance(&self) -> Cow<'a, str> {
        fixed_str(&self.vl.type_instance)
    }

    fn ds_name(&self) -> Cow<'a, str> {
        fixed_str(&self.ds.type_)
    }

    fn sources(&self) -> &'a [sys::data_source_t] {
        if self.ds.ds_num == 0 || self.ds.ds.is_null() {
            return &[];
        }
        // SAFETY: from_raw's contract: `ds.ds` points to `ds_num` sources
        // valid for 'a.
        unsafe { std::slice::from_raw_parts(self.ds.ds, self.ds.ds_num) }
    }

    fn raw_values(&self) -> &'a [sys::value_t] {
        if self.vl.values_len == 0 || self.vl.values.is_null() {
            return &[];
        }
        // SAFETY: from_raw's contract: `vl.values` points to `values_len`
        // values valid for 'a (checked non-null and equal to ds_num above).
        unsafe { std::slice::from_raw_parts(self.vl.values, self.vl.values_len) }
    }

    /// Whether collectd's meta data of the value list has `key` (the
    /// network plugin's `network:received`).
    pub fn has_meta(&self, key: &std::ffi::CStr) -> bool {
        if self.vl.meta.is_null() {
            return false;
        }
        // SAFETY: `meta` is the value list's own meta data, valid for the
        // callback (from_raw's contract), and non-null; collectd locks it
        // for the lookup; `key` is NUL-terminated.
        unsafe { sys::meta_data_exists(self.vl.meta, key.as_ptr()) == 1 }
    }

    /// A string entry of collectd's meta data of the value list (the
    /// network plugin's `network:username`), if it has one.
    pub fn meta_string(&self, key: &std::ffi::CStr) -> Option<String> {
        if self.vl.meta.is_null() {
            return None;
        }
        let mut value: *mut c_char = std::ptr::null_mut();
        // SAFETY: as in `has_meta`; on success collectd stores a string it
        // allocated with malloc in `value`, which we own.
        let status = unsafe { sys::meta_data_get_string(self.vl.meta, key.as_ptr(), &mut value) };
        if status != 0 || value.is_null() {
            return None;
        }
        // SAFETY: `value` is the NUL-terminated copy collectd made for us;
        // it is read once, then freed with the allocator that made it.
        let text = unsafe {
            let text = std::ffi::CStr::from_ptr(value)
                .to_string_lossy()
                .into_owned();
            libc::free(value.cast());
            text
        };
        Some(text)
    }

    /// Seconds since the epoch.
    pub fn time(&self) -> f64 {
        cdtime_to_secs(self.vl.time)
    }

    /// Seconds.
    pub fn interval(&self) -> f64 {
        cdtime_to_secs(self.vl.interval)
    }

    /// Each value with its data source name, in order.
    pub fn values(&self) -> impl Iterator<Item = (Value, Cow<'a, str>)> + 'a {
        self.sources()
            .iter()
            .zip(self.raw_values())
            .map(|(source, raw)| {
                let ty = ds_type_from_raw(source.type_).unwrap_or(DsType::Gauge);
                // SAFETY: the union member read is the one the data source
                // type names, which is how collectd itself writes it; every
                // bit pattern is valid for these plain integer and float
                // members.
                let value = unsafe {
                    match ty {
                        DsType::Gauge => Value::Gauge(raw.gauge),
                        DsType::Derive => Value::Derive(raw.derive),
                        DsType::Counter => Value::Counter(raw.counter),
                        DsType::Absolute => Value::Absolute(raw.absolute),
                    }
                };
                (value, fixed_str(&source.name))
            })
    }

    /// Copies everything into an owned [`Metric`].
    pub fn to_metric(&self) -> Metric {
        let (values, dsnames): (Vec<Value>, Vec<String>) = self
            .values()
            .map(|(value, name)| (value, name.into_owned()))
            .unzip();
        Metric {
            host: self.host().into_owned(),
            plugin: self.plugin().into_owned(),
            plugin_instance: self.plugin_instance().into_owned(),
            type_: self.type_().into_owned(),
            type_instance: self.type_instance().into_owned(),
            time: self.time(),
            interval: self.interval(),
            dstypes: values.iter().map(Value::ds_type).collect(),
            values,
            dsnames,
        }
    }
}

/// The series of a value list collectd passed to our missing callback
/// (only its identity, the time of its last value and its interval are
/// set), and how long it has been silent now.
pub(super) fn missing_from_raw(vl: &sys::value_list_t) -> crate::events::Missing {
    let series = Metric {
        host: fixed_str(&vl.host).into_owned(),
        plugin: fixed_str(&vl.plugin).into_owned(),
        plugin_instance: fixed_str(&vl.plugin_instance).into_owned(),
        type_: fixed_str(&vl.type_).into_owned(),
        type_instance: fixed_str(&vl.type_instance).into_owned(),
        time: cdtime_to_secs(vl.time),
        interval: cdtime_to_secs(vl.interval),
        ..Metric::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    crate::events::Missing {
        silent_for: (now - series.time).max(0.0),
        series,
    }
}

/// Reads a fixed-size C char array up to its first NUL (or its end, if a
/// buggy writer left none), replacing invalid UTF-8.
pub(super) fn fixed_str(field: &[c_char]) -> Cow<'_, str> {
    // SAFETY: c_char and u8 have the same size and alignment, and every bit
    // pattern is valid for both; the slice covers exactly the same memory.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(field.as_ptr().cast(), field.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> [c_char; 128] {
        let mut out = [0 as c_char; 128];
        for (dst, src) in out.iter_mut().zip(s.bytes()) {
            *dst = src as c_char;
        }
        out
    }

    fn source(n: &str, ty: u32) -> sys::data_source_t {
        sys::data_source_t {
            name: name(n),
            type_: ty as i32,
            min: 0.0,
            max: f64::NAN,
        }
    }

    #[test]
    fn converts_every_field_and_type() {
        let mut sources = [
            source("a", sys::DS_TYPE_GAUGE),
            source("b", sys::DS_TYPE_DERIVE),
            source("c", sys::DS_TYPE_COUNTER),
            source("d", sys::DS_TYPE_ABSOLUTE),
        ];
        let ds = sys::data_set_t {
            type_: name("test"),
            ds_num: 4,
            ds: sources.as_mut_ptr(),
        };
        let mut values = [
            sys::value_t { gauge: 1.5 },
            sys::value_t { derive: -7 },
            sys::value_t { counter: 8 },
            sys::value_t { absolute: 9 },
        ];
        let vl = sys::value_list_t {
            values: values.as_mut_ptr(),
            values_len: 4,
            time: 3 << 30,
            interval: 10 << 30,
            host: name("h"),
            plugin: name("p"),
            plugin_instance: name("pi"),
            type_: name("test"),
            type_instance: name("ti"),
            meta: std::ptr::null_mut(),
        };
        // SAFETY: all pointers refer to the locals above, alive for the test.
        let r = unsafe { ValueListRef::from_raw(&ds, &vl) }.unwrap();
        assert_eq!(r.plugin(), "p");
        let m = r.to_metric();
        assert_eq!(
            m.values,
            vec![
                Value::Gauge(1.5),
                Value::Derive(-7),
                Value::Counter(8),
                Value::Absolute(9)
            ]
        );
        assert_eq!(m.dsnames, vec!["a", "b", "c", "d"]);
        assert_eq!(m.time, 3.0);
        assert_eq!(m.interval, 10.0);
        assert_eq!(
            (
                m.host.as_str(),
                m.plugin_instance.as_str(),
                m.type_.as_str(),
                m.type_instance.as_str()
            ),
            ("h", "pi", "test", "ti")
        );
    }

    #[test]
    fn rejects_mismatched_lengths_and_nulls() {
        let ds = sys::data_set_t {
            type_: name("x"),
            ds_num: 2,
            ds: std::ptr::null_mut(),
        };
        let vl = sys::value_list_t {
            values_len: 1,
            ..Default::default()
        };
        // SAFETY: pointers to live locals; the null inner pointers are what
        // the check under test must catch.
        let err = unsafe { ValueListRef::from_raw(&ds, &vl) }.err().unwrap();
        assert!(matches!(
            err,
            ValueListError::LengthMismatch {
                values: 1,
                sources: 2,
                ..
            }
        ));
        // SAFETY: null is explicitly allowed by the contract.
        let err = unsafe { ValueListRef::from_raw(std::ptr::null(), &vl) }
            .err()
            .unwrap();
        assert_eq!(err, ValueListError::Null);
    }

    #[test]
    fn unterminated_fields_are_bounded() {
        let field = [b'x' as c_char; 128];
        assert_eq!(fixed_str(&field).len(), 128);
    }
}
