//! Operators with Lua 5.4's exact semantics where piccolo 0.3.3 gets them
//! wrong. The front end (`front.rs`) routes an operator here only where the
//! VM's own answer could differ: comparisons between two values that are
//! not both small literals (NaN, integers beyond 2^53 against floats,
//! `__lt`/`__le`/`__eq`), floor division, modulo, shifts (negative and
//! integer results, `n//0`, `mininteger % -1`), and the preparation of a
//! numeric `for` (integer loops with float limits, step zero, loops that
//! would overflow).
//!
//! The arithmetic is in plain functions, unit-tested against the values
//! PUC Lua gives; the callbacks only convert values and raise errors.

use super::args::error;
use piccolo::{Callback, CallbackReturn, Context, Value};
use std::cmp::Ordering;

/// A number as Lua sees it: integer or float subtype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

/// 2^63 as a float: the first float above every integer.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// The float `f` as an integer when it is one exactly (Lua's
/// `lua_numbertointeger` with mode "exact").
pub(super) fn float_to_int(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)).then_some(f as i64)
}

/// How integer `i` compares with float `f` (mathematically, no rounding);
/// `None` when `f` is NaN.
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    // f is within [-2^63, 2^63): compare with its floor, then the fraction.
    let floor = f.floor();
    let fl = floor as i64;
    Some(match i.cmp(&fl) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    })
}

/// Lua's numeric ordering: `None` for NaN (every comparison false).
pub(super) fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Why an integer operation has no result.
#[derive(Debug, PartialEq)]
pub(super) enum ArithError {
    /// `n // 0` with integers.
    DivideByZero,
    /// `n % 0` with integers.
    ModuloByZero,
    /// A float operand of a bitwise operation is not an integer.
    NoIntegerRepresentation,
}

impl ArithError {
    fn message(&self) -> String {
        match self {
            ArithError::DivideByZero => "attempt to divide by zero".into(),
            ArithError::ModuloByZero => "attempt to perform 'n%0'".into(),
            ArithError::NoIntegerRepresentation => "number has no integer representation".into(),
        }
    }
}

/// `a // b`.
pub(super) fn floor_div(a: Num, b: Num) -> Result<Num, ArithError> {
    Ok(match (a, b) {
        (Num::Int(_), Num::Int(0)) => return Err(ArithError::DivideByZero),
        (Num::Int(x), Num::Int(-1)) => Num::Int(x.wrapping_neg()),
        (Num::Int(x), Num::Int(y)) => {
            let q = x / y;
            Num::Int(if x % y != 0 && (x ^ y) < 0 { q - 1 } else { q })
        }
        (x, y) => Num::Float((to_float(x) / to_float(y)).floor()),
    })
}

/// `a % b`.
pub(super) fn modulo(a: Num, b: Num) -> Result<Num, ArithError> {
    Ok(match (a, b) {
        (Num::Int(_), Num::Int(0)) => return Err(ArithError::ModuloByZero),
        (Num::Int(_), Num::Int(-1)) => Num::Int(0),
        (Num::Int(x), Num::Int(y)) => {
            let r = x % y;
            Num::Int(if r != 0 && (r ^ y) < 0 { r + y } else { r })
        }
        (x, y) => {
            let (x, y) = (to_float(x), to_float(y));
            let mut m = x % y;
            // Lua 5.4's luai_nummod (5.3 tested `y != m`, which made
            // `-1 % -math.huge` -inf instead of -1).
            if if m > 0.0 { y < 0.0 } else { m < 0.0 && y > 0.0 } {
                m += y;
            }
            Num::Float(m)
        }
    })
}

/// An integer result for two integers (wrapping, as Lua's), a float
/// otherwise.
fn int_or_float(x: Num, y: Num, int: fn(i64, i64) -> i64, float: fn(f64, f64) -> f64) -> Num {
    match (x, y) {
        (Num::Int(a), Num::Int(b)) => Num::Int(int(a, b)),
        (a, b) => Num::Float(float(to_float(a), to_float(b))),
    }
}

/// `x << y` (logical; a negative `y` shifts right; 64 or more gives 0).
pub(super) fn shift_left(x: i64, y: i64) -> i64 {
    if y <= -64 || y >= 64 {
        0
    } else if y >= 0 {
        ((x as u64) << y) as i64
    } else {
        ((x as u64) >> -y) as i64
    }
}

