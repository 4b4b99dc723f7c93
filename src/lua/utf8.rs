//! The `utf8` table: `char`, `charpattern`, `codepoint`, `len`, `codes`
//! (`offset` is in the prelude), with Lua 5.4's own decoder: sequences of
//! up to six bytes for codes up to 2^31 - 1, overlong forms refused, and
//! code points beyond Unicode or surrogates taken only when lax.

use super::args::{bad_argument, error, int_arg, to_bytes as bytes};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// The largest Unicode code point, and the largest code Lua encodes.
const MAX_UNICODE: u32 = 0x10FFFF;
const MAX_UTF: u32 = 0x7FFF_FFFF;

/// Lua's message for a sequence it cannot decode.
const INVALID: &str = "invalid UTF-8 code";

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

/// Lua's `utf8_decode`: the code at the start of `s` and its length in
/// bytes, or `None` when it is no (strict: Unicode, non-surrogate)
/// sequence.
fn decode(s: &[u8], strict: bool) -> Option<(u32, usize)> {
    const LIMITS: [u32; 6] = [u32::MAX, 0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let mut c = u32::from(*s.first()?);
    let (code, len) = if c < 0x80 {
        (c, 1)
    } else {
        let mut res: u32 = 0;
        let mut count = 0;
        while c & 0x40 != 0 {
            count += 1;
            if count > 5 {
                return None;
            }
            let cc = u32::from(*s.get(count)?);
            if cc & 0xC0 != 0x80 {
                return None;
            }
            res = (res << 6) | (cc & 0x3F);
            c <<= 1;
        }
        res |= (c & 0x7F) << (count * 5);
        if res > MAX_UTF || res < LIMITS[count] {
            return None;
        }
        (res, count + 1)
    };
    if strict && (code > MAX_UNICODE || (0xD800..=0xDFFF).contains(&code)) {
        return None;
    }
    Some((code, len))
}

/// Lua's `luaO_utf8esc`: `x` (at most 2^31 - 1) in up to six bytes.
fn encode(mut x: u32, out: &mut Vec<u8>) {
    if x < 0x80 {
        out.push(x as u8);
        return;
    }
    let mut tail = Vec::with_capacity(5);
    let mut mfb: u32 = 0x3F;
    loop {
        tail.push(0x80 | (x & 0x3F) as u8);
        x >>= 6;
        mfb >>= 1;
        if x <= mfb {
            break;
        }
    }
    out.push(((!mfb << 1) | x) as u8);
    out.extend(tail.iter().rev());
}

/// A continuation byte.
fn is_continuation(b: Option<&u8>) -> bool {
    b.is_some_and(|b| b & 0xC0 == 0x80)
}

/// Installs the `utf8` table.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), Error<'gc>> {
    ctx.set_global("utf8", utf8_table(ctx)?)?;
    Ok(())
}

/// `utf8.codes` iterator step: the next character after byte `n`, as
/// Lua 5.4.4's `iter_aux` (continuation bytes before it are skipped, also
/// at the start).
fn next_code<'gc>(
    ctx: Context<'gc>,
    s: &[u8],
    n: i64,
    strict: bool,
) -> Result<Option<(i64, u32)>, Error<'gc>> {
    let mut n = usize::try_from(n).unwrap_or(usize::MAX);
    if n < s.len() {
        while is_continuation(s.get(n)) {
            n += 1;
        }
    }
    if n >= s.len() {
        return Ok(None);
    }
    match decode(&s[n..], strict) {
        Some((code, _)) => Ok(Some((n as i64 + 1, code))),
        None => Err(error(ctx, INVALID.into())),
    }
}

