//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` over
//! our pattern matcher. Matcher steps are charged as VM fuel one for one,
//! so a costly pattern counts against the call's CPU budget.

use super::pattern::{Capture, Match, PatternError, find_at, is_plain, match_at};
use crate::lua::args::{arg, bytes_arg, error, expected};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// Matcher steps one string-function call may take; well under the default
/// CPU budget of a whole handler call, so the pattern is named in the error.
const STEP_BUDGET: u64 = 2_000_000;

fn pattern_error<'gc>(ctx: Context<'gc>, e: PatternError) -> Error<'gc> {
    match e {
        PatternError::Malformed(m) => error(ctx, m),
        PatternError::TooExpensive => error(
            ctx,
            format!(
                "pattern too expensive: more than {STEP_BUDGET} matching steps (simplify the pattern)"
            ),
        ),
    }
}

/// Lua's `init` argument as a 0-based byte offset; `None` past the end.
fn start_offset(init: Value<'_>, len: usize) -> Option<usize> {
    let init = match init {
        Value::Integer(i) => i,
        Value::Number(x) => x as i64,
        _ => 1,
    };
    let len = len as i64;
    let pos = if init > 0 {
        init
    } else if init == 0 || init.unsigned_abs() > len as u64 {
        1
    } else {
        len + init + 1
    };
    (pos <= len + 1).then(|| (pos - 1) as usize)
}

fn capture_value<'gc>(ctx: Context<'gc>, src: &[u8], c: Capture) -> Result<Value<'gc>, Error<'gc>> {
    match c {
        Capture::Span(a, b) => Ok(Value::String(piccolo::String::from_slice(&ctx, &src[a..b]))),
        Capture::Position(p) => Ok(Value::Integer(p as i64 + 1)),
        Capture::Unfinished => Err(error(ctx, "unfinished capture".into())),
    }
}

fn captures<'gc>(ctx: Context<'gc>, src: &[u8], m: &Match) -> Result<Vec<Value<'gc>>, Error<'gc>> {
    (0..m.count())
        .map(|i| capture_value(ctx, src, m.get(i)))
        .collect()
}

