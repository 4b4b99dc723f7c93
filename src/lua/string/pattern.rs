//! Lua 5.4 patterns (the matcher behind `string.find/match/gmatch/gsub`),
//! written for this project with a step budget: a pattern that backtracks
//! catastrophically (`(".-"):rep(8)` on a long subject) stops with an error
//! instead of running for hours.

/// Most captures a pattern may have (Lua's LUA_MAXCAPTURES).
const MAX_CAPTURES: usize = 32;
/// Recursion depth before "pattern too complex" (Lua's MAXCCALLS).
const MAX_DEPTH: usize = 200;

/// What a capture holds once matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// `(...)`: a byte range of the subject.
    Span(usize, usize),
    /// `()`: a position (0-based; Lua shows it plus one).
    Position(usize),
    /// `(` never closed: an error once the capture is used.
    Unfinished,
}

/// A successful match: the whole match's byte range and the captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub captures: Vec<Capture>,
}

impl Match {
    /// Capture `i` as Lua returns it: the whole match when there are no
    /// captures.
    pub fn get(&self, i: usize) -> Capture {
        if self.captures.is_empty() && i == 0 {
            Capture::Span(self.start, self.end)
        } else {
            self.captures[i]
        }
    }

    /// How many values a match returns (at least one).
    pub fn count(&self) -> usize {
        self.captures.len().max(1)
    }
}

/// Why matching failed (not "no match").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// A malformed pattern, with Lua's message.
    Malformed(String),
    /// The step budget ran out.
    TooExpensive,
}

const UNFINISHED: isize = -1;
const POSITION: isize = -2;

struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    capture: [(usize, isize); MAX_CAPTURES],
    depth: usize,
    steps: u64,
    budget: u64,
}

type Step = Result<Option<usize>, PatternError>;

fn malformed<T>(m: &str) -> Result<T, PatternError> {
    Err(PatternError::Malformed(m.to_string()))
}

fn class_matches(c: u8, class: u8) -> bool {
    let hit = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => c == b' ' || (9..=13).contains(&c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated, still in Lua 5.4: the zero byte.
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !hit
    } else {
        hit
    }
}

