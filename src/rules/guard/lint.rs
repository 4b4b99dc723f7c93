//! Mistakes `rules check` reports from a rule file's source: fields a
//! handler reads that its table never has, and the commands the file can
//! ask for (checked against a config.json).

use super::Kind;
use super::syntax::*;
use full_moon::LuaVersion;
use full_moon::ast::{Field as TableField, FunctionBody, TableConstructor};
use full_moon::tokenizer::{Symbol, TokenType};
use full_moon::visitors::Visitor;

/// The fields of a value list's table and of a notification's.
const METRIC_FIELDS: &[&str] = &[
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
    "time",
    "interval",
    "values",
    "dsnames",
    "dstypes",
];
const NOTIFICATION_FIELDS: &[&str] = &[
    "severity",
    "time",
    "message",
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
    "meta",
];

/// `param.name` reads in a handler where its table never has `name`,
/// each with the nearest field there is.
pub(super) fn field_typos(kind: Kind, handler: Option<&str>, body: &FunctionBody) -> Vec<String> {
    let Some(param) = first_param(body) else {
        return Vec::new();
    };
    let (fields, table) = match kind {
        Kind::Metric => (METRIC_FIELDS, "a value list's table"),
        Kind::Notification => (NOTIFICATION_FIELDS, "a notification's table"),
    };
    let tokens = significant_tokens(&body.block().to_string());
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        let (
            TokenType::Identifier { identifier: base },
            TokenType::Identifier { identifier: name },
        ) = (w[0].token_type(), w[2].token_type())
        else {
            continue;
        };
        if base.as_str() != param
            || !is_symbol(&w[1], Symbol::Dot)
            || fields.contains(&name.as_str())
        {
            continue;
        }
        let nearest = fields
            .iter()
            .min_by_key(|f| edit_distance(f, name))
            .copied()
            .unwrap_or("plugin");
        let who = handler.map_or_else(|| "the handler".to_string(), |h| format!("handler `{h}`"));
        let line = format!(
            "{who} reads `{param}.{name}`, which {table} never has (did you mean `{param}.{nearest}`?)"
        );
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// Every `{service = "...", command = "..."}` the source spells out with
/// string literals (what its handlers can ask for), in order.
pub fn requested_commands(source: &str) -> Vec<crate::task::CommandRef> {
    struct Requests(Vec<crate::task::CommandRef>);
    impl Visitor for Requests {
        fn visit_table_constructor(&mut self, t: &TableConstructor) {
            let mut service = None;
            let mut command = None;
            for field in t.fields() {
                if let TableField::NameKey { key, value, .. } = field {
                    match ident(key).as_str() {
                        "service" => service = string_literal(value),
                        "command" => command = string_literal(value),
                        _ => {}
                    }
                }
            }
            if let (Some(s), Some(c)) = (service, command) {
                let r = crate::task::CommandRef::new(s, c);
                if !self.0.contains(&r) {
                    self.0.push(r);
                }
            }
        }
    }
    let source = crate::lua::blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return Vec::new();
    };
    let mut found = Requests(Vec::new());
    found.visit_ast(&ast);
    found.0
}

/// Levenshtein distance, for suggesting a field name.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
