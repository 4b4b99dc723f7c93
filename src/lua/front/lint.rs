//! Comparisons a rule author surely did not mean: an event's number
//! (`m.values[1]`, `m.time`) ordered against a string literal, or an
//! event's string (`m.plugin`, `m.type_instance`, ...) against a number
//! literal. Lua raises an error there (the rule never fires), which is
//! worth saying before it runs: `rules check` shows these.

use super::*;
use full_moon::ast::{Index, Prefix, Suffix};

/// The event's fields that hold strings.
const STRING_FIELDS: &[&str] = &[
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
    "message",
    "severity",
];

/// What kind of event field `e` reads, by its last name: `m.values[1]`,
/// `m.time` are numbers, `m.plugin` a string.
fn event_field(e: &Expression) -> Option<(&'static str, String)> {
    let Expression::Var(Var::Expression(v)) = e else {
        return match e {
            Expression::Parentheses { expression, .. } => event_field(expression),
            _ => None,
        };
    };
    if !matches!(v.prefix(), Prefix::Name(_)) {
        return None;
    }
    let names: Vec<String> = v
        .suffixes()
        .map(|s| match s {
            Suffix::Index(Index::Dot { name, .. }) => name.token().to_string(),
            Suffix::Index(Index::Brackets { .. }) => "[]".into(),
            _ => "()".into(),
        })
        .collect();
    let shown = v.to_string().trim().to_string();
    match names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["values", "[]"] | ["time"] | ["interval"] => Some(("number", shown)),
        [one] if STRING_FIELDS.contains(one) => Some(("string", shown)),
        _ => None,
    }
}

/// What kind of literal `e` is.
fn literal(e: &Expression) -> Option<&'static str> {
    match e {
        Expression::String(_) => Some("string"),
        Expression::Number(_) => Some("number"),
        Expression::UnaryOperator { expression, .. } => literal(expression),
        Expression::Parentheses { expression, .. } => literal(expression),
        _ => None,
    }
}

#[derive(Default)]
struct Lint {
    warnings: Vec<String>,
}

impl Visitor for Lint {
    fn visit_expression(&mut self, e: &Expression) {
        let Expression::BinaryOperator { lhs, binop, rhs } = e else {
            return;
        };
        if !matches!(
            binop,
            BinOp::LessThan(_)
                | BinOp::LessThanEqual(_)
                | BinOp::GreaterThan(_)
                | BinOp::GreaterThanEqual(_)
        ) {
            return;
        }
        for (field, other) in [(lhs, rhs), (rhs, lhs)] {
            if let (Some((kind, shown)), Some(lit)) = (event_field(field), literal(other))
                && kind != lit
            {
                let line = binop.token().token().start_position().line();
                self.warnings.push(format!(
                    "line {line}: {shown} (a {kind}) is compared with a {lit}: Lua raises an error there and the rule never fires (use tonumber or tostring)"
                ));
            }
        }
    }
}

/// The warnings for `source` (none when it does not parse: the load
/// error says why).
pub fn comparison_warnings(source: &str) -> Vec<String> {
    if too_deep(source).is_some() {
        return Vec::new();
    }
    let source = blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return Vec::new();
    };
    let mut lint = Lint::default();
    lint.visit_ast(&ast);
    lint.warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_number_against_a_string_and_the_reverse_are_told() {
        let w = comparison_warnings(
            "return function(m)\n  if m.values[1] > \"4\" then return 1 end\n  if 2 < m.plugin_instance then return 2 end\n  if m.values[1] > 4 and m.plugin < 'z' then return 3 end\nend",
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("line 2: m.values[1] (a number) is compared with a string"));
        assert!(w[1].starts_with("line 3: m.plugin_instance (a string) is compared with a number"));
    }
}