/// `x >> y`.
pub(super) fn shift_right(x: i64, y: i64) -> i64 {
    shift_left(x, y.checked_neg().unwrap_or(i64::MAX))
}

fn to_float(n: Num) -> f64 {
    n.as_f64()
}

impl Num {
    /// The number as a float (integers beyond 2^53 round).
    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

fn bitwise_int(n: Num) -> Result<i64, ArithError> {
    match n {
        Num::Int(i) => Ok(i),
        Num::Float(f) => float_to_int(f).ok_or(ArithError::NoIntegerRepresentation),
    }
}

/// What a numeric `for` runs with: `(init, limit, step, back)` of the
/// loop the VM will run (all integers or all floats), the loop variable
/// being the VM's value minus `back`; or why Lua refuses it.
///
/// The VM adds the step after the last round and tests the sum against
/// the limit: where that sum would pass the integer limits (a loop up to
/// `math.maxinteger`), it would wrap around and the loop never end. Such a
/// loop runs shifted by `shift` towards zero, where the sum cannot
/// overflow, and its variable is shifted back: the same values as Lua's.
pub(super) fn for_prep(init: Num, limit: Num, step: Num) -> Result<(Num, Num, Num, Num), String> {
    /// A loop the VM will not run even once.
    const SKIP: (Num, Num, Num, Num) = (Num::Int(1), Num::Int(0), Num::Int(1), Num::Int(0));
    match (init, step) {
        (Num::Int(i), Num::Int(s)) => {
            if s == 0 {
                return Err("'for' step is zero".into());
            }
            // The limit as an integer, floored (step > 0) or ceiled (step <
            // 0), clipped to the integer range; `None`: the loop is empty.
            let l = match limit {
                Num::Int(l) => Some(l),
                Num::Float(f) if f.is_nan() => None,
                Num::Float(f) => {
                    let f = if s > 0 { f.floor() } else { f.ceil() };
                    if f >= TWO_63 {
                        (s > 0).then_some(i64::MAX)
                    } else if f < -TWO_63 {
                        (s < 0).then_some(i64::MIN)
                    } else {
                        Some(f as i64)
                    }
                }
            };
            let Some(l) = l else { return Ok(SKIP) };
            if (s > 0 && i > l) || (s < 0 && i < l) {
                return Ok(SKIP);
            }
            // The last value reached, and the VM's sum after it.
            let count = if s > 0 {
                (l as i128 - i as i128) / s as i128
            } else {
                (i as i128 - l as i128) / -(s as i128)
            };
            let last = i as i128 + count * s as i128;
            let after = last + s as i128;
            // 0 unless `after` is out of range; then the shift that brings
            // it back to the edge (the first value stays in range: the
            // whole span is less than 2^64).
            let shift = if after > i64::MAX as i128 {
                after - i64::MAX as i128
            } else if after < i64::MIN as i128 {
                after - i64::MIN as i128
            } else {
                0
            };
            let narrow = |v: i128| {
                i64::try_from(v).map_err(|_| "a numeric 'for' beyond the integer range".to_string())
            };
            Ok((
                Num::Int(narrow(i as i128 - shift)?),
                Num::Int(narrow(last - shift)?),
                Num::Int(s),
                Num::Int(narrow(-shift)?),
            ))
        }
        _ => {
            let s = to_float(step);
            if s == 0.0 {
                return Err("'for' step is zero".into());
            }
            Ok((
                Num::Float(to_float(init)),
                Num::Float(to_float(limit)),
                Num::Float(s),
                Num::Int(0),
            ))
        }
    }
}

fn num(v: Value<'_>) -> Option<Num> {
    match v {
        Value::Integer(i) => Some(Num::Int(i)),
        Value::Number(f) => Some(Num::Float(f)),
        _ => None,
    }
}

/// A number, or a string Lua's arithmetic converts to one.
pub(super) fn arith_num(v: Value<'_>) -> Option<Num> {
    match v {
        Value::String(s) => super::numeral::from_string(&s.to_str_lossy()),
        other => num(other),
    }
}

pub(super) fn value<'gc>(n: Num) -> Value<'gc> {
    match n {
        Num::Int(i) => Value::Integer(i),
        Num::Float(f) => Value::Number(f),
    }
}

/// The metamethod `event` of `a` or else of `b`, as Lua looks it up.
fn metamethod<'gc>(
    ctx: Context<'gc>,
    a: Value<'gc>,
    b: Value<'gc>,
    event: &'static str,
) -> Value<'gc> {
    [a, b]
        .into_iter()
        .filter_map(|v| match v {
            Value::Table(t) => t.metatable(),
            Value::UserData(u) => u.metatable(),
            _ => None,
        })
        .map(|m| m.get(ctx, event))
        .find(|h| !h.is_nil())
        .unwrap_or(Value::Nil)
}

