//! The source front end: every rule file is rewritten before piccolo
//! compiles it, so that the VM gives Lua 5.4's answers where its own would
//! differ, keeping every line where it was (error lines still match the
//! file). [`rewrite_source`] lists the rewrites; each concern has its file:
//! empty statements (`empty`), numeric constants (`constants`), literals
//! (`literals`), statements (`statements`), method calls (`methods`), and
//! the AST building they share (`build`). Operators are rewritten here, in
//! the visitor, into the helpers of `ops.rs`.

use super::numeral;
use super::ops::Num;
use full_moon::LuaVersion;
use full_moon::ast::punctuated::{Pair, Punctuated};
use full_moon::ast::span::ContainedSpan;
use full_moon::ast::{
    Assignment, BinOp, Block, Call, Do, Expression, FunctionArgs, FunctionBody, FunctionCall,
    LocalAssignment, NumericFor, Parameter, Prefix, Stmt, Suffix, UnOp, Var, VarExpression,
};
use full_moon::node::Node;
use full_moon::tokenizer::{
    Lexer, LexerResult, StringLiteralQuoteType, Symbol, Token, TokenReference, TokenType,
};
use full_moon::visitors::{Visitor, VisitorMut};
use std::collections::{HashMap, HashSet};

mod build;
mod bytes;
mod checks;
mod close;
mod constants;
mod depth;
mod describe;
mod empty;
mod lint;
mod literals;
mod markers;
mod methods;
mod numeric;
mod setindex;
mod statements;

use build::*;
pub use bytes::utf8_text;
pub use checks::add_checks;
use constants::*;
pub use depth::too_deep;
pub use empty::blank_empty_statements;
pub use lint::comparison_warnings;
use literals::*;
pub use markers::{LINE_MARKER, add_line_markers};
use methods::*;
use statements::*;

/// The global the rewritten calls go through.
pub const METHOD_HELPER: &str = "__method";
/// `obj.name` for a string-library name (see `methods.rs`).
pub const INDEX_HELPER: &str = "__index_str";
/// The global `a .. b` is rewritten into: piccolo formats floats unlike
/// Lua (`2.0 .. ""` gives "2") and ignores `__concat`.
pub const CONCAT_HELPER: &str = "__concat";
/// The global `(f())` and `(...)` are rewritten into: piccolo 0.3.3 does not
/// cut a parenthesised call or vararg down to one value.
pub const FIRST_HELPER: &str = "__first";
/// The global `error(...)` calls are rewritten into, with the call's
/// `chunk:line:` as first argument: piccolo's errors carry no position.
pub const ERROR_HELPER: &str = "__error";
/// The global `assert(...)` calls are rewritten into, with the call's
/// `chunk:line:` first, for Lua's `file:line: assertion failed!`.
pub const ASSERT_HELPER: &str = "__assert";

/// The global `function(a, ...)` bodies take their own varargs from:
/// `__va_from(n, ...)` is `select(n, ...)`, out of reach of a file that
/// redefines `select`.
pub const VARARGS_FROM_HELPER: &str = "__va_from";

/// The globals operators are routed through where piccolo 0.3.3's own
/// answer can be wrong (see `ops.rs`).
pub mod helpers {
    /// `a < b` (and `b > a`) when neither side is a small literal.
    pub const LT: &str = "__cmp_lt";
    /// `a <= b` (and `b >= a`).
    pub const LE: &str = "__cmp_le";
    /// `a == b` (`not` of it for `~=`).
    pub const EQ: &str = "__cmp_eq";
    /// `a // b`.
    pub const IDIV: &str = "__op_idiv";
    /// `a % b`.
    pub const MOD: &str = "__op_mod";
    /// `a << b`.
    pub const SHL: &str = "__op_shl";
    /// `a >> b`.
    pub const SHR: &str = "__op_shr";
    /// `a & b`.
    pub const BAND: &str = "__op_band";
    /// `a | b`.
    pub const BOR: &str = "__op_bor";
    /// `a ~ b`.
    pub const BXOR: &str = "__op_bxor";
    /// `~a`.
    pub const BNOT: &str = "__op_bnot";
    /// `a + b` between two operands that are not number literals.
    pub const ADD: &str = "__op_add";
    /// `a - b`, likewise.
    pub const SUB: &str = "__op_sub";
    /// `a * b`, likewise.
    pub const MUL: &str = "__op_mul";
    /// `a / b`, likewise.
    pub const DIV: &str = "__op_div";
    /// `a ^ b`, likewise.
    pub const POW: &str = "__op_pow";
    /// `-a` of an operand that is not a number literal.
    pub const UNM: &str = "__op_unm";
    /// The three control values of a numeric `for`.
    pub const FOR_PREP: &str = "__for_prep";
    /// `t[k] = v` in a file that removes keys (see `lua/setindex.rs`).
    pub const SETINDEX: &str = "__setindex";
}

