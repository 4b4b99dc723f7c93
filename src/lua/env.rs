//! The global environment of a rule file: piccolo's core library (base,
//! coroutine, math, string, table), the rule API's constants, and our
//! replacements for what must not reach the host.

use super::args::error;
use piccolo::{Callback, CallbackReturn, Context, Table, Value};
use std::cell::RefCell;

thread_local! {
    /// Lines printed by the code running on this thread, collected for the
    /// caller to route (collectd's log in the plugin, stdout in the CLI).
    static PRINTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Takes the lines printed since the last call.
pub(super) fn take_printed() -> Vec<String> {
    PRINTED.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Lua's `tostring` for the values `print` shows.
pub(super) fn display(value: Value<'_>) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => format_number(n),
        Value::String(s) => s.to_str_lossy().into_owned(),
        // piccolo writes `<table 0x...>`; Lua writes `table: 0x...`.
        other => {
            let text = other.to_string();
            match text
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .and_then(|t| t.split_once(' '))
            {
                Some((_, address)) => format!("{}: {address}", other.type_name()),
                None => text,
            }
        }
    }
}

/// [`display`], with the `__name` of a table's metatable in place of
/// `table` (as Lua's `luaL_tolstring` shows it).
pub(super) fn display_in<'gc>(ctx: Context<'gc>, value: Value<'gc>) -> String {
    let text = display(value);
    if let Value::Table(t) = value {
        if let Some(Value::String(name)) = t.metatable().map(|m| m.get(ctx, "__name")) {
            if let Some((_, address)) = text.split_once(": ") {
                return format!("{}: {address}", name.to_str_lossy());
            }
        }
    }
    text
}

/// Whether `value` is a table whose metatable has `__tostring`.
pub(super) fn has_tostring<'gc>(ctx: Context<'gc>, value: Value<'gc>) -> bool {
    match value {
        Value::Table(t) => t
            .metatable()
            .is_some_and(|m| !m.get(ctx, "__tostring").is_nil()),
        _ => false,
    }
}

/// A tail call of the prelude's Lua function `name` with the same
/// arguments: for work that needs Lua calls (metamethods, `__tostring`),
/// which a Rust callback cannot make in the middle of its own work.
pub(super) fn prelude_call<'gc>(
    ctx: Context<'gc>,
    name: &'static str,
) -> Option<CallbackReturn<'gc>> {
    match ctx.get_global(name) {
        Value::Function(function) => Some(CallbackReturn::Call {
            function,
            then: None,
        }),
        _ => None,
    }
}

