//! The tables rule handlers receive, built straight from an event in the
//! VM (so the rule engine never handles the VM's types), field for field
//! as collectd's lua plugin built them (docs/COMPATIBILITY.md §1), including its quirk of `dsnames`/`dstypes`
//! indexed from 0.

use crate::events::{MetaValue, Metric, Notification, Value as DsValue};
use piccolo::table::RawTable;
use piccolo::{Context, Table, Value};

pub(super) fn metric_table<'gc>(
    ctx: Context<'gc>,
    m: &Metric,
) -> Result<Table<'gc>, piccolo::Error<'gc>> {
    let t = sized_table(ctx, 0, 10);
    t.set(ctx, "host", text(ctx, &m.host))?;
    t.set(ctx, "plugin", text(ctx, &m.plugin))?;
    t.set(ctx, "plugin_instance", text(ctx, &m.plugin_instance))?;
    t.set(ctx, "type", text(ctx, &m.type_))?;
    t.set(ctx, "type_instance", text(ctx, &m.type_instance))?;
    t.set(ctx, "time", m.time)?;
    t.set(ctx, "interval", m.interval)?;
    let n = m.values.len();
    let values = sized_table(ctx, n, 0);
    for (i, v) in m.values.iter().enumerate() {
        let v: Value = match *v {
            DsValue::Gauge(g) => Value::Number(g),
            DsValue::Derive(d) => Value::Integer(d),
            // Lua integers are signed 64-bit: counters above 2^63 wrap, as
            // they did in collectd's lua plugin.
            DsValue::Counter(c) | DsValue::Absolute(c) => Value::Integer(c as i64),
        };
        values.set(ctx, i as i64 + 1, v)?;
    }
    t.set(ctx, "values", values)?;
    // Indexed from 0: index 0 lives in the hash part, the rest in the array.
    let dsnames = sized_table(ctx, n.saturating_sub(1), 1);
    let dstypes = sized_table(ctx, n.saturating_sub(1), 1);
    for (i, (name, ty)) in m.dsnames.iter().zip(&m.dstypes).enumerate() {
        dsnames.set(ctx, i as i64, text(ctx, name))?;
        dstypes.set(ctx, i as i64, ty.as_str())?;
    }
    t.set(ctx, "dsnames", dsnames)?;
    t.set(ctx, "dstypes", dstypes)?;
    Ok(t)
}

pub(super) fn notification_table<'gc>(
    ctx: Context<'gc>,
    n: &Notification,
) -> Result<Table<'gc>, piccolo::Error<'gc>> {
    let t = sized_table(ctx, 0, 9);
    t.set(ctx, "severity", n.severity as i64)?;
    t.set(ctx, "time", n.time)?;
    t.set(ctx, "message", text(ctx, &n.message))?;
    t.set(ctx, "host", text(ctx, &n.host))?;
    t.set(ctx, "plugin", text(ctx, &n.plugin))?;
    t.set(ctx, "plugin_instance", text(ctx, &n.plugin_instance))?;
    t.set(ctx, "type", text(ctx, &n.type_))?;
    t.set(ctx, "type_instance", text(ctx, &n.type_instance))?;
    if !n.meta.is_empty() {
        let meta = Table::new(&ctx);
        for (key, value) in &n.meta {
            let v: Value = match value {
                MetaValue::String(s) => Value::String(ctx.intern(s.as_bytes())),
                MetaValue::Signed(i) => Value::Integer(*i),
                MetaValue::Unsigned(u) => Value::Integer(*u as i64),
                MetaValue::Double(d) => Value::Number(*d),
                MetaValue::Boolean(b) => Value::Boolean(*b),
            };
            meta.set(ctx, text(ctx, key), v)?;
        }
        t.set(ctx, "meta", meta)?;
    }
    Ok(t)
}

/// A table with room for its fields, so filling it never rehashes (table
/// building is a good part of a handler call's cost).
fn sized_table<'gc>(ctx: Context<'gc>, array: usize, map: usize) -> Table<'gc> {
    let mut raw = RawTable::new(&ctx);
    raw.reserve_array(array);
    raw.reserve_map(map);
    Table::from_parts(&ctx, raw, None)
}

/// A Lua string for borrowed text (piccolo takes only `'static` `&str`s as
/// values directly).
fn text<'gc>(ctx: Context<'gc>, s: &str) -> Value<'gc> {
    Value::String(ctx.intern(s.as_bytes()))
}
