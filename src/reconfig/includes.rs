//! collectd's `Include`, read as collectd 5.12 reads it, so that the push
//! policy decides on every line collectd will read and not only on the
//! pushed text: an `Include` at the top level of a file names one path
//! (collectd expands it with `wordexp`; the policy admits only plain paths,
//! which that leaves as they are) and may hold a `Filter` pattern for file
//! names; a directory includes its entries in name order (dot files
//! skipped, subdirectories too), a file is parsed and its own includes
//! expanded in turn, at most [`MAX_DEPTH`] levels deep.

use super::policy::Refused;
use crate::config::{ConfigItem, ConfigValue};
use crate::task::code;
use std::path::{Path, PathBuf};

/// collectd's `CF_MAX_DEPTH`: a file read at this depth is refused.
pub const MAX_DEPTH: usize = 8;

/// Files read for one push, at most: a directory of thousands of files is
/// refused rather than parsed.
pub const MAX_FILES: usize = 256;

/// The two things expanding needs from outside.
pub struct Reader<'a> {
    /// The policy's word on one `Include` path (or a directory's entry):
    /// the real path to read, or the refusal.
    pub allow: &'a dyn Fn(&str) -> Result<PathBuf, Refused>,
    /// Parses one file with collectd's parser.
    pub parse: &'a dyn Fn(&Path) -> Result<ConfigItem, String>,
}

/// Replaces every top-level `Include` of `root` (read at depth 0) with what
/// it names, as collectd will when it starts.
pub fn expand(root: ConfigItem, reader: &Reader) -> Result<ConfigItem, Refused> {
    let mut files = 0;
    expand_at(root, reader, 0, &mut files)
}

/// Expands every `Include` of `root` as collectd will, reading whatever
/// it names (no policy: for `config check`, which shows what collectd
/// reads); `parse` is collectd's parser.
pub fn expand_as_collectd(
    root: ConfigItem,
    parse: &dyn Fn(&Path) -> Result<ConfigItem, String>,
) -> Result<ConfigItem, String> {
    let allow = |p: &str| Ok(PathBuf::from(p));
    let reader = Reader {
        allow: &allow,
        parse,
    };
    expand(root, &reader).map_err(|r| r.message)
}

fn invalid(message: String) -> Refused {
    Refused {
        code: code::REPLACE_INVALID,
        message,
    }
}

fn expand_at(
    root: ConfigItem,
    reader: &Reader,
    depth: usize,
    files: &mut usize,
) -> Result<ConfigItem, Refused> {
    let mut children = Vec::with_capacity(root.children.len());
    for item in root.children {
        if !item.key.eq_ignore_ascii_case("include") {
            children.push(item);
            continue;
        }
        let [ConfigValue::String(path)] = item.values.as_slice() else {
            return Err(invalid(
                "`Include` needs exactly one string argument".into(),
            ));
        };
        let mut pattern = None;
        for child in &item.children {
            match (
                child.key.to_ascii_lowercase().as_str(),
                child.values.as_slice(),
            ) {
                ("filter", [ConfigValue::String(p)]) => pattern = Some(p.clone()),
                _ => {
                    return Err(invalid(format!(
                        "`{}` is not allowed in an <Include> block (only Filter \"pattern\")",
                        child.key
                    )));
                }
            }
        }
        read_generic(
            path,
            pattern.as_deref(),
            reader,
            depth + 1,
            files,
            &mut children,
        )?;
    }
    Ok(ConfigItem { children, ..root })
}

/// A file or a directory, appended to `out` (collectd's `cf_read_generic`).
fn read_generic(
    path: &str,
    pattern: Option<&str>,
    reader: &Reader,
    depth: usize,
    files: &mut usize,
    out: &mut Vec<ConfigItem>,
) -> Result<(), Refused> {
    if depth >= MAX_DEPTH {
        return Err(invalid(format!(
            "Include {path:?}: includes nest deeper than collectd's {MAX_DEPTH} levels"
        )));
    }
    let real = (reader.allow)(path)?;
    // collectd skips (with a warning) what does not exist.
    let Ok(meta) = std::fs::metadata(&real) else {
        return Ok(());
    };
    if meta.is_dir() {
        let mut names = Vec::new();
        let entries =
            std::fs::read_dir(&real).map_err(|e| invalid(format!("Include {path:?}: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| invalid(format!("Include {path:?}: {e}")))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                names.push(format!("{}/{name}", path.trim_end_matches('/')));
            }
            if names.len() > MAX_FILES {
                return Err(invalid(format!(
                    "Include {path:?}: more than {MAX_FILES} entries"
                )));
            }
        }
        names.sort();
        for name in names {
            read_generic(&name, pattern, reader, depth, files, out)?;
        }
        return Ok(());
    }
    if let Some(pattern) = pattern {
        let base = real.file_name().map(|n| n.to_string_lossy().into_owned());
        if !base.is_some_and(|b| fnmatch(pattern.as_bytes(), b.as_bytes())) {
            return Ok(());
        }
    }
    *files += 1;
    if *files > MAX_FILES {
        return Err(invalid(format!(
            "the config includes more than {MAX_FILES} files"
        )));
    }
    let tree = (reader.parse)(&real)
        .map_err(|e| invalid(format!("included file {}: {e}", real.display())))?;
    let tree = expand_at(tree, reader, depth, files)?;
    out.extend(tree.children);
    Ok(())
}

/// fnmatch(3) without flags: `*`, `?`, `[...]` (with `!` or `^`, ranges)
/// and `\` escapes, as collectd's `Filter` uses it on file names.
pub fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| fnmatch(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && fnmatch(rest, &name[1..]),
        Some((b'[', rest)) => match (bracket(rest, name.first().copied()), name.split_first()) {
            (Some((true, after)), Some((_, tail))) => fnmatch(after, tail),
            // No closing bracket: `[` is an ordinary character.
            (None, Some((b'[', tail))) => fnmatch(rest, tail),
            _ => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && fnmatch(&rest[1..], &name[1..])
        }
        Some((&c, rest)) => name.first() == Some(&c) && fnmatch(rest, &name[1..]),
    }
}

