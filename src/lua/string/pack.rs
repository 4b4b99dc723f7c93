//! `string.pack`, `string.unpack` and `string.packsize`, with Lua 5.4's
//! format language (`lstrlib.c`'s rules: native sizes of a 64-bit Linux
//! machine, `!` alignment, `<`/`>`/`=` endianness) and its error messages.
//! The work of a call is bounded by its format and data, and charged as
//! fuel.

use crate::lua::args::{arg, bad_argument, bytes_arg, error, expected, int};
use piccolo::{Callback, CallbackReturn, Context, Error, Table, Value};

/// Largest integer size a format may name (`i16`).
const MAX_INT_SIZE: usize = 16;
/// Default maximum alignment (`!` without a number).
const NATIVE_ALIGN: usize = 8;
/// Longest packed result or format total (Lua's limit is the memory).
const MAX_RESULT: usize = 1 << 30;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int {
        signed: bool,
    },
    Float,
    Double,
    /// `s[n]`: a string preceded by its length in `n` bytes.
    Sized,
    /// `z`: a zero-terminated string.
    Zero,
    /// `cn`: a fixed-size string.
    Fixed,
    /// `x`: one byte of padding.
    Padding,
    /// `Xop`: align to `op`'s size.
    PadAlign,
    /// ` `, `<`, `>`, `=`, `!`: no data.
    Nop,
}

struct Format<'a> {
    rest: &'a [u8],
    little: bool,
    max_align: usize,
}

struct Item {
    kind: Kind,
    size: usize,
    /// Padding bytes before the item.
    pad: usize,
}

fn digits(rest: &mut &[u8]) -> Option<usize> {
    if !rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // As lstrlib.c's getnum: digits are read while the number stays far
    // from overflowing; the ones left over are read as options (and are
    // then an "invalid format option").
    let mut n: usize = 0;
    while let Some(d) = rest.first().filter(|b| b.is_ascii_digit()) {
        n = n * 10 + usize::from(d - b'0');
        *rest = &rest[1..];
        if n > (i32::MAX as usize - 9) / 10 {
            break;
        }
    }
    Some(n)
}

fn int_size(rest: &mut &[u8], default: usize) -> Result<usize, String> {
    match digits(rest) {
        None => Ok(default),
        Some(n) if (1..=MAX_INT_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "integral size ({n}) out of limits [1,{MAX_INT_SIZE}]"
        )),
    }
}

/// Why a format string cannot be used.
#[derive(Debug)]
enum FormatError {
    /// `X` not followed by an option with a size to align to: Lua calls
    /// it a bad argument #1, unlike the other format errors.
    BadAlignOption,
    Other(String),
}

impl<'a> Format<'a> {
    fn new(fmt: &'a [u8]) -> Self {
        Format {
            rest: fmt,
            little: true,
            max_align: 1,
        }
    }

    /// One option and its size, without alignment.
    fn option(&mut self) -> Result<(Kind, usize), String> {
        let (&c, tail) = self.rest.split_first().expect("caller checks for the end");
        self.rest = tail;
        let int = |signed| Kind::Int { signed };
        Ok(match c {
            b'b' => (int(true), 1),
            b'B' => (int(false), 1),
            b'h' => (int(true), 2),
            b'H' => (int(false), 2),
            b'l' | b'j' => (int(true), 8),
            b'L' | b'J' | b'T' => (int(false), 8),
            b'f' => (Kind::Float, 4),
            b'd' | b'n' => (Kind::Double, 8),
            b'i' => (int(true), int_size(&mut self.rest, 4)?),
            b'I' => (int(false), int_size(&mut self.rest, 4)?),
            b's' => (Kind::Sized, int_size(&mut self.rest, 8)?),
            b'c' => match digits(&mut self.rest) {
                Some(n) => (Kind::Fixed, n),
                None => return Err("missing size for format option 'c'".into()),
            },
            b'z' => (Kind::Zero, 0),
            b'x' => (Kind::Padding, 1),
            b'X' => (Kind::PadAlign, 0),
            b' ' => (Kind::Nop, 0),
            b'<' | b'=' => {
                self.little = true;
                (Kind::Nop, 0)
            }
            b'>' => {
                self.little = false;
                (Kind::Nop, 0)
            }
            b'!' => {
                self.max_align = int_size(&mut self.rest, NATIVE_ALIGN)?;
                (Kind::Nop, 0)
            }
            other => return Err(format!("invalid format option '{}'", other as char)),
        })
    }