/// Floats as Lua 5.4 prints them: `50.0`, `1e+20`, `inf`, `nan`.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // %.14g, then ".0" when the result looks like an integer.
    let text = format_g14(n);
    if text.contains(['.', 'e', 'n', 'i']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// C's `%.14g`.
fn format_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exponent = n.abs().log10().floor() as i32;
    if !(-4..14).contains(&exponent) {
        let mantissa = format!("{:.13e}", n);
        let (digits, exp) = mantissa.split_once('e').unwrap_or((&mantissa, "0"));
        let digits = trim_fraction(digits);
        let exp: i32 = exp.parse().unwrap_or(0);
        format!(
            "{digits}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let decimals = (13 - exponent).max(0) as usize;
        trim_fraction(&format!("{n:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Installs the rule environment into a fresh VM's globals.
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), piccolo::Error<'gc>> {
    piccolo::stdlib::load_base(ctx);
    piccolo::stdlib::load_coroutine(ctx);
    super::coroutine::install(ctx)?;
    piccolo::stdlib::load_math(ctx);
    piccolo::stdlib::load_string(ctx);
    piccolo::stdlib::load_table(ctx);
    let g = ctx.globals();
    g.set(ctx, "_G", g)?;
    g.set(ctx, "_VERSION", "Lua 5.4")?;
    g.set(ctx, "NOTIF_FAILURE", 1)?;
    g.set(ctx, "NOTIF_WARNING", 2)?;
    g.set(ctx, "NOTIF_OKAY", 4)?;
    // Closed world: nothing that loads code from files or inspects the VM.
    for name in [
        "dofile", "loadfile", "require", "load", "debug", "io", "package",
    ] {
        g.set(ctx, name, Value::Nil)?;
    }
    g.set(
        ctx,
        "print",
        Callback::from_fn(&ctx, |ctx, _, stack| {
            // A table's `__tostring` needs a Lua call: the prelude converts
            // such arguments and comes back here.
            if (0..stack.len()).any(|i| has_tostring(ctx, stack.get(i))) {
                if let Some(call) = prelude_call(ctx, "__print_tostring") {
                    return Ok(call);
                }
            }
            let line = (0..stack.len())
                .map(|i| display_in(ctx, stack.get(i)))
                .collect::<Vec<_>>()
                .join("\t");
            PRINTED.with(|p| p.borrow_mut().push(line));
            Ok(CallbackReturn::Return)
        }),
    )?;
    g.set(
        ctx,
        "tonumber",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            if stack.is_empty() {
                return Err(error(
                    ctx,
                    "bad argument #1 to 'tonumber' (value expected)".into(),
                ));
            }
            let value = stack.get(0);
            let result = match value {
                Value::Integer(_) | Value::Number(_) => value,
                Value::String(s) => super::numeral::from_string(&s.to_str_lossy())
                    .map_or(Value::Nil, super::ops::value),
                _ => Value::Nil,
            };
            stack.replace(ctx, result);
            Ok(CallbackReturn::Return)
        }),
    )?;
    g.set(ctx, "os", super::os::table(ctx)?)?;
    g.set(ctx, super::front::METHOD_HELPER, method_callback(ctx))?;
    g.set(ctx, super::front::INDEX_HELPER, index_callback(ctx))?;
    g.set(ctx, super::front::CONCAT_HELPER, concat_callback(ctx))?;
    g.set(ctx, super::front::ERROR_HELPER, error_callback(ctx))?;
    g.set(
        ctx,
        super::front::ASSERT_HELPER,
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            // `__assert(position, v [, message, ...])`: Lua's assert, with
            // the position its default message carries.
            let position = stack.pop_front();
            if stack.is_empty() {
                return Err(error(
                    ctx,
                    "bad argument #1 to 'assert' (value expected)".into(),
                ));
            }
            match stack.get(0) {
                // A message string gets the position too, as `error` gives it.
                Value::Nil | Value::Boolean(false) if stack.len() >= 2 => match stack.get(1) {
                    Value::String(m) => {
                        let text = format!("{} {}", display(position), m.to_str_lossy());
                        Err(Value::String(ctx.intern(text.as_bytes())).into())
                    }
                    other => Err(other.into()),
                },
                Value::Nil | Value::Boolean(false) => {
                    let text = format!("{} assertion failed!", display(position));
                    Err(Value::String(ctx.intern(text.as_bytes())).into())
                }
                _ => Ok(CallbackReturn::Return),
            }
        }),
    )?;
    g.set(
        ctx,
        super::front::FIRST_HELPER,
        Callback::from_fn(&ctx, |_, _, mut stack| {
            stack.resize(1);
            Ok(CallbackReturn::Return)
        }),
    )?;
    g.set(
        ctx,
        super::front::VARARGS_FROM_HELPER,
        Callback::from_fn(&ctx, |_, _, mut stack| {
            // `__va_from(n, ...)`: the arguments from the n-th of `...` on
            // (n counts itself, as `select(n, ...)` counts from 1).
            let n = match stack.get(0) {
                Value::Integer(n) => usize::try_from(n).unwrap_or(0),
                _ => 0,
            };
            stack.drain(0..n.min(stack.len()));
            Ok(CallbackReturn::Return)
        }),
    )?;
    g.set(ctx, "tostring", tostring_callback(ctx))?;
    g.set(ctx, "pcall", pcall_callback(ctx))?;
    g.set(ctx, "select", select_callback(ctx))?;
    g.set(ctx, "next", next_callback(ctx))?;
    for name in ["pairs", "ipairs"] {
        let plain = g.get(ctx, name);
        g.set(ctx, name, needs_argument(ctx, name, plain))?;
    }
    super::table::install(ctx)?;
    super::string::install(ctx)?;
    super::base::install(ctx)?;
    super::utf8::install(ctx)?;
    super::ops::install(ctx)?;
    super::math::install(ctx)?;
    Ok(())
}

