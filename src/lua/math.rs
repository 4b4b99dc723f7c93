//! The `math` table where piccolo 0.3.3's functions differ from Lua 5.4:
//! exact conversions (`tointeger`, `floor`, `ceil`, `modf`, `fmod`),
//! `max`/`min` that compare integers and floats exactly, and Lua 5.4's
//! own generator (xoshiro256**) behind `random`/`randomseed`, so a seeded
//! rule draws the same numbers as under `lua5.4`.

use super::args::{arg, bad_argument, error, int_arg};
use super::ops::{Num, arith_num, compare_error, float_to_int, num_cmp};
use gc_arena::StaticCollect;
use piccolo::{Callback, CallbackReturn, Context, Value};
use std::cell::Cell;
use std::cmp::Ordering;
use std::rc::Rc;

/// xoshiro256** state, seeded as Lua 5.4 seeds it.
#[derive(Clone, Debug, PartialEq)]
struct Xoshiro([u64; 4]);

impl Xoshiro {
    /// `math.randomseed(n1, n2)`: the state Lua 5.4 builds from two
    /// integers (with a constant word so no seed gives the zero state),
    /// stirred by 16 discarded draws.
    fn seeded(n1: u64, n2: u64) -> Xoshiro {
        let mut x = Xoshiro([n1, 0xff, n2, 0]);
        for _ in 0..16 {
            x.next();
        }
        x
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// `ran` brought into `0..=n` without bias: masked to the smallest
    /// all-ones value not below `n`, drawing again while it is above.
    fn project(&mut self, mut ran: u64, n: u64) -> u64 {
        if n & n.wrapping_add(1) == 0 {
            return ran & n;
        }
        let lim = u64::MAX >> n.leading_zeros();
        loop {
            ran &= lim;
            if ran <= n {
                return ran;
            }
            ran = self.next();
        }
    }
}

/// A float in [0, 1) from the draw's top 53 bits.
fn unit_float(ran: u64) -> f64 {
    (ran >> 11) as f64 * (0.5f64).powi(53)
}

/// A seed that differs from run to run, as Lua 5.4's start-up seed does.
fn fresh_seed() -> (u64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (
        now.as_secs(),
        u64::from(now.subsec_nanos()) ^ u64::from(std::process::id()) << 32,
    )
}

fn random_callbacks<'gc>(ctx: Context<'gc>) -> (Callback<'gc>, Callback<'gc>) {
    let (a, b) = fresh_seed();
    let state = Rc::new(Cell::new(Xoshiro::seeded(a, b).0));
    let random = Callback::from_fn_with(
        &ctx,
        StaticCollect(Rc::clone(&state)),
        |state, ctx, _, mut stack| {
            let mut x = Xoshiro(state.0.get());
            let ran = x.next();
            let (low, up) = match stack.len() {
                0 => {
                    state.0.set(x.0);
                    stack.replace(ctx, Value::Number(unit_float(ran)));
                    return Ok(CallbackReturn::Return);
                }
                1 => {
                    let up = int_arg(ctx, arg(&stack, 1), 1, "math.random")?;
                    if up == 0 {
                        state.0.set(x.0);
                        stack.replace(ctx, Value::Integer(ran as i64));
                        return Ok(CallbackReturn::Return);
                    }
                    (1, up)
                }
                2 => (
                    int_arg(ctx, arg(&stack, 1), 1, "math.random")?,
                    int_arg(ctx, arg(&stack, 2), 2, "math.random")?,
                ),
                _ => return Err(error(ctx, "wrong number of arguments".into())),
            };
            if low > up {
                return Err(bad_argument(ctx, 1, "math.random", "interval is empty"));
            }
            let p = x.project(ran, (up as u64).wrapping_sub(low as u64));
            state.0.set(x.0);
            stack.replace(ctx, Value::Integer(p.wrapping_add(low as u64) as i64));
            Ok(CallbackReturn::Return)
        },
    );
    let randomseed =
        Callback::from_fn_with(&ctx, StaticCollect(state), |state, ctx, _, mut stack| {
            let (n1, n2) = if stack.is_empty() {
                fresh_seed()
            } else {
                let n1 = int_arg(ctx, arg(&stack, 1), 1, "math.randomseed")?;
                let n2 = match arg(&stack, 2) {
                    None | Some(Value::Nil) => 0,
                    given => int_arg(ctx, given, 2, "math.randomseed")?,
                };
                (n1 as u64, n2 as u64)
            };
            state.0.set(Xoshiro::seeded(n1, n2).0);
            stack.replace(ctx, (Value::Integer(n1 as i64), Value::Integer(n2 as i64)));
            Ok(CallbackReturn::Return)
        });
    (random, randomseed)
}