    /// [`Format::next`] with its error as `f` raises it: Lua calls a bad
    /// `X` a bad argument #1, the other format errors plain errors.
    fn next_in<'gc>(
        &mut self,
        ctx: Context<'gc>,
        total: usize,
        f: &str,
    ) -> Result<Option<Item>, Error<'gc>> {
        self.next(total).map_err(|e| match e {
            FormatError::BadAlignOption => {
                bad_argument(ctx, 1, f, "invalid next option for option 'X'")
            }
            FormatError::Other(e) => error(ctx, e),
        })
    }

    /// The next item with its padding for a result `total` bytes long so
    /// far; `None` at the end of the format.
    fn next(&mut self, total: usize) -> Result<Option<Item>, FormatError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (kind, size) = self.option().map_err(FormatError::Other)?;
        let mut align = size;
        if kind == Kind::PadAlign {
            if self.rest.is_empty() {
                return Err(FormatError::BadAlignOption);
            }
            let (k, s) = self.option().map_err(FormatError::Other)?;
            if matches!(k, Kind::Zero | Kind::Nop | Kind::Fixed) || s == 0 {
                return Err(FormatError::BadAlignOption);
            }
            align = s;
        }
        let mut pad = 0;
        if align > 1
            && matches!(
                kind,
                Kind::Int { .. } | Kind::Float | Kind::Double | Kind::PadAlign
            )
        {
            let align = align.min(self.max_align);
            if !align.is_power_of_two() {
                return Err(FormatError::Other(
                    "format asks for alignment not power of 2".into(),
                ));
            }
            pad = (align - (total & (align - 1))) & (align - 1);
        }
        let size = if kind == Kind::PadAlign { 0 } else { size };
        Ok(Some(Item { kind, size, pad }))
    }
}

