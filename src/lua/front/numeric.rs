//! Which expressions are numbers whatever the program does, so that an
//! ordering comparison of one with a small literal can stay the VM's own
//! (fast) operation: the VM compares a string with a number by converting
//! it, and a table with `__lt` with a number not at all, where Lua raises
//! an error or calls the metamethod, so every other ordering comparison
//! goes through the exact helper.
//!
//! Numbers: numeric constants, arithmetic between numbers, locals only
//! ever bound to numbers, and the event table's `values[i]`, `time` and
//! `interval` (the engine fills them with numbers) unless the file could
//! put anything else there: it assigns or constructs a field of those
//! names, or uses `rawset`, `setmetatable` or the table library's
//! mutators.

use super::*;
use full_moon::ast::{Call, Field, Index, Prefix, Suffix, TableConstructor, VarExpression};

/// The fields the engine fills with numbers.
const NUMBER_FIELDS: &[&str] = &["values", "time", "interval"];
/// Calls that could put something else in a table the file did not build.
const MUTATORS: &[&str] = &["rawset", "setmetatable", "insert", "move", "remove", "sort"];

/// What the file binds and does, for [`Numeric::of`].
#[derive(Default)]
struct Facts {
    /// Each name's bindings and assignments: the expression, or `None`
    /// (a parameter, a loop variable, a function, a multiple assignment).
    bindings: HashMap<String, Vec<Option<Expression>>>,
    /// The file writes a number field, or calls a mutator.
    number_fields_touched: bool,
}

impl Facts {
    fn bind(&mut self, name: &TokenReference, value: Option<&Expression>) {
        self.bindings
            .entry(name.token().to_string())
            .or_default()
            .push(value.cloned());
    }
}

fn is_number_field(name: &str) -> bool {
    NUMBER_FIELDS.contains(&name)
}

/// The name of a `.name` or `["name"]` index.
fn field_name(index: &Index) -> Option<String> {
    match index {
        Index::Dot { name, .. } => Some(name.token().to_string()),
        Index::Brackets { expression, .. } => match &**expression {
            Expression::String(s) => Some(
                s.token()
                    .to_string()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string(),
            ),
            _ => None,
        },
        _ => None,
    }
}

impl Visitor for Facts {
    fn visit_local_assignment(&mut self, node: &LocalAssignment) {
        let values: Vec<&Expression> = node.expressions().iter().collect();
        let one_each = values.len() == node.names().len();
        for (i, name) in node.names().iter().enumerate() {
            self.bind(name, one_each.then(|| values[i]));
        }
    }
    fn visit_local_function(&mut self, node: &full_moon::ast::LocalFunction) {
        self.bind(node.name(), None);
    }
    fn visit_function_body(&mut self, node: &FunctionBody) {
        for p in node.parameters() {
            if let Parameter::Name(name) = p {
                self.bind(name, None);
            }
        }
    }
    fn visit_numeric_for(&mut self, node: &NumericFor) {
        self.bind(node.index_variable(), None);
    }
    fn visit_generic_for(&mut self, node: &full_moon::ast::GenericFor) {
        for name in node.names() {
            self.bind(name, None);
        }
    }
    fn visit_assignment(&mut self, node: &Assignment) {
        let values: Vec<&Expression> = node.expressions().iter().collect();
        let one_each = values.len() == node.variables().len();
        for (i, var) in node.variables().iter().enumerate() {
            match var {
                Var::Name(name) => self.bind(name, one_each.then(|| values[i])),
                Var::Expression(e) => {
                    // `x.values = ...`, `x.values[1] = ...`, `x.time = ...`
                    if e.suffixes().any(|s| {
                        matches!(s, Suffix::Index(index) if field_name(index).is_some_and(|n| is_number_field(&n)))
                    }) {
                        self.number_fields_touched = true;
                    }
                }
                _ => self.number_fields_touched = true,
            }
        }
    }
    fn visit_table_constructor(&mut self, node: &TableConstructor) {
        for field in node.fields() {
            // Numbers there are harmless (a golden example's event).
            let value = match field {
                Field::NameKey { value, .. } | Field::ExpressionKey { value, .. } => Some(value),
                _ => None,
            };
            if value.is_some_and(|v| only_numbers(v)) {
                continue;
            }
            let name = match field {
                Field::NameKey { key, .. } => Some(key.token().to_string()),
                Field::ExpressionKey { key, .. } => match &**key {
                    Expression::String(s) => Some(
                        s.token()
                            .to_string()
                            .trim_matches(|c| c == '"' || c == '\'')
                            .to_string(),
                    ),
                    // A computed key could be any of them.
                    _ => Some("values".into()),
                },
                _ => None,
            };
            if name.is_some_and(|n| is_number_field(&n)) {
                self.number_fields_touched = true;
            }
        }
    }
    fn visit_function_call(&mut self, node: &FunctionCall) {
        let named = |t: &TokenReference| MUTATORS.contains(&t.token().to_string().as_str());
        let prefix = matches!(node.prefix(), Prefix::Name(n) if named(n));
        let suffix = node.suffixes().any(|s| match s {
            Suffix::Index(Index::Dot { name, .. }) => named(name),
            Suffix::Call(Call::MethodCall(m)) => named(m.name()),
            _ => false,
        });
        if prefix || suffix {
            self.number_fields_touched = true;
        }
    }
}

