//! How deeply a source nests, read before any parser sees it: the parsers
//! the front end uses recurse once per level and would overflow the stack
//! (and abort the process) on a file nested thousands deep. Lua itself
//! refuses nesting past about 200 levels ("C stack overflow"); so does
//! this, counting brackets and blocks outside strings and comments.

/// Levels allowed: what Lua's parser takes (its C levels, 200, count at
/// least one per bracket or block).
pub const MAX_DEPTH: usize = 200;

/// Lua's message for a source nested too deeply.
pub const TOO_DEEP: &str = "C stack overflow";

/// The length of a long bracket opening at `at` (`[[`, `[==[`), if one.
fn long_bracket(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let mut i = at + 1;
    while bytes.get(i) == Some(&b'=') {
        i += 1;
    }
    (bytes.get(i) == Some(&b'[')).then_some(i - at - 1)
}

/// Where the long bracket of `level` opened before `from` closes (the
/// index after it), or the end.
fn skip_long(bytes: &[u8], from: usize, level: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b']'
            && bytes[i + 1..].iter().take(level).all(|b| *b == b'=')
            && bytes.get(i + 1 + level) == Some(&b']')
        {
            return i + 2 + level;
        }
        i += 1;
    }
    bytes.len()
}

/// The line of the first place `source` nests deeper than [`MAX_DEPTH`].
pub fn too_deep(source: &str) -> Option<u32> {
    let bytes = source.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1u32, 0usize);
    let mut word_start: Option<usize> = None;
    let close_word = |word: &[u8], depth: &mut usize| match word {
        b"do" | b"function" | b"if" | b"repeat" => *depth += 1,
        b"end" | b"until" => *depth = depth.saturating_sub(1),
        _ => {}
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'_' {
            word_start.get_or_insert(i);
            i += 1;
            continue;
        }
        if let Some(start) = word_start.take() {
            close_word(&bytes[start..i], &mut depth);
        }
        match b {
            b'\n' => line += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                // A comment: long, or to the end of the line.
                let end = match long_bracket(bytes, i + 2) {
                    Some(level) => skip_long(bytes, i + 4 + level, level),
                    None => bytes[i..]
                        .iter()
                        .position(|c| *c == b'\n')
                        .map_or(bytes.len(), |p| i + p),
                };
                line += bytes[i..end].iter().filter(|c| **c == b'\n').count() as u32;
                i = end;
                continue;
            }
            b'"' | b'\'' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                i = j + 1;
                continue;
            }
            b'[' => {
                if let Some(level) = long_bracket(bytes, i) {
                    let end = skip_long(bytes, i + 2 + level, level);
                    line += bytes[i..end].iter().filter(|c| **c == b'\n').count() as u32;
                    i = end;
                    continue;
                }
                depth += 1;
            }
            b'(' | b'{' => depth += 1,
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Some(line);
        }
        i += 1;
    }
    if let Some(start) = word_start {
        close_word(&bytes[start..], &mut depth);
    }
    (depth > MAX_DEPTH).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_lua_s_limit_is_found_where_it_is_and_strings_do_not_count() {
        let deep = |n: usize| format!("return {}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(too_deep(&deep(190)), None);
        assert_eq!(too_deep(&deep(5000)), Some(1));
        let blocks = |n: usize| format!("\n{}{}", "do ".repeat(n), "end ".repeat(n));
        assert_eq!(too_deep(&blocks(150)), None);
        assert_eq!(too_deep(&blocks(300)), Some(2));
        // Brackets in strings and comments, and long strings, are text.
        let text = format!(
            "local s = '{0}' .. \"{0}\" .. [==[{0}]==] -- {0}\n--[[ {0} ]] return s",
            "(".repeat(1000)
        );
        assert_eq!(too_deep(&text), None);
        // Words that contain keywords are not keywords.
        assert_eq!(too_deep(&"local undo, doing = 1, 2 ".repeat(500)), None);
        let mixed = "function f() if x then return {a = (1)} end end\n".repeat(300);
        assert_eq!(too_deep(&mixed), None);
    }
}