/// Why the front end refused a source: a syntax error, or a construct the
/// VM cannot run correctly (a load error is better than a wrong answer).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontError {
    /// The line the problem is on, when known.
    pub line: Option<u32>,
    /// What is wrong, in Lua's words where Lua has them.
    pub message: String,
}

/// The rewritten source, or why it cannot be run. A file the front end
/// does not fully understand is refused: it never runs without the
/// rewrites that make piccolo give Lua's answers.
///
/// Rewrites: method calls (above); parameters: piccolo 0.3.3 leaves stale
/// stack values in parameters a caller did not pass (piccolo issue #145),
/// so `function(a, b)` becomes `function(...) local a, b = ...;`, which
/// gives missing arguments their `nil` as Lua requires; multiple
/// assignment: piccolo 0.3.3 gets `a, b = b, a` wrong, so it becomes `do
/// local __a1, __a2 = b, a; a = __a1; b = __a2 end`; operators: every
/// operand that is itself an operation is parenthesised (piccolo binds
/// `~=` like `+`), `>`/`>=` become `<`/`<=` with the operands swapped (the
/// VM computes `a > b` as `not (a <= b)`, true for NaN), comparisons that
/// are not against a small literal, `//`, `%`, `<<` and `>>` go through the
/// exact helpers of `ops.rs`; numerals piccolo reads differently are
/// written out as Lua reads them; a numeric `for` whose control values are
/// not all integer literals gets them from `__for_prep`; `<const>` is
/// dropped (after the front end has checked it), `<close>` scopes are run
/// by `__close_run` (see `close.rs`); an
/// empty statement (`;`) is blanked out before parsing.
pub fn rewrite_source(source: &str, chunk: &str) -> Result<String, FrontError> {
    rewrite(source, chunk, false)
}

/// The same for the library's own Lua (`prelude.lua`), which orders only
/// values it knows to be numbers or strings: its comparisons with a
/// literal stay the VM's.
pub fn rewrite_library(source: &str, chunk: &str) -> Result<String, FrontError> {
    rewrite(source, chunk, true)
}

