//! Method calls: `obj:name(args)` becomes `__method(obj, "name", args)`,
//! which finds string methods (piccolo cannot index strings) and follows
//! `__index` tables.

use super::*;
use full_moon::ast::Index;

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

/// The names of the string library: `s.len` reads `string.len` in Lua,
/// where piccolo cannot index a string.
const STRING_FIELDS: &[&str] = &[
    "byte", "char", "dump", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
    "packsize", "rep", "reverse", "sub", "unpack", "upper",
];

/// Whether `suffix` reads a field of the string library's name: its
/// name token.
fn string_field(suffix: &Suffix) -> Option<&TokenReference> {
    match suffix {
        Suffix::Index(Index::Dot { name, .. })
            if STRING_FIELDS.contains(&name.token().to_string().as_str()) =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// Replaces the reads of string-library names in a chain (all of them,
/// or all but the last with `keep_last`: an assignment's target) by
/// `__index_str(object, "name", "chunk:line:")`, which reads a string's
/// field from the string library and anything else's as Lua does
/// (`position` gives the third argument, for its errors).
pub(super) fn rewrite_string_fields(
    mut prefix: Prefix,
    suffixes: Vec<Suffix>,
    keep_last: bool,
    position: &dyn Fn(&TokenReference) -> Expression,
) -> (Prefix, Vec<Suffix>) {
    let last = suffixes.len().saturating_sub(1);
    if !suffixes
        .iter()
        .enumerate()
        .any(|(i, s)| string_field(s).is_some() && !(keep_last && i == last))
    {
        return (prefix, suffixes);
    }
    let mut pending = Vec::new();
    for (i, suffix) in suffixes.into_iter().enumerate() {
        let Some(token) = string_field(&suffix).filter(|_| !(keep_last && i == last)) else {
            pending.push(suffix);
            continue;
        };
        let (name, at) = (token.token().to_string(), position(token));
        let object = chain_expression(prefix, std::mem::take(&mut pending));
        let call = helper_call(INDEX_HELPER, vec![object, string_literal(&name), at], 0);
        prefix = Prefix::Expression(Box::new(call));
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