pub(in crate::lua) fn install<'gc>(
    ctx: Context<'gc>,
    string: Table<'gc>,
) -> Result<(), Error<'gc>> {
    string.set(
        ctx,
        "find",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let src = bytes_arg(ctx, arg(&stack, 1), 1, "string.find")?;
            let pat = bytes_arg(ctx, arg(&stack, 2), 2, "string.find")?;
            let Some(init) = start_offset(stack.get(2), src.len()) else {
                stack.replace(ctx, Value::Nil);
                return Ok(CallbackReturn::Return);
            };
            let plain = stack.get(3).to_bool() || is_plain(&pat);
            let values: Vec<Value> = if plain {
                exec.fuel().consume((src.len() / 16) as i32);
                match find_plain(&src[init..], &pat) {
                    Some(at) => vec![
                        Value::Integer((init + at) as i64 + 1),
                        Value::Integer((init + at + pat.len()) as i64),
                    ],
                    None => vec![Value::Nil],
                }
            } else {
                match search(ctx, &mut exec, &src, &pat, init)? {
                    Some(m) => {
                        let mut v = vec![
                            Value::Integer(m.start as i64 + 1),
                            Value::Integer(m.end as i64),
                        ];
                        if !m.captures.is_empty() {
                            v.extend(captures(ctx, &src, &m)?);
                        }
                        v
                    }
                    None => vec![Value::Nil],
                }
            };
            stack.replace(ctx, piccolo::Variadic(values));
            Ok(CallbackReturn::Return)
        }),
    )?;
    string.set(
        ctx,
        "match",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let src = bytes_arg(ctx, arg(&stack, 1), 1, "string.match")?;
            let pat = bytes_arg(ctx, arg(&stack, 2), 2, "string.match")?;
            let Some(init) = start_offset(stack.get(2), src.len()) else {
                stack.replace(ctx, Value::Nil);
                return Ok(CallbackReturn::Return);
            };
            let values = match search(ctx, &mut exec, &src, &pat, init)? {
                Some(m) => captures(ctx, &src, &m)?,
                None => vec![Value::Nil],
            };
            stack.replace(ctx, piccolo::Variadic(values));
            Ok(CallbackReturn::Return)
        }),
    )?;
    string.set(
        ctx,
        "gmatch",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let src = bytes_arg(ctx, arg(&stack, 1), 1, "string.gmatch")?;
            let pat = bytes_arg(ctx, arg(&stack, 2), 2, "string.gmatch")?;
            let mut pos = start_offset(stack.get(2), src.len()).unwrap_or(src.len() + 1);
            // All matches up front (bounded by the step budget); the
            // iterator hands them out one by one.
            let results = Table::new(&ctx);
            let mut budget = STEP_BUDGET;
            let mut last_end = None;
            let mut n = 0i64;
            while pos <= src.len() {
                match match_at(&src, &pat, pos, &mut budget).map_err(|e| pattern_error(ctx, e))? {
                    Some(m) if Some(m.end) != last_end => {
                        let row = Table::new(&ctx);
                        for (i, v) in captures(ctx, &src, &m)?.into_iter().enumerate() {
                            row.set(ctx, i as i64 + 1, v)?;
                        }
                        n += 1;
                        results.set(ctx, n, row)?;
                        pos = m.end;
                        last_end = Some(m.end);
                    }
                    _ => pos += 1,
                }
            }
            charge(&mut exec, STEP_BUDGET - budget);
            let state = Table::new(&ctx);
            state.set(ctx, "next", 1)?;
            state.set(ctx, "rows", results)?;
            let iterator = Callback::from_fn_with(&ctx, state, |state, ctx, _, mut stack| {
                let i = match state.get(ctx, "next") {
                    Value::Integer(i) => i,
                    _ => 1,
                };
                let row = match state.get(ctx, "rows") {
                    Value::Table(rows) => rows.get(ctx, i),
                    _ => Value::Nil,
                };
                let Value::Table(row) = row else {
                    stack.replace(ctx, Value::Nil);
                    return Ok(CallbackReturn::Return);
                };
                state.set(ctx, "next", i + 1)?;
                let values: Vec<Value> = (1..=row.length()).map(|k| row.get(ctx, k)).collect();
                stack.replace(ctx, piccolo::Variadic(values));
                Ok(CallbackReturn::Return)
            });
            stack.replace(ctx, iterator);
            Ok(CallbackReturn::Return)
        }),
    )?;
    string.set(
        ctx,
        "gsub",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let src = bytes_arg(ctx, arg(&stack, 1), 1, "string.gsub")?;
            let pat = bytes_arg(ctx, arg(&stack, 2), 2, "string.gsub")?;
            let repl = stack.get(2);
            let max = match stack.get(3) {
                Value::Integer(i) => i,
                Value::Number(x) => x as i64,
                _ => i64::MAX,
            };
            match repl {
                Value::String(_) | Value::Integer(_) | Value::Number(_) | Value::Table(_) => {}
                Value::Function(_) => {
                    return Err(error(ctx, "string.gsub: a function as replacement is not supported yet (use a string or a table)".into()));
                }
                other => {
                    let got = (!other.is_nil()).then_some(other);
                    return Err(expected(ctx, 3, "string.gsub", "string/function/table", got));
                }
            }
            let repl_text = match repl {
                Value::Table(_) => None,
                other => Some(bytes_arg(ctx, Some(other), 3, "string.gsub")?),
            };
            let mut budget = STEP_BUDGET;
            let matches = gsub_matches(&src, &pat, max, &mut budget).map_err(|e| pattern_error(ctx, e))?;
            let mut out = Vec::with_capacity(src.len());
            let mut last = 0;
            // As Lua's: with nothing replaced, the subject itself comes back.
            let mut changed = false;
            for m in &matches {
                out.extend_from_slice(&src[last..m.start]);
                let mut replaced = true;
                match &repl_text {
                    Some(text) => expand(ctx, text, &src, m, &mut out)?,
                    None => {
                        let Value::Table(t) = repl else { unreachable!() };
                        let key = capture_value(ctx, &src, m.get(0))?;
                        match t.get_value(key) {
                            Value::Nil | Value::Boolean(false) => {
                                replaced = false;
                                out.extend_from_slice(&src[m.start..m.end]);
                            }
                            Value::String(s) => out.extend_from_slice(s.as_bytes()),
                            Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
                            Value::Number(x) => out.extend_from_slice(crate::lua::env::format_number(x).as_bytes()),
                            other => {
                                return Err(error(ctx, format!("invalid replacement value (a {})", other.type_name())));
                            }
                        }
                    }
                }
                changed |= replaced;
                last = m.end;
                if out.len() > super::MAX_BUILT_STRING {
                    return Err(error(ctx, "string.gsub: result too large".into()));
                }
            }
            out.extend_from_slice(&src[last..]);
            let count = matches.len() as i64;
            charge(&mut exec, (STEP_BUDGET - budget) + out.len() as u64 / 16);
            // (A number subject comes back as the string it was read as.)
            let result = match stack.get(0) {
                subject @ Value::String(_) if !changed => subject,
                _ if !changed => Value::String(piccolo::String::from_slice(&ctx, src)),
                _ => Value::String(piccolo::String::from_slice(&ctx, out)),
            };
            stack.replace(ctx, (result, Value::Integer(count)));
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(())
}

