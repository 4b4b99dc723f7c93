//! Reading callback arguments and raising errors with Lua 5.4's messages,
//! shared by every library function written in Rust.

use super::env::format_number;
use piccolo::{Context, Error, Table, Value};

/// A Lua error carrying `message` as a string value.
pub(super) fn error<'gc>(ctx: Context<'gc>, message: String) -> Error<'gc> {
    Value::String(ctx.intern(message.as_bytes())).into()
}

/// A value as an integer when it has an exact integer representation.
pub(super) fn int(v: Value<'_>) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(i),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(x as i64),
        _ => None,
    }
}

/// A value as string bytes (numbers convert, as in Lua).
pub(super) fn to_bytes(v: Value<'_>) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(x) => Some(format_number(x).into_bytes()),
        _ => None,
    }
}

/// Argument `n` (1-based) of a call, `None` when absent (Lua's "no value").
pub(super) fn arg<'gc>(stack: &piccolo::Stack<'gc, '_>, n: usize) -> Option<Value<'gc>> {
    (n <= stack.len()).then(|| stack.get(n - 1))
}

pub(super) fn type_of(v: Option<Value<'_>>) -> &'static str {
    v.map_or("no value", |v| v.type_name())
}

/// Lua's "bad argument #n to 'f' (...)" error.
pub(super) fn bad_argument<'gc>(ctx: Context<'gc>, n: usize, f: &str, why: &str) -> Error<'gc> {
    error(ctx, format!("bad argument #{n} to '{f}' ({why})"))
}

/// "... (`kind` expected, got <type>)"; `None` reads "no value".
pub(super) fn expected<'gc>(
    ctx: Context<'gc>,
    n: usize,
    f: &str,
    kind: &str,
    got: Option<Value<'gc>>,
) -> Error<'gc> {
    bad_argument(ctx, n, f, &format!("{kind} expected, got {}", type_of(got)))
}

pub(super) fn table_arg<'gc>(
    ctx: Context<'gc>,
    v: Option<Value<'gc>>,
    n: usize,
    f: &str,
) -> Result<Table<'gc>, Error<'gc>> {
    match v {
        Some(Value::Table(t)) => Ok(t),
        other => Err(expected(ctx, n, f, "table", other)),
    }
}

pub(super) fn int_arg<'gc>(
    ctx: Context<'gc>,
    v: Option<Value<'gc>>,
    n: usize,
    f: &str,
) -> Result<i64, Error<'gc>> {
    // A string converts as in Lua (`luaL_checkinteger`).
    let converted = match v {
        Some(Value::String(s)) => super::numeral::from_string(&s.to_str_lossy())
            .map(super::ops::value)
            .or(v),
        other => other,
    };
    match (converted, converted.and_then(int)) {
        (_, Some(i)) => Ok(i),
        (Some(Value::Number(_)), None) => Err(bad_argument(
            ctx,
            n,
            f,
            "number has no integer representation",
        )),
        (other, None) => Err(expected(ctx, n, f, "number", other)),
    }
}

/// A string argument (numbers convert, as in Lua).
pub(super) fn bytes_arg<'gc>(
    ctx: Context<'gc>,
    v: Option<Value<'gc>>,
    n: usize,
    f: &str,
) -> Result<Vec<u8>, Error<'gc>> {
    v.and_then(to_bytes)
        .ok_or_else(|| expected(ctx, n, f, "string", v))
}