/// The iterator function `utf8.codes` returns, strict or lax.
fn codes_step<'gc>(ctx: Context<'gc>, strict: bool) -> Callback<'gc> {
    Callback::from_fn(&ctx, move |ctx, _, mut stack| {
        let s = bytes(stack.get(0)).unwrap_or_default();
        let n = super::args::int(stack.get(1)).unwrap_or(0);
        match next_code(ctx, &s, n, strict)? {
            Some((at, code)) => stack.replace(ctx, (at, i64::from(code))),
            None => stack.replace(ctx, Value::Nil),
        }
        Ok(CallbackReturn::Return)
    })
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
            let mut out = Vec::with_capacity(stack.len());
            for k in 0..stack.len() {
                let code = int_arg(ctx, Some(stack.get(k)), k + 1, "utf8.char")?;
                let code = u32::try_from(code)
                    .ok()
                    .filter(|c| *c <= MAX_UTF)
                    .ok_or_else(|| bad_argument(ctx, k + 1, "utf8.char", "value out of range"))?;
                encode(code, &mut out);
            }
            stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, &out)));
            Ok(CallbackReturn::Return)
        }),
    )?;
    utf8.set(
        ctx,
        "codepoint",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let s = bytes(stack.get(0))
                .ok_or_else(|| bad_argument(ctx, 1, "utf8.codepoint", "string expected"))?;
            let optional = |k: usize, default: i64| -> Result<i64, Error<'gc>> {
                match stack.get(k) {
                    Value::Nil => Ok(default),
                    v => int_arg(ctx, Some(v), k + 1, "utf8.codepoint"),
                }
            };
            let i = position(optional(1, 1)?, s.len());
            let j = position(optional(2, i)?, s.len());
            let strict = !stack.get(3).to_bool();
            if i < 1 {
                return Err(bad_argument(ctx, 2, "utf8.codepoint", "out of bounds"));
            }
            if j > s.len() as i64 {
                return Err(bad_argument(ctx, 3, "utf8.codepoint", "out of bounds"));
            }
            let mut codes = Vec::new();
            let mut k = (i - 1) as usize;
            while (k as i64) < j {
                let (code, len) =
                    decode(&s[k..], strict).ok_or_else(|| error(ctx, INVALID.into()))?;
                codes.push(Value::Integer(i64::from(code)));
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
            let optional = |k: usize, default: i64| -> Result<i64, Error<'gc>> {
                match stack.get(k) {
                    Value::Nil => Ok(default),
                    v => int_arg(ctx, Some(v), k + 1, "utf8.len"),
                }
            };
            let i = position(optional(1, 1)?, s.len());
            if !(1 <= i && i - 1 <= len) {
                return Err(bad_argument(
                    ctx,
                    2,
                    "utf8.len",
                    "initial position out of bounds",
                ));
            }
            let j = position(optional(2, -1)?, s.len());
            if j > len {
                return Err(bad_argument(
                    ctx,
                    3,
                    "utf8.len",
                    "final position out of bounds",
                ));
            }
            let strict = !stack.get(3).to_bool();
            let mut count = 0;
            let mut k = i - 1;
            while k < j {
                match decode(&s[k as usize..], strict) {
                    Some((_, n)) => k += n as i64,
                    None => {
                        stack.replace(ctx, (Value::Nil, Value::Integer(k + 1)));
                        return Ok(CallbackReturn::Return);
                    }
                }
                count += 1;
            }
            stack.replace(ctx, count);
            Ok(CallbackReturn::Return)
        }),
    )?;
    utf8.set(
        ctx,
        "codes",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let s = stack.get(0);
            bytes(s).ok_or_else(|| bad_argument(ctx, 1, "utf8.codes", "string expected"))?;
            let step = codes_step(ctx, !stack.get(1).to_bool());
            stack.replace(ctx, (step, s, 0));
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_lua_s_six_byte_forms() {
        for code in [
            0,
            0x7F,
            0x80,
            0x7FF,
            0x800,
            0xFFFF,
            0x10FFFF,
            0x110000,
            0x7FFF_FFFF,
        ] {
            let mut out = Vec::new();
            encode(code, &mut out);
            assert_eq!(decode(&out, false), Some((code, out.len())), "{code:#x}");
        }
        let mut six = Vec::new();
        encode(0x7FFF_FFFF, &mut six);
        assert_eq!(six, b"\xFD\xBF\xBF\xBF\xBF\xBF");
        // Strict: not beyond Unicode, no surrogates.
        let mut sur = Vec::new();
        encode(0xD800, &mut sur);
        assert_eq!(decode(&sur, true), None);
        assert!(decode(&sur, false).is_some());
        // Overlong, truncated, continuation first.
        assert_eq!(decode(b"\xC0\x80", false), None);
        assert_eq!(decode(b"\xE2\x82", false), None);
        assert_eq!(decode(b"\x80", false), None);
        assert_eq!(decode(b"\xFF\xBF\xBF\xBF\xBF\xBF\xBF", false), None);
    }
}