/// `math.max` (`want` Greater) / `math.min` (`want` Less): the first
/// argument that no later one beats, compared as Lua's `<` compares
/// numbers (exactly) and strings (bytewise).
fn extremum_callback<'gc>(ctx: Context<'gc>, name: &'static str, want: Ordering) -> Callback<'gc> {
    Callback::from_fn(&ctx, move |ctx, _, mut stack| {
        if stack.is_empty() {
            return Err(bad_argument(ctx, 1, name, "value expected"));
        }
        let mut best = stack.get(0);
        for i in 1..stack.len() {
            let v = stack.get(i);
            let order = match (best, v) {
                (Value::String(a), Value::String(b)) => Some(b.as_bytes().cmp(a.as_bytes())),
                (Value::Integer(_) | Value::Number(_), Value::Integer(_) | Value::Number(_)) => {
                    num_cmp(number(v), number(best))
                }
                // (Lua compares `best < v` for max, `v < best` for min.)
                _ if want == Ordering::Greater => return Err(error(ctx, compare_error(best, v))),
                _ => return Err(error(ctx, compare_error(v, best))),
            };
            if order == Some(want) {
                best = v;
            }
        }
        stack.replace(ctx, best);
        Ok(CallbackReturn::Return)
    })
}

/// A value already known to be a number, as a [`Num`].
fn number(v: Value<'_>) -> Num {
    match v {
        Value::Integer(i) => Num::Int(i),
        Value::Number(f) => Num::Float(f),
        _ => Num::Float(f64::NAN),
    }
}

/// `math.tointeger`, exact: piccolo's saturates, so `2^63` became
/// `math.maxinteger` instead of failing.
fn to_integer_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        if stack.is_empty() {
            return Err(error(
                ctx,
                "bad argument #1 to 'tointeger' (value expected)".into(),
            ));
        }
        let result = match arith_num(stack.get(0)) {
            Some(Num::Int(i)) => Value::Integer(i),
            Some(Num::Float(f)) => float_to_int(f).map_or(Value::Nil, Value::Integer),
            None => Value::Nil,
        };
        stack.replace(ctx, result);
        Ok(CallbackReturn::Return)
    })
}

/// `math.floor` / `math.ceil`: an integer when the result fits one, the
/// float otherwise (piccolo's saturate: `math.floor(2^70)` was maxinteger).
fn rounding_callback<'gc>(ctx: Context<'gc>, name: &'static str, up: bool) -> Callback<'gc> {
    Callback::from_fn(&ctx, move |ctx, _, mut stack| {
        let result = match arith_num(stack.get(0)) {
            Some(Num::Int(i)) => Value::Integer(i),
            Some(Num::Float(f)) => {
                let r = if up { f.ceil() } else { f.floor() };
                float_to_int(r).map_or(Value::Number(r), Value::Integer)
            }
            None => {
                let got = stack.get(0);
                return Err(error(
                    ctx,
                    format!(
                        "bad argument #1 to '{name}' (number expected, got {})",
                        if stack.is_empty() {
                            "no value"
                        } else {
                            got.type_name()
                        }
                    ),
                ));
            }
        };
        stack.replace(ctx, result);
        Ok(CallbackReturn::Return)
    })
}

