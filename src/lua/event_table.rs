//! The tables rule handlers receive, built straight from an event in the
//! VM (so the rule engine never handles the VM's types), field for field
//! as collectd's lua plugin built them (docs/COMPATIBILITY.md §1), including its quirk of `dsnames`/`dstypes`
//! indexed from 0.
//!
//! Building a value list's table is most of what a handler call costs
//! (four tables, a dozen strings), so two things are done once: the field
//! names are interned once per VM ([`Keys`]), and for a file whose
//! handlers provably neither keep nor change their table, one table per
//! series is kept and refilled with each value list's time and values
//! ([`SeriesTables`]).

use crate::events::{DsType, MetaValue, Metric, Missing, Notification, Value as DsValue};
use gc_arena::{Collect, Rootable};
use piccolo::table::RawTable;
use piccolo::{Context, Singleton, StashedTable, String as LuaString, Table, Value};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The field names of the event tables, interned once per VM (a `"host"`
/// written as text would be looked up in the string set on every event).
#[derive(Clone, Copy, Collect)]
#[collect(no_drop)]
struct Keys<'gc> {
    host: LuaString<'gc>,
    plugin: LuaString<'gc>,
    plugin_instance: LuaString<'gc>,
    type_: LuaString<'gc>,
    type_instance: LuaString<'gc>,
    time: LuaString<'gc>,
    interval: LuaString<'gc>,
    values: LuaString<'gc>,
    dsnames: LuaString<'gc>,
    dstypes: LuaString<'gc>,
    severity: LuaString<'gc>,
    message: LuaString<'gc>,
    meta: LuaString<'gc>,
    silent_for: LuaString<'gc>,
    /// `dstypes` entries, in [`DsType`]'s order.
    ds_types: [LuaString<'gc>; 4],
}

impl<'gc> Singleton<'gc> for Keys<'gc> {
    fn create(ctx: Context<'gc>) -> Self {
        let s = |text: &'static str| ctx.intern_static(text.as_bytes());
        Keys {
            host: s("host"),
            plugin: s("plugin"),
            plugin_instance: s("plugin_instance"),
            type_: s("type"),
            type_instance: s("type_instance"),
            time: s("time"),
            interval: s("interval"),
            values: s("values"),
            dsnames: s("dsnames"),
            dstypes: s("dstypes"),
            severity: s("severity"),
            message: s("message"),
            meta: s("meta"),
            silent_for: s("silent_for"),
            ds_types: [
                DsType::Counter,
                DsType::Gauge,
                DsType::Derive,
                DsType::Absolute,
            ]
            .map(|t| s(t.as_str())),
        }
    }
}

impl<'gc> Keys<'gc> {
    fn of(ctx: Context<'gc>) -> Keys<'gc> {
        *ctx.singleton::<Rootable![Keys<'_>]>()
    }

    fn ds_type(&self, t: DsType) -> LuaString<'gc> {
        self.ds_types[t as usize]
    }
}

pub(super) fn metric_table<'gc>(
    ctx: Context<'gc>,
    m: &Metric,
) -> Result<Table<'gc>, piccolo::Error<'gc>> {
    Ok(metric_tables(ctx, m)?.0)
}

/// A silent series' table: a value list's fields with no values (`time`
/// is its last value's), and `silent_for`, the seconds since then.
pub(super) fn missing_table<'gc>(
    ctx: Context<'gc>,
    m: &Missing,
) -> Result<Table<'gc>, piccolo::Error<'gc>> {
    let (t, _) = metric_tables(ctx, &m.series)?;
    set(
        ctx,
        t,
        Keys::of(ctx).silent_for,
        Value::Number(m.silent_for),
    )?;
    Ok(t)
}