/// Calls the metamethod `handler` with `a, b` through the prelude function
/// `adapter` (which cuts the result to one value, or to a boolean).
fn call_metamethod<'gc>(
    ctx: Context<'gc>,
    stack: &mut piccolo::Stack<'gc, '_>,
    adapter: &'static str,
    handler: Value<'gc>,
) -> Result<CallbackReturn<'gc>, piccolo::Error<'gc>> {
    let function = match ctx.get_global(adapter) {
        Value::Function(f) => f,
        _ => return Err(error(ctx, format!("internal: {adapter} is missing"))),
    };
    stack.push_front(handler);
    Ok(CallbackReturn::Call {
        function,
        then: None,
    })
}

/// Lua's `rawequal` for values that are not both numbers.
fn raw_equal<'gc>(a: Value<'gc>, b: Value<'gc>) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Boolean(x), Value::Boolean(y)) => x == y,
        (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
        (Value::Table(x), Value::Table(y)) => x == y,
        (Value::Function(x), Value::Function(y)) => x == y,
        (Value::Thread(x), Value::Thread(y)) => x == y,
        (Value::UserData(x), Value::UserData(y)) => x == y,
        (x, y) => match (num(x), num(y)) {
            (Some(x), Some(y)) => num_cmp(x, y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Lua's "attempt to compare" message.
pub(super) fn compare_error(a: Value<'_>, b: Value<'_>) -> String {
    let (ta, tb) = (a.type_name(), b.type_name());
    if ta == tb {
        format!("attempt to compare two {ta} values")
    } else {
        format!("attempt to compare {ta} with {tb}")
    }
}

/// An error with the `chunk:line:` position the front end passed along.
pub(super) fn located<'gc>(
    ctx: Context<'gc>,
    at: Value<'gc>,
    message: String,
) -> piccolo::Error<'gc> {
    match at {
        Value::String(p) => error(ctx, format!("{} {message}", p.to_str_lossy())),
        _ => error(ctx, message),
    }
}

/// The global the prelude defines to call a comparison metamethod and
/// turn its result into a boolean.
const COMPARE_ADAPTER: &str = "__cmp_meta";
/// The global the prelude defines to call an arithmetic metamethod and keep
/// its first result.
const ARITH_ADAPTER: &str = "__arith_meta";

#[derive(Clone, Copy)]
enum Comparison {
    Less,
    LessEqual,
    Equal,
}

fn comparison<'gc>(ctx: Context<'gc>, kind: Comparison) -> Callback<'gc> {
    Callback::from_fn(&ctx, move |ctx, _, mut stack| {
        // The third argument is the position for errors; a fourth `true`:
        // the operands came in source order of `a > b`, compare `b < a`.
        let at = stack.get(2);
        let (a, b) = match stack.get(3) {
            Value::Boolean(true) => (stack.get(1), stack.get(0)),
            _ => (stack.get(0), stack.get(1)),
        };
        stack.replace(ctx, (a, b));
        let answer = match (num(a), num(b), kind) {
            (Some(x), Some(y), Comparison::Less) => num_cmp(x, y) == Some(Ordering::Less),
            (Some(x), Some(y), Comparison::LessEqual) => {
                matches!(num_cmp(x, y), Some(Ordering::Less | Ordering::Equal))
            }
            (Some(x), Some(y), Comparison::Equal) => num_cmp(x, y) == Some(Ordering::Equal),
            (_, _, Comparison::Equal) => {
                let same_kind = matches!(
                    (a, b),
                    (Value::Table(_), Value::Table(_)) | (Value::UserData(_), Value::UserData(_))
                );
                if raw_equal(a, b) || !same_kind {
                    raw_equal(a, b)
                } else {
                    let handler = metamethod(ctx, a, b, "__eq");
                    if handler.is_nil() {
                        false
                    } else {
                        return call_metamethod(ctx, &mut stack, COMPARE_ADAPTER, handler);
                    }
                }
            }
            (_, _, order) => match (a, b) {
                (Value::String(x), Value::String(y)) => {
                    let o = x.as_bytes().cmp(y.as_bytes());
                    match order {
                        Comparison::Less => o == Ordering::Less,
                        _ => o != Ordering::Greater,
                    }
                }
                _ => {
                    let event = match order {
                        Comparison::Less => "__lt",
                        _ => "__le",
                    };
                    let handler = metamethod(ctx, a, b, event);
                    if handler.is_nil() {
                        return Err(located(ctx, at, compare_error(a, b)));
                    }
                    return call_metamethod(ctx, &mut stack, COMPARE_ADAPTER, handler);
                }
            },
        };
        stack.replace(ctx, answer);
        Ok(CallbackReturn::Return)
    })
}

