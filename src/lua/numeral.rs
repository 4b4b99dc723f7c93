//! Lua's numerals, read one way everywhere: the front end's literals,
//! `tonumber`, and the conversion of strings in arithmetic. Hexadecimal
//! integers wrap around, decimal integers too large for 64 bits become
//! floats, hexadecimal floats have a binary exponent, and text around the
//! number may only be C whitespace.

use super::ops::Num;

/// A numeral as written in source (no sign, no surrounding space).
pub(super) fn read(text: &str) -> Option<Num> {
    let lower = text.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return read_hex(hex);
    }
    // Only what C's strtod takes in a decimal numeral (Rust would also take
    // "inf", "nan" and "infinity").
    if lower.is_empty()
        || !lower
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        || !lower.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    if !lower.contains(['.', 'e']) {
        if let Ok(i) = lower.parse::<i64>() {
            return Some(Num::Int(i));
        }
    }
    lower.parse::<f64>().ok().map(Num::Float)
}

fn read_hex(hex: &str) -> Option<Num> {
    if !hex.contains(['.', 'p']) {
        if hex.is_empty() {
            return None;
        }
        let mut value: u64 = 0;
        for c in hex.chars() {
            value = value.wrapping_mul(16).wrapping_add(c.to_digit(16)? as u64);
        }
        return Some(Num::Int(value as i64));
    }
    let (mantissa, exponent) = match hex.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (hex, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    // As lua_strx2number: at most 30 significant digits count, the others
    // only move the exponent (a thousand-digit mantissa must not overflow
    // before its exponent brings it back).
    const SIGNIFICANT: usize = 30;
    let (mut value, mut digits, mut exponent) = (0f64, 0usize, i64::from(exponent));
    // Takes one digit into the mantissa; false when it is past the
    // significant ones (and only its place counts).
    let mut take = |d: u32| {
        if digits >= SIGNIFICANT {
            return false;
        }
        value = value * 16.0 + f64::from(d);
        if value != 0.0 {
            digits += 1;
        }
        true
    };
    for c in whole.chars() {
        if !take(c.to_digit(16)?) {
            exponent += 4;
        }
    }
    for c in fraction.chars() {
        if take(c.to_digit(16)?) {
            exponent -= 4;
        }
    }
    Some(Num::Float(scale_by_power_of_two(value, exponent)))
}

/// `value * 2^exponent` without overflowing or underflowing on the way.
fn scale_by_power_of_two(mut value: f64, mut exponent: i64) -> f64 {
    while exponent > 1000 && value.is_finite() && value != 0.0 {
        value *= 2f64.powi(1000);
        exponent -= 1000;
    }
    while exponent < -1000 && value != 0.0 {
        value *= 2f64.powi(-1000);
        exponent += 1000;
    }
    value * 2f64.powi(exponent as i32)
}

/// A string converted to a number as Lua does (`tonumber(s)`, `"10" + 1`):
/// C whitespace around it and one sign allowed.
pub(super) fn from_string(text: &str) -> Option<Num> {
    let t = text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // A second sign is not a numeral ("--1", "+-1").
    if digits.starts_with(['+', '-']) {
        return None;
    }
    // Lua reads a decimal integer with its sign: -2^63 is an integer,
    // though 2^63 is not.
    if negative && digits.bytes().all(|b| b.is_ascii_digit()) {
        let significant = digits.trim_start_matches('0');
        if significant == "9223372036854775808" {
            return Some(Num::Int(i64::MIN));
        }
    }
    Some(match read(digits)? {
        Num::Int(i) if negative => Num::Int(i.wrapping_neg()),
        Num::Float(f) if negative => Num::Float(-f),
        n => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Num::{Float as F, Int as I};

    #[test]
    fn numerals_read_as_lua_reads_them() {
        assert_eq!(read("0xFFFFFFFFFFFFFFFF"), Some(I(-1)));
        assert_eq!(read("0x1p4"), Some(F(16.0)));
        assert_eq!(read("0x.8"), Some(F(0.5)));
        let long = format!("0xe03{}p-4000", "0".repeat(1000));
        assert_eq!(read(&long), Some(F(3587.0)));
        assert_eq!(read("9223372036854775808"), Some(F(9223372036854775808.0)));
        assert_eq!(read("1e2"), Some(F(100.0)));
        assert_eq!(read("inf"), None);
        assert_eq!(read("0x"), None);
        assert_eq!(read("."), None);
    }

    #[test]
    fn strings_convert_with_space_and_one_sign() {
        assert_eq!(from_string("  10  "), Some(I(10)));
        assert_eq!(from_string("-0x10"), Some(I(-16)));
        assert_eq!(from_string("+0x2"), Some(I(2)));
        assert_eq!(from_string("-0xffffffffffffffff"), Some(I(1)));
        assert_eq!(from_string("-9223372036854775808"), Some(I(i64::MIN)));
        assert_eq!(from_string("-009223372036854775808"), Some(I(i64::MIN)));
        assert_eq!(
            from_string("9223372036854775808"),
            Some(F(9223372036854775808.0))
        );
        assert_eq!(from_string(" 0x1p4 "), Some(F(16.0)));
        assert_eq!(from_string("\t-2.5e1\n"), Some(F(-25.0)));
        assert_eq!(from_string("--1"), None);
        assert_eq!(from_string("1 2"), None);
        assert_eq!(from_string("nan"), None);
        assert_eq!(from_string(""), None);
    }
}