/// A value list's table and its `values` table.
fn metric_tables<'gc>(
    ctx: Context<'gc>,
    m: &Metric,
) -> Result<(Table<'gc>, Table<'gc>), piccolo::Error<'gc>> {
    let k = Keys::of(ctx);
    let t = sized_table(ctx, 0, 10);
    set(ctx, t, k.host, text(ctx, &m.host))?;
    set(ctx, t, k.plugin, text(ctx, &m.plugin))?;
    set(ctx, t, k.plugin_instance, text(ctx, &m.plugin_instance))?;
    set(ctx, t, k.type_, text(ctx, &m.type_))?;
    set(ctx, t, k.type_instance, text(ctx, &m.type_instance))?;
    set(ctx, t, k.time, Value::Number(m.time))?;
    set(ctx, t, k.interval, Value::Number(m.interval))?;
    let n = m.values.len();
    let values = sized_table(ctx, n, 0);
    fill_values(ctx, values, m)?;
    set(ctx, t, k.values, values.into())?;
    // Indexed from 0: index 0 lives in the hash part, the rest in the array.
    let dsnames = sized_table(ctx, n.saturating_sub(1), 1);
    let dstypes = sized_table(ctx, n.saturating_sub(1), 1);
    for (i, (name, ty)) in m.dsnames.iter().zip(&m.dstypes).enumerate() {
        dsnames.set(ctx, i as i64, text(ctx, name))?;
        dstypes.set(ctx, i as i64, k.ds_type(*ty))?;
    }
    set(ctx, t, k.dsnames, dsnames.into())?;
    set(ctx, t, k.dstypes, dstypes.into())?;
    Ok((t, values))
}

/// `values[1..n]` of a value list's table.
fn fill_values<'gc>(
    ctx: Context<'gc>,
    values: Table<'gc>,
    m: &Metric,
) -> Result<(), piccolo::Error<'gc>> {
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
    Ok(())
}

pub(super) fn notification_table<'gc>(
    ctx: Context<'gc>,
    n: &Notification,
) -> Result<Table<'gc>, piccolo::Error<'gc>> {
    let k = Keys::of(ctx);
    let t = sized_table(ctx, 0, 9);
    set(ctx, t, k.severity, Value::Integer(n.severity as i64))?;
    set(ctx, t, k.time, Value::Number(n.time))?;
    set(ctx, t, k.message, text(ctx, &n.message))?;
    set(ctx, t, k.host, text(ctx, &n.host))?;
    set(ctx, t, k.plugin, text(ctx, &n.plugin))?;
    set(ctx, t, k.plugin_instance, text(ctx, &n.plugin_instance))?;
    set(ctx, t, k.type_, text(ctx, &n.type_))?;
    set(ctx, t, k.type_instance, text(ctx, &n.type_instance))?;
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
        set(ctx, t, k.meta, meta.into())?;
    }
    Ok(t)
}

/// Series whose tables a file keeps at most, whatever its memory limit. A
/// kept series holds about 2.7 KiB of the VM's memory: at most an eighth
/// of the memory limit goes to them (64 MiB: 2 730 series). Past that,
/// the tables of a new series are built for the call and not kept, so a
/// fleet with more series than fit keeps a fixed part of them warm
/// rather than clearing all and missing every one; a stream of ever new
/// series cannot grow a worker's memory.
const MAX_SERIES: usize = 65_536;
const SERIES_BYTES: usize = 3072;
/// A kept table unused this long gives its place to a new series when
/// all places are taken (collectd itself forgets a series after twice its
/// interval).
const IDLE_SECS: u32 = 600;
const CLOCK_EVERY: u32 = 64;

/// One table per series, for a file whose handlers only read their table
/// and keep nothing of it past the call (the rule index's analysis says
/// so): each value list of the series refills `time`, `interval` and
/// `values[i]` of the same table. No handler can tell: none can hold the
/// table, or its `values`, from one call to the next, nor change them.
pub(super) struct SeriesTables {
    /// By a hash of the identity; the entry says which series it holds.
    entries: HashMap<u64, SeriesEntry>,
    max: usize,
    /// Times are seconds since this, in the entries.
    epoch: std::time::Instant,
    /// When the entries were last looked through for idle ones.
    swept: u32,
    /// The clock as last read, and lookups since: it is read once every
    /// [`CLOCK_EVERY`] lookups, not on each (a table's age only matters in
    /// minutes).
    clock: (u32, u32),
    /// The tables a series without a place of its own is refilled into,
    /// whole (identity, data sources and all): no table is built for it.
    spare: Option<Spare>,
}