#[derive(Clone, Copy)]
enum Arith {
    FloorDiv,
    Mod,
    ShiftLeft,
    ShiftRight,
    BitAnd,
    BitOr,
    BitXor,
    /// Unary `~` (the second operand is ignored).
    BitNot,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// Unary `-` (the second operand is ignored).
    Unm,
}

impl Arith {
    fn event(self) -> &'static str {
        match self {
            Arith::FloorDiv => "__idiv",
            Arith::Mod => "__mod",
            Arith::ShiftLeft => "__shl",
            Arith::ShiftRight => "__shr",
            Arith::BitAnd => "__band",
            Arith::BitOr => "__bor",
            Arith::BitXor => "__bxor",
            Arith::BitNot => "__bnot",
            Arith::Add => "__add",
            Arith::Sub => "__sub",
            Arith::Mul => "__mul",
            Arith::Div => "__div",
            Arith::Pow => "__pow",
            Arith::Unm => "__unm",
        }
    }

    fn bitwise(self) -> bool {
        matches!(
            self,
            Arith::ShiftLeft
                | Arith::ShiftRight
                | Arith::BitAnd
                | Arith::BitOr
                | Arith::BitXor
                | Arith::BitNot
        )
    }

    fn unary(self) -> bool {
        matches!(self, Arith::BitNot | Arith::Unm)
    }

    fn apply(self, x: Num, y: Num) -> Result<Num, ArithError> {
        match self {
            Arith::FloorDiv => floor_div(x, y),
            Arith::Mod => modulo(x, y),
            Arith::ShiftLeft => Ok(Num::Int(shift_left(bitwise_int(x)?, bitwise_int(y)?))),
            Arith::ShiftRight => Ok(Num::Int(shift_right(bitwise_int(x)?, bitwise_int(y)?))),
            Arith::BitAnd => Ok(Num::Int(bitwise_int(x)? & bitwise_int(y)?)),
            Arith::BitOr => Ok(Num::Int(bitwise_int(x)? | bitwise_int(y)?)),
            Arith::BitXor => Ok(Num::Int(bitwise_int(x)? ^ bitwise_int(y)?)),
            Arith::BitNot => Ok(Num::Int(!bitwise_int(x)?)),
            Arith::Add => Ok(int_or_float(x, y, i64::wrapping_add, |a, b| a + b)),
            Arith::Sub => Ok(int_or_float(x, y, i64::wrapping_sub, |a, b| a - b)),
            Arith::Mul => Ok(int_or_float(x, y, i64::wrapping_mul, |a, b| a * b)),
            Arith::Div => Ok(Num::Float(to_float(x) / to_float(y))),
            Arith::Pow => Ok(Num::Float(to_float(x).powf(to_float(y)))),
            Arith::Unm => Ok(match x {
                Num::Int(i) => Num::Int(i.wrapping_neg()),
                Num::Float(f) => Num::Float(-f),
            }),
        }
    }
}

