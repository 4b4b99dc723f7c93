//! Lua's description of an operand for the errors the helpers raise
//! (`attempt to perform arithmetic on a nil value (local 'n')`): which
//! names are locals, upvalues or globals where each expression stands, and
//! which field an index reads. Read once from the file before the rewrite;
//! the rewrite passes an operand's description to the helper along with
//! the operand, so the words are there wherever the error is caught
//! (`pcall` included), at no cost until one is raised.

use super::*;
use full_moon::ast::{Index, Suffix};

/// An expression's place in the source: where it starts and ends.
type Span = (usize, usize);

fn span(e: &Expression) -> Option<Span> {
    Some((e.start_position()?.bytes(), e.end_position()?.bytes()))
}

/// One scope: the locals declared in it so far, and whether it is a
/// function's own (its parameters), past which locals are upvalues.
pub(super) struct Scope {
    pub(super) names: HashSet<String>,
    pub(super) function: bool,
}

impl Scope {
    /// The scope a function body opens: its named parameters.
    pub(super) fn of_function(body: &FunctionBody) -> Scope {
        let names = body
            .parameters()
            .iter()
            .filter_map(|p| match p {
                Parameter::Name(n) => Some(n.token().to_string()),
                _ => None,
            })
            .collect();
        Scope {
            names,
            function: true,
        }
    }
}

/// `local 'x'`, `upvalue 'x'` or `global 'x'`, as Lua describes a name
/// seen from the innermost of `scopes`.
pub(super) fn describe_name(scopes: &[Scope], name: &str) -> String {
    let mut crossed = false;
    for scope in scopes.iter().rev() {
        if scope.names.contains(name) {
            let kind = if crossed { "upvalue" } else { "local" };
            return format!("{kind} '{name}'");
        }
        if scope.function {
            crossed = true;
        }
    }
    format!("global '{name}'")
}

/// The descriptions of one file's operands, by where they stand.
#[derive(Default)]
pub(super) struct Descriptions {
    by_span: HashMap<Span, String>,
}

impl Descriptions {
    /// Reads `ast`.
    pub(super) fn of(ast: &full_moon::ast::Ast) -> Descriptions {
        let mut reader = Reader {
            scopes: vec![Scope {
                names: HashSet::new(),
                function: true,
            }],
            pending: Vec::new(),
            found: Descriptions::default(),
        };
        reader.visit_ast(ast);
        reader.found
    }

    /// Lua's description of `e` (`local 'n'`, `field 'x'`), if it has one.
    pub(super) fn of_operand(&self, e: &Expression) -> Option<String> {
        match e {
            Expression::Parentheses { expression, .. } => self.of_operand(expression),
            _ => self.by_span.get(&span(e)?).cloned(),
        }
    }
}

struct Reader {
    scopes: Vec<Scope>,
    /// Loop variables for the block about to open.
    pending: Vec<String>,
    found: Descriptions,
}

impl Reader {
    fn name(&self, name: &str) -> String {
        describe_name(&self.scopes, name)
    }

    fn declare(&mut self, names: impl IntoIterator<Item = String>) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.names.extend(names);
        }
    }
}

/// How Lua 5.4 names the field an index reads: `field 'x'` for a name or
/// a string literal, `field 'integer index'` for an integer literal,
/// `field '?'` for anything else.
fn field(index: &Index) -> String {
    match index {
        Index::Dot { name, .. } => format!("field '{}'", name.token()),
        Index::Brackets { expression, .. } => match &**expression {
            Expression::String(s) => {
                let text = s.token().to_string();
                let inner = text.trim_matches(|c| c == '"' || c == '\'');
                format!("field '{inner}'")
            }
            Expression::Number(n) if !n.token().to_string().contains(['.', 'e', 'E']) => {
                "field 'integer index'".into()
            }
            _ => "field '?'".into(),
        },
        _ => "field '?'".into(),
    }
}

impl Visitor for Reader {
    fn visit_block(&mut self, _: &Block) {
        let names = std::mem::take(&mut self.pending).into_iter().collect();
        self.scopes.push(Scope {
            names,
            function: false,
        });
    }

    fn visit_block_end(&mut self, _: &Block) {
        self.scopes.pop();
    }

    fn visit_function_body(&mut self, body: &FunctionBody) {
        self.scopes.push(Scope::of_function(body));
    }

    fn visit_function_body_end(&mut self, _: &FunctionBody) {
        self.scopes.pop();
    }

    fn visit_local_function(&mut self, f: &full_moon::ast::LocalFunction) {
        self.declare([f.name().token().to_string()]);
    }

    fn visit_local_assignment_end(&mut self, l: &LocalAssignment) {
        self.declare(l.names().iter().map(|n| n.token().to_string()));
    }

    fn visit_numeric_for(&mut self, f: &NumericFor) {
        self.pending = vec![f.index_variable().token().to_string()];
    }

    fn visit_generic_for(&mut self, f: &full_moon::ast::GenericFor) {
        self.pending = f.names().iter().map(|n| n.token().to_string()).collect();
    }

    fn visit_expression(&mut self, e: &Expression) {
        let description = match e {
            Expression::Var(Var::Name(n)) => Some(self.name(&n.token().to_string())),
            Expression::Var(Var::Expression(v)) => match v.suffixes().last() {
                Some(Suffix::Index(index)) => Some(field(index)),
                _ => None,
            },
            _ => None,
        };
        if let (Some(description), Some(at)) = (description, span(e)) {
            self.found.by_span.insert(at, description);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(source: &str) -> Vec<String> {
        let ast = full_moon::parse(source).unwrap();
        let d = Descriptions::of(&ast);
        let mut found: Vec<(Span, String)> = d.by_span.into_iter().collect();
        found.sort();
        found.into_iter().map(|(_, d)| d).collect()
    }

    #[test]
    fn names_are_locals_upvalues_or_globals_where_they_stand() {
        assert_eq!(
            described(
                "local up\nlocal function f(p)\n  local n\n  return n + p + up + g + t.x + t[1] + t['s'] + t[k]\nend"
            ),
            [
                "local 'n'",
                "local 'p'",
                "upvalue 'up'",
                "global 'g'",
                "field 'x'",
                "field 'integer index'",
                "field 's'",
                "field '?'",
                "global 'k'",
            ]
        );
        // A loop variable is local to its body; after the loop the name is
        // global again.
        assert_eq!(
            described("for i = 1, 2 do x = i end\ny = i"),
            ["local 'i'", "global 'i'"]
        );
    }
}
