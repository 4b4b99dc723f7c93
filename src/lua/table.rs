//! The `table` functions written in Rust: `insert`, `remove`, `concat`
//! for plain tables (raw access, fuel charged per element); a table with a
//! metatable goes to the prelude's Lua versions, which honour `__index`,
//! `__newindex` and `__len` (`move`, `sort` and `unpack` are in the
//! prelude).

use super::args::{arg, bad_argument, bytes_arg, error, int_arg, table_arg};
use super::env::{format_number, prelude_call};
use super::string::MAX_BUILT_STRING;
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

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

/// Installs `table.insert`, `table.remove` and `table.concat`.
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
    Ok(())
}