fn arithmetic<'gc>(ctx: Context<'gc>, op: Arith) -> Callback<'gc> {
    Callback::from_fn(&ctx, move |ctx, _, mut stack| {
        // Unary `~x` comes as `(x, position)`; Lua passes the operand twice
        // to a `__bnot` metamethod.
        // Then, when the front end saw string constants, Lua's
        // description of each operand (`constant '3.5'`, or nil).
        let (a, b, at, described) = if op.unary() {
            (
                stack.get(0),
                stack.get(0),
                stack.get(1),
                [stack.get(2), stack.get(2)],
            )
        } else {
            (
                stack.get(0),
                stack.get(1),
                stack.get(2),
                [stack.get(3), stack.get(4)],
            )
        };
        stack.replace(ctx, (a, b));
        // Strings convert for arithmetic (Lua's string metamethods), not
        // for bitwise operators.
        let convert = if op.bitwise() { num } else { arith_num };
        match (convert(a), convert(b)) {
            (Some(x), Some(y)) => {
                let result = op.apply(x, y).map_err(|e| located(ctx, at, e.message()))?;
                stack.replace(ctx, value(result));
                Ok(CallbackReturn::Return)
            }
            (x, _) => {
                let handler = metamethod(ctx, a, b, op.event());
                if !handler.is_nil() {
                    return call_metamethod(ctx, &mut stack, ARITH_ADAPTER, handler);
                }
                let is_string = |v: Value<'_>| matches!(v, Value::String(_));
                if !op.bitwise() && (is_string(a) || is_string(b)) {
                    // Lua's string metamethods say it this way.
                    return Err(located(
                        ctx,
                        at,
                        format!(
                            "attempt to {} a '{}' with a '{}'",
                            &op.event()[2..],
                            a.type_name(),
                            b.type_name()
                        ),
                    ));
                }
                let (bad, described) = if x.is_none() {
                    (a, described[0])
                } else {
                    (b, described[1])
                };
                let what = if op.bitwise() {
                    "perform bitwise operation on"
                } else {
                    "perform arithmetic on"
                };
                let info = match described {
                    Value::String(d) => format!(" ({})", d.to_str_lossy()),
                    _ => String::new(),
                };
                Err(located(
                    ctx,
                    at,
                    format!("attempt to {what} a {} value{info}", bad.type_name()),
                ))
            }
        }
    })
}

fn for_prep_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let at = stack.get(3);
        let mut parts = [Num::Int(0); 3];
        for (i, what) in ["initial value", "limit", "step"].into_iter().enumerate() {
            // Strings that are numerals count, as in Lua's forprep.
            parts[i] = arith_num(stack.get(i)).ok_or_else(|| {
                let got = stack.get(i).type_name();
                located(
                    ctx,
                    at,
                    format!("bad 'for' {what} (number expected, got {got})"),
                )
            })?;
        }
        let (i, l, s, shift) =
            for_prep(parts[0], parts[1], parts[2]).map_err(|e| located(ctx, at, e))?;
        stack.replace(ctx, (value(i), value(l), value(s), value(shift)));
        Ok(CallbackReturn::Return)
    })
}

