//! The `string` table: piccolo's functions where they match Lua 5.4, ours
//! where they do not (`byte`, `char`, `rep`, `format`, the pattern
//! functions in `search`, `pack`/`unpack`/`packsize`).

mod format;
mod pack;
pub(super) mod pattern;
mod search;

pub(super) use search::gsub_matches_callback;

use super::args::{arg, bad_argument, bytes_arg, error, int, int_arg, to_bytes as bytes};
use super::env::{display_in, has_tostring, prelude_call};
use format::{Arg, format};
use piccolo::{Callback, CallbackReturn, Context, Error, Value};

/// The longest string `string.rep` may build; larger would only exhaust
/// memory (and `string.rep('x', 2^40)` is a classic rule bomb).
pub const MAX_BUILT_STRING: usize = 16 * 1024 * 1024;

/// Installs our `string` functions over piccolo's.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), Error<'gc>> {
    if let Value::Table(string) = ctx.get_global("string") {
        string.set(
            ctx,
            "sub",
            Callback::from_fn(&ctx, |ctx, _, mut stack| {
                let s = bytes_arg(ctx, arg(&stack, 1), 1, "string.sub")?;
                let len = s.len() as i64;
                // Lua's posrelatI for the start, getendpos for the end.
                let start = match int_arg(ctx, arg(&stack, 2), 2, "string.sub")? {
                    p if p > 0 => p,
                    p if p == 0 || p < -len => 1,
                    p => len + p + 1,
                };
                let end = match arg(&stack, 3).filter(|v| !v.is_nil()) {
                    None => len,
                    given => match int_arg(ctx, given, 3, "string.sub")? {
                        p if p > len => len,
                        p if p >= 0 => p,
                        p if p < -len => 0,
                        p => len + p + 1,
                    },
                };
                let piece = if start <= end {
                    &s[(start - 1) as usize..end as usize]
                } else {
                    &[][..]
                };
                stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, piece)));
                Ok(CallbackReturn::Return)
            }),
        )?;
        string.set(
            ctx,
            "byte",
            Callback::from_fn(&ctx, |ctx, _, mut stack| {
                let s = bytes(stack.get(0))
                    .ok_or_else(|| bad_argument(ctx, 1, "string.byte", "string expected"))?;
                // Lua's posrelatI for the start and getendpos for the end,
                // whose default is the start as given (so byte("hi", -3)
                // is empty, not "h").
                let len = s.len() as i64;
                let given = int(stack.get(1)).unwrap_or(1);
                let i = match given {
                    p if p > 0 => p,
                    p if p == 0 || p.unsigned_abs() > len as u64 => 1,
                    p => len + p + 1,
                };
                let j = match int(stack.get(2)).unwrap_or(given) {
                    p if p > len => len,
                    p if p >= 0 => p,
                    p if p.unsigned_abs() > len as u64 => 0,
                    p => len + p + 1,
                };
                let codes: Vec<Value> = (i..=j)
                    .map(|k| Value::Integer(s[(k - 1) as usize] as i64))
                    .collect();
                stack.replace(ctx, piccolo::Variadic(codes));
                Ok(CallbackReturn::Return)
            }),
        )?;
        string.set(
            ctx,
            "char",
            Callback::from_fn(&ctx, |ctx, _, mut stack| {
                let mut out = Vec::with_capacity(stack.len());
                for k in 0..stack.len() {
                    match int(stack.get(k)) {
                        Some(c @ 0..=255) => out.push(c as u8),
                        _ => {
                            return Err(bad_argument(ctx, k + 1, "char", "value out of range"));
                        }
                    }
                }
                stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, out)));
                Ok(CallbackReturn::Return)
            }),
        )?;
    }
    if let Value::Table(string) = ctx.get_global("string") {
        search::install(ctx, string)?;
        pack::install(ctx, string)?;
        string.set(
            ctx,
            "format",
            Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
                let fmt = bytes_arg(ctx, arg(&stack, 1), 1, "string.format")?;
                // A table with __tostring needs a Lua call for its text:
                // the prelude converts such arguments and comes back here.
                if (1..stack.len()).any(|i| has_tostring(ctx, stack.get(i))) {
                    if let Some(call) = prelude_call(ctx, "__format_tostring") {
                        return Ok(call);
                    }
                }
                let args: Vec<Arg> = (1..stack.len())
                    .map(|i| match stack.get(i) {
                        Value::String(s) => Arg::Str(s.as_bytes()),
                        Value::Integer(n) => Arg::Int(n),
                        Value::Number(x) => Arg::Num(x),
                        other => Arg::Other(display_in(ctx, other)),
                    })
                    .collect();
                let out = format(&fmt, &args).map_err(|e| error(ctx, e))?;
                exec.fuel().consume((out.len() / 64) as i32 + 1);
                stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, out)));
                Ok(CallbackReturn::Return)
            }),
        )?;
        string.set(
            ctx,
            "rep",
            Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
                let s = bytes_arg(ctx, arg(&stack, 1), 1, "string.rep")?;
                let n = int_arg(ctx, arg(&stack, 2), 2, "string.rep")?;
                let sep = match arg(&stack, 3) {
                    None | Some(Value::Nil) => Vec::new(),
                    other => bytes_arg(ctx, other, 3, "string.rep")?,
                };
                let count = n.max(0) as u128;
                let size = count * s.len() as u128 + count.saturating_sub(1) * sep.len() as u128;
                if size > MAX_BUILT_STRING as u128 {
                    return Err(error(
                        ctx,
                        format!("string.rep: resulting string too large ({size} bytes, more than the {MAX_BUILT_STRING} a rule may build)"),
                    ));
                }
                exec.fuel().consume((size / 64) as i32);
                // `repeat` copies by doubling: fast even for a million
                // one-byte pieces.
                let mut out = Vec::with_capacity(size as usize);
                if count > 0 {
                    let unit = [sep.as_slice(), s.as_slice()].concat();
                    out.extend_from_slice(&s);
                    out.extend_from_slice(&unit.repeat(count as usize - 1));
                }
                stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, out)));
                Ok(CallbackReturn::Return)
            }),
        )?;
    }
    Ok(())
}
