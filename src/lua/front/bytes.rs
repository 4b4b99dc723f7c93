//! Rule files that are not UTF-8: Lua takes any bytes in its strings and
//! comments, the front end (and piccolo) only UTF-8 text. Bytes that are
//! not UTF-8 are written as `\xHH` escapes inside quoted strings (the same
//! string to the VM) and dropped from comments; elsewhere, and in long
//! strings (`[[...]]`, where escapes do not apply), they are refused with
//! their line.

use super::FrontError;

/// Where the scanner is.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Code,
    /// In a quoted string opened by this byte.
    Quoted(u8),
    /// In a long string or long comment of this level (`[==[` is 2).
    Long {
        level: usize,
        comment: bool,
    },
    LineComment,
}

/// The level of a long bracket opening at `s[i]` (`[`, `=`s, `[`).
fn long_open(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let level = s[i + 1..].iter().take_while(|&&b| b == b'=').count();
    (s.get(i + 1 + level) == Some(&b'[')).then_some(level)
}

/// Whether a long bracket of `level` closes at `s[i]`.
fn long_close(s: &[u8], i: usize, level: usize) -> bool {
    s.get(i) == Some(&b']')
        && s[i + 1..].iter().take(level).all(|&b| b == b'=')
        && s.len() > i + 1 + level
        && s[i + 1 + level] == b']'
}

/// `source` as UTF-8 text the VM runs alike.
pub fn utf8_text(source: &[u8]) -> Result<std::borrow::Cow<'_, str>, FrontError> {
    if let Ok(text) = std::str::from_utf8(source) {
        return Ok(text.into());
    }
    let mut out = Vec::with_capacity(source.len() + 16);
    let mut at = At::Code;
    let mut line = 1u32;
    let mut i = 0;
    while i < source.len() {
        // The next character, or the length of the bytes that are not one.
        let rest = &source[i..];
        let valid = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            Ok(s) => s.chars().next().map(char::len_utf8),
            Err(e) if e.valid_up_to() > 0 => {
                let s = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                s.chars().next().map(char::len_utf8)
            }
            Err(_) => None,
        };
        let b = source[i];
        let Some(len) = valid else {
            match at {
                At::Quoted(_) => out.extend(format!("\\x{b:02X}").bytes()),
                At::LineComment | At::Long { comment: true, .. } => {}
                At::Long { comment: false, .. } => {
                    return Err(FrontError {
                        line: Some(line),
                        message: "bytes that are not UTF-8 in a long string ([[...]]) are not supported: write them as \\xHH escapes in a quoted string".into(),
                    });
                }
                At::Code => {
                    return Err(FrontError {
                        line: Some(line),
                        message: format!("unexpected symbol near '<\\{b}>'"),
                    });
                }
            }
            i += 1;
            continue;
        };
        let mut take = len;
        match at {
            At::Code => {
                if b == b'"' || b == b'\'' {
                    at = At::Quoted(b);
                } else if b == b'-' && rest.get(1) == Some(&b'-') {
                    take = 2;
                    at = match long_open(source, i + 2) {
                        Some(level) => {
                            take += level + 2;
                            At::Long {
                                level,
                                comment: true,
                            }
                        }
                        None => At::LineComment,
                    };
                } else if let Some(level) = long_open(source, i) {
                    take = level + 2;
                    at = At::Long {
                        level,
                        comment: false,
                    };
                }
            }
            At::Quoted(q) => {
                if b == b'\\' && rest.len() > 1 && rest[1].is_ascii() {
                    take = 2;
                } else if b == q || b == b'\n' {
                    at = At::Code;
                }
            }
            At::Long { level, .. } => {
                if long_close(source, i, level) {
                    take = level + 2;
                    at = At::Code;
                }
            }
            At::LineComment => {
                if b == b'\n' {
                    at = At::Code;
                }
            }
        }
        line += source[i..i + take].iter().filter(|&&c| c == b'\n').count() as u32;
        out.extend_from_slice(&source[i..i + take]);
        i += take;
    }
    String::from_utf8(out)
        .map(Into::into)
        .map_err(|_| FrontError {
            line: None,
            message: "the file is not UTF-8 text".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_strings_become_escapes_and_elsewhere_are_refused() {
        let src = b"-- caf\xe9\nlocal s = \"caf\xe9\" .. 'x\\'\xff'\nreturn s\n";
        let text = utf8_text(src).unwrap();
        assert_eq!(
            text,
            "-- caf\nlocal s = \"caf\\xE9\" .. 'x\\'\\xFF'\nreturn s\n"
        );
        let long = b"local s = [[\n\xe9]]\n";
        assert_eq!(utf8_text(long).unwrap_err().line, Some(2));
        let code = b"local \xe9 = 1\n";
        assert_eq!(utf8_text(code).unwrap_err().line, Some(1));
        assert!(matches!(
            utf8_text(b"x = 1"),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }
}
