//! Small readers of full_moon's syntax tree and tokens, shared by the
//! analysis and the lints.

use full_moon::LuaVersion;
use full_moon::ast::{
    Block, Expression, FunctionArgs, FunctionBody, Index, LastStmt, Parameter, Prefix, Suffix, Var,
};
use full_moon::tokenizer::{Symbol, Token, TokenReference, TokenType};

/// `event.field` (a dot read of the handler's parameter), its field name.
pub(super) fn event_field(e: &Expression, p: &str) -> Option<String> {
    let Expression::Var(Var::Expression(v)) = unparen(e) else {
        return None;
    };
    let Prefix::Name(name) = v.prefix() else {
        return None;
    };
    let suffixes: Vec<&Suffix> = v.suffixes().collect();
    match suffixes.as_slice() {
        [Suffix::Index(Index::Dot { name: field, .. })] if ident(name) == p => Some(ident(field)),
        _ => None,
    }
}

pub(super) fn arguments(args: &FunctionArgs) -> Option<Vec<&Expression>> {
    match args {
        FunctionArgs::Parentheses { arguments, .. } => Some(arguments.iter().collect()),
        _ => None,
    }
}

pub(super) fn unparen(mut e: &Expression) -> &Expression {
    while let Expression::Parentheses { expression, .. } = e {
        e = expression;
    }
    e
}

pub(super) fn ident(t: &TokenReference) -> String {
    match t.token().token_type() {
        TokenType::Identifier { identifier } => identifier.to_string(),
        TokenType::Symbol { symbol } => symbol.to_string(),
        _ => t.token().to_string(),
    }
}

/// The text of a quoted string literal without escapes (an escape would
/// need decoding; such strings are not used as guards).
pub(super) fn string_literal(e: &Expression) -> Option<String> {
    let Expression::String(t) = unparen(e) else {
        return None;
    };
    match t.token().token_type() {
        TokenType::StringLiteral {
            literal,
            multi_line_depth: 0,
            ..
        } if !literal.contains('\\') && !t.token().to_string().starts_with('[') => {
            Some(literal.to_string())
        }
        _ => None,
    }
}

/// The tokens of `text` in source order, without whitespace and comments
/// (an AST node's own token walk is not in source order).
pub(super) fn significant_tokens(text: &str) -> Vec<Token> {
    match full_moon::tokenizer::Lexer::new(text, LuaVersion::lua54()).collect() {
        full_moon::tokenizer::LexerResult::Ok(tokens) => tokens
            .into_iter()
            .filter(|t| !t.token_type().is_trivia())
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn first_param(body: &FunctionBody) -> Option<String> {
    match body.parameters().iter().next()? {
        Parameter::Name(name) => Some(ident(name)),
        _ => None,
    }
}

pub(super) fn is_symbol(t: &Token, s: Symbol) -> bool {
    matches!(t.token_type(), TokenType::Symbol { symbol } if *symbol == s)
}

pub(super) fn is_nil_or_false(e: &Expression) -> bool {
    matches!(unparen(e), Expression::Symbol(t) if matches!(ident(t).as_str(), "nil" | "false"))
}

/// A block that is empty or only `return` (with nothing, `nil` or `false`).
pub(super) fn does_nothing(block: &Block) -> bool {
    block.stmts().next().is_none()
        && match block.last_stmt() {
            None => true,
            Some(LastStmt::Return(r)) => r.returns().iter().all(is_nil_or_false),
            Some(_) => false,
        }
}

pub(super) fn first_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    line.chars().take(60).collect()
}
