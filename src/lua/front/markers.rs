//! Line markers for a diagnosis run: `__cm_at = LINE;` before every
//! statement, on the statement's own line (lines stay where they are), so
//! that after a VM error the last line reached can be read. Never in the
//! code rules run normally: a failing handler is run once more, marked,
//! in a VM of its own, to tell where it failed (piccolo's own VM errors
//! carry no position).

use super::*;

/// The global the markers write.
pub const LINE_MARKER: &str = "__cm_at";

struct Markers;

fn marker(line: usize) -> (Stmt, Option<TokenReference>) {
    let mut vars = Punctuated::new();
    vars.push(Pair::End(Var::Name(identifier(LINE_MARKER))));
    let mut exprs = Punctuated::new();
    exprs.push(Pair::End(Expression::Number(number_token(
        &line.to_string(),
    ))));
    let assignment = Assignment::new(vars, exprs).with_equal_token(symbol("="));
    (Stmt::Assignment(assignment), Some(symbol("; ")))
}

impl VisitorMut for Markers {
    fn visit_block_end(&mut self, block: Block) -> Block {
        let mut stmts = Vec::new();
        for (stmt, semicolon) in block.stmts_with_semicolon().cloned() {
            if let Some(position) = stmt.start_position() {
                stmts.push(marker(position.line()));
            }
            stmts.push((stmt, semicolon));
        }
        if let Some(position) = block.last_stmt().and_then(|s| s.start_position()) {
            stmts.push(marker(position.line()));
        }
        block.with_stmts(stmts)
    }
}

/// `code` (already rewritten by the front end) with a line marker before
/// every statement.
pub fn add_line_markers(code: &str) -> Result<String, FrontError> {
    Ok(Markers
        .visit_ast(parse_rewritten(code, "line markers")?)
        .to_string())
}

/// Parses code the front end wrote itself, for a pass of a diagnosis run
/// (`what` it is for, in the error).
pub(super) fn parse_rewritten(code: &str, what: &str) -> Result<full_moon::ast::Ast, FrontError> {
    full_moon::parse_fallible(code, LuaVersion::lua54())
        .into_result()
        .map_err(|errors| FrontError {
            line: errors.first().map(|e| e.range().0.line() as u32),
            message: format!("cannot add {what}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_keep_every_line_where_it_was() {
        let code = "local a = 1\nif a then\n  a = a + 1\n  return a\nend\nreturn {\n  x = 1,\n}\n";
        let marked = add_line_markers(code).unwrap();
        assert_eq!(marked.lines().count(), code.lines().count(), "{marked}");
        assert!(marked.contains("__cm_at=3; "), "{marked}");
        assert!(marked.contains("__cm_at=4; "), "{marked}");
        assert!(marked.contains("__cm_at=6; "), "{marked}");
        assert!(full_moon::parse(&marked).is_ok(), "{marked}");
    }
}