fn pack_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = vec![if v < 0 { 0xFF } else { 0 }; size];
    let raw = v.to_le_bytes();
    for (i, b) in raw.iter().enumerate().take(size) {
        bytes[i] = *b;
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn unpack_int(data: &[u8], signed: bool, little: bool) -> Result<i64, String> {
    let mut bytes = data.to_vec();
    if !little {
        bytes.reverse();
    }
    let size = bytes.len();
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(8) {
        v |= (*b as u64) << (8 * i);
    }
    if size < 8 {
        if signed {
            let shift = 64 - 8 * size as u32;
            v = (((v << shift) as i64) >> shift) as u64;
        }
    } else if size > 8 {
        let fill = if signed && (v as i64) < 0 { 0xFF } else { 0 };
        if bytes[8..].iter().any(|&b| b != fill) {
            return Err(format!("{size}-byte integer does not fit into Lua Integer"));
        }
    }
    Ok(v as i64)
}

fn number(v: Value<'_>) -> Option<f64> {
    crate::lua::ops::arith_num(v).map(crate::lua::ops::Num::as_f64)
}

fn pack<'gc>(ctx: Context<'gc>, stack: &piccolo::Stack<'gc, '_>) -> Result<Vec<u8>, Error<'gc>> {
    let fmt = format_arg(ctx, stack, "string.pack")?;
    let mut format = Format::new(&fmt);
    let mut out = Vec::new();
    let mut n = 1;
    while let Some(item) = format.next_in(ctx, out.len(), "string.pack")? {
        if out.len() + item.pad + item.size > MAX_RESULT {
            return Err(error(ctx, "format result too large".into()));
        }
        out.resize(out.len() + item.pad, 0);
        let mut next = || {
            n += 1;
            (n, arg(stack, n))
        };
        match item.kind {
            Kind::Int { signed } => {
                let (k, v) = next();
                let Some(i) = v.and_then(int) else {
                    return Err(match v {
                        Some(Value::Number(_)) => bad_argument(
                            ctx,
                            k,
                            "string.pack",
                            "number has no integer representation",
                        ),
                        other => expected(ctx, k, "string.pack", "number", other),
                    });
                };
                if item.size < 8 {
                    let lim = 1i64 << (item.size * 8 - 1);
                    let ok = if signed {
                        -lim <= i && i < lim
                    } else {
                        (i as u64) < (1u64 << (item.size * 8))
                    };
                    if !ok {
                        return Err(bad_argument(ctx, k, "string.pack", "integer overflow"));
                    }
                }
                pack_int(&mut out, i, item.size, format.little);
            }
            Kind::Float | Kind::Double => {
                let (k, v) = next();
                let Some(f) = v.and_then(number) else {
                    return Err(expected(ctx, k, "string.pack", "number", v));
                };
                let bytes = if item.kind == Kind::Float {
                    (f as f32).to_le_bytes().to_vec()
                } else {
                    f.to_le_bytes().to_vec()
                };
                out.extend(if format.little {
                    bytes
                } else {
                    bytes.into_iter().rev().collect()
                });
            }
            Kind::Fixed | Kind::Sized | Kind::Zero => {
                let (k, v) = next();
                let Some(s) = v.and_then(crate::lua::args::to_bytes) else {
                    return Err(expected(ctx, k, "string.pack", "string", v));
                };
                match item.kind {
                    Kind::Fixed => {
                        if s.len() > item.size {
                            return Err(bad_argument(
                                ctx,
                                k,
                                "string.pack",
                                "string longer than given size",
                            ));
                        }
                        out.extend_from_slice(&s);
                        out.resize(out.len() + item.size - s.len(), 0);
                    }
                    Kind::Sized => {
                        if item.size < 8 && s.len() as u64 >= 1u64 << (item.size * 8) {
                            return Err(bad_argument(
                                ctx,
                                k,
                                "string.pack",
                                "string length does not fit in given size",
                            ));
                        }
                        pack_int(&mut out, s.len() as i64, item.size, format.little);
                        out.extend_from_slice(&s);
                    }
                    _ => {
                        if s.contains(&0) {
                            return Err(bad_argument(
                                ctx,
                                k,
                                "string.pack",
                                "string contains zeros",
                            ));
                        }
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                }
                if out.len() > MAX_RESULT {
                    return Err(error(ctx, "format result too large".into()));
                }
            }
            Kind::Padding => out.push(0),
            Kind::PadAlign | Kind::Nop => {}
        }
    }
    Ok(out)
}

fn format_arg<'gc>(
    ctx: Context<'gc>,
    stack: &piccolo::Stack<'gc, '_>,
    f: &str,
) -> Result<Vec<u8>, Error<'gc>> {
    bytes_arg(ctx, arg(stack, 1), 1, f)
}

