//! To-be-closed variables (`local x <close> = v`), which piccolo does not
//! have: the rest of the variable's block becomes a function run by
//! `__close_run`, which calls `v`'s `__close` metamethod when that rest
//! ends, normally, by `return`, by `break`, or by an error (passed to it),
//! as Lua 5.4 does. A `return` in the rest hands its values out (`return
//! 1, ...`), a `break` its exit (`return 2`); the block then returns or
//! breaks itself. A text-to-text pass before the others, keeping every
//! line where it was; `goto` out of the rest is not supported (a load
//! error).

use super::*;
use full_moon::ast::{LastStmt, Return};
use full_moon::visitors::VisitMut;

/// The position string `error` helpers take (`chunk:line:`).
fn at(chunk: &str, line: usize) -> String {
    format!("{chunk}:{line}:")
}

/// Rewrites the exits of the rest of a block: its own `return`s and
/// `break`s (not those of functions or loops inside it).
#[derive(Default)]
struct Exits {
    functions: usize,
    loops: usize,
    broke: bool,
    returned: bool,
}

impl VisitorMut for Exits {
    fn visit_function_body(&mut self, b: FunctionBody) -> FunctionBody {
        self.functions += 1;
        b
    }
    fn visit_function_body_end(&mut self, b: FunctionBody) -> FunctionBody {
        self.functions -= 1;
        b
    }
    fn visit_while(&mut self, w: full_moon::ast::While) -> full_moon::ast::While {
        self.loops += 1;
        w
    }
    fn visit_while_end(&mut self, w: full_moon::ast::While) -> full_moon::ast::While {
        self.loops -= 1;
        w
    }
    fn visit_repeat(&mut self, r: full_moon::ast::Repeat) -> full_moon::ast::Repeat {
        self.loops += 1;
        r
    }
    fn visit_repeat_end(&mut self, r: full_moon::ast::Repeat) -> full_moon::ast::Repeat {
        self.loops -= 1;
        r
    }
    fn visit_numeric_for(&mut self, f: NumericFor) -> NumericFor {
        self.loops += 1;
        f
    }
    fn visit_numeric_for_end(&mut self, f: NumericFor) -> NumericFor {
        self.loops -= 1;
        f
    }
    fn visit_generic_for(&mut self, f: full_moon::ast::GenericFor) -> full_moon::ast::GenericFor {
        self.loops += 1;
        f
    }
    fn visit_generic_for_end(
        &mut self,
        f: full_moon::ast::GenericFor,
    ) -> full_moon::ast::GenericFor {
        self.loops -= 1;
        f
    }

    fn visit_last_stmt_end(&mut self, last: LastStmt) -> LastStmt {
        if self.functions > 0 {
            return last;
        }
        match last {
            LastStmt::Return(r) => {
                self.returned = true;
                // `return 1, <its values>`.
                let mut values = Punctuated::new();
                if r.returns().is_empty() {
                    values.push(Pair::End(Expression::Number(number_token("1"))));
                } else {
                    values.push(Pair::Punctuated(
                        Expression::Number(number_token("1")),
                        symbol(", "),
                    ));
                    for pair in r.returns().pairs() {
                        values.push(pair.clone());
                    }
                }
                LastStmt::Return(r.with_returns(values))
            }
            LastStmt::Break(token) if self.loops == 0 => {
                self.broke = true;
                let mut values = Punctuated::new();
                values.push(Pair::End(Expression::Number(TokenReference::new(
                    Vec::new(),
                    Token::new(TokenType::Number { text: "2".into() }),
                    token.trailing_trivia().cloned().collect(),
                ))));
                LastStmt::Return(
                    Return::new()
                        .with_token(TokenReference::new(
                            token.leading_trivia().cloned().collect(),
                            Token::new(TokenType::Symbol {
                                symbol: Symbol::Return,
                            }),
                            vec![Token::new(TokenType::Whitespace {
                                characters: " ".into(),
                            })],
                        ))
                        .with_returns(values),
                )
            }
            other => other,
        }
    }
}

/// Whether `node` uses `...` of its own function (not of a function
/// inside it).
fn uses_varargs(block: &Block) -> bool {
    let mut depth = 0usize;
    let mut found = false;
    struct Scan<'a> {
        depth: &'a mut usize,
        found: &'a mut bool,
    }
    impl Visitor for Scan<'_> {
        fn visit_function_body(&mut self, _: &FunctionBody) {
            *self.depth += 1;
        }
        fn visit_function_body_end(&mut self, _: &FunctionBody) {
            *self.depth -= 1;
        }
        fn visit_token(&mut self, t: &Token) {
            if *self.depth == 0 && t.to_string() == "..." {
                *self.found = true;
            }
        }
    }
    use full_moon::visitors::Visit;
    block.visit(&mut Scan {
        depth: &mut depth,
        found: &mut found,
    });
    found
}

struct Closes {
    chunk: String,
    /// Names the rewritten blocks' results are kept in: one each.
    next: usize,
    error: Option<FrontError>,
}

