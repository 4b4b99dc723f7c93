//! Mistakes `rules check` reports from a rule file's source: fields a
//! handler reads that its table never has, and the commands the file can
//! ask for (checked against a config.json).

use super::Kind;
use super::syntax::*;
use full_moon::LuaVersion;
use full_moon::ast::{Expression, Field as TableField, FunctionBody, TableConstructor};
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
            "{who} reads `{param}.{name}`, which {table} never has (did you mean `{param}.{nearest}`?): it is always nil, so a test of it never holds, and the rule index leaves that test out"
        );
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// Whether a table constructor is a decision: it has `service` and
/// `command` keys.
fn is_decision(t: &TableConstructor) -> bool {
    let keys: Vec<String> = t
        .fields()
        .iter()
        .filter_map(|f| match f {
            TableField::NameKey { key, .. } => Some(ident(key)),
            _ => None,
        })
        .collect();
    keys.iter().any(|k| k == "service") && keys.iter().any(|k| k == "command")
}

/// A handler that builds a `{service = ..., command = ...}` table but
/// never returns a value: nothing it decides ever fires.
pub(super) fn unreturned_decision(handler: Option<&str>, body: &FunctionBody) -> Option<String> {
    use full_moon::ast::Return;
    use full_moon::node::Node;
    use full_moon::visitors::Visit;
    #[derive(Default)]
    struct Scan {
        /// Function bodies entered below the handler's own.
        depth: usize,
        returns_value: bool,
        decision_line: Option<usize>,
    }
    impl Visitor for Scan {
        fn visit_function_body(&mut self, _: &FunctionBody) {
            self.depth += 1;
        }
        fn visit_function_body_end(&mut self, _: &FunctionBody) {
            self.depth -= 1;
        }
        fn visit_return(&mut self, r: &Return) {
            if self.depth == 0 && !r.returns().is_empty() {
                self.returns_value = true;
            }
        }
        fn visit_table_constructor(&mut self, t: &TableConstructor) {
            if self.decision_line.is_none() && is_decision(t) {
                self.decision_line = t.start_position().map(|p| p.line());
            }
        }
    }
    let mut scan = Scan::default();
    body.block().visit(&mut scan);
    let line = scan.decision_line.filter(|_| !scan.returns_value)?;
    let who = handler.map_or_else(|| "the handler".to_string(), |h| format!("handler `{h}`"));
    Some(format!(
        "{who} builds a {{service, command}} table (line {line}) but returns nothing: nothing it decides ever fires (write `return {{ service = ..., command = ... }}`)"
    ))
}

/// Every `{service = ..., command = ...}` the source spells out with
/// string literals, or with locals bound to one (`local SVC = "nginx"`):
/// what its handlers can ask for, in order.
pub fn requested_commands(source: &str) -> Vec<crate::task::CommandRef> {
    use full_moon::ast::LocalAssignment;
    #[derive(Default)]
    struct Requests {
        found: Vec<crate::task::CommandRef>,
        /// `local NAME = "text"` seen so far (a name bound twice to
        /// different texts is not used).
        constants: std::collections::HashMap<String, Option<String>>,
    }
    impl Requests {
        fn text(&self, value: &Expression) -> Option<String> {
            string_literal(value).or_else(|| match unparen(value) {
                Expression::Var(full_moon::ast::Var::Name(name)) => {
                    self.constants.get(&ident(name)).cloned().flatten()
                }
                _ => None,
            })
        }
    }
    impl Visitor for Requests {
        fn visit_local_assignment(&mut self, l: &LocalAssignment) {
            for (name, value) in l.names().iter().zip(l.expressions().iter()) {
                let text = string_literal(value);
                let entry = self.constants.entry(ident(name)).or_insert(text.clone());
                if *entry != text {
                    *entry = None;
                }
            }
        }
        fn visit_table_constructor(&mut self, t: &TableConstructor) {
            let mut service = None;
            let mut command = None;
            for field in t.fields() {
                if let TableField::NameKey { key, value, .. } = field {
                    match ident(key).as_str() {
                        "service" => service = self.text(value),
                        "command" => command = self.text(value),
                        _ => {}
                    }
                }
            }
            if let (Some(s), Some(c)) = (service, command) {
                let r = crate::task::CommandRef::new(s, c);
                if !self.found.contains(&r) {
                    self.found.push(r);
                }
            }
        }
    }
    let source = crate::lua::blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return Vec::new();
    };
    let mut found = Requests::default();
    found.visit_ast(&ast);
    found.found
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