pub(in crate::lua) fn install<'gc>(
    ctx: Context<'gc>,
    string: Table<'gc>,
) -> Result<(), Error<'gc>> {
    string.set(
        ctx,
        "pack",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let out = pack(ctx, &stack)?;
            exec.fuel().consume((out.len() / 64) as i32);
            stack.replace(ctx, Value::String(piccolo::String::from_slice(&ctx, out)));
            Ok(CallbackReturn::Return)
        }),
    )?;
    string.set(
        ctx,
        "packsize",
        Callback::from_fn(&ctx, |ctx, _, mut stack| {
            let fmt = format_arg(ctx, &stack, "string.packsize")?;
            let mut format = Format::new(&fmt);
            let mut total: usize = 0;
            while let Some(item) = format.next_in(ctx, total, "string.packsize")? {
                if matches!(item.kind, Kind::Sized | Kind::Zero) {
                    return Err(bad_argument(
                        ctx,
                        1,
                        "string.packsize",
                        "variable-length format",
                    ));
                }
                total += item.pad + item.size;
                if total > i32::MAX as usize {
                    return Err(bad_argument(
                        ctx,
                        1,
                        "string.packsize",
                        "format result too large",
                    ));
                }
            }
            stack.replace(ctx, total as i64);
            Ok(CallbackReturn::Return)
        }),
    )?;
    string.set(
        ctx,
        "unpack",
        Callback::from_fn(&ctx, |ctx, mut exec, mut stack| {
            let fmt = format_arg(ctx, &stack, "string.unpack")?;
            let data = bytes_arg(ctx, arg(&stack, 2), 2, "string.unpack")?;
            let len = data.len() as i64;
            let pos = match arg(&stack, 3) {
                None | Some(Value::Nil) => 1,
                Some(v) => {
                    int(v).ok_or_else(|| expected(ctx, 3, "string.unpack", "number", Some(v)))?
                }
            };
            let pos = if pos < 0 {
                if pos.unsigned_abs() > len as u64 {
                    0
                } else {
                    len + pos + 1
                }
            } else {
                pos
            };
            if pos < 1 || pos - 1 > len {
                return Err(bad_argument(
                    ctx,
                    3,
                    "string.unpack",
                    "initial position out of string",
                ));
            }
            let mut at = (pos - 1) as usize;
            let mut format = Format::new(&fmt);
            let mut values: Vec<Value<'gc>> = Vec::new();
            let short = |ctx| bad_argument(ctx, 2, "string.unpack", "data string too short");
            while let Some(item) = format.next_in(ctx, at, "string.unpack")? {
                if item.pad + item.size > data.len() - at.min(data.len()) {
                    return Err(short(ctx));
                }
                at += item.pad;
                let field = &data[at..at + item.size];
                match item.kind {
                    Kind::Int { signed } => {
                        let v =
                            unpack_int(field, signed, format.little).map_err(|e| error(ctx, e))?;
                        values.push(Value::Integer(v));
                    }
                    Kind::Float | Kind::Double => {
                        let mut b = field.to_vec();
                        if !format.little {
                            b.reverse();
                        }
                        let f = if item.kind == Kind::Float {
                            f32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as f64
                        } else {
                            f64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
                        };
                        values.push(Value::Number(f));
                    }
                    Kind::Fixed => {
                        values.push(Value::String(piccolo::String::from_slice(&ctx, field)))
                    }
                    Kind::Sized => {
                        let n =
                            unpack_int(field, false, format.little).map_err(|e| error(ctx, e))?;
                        let start = at + item.size;
                        if n < 0 || n as u64 > (data.len() - start) as u64 {
                            return Err(short(ctx));
                        }
                        let end = start + n as usize;
                        values.push(Value::String(piccolo::String::from_slice(
                            &ctx,
                            &data[start..end],
                        )));
                        at = end - item.size;
                    }
                    Kind::Zero => {
                        let Some(z) = data[at..].iter().position(|&b| b == 0) else {
                            return Err(bad_argument(
                                ctx,
                                2,
                                "string.unpack",
                                "unfinished string for format 'z'",
                            ));
                        };
                        values.push(Value::String(piccolo::String::from_slice(
                            &ctx,
                            &data[at..at + z],
                        )));
                        at += z + 1;
                    }
                    Kind::Padding | Kind::PadAlign | Kind::Nop => {}
                }
                at += item.size;
            }
            exec.fuel().consume((values.len() + at / 64) as i32);
            values.push(Value::Integer(at as i64 + 1));
            stack.replace(ctx, piccolo::Variadic(values));
            Ok(CallbackReturn::Return)
        }),
    )?;
    Ok(())
}
