//! The `utf8` table: `char`, `charpattern`, `codepoint`, `len`
//! (`offset` and `codes` are in the prelude).

use super::args::{bad_argument, error, int, to_bytes as bytes};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// Lua's relative string positions: negative counts from the end.
fn position(i: i64, len: usize) -> i64 {
    if i >= 0 {
        i
    } else if i.unsigned_abs() > len as u64 {
        0
    } else {
        len as i64 + i + 1
    }
}

/// Installs the `utf8` table.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), Error<'gc>> {
    ctx.set_global("utf8", utf8_table(ctx)?)?;
    Ok(())
}

fn utf8_table<'gc>(ctx: Context<'gc>) -> Result<Table<'gc>, Error<'gc>> {
    let utf8 = Table::new(&ctx);
    utf8.set(
        ctx,
        "charpattern",
        Value::String(piccolo::String::from_slice(
            &ctx,
            b"[\x00-\x7F\xC2-\xFD][\x80-\xBF]*",
        )),
    )?;
    utf8.set(
        ctx,
        "char",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let mut out = String::new();
            for k in 0..stack.len() {
                let c = int(stack.get(k))
                    .and_then(|c| u32::try_from(c).ok())
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad_argument(ctx, k + 1, "utf8.char", "value out of range"))?;
                out.push(c);
            }
            stack.replace(ctx, Value::String(ctx.intern(out.as_bytes())));
            Ok(CallbackReturn::Return)
        }),
    )?;
    utf8.set(
        ctx,
        "codepoint",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let s = bytes(stack.get(0))
                .ok_or_else(|| bad_argument(ctx, 1, "utf8.codepoint", "string expected"))?;
            let i = position(int(stack.get(1)).unwrap_or(1), s.len());
            let j = position(int(stack.get(2)).unwrap_or(i), s.len());
            if i < 1 || j > s.len() as i64 {
                return Err(bad_argument(ctx, 2, "utf8.codepoint", "out of bounds"));
            }
            let mut codes = Vec::new();
            let mut k = (i - 1) as usize;
            while (k as i64) < j {
                let rest = &s[k..];
                let len = utf8_len(rest[0]);
                let c = std::str::from_utf8(&rest[..len.min(rest.len())])
                    .ok()
                    .and_then(|t| t.chars().next())
                    .ok_or_else(|| error(ctx, "invalid UTF-8 code".into()))?;
                codes.push(Value::Integer(c as i64));
                k += len;
            }
            stack.replace(ctx, piccolo::Variadic(codes));
            Ok(CallbackReturn::Return)
        }),
    )?;
    utf8.set(
        ctx,
        "len",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let s = bytes(stack.get(0))
                .ok_or_else(|| bad_argument(ctx, 1, "utf8.len", "string expected"))?;
            let len = s.len() as i64;
            let i = position(int(stack.get(1)).unwrap_or(1), s.len());
            if !(1 <= i && i - 1 <= len) {
                return Err(bad_argument(
                    ctx,
                    2,
                    "utf8.len",
                    "initial position out of bounds",
                ));
            }
            let j = position(int(stack.get(2)).unwrap_or(-1), s.len());
            if j > len {
                return Err(bad_argument(
                    ctx,
                    3,
                    "utf8.len",
                    "final position out of bounds",
                ));
            }
            let (i, j) = (i as usize, j.max(0) as usize);
            let mut count = 0;
            let mut k = i - 1;
            while k < j {
                let len = utf8_len(s[k]);
                if k + len > s.len() || std::str::from_utf8(&s[k..k + len]).is_err() {
                    stack.replace(ctx, (Value::Nil, Value::Integer(k as i64 + 1)));
                    return Ok(CallbackReturn::Return);
                }
                count += 1;
                k += len;
            }
            stack.replace(ctx, count);
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(utf8)
}

/// Bytes in the UTF-8 sequence a lead byte starts (1 for invalid bytes, so
/// validation then fails on them).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}
