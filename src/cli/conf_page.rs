//! The man pages made from the documentation's pages, so they cannot
//! drift from them: `collectd-monitor.conf(5)` from `docs/configuration.md`
//! (the one description of every key) and `collectd-monitor-rules(5)` from
//! `docs/rules.md` (the rule API: handlers, the event tables, the return
//! table, options, the Lua library and the sandbox). Paragraphs, lists,
//! code blocks and tables, turned into roff.

/// The page of every setting.
const CONFIGURATION: &str = include_str!("../../docs/configuration.md");
/// The page of the rule API and the sandbox.
const RULES: &str = include_str!("../../docs/rules.md");

/// The configuration page's roff text.
pub fn render(version: &str) -> String {
    page(
        CONFIGURATION,
        &["Configuration"],
        "COLLECTD\\-MONITOR.CONF",
        "collectd\\-monitor.conf \\- settings of the collectd\\-monitor plugin",
        version,
    )
}

/// The rule files' page, `collectd-monitor-rules(5)`.
pub fn render_rules(version: &str) -> String {
    page(
        RULES,
        &["Rule files", "The sandbox"],
        "COLLECTD\\-MONITOR\\-RULES",
        "collectd\\-monitor\\-rules \\- Lua rule files of the collectd\\-monitor plugin",
        version,
    )
}

/// The `## ` sections of the markdown `source` named `headings` as a page
/// of section 5: the first is its description, the others sections of
/// their own.
fn page(source: &str, headings: &[&str], title: &str, name: &str, version: &str) -> String {
    let mut out = format!(
        ".TH {title} 5 \"\" \"collectd-monitor {version}\" \"collectd-monitor\"\n\
         .SH NAME\n{name}\n"
    );
    for (i, heading) in headings.iter().enumerate() {
        let section = source
            .split(&format!("\n## {heading}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or("");
        let title = if i == 0 {
            "DESCRIPTION".to_string()
        } else {
            escape(&heading.to_uppercase())
        };
        out.push_str(&format!(".SH {title}\n"));
        section_roff(heading, section, &mut out);
    }
    out.push_str(
        ".SH SEE ALSO\n.BR collectd\\-monitor (1),\n.BR collectd\\-monitor.conf (5),\n.BR collectd\\-monitor\\-rules (5),\n.BR collectd.conf (5)\n",
    );
    out
}

/// One section's markdown as roff, appended to `out`.
fn section_roff(heading: &str, section: &str, out: &mut String) {
    // Whether the last line was a table row (the first row of a table is
    // its header).
    let mut in_table = false;
    let mut in_code = false;
    // The text being gathered, and its macro (`.PP`, or `.IP` of a list
    // item).
    let mut paragraph = String::new();
    let mut head = String::from(".PP");
    let flush = |paragraph: &mut String, head: &mut String, out: &mut String| {
        if !paragraph.trim().is_empty() {
            out.push_str(head);
            out.push('\n');
            out.push_str(&inline(paragraph.trim()));
            out.push('\n');
        }
        paragraph.clear();
        *head = ".PP".into();
    };
    for line in section.lines() {
        if line.starts_with("```") {
            flush(&mut paragraph, &mut head, out);
            out.push_str(if in_code {
                ".fi\n.RE\n"
            } else {
                ".PP\n.RS\n.nf\n"
            });
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(&escape(line));
            out.push('\n');
            continue;
        }
        if let Some(cells) = table_row(line) {
            flush(&mut paragraph, &mut head, out);
            let header = !in_table;
            in_table = true;
            // The header and the separator row are no entry.
            if header || cells.first().is_some_and(|c| c.starts_with("---")) {
                continue;
            }
            if cells.len() == 4 && heading == "Configuration" {
                // The key table: key, type, default, meaning.
                out.push_str(&format!(
                    ".TP\n{}\n{}; default: {}.\n{}\n",
                    inline(&cells[0]),
                    inline(&cells[1]),
                    inline(&cells[2]),
                    inline(&cells[3])
                ));
            } else if let Some((first, rest)) = cells.split_first() {
                let rest: Vec<String> = rest.iter().map(|c| inline(c)).collect();
                out.push_str(&format!(".TP\n{}\n{}\n", inline(first), rest.join("; ")));
            }
            continue;
        }
        in_table = false;
        if let Some(heading) = line.strip_prefix("### ") {
            flush(&mut paragraph, &mut head, out);
            out.push_str(&format!(".SS {}\n", escape(heading)));
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut head, out);
            continue;
        }
        // A list item (`- ...`, `1. ...`) starts a paragraph of its own.
        let trimmed = line.trim_start();
        let numbered = trimmed
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let item = match (trimmed.strip_prefix("- "), numbered) {
            (Some(item), _) => Some((".IP \\(bu 2".to_string(), item)),
            (None, Some((n, item))) => Some((format!(".IP {n}. 3"), item)),
            _ => None,
        };
        if let Some((macro_line, item)) = item {
            flush(&mut paragraph, &mut head, out);
            head = macro_line;
            paragraph.push_str(item);
            paragraph.push(' ');
            continue;
        }
        paragraph.push_str(line.trim());
        paragraph.push(' ');
    }
    flush(&mut paragraph, &mut head, out);
}

/// The cells of a markdown table row.
fn table_row(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    // `\|` inside a cell is a literal bar.
    let cells = inner
        .replace("\\|", "\u{0}")
        .split('|')
        .map(|c| c.trim().replace('\u{0}', "|"))
        .collect();
    Some(cells)
}

/// Markdown inline text as roff: `code` and **strong** in bold, links as
/// their text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            out.push_str(&format!("\\fB{}\\fR", escape(&after[..end])));
            rest = &after[end + 1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("**")
            && let Some(end) = after.find("**")
        {
            out.push_str(&format!("\\fB{}\\fR", escape(&after[..end])));
            rest = &after[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix('[')
            && let Some(close) = after.find("](")
            && let Some(end) = after[close..].find(')')
        {
            out.push_str(&inline(&after[..close]));
            rest = &after[close + end + 1..];
            continue;
        }
        out.push_str(&escape_text(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    // A line may not start with a control character.
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Backslashes and hyphens as roff writes them.
fn escape_text(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// A line of plain text as roff.
fn escape(text: &str) -> String {
    let out = escape_text(text);
    if out.starts_with('.') || out.starts_with('\'') {
        format!("\\&{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_schema_has_an_entry() {
        let page = render("0");
        let entries: Vec<&str> = page
            .split(".TP\n")
            .skip(1)
            .filter_map(|e| e.lines().next())
            .collect();
        for key in crate::config::TOP_LEVEL_KEYS {
            let shown = format!("\\fB{}\\fR", key.replace('-', "\\-"));
            assert!(
                entries.iter().any(|e| e.contains(&shown)),
                "{key} has no entry in docs/configuration.md's table"
            );
        }
    }

    #[test]
    fn inline_markdown_becomes_roff() {
        assert_eq!(
            inline("a `b-c` **d** [e](#f) .g"),
            "a \\fBb\\-c\\fR \\fBd\\fR e .g"
        );
        assert_eq!(inline(".start"), "\\&.start");
        assert_eq!(
            table_row("| `A` | x \\| y | z | w |"),
            Some(vec!["`A`".into(), "x | y".into(), "z".into(), "w".into()])
        );
    }
}