/// The matches `gsub` replaces, in order: after a match the search goes on
/// at its end, an empty match right where the previous one ended does not
/// count, and `^` allows one attempt at the start.
fn gsub_matches(
    src: &[u8],
    pat: &[u8],
    max: i64,
    budget: &mut u64,
) -> Result<Vec<Match>, PatternError> {
    let anchored = pat.first() == Some(&b'^');
    let body = if anchored { &pat[1..] } else { pat };
    let mut found = Vec::new();
    let mut pos = 0usize;
    let mut last_end = None;
    while (found.len() as i64) < max {
        match match_at(src, body, pos, budget)? {
            Some(m) if Some(m.end) != last_end => {
                pos = m.end;
                last_end = Some(m.end);
                found.push(m);
            }
            _ if pos < src.len() => pos += 1,
            _ => break,
        }
        if anchored {
            break;
        }
    }
    Ok(found)
}

/// `__gsub_matches(s, pattern, n)` for the Lua half of `string.gsub` with
/// a function replacement: rows `{start, end, captures..., n = count}`
/// (1-based, inclusive).
pub(in crate::lua) fn gsub_matches_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
        let src = bytes_arg(ctx, arg(&stack, 1), 1, "string.gsub")?;
        let pat = bytes_arg(ctx, arg(&stack, 2), 2, "string.gsub")?;
        let max = match stack.get(2) {
            Value::Integer(i) => i,
            Value::Number(x) => x as i64,
            _ => i64::MAX,
        };
        let mut budget = STEP_BUDGET;
        let matches =
            gsub_matches(&src, &pat, max, &mut budget).map_err(|e| pattern_error(ctx, e))?;
        charge(&mut exec, STEP_BUDGET - budget);
        let rows = Table::new(&ctx);
        for (i, m) in matches.iter().enumerate() {
            let row = Table::new(&ctx);
            row.set(ctx, 1, m.start as i64 + 1)?;
            row.set(ctx, 2, m.end as i64)?;
            let caps = captures(ctx, &src, m)?;
            row.set(ctx, "n", caps.len() as i64 + 2)?;
            for (k, v) in caps.into_iter().enumerate() {
                row.set(ctx, k as i64 + 3, v)?;
            }
            rows.set(ctx, i as i64 + 1, row)?;
        }
        stack.replace(ctx, rows);
        Ok(CallbackReturn::Return)
    })
}

/// Appends a replacement string, expanding `%0`..`%9` and `%%`.
fn expand<'gc>(
    ctx: Context<'gc>,
    text: &[u8],
    src: &[u8],
    m: &Match,
    out: &mut Vec<u8>,
) -> Result<(), Error<'gc>> {
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let Some(&d) = text.get(i) else {
            return Err(error(
                ctx,
                "invalid use of '%' in replacement string".into(),
            ));
        };
        i += 1;
        match d {
            b'%' => out.push(b'%'),
            b'0' => out.extend_from_slice(&src[m.start..m.end]),
            b'1'..=b'9' => {
                let k = (d - b'1') as usize;
                if k >= m.count() {
                    return Err(error(ctx, format!("invalid capture index %{}", k + 1)));
                }
                match m.get(k) {
                    Capture::Span(a, b) => out.extend_from_slice(&src[a..b]),
                    Capture::Position(p) => out.extend_from_slice((p + 1).to_string().as_bytes()),
                    Capture::Unfinished => return Err(error(ctx, "unfinished capture".into())),
                }
            }
            _ => {
                return Err(error(
                    ctx,
                    "invalid use of '%' in replacement string".into(),
                ));
            }
        }
    }
    Ok(())
}

/// `find_at` within the step budget, charged to the call's fuel.
fn search<'gc>(
    ctx: Context<'gc>,
    exec: &mut piccolo::Execution<'gc, '_>,
    src: &[u8],
    pat: &[u8],
    init: usize,
) -> Result<Option<Match>, Error<'gc>> {
    let mut budget = STEP_BUDGET;
    let found = find_at(src, pat, init, &mut budget);
    charge(exec, STEP_BUDGET - budget);
    found.map_err(|e| pattern_error(ctx, e))
}

/// Charges matcher work to the call's fuel, one unit per step.
fn charge(exec: &mut piccolo::Execution<'_, '_>, steps: u64) {
    exec.fuel().consume(steps.min(i32::MAX as u64) as i32);
}

fn find_plain(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
