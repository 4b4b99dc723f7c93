//! The `os` table rules get: clocks only (`time`, `date`, `clock`,
//! `difftime`), never programs, files or the environment. `os.date` and
//! `os.time(t)` with Lua 5.4's conversions (C locale), local time or UTC
//! (`!`), and the `*t` table form.

use super::args::{error, expected};
use chrono::{DateTime, Datelike, Local, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// The conversions Lua 5.4 accepts (C99 strftime, without locale variants).
const VALID: &[u8] = b"aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%";

/// Formats `when` (seconds since the epoch) like `os.date(format, when)`.
pub fn format_date(format: &str, when: i64) -> Result<DateOrTable, String> {
    let (utc, format) = match format.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let time: DateTime<Utc> = DateTime::from_timestamp(when, 0).ok_or("time out of range")?;
    let fields = if utc {
        Fields::of(&time)
    } else {
        Fields::of(&time.with_timezone(&Local))
    };
    if format.starts_with("*t") {
        return Ok(DateOrTable::Table(fields));
    }
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match bytes.get(i + 1) {
                Some(c) if VALID.contains(c) => i += 2,
                _ => {
                    let spec =
                        String::from_utf8_lossy(&bytes[i..(i + 2).min(bytes.len())]).into_owned();
                    return Err(format!(
                        "bad argument #1 to 'os.date' (invalid conversion specifier '{spec}')"
                    ));
                }
            }
        } else {
            i += 1;
        }
    }
    let text = if utc {
        time.format(format).to_string()
    } else {
        time.with_timezone(&Local).format(format).to_string()
    };
    Ok(DateOrTable::Text(text))
}

/// What `os.date` returns.
pub enum DateOrTable {
    Text(String),
    Table(Fields),
}

/// The `*t` table.
pub struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    wday: i64,
    yday: i64,
}

impl Fields {
    fn of<T: Datelike + Timelike>(t: &T) -> Fields {
        Fields {
            year: t.year() as i64,
            month: t.month() as i64,
            day: t.day() as i64,
            hour: t.hour() as i64,
            min: t.minute() as i64,
            sec: t.second() as i64,
            wday: t.weekday().number_from_sunday() as i64,
            yday: t.ordinal() as i64,
        }
    }
}

/// `os.time(t)`: local time fields (normalised like mktime: `day = 32`
/// rolls over) to seconds since the epoch.
fn time_of<'gc>(ctx: Context<'gc>, t: Table<'gc>) -> Result<i64, Error<'gc>> {
    let field = |name: &'static str, default: Option<i64>| -> Result<i64, Error<'gc>> {
        match t.get(ctx, name) {
            Value::Integer(i) => Ok(i),
            Value::Number(x) if x.fract() == 0.0 => Ok(x as i64),
            Value::Nil => {
                default.ok_or_else(|| error(ctx, format!("field '{name}' missing in date table")))
            }
            _ => Err(error(ctx, format!("field '{name}' is not an integer"))),
        }
    };
    let (year, month, day) = (
        field("year", None)?,
        field("month", None)?,
        field("day", None)?,
    );
    let (hour, min, sec) = (
        field("hour", Some(12))?,
        field("min", Some(0))?,
        field("sec", Some(0))?,
    );
    // Normalise months, then add the rest as a duration, as mktime does.
    let months = year * 12 + (month - 1);
    let base = NaiveDate::from_ymd_opt(
        (months.div_euclid(12)) as i32,
        (months.rem_euclid(12) + 1) as u32,
        1,
    )
    .ok_or_else(|| error(ctx, "time result cannot be represented".into()))?
    .and_hms_opt(0, 0, 0)
    .ok_or_else(|| error(ctx, "time result cannot be represented".into()))?;
    let naive = base
        + chrono::Duration::days(day - 1)
        + chrono::Duration::hours(hour)
        + chrono::Duration::minutes(min)
        + chrono::Duration::seconds(sec);
    match Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.timestamp()),
        LocalResult::None => Err(error(ctx, "time result cannot be represented".into())),
    }
}

fn now() -> i64 {
    Utc::now().timestamp()
}

pub(super) fn install<'gc>(ctx: Context<'gc>, os: Table<'gc>) -> Result<(), Error<'gc>> {
    os.set(
        ctx,
        "date",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let format = match stack.get(0) {
                Value::Nil => "%c".to_string(),
                Value::String(s) => s.to_str_lossy().into_owned(),
                other => {
                    return Err(expected(ctx, 1, "os.date", "string", Some(other)));
                }
            };
            let when = match stack.get(1) {
                Value::Nil => now(),
                Value::Integer(i) => i,
                Value::Number(x) => x as i64,
                other => {
                    return Err(expected(ctx, 2, "os.date", "number", Some(other)));
                }
            };
            match format_date(&format, when).map_err(|e| error(ctx, e))? {
                DateOrTable::Text(t) => stack.replace(ctx, Value::String(ctx.intern(t.as_bytes()))),
                DateOrTable::Table(f) => {
                    let t = Table::new(&ctx);
                    for (k, v) in [
                        ("year", f.year),
                        ("month", f.month),
                        ("day", f.day),
                        ("hour", f.hour),
                        ("min", f.min),
                        ("sec", f.sec),
                        ("wday", f.wday),
                        ("yday", f.yday),
                    ] {
                        t.set(ctx, k, v)?;
                    }
                    t.set(ctx, "isdst", false)?;
                    stack.replace(ctx, t);
                }
            }
            Ok(CallbackReturn::Return)
        }),
    )?;
    os.set(
        ctx,
        "time",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let t = match stack.get(0) {
                Value::Nil => now(),
                Value::Table(t) => time_of(ctx, t)?,
                other => {
                    return Err(expected(ctx, 1, "os.time", "table", Some(other)));
                }
            };
            stack.replace(ctx, t);
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(())
}
/// `os.time`, `os.date`, `os.clock` and `os.difftime` only: rules may read
/// clocks, never run programs, touch files or read the environment.
pub(super) fn table<'gc>(ctx: Context<'gc>) -> Result<Table<'gc>, Error<'gc>> {
    let os = Table::new(&ctx);
    os.set(
        ctx,
        "clock",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            thread_local! {
                static START: std::time::Instant = std::time::Instant::now();
            }
            let secs = START.with(|s| s.elapsed().as_secs_f64());
            stack.replace(ctx, secs);
            Ok(CallbackReturn::Return)
        }),
    )?;
    os.set(
        ctx,
        "difftime",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let number = |v: Value| match v {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => 0.0,
            };
            let diff = number(stack.get(0)) - number(stack.get(1));
            stack.replace(ctx, diff);
            Ok(CallbackReturn::Return)
        }),
    )?;
    install(ctx, os)?;
    Ok(os)
}
