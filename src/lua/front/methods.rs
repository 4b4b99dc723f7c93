//! Method calls: `obj:name(args)` becomes `__method(obj, "name", args)`,
//! which finds string methods (piccolo cannot index strings) and follows
//! `__index` tables.

use super::*;

/// Replaces every method-call suffix of a chain by a `__method` call whose
/// first argument is the chain so far.
pub(super) fn rewrite_chain(mut prefix: Prefix, suffixes: Vec<Suffix>) -> (Prefix, Vec<Suffix>) {
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
pub(super) fn chain_expression(prefix: Prefix, suffixes: Vec<Suffix>) -> Expression {
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
