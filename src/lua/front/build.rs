//! Building the AST nodes the rewrites insert: helper calls, tokens,
//! parentheses, with the spacing and line breaks that keep every line of
//! the file where it was.

use super::*;

/// The fourth argument of a comparison helper for `a > b` and `a >= b`:
/// the operands come in source order (so `a` is still evaluated first, as
/// Lua does) and are compared the other way round, `b < a`.
pub(super) fn swapped() -> Expression {
    Expression::Symbol(symbol("true"))
}

pub(super) fn binop_symbol(text: &str, newlines: usize) -> BinOp {
    let token = with_trailing_newlines(&symbol(text), newlines);
    match text.trim() {
        "<" => BinOp::LessThan(token),
        "<=" => BinOp::LessThanEqual(token),
        "-" => BinOp::Minus(token),
        other => unreachable!("binop_symbol({other})"),
    }
}

/// Whether `call` is one of the helpers the rewrites insert that always
/// return exactly one value.
pub(super) fn is_single_value_helper(call: &FunctionCall) -> bool {
    let Prefix::Name(name) = call.prefix() else {
        return false;
    };
    let name = name.token().to_string();
    [
        CONCAT_HELPER,
        helpers::LT,
        helpers::LE,
        helpers::EQ,
        helpers::IDIV,
        helpers::MOD,
        helpers::SHL,
        helpers::SHR,
        helpers::BAND,
        helpers::BOR,
        helpers::BXOR,
        helpers::BNOT,
        helpers::ADD,
        helpers::SUB,
        helpers::MUL,
        helpers::DIV,
        helpers::POW,
        helpers::UNM,
    ]
    .contains(&name.as_str())
}

/// `(e) `: parentheses with a space after them.
pub(super) fn spaced(e: Expression) -> Expression {
    Expression::Parentheses {
        contained: ContainedSpan::new(symbol("("), symbol(") ")),
        expression: Box::new(e),
    }
}

/// `e`, in parentheses when it is an operation (the VM's own precedence
/// then never matters).
pub(super) fn parenthesised(e: Expression) -> Expression {
    match e {
        Expression::BinaryOperator { .. } | Expression::UnaryOperator { .. } => {
            Expression::Parentheses {
                contained: ContainedSpan::new(symbol("("), symbol(")")),
                expression: Box::new(e),
            }
        }
        other => other,
    }
}

/// ` name(args...)`, keeping `newlines` line breaks after it. The leading
/// space keeps the name apart from a keyword before it (`not(a < b)` must
/// not become `not__cmp_lt(...)`).
pub(super) fn helper_call(name: &str, args: Vec<Expression>, newlines: usize) -> Expression {
    let mut list = Punctuated::new();
    let last = args.len() - 1;
    for (i, arg) in args.into_iter().enumerate() {
        list.push(if i == last {
            Pair::End(arg)
        } else {
            Pair::Punctuated(arg, symbol(", "))
        });
    }
    let name = TokenReference::new(
        vec![Token::new(TokenType::Whitespace {
            characters: " ".into(),
        })],
        Token::new(TokenType::Identifier {
            identifier: name.into(),
        }),
        Vec::new(),
    );
    Expression::FunctionCall(FunctionCall::new(Prefix::Name(name)).with_suffixes(vec![
        Suffix::Call(Call::AnonymousCall(Box::new(FunctionArgs::Parentheses {
            parentheses: ContainedSpan::new(
                symbol("("),
                with_trailing_newlines(&symbol(")"), newlines),
            ),
            arguments: list,
        }))),
    ]))
}

pub(super) fn number_token(text: &str) -> TokenReference {
    TokenReference::new(
        Vec::new(),
        Token::new(TokenType::Number { text: text.into() }),
        Vec::new(),
    )
}

pub(super) fn symbol(text: &str) -> TokenReference {
    TokenReference::symbol(text).expect("a valid Lua symbol")
}

pub(super) fn identifier(name: &str) -> TokenReference {
    TokenReference::new(
        Vec::new(),
        Token::new(TokenType::Identifier {
            identifier: name.into(),
        }),
        Vec::new(),
    )
}

pub(super) fn string_literal(text: &str) -> Expression {
    Expression::String(TokenReference::new(
        Vec::new(),
        Token::new(TokenType::StringLiteral {
            literal: text.into(),
            multi_line_depth: 0,
            quote_type: StringLiteralQuoteType::Double,
        }),
        Vec::new(),
    ))
}

pub(super) fn with_trailing_newlines(token: &TokenReference, newlines: usize) -> TokenReference {
    if newlines == 0 {
        return token.clone();
    }
    let mut trailing: Vec<Token> = token.trailing_trivia().cloned().collect();
    trailing.push(Token::new(TokenType::Whitespace {
        characters: "\n".repeat(newlines).into(),
    }));
    TokenReference::new(
        token.leading_trivia().cloned().collect(),
        token.token().clone(),
        trailing,
    )
}
