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
    Assignment, BinOp, Block, Call, Do, Expression, FunctionArgs, FunctionBody, FunctionCall,
    LocalAssignment, Parameter, Prefix, Stmt, Suffix, Var, VarExpression,
};
use full_moon::tokenizer::{StringLiteralQuoteType, Token, TokenReference, TokenType};
use full_moon::visitors::VisitorMut;

/// The global the rewritten calls go through.
pub const METHOD_HELPER: &str = "__method";
/// The global `a .. b` is rewritten into: piccolo formats floats unlike
/// Lua (`2.0 .. ""` gives "2") and ignores `__concat`.
pub const CONCAT_HELPER: &str = "__concat";
/// The global `(f())` and `(...)` are rewritten into: piccolo 0.3.3 does not
/// cut a parenthesised call or vararg down to one value.
pub const FIRST_HELPER: &str = "__first";
/// The global `error(...)` calls are rewritten into, with the call's
/// `chunk:line:` as first argument: piccolo's errors carry no position.
pub const ERROR_HELPER: &str = "__error";

/// The rewritten source, or `None` when full_moon cannot parse it (the VM's
/// own parser then reports the syntax error).
///
/// Two rewrites: method calls (above), and parameters: piccolo 0.3.3 leaves
/// stale stack values in parameters a caller did not pass (piccolo issue
/// #145), so `function(a, b)` becomes `function(...) local a, b = ...;`,
/// which gives missing arguments their `nil` as Lua requires. And multiple
/// assignment: piccolo 0.3.3 gets `a, b = b, a` wrong (both become the
/// same value), so it becomes `do local __a1, __a2 = b, a; a = __a1; b =
/// __a2 end`, which evaluates every right-hand side first, as Lua does.
pub fn rewrite_source(source: &str, chunk: &str) -> Option<String> {
    let ast = full_moon::parse_fallible(source, LuaVersion::lua54())
        .into_result()
        .ok()?;
    let mut rewrites = Rewrites {
        chunk: chunk.to_string(),
    };
    Some(rewrites.visit_ast(ast).to_string())
}

struct Rewrites {
    chunk: String,
}

impl VisitorMut for Rewrites {
    fn visit_expression_end(&mut self, expression: Expression) -> Expression {
        match expression {
            Expression::BinaryOperator {
                lhs,
                binop: BinOp::TwoDots(dots),
                rhs,
            } => {
                let newlines = dots.to_string().matches('\n').count();
                helper_call(CONCAT_HELPER, vec![*lhs, *rhs], newlines)
            }
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

    fn visit_stmt_end(&mut self, stmt: Stmt) -> Stmt {
        match stmt {
            Stmt::Assignment(a) if a.variables().len() > 1 => {
                Stmt::Do(Box::new(split_assignment(a)))
            }
            other => other,
        }
    }

    fn visit_function_body_end(&mut self, body: FunctionBody) -> FunctionBody {
        let params: Vec<Parameter> = body.parameters().iter().cloned().collect();
        if params.is_empty() || params.iter().any(|p| matches!(p, Parameter::Ellipsis(_))) {
            return body;
        }
        let newlines = body.parameters().to_string().matches('\n').count();
        let mut names = Punctuated::new();
        let last = params.len() - 1;
        for (i, p) in params.iter().enumerate() {
            let Parameter::Name(name) = p else {
                return body;
            };
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
        stmts.extend(body.block().stmts_with_semicolon().cloned());
        let block = body.block().clone().with_stmts(stmts);
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

impl Rewrites {
    /// `error(msg [, level])` -> `__error("chunk:line:", msg [, level])`.
    fn locate_error_call(&self, call: FunctionCall) -> FunctionCall {
        let Prefix::Name(name) = call.prefix() else {
            return call;
        };
        if name.token().to_string() != "error" || call.suffixes().count() != 1 {
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
                identifier: ERROR_HELPER.into(),
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

/// `name(args...)`, keeping `newlines` line breaks after it.
fn helper_call(name: &str, args: Vec<Expression>, newlines: usize) -> Expression {
    let mut list = Punctuated::new();
    let last = args.len() - 1;
    for (i, arg) in args.into_iter().enumerate() {
        list.push(if i == last {
            Pair::End(arg)
        } else {
            Pair::Punctuated(arg, symbol(", "))
        });
    }
    Expression::FunctionCall(
        FunctionCall::new(Prefix::Name(identifier(name))).with_suffixes(vec![Suffix::Call(
            Call::AnonymousCall(Box::new(FunctionArgs::Parentheses {
                parentheses: ContainedSpan::new(
                    symbol("("),
                    with_trailing_newlines(&symbol(")"), newlines),
                ),
                arguments: list,
            })),
        )]),
    )
}

fn split_assignment(a: Assignment) -> Do {
    let vars: Vec<Var> = a.variables().iter().cloned().collect();
    let temps: Vec<String> = (1..=vars.len()).map(|i| format!("__a{i}")).collect();
    let mut names = Punctuated::new();
    for (i, t) in temps.iter().enumerate() {
        let name = identifier(t);
        names.push(if i + 1 == temps.len() {
            Pair::End(name)
        } else {
            Pair::Punctuated(name, symbol(", "))
        });
    }
    let evaluate = LocalAssignment::new(names)
        .with_local_token(symbol(" local "))
        .with_equal_token(Some(symbol(" = ")))
        .with_expressions(a.expressions().clone());
    let mut stmts = vec![(Stmt::LocalAssignment(evaluate), Some(symbol("; ")))];
    for (var, temp) in vars.into_iter().zip(&temps) {
        let mut target = Punctuated::new();
        target.push(Pair::End(var));
        let mut value = Punctuated::new();
        value.push(Pair::End(Expression::Var(Var::Name(identifier(temp)))));
        stmts.push((
            Stmt::Assignment(Assignment::new(target, value).with_equal_token(symbol(" = "))),
            Some(symbol("; ")),
        ));
    }
    Do::new()
        .with_do_token(symbol("do"))
        .with_block(Block::new().with_stmts(stmts))
        .with_end_token(symbol(" end "))
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
        rewrite_source(s, "t.lua").unwrap_or_else(|| s.to_string())
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
        assert_eq!(rw("print((f()))"), "print(__first(f()))");
        assert_eq!(rw("return (...)"), "return __first(...)");
        assert_eq!(rw("return (a)"), "return (a)");
    }

    #[test]
    fn concatenation_goes_through_the_helper() {
        assert_eq!(rw("return a .. b"), "return __concat(a , b)");
        assert_eq!(
            rw("return 'x' .. 1 .. y"),
            "return __concat('x' , __concat(1 , y))"
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
            "local function g(a, ...) end"
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
        assert_eq!(rewrite_source("return +", "t.lua"), None);
    }
}