/// `math.modf`: the integral part (an integer when it fits one) and the
/// fraction, with Lua's answers for infinities (`inf, 0.0`) and integers.
fn modf_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let Some(n) = arith_num(stack.get(0)) else {
            return Err(error(
                ctx,
                "bad argument #1 to 'modf' (number expected)".into(),
            ));
        };
        if let Num::Int(i) = n {
            // An integer is its own integral part (Lua 5.4 keeps it one).
            stack.replace(ctx, (Value::Integer(i), Value::Number(0.0)));
            return Ok(CallbackReturn::Return);
        }
        let x = n.as_f64();
        let whole = if x >= 0.0 { x.floor() } else { x.ceil() };
        let fraction = if x.is_infinite() { 0.0 } else { x - whole };
        // The integral part as an integer when it fits (lmathlib's
        // pushnumint), a float otherwise (inf, -3e23).
        let whole = float_to_int(whole).map_or(Value::Number(whole), Value::Integer);
        stack.replace(ctx, (whole, Value::Number(fraction)));
        Ok(CallbackReturn::Return)
    })
}

/// `math.fmod`: C's fmod for floats; for integers the remainder truncated
/// toward zero, with Lua's "bad argument #2 to 'math.fmod' (zero)".
fn fmod_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let (Some(a), Some(b)) = (arith_num(stack.get(0)), arith_num(stack.get(1))) else {
            return Err(error(
                ctx,
                "bad argument to 'math.fmod' (number expected)".into(),
            ));
        };
        let result = match (a, b) {
            (Num::Int(_), Num::Int(0)) => {
                return Err(error(ctx, "bad argument #2 to 'math.fmod' (zero)".into()));
            }
            (Num::Int(_), Num::Int(-1)) => Value::Integer(0),
            (Num::Int(x), Num::Int(y)) => Value::Integer(x % y),
            (x, y) => Value::Number(x.as_f64() % y.as_f64()),
        };
        stack.replace(ctx, result);
        Ok(CallbackReturn::Return)
    })
}

/// Replaces the `math` functions piccolo gets wrong.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), piccolo::Error<'gc>> {
    let Value::Table(math) = ctx.get_global("math") else {
        return Ok(());
    };
    math.set(ctx, "tointeger", to_integer_callback(ctx))?;
    math.set(ctx, "floor", rounding_callback(ctx, "floor", false))?;
    math.set(ctx, "ceil", rounding_callback(ctx, "ceil", true))?;
    math.set(ctx, "modf", modf_callback(ctx))?;
    math.set(ctx, "fmod", fmod_callback(ctx))?;
    math.set(ctx, "max", extremum_callback(ctx, "max", Ordering::Greater))?;
    math.set(ctx, "min", extremum_callback(ctx, "min", Ordering::Less))?;
    let (random, randomseed) = random_callbacks(ctx);
    math.set(ctx, "random", random)?;
    math.set(ctx, "randomseed", randomseed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_draws_are_lua_5_4s() {
        // `math.randomseed(1007); print(math.random(0))` under lua5.4.
        let mut x = Xoshiro::seeded(1007, 0);
        assert_eq!(x.next() as i64, 0x7a7040a5a323c9d6_u64 as i64);
    }

    #[test]
    fn projection_stays_in_range_and_keeps_powers_of_two_unbiased() {
        let mut x = Xoshiro::seeded(42, 0);
        assert_eq!(x.project(0xff, 15), 15);
        for _ in 0..1000 {
            let r = x.next();
            assert!(x.project(r, 9) <= 9);
        }
        assert_eq!(x.project(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn unit_floats_are_below_one() {
        assert_eq!(unit_float(0), 0.0);
        assert!(unit_float(u64::MAX) < 1.0);
    }
}
