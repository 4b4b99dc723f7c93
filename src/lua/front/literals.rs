//! Literals piccolo reads differently from Lua, written out as Lua reads
//! them: wrapped hexadecimal integers, hexadecimal floats, decimal integers
//! past 64 bits, and `\u{...}` escapes beyond U+10FFFF or of surrogates.

use super::*;

/// The numeral as text piccolo reads to the same value, when the original
/// text would be read differently (wrapped hexadecimal integers, hexadecimal
/// floats, decimal integers past 64 bits).
pub(super) fn numeral_for_piccolo(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let value = numeral::read(text)?;
    let plain_decimal_int = !lower.starts_with("0x") && !lower.contains(['.', 'e']);
    match value {
        Num::Int(i) if lower.starts_with("0x") => {
            let fits = u64::from_str_radix(&lower[2..], 16).is_ok_and(|u| u <= i64::MAX as u64);
            (!fits).then(|| {
                if i == i64::MIN {
                    "(-9223372036854775807 - 1)".to_string()
                } else {
                    format!("({i})")
                }
            })
        }
        Num::Float(f) if lower.starts_with("0x") || plain_decimal_int => Some(float_literal(f)),
        _ => None,
    }
}

/// A quoted string literal whose `\u{XXX}` escapes go past U+10FFFF or
/// name a surrogate (Lua accepts both, up to 2^31, in the original, longer
/// UTF-8 forms; piccolo refuses them), with those escapes written as
/// `\ddd` bytes. `None` when there is nothing to change.
pub(super) fn wide_unicode_escapes(token: &Token) -> Option<TokenType> {
    let TokenType::StringLiteral {
        literal,
        multi_line_depth: 0,
        quote_type,
    } = token.token_type()
    else {
        return None;
    };
    if !literal.contains("\\u{") {
        return None;
    }
    let text = literal.as_str();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let wide = escape
            .strip_prefix("\\u{")
            .and_then(|e| e.split_once('}'))
            .and_then(|(hex, _)| Some((hex.len(), u32::from_str_radix(hex, 16).ok()?)))
            .filter(|(_, code)| {
                (0x110000..=0x7FFF_FFFF).contains(code) || (0xD800..=0xDFFF).contains(code)
            });
        match wide {
            Some((digits, code)) => {
                for byte in extended_utf8(code) {
                    out.push_str(&format!("\\{byte:03}"));
                }
                changed = true;
                rest = &escape[4 + digits..];
            }
            None => {
                // Copy the backslash and the character it escapes as is.
                let len = escape[1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&escape[..1 + len]);
                rest = &escape[1 + len..];
            }
        }
    }
    out.push_str(rest);
    changed.then(|| TokenType::StringLiteral {
        literal: out.into(),
        multi_line_depth: 0,
        quote_type: *quote_type,
    })
}

/// Lua's `luaO_utf8esc`: a code point up to 2^31 in (extended) UTF-8.
pub(super) fn extended_utf8(mut code: u32) -> Vec<u8> {
    if code < 0x80 {
        return vec![code as u8];
    }
    let mut tail = Vec::new();
    let mut first_max = 0x3f;
    while code > first_max {
        tail.push(0x80 | (code & 0x3f) as u8);
        code >>= 6;
        first_max >>= 1;
    }
    let lead = ((!first_max << 1) as u8) | code as u8;
    let mut bytes = vec![lead];
    bytes.extend(tail.into_iter().rev());
    bytes
}

pub(super) fn float_literal(f: f64) -> String {
    if f.is_infinite() {
        if f > 0.0 {
            "(1e999)".into()
        } else {
            "(-1e999)".into()
        }
    } else {
        format!("{f:e}")
    }
}