/// `plain` (piccolo's `pairs`/`ipairs`) behind Lua 5.4's check that an
/// argument was given at all (piccolo iterated over nothing).
fn needs_argument<'gc>(ctx: Context<'gc>, name: &'static str, plain: Value<'gc>) -> Callback<'gc> {
    Callback::from_fn_with(&ctx, plain, move |plain, ctx, _, stack| {
        if stack.is_empty() {
            return Err(super::args::bad_argument(ctx, 1, name, "value expected"));
        }
        Ok(CallbackReturn::Call {
            function: piccolo::meta_ops::call(ctx, *plain)?,
            then: None,
        })
    })
}

/// `__method(obj, name, ...)`: what `obj:name(...)` is rewritten into.
/// Strings find their methods in the `string` table; tables follow
/// `__index` tables. The method is then tail-called with `obj, ...`.
fn method_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let object = stack.get(0);
        let name = stack.get(1);
        let method = match object {
            Value::String(_) => match ctx.get_global("string") {
                Value::Table(string) => string.get_value(name),
                _ => Value::Nil,
            },
            Value::Table(t) => lookup(ctx, t, name)?,
            _ => {
                let message = format!(
                    "attempt to index a {} value (calling method '{}')",
                    object.type_name(),
                    display(name)
                );
                return Err(error(ctx, message));
            }
        };
        if method.is_nil() {
            let message = format!("attempt to call a nil value (method '{}')", display(name));
            return Err(error(ctx, message));
        }
        let function = piccolo::meta_ops::call(ctx, method)?;
        // Drop the name: the method gets `object, args...`.
        stack.drain(1..2);
        Ok(CallbackReturn::Call {
            function,
            then: None,
        })
    })
}

/// `__index_str(obj, name)`: what `obj.name` is rewritten into for the
/// string library's names. A string reads the `string` table (as Lua's
/// string metatable does); anything else is indexed as the VM would.
fn index_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let (object, name, at) = (stack.get(0), stack.get(1), stack.get(2));
        let found = match object {
            Value::String(_) => match ctx.get_global("string") {
                Value::Table(string) => string.get_value(name),
                _ => Value::Nil,
            },
            Value::Table(_) | Value::UserData(_) => {
                match piccolo::meta_ops::index(ctx, object, name)? {
                    piccolo::meta_ops::MetaResult::Value(v) => v,
                    piccolo::meta_ops::MetaResult::Call(call) => {
                        let [table, key] = call.args;
                        stack.replace(ctx, (table, key));
                        return Ok(CallbackReturn::Call {
                            function: call.function,
                            then: None,
                        });
                    }
                }
            }
            other => {
                let message = format!("attempt to index a {} value", other.type_name());
                return Err(super::ops::located(ctx, at, message));
            }
        };
        stack.replace(ctx, found);
        Ok(CallbackReturn::Return)
    })
}

/// `a .. b` (with the `chunk:line:` of the operator for errors): numbers
/// formatted as Lua prints them, `__concat` honoured.
fn concat_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
        let (a, b, at) = (stack.get(0), stack.get(1), stack.get(2));
        let piece = |v: Value<'gc>| -> Option<Vec<u8>> {
            match v {
                Value::String(s) => Some(s.as_bytes().to_vec()),
                Value::Integer(i) => Some(i.to_string().into_bytes()),
                Value::Number(n) => Some(format_number(n).into_bytes()),
                _ => None,
            }
        };
        if let (Some(mut left), Some(right)) = (piece(a), piece(b)) {
            if left.len() + right.len() > super::string::MAX_BUILT_STRING {
                return Err(error(ctx, "string length overflow".into()));
            }
            exec.fuel()
                .consume(((left.len() + right.len()) / 64) as i32);
            left.extend_from_slice(&right);
            stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, left)));
            return Ok(CallbackReturn::Return);
        }
        let handler = [a, b].into_iter().find_map(|v| match v {
            Value::Table(t) => t
                .metatable()
                .map(|m| m.get(ctx, "__concat"))
                .filter(|h| !h.is_nil()),
            _ => None,
        });
        match handler {
            Some(h) => {
                stack.replace(ctx, (a, b));
                Ok(CallbackReturn::Call {
                    function: piccolo::meta_ops::call(ctx, h)?,
                    then: None,
                })
            }
            None => {
                // Then the operands' descriptions, when the front end has them.
                let (bad, described) = if piece(a).is_none() {
                    (a, stack.get(3))
                } else {
                    (b, stack.get(4))
                };
                let info = match described {
                    Value::String(d) => format!(" ({})", d.to_str_lossy()),
                    _ => String::new(),
                };
                let message = format!("attempt to concatenate a {} value{info}", bad.type_name());
                Err(super::ops::located(ctx, at, message))
            }
        }
    })
}

