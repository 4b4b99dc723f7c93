//! Library functions piccolo 0.3.3 lacks that rule authors rely on, with
//! Lua 5.4's behaviour and messages (checked against PUC Lua by
//! tests/lua_oracle.rs). Each charges fuel for the work it does, so a big
//! table or string counts against the call's CPU budget like Lua code.

use super::args::{arg, bad_argument, bytes_arg, error, int_arg, table_arg};
use super::env::{display_in, format_number, has_tostring, prelude_call};
use super::format::{Arg, format};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// The longest string `string.rep` may build; larger would only exhaust
/// memory (and `string.rep('x', 2^40)` is a classic rule bomb).
pub const MAX_BUILT_STRING: usize = 16 * 1024 * 1024;

/// [`prelude_call`] when `t` has a metatable: Lua 5.4's table functions go
/// through `__index`, `__newindex` and `__len`; the Rust code here reads
/// and writes raw, for plain tables.
fn through_metatable<'gc>(
    ctx: Context<'gc>,
    t: Table<'gc>,
    name: &'static str,
) -> Option<CallbackReturn<'gc>> {
    t.metatable()?;
    prelude_call(ctx, name)
}

/// Adds `table.insert`, `table.remove`, `table.concat` and `string.rep`.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), Error<'gc>> {
    let table = match ctx.get_global("table") {
        Value::Table(t) => t,
        _ => return Ok(()),
    };
    table.set(
        ctx,
        "insert",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let t = table_arg(ctx, arg(&stack, 1), 1, "table.insert")?;
            let pos = match stack.len() {
                2 => None,
                3 => Some(int_arg(ctx, arg(&stack, 2), 2, "table.insert")?),
                _ => return Err(error(ctx, "wrong number of arguments to 'insert'".into())),
            };
            if let Some(call) = through_metatable(ctx, t, "__meta_insert") {
                return Ok(call);
            }
            let len = t.length();
            match pos {
                None => {
                    t.set(ctx, len + 1, stack.get(1))?;
                }
                Some(pos) => {
                    if pos < 1 || pos > len + 1 {
                        return Err(bad_argument(
                            ctx,
                            2,
                            "table.insert",
                            "position out of bounds",
                        ));
                    }
                    exec.fuel()
                        .consume((len - pos + 1).clamp(0, i32::MAX as i64) as i32);
                    for i in (pos..=len).rev() {
                        t.set(ctx, i + 1, t.get(ctx, i))?;
                    }
                    t.set(ctx, pos, stack.get(2))?;
                }
            }
            stack.clear();
            Ok(CallbackReturn::Return)
        }),
    )?;
    table.set(
        ctx,
        "remove",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let t = table_arg(ctx, arg(&stack, 1), 1, "table.remove")?;
            let given = match arg(&stack, 2) {
                None | Some(Value::Nil) => None,
                pos => Some(int_arg(ctx, pos, 2, "table.remove")?),
            };
            if let Some(call) = through_metatable(ctx, t, "__meta_remove") {
                return Ok(call);
            }
            let len = t.length();
            let pos = given.unwrap_or(len);
            if stack.len() > 1
                && len + 1 != pos
                && (pos < 1 || pos > len + 1)
                && !(len == 0 && pos == 0)
            {
                // (Lua 5.4.4 names argument #1 here.)
                return Err(bad_argument(
                    ctx,
                    1,
                    "table.remove",
                    "position out of bounds",
                ));
            }
            let removed = t.get(ctx, pos);
            exec.fuel()
                .consume((len - pos).clamp(0, i32::MAX as i64) as i32);
            let mut i = pos;
            while i < len {
                t.set(ctx, i, t.get(ctx, i + 1))?;
                i += 1;
            }
            if i <= len {
                t.set(ctx, i, Value::Nil)?;
            }
            stack.replace(ctx, removed);
            Ok(CallbackReturn::Return)
        }),
    )?;
    table.set(
        ctx,
        "concat",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let t = table_arg(ctx, arg(&stack, 1), 1, "table.concat")?;
            let sep = match arg(&stack, 2) {
                None | Some(Value::Nil) => Vec::new(),
                other => bytes_arg(ctx, other, 2, "table.concat")?,
            };
            let first = if stack.get(2).is_nil() {
                1
            } else {
                int_arg(ctx, arg(&stack, 3), 3, "table.concat")?
            };
            let last = if stack.get(3).is_nil() {
                None
            } else {
                Some(int_arg(ctx, arg(&stack, 4), 4, "table.concat")?)
            };
            if let Some(call) = through_metatable(ctx, t, "__meta_concat") {
                return Ok(call);
            }
            let last = last.unwrap_or_else(|| t.length());
            let mut out: Vec<u8> = Vec::new();
            // An inclusive range: `last` may be math.maxinteger, where
            // `i += 1` would overflow.
            for i in first..=last {
                match t.get(ctx, i) {
                    Value::String(s) => out.extend_from_slice(s.as_bytes()),
                    Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
                    Value::Number(n) => out.extend_from_slice(format_number(n).as_bytes()),
                    other => {
                        return Err(error(
                            ctx,
                            format!(
                                "invalid value ({}) at index {i} in table for 'concat'",
                                other.type_name()
                            ),
                        ));
                    }
                }
                if i < last {
                    out.extend_from_slice(&sep);
                }
                if out.len() > MAX_BUILT_STRING {
                    return Err(error(
                        ctx,
                        format!("table.concat: result larger than {MAX_BUILT_STRING} bytes"),
                    ));
                }
                exec.fuel().consume(1);
            }
            exec.fuel().consume((out.len() / 64) as i32);
            stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, out)));
            Ok(CallbackReturn::Return)
        }),
    )?;
    if let Value::Table(string) = ctx.get_global("string") {
        super::strlib::install(ctx, string)?;
        super::pack::install(ctx, string)?;
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
