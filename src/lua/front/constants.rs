//! Which locals hold a numeric constant for the whole file: operations
//! against one are as safe as against the literal, so they stay plain VM
//! operations (the fast path of rule guards such as `v <= TEN_GB`).

use super::*;

/// Locals bound only to a numeric constant and never assigned: a
/// comparison against one is as safe as against the literal.
#[derive(Default)]
pub(super) struct Constants {
    /// Every binding of a name: its constant value when it is one.
    bindings: HashMap<String, Vec<Option<f64>>>,
    assigned: HashSet<String>,
}

impl Constants {
    fn bind(&mut self, name: &TokenReference, value: Option<f64>) {
        self.bindings
            .entry(name.token().to_string())
            .or_default()
            .push(value);
    }

    /// The small constants, each with the largest magnitude any of its
    /// bindings has (a name may be bound in several scopes).
    pub(super) fn small(self) -> HashMap<String, f64> {
        self.bindings
            .into_iter()
            .filter(|(name, values)| {
                !self.assigned.contains(name) && values.iter().all(|v| v.is_some_and(is_small))
            })
            .map(|(name, values)| {
                let largest = values
                    .iter()
                    .flatten()
                    .fold(0.0, |m: f64, v| m.max(v.abs()));
                (name, largest)
            })
            .collect()
    }
}

impl Visitor for Constants {
    fn visit_local_assignment(&mut self, node: &LocalAssignment) {
        let values: Vec<&Expression> = node.expressions().iter().collect();
        for (i, name) in node.names().iter().enumerate() {
            let value = (values.len() == node.names().len())
                .then(|| constant_value(values[i]))
                .flatten();
            self.bind(name, value);
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
        for var in node.variables() {
            if let Var::Name(name) = var {
                self.assigned.insert(name.token().to_string());
            }
        }
    }
}

/// Numbers every VM comparison gets right against any other number: their
/// magnitude is below 2^53, where integers and floats convert exactly.
pub(super) fn is_small(v: f64) -> bool {
    v.is_finite() && v.abs() < 9_007_199_254_740_992.0
}

/// A bound on `|e|` when `e` is built of numerals and small constants
/// (`CPUS * 2`) with `+ - *`, unary minus and parentheses.
pub(super) fn magnitude_bound(e: &Expression, constants: &HashMap<String, f64>) -> Option<f64> {
    match e {
        Expression::Var(Var::Name(n)) => constants.get(&n.token().to_string()).copied(),
        Expression::Parentheses { expression, .. } => magnitude_bound(expression, constants),
        Expression::UnaryOperator {
            unop: UnOp::Minus(_),
            expression,
        } => magnitude_bound(expression, constants),
        Expression::BinaryOperator { lhs, binop, rhs } => {
            let (a, b) = (
                magnitude_bound(lhs, constants)?,
                magnitude_bound(rhs, constants)?,
            );
            match binop {
                BinOp::Plus(_) | BinOp::Minus(_) => Some(a + b),
                BinOp::Star(_) => Some(a * b),
                _ => constant_value(e).map(f64::abs),
            }
        }
        _ => constant_value(e).map(f64::abs),
    }
}

/// The value of a constant numeric expression (numerals and `+ - * / ^`,
/// unary minus and parentheses over them).
pub(super) fn constant_value(e: &Expression) -> Option<f64> {
    match e {
        Expression::Number(t) => numeral::read(&t.token().to_string()).map(Num::as_f64),
        Expression::Parentheses { expression, .. } => constant_value(expression),
        Expression::UnaryOperator {
            unop: UnOp::Minus(_),
            expression,
        } => constant_value(expression).map(|v| -v),
        Expression::BinaryOperator { lhs, binop, rhs } => {
            let (a, b) = (constant_value(lhs)?, constant_value(rhs)?);
            match binop {
                BinOp::Plus(_) => Some(a + b),
                BinOp::Minus(_) => Some(a - b),
                BinOp::Star(_) => Some(a * b),
                BinOp::Slash(_) => Some(a / b),
                BinOp::Caret(_) => Some(a.powf(b)),
                _ => None,
            }
        }
        _ => None,
    }
}