/// A numeric constant, or a table constructor of nothing else.
fn only_numbers(e: &Expression) -> bool {
    match e {
        Expression::TableConstructor(t) => t.fields().iter().all(|f| match f {
            Field::NoKey(v) => constant_value(v).is_some(),
            _ => false,
        }),
        _ => constant_value(e).is_some(),
    }
}

/// The numbers of one file.
pub(super) struct Numeric {
    names: HashSet<String>,
    number_fields: bool,
}

impl Numeric {
    /// Reads what `ast` binds and does.
    pub(super) fn of(ast: &full_moon::ast::Ast) -> Numeric {
        let mut facts = Facts::default();
        facts.visit_ast(ast);
        let mut numeric = Numeric {
            names: facts.bindings.keys().cloned().collect(),
            number_fields: !facts.number_fields_touched,
        };
        // The largest set closed under "every binding is a number".
        loop {
            let keep: HashSet<String> = numeric
                .names
                .iter()
                .filter(|name| {
                    facts.bindings[*name]
                        .iter()
                        .all(|b| b.as_ref().is_some_and(|e| numeric.is_number(e)))
                })
                .cloned()
                .collect();
            if keep.len() == numeric.names.len() {
                return numeric;
            }
            numeric.names = keep;
        }
    }

    /// Whether `e` is a number whatever the program does.
    pub(super) fn is_number(&self, e: &Expression) -> bool {
        if constant_value(e).is_some() {
            return true;
        }
        match e {
            Expression::Parentheses { expression, .. } => self.is_number(expression),
            Expression::UnaryOperator {
                unop: UnOp::Minus(_),
                expression,
            } => self.is_number(expression),
            Expression::BinaryOperator { lhs, binop, rhs } => {
                matches!(
                    binop,
                    BinOp::Plus(_)
                        | BinOp::Minus(_)
                        | BinOp::Star(_)
                        | BinOp::Slash(_)
                        | BinOp::Caret(_)
                        | BinOp::DoubleSlash(_)
                        | BinOp::Percent(_)
                ) && self.is_number(lhs)
                    && self.is_number(rhs)
            }
            Expression::Var(Var::Name(n)) => self.names.contains(&n.token().to_string()),
            Expression::Var(Var::Expression(v)) => self.number_field(v),
            _ => false,
        }
    }

    /// `x.values[i]`, `x.time`, `x.interval` of a plain name `x`.
    fn number_field(&self, v: &VarExpression) -> bool {
        if !self.number_fields || !matches!(v.prefix(), Prefix::Name(_)) {
            return false;
        }
        let suffixes: Vec<&Suffix> = v.suffixes().collect();
        let field = |s: &Suffix| match s {
            Suffix::Index(index) => field_name(index),
            _ => None,
        };
        match suffixes.as_slice() {
            [one] => field(one).is_some_and(|n| n == "time" || n == "interval"),
            [values, Suffix::Index(Index::Brackets { .. })] => {
                field(values).is_some_and(|n| n == "values")
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use full_moon::ast::LastStmt;

    fn numeric(source: &str) -> (Numeric, full_moon::ast::Ast) {
        let ast = full_moon::parse(source).unwrap();
        (Numeric::of(&ast), ast)
    }

    /// Whether the expression `return`ed last in `source` is a number.
    fn returns_number(source: &str) -> bool {
        let (n, ast) = numeric(source);
        let Some(LastStmt::Return(r)) = ast.nodes().last_stmt() else {
            panic!("{source}");
        };
        n.is_number(r.returns().iter().next().unwrap())
    }

    #[test]
    fn event_numbers_and_locals_bound_to_numbers_are_numbers() {
        assert!(returns_number("return m.values[1]"));
        assert!(returns_number("local v = m.values[1] * 8 return v"));
        assert!(returns_number("return m.time - m.interval"));
        // A golden example's event of numbers does not count.
        assert!(returns_number(
            "local e = { metric = { values = { 5e9, -1 }, time = 3 } } return m.values[2]"
        ));
        assert!(returns_number("local a = 1 local b = a + 2 return -b"));
        // Not: a field of another name, a call, a string, a local that is
        // also bound to something else.
        for not in [
            "return m.plugin",
            "return tonumber(m.type_instance)",
            "return m.values",
            "return m.values[1].x",
            "local v = 1 v = m.plugin return v",
            "local v = m.values[1] local v = 'x' return v",
            "return #t",
        ] {
            assert!(!returns_number(not), "{not}");
        }
    }

    #[test]
    fn a_file_that_could_put_anything_in_values_loses_their_proof() {
        for touching in [
            "m.values = {'3'} return m.values[1]",
            "m.values[1] = '3' return m.values[1]",
            "local t = {values = {'3'}} return t.values[1]",
            "local t = {values = x} return t.values[1]",
            "local t = {['time'] = '3'} return t.time",
            "rawset(m, 'values', {}) return m.values[1]",
            "table.insert(m.values, '3') return m.values[1]",
            "setmetatable(m, {}) return m.time",
        ] {
            assert!(!returns_number(touching), "{touching}");
        }
    }
}