/// One value list's tables, refilled whole for each series that has no
/// kept tables.
struct Spare {
    table: StashedTable,
    values: StashedTable,
    dsnames_table: StashedTable,
    dstypes_table: StashedTable,
    /// What the tables hold now: the identity, how many values (the
    /// entries past a shorter series' are cleared), the data sources.
    identity: [String; 5],
    n: usize,
    dsnames: Vec<String>,
    dstypes: Vec<DsType>,
}

impl Spare {
    /// Refills the tables with `m`; the fields that are as the last
    /// series' (most of the identity and the data sources, in a file that
    /// acts on one kind of value list) are left as they are.
    fn refill<'gc>(
        &mut self,
        ctx: Context<'gc>,
        m: &Metric,
    ) -> Result<Table<'gc>, piccolo::Error<'gc>> {
        let k = Keys::of(ctx);
        let t = ctx.fetch(&self.table);
        let keys = [
            k.host,
            k.plugin,
            k.plugin_instance,
            k.type_,
            k.type_instance,
        ];
        for ((key, last), now) in keys.into_iter().zip(&mut self.identity).zip(m.identity()) {
            if last.as_str() != now {
                set(ctx, t, key, text(ctx, now))?;
                last.clear();
                last.push_str(now);
            }
        }
        set(ctx, t, k.time, Value::Number(m.time))?;
        set(ctx, t, k.interval, Value::Number(m.interval))?;
        let values = ctx.fetch(&self.values);
        fill_values(ctx, values, m)?;
        let n = m.values.len();
        for i in n..self.n {
            values.set(ctx, i as i64 + 1, Value::Nil)?;
        }
        self.n = n;
        if self.dsnames != m.dsnames || self.dstypes != m.dstypes {
            let (names, types) = (
                ctx.fetch(&self.dsnames_table),
                ctx.fetch(&self.dstypes_table),
            );
            for i in 0..self.dsnames.len().max(m.dsnames.len()) {
                let (name, ty) = match (m.dsnames.get(i), m.dstypes.get(i)) {
                    (Some(name), Some(ty)) => (text(ctx, name), Value::String(k.ds_type(*ty))),
                    _ => (Value::Nil, Value::Nil),
                };
                names.set(ctx, i as i64, name)?;
                types.set(ctx, i as i64, ty)?;
            }
            self.dsnames.clone_from(&m.dsnames);
            self.dstypes.clone_from(&m.dstypes);
        }
        Ok(t)
    }
}

struct SeriesEntry {
    /// `[host, plugin, plugin_instance, type, type_instance]`.
    identity: [Box<str>; 5],
    /// What `dsnames`/`dstypes` were built from: a value list of the series
    /// with other data sources gets a table of its own.
    dsnames: Vec<String>,
    dstypes: Vec<DsType>,
    table: StashedTable,
    values: StashedTable,
    /// When a value list of the series last came.
    used: u32,
}

impl SeriesEntry {
    fn holds(&self, m: &Metric) -> bool {
        self.identity
            .iter()
            .zip(m.identity())
            .all(|(a, b)| **a == *b)
            && self.dsnames == m.dsnames
            && self.dstypes == m.dstypes
    }
}

impl SeriesTables {
    /// Room for the series a VM of `memory` bytes may keep.
    pub(super) fn within(memory: usize) -> SeriesTables {
        SeriesTables {
            entries: HashMap::new(),
            max: (memory / 8 / SERIES_BYTES).clamp(16, MAX_SERIES),
            epoch: std::time::Instant::now(),
            swept: 0,
            clock: (0, 0),
            spare: None,
        }
    }