/// The helpers the front end's rewrites call, by global name.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), piccolo::Error<'gc>> {
    use super::front::helpers as h;
    let g = ctx.globals();
    g.set(ctx, h::LT, comparison(ctx, Comparison::Less))?;
    g.set(ctx, h::LE, comparison(ctx, Comparison::LessEqual))?;
    g.set(ctx, h::EQ, comparison(ctx, Comparison::Equal))?;
    g.set(ctx, h::IDIV, arithmetic(ctx, Arith::FloorDiv))?;
    g.set(ctx, h::MOD, arithmetic(ctx, Arith::Mod))?;
    g.set(ctx, h::SHL, arithmetic(ctx, Arith::ShiftLeft))?;
    g.set(ctx, h::SHR, arithmetic(ctx, Arith::ShiftRight))?;
    g.set(ctx, h::BAND, arithmetic(ctx, Arith::BitAnd))?;
    g.set(ctx, h::BOR, arithmetic(ctx, Arith::BitOr))?;
    g.set(ctx, h::BXOR, arithmetic(ctx, Arith::BitXor))?;
    g.set(ctx, h::BNOT, arithmetic(ctx, Arith::BitNot))?;
    g.set(ctx, h::ADD, arithmetic(ctx, Arith::Add))?;
    g.set(ctx, h::SUB, arithmetic(ctx, Arith::Sub))?;
    g.set(ctx, h::MUL, arithmetic(ctx, Arith::Mul))?;
    g.set(ctx, h::DIV, arithmetic(ctx, Arith::Div))?;
    g.set(ctx, h::POW, arithmetic(ctx, Arith::Pow))?;
    g.set(ctx, h::UNM, arithmetic(ctx, Arith::Unm))?;
    g.set(ctx, h::FOR_PREP, for_prep_callback(ctx))?;
    g.set(ctx, h::SETINDEX, super::setindex::callback(ctx))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Num::{Float as F, Int as I};

    #[test]
    fn comparisons_are_exact_and_nan_is_unordered() {
        assert_eq!(num_cmp(F(f64::NAN), I(1)), None);
        assert_eq!(num_cmp(I(1), F(f64::NAN)), None);
        assert_eq!(num_cmp(I(i64::MAX), F(TWO_63)), Some(Ordering::Less));
        assert_eq!(num_cmp(I(i64::MIN), F(-TWO_63)), Some(Ordering::Equal));
        assert_eq!(num_cmp(I(1), F(1.5)), Some(Ordering::Less));
        assert_eq!(num_cmp(I(2), F(1.5)), Some(Ordering::Greater));
        assert_eq!(num_cmp(F(-1.5), I(-1)), Some(Ordering::Less));
        assert_eq!(
            num_cmp(I(1 << 53 | 1), F((1u64 << 53) as f64)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            num_cmp(F(f64::INFINITY), I(i64::MAX)),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn floor_division_and_modulo_follow_lua() {
        assert_eq!(floor_div(I(-7), I(2)), Ok(I(-4)));
        assert_eq!(floor_div(I(7), I(-2)), Ok(I(-4)));
        assert_eq!(floor_div(I(i64::MIN), I(-1)), Ok(I(i64::MIN)));
        assert_eq!(floor_div(I(1), I(0)), Err(ArithError::DivideByZero));
        assert_eq!(floor_div(F(7.0), I(2)), Ok(F(3.0)));
        assert_eq!(modulo(I(-7), I(2)), Ok(I(1)));
        assert_eq!(modulo(I(7), I(-2)), Ok(I(-1)));
        assert_eq!(modulo(I(i64::MIN), I(-1)), Ok(I(0)));
        assert_eq!(modulo(I(1), F(f64::INFINITY)), Ok(F(1.0)));
        assert_eq!(modulo(I(-1), F(f64::INFINITY)), Ok(F(f64::INFINITY)));
        assert_eq!(modulo(F(5.5), I(-2)), Ok(F(-0.5)));
        assert_eq!(modulo(I(-1), F(f64::NEG_INFINITY)), Ok(F(-1.0)));
        assert_eq!(modulo(I(-4), F(-5.0)), Ok(F(-4.0)));
    }

    #[test]
    fn shifts_are_logical_and_saturate() {
        assert_eq!(shift_left(1, 64), 0);
        assert_eq!(shift_left(1, -1), 0);
        assert_eq!(shift_right(1, -1), 2);
        assert_eq!(shift_right(-1, 1), i64::MAX);
        assert_eq!(shift_left(1, 63), i64::MIN);
        assert_eq!(shift_right(1, i64::MIN), 0);
    }

    #[test]
    fn numeric_for_keeps_integers_and_refuses_step_zero() {
        assert_eq!(for_prep(I(1), F(3.5), I(1)), Ok((I(1), I(3), I(1), I(0))));
        assert_eq!(for_prep(I(3), F(0.5), I(-1)), Ok((I(3), I(1), I(-1), I(0))));
        assert_eq!(for_prep(I(1), I(10), I(4)), Ok((I(1), I(9), I(4), I(0))));
        assert_eq!(for_prep(I(1), F(f64::NAN), I(1)).unwrap().1, I(0));
        assert!(for_prep(I(1), I(10), I(0)).is_err());
        assert!(for_prep(F(1.0), I(10), F(0.0)).is_err());
        assert_eq!(
            for_prep(I(1), I(2), F(0.5)),
            Ok((F(1.0), F(2.0), F(0.5), I(0)))
        );
        // Up to the integer limits: shifted so the VM's last sum fits, the
        // variable shifted back.
        assert_eq!(
            for_prep(I(i64::MAX - 1), I(i64::MAX), I(1)),
            Ok((I(i64::MAX - 2), I(i64::MAX - 1), I(1), I(-1)))
        );
        assert_eq!(
            for_prep(I(i64::MIN + 1), I(i64::MIN), I(-1)),
            Ok((I(i64::MIN + 2), I(i64::MIN + 1), I(-1), I(1)))
        );
        assert_eq!(
            for_prep(I(i64::MAX - 1), F(1e300), I(-1)),
            Ok((I(1), I(0), I(1), I(0)))
        );
    }
}
