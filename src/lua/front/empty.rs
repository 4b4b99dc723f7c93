//! Empty statements (`;` alone): the parser the front end uses does not
//! take them, so they are blanked out of the text before parsing.

use super::*;

/// A statement-level `;` is blanked out (a space, or `do end` before a
/// `(`, where dropping it would join two statements into one call): the
/// parser the front end uses does not accept empty statements. A `;`
/// inside a table constructor separates fields and stays.
pub fn blank_empty_statements(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains(';') {
        return source.into();
    }
    let tokens = match Lexer::new(source, LuaVersion::lua54()).collect() {
        LexerResult::Ok(tokens) => tokens,
        _ => return source.into(),
    };
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !t.token_type().is_trivia() && !matches!(t.token_type(), TokenType::Eof))
        .collect();
    // Open brackets and blocks: a `;` belongs to a table constructor when
    // the innermost one open is `{`.
    let mut open: Vec<bool> = Vec::new();
    let mut out = String::with_capacity(source.len());
    let mut copied = 0;
    for (i, token) in significant.iter().enumerate() {
        let TokenType::Symbol { symbol } = token.token_type() else {
            continue;
        };
        match symbol {
            Symbol::LeftBrace => open.push(true),
            Symbol::LeftParen
            | Symbol::LeftBracket
            | Symbol::Function
            | Symbol::Do
            | Symbol::Then
            | Symbol::Repeat => open.push(false),
            Symbol::RightBrace
            | Symbol::RightParen
            | Symbol::RightBracket
            | Symbol::End
            | Symbol::ElseIf
            | Symbol::Until => {
                open.pop();
            }
            Symbol::Semicolon if open.last() != Some(&true) => {
                let at = token.start_position().bytes();
                out.push_str(&source[copied..at]);
                let next_is_paren = significant.get(i + 1).is_some_and(|t| {
                    matches!(
                        t.token_type(),
                        TokenType::Symbol {
                            symbol: Symbol::LeftParen
                        }
                    )
                });
                out.push_str(if next_is_paren { " do end " } else { " " });
                copied = at + 1;
            }
            _ => {}
        }
    }
    out.push_str(&source[copied..]);
    out.into()
}
