//! Statement rewrites: multiple assignment evaluated before any target is
//! written, and numeric `for` loops given their control values by
//! `__for_prep`.

use super::*;

/// Whether a numeric `for` runs right without `__for_prep`: start and step
/// integer literals (the VM then runs an integer loop) and a limit that is
/// an integer literal or a length `#x`, all far from the integer limits.
pub(super) fn has_integer_literal_controls(f: &NumericFor) -> bool {
    let small_int = |e: &Expression| match e {
        Expression::Number(t) => matches!(
            numeral::read(&t.token().to_string()),
            Some(Num::Int(i)) if i.unsigned_abs() < 1 << 53
        ),
        Expression::UnaryOperator {
            unop: UnOp::Minus(_),
            expression,
        } => {
            matches!(&**expression, Expression::Number(_))
                && constant_value(expression).is_some_and(|v| v.fract() == 0.0 && is_small(v))
        }
        _ => false,
    };
    let step_ok = f
        .step()
        .is_none_or(|s| small_int(s) && constant_value(s) != Some(0.0));
    let limit_ok = small_int(f.end())
        || matches!(
            f.end(),
            Expression::UnaryOperator {
                unop: UnOp::Hash(_),
                ..
            }
        );
    small_int(f.start()) && step_ok && limit_ok
}

/// `for i = a, b, c do ... end` becomes `do local __for1, __for2, __for3,
/// __for4 = __for_prep(a, b, c); for __fi = __for1, __for2, __for3 do local
/// i = __fi - __for4; ... end end`, on the same lines (`__for4`, 0 but
/// for loops that reach the integer limits, see `ops::for_prep`).
pub(super) fn prepared_for(f: NumericFor, position: Expression) -> Do {
    let names = ["__for1", "__for2", "__for3", "__for4"];
    let mut list = Punctuated::new();
    for (i, n) in names.iter().enumerate() {
        list.push(if i == names.len() - 1 {
            Pair::End(identifier(n))
        } else {
            Pair::Punctuated(identifier(n), symbol(", "))
        });
    }
    let step = f
        .step()
        .cloned()
        .unwrap_or_else(|| Expression::Number(number_token("1")));
    let mut args = Punctuated::new();
    args.push(Pair::End(helper_call(
        helpers::FOR_PREP,
        vec![f.start().clone(), f.end().clone(), step, position],
        0,
    )));
    let prepare = LocalAssignment::new(list)
        .with_local_token(symbol("local "))
        .with_equal_token(Some(symbol(" = ")))
        .with_expressions(args);
    let var = |n: &str| Expression::Var(Var::Name(identifier(n)));
    let end_token = f.end_token().clone();
    // The loop's own variable, a local of each round as in Lua.
    let mut own = Punctuated::new();
    own.push(Pair::End(identifier(
        &f.index_variable().token().to_string(),
    )));
    let mut shifted = Punctuated::new();
    shifted.push(Pair::End(Expression::BinaryOperator {
        lhs: Box::new(var("__fi")),
        binop: binop_symbol(" - ", 0),
        rhs: Box::new(var(names[3])),
    }));
    let variable = LocalAssignment::new(own)
        .with_local_token(symbol("local "))
        .with_equal_token(Some(symbol(" = ")))
        .with_expressions(shifted);
    let mut stmts = vec![(Stmt::LocalAssignment(variable), Some(symbol("; ")))];
    stmts.extend(f.block().stmts_with_semicolon().cloned());
    let block = f.block().clone().with_stmts(stmts);
    let counter = TokenReference::new(
        Vec::new(),
        Token::new(TokenType::Identifier {
            identifier: "__fi".into(),
        }),
        f.index_variable().trailing_trivia().cloned().collect(),
    );
    let looped = f
        .with_index_variable(counter)
        .with_block(block)
        .with_start(var(names[0]))
        .with_end(var(names[1]))
        .with_end_step_comma(Some(symbol(", ")))
        .with_step(Some(Expression::Var(Var::Name(TokenReference::new(
            Vec::new(),
            Token::new(TokenType::Identifier {
                identifier: names[2].into(),
            }),
            vec![Token::new(TokenType::Whitespace {
                characters: " ".into(),
            })],
        )))))
        .with_end_token(symbol("end"));
    Do::new()
        .with_do_token(symbol("do "))
        .with_block(Block::new().with_stmts(vec![
            (Stmt::LocalAssignment(prepare), Some(symbol("; "))),
            (Stmt::NumericFor(Box::new(looped)), None),
        ]))
        .with_end_token(TokenReference::new(
            vec![Token::new(TokenType::Whitespace {
                characters: " ".into(),
            })],
            end_token.token().clone(),
            end_token.trailing_trivia().cloned().collect(),
        ))
}

pub(super) fn split_assignment(a: Assignment) -> Do {
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
