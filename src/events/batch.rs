//! The batch encoding of events: the body of the frames the engine sends
//! to every rule worker. Compact and binary, written straight from
//! collectd's callback without an owned copy, and read back one event at a
//! time into a reused [`Event`].

use super::Event;
use super::{MetaValue, Metric, Missing, Notification, Severity, Value};

/// Bytes at the start of a batch frame before its first event: length
/// prefix, sequence number, event count (filled in by [`seal_batch`]).
pub const BATCH_HEADER: usize = 16;

/// An empty batch frame, ready for `push_*` calls.
pub fn new_batch(capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity.max(BATCH_HEADER));
    buf.resize(BATCH_HEADER, 0);
    buf
}

/// Fills in the header of a frame built with [`new_batch`]: afterwards it
/// is a whole frame, written to a worker with a single call.
pub fn seal_batch(frame: &mut [u8], seq: u64, count: u32) {
    let len = (frame.len() - 4) as u32;
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[4..12].copy_from_slice(&seq.to_le_bytes());
    frame[12..16].copy_from_slice(&count.to_le_bytes());
}

/// Appends one owned event.
pub fn push_event(buf: &mut Vec<u8>, event: &Event) {
    match event {
        Event::Metric(m) => {
            let ids = [
                &m.host,
                &m.plugin,
                &m.plugin_instance,
                &m.type_,
                &m.type_instance,
            ];
            let names = m
                .dsnames
                .iter()
                .map(String::as_str)
                .chain(std::iter::repeat(""));
            put_metric(
                buf,
                ids,
                m.time,
                m.interval,
                m.values.iter().copied().zip(names),
            );
        }
        Event::Notification(n) => push_notification(buf, n),
        Event::Missing(m) => {
            let s = &m.series;
            put_missing(
                buf,
                [
                    &s.host,
                    &s.plugin,
                    &s.plugin_instance,
                    &s.type_,
                    &s.type_instance,
                ],
                s.time,
                s.interval,
                m.silent_for,
            );
        }
    }
}

/// The one encoding of a silent series (kind 3): its identity, encoded as
/// a value list's (so its routing key is the series'), the time of its
/// last value, its interval, and how long it has been silent.
pub fn put_missing<S: AsRef<str>>(
    buf: &mut Vec<u8>,
    ids: [S; 5],
    time: f64,
    interval: f64,
    silent_for: f64,
) {
    buf.push(3);
    for s in &ids {
        put_str(buf, s.as_ref());
    }
    put_f64(buf, time);
    put_f64(buf, interval);
    put_f64(buf, silent_for);
}