impl Closes {
    /// `stmts` and `last` as Lua text, the first `<close>` and everything
    /// after it rewritten (the rest is rewritten the same way first).
    fn rewrite(
        &mut self,
        stmts: &[(Stmt, Option<TokenReference>)],
        last: Option<&(LastStmt, Option<TokenReference>)>,
    ) -> String {
        let close_at = stmts.iter().position(|(s, _)| match s {
            Stmt::LocalAssignment(l) => l
                .attributes()
                .any(|a| a.is_some_and(|a| a.name().token().to_string() == "close")),
            _ => false,
        });
        let text_of = |stmts: &[(Stmt, Option<TokenReference>)]| -> String {
            stmts
                .iter()
                .map(|(s, semi)| {
                    format!(
                        "{s}{}",
                        semi.as_ref().map_or(String::new(), ToString::to_string)
                    )
                })
                .collect()
        };
        let last_text = last.map_or(String::new(), |(l, semi)| {
            format!(
                "{l}{}",
                semi.as_ref().map_or(String::new(), ToString::to_string)
            )
        });
        let Some(k) = close_at else {
            return text_of(stmts) + &last_text;
        };
        let Stmt::LocalAssignment(decl) = &stmts[k].0 else {
            unreachable!("found above")
        };
        let line = decl.local_token().token().start_position().line();
        let closing: Vec<String> = decl
            .names()
            .iter()
            .zip(decl.attributes())
            .filter(|(_, a)| a.is_some_and(|a| a.name().token().to_string() == "close"))
            .map(|(n, _)| n.token().to_string())
            .collect();
        if closing.len() > 1 && self.error.is_none() {
            self.error = Some(FrontError {
                line: Some(line as u32),
                message: "multiple to-be-closed variables in local list".into(),
            });
        }
        let name = closing.first().cloned().unwrap_or_default();
        // The declaration without `<close>` (other attributes stay).
        let attributes: Vec<Option<full_moon::ast::lua54::Attribute>> = decl
            .attributes()
            .map(|a| {
                a.filter(|a| a.name().token().to_string() != "close")
                    .cloned()
            })
            .collect();
        let declaration = decl.clone().with_attributes(attributes);
        let semi = stmts[k]
            .1
            .as_ref()
            .map_or(String::new(), ToString::to_string);
        // The rest, its own later `<close>`s first, then its exits.
        let rest = self.rewrite(&stmts[k + 1..], last);
        let Ok(rest_block) = full_moon::parse_fallible(&rest, LuaVersion::lua54()).into_result()
        else {
            if self.error.is_none() {
                self.error = Some(FrontError {
                    line: Some(line as u32),
                    message: "cannot read the scope of a to-be-closed variable".into(),
                });
            }
            return String::new();
        };
        let varargs = uses_varargs(rest_block.nodes());
        let mut exits = Exits::default();
        let rest = rest_block.nodes().clone().visit_mut(&mut exits).to_string();
        self.next += 1;
        let tag = format!("__close{}", self.next);
        let pass = if varargs { ", ..." } else { "" };
        let params = if varargs { "..." } else { "" };
        let mut out = format!(
            "{}{declaration}{semi}; __close_check({name}, {name:?}, {at:?}); local {tag} = __close_run({name}, function({params}) {rest} end{pass});",
            text_of(&stmts[..k]),
            at = at(&self.chunk, line),
        );
        if exits.returned {
            out.push_str(&format!(
                " if {tag}[2] == 1 then return __close_unpack({tag}) end"
            ));
        }
        if exits.broke {
            out.push_str(&format!(" if {tag}[2] == 2 then break end"));
        }
        // Apart from whatever token follows (the block's `end`).
        out.push(' ');
        out
    }
}

impl VisitorMut for Closes {
    fn visit_block_end(&mut self, block: Block) -> Block {
        let stmts: Vec<_> = block.stmts_with_semicolon().cloned().collect();
        let has_close = stmts.iter().any(|(s, _)| {
            matches!(s, Stmt::LocalAssignment(l)
                if l.attributes().any(|a| a.is_some_and(|a| a.name().token().to_string() == "close")))
        });
        if !has_close {
            return block;
        }
        let text = self.rewrite(&stmts, block.last_stmt_with_semicolon());
        match full_moon::parse_fallible(&text, LuaVersion::lua54()).into_result() {
            Ok(ast) => ast.nodes().clone(),
            Err(_) => {
                if self.error.is_none() {
                    self.error = Some(FrontError {
                        line: None,
                        message: "cannot rewrite a to-be-closed variable's scope".into(),
                    });
                }
                block
            }
        }
    }
}

/// `source` with every `<close>` variable's scope run by `__close_run`;
/// unchanged (borrowed) when it has none.
pub fn rewrite_closes<'a>(
    source: &'a str,
    chunk: &str,
) -> Result<std::borrow::Cow<'a, str>, FrontError> {
    if !source.contains("close") {
        return Ok(source.into());
    }
    let Ok(ast) = full_moon::parse_fallible(source, LuaVersion::lua54()).into_result() else {
        // The main pass reports the syntax error.
        return Ok(source.into());
    };
    let mut closes = Closes {
        chunk: chunk.to_string(),
        next: 0,
        error: None,
    };
    let out = closes.visit_ast(ast).to_string();
    match closes.error {
        Some(e) => Err(e),
        None if closes.next == 0 => Ok(source.into()),
        None => Ok(out.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_becomes_a_closed_run_on_the_same_lines() {
        let src = "do\n  local a <close> = x\n  f(a)\nend\n";
        let out = rewrite_closes(src, "t.lua").unwrap();
        assert_eq!(out.lines().count(), src.lines().count(), "{out}");
        assert!(out.contains("__close_run(a, function() "), "{out}");
    }
}