/// `__error(position, message [, level])`: `error` with the call's
/// position added to string messages at level 1 (the default), as PUC Lua
/// does. Other levels would need the caller's position, which the VM does
/// not track: their messages stay as given.
fn error_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, stack| {
        let position = stack.get(0);
        let message = stack.get(1);
        let level = match stack.get(2) {
            Value::Nil => 1,
            Value::Integer(l) => l,
            Value::Number(l) => l as i64,
            _ => 1,
        };
        let value = match (message, level) {
            (Value::String(s), 1) => {
                let text = format!("{} {}", display(position), s.to_str_lossy());
                Value::String(ctx.intern(text.as_bytes()))
            }
            (other, _) => other,
        };
        Err(value.into())
    })
}

/// An error as the value Lua code sees: a Lua value as raised, the VM's
/// own errors (piccolo raises them as Rust values) as their message string.
fn error_value<'gc>(ctx: Context<'gc>, error: piccolo::Error<'gc>) -> Value<'gc> {
    match error {
        piccolo::Error::Lua(e) => e.0,
        piccolo::Error::Runtime(e) => {
            let text = super::vm::runtime_wording(&e);
            Value::String(ctx.intern(text.as_bytes()))
        }
    }
}

/// `next(t, k)` as Lua's, with its words for a key the table does not
/// hold (`pairs` keeps the VM's own).
fn next_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let table = super::args::table_arg(ctx, super::args::arg(&stack, 1), 1, "next")?;
        match table.next(stack.get(1)) {
            piccolo::table::NextValue::Found { key, value } => stack.replace(ctx, (key, value)),
            piccolo::table::NextValue::Last => stack.replace(ctx, Value::Nil),
            piccolo::table::NextValue::NotFound => {
                return Err(error(ctx, "invalid key to 'next'".into()));
            }
        }
        Ok(CallbackReturn::Return)
    })
}

/// `select(n, ...)` as Lua's: the arguments from the n-th (from the end
/// when negative), or their count with `'#'`.
fn select_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let count = stack.len().saturating_sub(1) as i64;
        let first = stack.get(0);
        if matches!(first, Value::String(s) if s.as_bytes() == b"#") {
            stack.replace(ctx, count);
            return Ok(CallbackReturn::Return);
        }
        let n = super::args::int_arg(ctx, super::args::arg(&stack, 1), 1, "select")?;
        let from = match n {
            n if n < 0 && -n <= count => count + n + 1,
            n if n > 0 => n.min(count + 1),
            _ => {
                return Err(super::args::bad_argument(
                    ctx,
                    1,
                    "select",
                    "index out of range",
                ));
            }
        };
        stack.drain(..from as usize);
        Ok(CallbackReturn::Return)
    })
}

