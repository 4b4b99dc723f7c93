//! `string.format` with C's (and so PUC Lua 5.4's) conversions, flags,
//! widths and precisions, as a pure function over already-read arguments.

use crate::lua::env::format_number;

/// One argument after the format string.
#[derive(Clone, Debug)]
pub enum Arg<'a> {
    Int(i64),
    Num(f64),
    Str(&'a [u8]),
    /// Any other value, as `tostring` shows it.
    Other(String),
    /// Past the last argument.
    Absent,
}

struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

impl Spec {
    /// A specification already checked by [`well_formed`].
    fn read(text: &[u8]) -> Spec {
        let flags = text.iter().take_while(|c| b"-+#0 ".contains(c)).count();
        let has = |f: u8| text[..flags].contains(&f);
        let rest = std::str::from_utf8(&text[flags..]).unwrap_or("");
        let (width, precision) = match rest.split_once('.') {
            Some((w, p)) => (w, Some(p.parse().unwrap_or(0))),
            None => (rest, None),
        };
        Spec {
            minus: has(b'-'),
            plus: has(b'+'),
            space: has(b' '),
            alt: has(b'#'),
            zero: has(b'0'),
            width: width.parse().unwrap_or(0),
            precision,
        }
    }
}

fn bad(n: usize, what: &str) -> String {
    format!("bad argument #{n} to 'string.format' ({what})")
}

fn number(arg: &Arg<'_>, n: usize) -> Result<Arg<'static>, String> {
    match arg {
        Arg::Int(i) => Ok(Arg::Int(*i)),
        Arg::Num(x) => Ok(Arg::Num(*x)),
        Arg::Str(s) => {
            let text = String::from_utf8_lossy(s);
            let t = text.trim();
            if let Ok(i) = t.parse::<i64>() {
                Ok(Arg::Int(i))
            } else if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i64::from_str_radix(h, 16)
                    .map(Arg::Int)
                    .map_err(|_| bad(n, "number expected, got string"))
            } else {
                t.parse::<f64>()
                    .map(Arg::Num)
                    .map_err(|_| bad(n, "number expected, got string"))
            }
        }
        Arg::Other(_) => Err(bad(n, "number expected, got a non-number")),
        Arg::Absent => Err(bad(n, "no value")),
    }
}

fn integer(arg: &Arg<'_>, n: usize) -> Result<i64, String> {
    match number(arg, n)? {
        Arg::Int(i) => Ok(i),
        Arg::Num(x)
            if x.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&x) =>
        {
            Ok(x as i64)
        }
        _ => Err(bad(n, "number has no integer representation")),
    }
}

fn float(arg: &Arg<'_>, n: usize) -> Result<f64, String> {
    match number(arg, n)? {
        Arg::Int(i) => Ok(i as f64),
        Arg::Num(x) => Ok(x),
        _ => unreachable!("number() returns numbers"),
    }
}

