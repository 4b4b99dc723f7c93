//! Base-library functions piccolo 0.3.3 lacks or gets wrong: `tonumber`
//! with a base (`pairs`/`ipairs`, `print`, `tostring` and `pcall` are in
//! `env.rs`, with the rest of the global environment).

use super::args::{bad_argument, expected, int};
use piccolo::{Callback, CallbackReturn, Context, Error, Value};

/// `tonumber(s, base)`: digits in bases 2 to 36; nil when not a numeral.
pub(super) fn tonumber_base(text: &[u8], base: u32) -> Option<i64> {
    let t = std::str::from_utf8(text).ok()?.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(36).filter(|d| *d < base)? as i64;
        n = n.wrapping_mul(base as i64).wrapping_add(d);
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Installs `tonumber`.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), Error<'gc>> {
    let base_tonumber = ctx.get_global("tonumber");
    ctx.set_global(
        "tonumber",
        Callback::from_fn_with(&ctx, base_tonumber, |plain, ctx, _, mut stack| {
            if stack.len() < 2 || stack.get(1).is_nil() {
                return Ok(CallbackReturn::Call {
                    function: piccolo::meta_ops::call(ctx, *plain)?,
                    then: None,
                });
            }
            let base = int(stack.get(1))
                .filter(|b| (2..=36).contains(b))
                .ok_or_else(|| bad_argument(ctx, 2, "tonumber", "base out of range"))?;
            let Value::String(s) = stack.get(0) else {
                return Err(expected(ctx, 1, "tonumber", "string", Some(stack.get(0))));
            };
            let n = tonumber_base(s.as_bytes(), base as u32);
            stack.replace(ctx, n.map_or(Value::Nil, Value::Integer));
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(())
}