    fn now(&mut self) -> u32 {
        let (now, since) = &mut self.clock;
        *since += 1;
        if *since >= CLOCK_EVERY {
            *since = 0;
            *now = u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX);
        }
        *now
    }

    /// Whether a new series may be kept: there is room, or a kept one has
    /// been idle for [`IDLE_SECS`] (looked for at most once a second).
    fn room(&mut self, now: u32) -> bool {
        if self.entries.len() < self.max {
            return true;
        }
        if now > self.swept {
            self.swept = now;
            self.entries
                .retain(|_, e| now.saturating_sub(e.used) < IDLE_SECS);
        }
        self.entries.len() < self.max
    }

    /// The table of `m`'s series, refilled with `m`'s time and values, and
    /// its handle.
    pub(super) fn table<'gc>(
        &mut self,
        ctx: Context<'gc>,
        m: &Metric,
    ) -> Result<(Table<'gc>, StashedTable), piccolo::Error<'gc>> {
        // Not a keyed hash: a collision only costs the colliding series
        // their kept tables (an entry is checked before it is used).
        let mut hasher = rustc_hash::FxHasher::default();
        m.identity().hash(&mut hasher);
        let hash = hasher.finish();
        let now = self.now();
        if let Some(entry) = self.entries.get_mut(&hash).filter(|e| e.holds(m)) {
            entry.used = now;
            let k = Keys::of(ctx);
            let table = ctx.fetch(&entry.table);
            set(ctx, table, k.time, Value::Number(m.time))?;
            set(ctx, table, k.interval, Value::Number(m.interval))?;
            fill_values(ctx, ctx.fetch(&entry.values), m)?;
            return Ok((table, entry.table.clone()));
        }
        if !self.room(now) {
            if let Some(spare) = &mut self.spare {
                return Ok((spare.refill(ctx, m)?, spare.table.clone()));
            }
        }
        let (table, values) = metric_tables(ctx, m)?;
        let stashed = ctx.stash(table);
        if !self.room(now) {
            let k = Keys::of(ctx);
            let ds = |key| match table.get(ctx, key) {
                Value::Table(t) => ctx.stash(t),
                _ => ctx.stash(Table::new(&ctx)),
            };
            self.spare = Some(Spare {
                table: stashed.clone(),
                values: ctx.stash(values),
                dsnames_table: ds(k.dsnames),
                dstypes_table: ds(k.dstypes),
                identity: m.identity().map(String::from),
                n: m.values.len(),
                dsnames: m.dsnames.clone(),
                dstypes: m.dstypes.clone(),
            });
            return Ok((table, stashed));
        }
        self.entries.insert(
            hash,
            SeriesEntry {
                identity: m.identity().map(Box::from),
                dsnames: m.dsnames.clone(),
                dstypes: m.dstypes.clone(),
                table: stashed.clone(),
                values: ctx.stash(values),
                used: now,
            },
        );
        Ok((table, stashed))
    }

    /// How many series' tables may be kept.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.max
    }

    /// How many are kept.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.entries.len()
    }

    /// Whether `m`'s series has its tables kept.
    #[cfg(test)]
    pub(super) fn keeps(&self, m: &Metric) -> bool {
        self.entries.values().any(|e| e.holds(m))
    }

    /// Drops every kept table (the VM is short of memory).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.spare = None;
    }

    /// Moves the tables out, leaving none (while a call borrows the VM).
    pub(super) fn take(&mut self) -> SeriesTables {
        SeriesTables {
            entries: std::mem::take(&mut self.entries),
            max: self.max,
            epoch: self.epoch,
            swept: self.swept,
            clock: self.clock,
            spare: self.spare.take(),
        }
    }
}

fn set<'gc>(
    ctx: Context<'gc>,
    t: Table<'gc>,
    key: LuaString<'gc>,
    value: Value<'gc>,
) -> Result<(), piccolo::Error<'gc>> {
    t.set_value(&ctx, key.into(), value)?;
    Ok(())
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
