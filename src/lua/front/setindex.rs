//! Index assignments through `__setindex` (see `lua/setindex.rs`) in a
//! file that may remove keys from tables: piccolo 0.3.3 fails to grow a
//! table holding a removed key, and any assignment of a new key may grow
//! one. Files that never remove a key keep plain VM assignments.

use super::*;
use full_moon::ast::Index;

/// Whether the chunk may remove a key from a table: an index assignment
/// whose value may be nil (or that has no value), or a call of `rawset`.
pub(super) fn removes_keys(ast: &full_moon::ast::Ast) -> bool {
    let mut finder = Removals::default();
    finder.visit_ast(ast);
    finder.found
}

#[derive(Default)]
struct Removals {
    found: bool,
}

impl Visitor for Removals {
    fn visit_assignment(&mut self, a: &Assignment) {
        let values: Vec<&Expression> = a.expressions().iter().collect();
        for (i, var) in a.variables().iter().enumerate() {
            if matches!(var, Var::Expression(_))
                && values.get(i).is_none_or(|value| may_be_nil(value))
            {
                self.found = true;
            }
        }
    }

    fn visit_function_call(&mut self, call: &FunctionCall) {
        if let Prefix::Name(name) = call.prefix()
            && name.token().to_string() == "rawset"
        {
            self.found = true;
        }
    }
}

/// Whether `e` may be nil: anything but a literal that is not `nil`, a
/// function or table constructor, and operations whose result is a
/// number, string or boolean (or an error).
fn may_be_nil(e: &Expression) -> bool {
    match e {
        Expression::Number(_)
        | Expression::String(_)
        | Expression::Function(_)
        | Expression::TableConstructor(_) => false,
        Expression::Symbol(t) => !matches!(t.token().to_string().as_str(), "true" | "false"),
        Expression::Parentheses { expression, .. } => may_be_nil(expression),
        Expression::BinaryOperator { binop, .. } => matches!(binop, BinOp::And(_) | BinOp::Or(_)),
        Expression::UnaryOperator { .. } => false,
        _ => true,
    }
}

/// `X[k] = v` and `X.k = v` as `__setindex(X, k, v)`; any other
/// assignment (to a name, or of several targets) as it is.
pub(super) fn through_helper(a: Assignment) -> Stmt {
    let (Some(Var::Expression(target)), Some(value), 1, 1) = (
        a.variables().iter().next(),
        a.expressions().iter().next(),
        a.variables().len(),
        a.expressions().len(),
    ) else {
        return Stmt::Assignment(a);
    };
    let suffixes: Vec<Suffix> = target.suffixes().cloned().collect();
    let Some((Suffix::Index(index), rest)) = suffixes.split_last() else {
        return Stmt::Assignment(a);
    };
    let key = match index {
        Index::Brackets { expression, .. } => (**expression).clone(),
        Index::Dot { name, .. } => Expression::String(TokenReference::new(
            Vec::new(),
            Token::new(TokenType::StringLiteral {
                literal: name.token().to_string().into(),
                multi_line_depth: 0,
                quote_type: StringLiteralQuoteType::Double,
            }),
            Vec::new(),
        )),
        _ => return Stmt::Assignment(a),
    };
    let table = match (target.prefix(), rest) {
        (Prefix::Name(name), []) => Expression::Var(Var::Name(name.clone())),
        (Prefix::Expression(e), []) => (**e).clone(),
        (prefix, rest) => match rest.last() {
            Some(Suffix::Call(_)) => Expression::FunctionCall(
                FunctionCall::new(prefix.clone()).with_suffixes(rest.to_vec()),
            ),
            _ => Expression::Var(Var::Expression(Box::new(
                VarExpression::new(prefix.clone()).with_suffixes(rest.to_vec()),
            ))),
        },
    };
    // A line break after `=` stays a line break (after the call), so the
    // lines below keep their numbers.
    let newlines = a.equal_token().to_string().matches('\n').count();
    let call = helper_call(helpers::SETINDEX, vec![table, key, value.clone()], newlines);
    let Expression::FunctionCall(call) = call else {
        return Stmt::Assignment(a);
    };
    Stmt::FunctionCall(call)
}

/// The assignments of a split multiple assignment through the helper.
pub(super) fn through_helper_in(d: Do) -> Do {
    let stmts: Vec<(Stmt, Option<TokenReference>)> = d
        .block()
        .stmts_with_semicolon()
        .map(|(stmt, semi)| {
            let stmt = match stmt {
                Stmt::Assignment(a) => through_helper(a.clone()),
                other => other.clone(),
            };
            (stmt, semi.clone())
        })
        .collect();
    let block = d.block().clone().with_stmts(stmts);
    d.with_block(block)
}