/// The one encoding of a metric, whichever side it comes from (an owned
/// [`Metric`], or collectd's value list borrowed in its write callback):
/// kind byte, identity, times, then the values with their data source
/// names (the count is patched in afterwards, so `values` is walked once).
pub fn put_metric<S: AsRef<str>, N: AsRef<str>>(
    buf: &mut Vec<u8>,
    ids: [S; 5],
    time: f64,
    interval: f64,
    values: impl Iterator<Item = (Value, N)>,
) {
    buf.push(1);
    for s in &ids {
        put_str(buf, s.as_ref());
    }
    put_f64(buf, time);
    put_f64(buf, interval);
    let count_at = buf.len();
    put_u32(buf, 0);
    let mut n = 0u32;
    for (value, name) in values {
        put_value(buf, value, name.as_ref());
        n += 1;
    }
    buf[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Appends one notification.
pub fn push_notification(buf: &mut Vec<u8>, n: &Notification) {
    buf.push(2);
    buf.push(n.severity as u8);
    put_f64(buf, n.time);
    for s in [
        &n.message,
        &n.host,
        &n.plugin,
        &n.plugin_instance,
        &n.type_,
        &n.type_instance,
    ] {
        put_str(buf, s);
    }
    put_u32(buf, n.meta.len() as u32);
    for (key, value) in &n.meta {
        put_str(buf, key);
        match value {
            MetaValue::String(s) => {
                buf.push(0);
                put_str(buf, s);
            }
            MetaValue::Signed(x) => {
                buf.push(1);
                buf.extend_from_slice(&x.to_le_bytes());
            }
            MetaValue::Unsigned(x) => {
                buf.push(2);
                buf.extend_from_slice(&x.to_le_bytes());
            }
            MetaValue::Double(x) => {
                buf.push(3);
                put_f64(buf, *x);
            }
            MetaValue::Boolean(b) => {
                buf.push(4);
                buf.push(u8::from(*b));
            }
        }
    }
}

fn put_value(buf: &mut Vec<u8>, value: Value, name: &str) {
    let (tag, bits) = match value {
        Value::Gauge(x) => (0u8, x.to_bits()),
        Value::Derive(x) => (1, x as u64),
        Value::Counter(x) => (2, x),
        Value::Absolute(x) => (3, x),
    };
    buf.push(tag);
    buf.extend_from_slice(&bits.to_le_bytes());
    put_str(buf, name);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len() as u32);
    buf.extend_from_slice(s.as_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Builds whole batches of owned events (tests, benchmarks, tools).
pub struct BatchEncoder {
    buf: Vec<u8>,
    seq: u64,
    count: u32,
}

impl BatchEncoder {
    /// Starts batch number `seq`.
    pub fn new(seq: u64) -> BatchEncoder {
        BatchEncoder {
            buf: new_batch(4096),
            seq,
            count: 0,
        }
    }

    /// Appends one event.
    pub fn push(&mut self, event: &Event) {
        self.count += 1;
        push_event(&mut self.buf, event);
    }

    /// Events pushed so far.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's frame: length prefix, then the payload
    /// [`decode_batch`] reads.
    pub fn finish(mut self) -> Vec<u8> {
        seal_batch(&mut self.buf, self.seq, self.count);
        self.buf
    }
}

/// Reads a batch back from a frame's payload: `(seq, events)`.
pub fn decode_batch(bytes: &[u8]) -> Result<(u64, Vec<Event>), String> {
    let mut reader = BatchReader::new(bytes)?;
    let mut events = Vec::with_capacity(reader.count().min(65_536) as usize);
    let mut slot = Event::Metric(Metric::default());
    while reader.next_into(&mut slot)? {
        events.push(slot.clone());
    }
    Ok((reader.seq, events))
}

/// Where one event of a batch lies, and its identity, read without
/// building the event: what routing an event to the rule files that may
/// act on it needs.
#[derive(Debug, PartialEq)]
pub struct Span<'a> {
    /// The event's bytes in the payload.
    pub bytes: std::ops::Range<usize>,
    /// `[host, plugin, plugin_instance, type, type_instance]`.
    pub identity: [&'a str; 5],
    /// The identity's encoded bytes (a key for per-series verdicts).
    pub key: &'a [u8],
    /// A notification's severity; `None` for a value list.
    pub severity: Option<i64>,
    /// A silent series (collectd's missing callback), not a value list.
    pub missing: bool,
}

/// The events of a batch payload (a frame without its length prefix) as
/// spans, in order; an error for a damaged batch.
pub fn scan(payload: &[u8]) -> Result<Vec<Span<'_>>, String> {
    let mut r = Reader {
        bytes: payload,
        at: 0,
    };
    r.u64()?;
    let count = r.u32()?;
    let mut spans = Vec::with_capacity(count.min(65_536) as usize);
    for _ in 0..count {
        let start = r.at;
        let kind = r.u8()?;
        let (key_start, severity) = match kind {
            1 | 3 => (r.at, None),
            2 => {
                let severity = i64::from(r.u8()?);
                r.f64()?;
                let len = r.u32()? as usize; // the message
                r.take(len)?;
                (r.at, Some(severity))
            }
            kind => return Err(format!("unknown event kind {kind}")),
        };
        let mut identity = [""; 5];
        for field in &mut identity {
            let len = r.u32()? as usize;
            *field = std::str::from_utf8(r.take(len)?).unwrap_or("");
        }
        let key = &payload[key_start..r.at];
        if kind == 3 {
            r.take(24)?;
        } else if severity.is_none() {
            r.f64()?;
            r.f64()?;
            for _ in 0..r.u32()? {
                r.take(9)?;
                let len = r.u32()? as usize;
                r.take(len)?;
            }
        } else {
            for _ in 0..r.u32()? {
                let len = r.u32()? as usize;
                r.take(len)?;
                match r.u8()? {
                    0 => {
                        let len = r.u32()? as usize;
                        r.take(len)?;
                    }
                    1..=3 => {
                        r.take(8)?;
                    }
                    4 => {
                        r.take(1)?;
                    }
                    tag => return Err(format!("unknown meta type {tag}")),
                }
            }
        }
        spans.push(Span {
            bytes: start..r.at,
            identity,
            key,
            severity,
            missing: kind == 3,
        });
    }
    if r.at != payload.len() {
        return Err(format!(
            "{} bytes after the last event",
            payload.len() - r.at
        ));
    }
    Ok(spans)
}

/// Reads a batch one event at a time into a reused [`Event`], so that a
/// worker allocates nothing per value list once its strings have grown to
/// size.
pub struct BatchReader<'a> {
    reader: Reader<'a>,
    remaining: u32,
    pub seq: u64,
}

impl<'a> BatchReader<'a> {
    /// Starts reading a frame's payload.
    pub fn new(payload: &'a [u8]) -> Result<BatchReader<'a>, String> {
        let mut reader = Reader {
            bytes: payload,
            at: 0,
        };
        let seq = reader.u64()?;
        let remaining = reader.u32()?;
        Ok(BatchReader {
            reader,
            remaining,
            seq,
        })
    }

    /// Events in the batch.
    pub fn count(&self) -> u32 {
        self.remaining
    }

    /// Reads the next event into `slot`; false after the last one.
    pub fn next_into(&mut self, slot: &mut Event) -> Result<bool, String> {
        if self.remaining == 0 {
            let r = &self.reader;
            return if r.at == r.bytes.len() {
                Ok(false)
            } else {
                Err(format!(
                    "{} bytes after the last event",
                    r.bytes.len() - r.at
                ))
            };
        }
        self.remaining -= 1;
        let r = &mut self.reader;
        if r.bytes.get(r.at) == Some(&1)
            && let Event::Metric(m) = slot
        {
            r.at += 1;
            return r.metric_into(m).map(|()| true);
        }
        *slot = r.event()?;
        Ok(true)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("batch cut short at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    fn f64(&mut self) -> Result<f64, String> {
        self.u64().map(f64::from_bits)
    }

    fn str(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn str_into(&mut self, out: &mut String) -> Result<(), String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        out.clear();
        out.push_str(&String::from_utf8_lossy(bytes));
        Ok(())
    }

    /// A metric's fields (after its kind byte) into an existing metric.
    fn metric_into(&mut self, m: &mut Metric) -> Result<(), String> {
        for field in [
            &mut m.host,
            &mut m.plugin,
            &mut m.plugin_instance,
            &mut m.type_,
            &mut m.type_instance,
        ] {
            self.str_into(field)?;
        }
        m.time = self.f64()?;
        m.interval = self.f64()?;
        let n = self.u32()? as usize;
        if n > self.bytes.len() {
            return Err(format!("{n} values announced"));
        }
        m.values.clear();
        m.dstypes.clear();
        m.dsnames.resize_with(n, String::new);
        for i in 0..n {
            let tag = self.u8()?;
            let bits = self.u64()?;
            let value = match tag {
                0 => Value::Gauge(f64::from_bits(bits)),
                1 => Value::Derive(bits as i64),
                2 => Value::Counter(bits),
                3 => Value::Absolute(bits),
                t => return Err(format!("unknown value type {t}")),
            };
            m.values.push(value);
            m.dstypes.push(value.ds_type());
            self.str_into(&mut m.dsnames[i])?;
        }
        Ok(())
    }

    fn event(&mut self) -> Result<Event, String> {
        match self.u8()? {
            1 => {
                let mut m = Metric::default();
                self.metric_into(&mut m)?;
                Ok(Event::Metric(m))
            }
            3 => {
                let (host, plugin, plugin_instance, type_, type_instance) = (
                    self.str()?,
                    self.str()?,
                    self.str()?,
                    self.str()?,
                    self.str()?,
                );
                let (time, interval, silent_for) = (self.f64()?, self.f64()?, self.f64()?);
                Ok(Event::Missing(Missing {
                    series: Metric {
                        host,
                        plugin,
                        plugin_instance,
                        type_,
                        type_instance,
                        time,
                        interval,
                        ..Metric::default()
                    },
                    silent_for,
                }))
            }
            2 => {
                let severity = Severity::try_from(i32::from(self.u8()?))?;
                let time = self.f64()?;
                let (message, host, plugin, plugin_instance, type_, type_instance) = (
                    self.str()?,
                    self.str()?,
                    self.str()?,
                    self.str()?,
                    self.str()?,
                    self.str()?,
                );
                let n = self.u32()? as usize;
                let mut meta = Vec::with_capacity(n.min(256));
                for _ in 0..n {
                    let key = self.str()?;
                    let value = match self.u8()? {
                        0 => MetaValue::String(self.str()?),
                        1 => MetaValue::Signed(self.u64()? as i64),
                        2 => MetaValue::Unsigned(self.u64()?),
                        3 => MetaValue::Double(self.f64()?),
                        4 => MetaValue::Boolean(self.u8()? != 0),
                        t => return Err(format!("unknown meta type {t}")),
                    };
                    meta.push((key, value));
                }
                Ok(Event::Notification(Notification {
                    severity,
                    time,
                    message,
                    host,
                    plugin,
                    plugin_instance,
                    type_,
                    type_instance,
                    meta,
                }))
            }
            t => Err(format!("unknown event kind {t}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::DsType;

    /// `metric()`'s series gone silent for `seconds`.
    fn silent(seconds: f64) -> Event {
        Event::Missing(Missing {
            series: Metric {
                values: Vec::new(),
                dsnames: Vec::new(),
                dstypes: Vec::new(),
                ..metric()
            },
            silent_for: seconds,
        })
    }

    fn metric() -> Metric {
        Metric {
            host: "h".into(),
            plugin: "memory".into(),
            plugin_instance: String::new(),
            type_: "memory".into(),
            type_instance: "free".into(),
            time: 1.5,
            interval: 10.0,
            values: vec![
                Value::Gauge(2.5),
                Value::Derive(-3),
                Value::Counter(u64::MAX),
                Value::Absolute(7),
            ],
            dsnames: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            dstypes: vec![
                DsType::Gauge,
                DsType::Derive,
                DsType::Counter,
                DsType::Absolute,
            ],
        }
    }

    #[test]
    fn batches_round_trip_every_field() {
        let note = Notification {
            severity: Severity::Warning,
            time: 3.0,
            message: "m\u{e9}".into(),
            host: "h".into(),
            plugin: "p".into(),
            plugin_instance: "pi".into(),
            type_: "t".into(),
            type_instance: "ti".into(),
            meta: vec![
                ("s".into(), MetaValue::String("v".into())),
                ("i".into(), MetaValue::Signed(-1)),
                ("u".into(), MetaValue::Unsigned(2)),
                ("d".into(), MetaValue::Double(0.5)),
                ("b".into(), MetaValue::Boolean(true)),
            ],
        };
        let silent = silent(21.5);
        let events = vec![Event::Metric(metric()), Event::Notification(note), silent];
        let mut enc = BatchEncoder::new(42);
        for e in &events {
            enc.push(e);
        }
        assert_eq!(enc.len(), 3);
        let frame = enc.finish();
        // A frame: the payload's length, then the payload.
        let (len, payload) = frame.split_at(4);
        assert_eq!(
            u32::from_le_bytes(len.try_into().unwrap()) as usize,
            payload.len()
        );
        assert_eq!(decode_batch(payload).unwrap(), (42, events));
    }

    #[test]
    fn scanning_finds_each_event_and_its_identity() {
        let note = Notification {
            severity: Severity::Warning,
            time: 1.0,
            message: "m".into(),
            host: "h".into(),
            plugin: "p".into(),
            plugin_instance: "pi".into(),
            type_: "t".into(),
            type_instance: "ti".into(),
            meta: vec![
                ("s".into(), MetaValue::String("x".into())),
                ("b".into(), MetaValue::Boolean(true)),
                ("d".into(), MetaValue::Double(1.5)),
            ],
        };
        let silent = silent(20.0);
        let events = vec![
            Event::Metric(metric()),
            Event::Notification(note),
            Event::Metric(metric()),
            silent,
        ];
        let mut enc = BatchEncoder::new(3);
        for e in &events {
            enc.push(e);
        }
        let frame = enc.finish();
        let payload = &frame[4..];
        let spans = scan(payload).unwrap();
        assert_eq!(spans.len(), 4);
        // A silent series is keyed as its value lists are.
        assert!(spans[3].missing && !spans[0].missing);
        assert_eq!(spans[3].key, spans[0].key);
        let m = metric();
        assert_eq!(
            spans[0].identity,
            [
                m.host.as_str(),
                &m.plugin,
                &m.plugin_instance,
                &m.type_,
                &m.type_instance
            ]
        );
        assert_eq!(spans[1].identity, ["h", "p", "pi", "t", "ti"]);
        assert_eq!(spans[1].severity, Some(2));
        assert_eq!(spans[0].key, spans[2].key);
        // Each span is exactly one event: re-encoding a span alone reads
        // back as that event.
        for (span, event) in spans.iter().zip(&events) {
            let mut one = new_batch(64);
            one.extend_from_slice(&payload[span.bytes.clone()]);
            seal_batch(&mut one, 9, 1);
            assert_eq!(decode_batch(&one[4..]).unwrap(), (9, vec![event.clone()]));
        }
        for cut in 0..payload.len() {
            assert!(scan(&payload[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn damaged_batches_are_errors_not_panics() {
        let mut enc = BatchEncoder::new(1);
        enc.push(&Event::Metric(metric()));
        let bytes = enc.finish()[4..].to_vec();
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_batch(&extra).is_err());
    }
}
