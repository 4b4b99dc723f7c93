//! A source front end for what piccolo's VM cannot do itself: it cannot
//! index a string, so `s:upper()` fails at run time. Before compiling, each
//! method call `obj:name(args)` is rewritten into `__method(obj, "name",
//! args)`, a callback that finds `string.name` for strings or the method of
//! a table (following `__index` tables) and tail-calls it. The rewrite keeps
//! every line where it was, so error line numbers still match the file.

use full_moon::LuaVersion;
use full_moon::ast::punctuated::{Pair, Punctuated};
use full_moon::ast::span::ContainedSpan;
use full_moon::ast::{
    Call, Expression, FunctionArgs, FunctionCall, Prefix, Suffix, Var, VarExpression,
};
use full_moon::tokenizer::{StringLiteralQuoteType, Token, TokenReference, TokenType};
use full_moon::visitors::VisitorMut;

/// The global the rewritten calls go through.
pub const METHOD_HELPER: &str = "__method";

/// The rewritten source, or `None` when full_moon cannot parse it (the VM's
/// own parser then reports the syntax error).
pub fn rewrite_method_calls(source: &str) -> Option<String> {
    if !source.contains(':') {
        return None;
    }
    let ast = full_moon::parse_fallible(source, LuaVersion::lua54())
        .into_result()
        .ok()?;
    Some(MethodCalls.visit_ast(ast).to_string())
}

struct MethodCalls;

impl VisitorMut for MethodCalls {
    fn visit_function_call_end(&mut self, call: FunctionCall) -> FunctionCall {
        let (prefix, suffixes) =
            rewrite_chain(call.prefix().clone(), call.suffixes().cloned().collect());
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
        VarExpression::new(prefix).with_suffixes(suffixes)
    }
}

/// Replaces every method-call suffix of a chain by a `__method` call whose
/// first argument is the chain so far.
fn rewrite_chain(mut prefix: Prefix, suffixes: Vec<Suffix>) -> (Prefix, Vec<Suffix>) {
    if !suffixes
        .iter()
        .any(|s| matches!(s, Suffix::Call(Call::MethodCall(_))))
    {
        return (prefix, suffixes);
    }
    let mut pending = Vec::new();
    for suffix in suffixes {
        let Suffix::Call(Call::MethodCall(method)) = suffix else {
            pending.push(suffix);
            continue;
        };
        let object = chain_expression(prefix, std::mem::take(&mut pending));
        let name = method.name().token().to_string();
        let mut dropped = method.colon_token().to_string() + &method.name().to_string();
        let (method_args, close) = match method.args().clone() {
            FunctionArgs::Parentheses {
                parentheses,
                arguments,
            } => {
                let (open, close) = parentheses.tokens();
                dropped.push_str(&open.to_string());
                (
                    arguments.into_iter().collect::<Vec<_>>(),
                    Some(close.clone()),
                )
            }
            FunctionArgs::String(s) => (vec![Expression::String(s)], None),
            FunctionArgs::TableConstructor(t) => (vec![Expression::TableConstructor(t)], None),
            _ => (Vec::new(), None),
        };
        let mut args = Punctuated::new();
        args.push(Pair::Punctuated(object, symbol(", ")));
        let mut rest = vec![string_literal(&name)];
        rest.extend(method_args);
        let last = rest.len() - 1;
        for (i, arg) in rest.into_iter().enumerate() {
            if i == last {
                args.push(Pair::End(arg));
            } else {
                args.push(Pair::Punctuated(arg, symbol(", ")));
            }
        }
        // Keep the line count: newlines in dropped tokens move after the call.
        let newlines = dropped.matches('\n').count();
        let open = symbol("(");
        let close = close.unwrap_or_else(|| symbol(")"));
        let close = with_trailing_newlines(&close, newlines);
        let call = FunctionCall::new(Prefix::Name(identifier(METHOD_HELPER))).with_suffixes(vec![
            Suffix::Call(Call::AnonymousCall(Box::new(FunctionArgs::Parentheses {
                parentheses: ContainedSpan::new(open, close),
                arguments: args,
            }))),
        ]);
        prefix = Prefix::Expression(Box::new(Expression::FunctionCall(call)));
    }
    (prefix, pending)
}

/// The expression `prefix` followed by `suffixes`.
fn chain_expression(prefix: Prefix, suffixes: Vec<Suffix>) -> Expression {
    match suffixes.last() {
        None => match prefix {
            Prefix::Name(name) => Expression::Var(Var::Name(name)),
            Prefix::Expression(e) => *e,
            other => Expression::Var(Var::Expression(Box::new(VarExpression::new(other)))),
        },
        Some(Suffix::Call(_)) => {
            Expression::FunctionCall(FunctionCall::new(prefix).with_suffixes(suffixes))
        }
        Some(_) => Expression::Var(Var::Expression(Box::new(
            VarExpression::new(prefix).with_suffixes(suffixes),
        ))),
    }
}

fn symbol(text: &str) -> TokenReference {
    TokenReference::symbol(text).expect("a valid Lua symbol")
}

fn identifier(name: &str) -> TokenReference {
    TokenReference::new(
        Vec::new(),
        Token::new(TokenType::Identifier {
            identifier: name.into(),
        }),
        Vec::new(),
    )
}

fn string_literal(text: &str) -> Expression {
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

fn with_trailing_newlines(token: &TokenReference, newlines: usize) -> TokenReference {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(s: &str) -> String {
        rewrite_method_calls(s).unwrap_or_else(|| s.to_string())
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
        assert_eq!(rewrite_method_calls("return +"), None);
    }
}