impl<'a> Matcher<'a> {
    fn new(src: &'a [u8], pat: &'a [u8], budget: u64) -> Matcher<'a> {
        Matcher {
            src,
            pat,
            level: 0,
            capture: [(0, 0); MAX_CAPTURES],
            depth: MAX_DEPTH,
            steps: 0,
            budget,
        }
    }

    fn tick(&mut self) -> Result<(), PatternError> {
        self.steps += 1;
        if self.steps > self.budget {
            Err(PatternError::TooExpensive)
        } else {
            Ok(())
        }
    }

    /// Index just past the single-character class starting at `p`.
    fn class_end(&self, mut p: usize) -> Result<usize, PatternError> {
        let c = self.pat[p];
        p += 1;
        if c == b'%' {
            if p >= self.pat.len() {
                return malformed("malformed pattern (ends with '%')");
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if self.pat.get(p) == Some(&b'^') {
                p += 1;
            }
            loop {
                if p >= self.pat.len() {
                    return malformed("malformed pattern (missing ']')");
                }
                let c = self.pat[p];
                p += 1;
                if c == b'%' {
                    if p >= self.pat.len() {
                        return malformed("malformed pattern (missing ']')");
                    }
                    p += 1;
                }
                if self.pat.get(p) == Some(&b']') {
                    return Ok(p + 1);
                }
                if p >= self.pat.len() {
                    return malformed("malformed pattern (missing ']')");
                }
            }
        }
        Ok(p)
    }

    /// `c` against the set `[...]` spanning `p..=end` (`end` is the `]`).
    fn bracket_matches(&self, c: u8, p: usize, end: usize) -> bool {
        let mut p = p + 1;
        let mut yes = true;
        if self.pat[p] == b'^' {
            yes = false;
            p += 1;
        }
        while p < end {
            if self.pat[p] == b'%' && p + 1 < end {
                p += 1;
                if class_matches(c, self.pat[p]) {
                    return yes;
                }
                p += 1;
            } else if p + 2 < end && self.pat[p + 1] == b'-' {
                if self.pat[p] <= c && c <= self.pat[p + 2] {
                    return yes;
                }
                p += 3;
            } else {
                if self.pat[p] == c {
                    return yes;
                }
                p += 1;
            }
        }
        !yes
    }

    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            b'%' => class_matches(c, self.pat[p + 1]),
            b'[' => self.bracket_matches(c, p, ep - 1),
            other => other == c,
        }
    }

    fn do_match(&mut self, s: usize, p: usize) -> Step {
        if self.depth == 0 {
            return malformed("pattern too complex");
        }
        self.depth -= 1;
        let r = self.match_here(s, p);
        self.depth += 1;
        r
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Step {
        loop {
            self.tick()?;
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, POSITION)
                    } else {
                        self.start_capture(s, p + 1, UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                b'%' if self.pat.get(p + 1) == Some(&b'b') => match self.balance(s, p + 2)? {
                    Some(next) => {
                        s = next;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                b'%' if self.pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if self.pat.get(p) != Some(&b'[') {
                        return malformed("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let prev = if s == 0 { 0 } else { self.src[s - 1] };
                    let cur = self.src.get(s).copied().unwrap_or(0);
                    if !self.bracket_matches(prev, p, ep - 1)
                        && self.bracket_matches(cur, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                b'%' if self.pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    match self.back_reference(s, self.pat[p + 1])? {
                        Some(next) => {
                            s = next;
                            p += 2;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                _ => {}
            }
            let ep = self.class_end(p)?;
            let suffix = self.pat.get(ep).copied();
            if !self.single_match(s, p, ep) {
                if matches!(suffix, Some(b'*' | b'?' | b'-')) {
                    p = ep + 1;
                    continue;
                }
                return Ok(None);
            }
            match suffix {
                Some(b'?') => {
                    if let Some(r) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(r));
                    }
                    p = ep + 1;
                }
                Some(b'+') => return self.max_expand(s + 1, p, ep),
                Some(b'*') => return self.max_expand(s, p, ep),
                Some(b'-') => return self.min_expand(s, p, ep),
                _ => {
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Step {
        let mut i = 0;
        while self.single_match(s + i, p, ep) {
            self.tick()?;
            i += 1;
        }
        loop {
            if let Some(r) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(r));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Step {
        loop {
            if let Some(r) = self.do_match(s, ep + 1)? {
                return Ok(Some(r));
            }
            if self.single_match(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Step {
        if self.level >= MAX_CAPTURES {
            return malformed("too many captures");
        }
        self.capture[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Step {
        let Some(l) = (0..self.level)
            .rev()
            .find(|&l| self.capture[l].1 == UNFINISHED)
        else {
            return malformed("invalid pattern capture");
        };
        self.capture[l].1 = (s - self.capture[l].0) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.capture[l].1 = UNFINISHED;
        }
        Ok(r)
    }

    fn back_reference(&mut self, s: usize, digit: u8) -> Step {
        let l = (digit as isize) - (b'1' as isize);
        if l < 0 || l as usize >= self.level || self.capture[l as usize].1 == UNFINISHED {
            return malformed(&format!("invalid capture index %{}", l + 1));
        }
        let (start, len) = self.capture[l as usize];
        let len = len.max(0) as usize;
        let wanted = &self.src[start..start + len];
        Ok(self.src[s..].starts_with(wanted).then_some(s + len))
    }

    fn balance(&mut self, s: usize, p: usize) -> Step {
        if p + 1 >= self.pat.len() {
            return malformed("malformed pattern (missing arguments to '%b')");
        }
        if self.src.get(s) != Some(&self.pat[p]) {
            return Ok(None);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        let mut depth = 1;
        for i in s + 1..self.src.len() {
            self.tick()?;
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    fn captures(&self) -> Vec<Capture> {
        (0..self.level)
            .map(|l| match self.capture[l] {
                (start, POSITION) => Capture::Position(start),
                (_, UNFINISHED) => Capture::Unfinished,
                (start, len) => Capture::Span(start, start + len as usize),
            })
            .collect()
    }
}

/// Searches `src` from byte `init` for `pat`; an anchored pattern (`^`)
/// is tried at `init` only. `budget` bounds the matcher's steps and is
/// reduced by the steps taken.
pub fn find_at(
    src: &[u8],
    pat: &[u8],
    init: usize,
    budget: &mut u64,
) -> Result<Option<Match>, PatternError> {
    let mut matcher = Matcher::new(src, pat, *budget);
    let anchored = pat.first() == Some(&b'^');
    let p = usize::from(anchored);
    let mut s = init;
    let found = loop {
        matcher.level = 0;
        match matcher.do_match(s, p) {
            Err(e) => {
                *budget = budget.saturating_sub(matcher.steps);
                return Err(e);
            }
            Ok(Some(end)) => {
                break Some(Match {
                    start: s,
                    end,
                    captures: matcher.captures(),
                });
            }
            Ok(None) => {}
        }
        s += 1;
        if anchored || s > src.len() {
            break None;
        }
    };
    *budget = budget.saturating_sub(matcher.steps);
    Ok(found)
}

/// One match attempt exactly at `s` (for gmatch and gsub, which walk the
/// subject themselves); the pattern is taken as is (no `^` handling).
pub fn match_at(
    src: &[u8],
    pat: &[u8],
    s: usize,
    budget: &mut u64,
) -> Result<Option<Match>, PatternError> {
    let mut matcher = Matcher::new(src, pat, *budget);
    let r = matcher.do_match(s, 0);
    *budget = budget.saturating_sub(matcher.steps);
    match r? {
        Some(end) => Ok(Some(Match {
            start: s,
            end,
            captures: matcher.captures(),
        })),
        None => Ok(None),
    }
}

/// True when `pat` has no magic characters (a plain substring search does).
pub fn is_plain(pat: &[u8]) -> bool {
    !pat.iter().any(|c| b"^$*+?.([%-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(s: &str, p: &str) -> Option<(usize, usize, Vec<Capture>)> {
        find_at(s.as_bytes(), p.as_bytes(), 0, &mut 1_000_000)
            .unwrap()
            .map(|m| (m.start, m.end, m.captures))
    }

    #[test]
    fn classes_quantifiers_anchors() {
        assert_eq!(find("hello world", "o w"), Some((4, 7, vec![])));
        assert_eq!(find("abc123", "%d+"), Some((3, 6, vec![])));
        assert_eq!(find("abc", "^b"), None);
        assert_eq!(find("abc", "c$"), Some((2, 3, vec![])));
        assert_eq!(find("aaa", "a-"), Some((0, 0, vec![])));
        assert_eq!(
            find("key = value", "(%w+)%s*=%s*(%w+)"),
            Some((0, 11, vec![Capture::Span(0, 3), Capture::Span(6, 11)]))
        );
        assert_eq!(find("x(a(b)c)y", "%b()"), Some((1, 8, vec![])));
        assert_eq!(find("THE (quick) fox", "%f[%a]%a+"), Some((0, 3, vec![])));
        assert_eq!(
            find("hello", "()ll()"),
            Some((2, 4, vec![Capture::Position(2), Capture::Position(4)]))
        );
        assert_eq!(
            find("abab", "(ab)%1"),
            Some((0, 4, vec![Capture::Span(0, 2)]))
        );
        assert_eq!(find("a]b", "[]]"), Some((1, 2, vec![])));
        assert_eq!(find("x-y", "[a-]"), Some((1, 2, vec![])));
    }

    #[test]
    fn malformed_patterns_and_budgets() {
        let err = |p: &str| find_at(b"abc", p.as_bytes(), 0, &mut 1000).unwrap_err();
        assert_eq!(
            err("%"),
            PatternError::Malformed("malformed pattern (ends with '%')".into())
        );
        assert_eq!(
            err("[a"),
            PatternError::Malformed("malformed pattern (missing ']')".into())
        );
        assert_eq!(
            err("a)"),
            PatternError::Malformed("invalid pattern capture".into())
        );
        let subject = "a".repeat(3000);
        let r = find_at(subject.as_bytes(), b".-.-.-.-.-.-b", 0, &mut 1_000_000);
        assert_eq!(r, Err(PatternError::TooExpensive));
    }
}