/// `pcall` as Lua's: errors come back as Lua values and message strings
/// (piccolo's own hands VM errors over as userdata), and a value that
/// cannot be called is an error caught like any other.
fn pcall_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    use piccolo::{BoxSequence, Execution, Sequence, SequencePoll, Stack};

    #[derive(gc_arena::Collect)]
    #[collect(require_static)]
    struct Protected;

    impl<'gc> Sequence<'gc> for Protected {
        fn poll(
            &mut self,
            _ctx: Context<'gc>,
            _exec: Execution<'gc, '_>,
            mut stack: Stack<'gc, '_>,
        ) -> Result<SequencePoll<'gc>, piccolo::Error<'gc>> {
            stack.push_front(Value::Boolean(true));
            Ok(SequencePoll::Return)
        }

        fn error(
            &mut self,
            ctx: Context<'gc>,
            _exec: Execution<'gc, '_>,
            error: piccolo::Error<'gc>,
            mut stack: Stack<'gc, '_>,
        ) -> Result<SequencePoll<'gc>, piccolo::Error<'gc>> {
            stack.clear();
            stack.extend([Value::Boolean(false), error_value(ctx, error)]);
            Ok(SequencePoll::Return)
        }
    }

    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        if stack.is_empty() {
            return Err(error(
                ctx,
                "bad argument #1 to 'pcall' (value expected)".into(),
            ));
        }
        let target = stack.get(0);
        let function = match piccolo::meta_ops::call(ctx, target) {
            Ok(f) => f,
            Err(_) => {
                let message = format!("attempt to call a {} value", target.type_name());
                stack.replace(ctx, (false, ctx.intern(message.as_bytes())));
                return Ok(CallbackReturn::Return);
            }
        };
        stack.pop_front();
        Ok(CallbackReturn::Call {
            function,
            then: Some(BoxSequence::new(&ctx, Protected)),
        })
    })
}

/// Checks what a `__tostring` metamethod returned, as Lua does.
#[derive(gc_arena::Collect)]
#[collect(require_static)]
struct MustBeString;

impl<'gc> piccolo::Sequence<'gc> for MustBeString {
    fn poll(
        &mut self,
        ctx: Context<'gc>,
        _exec: piccolo::Execution<'gc, '_>,
        mut stack: piccolo::Stack<'gc, '_>,
    ) -> Result<piccolo::SequencePoll<'gc>, piccolo::Error<'gc>> {
        // (A number counts: Lua's lua_isstring takes numbers.)
        if !matches!(
            stack.get(0),
            Value::String(_) | Value::Integer(_) | Value::Number(_)
        ) {
            return Err(error(ctx, "'__tostring' must return a string".into()));
        }
        stack.resize(1);
        Ok(piccolo::SequencePoll::Return)
    }
}

/// `tostring` as Lua 5.4 shows values, `__tostring` honoured.
fn tostring_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let v = stack.get(0);
        if let Value::String(_) = v {
            // The string itself, as Lua's (not an equal copy).
            stack.replace(ctx, v);
            return Ok(CallbackReturn::Return);
        }
        if let Value::Table(t) = v {
            if let Some(h) = t
                .metatable()
                .map(|m| m.get(ctx, "__tostring"))
                .filter(|h| !h.is_nil())
            {
                stack.replace(ctx, v);
                return Ok(CallbackReturn::Call {
                    function: piccolo::meta_ops::call(ctx, h)?,
                    then: Some(piccolo::BoxSequence::new(&ctx, MustBeString)),
                });
            }
        }
        let text = display_in(ctx, v);
        stack.replace(ctx, Value::String(ctx.intern(text.as_bytes())));
        Ok(CallbackReturn::Return)
    })
}

/// `t[name]`, following `__index` tables (not functions) as Lua does.
fn lookup<'gc>(
    ctx: Context<'gc>,
    mut t: Table<'gc>,
    name: Value<'gc>,
) -> Result<Value<'gc>, piccolo::Error<'gc>> {
    for _ in 0..100 {
        let v = t.get_value(name);
        if !v.is_nil() {
            return Ok(v);
        }
        let next = t.metatable().map(|m| m.get(ctx, "__index"));
        match next {
            Some(Value::Table(parent)) => t = parent,
            Some(Value::Nil) | None => return Ok(Value::Nil),
            Some(_) => {
                let message = format!(
                    "method '{}': __index functions are not supported for method calls; use an __index table",
                    display(name)
                );
                return Err(error(ctx, message));
            }
        }
    }
    Err(error(ctx, "'__index' chain too long".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_lua_5_4() {
        for (n, text) in [
            (50.0, "50.0"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e15, "1e+15"),
            (123456789012345.0, "1.2345678901234e+14"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (std::f64::consts::PI, "3.1415926535898"),
        ] {
            assert_eq!(format_number(n), text, "{n}");
        }
    }
}