/// Formats like Lua's `string.format(fmt, ...)`.
pub fn format(fmt: &[u8], args: &[Arg<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut next = 0usize;
    let mut i = 0usize;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push(b'%');
            i += 1;
            continue;
        }
        let arg = args.get(next).cloned().unwrap_or(Arg::Absent);
        let n = next + 2; // argument #1 is the format string
        next += 1;
        // As lstrlib, a missing argument is the first error.
        if matches!(arg, Arg::Absent) {
            return Err(bad(n, "no value"));
        }
        // As lstrlib: the specification spans flags, digits and dots; the
        // conversion then says which of them it accepts.
        let start = i;
        i += fmt[i..]
            .iter()
            .take_while(|c| b"-+#0 123456789.".contains(c))
            .count();
        let text = &fmt[start..fmt.len().min(i + 1)];
        if text.len() >= 22 {
            return Err("invalid format (too long)".into());
        }
        let Some(&conv) = fmt.get(i) else {
            return Err(format!(
                "invalid conversion '%{}' to 'format'",
                String::from_utf8_lossy(text)
            ));
        };
        let spec_text = &fmt[start..i];
        i += 1;
        if conv == b'q' && !spec_text.is_empty() {
            return Err("specifier '%q' cannot have modifiers".into());
        }
        // (A letter `accepted` does not know falls to the conversion
        // match's last arm.)
        if accepted(conv)
            .is_some_and(|(flags, precision)| !well_formed(spec_text, flags, precision))
        {
            return Err(format!(
                "invalid conversion specification: '%{}'",
                String::from_utf8_lossy(text)
            ));
        }
        let spec = Spec::read(spec_text);
        let piece: Vec<u8> = match conv {
            b'd' | b'i' => signed_int(&spec, integer(&arg, n)?),
            b'c' => pad(&spec, vec![integer(&arg, n)? as u8], false),
            b'x' | b'X' | b'o' | b'u' => unsigned_int(&spec, integer(&arg, n)? as u64, conv),
            b'e' | b'E' | b'f' | b'g' | b'G' => real(&spec, float(&arg, n)?, conv),
            b'a' | b'A' => {
                let x = float(&arg, n)?;
                let negative = x.is_sign_negative() && !x.is_nan();
                let text = format!(
                    "{}{}",
                    sign(&spec, negative),
                    hex_magnitude(x, spec.precision, spec.alt)
                );
                let text = if conv == b'A' {
                    text.to_uppercase()
                } else {
                    text
                };
                pad(&spec, text.into_bytes(), true)
            }
            b'q' => quoted(&arg, n)?,
            b'p' => match &arg {
                // The address that identifies the value (as `tostring`
                // shows it); "(null)" for values that have none.
                Arg::Str(s) => pad(&spec, format!("{:p}", s.as_ptr()).into_bytes(), false),
                Arg::Other(text) => match text.split_once(": ") {
                    Some((_, address)) => pad(&spec, address.as_bytes().to_vec(), false),
                    None => pad(&spec, b"(null)".to_vec(), false),
                },
                Arg::Absent => return Err(bad(n, "no value")),
                Arg::Int(_) | Arg::Num(_) => pad(&spec, b"(null)".to_vec(), false),
            },
            b's' => {
                let mut bytes = match &arg {
                    Arg::Str(s) => s.to_vec(),
                    Arg::Int(v) => v.to_string().into_bytes(),
                    Arg::Num(x) => format_number(*x).into_bytes(),
                    Arg::Other(s) => s.clone().into_bytes(),
                    Arg::Absent => return Err(bad(n, "no value")),
                };
                if !spec_text.is_empty() && bytes.contains(&0) {
                    return Err(bad(n, "string contains zeros"));
                }
                if let Some(p) = spec.precision {
                    bytes.truncate(p);
                }
                pad(&spec, bytes, false)
            }
            _ => {
                return Err(format!(
                    "invalid conversion '%{}' to 'format'",
                    String::from_utf8_lossy(text)
                ));
            }
        };
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// The flags a conversion accepts and whether it takes a precision
/// (lstrlib's table); `None` for a letter `format` does not know.
fn accepted(conv: u8) -> Option<(&'static [u8], bool)> {
    Some(match conv {
        b'c' | b'p' => (b"-", false),
        b'd' | b'i' => (b"-+0 ", true),
        b'u' => (b"-0", true),
        b'o' | b'x' | b'X' => (b"-#0", true),
        b'a' | b'A' | b'f' | b'e' | b'E' | b'g' | b'G' => (b"-+#0 ", true),
        b's' => (b"-", true),
        b'q' => (b"", false),
        _ => return None,
    })
}

/// Whether `spec` (between `%` and the conversion letter) is accepted
/// flags, then a width of at most two digits not starting with 0, then
/// (where allowed) a precision of at most two digits.
fn well_formed(spec: &[u8], flags: &[u8], precision: bool) -> bool {
    let mut i = spec.iter().take_while(|c| flags.contains(c)).count();
    let two_digits = |i: &mut usize| {
        for _ in 0..2 {
            if spec.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        }
    };
    if spec.get(i) != Some(&b'0') {
        two_digits(&mut i);
        if precision && spec.get(i) == Some(&b'.') {
            i += 1;
            two_digits(&mut i);
        }
    }
    i == spec.len()
}

/// Pads to the width: spaces, or zeros after any sign/prefix when `0` is set.
fn pad(spec: &Spec, body: Vec<u8>, numeric: bool) -> Vec<u8> {
    if body.len() >= spec.width {
        return body;
    }
    let fill = spec.width - body.len();
    if spec.minus {
        let mut v = body;
        v.extend(std::iter::repeat_n(b' ', fill));
        v
    } else if spec.zero && numeric && !not_finite(&body) {
        let signs = body
            .iter()
            .take_while(|b| matches!(b, b'-' | b'+' | b' '))
            .count();
        let rest = &body[signs..];
        let prefix_len = signs
            + if rest.starts_with(b"0x") || rest.starts_with(b"0X") {
                2
            } else {
                0
            };
        let prefix_len = prefix_len.min(body.len());
        let mut v = body[..prefix_len].to_vec();
        v.extend(std::iter::repeat_n(b'0', fill));
        v.extend_from_slice(&body[prefix_len..]);
        v
    } else {
        let mut v: Vec<u8> = std::iter::repeat_n(b' ', fill).collect();
        v.extend(body);
        v
    }
}

/// `inf` or `nan` (after any sign), which C pads with spaces even with `0`.
fn not_finite(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !matches!(b, b'-' | b'+' | b' '))
        .is_some_and(|b| matches!(b.to_ascii_lowercase(), b'i' | b'n'))
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn signed_int(spec: &Spec, v: i64) -> Vec<u8> {
    let mut digits = v.unsigned_abs().to_string();
    if let Some(p) = spec.precision {
        if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
        if p == 0 && v == 0 {
            digits.clear();
        }
    }
    let body = format!("{}{digits}", sign(spec, v < 0));
    // With a precision, C ignores the 0 flag.
    let zero_ok = spec.precision.is_none();
    pad(
        &Spec {
            zero: spec.zero && zero_ok,
            ..copy(spec)
        },
        body.into_bytes(),
        true,
    )
}

fn unsigned_int(spec: &Spec, v: u64, conv: u8) -> Vec<u8> {
    let mut digits = match conv {
        b'x' => format!("{v:x}"),
        b'X' => format!("{v:X}"),
        b'u' => v.to_string(),
        _ => format!("{v:o}"),
    };
    if let Some(p) = spec.precision {
        if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
        if p == 0 && v == 0 {
            digits.clear();
        }
    }
    if spec.alt && v != 0 {
        match conv {
            b'x' => digits = format!("0x{digits}"),
            b'X' => digits = format!("0X{digits}"),
            _ if !digits.starts_with('0') => digits = format!("0{digits}"),
            _ => {}
        }
    }
    let zero_ok = spec.precision.is_none();
    pad(
        &Spec {
            zero: spec.zero && zero_ok,
            ..copy(spec)
        },
        digits.into_bytes(),
        true,
    )
}

fn copy(s: &Spec) -> Spec {
    Spec {
        minus: s.minus,
        plus: s.plus,
        space: s.space,
        alt: s.alt,
        zero: s.zero,
        width: s.width,
        precision: s.precision,
    }
}

/// `%e`: mantissa, then `e`, sign and at least two exponent digits.
fn exp_form(x: f64, precision: usize) -> String {
    let text = format!("{x:.precision$e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

fn real(spec: &Spec, x: f64, conv: u8) -> Vec<u8> {
    let upper = conv.is_ascii_uppercase();
    let negative = x.is_sign_negative();
    let a = x.abs();
    let body = if !x.is_finite() {
        let t = if x.is_nan() { "nan" } else { "inf" };
        let t = if upper {
            t.to_uppercase()
        } else {
            t.to_string()
        };
        return pad(
            &Spec {
                zero: false,
                ..copy(spec)
            },
            format!("{}{t}", sign(spec, negative)).into_bytes(),
            true,
        );
    } else {
        let p = spec.precision.unwrap_or(6);
        match conv {
            b'f' | b'F' => {
                let t = format!("{a:.p$}");
                if spec.alt && p == 0 { t + "." } else { t }
            }
            b'e' | b'E' => exp_form(a, p),
            _ => {
                let p = if p == 0 { 1 } else { p };
                // The exponent %e would show with p significant digits.
                let e_text = exp_form(a, p - 1);
                let exp: i32 = e_text
                    .split_once('e')
                    .map_or(0, |(_, e)| e.parse().unwrap_or(0));
                let t = if exp < -4 || exp >= p as i32 {
                    e_text
                } else {
                    let decimals = (p as i32 - 1 - exp).max(0) as usize;
                    format!("{a:.decimals$}")
                };
                if spec.alt {
                    t
                } else if let Some((m, e)) = t.split_once('e') {
                    format!("{}e{e}", trim_zeros(m))
                } else {
                    trim_zeros(&t).to_string()
                }
            }
        }
    };
    let body = if upper { body.to_uppercase() } else { body };
    pad(
        spec,
        format!("{}{body}", sign(spec, negative)).into_bytes(),
        true,
    )
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// C's `%a`.
pub fn hex_float(x: f64) -> String {
    let negative = x.is_sign_negative() && !x.is_nan();
    let body = hex_magnitude(x, None, false);
    if negative { format!("-{body}") } else { body }
}

/// `|x|` as C's `%a` writes it: the exact digits without a precision,
/// else rounded (to nearest, ties to even) or zero-filled to `precision`
/// hex digits, the point kept with `#`. As glibc, a carry shows in the
/// leading digit (`%.0a` of 1.5 is `0x2p+0`) and subnormals lead with 0.
fn hex_magnitude(x: f64, precision: Option<usize>, alt: bool) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return "inf".into();
    }
    let bits = x.abs().to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mantissa = bits & ((1u64 << 52) - 1);
    let (mut lead, exp) = match (raw_exp, mantissa) {
        (0, 0) => (0, 0),
        (0, _) => (0, -1022),
        _ => (1, raw_exp - 1023),
    };
    let digits = match precision {
        None => {
            let hex = format!("{mantissa:013x}");
            hex.trim_end_matches('0').to_string()
        }
        Some(p) if p >= 13 => format!("{mantissa:013x}{}", "0".repeat(p - 13)),
        Some(p) => {
            let shift = 52 - 4 * p as u32;
            let kept = mantissa >> shift;
            let rest = mantissa & ((1u64 << shift) - 1);
            let half = 1u64 << (shift - 1);
            let odd = if p == 0 { lead & 1 == 1 } else { kept & 1 == 1 };
            mantissa = kept;
            if rest > half || (rest == half && odd) {
                mantissa += 1;
                if mantissa >> (4 * p) != 0 {
                    mantissa = 0;
                    lead += 1;
                }
            }
            if p == 0 {
                String::new()
            } else {
                format!("{mantissa:0width$x}", width = p)
            }
        }
    };
    let dot = if digits.is_empty() && !alt { "" } else { "." };
    let exp_sign = if exp < 0 { '-' } else { '+' };
    format!("0x{lead}{dot}{digits}p{exp_sign}{}", exp.abs())
}

fn quoted(arg: &Arg<'_>, n: usize) -> Result<Vec<u8>, String> {
    Ok(match arg {
        Arg::Str(s) => {
            let mut out = vec![b'"'];
            for (i, &b) in s.iter().enumerate() {
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\\n"),
                    0 | 1..=31 | 127 => {
                        let next_is_digit = s.get(i + 1).is_some_and(|d| d.is_ascii_digit());
                        let text = if next_is_digit {
                            format!("\\{b:03}")
                        } else {
                            format!("\\{b}")
                        };
                        out.extend_from_slice(text.as_bytes());
                    }
                    _ => out.push(b),
                }
            }
            out.push(b'"');
            out
        }
        Arg::Int(i) if *i == i64::MIN => b"0x8000000000000000".to_vec(),
        Arg::Int(i) => i.to_string().into_bytes(),
        Arg::Num(x) if x.is_nan() => b"(0/0)".to_vec(),
        Arg::Num(x) if x.is_infinite() => {
            if *x > 0.0 {
                b"1e9999".to_vec()
            } else {
                b"-1e9999".to_vec()
            }
        }
        Arg::Num(x) => hex_float(*x).into_bytes(),
        Arg::Other(s) if s == "nil" || s == "true" || s == "false" => s.clone().into_bytes(),
        Arg::Other(_) => return Err(bad(n, "value has no literal form")),
        Arg::Absent => return Err(bad(n, "no value")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Arg]) -> String {
        String::from_utf8(format(fmt.as_bytes(), args).unwrap()).unwrap()
    }

    #[test]
    fn matches_c_printf() {
        assert_eq!(
            f(
                "%5.2f|%-5d|%05d|%+d|% d",
                &[
                    Arg::Num(3.138),
                    Arg::Int(42),
                    Arg::Int(42),
                    Arg::Int(42),
                    Arg::Int(42)
                ]
            ),
            " 3.14|42   |00042|+42| 42"
        );
        assert_eq!(
            f(
                "%g %g %g %G %g",
                &[
                    Arg::Num(0.0001),
                    Arg::Num(100000.0),
                    Arg::Num(1000000.0),
                    Arg::Num(1e20),
                    Arg::Num(0.5)
                ]
            ),
            "0.0001 100000 1e+06 1E+20 0.5"
        );
        assert_eq!(
            f(
                "%e %.0f %.0f %.10g",
                &[
                    Arg::Num(12345.678),
                    Arg::Num(0.5),
                    Arg::Num(1.5),
                    Arg::Num(1.0 / 3.0)
                ]
            ),
            "1.234568e+04 0 2 0.3333333333"
        );
        assert_eq!(
            f("%a %a %a", &[Arg::Num(1.0), Arg::Num(0.5), Arg::Num(3.0)]),
            "0x1p+0 0x1p-1 0x1.8p+1"
        );
        assert_eq!(
            f(
                "%#x %#o %x %.3d",
                &[Arg::Int(255), Arg::Int(8), Arg::Int(-1), Arg::Int(7)]
            ),
            "0xff 010 ffffffffffffffff 007"
        );
    }

    #[test]
    fn errors_read_like_lua() {
        let e = format(b"%d", &[Arg::Num(3.5)]).unwrap_err();
        assert_eq!(
            e,
            "bad argument #2 to 'string.format' (number has no integer representation)"
        );
        assert_eq!(
            format(b"%y", &[Arg::Int(1)]).unwrap_err(),
            "invalid conversion '%y' to 'format'"
        );
        assert_eq!(
            format(b"%d", &[]).unwrap_err(),
            "bad argument #2 to 'string.format' (no value)"
        );
    }
}
