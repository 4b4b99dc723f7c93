//! What a pushed collectd.conf would change, in words, for a dry run's
//! answer: the plugins it would start or stop loading, and how many lines
//! it adds and removes. Pure: two texts in, a sentence out.

use std::collections::BTreeSet;

/// The names of the plugins a config's own lines load (`LoadPlugin x`,
/// `<LoadPlugin x>`), lowercase as collectd compares them.
fn loaded(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches('<');
            line.get(..10)
                .filter(|k| k.eq_ignore_ascii_case("loadplugin"))?;
            let name = line[10..]
                .trim()
                .trim_end_matches('>')
                .trim()
                .trim_matches('"');
            (!name.is_empty()).then(|| name.to_ascii_lowercase())
        })
        .collect()
}

/// The lines that count: not blank, not a comment.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// "start loading csv; stop loading cpu; add 4 lines and remove 1".
pub fn describe(old: &str, new: &str) -> String {
    let (before, after) = (loaded(old), loaded(new));
    let list = |names: Vec<&String>| {
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    let started: Vec<&String> = after.difference(&before).collect();
    if !started.is_empty() {
        parts.push(format!("start loading {}", list(started)));
    }
    let stopped: Vec<&String> = before.difference(&after).collect();
    if !stopped.is_empty() {
        parts.push(format!("stop loading {}", list(stopped)));
    }
    // Lines as a multiset: moved lines count as neither added nor removed.
    let mut old_lines = lines(old);
    let mut added = 0;
    for line in lines(new) {
        match old_lines.iter().position(|l| *l == line) {
            Some(i) => {
                old_lines.swap_remove(i);
            }
            None => added += 1,
        }
    }
    parts.push(format!(
        "add {added} lines and remove {} (comments and blank lines aside), then restart collectd",
        old_lines.len()
    ));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_and_lines_that_would_change() {
        let old = "# mine\nLoadPlugin cpu\nLoadPlugin \"monitor\"\nInterval 10\n";
        let new =
            "LoadPlugin monitor\n<LoadPlugin CSV>\n  Interval 1\n</LoadPlugin>\nInterval 10\n";
        assert_eq!(
            describe(old, new),
            "start loading csv; stop loading cpu; add 4 lines and remove 2 (comments and blank lines aside), then restart collectd"
        );
    }
}