/// A bracket expression after its `[`: whether `c` matches it and the
/// pattern after its `]`, or `None` when it does not close.
fn bracket(pattern: &[u8], c: Option<u8>) -> Option<(bool, &[u8])> {
    let (negate, mut p) = match pattern.first() {
        Some(b'!' | b'^') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match p {
            [] => return None,
            [b']', rest @ ..] if !first => return Some((c.is_some() && matched != negate, rest)),
            [lo, b'-', hi, rest @ ..] if *hi != b']' => {
                matched |= c.is_some_and(|c| (*lo..=*hi).contains(&c));
                p = rest;
            }
            [x, rest @ ..] => {
                matched |= c == Some(*x);
                p = rest;
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, value: &str, children: Vec<ConfigItem>) -> ConfigItem {
        ConfigItem::string(key, value, children)
    }

    #[test]
    fn fnmatch_is_the_shells() {
        for (p, n, want) in [
            ("*.conf", "monitor.conf", true),
            ("*.conf", "monitor.conf~", false),
            ("a?c", "abc", true),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[]]", "]", true),
            ("\\*", "*", true),
            ("[ab", "[ab", true),
            ("", "", true),
        ] {
            assert_eq!(fnmatch(p.as_bytes(), n.as_bytes()), want, "{p} {n}");
        }
    }

    #[test]
    fn directories_are_read_in_order_filtered_and_nested_includes_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.txt"] {
            std::fs::write(d.join("conf.d").join(name), name).unwrap();
        }
        std::fs::write(d.join("inner"), "inner").unwrap();
        let allow = |p: &str| -> Result<PathBuf, Refused> {
            if p.contains("secret") {
                Err(Refused {
                    code: code::REPLACE_INCLUDE_REFUSED,
                    message: "no".into(),
                })
            } else {
                Ok(PathBuf::from(p))
            }
        };
        let inner = d.join("inner").display().to_string();
        let parse = |p: &Path| -> Result<ConfigItem, String> {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let mut children = vec![item("LoadPlugin", &name, vec![])];
            if name == "a.conf" {
                children.push(item("Include", &inner, vec![]));
            }
            Ok(ConfigItem::root(children))
        };
        let reader = Reader {
            allow: &allow,
            parse: &parse,
        };
        let root = ConfigItem::root(vec![
            item("Hostname", "h", vec![]),
            item(
                "Include",
                &d.join("conf.d").display().to_string(),
                vec![item("Filter", "*.conf", vec![])],
            ),
        ]);
        let expanded = expand(root, &reader).unwrap();
        let loaded: Vec<String> = expanded
            .children
            .iter()
            .map(|c| c.values[0].to_string())
            .collect();
        assert_eq!(loaded, ["\"h\"", "\"a.conf\"", "\"inner\"", "\"b.conf\""]);

        let refused = ConfigItem::root(vec![item("Include", "/x/secret", vec![])]);
        assert_eq!(
            expand(refused, &reader).unwrap_err().code,
            code::REPLACE_INCLUDE_REFUSED
        );
        // A file that includes itself ends at collectd's depth.
        let looping = d.join("loop").display().to_string();
        let parse_loop = |_: &Path| -> Result<ConfigItem, String> {
            Ok(ConfigItem::root(vec![item("Include", &looping, vec![])]))
        };
        std::fs::write(d.join("loop"), "").unwrap();
        let reader = Reader {
            allow: &allow,
            parse: &parse_loop,
        };
        let e = expand(
            ConfigItem::root(vec![item("Include", &looping, vec![])]),
            &reader,
        )
        .unwrap_err();
        assert!(e.message.contains("deeper"), "{}", e.message);
    }
}