fn rewrite(source: &str, chunk: &str, library: bool) -> Result<String, FrontError> {
    if let Some(line) = depth::too_deep(source) {
        return Err(FrontError {
            line: Some(line),
            message: depth::TOO_DEEP.into(),
        });
    }
    let source = blank_empty_statements(source);
    let source = close::rewrite_closes(&source, chunk)?;
    let ast = full_moon::parse_fallible(&source, LuaVersion::lua54())
        .into_result()
        .map_err(|errors| {
            let first = errors.first();
            FrontError {
                line: first.map(|e| e.range().0.line() as u32),
                message: first.map_or_else(|| "cannot parse".into(), parse_message),
            }
        })?;
    let mut constants = Constants::default();
    constants.visit_ast(&ast);
    let sets_through_helper = !library && setindex::removes_keys(&ast);
    let mut rewrites = Rewrites {
        chunk: chunk.to_string(),
        small_constants: constants.small(),
        numeric: numeric::Numeric::of(&ast),
        descriptions: if library {
            describe::Descriptions::default()
        } else {
            describe::Descriptions::of(&ast)
        },
        library,
        sets_through_helper,
        error: None,
    };
    let out = rewrites.visit_ast(ast).to_string();
    match rewrites.error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A parse error in Lua's words where Lua's differ from full_moon's: a
/// bare table where a statement belongs (`{...}` without `return`) is
/// Lua's `unexpected symbol near '{'`.
fn parse_message(error: &full_moon::Error) -> String {
    let message = error.error_message();
    match error {
        full_moon::Error::AstError(e)
            if message == "unexpected token, this needs to be a statement" =>
        {
            format!("unexpected symbol near '{}'", e.token())
        }
        _ => message.into(),
    }
}

struct Rewrites {
    chunk: String,
    /// Locals that hold a small numeric constant (see `Constants`).
    small_constants: HashMap<String, f64>,
    /// Which expressions are numbers whatever happens (`numeric.rs`).
    numeric: numeric::Numeric,
    /// Lua's description of each operand, for the helpers' errors.
    descriptions: describe::Descriptions,
    /// The library's own code (see [`rewrite_library`]).
    library: bool,
    /// Index assignments go through `__setindex`: the file may remove
    /// keys (see `setindex.rs`).
    sets_through_helper: bool,
    /// The first construct the VM cannot run correctly.
    error: Option<FrontError>,
}

impl Rewrites {
    fn refuse(&mut self, node: &impl Node, message: String) {
        if self.error.is_none() {
            self.error = Some(FrontError {
                line: node.start_position().map(|p| p.line() as u32),
                message,
            });
        }
    }

    /// Whether `e` is a number the front end can see: a numeral, a
    /// constant expression of numerals, or a local bound to a small
    /// numeric constant.
    fn is_number_operand(&self, e: &Expression) -> bool {
        match e {
            Expression::Var(Var::Name(n)) => {
                self.small_constants.contains_key(&n.token().to_string())
            }
            Expression::Parentheses { expression, .. } => self.is_number_operand(expression),
            _ => constant_value(e).is_some(),
        }
    }

    /// Whether the VM compares `e` with any value exactly as Lua does:
    /// strings, nil, booleans, and numbers below 2^53 in magnitude.
    fn is_exact_operand(&self, e: &Expression) -> bool {
        match e {
            Expression::String(_) => true,
            Expression::Symbol(t) => {
                matches!(t.token().to_string().as_str(), "nil" | "true" | "false")
            }
            Expression::Var(Var::Name(n)) => {
                self.small_constants.contains_key(&n.token().to_string())
            }
            Expression::Parentheses { expression, .. } => self.is_exact_operand(expression),
            _ => constant_value(e).is_some_and(is_small),
        }
    }

    /// How Lua names operand `e` in an error: a string constant, a local,
    /// an upvalue, a global or a field.
    fn describe(&self, e: &Expression) -> Option<String> {
        constant_description(e).or_else(|| self.descriptions.of_operand(e))
    }

    /// Whether `-e` may stay the VM's own negation.
    fn negates_natively(&self, e: &Expression) -> bool {
        if self.library {
            self.is_number_operand(e)
        } else {
            self.numeric.is_number(e)
        }
    }

    /// `"chunk:line:"` of `token`, the prefix Lua gives runtime errors.
    fn position(&self, token: &TokenReference) -> Expression {
        string_literal(&format!(
            "{}:{}:",
            self.chunk,
            token.token().start_position().line()
        ))
    }

    /// A small numeric literal or constant, or arithmetic of them that
    /// stays small (`CPUS * 2`): compared with another number, the VM's
    /// answer is Lua's.
    fn is_small_number(&self, e: &Expression) -> bool {
        constants::magnitude_bound(e, &self.small_constants).is_some_and(is_small)
    }

    fn comparison(&self, lhs: Expression, binop: BinOp, rhs: Expression) -> Expression {
        let ordering = matches!(
            binop,
            BinOp::LessThan(_)
                | BinOp::LessThanEqual(_)
                | BinOp::GreaterThan(_)
                | BinOp::GreaterThanEqual(_)
        );
        // The VM orders a string and a number by converting the string,
        // and a table with `__lt` and a number not at all: its own `<` is
        // Lua's only between numbers, or between strings.
        let exact = if ordering && !self.library {
            (self.is_small_number(&lhs) && self.numeric.is_number(&rhs))
                || (self.is_small_number(&rhs) && self.numeric.is_number(&lhs))
                || (is_string_literal(&lhs) && is_string_literal(&rhs))
        } else {
            self.is_exact_operand(&lhs) || self.is_exact_operand(&rhs)
        };
        let at = self.position(binop.token());
        let newlines = binop.to_string().matches('\n').count();
        let (lhs, rhs) = (parenthesised(lhs), parenthesised(rhs));
        let native = |op: &str, a: Expression, b: Expression| Expression::BinaryOperator {
            lhs: Box::new(a),
            binop: binop_symbol(op, newlines),
            rhs: Box::new(b),
        };
        match (exact, &binop) {
            // `a > b` is `b < a` in Lua; the VM's `not (a <= b)` is not.
            // An exact operand is a literal or a constant, so evaluating
            // the other first changes nothing.
            // Swapped, the operand that ended the expression (and carried
            // the space before a following `then`) comes first: close the
            // comparison with `) ` so no two tokens run together.
            (true, BinOp::GreaterThan(_)) => spaced(native(" < ", rhs, lhs)),
            (true, BinOp::GreaterThanEqual(_)) => spaced(native(" <= ", rhs, lhs)),
            (true, _) => Expression::BinaryOperator {
                lhs: Box::new(lhs),
                binop,
                rhs: Box::new(rhs),
            },
            (false, BinOp::LessThan(_)) => helper_call(helpers::LT, vec![lhs, rhs, at], newlines),
            (false, BinOp::LessThanEqual(_)) => {
                helper_call(helpers::LE, vec![lhs, rhs, at], newlines)
            }
            (false, BinOp::GreaterThan(_)) => {
                helper_call(helpers::LT, vec![lhs, rhs, at, swapped()], newlines)
            }
            (false, BinOp::GreaterThanEqual(_)) => {
                helper_call(helpers::LE, vec![lhs, rhs, at, swapped()], newlines)
            }
            (false, BinOp::TwoEqual(_)) => helper_call(helpers::EQ, vec![lhs, rhs, at], newlines),
            (false, _) => Expression::UnaryOperator {
                unop: UnOp::Not(symbol("not ")),
                expression: Box::new(helper_call(helpers::EQ, vec![lhs, rhs, at], newlines)),
            },
        }
    }
}

/// Lua's description of a string constant operand (`constant '3.5'`).
fn constant_description(e: &Expression) -> Option<String> {
    match e {
        Expression::String(t) => {
            let text = t.token().to_string();
            let inner = text
                .strip_prefix(['"', '\''])
                .and_then(|t| t.strip_suffix(['"', '\'']))?;
            (!inner.contains(['\\', '"'])).then(|| format!("constant '{inner}'"))
        }
        Expression::Parentheses { expression, .. } => constant_description(expression),
        _ => None,
    }
}

/// The operands' descriptions as a helper's trailing arguments (a string
/// or nil each); none when no operand has one.
fn description_arguments<const N: usize>(described: [Option<String>; N]) -> Vec<Expression> {
    if described.iter().all(Option::is_none) {
        return Vec::new();
    }
    described
        .into_iter()
        .map(|d| d.map_or_else(|| Expression::Symbol(symbol("nil")), |d| string_literal(&d)))
        .collect()
}

/// Whether `e` is a string literal (perhaps in parentheses).
fn is_string_literal(e: &Expression) -> bool {
    match e {
        Expression::String(_) => true,
        Expression::Parentheses { expression, .. } => is_string_literal(expression),
        _ => false,
    }
}

impl VisitorMut for Rewrites {
    fn visit_expression_end(&mut self, expression: Expression) -> Expression {
        let expression = match expression {
            // `s.len` read (not assigned): the last field, too.
            Expression::Var(Var::Expression(v)) => {
                let (prefix, suffixes) = methods::rewrite_string_fields(
                    v.prefix().clone(),
                    v.suffixes().cloned().collect(),
                    false,
                    &|t| self.position(t),
                );
                chain_expression(prefix, suffixes)
            }
            other => other,
        };
        match expression {
            Expression::BinaryOperator { lhs, binop, rhs } => {
                let newlines = binop.to_string().matches('\n').count();
                let helper = match &binop {
                    BinOp::TwoDots(_) => Some(CONCAT_HELPER),
                    BinOp::DoubleSlash(_) => Some(helpers::IDIV),
                    BinOp::Percent(_) => Some(helpers::MOD),
                    BinOp::DoubleLessThan(_) => Some(helpers::SHL),
                    BinOp::DoubleGreaterThan(_) => Some(helpers::SHR),
                    BinOp::Ampersand(_) => Some(helpers::BAND),
                    BinOp::Pipe(_) => Some(helpers::BOR),
                    BinOp::Tilde(_) => Some(helpers::BXOR),
                    _ => None,
                };
                // `+ - * / ^`: the VM's own operation when both sides are
                // numbers whatever happens (`numeric.rs`), the exact helper
                // otherwise: the VM adds a string as a float ("10" + 1 is
                // 11.0, Lua's 11) and calls no `__add`. The library's own
                // code keeps the old rule: one side a number it wrote.
                let number_side = if self.library {
                    (self.is_number_operand(&lhs) || self.is_number_operand(&rhs))
                        && !is_string_literal(&lhs)
                        && !is_string_literal(&rhs)
                } else {
                    self.numeric.is_number(&lhs) && self.numeric.is_number(&rhs)
                };
                let helper = helper.or(match &binop {
                    _ if number_side => None,
                    BinOp::Plus(_) => Some(helpers::ADD),
                    BinOp::Minus(_) => Some(helpers::SUB),
                    BinOp::Star(_) => Some(helpers::MUL),
                    BinOp::Slash(_) => Some(helpers::DIV),
                    BinOp::Caret(_) => Some(helpers::POW),
                    _ => None,
                });
                if let Some(helper) = helper {
                    // Lua names the operand in the error: `(local 'n')`,
                    // `(constant '3.5')` for a string that does not convert
                    // (a constant always concatenates).
                    let described = [&*lhs, &*rhs].map(|e| match helper {
                        CONCAT_HELPER => self.descriptions.of_operand(e),
                        _ => self.describe(e),
                    });
                    let mut args = vec![*lhs, *rhs, self.position(binop.token())];
                    args.extend(description_arguments(described));
                    return helper_call(helper, args, newlines);
                }
                match binop {
                    BinOp::LessThan(_)
                    | BinOp::LessThanEqual(_)
                    | BinOp::GreaterThan(_)
                    | BinOp::GreaterThanEqual(_)
                    | BinOp::TwoEqual(_)
                    | BinOp::TildeEqual(_) => self.comparison(*lhs, binop, *rhs),
                    binop => Expression::BinaryOperator {
                        lhs: Box::new(parenthesised(*lhs)),
                        binop,
                        rhs: Box::new(parenthesised(*rhs)),
                    },
                }
            }
            Expression::UnaryOperator {
                unop: UnOp::Tilde(token),
                expression,
            } => {
                let mut args = vec![self.position(&token)];
                args.extend(description_arguments([self.describe(&expression)]));
                args.insert(0, *expression);
                helper_call(helpers::BNOT, args, 0)
            }
            // The VM negates a string as a float (`-s` of "10" is -10.0,
            // Lua's -10) and calls no `__unm`: only numbers stay its own.
            Expression::UnaryOperator {
                unop: UnOp::Minus(token),
                expression,
            } if !self.negates_natively(&expression) => {
                let mut args = vec![self.position(&token)];
                args.extend(description_arguments([self.describe(&expression)]));
                args.insert(0, *expression);
                helper_call(helpers::UNM, args, 0)
            }
            Expression::UnaryOperator { unop, expression } => Expression::UnaryOperator {
                unop,
                expression: Box::new(parenthesised(*expression)),
            },
            Expression::String(token) => match wide_unicode_escapes(token.token()) {
                Some(text) => Expression::String(TokenReference::new(
                    token.leading_trivia().cloned().collect(),
                    Token::new(text),
                    token.trailing_trivia().cloned().collect(),
                )),
                None => Expression::String(token),
            },
            Expression::Number(token) => match numeral_for_piccolo(&token.token().to_string()) {
                Some(text) => Expression::Number(TokenReference::new(
                    token.leading_trivia().cloned().collect(),
                    Token::new(TokenType::Number { text: text.into() }),
                    token.trailing_trivia().cloned().collect(),
                )),
                None => Expression::Number(token),
            },
            Expression::Parentheses {
                contained,
                expression,
            } if matches!(
                *expression,
                Expression::FunctionCall(_) | Expression::Symbol(_)
            ) =>
            {
                let is_call_or_varargs = match &*expression {
                    Expression::Symbol(t) => t.token().to_string() == "...",
                    // Our own operator helpers return one value already.
                    Expression::FunctionCall(call) => !is_single_value_helper(call),
                    _ => true,
                };
                if is_call_or_varargs {
                    let newlines = contained.tokens().0.to_string().matches('\n').count()
                        + contained.tokens().1.to_string().matches('\n').count();
                    helper_call(FIRST_HELPER, vec![*expression], newlines)
                } else {
                    Expression::Parentheses {
                        contained,
                        expression,
                    }
                }
            }
            other => other,
        }
    }

    fn visit_local_assignment(&mut self, node: LocalAssignment) -> LocalAssignment {
        let mut attributes = Vec::new();
        for attribute in node.attributes() {
            match attribute.map(|a| a.name().token().to_string()) {
                None => {}
                Some(name) if name == "const" => {}
                Some(name) if name == "close" => {
                    self.refuse(
                        &node,
                        "to-be-closed variables (<close>) are not supported".into(),
                    );
                }
                Some(name) => {
                    self.refuse(&node, format!("unknown attribute '{name}'"));
                }
            }
            attributes.push(None);
        }
        node.with_attributes(attributes)
    }

    fn visit_stmt_end(&mut self, stmt: Stmt) -> Stmt {
        match stmt {
            Stmt::Assignment(a) if a.variables().len() > 1 => {
                let split = split_assignment(a);
                Stmt::Do(Box::new(if self.sets_through_helper {
                    setindex::through_helper_in(split)
                } else {
                    split
                }))
            }
            Stmt::Assignment(a) if self.sets_through_helper => setindex::through_helper(a),
            Stmt::NumericFor(f) if !has_integer_literal_controls(&f) => {
                let at = self.position(f.for_token());
                Stmt::Do(Box::new(prepared_for(*f, at)))
            }
            other => other,
        }
    }

    fn visit_function_body_end(&mut self, body: FunctionBody) -> FunctionBody {
        let params: Vec<Parameter> = body.parameters().iter().cloned().collect();
        let variadic = matches!(params.last(), Some(Parameter::Ellipsis(_)));
        let named: Vec<&TokenReference> = params
            .iter()
            .filter_map(|p| match p {
                Parameter::Name(name) => Some(name),
                _ => None,
            })
            .collect();
        if named.is_empty() || named.len() + usize::from(variadic) != params.len() {
            return body;
        }
        let newlines = body.parameters().to_string().matches('\n').count();
        let mut names = Punctuated::new();
        let last = named.len() - 1;
        for (i, name) in named.iter().enumerate() {
            let name = identifier(&name.token().to_string());
            names.push(if i == last {
                Pair::End(name)
            } else {
                Pair::Punctuated(name, symbol(", "))
            });
        }
        let mut varargs = Punctuated::new();
        varargs.push(Pair::End(Expression::Symbol(symbol("..."))));
        let unpack = LocalAssignment::new(names)
            .with_local_token(symbol("local "))
            .with_equal_token(Some(symbol(" = ")))
            .with_expressions(varargs);
        let mut stmts = vec![(Stmt::LocalAssignment(unpack), Some(symbol("; ")))];
        let block = if variadic {
            // `function(a, ...) body end` panics in piccolo 0.3.3 when a
            // caller passes fewer than the named parameters. It becomes
            // `function(...) local a = ...; return (function(...) body
            // end)(__va_from(2, ...)) end`: the body's `...` is the rest.
            let mut inner_params = Punctuated::new();
            inner_params.push(Pair::End(Parameter::Ellipsis(symbol("..."))));
            let inner = FunctionBody::new()
                .with_parameters(inner_params)
                .with_block(body.block().clone())
                .with_end_token(symbol(" end"));
            let function = Expression::Function(Box::new(
                full_moon::ast::AnonymousFunction::new()
                    .with_function_token(symbol("function"))
                    .with_body(inner),
            ));
            let rest = helper_call(
                VARARGS_FROM_HELPER,
                vec![
                    Expression::Number(number_token(&(named.len() + 1).to_string())),
                    Expression::Symbol(symbol("...")),
                ],
                0,
            );
            let mut args = Punctuated::new();
            args.push(Pair::End(rest));
            let call = FunctionCall::new(Prefix::Expression(Box::new(Expression::Parentheses {
                contained: ContainedSpan::new(symbol("("), symbol(")")),
                expression: Box::new(function),
            })))
            .with_suffixes(vec![Suffix::Call(Call::AnonymousCall(Box::new(
                FunctionArgs::Parentheses {
                    parentheses: ContainedSpan::new(symbol("("), symbol(") ")),
                    arguments: args,
                },
            )))]);
            let mut returns = Punctuated::new();
            returns.push(Pair::End(Expression::FunctionCall(call)));
            Block::new().with_stmts(stmts).with_last_stmt(Some((
                full_moon::ast::LastStmt::Return(
                    full_moon::ast::Return::new()
                        .with_token(symbol("return "))
                        .with_returns(returns),
                ),
                None,
            )))
        } else {
            stmts.extend(body.block().stmts_with_semicolon().cloned());
            body.block().clone().with_stmts(stmts)
        };
        let mut ellipsis = Punctuated::new();
        ellipsis.push(Pair::End(Parameter::Ellipsis(with_trailing_newlines(
            &symbol("..."),
            newlines,
        ))));
        body.with_parameters(ellipsis).with_block(block)
    }

    fn visit_function_call_end(&mut self, call: FunctionCall) -> FunctionCall {
        let call = self.locate_error_call(call);
        let (prefix, suffixes) =
            rewrite_chain(call.prefix().clone(), call.suffixes().cloned().collect());
        let (prefix, suffixes) =
            methods::rewrite_string_fields(prefix, suffixes, false, &|t| self.position(t));
        match (prefix, suffixes.is_empty()) {
            (Prefix::Expression(e), true) => match *e {
                Expression::FunctionCall(fc) => fc,
                other => FunctionCall::new(Prefix::Expression(Box::new(other))),
            },
            (prefix, _) => FunctionCall::new(prefix).with_suffixes(suffixes),
        }
    }

    fn visit_var_expression_end(&mut self, var: VarExpression) -> VarExpression {
        let (prefix, suffixes) =
            rewrite_chain(var.prefix().clone(), var.suffixes().cloned().collect());
        // The last field may be an assignment's target: read at the
        // expression (below).
        let (prefix, suffixes) =
            methods::rewrite_string_fields(prefix, suffixes, true, &|t| self.position(t));
        VarExpression::new(prefix).with_suffixes(suffixes)
    }
}

impl Rewrites {
    /// `error(msg [, level])` -> `__error("chunk:line:", msg [, level])`,
    /// and `assert(...)` -> `__assert("chunk:line:", ...)`: the position
    /// Lua gives these errors, which the VM does not know.
    fn locate_error_call(&self, call: FunctionCall) -> FunctionCall {
        let Prefix::Name(name) = call.prefix() else {
            return call;
        };
        let helper_name = match name.token().to_string().as_str() {
            "error" => ERROR_HELPER,
            "assert" => ASSERT_HELPER,
            _ => return call,
        };
        if call.suffixes().count() != 1 {
            return call;
        }
        let Some(Suffix::Call(Call::AnonymousCall(args))) = call.suffixes().next() else {
            return call;
        };
        let FunctionArgs::Parentheses {
            parentheses,
            arguments,
        } = &**args
        else {
            return call;
        };
        let line = name.token().start_position().line();
        let mut list = Punctuated::new();
        let position = string_literal(&format!("{}:{line}:", self.chunk));
        if arguments.is_empty() {
            list.push(Pair::End(position));
        } else {
            list.push(Pair::Punctuated(position, symbol(", ")));
            for pair in arguments.pairs() {
                list.push(pair.clone());
            }
        }
        let leading: Vec<_> = name.leading_trivia().cloned().collect();
        let helper = TokenReference::new(
            leading,
            Token::new(TokenType::Identifier {
                identifier: helper_name.into(),
            }),
            name.trailing_trivia().cloned().collect(),
        );
        FunctionCall::new(Prefix::Name(helper)).with_suffixes(vec![Suffix::Call(
            Call::AnonymousCall(Box::new(FunctionArgs::Parentheses {
                parentheses: parentheses.clone(),
                arguments: list,
            })),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(s: &str) -> String {
        rewrite_source(s, "t.lua").unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    /// A file that may remove keys sends its index assignments through
    /// `__setindex`; one that never does keeps the VM's assignments.
    #[test]
    fn index_assignments_go_through_the_helper_only_where_keys_are_removed() {
        assert_eq!(rw("t.x = 1\nt[k] = 2"), "t.x = 1\nt[k] = 2");
        assert_eq!(rw("t[1] = {}"), "t[1] = {}");
        let out = rw("t.x = nil\nt[k] = 1\nf().y.z = 2\nx = nil");
        for call in [
            "__setindex(t, \"x\", nil",
            "__setindex(t, k, 1",
            "__setindex(f().y, \"z\", 2",
        ] {
            assert!(out.contains(call), "{out}");
        }
        assert!(
            out.ends_with("x = nil") && out.matches('\n').count() == 3,
            "{out}"
        );
        assert!(rw("t.x = v").contains("__setindex(t, \"x\", v)"));
        assert!(rw("rawset(t, k, nil) t.y = 1").contains("__setindex(t, \"y\", 1)"));
        // Line breaks after `=` are kept: the lines below keep their numbers.
        assert_eq!(rw("t.x =\n nil\ny = 1").matches('\n').count(), 2);
        let split = rw("a.x, a.y = a.y, nil");
        assert!(
            split.contains("__setindex(a, \"x\", __a1)")
                && split.contains("__setindex(a, \"y\", __a2)"),
            "{split}"
        );
    }

    #[test]
    fn helpers_never_run_into_a_keyword() {
        assert_eq!(
            rw("return not(x <= y)"),
            "return not( __cmp_le(x , y, \"t.lua:1:\"))"
        );
        assert_eq!(rw("return(f())"), "return __first(f())");
    }

    #[test]
    fn swapped_comparisons_keep_their_tokens_apart() {
        assert_eq!(rw("if m.time>0 then end"), "if (0  < m.time) then end");
        assert_eq!(rw("return m.time>=1"), "return (1 <= m.time) ");
    }

    #[test]
    fn only_numbers_are_ordered_by_the_vm_against_a_literal() {
        // A value of the event: a number, the VM's own `<`.
        assert_eq!(rw("return m.values[1] < 4"), "return m.values[1] < 4");
        // Anything else may be a string or a table with `__lt`.
        assert!(rw("return x < 4").contains("__cmp_lt"));
        assert!(rw("return m.values[1] > \"4\"").contains("__cmp_lt"));
        assert!(rw("return m.plugin_instance < 2").contains("__cmp_lt"));
        // The shipped rules' comparisons of event values stay the VM's
        // (the write path's cost).
        for file in ["example.lua", "disk_almost_full.lua", "load_high.lua"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/").to_string() + file;
            let source = std::fs::read_to_string(path).unwrap();
            let out = rewrite_source(&source, file).unwrap();
            assert!(!out.contains("__cmp_l"), "{file}: {out}");
            assert!(!out.contains("__op_"), "{file}: {out}");
        }
        // Equality never converts: it stays the VM's.
        assert!(!rw("return x == 4").contains("__cmp"));
    }

    #[test]
    fn numeric_for_gets_its_controls_prepared() {
        let out = rw("for i = lo + 1, hi do\n  x = i\nend\ny = 1");
        assert_eq!(
            out,
            "do local __for1, __for2, __for3, __for4 =  __for_prep( __op_add(lo , 1, \"t.lua:1:\", \"global 'lo'\", nil), hi , 1, \"t.lua:1:\"); for __fi = __for1, __for2, __for3 do\nlocal i = __fi - __for4;   x = i\nend end\ny = 1"
        );
        assert_eq!(rw("for i = 1, #t do end"), "for i = 1, #t do end");
    }

    #[test]
    fn rewrites_method_calls_and_chains() {
        assert_eq!(rw("return s:upper()"), "return __method(s, \"upper\")");
        assert_eq!(
            rw("return s:sub(2, 4)"),
            "return __method(s, \"sub\", 2, 4)"
        );
        assert_eq!(
            rw("return s:lower():len()"),
            "return __method(__method(s, \"lower\"), \"len\")"
        );
        assert_eq!(
            rw("return m.a.b:f(x).y"),
            "return __method(m.a.b, \"f\", x).y"
        );
        assert_eq!(rw("obj:go()"), "__method(obj, \"go\")");
        assert_eq!(
            rw("return (\"%d\"):format(n)"),
            "return __method((\"%d\"), \"format\", n)"
        );
        assert_eq!(rw("return f(a:b())"), "return f(__method(a, \"b\"))");
        assert_eq!(rw("return t:m{1}"), "return __method(t, \"m\", {1})");
    }

    #[test]
    fn error_calls_learn_their_position() {
        assert_eq!(
            rw("local x\nerror('boom')"),
            "local x\n__error(\"t.lua:2:\", 'boom')"
        );
        assert_eq!(
            rw("error({code = 1}, 2)"),
            "__error(\"t.lua:1:\", {code = 1}, 2)"
        );
        assert_eq!(rw("t.error('x')"), "t.error('x')");
    }

    #[test]
    fn parenthesised_calls_keep_one_value() {
        assert_eq!(rw("print((f()))"), "print( __first(f()))");
        assert_eq!(rw("return (...)"), "return  __first(...)");
        assert_eq!(rw("return (a)"), "return (a)");
    }

    #[test]
    fn concatenation_goes_through_the_helper() {
        // With the position and Lua's description of each operand.
        assert_eq!(
            rw("local a\nreturn a .. b"),
            "local a\nreturn  __concat(a , b, \"t.lua:2:\", \"local 'a'\", \"global 'b'\")"
        );
        assert_eq!(
            rw("return 'x' .. 1 .. f()"),
            "return  __concat('x' ,  __concat(1 , f(), \"t.lua:1:\"), \"t.lua:1:\")"
        );
        assert_eq!(rw("return a ..\n b").matches('\n').count(), 1);
    }

    #[test]
    fn multiple_assignments_evaluate_every_value_first() {
        // (Tokens keep their own spacing: `b ` before `=` stays `b `.)
        assert_eq!(
            rw("a, b = b, a"),
            "do local __a1, __a2 = b, a; a = __a1; b  = __a2;  end "
        );
        let out = rw("local x = 1\nt[i], t[j] = t[j], t[i]\n");
        assert!(
            out.starts_with("local x = 1\ndo local __a1, __a2 = t[j], t[i]"),
            "{out}"
        );
        assert_eq!(out.matches('\n').count(), 2);
        assert_eq!(
            rw("if c then a, b = b, a end"),
            "if c then do local __a1, __a2 = b, a ; a = __a1; b  = __a2;  end end"
        );
        assert_eq!(rw("a = 1"), "a = 1");
    }

    #[test]
    fn parameters_are_unpacked_from_varargs() {
        assert_eq!(
            rw("local function f(a, b) return b end"),
            "local function f(...) local a, b = ...; return b end"
        );
        assert_eq!(
            rw("return function(m) end"),
            "return function(...) local m = ...; end"
        );
        assert_eq!(
            rw("function t:m(x) end"),
            "function t:m(...) local x = ...; end"
        );
        assert_eq!(
            rw("local function g(a, ...) end"),
            "local function g(...) local a = ...; return (function(...) end)( __va_from(2, ...)) end"
        );
        assert_eq!(rw("local function h() end"), "local function h() end");
        let multi = "local function f(a,\n  b)\n  error('x')\nend";
        assert_eq!(rw(multi).matches('\n').count(), 3, "{}", rw(multi));
    }

    #[test]
    fn keeps_line_numbers_and_leaves_other_code_alone() {
        let src = "local a = s\n  :upper()\nerror('x')\n";
        let out = rw(src);
        assert_eq!(
            out.matches('\n').count(),
            src.matches('\n').count(),
            "{out}"
        );
        assert_eq!(
            rw("local t = {a = 1} goto x ::x::"),
            "local t = {a = 1} goto x ::x::"
        );
        assert_eq!(
            rewrite_source("return +", "t.lua").unwrap_err().line,
            Some(1)
        );
    }
}
