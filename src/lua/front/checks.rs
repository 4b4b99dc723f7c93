//! Checked operations for a diagnosis run: indexing, calls, `#` and
//! arithmetic go through helpers (`diagnose.lua`) that raise Lua 5.4's
//! error with its description of the value (`attempt to index a nil value
//! (local 'cfg')`), which piccolo's VM does not give. Far slower than the
//! plain code: only ever run, marked with lines, to tell why and where a
//! handler failed (see `Vm::diagnosing`).

use super::*;
use full_moon::ast::Index;

use super::describe::{Scope, describe_name};

struct Checks {
    scopes: Vec<Scope>,
    /// Loop variables and parameters for the block about to open.
    pending: Vec<String>,
}

/// The helpers (defined in `diagnose.lua`).
const INDEX: &str = "__cm_ix";
const OBJECT: &str = "__cm_obj";
const CALL: &str = "__cm_call";
const LENGTH: &str = "__cm_len";
const ARITH: &str = "__cm_ar";
const COMPARE: &str = "__cm_cmp";
const NEGATE: &str = "__cm_unm";
const CONCAT: &str = "__cm_concat";
const SELF: &str = "__cm_self";

fn nil() -> Expression {
    Expression::Symbol(symbol("nil"))
}

fn described(desc: Option<String>) -> Expression {
    desc.map_or_else(nil, |d| string_literal(&d))
}

/// The arguments of a call suffix.
fn call_arguments(args: &FunctionArgs) -> Vec<Expression> {
    match args {
        FunctionArgs::Parentheses { arguments, .. } => arguments.iter().cloned().collect(),
        FunctionArgs::String(s) => vec![Expression::String(s.clone())],
        FunctionArgs::TableConstructor(t) => vec![Expression::TableConstructor(t.clone())],
        _ => Vec::new(),
    }
}

impl Checks {
    fn describe_name(&self, name: &str) -> String {
        describe_name(&self.scopes, name)
    }

    /// How Lua would describe the value of `e` (already rewritten).
    fn describe(&self, e: &Expression) -> Option<String> {
        match e {
            Expression::Var(Var::Name(n)) => Some(self.describe_name(&n.token().to_string())),
            Expression::FunctionCall(call) => {
                let Prefix::Name(name) = call.prefix() else {
                    return None;
                };
                if name.token().to_string() != INDEX {
                    return None;
                }
                let Some(Suffix::Call(Call::AnonymousCall(args))) = call.suffixes().next() else {
                    return None;
                };
                match call_arguments(args).get(1) {
                    Some(Expression::String(s)) => {
                        let key = s.token().to_string();
                        let key = key.trim_matches(|c| c == '"' || c == '\'');
                        Some(format!("field '{key}'"))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A prefix and its suffixes as checked operations; `None` when the
    /// chain holds something this pass leaves alone.
    fn chain(&self, prefix: &Prefix, suffixes: &[Suffix]) -> Option<Expression> {
        let mut current = match prefix {
            Prefix::Name(n) => Expression::Var(Var::Name(n.clone())),
            Prefix::Expression(e) => (**e).clone(),
            _ => return None,
        };
        for suffix in suffixes {
            let desc = self.describe(&current);
            current = match suffix {
                Suffix::Index(Index::Dot { name, .. }) => helper_call(
                    INDEX,
                    vec![
                        current,
                        string_literal(&name.token().to_string()),
                        described(desc),
                    ],
                    0,
                ),
                Suffix::Index(Index::Brackets { expression, .. }) => helper_call(
                    INDEX,
                    vec![current, (**expression).clone(), described(desc)],
                    0,
                ),
                Suffix::Call(Call::AnonymousCall(args)) => {
                    let mut all = vec![current, described(desc)];
                    all.extend(call_arguments(args));
                    helper_call(CALL, all, 0)
                }
                _ => return None,
            };
        }
        Some(current)
    }
}

impl Checks {
    /// A call of one of the front end's own helpers (always a function):
    /// the arithmetic and concatenation ones become checked ones that
    /// describe their operands, a method call's object is checked; others
    /// stay as they are.
    fn helper(&self, name: &str, call: FunctionCall) -> FunctionCall {
        let suffixes: Vec<Suffix> = call.suffixes().cloned().collect();
        let [Suffix::Call(Call::AnonymousCall(args))] = suffixes.as_slice() else {
            return call;
        };
        let args = call_arguments(args);
        let arith = match name {
            helpers::ADD => Some("+"),
            helpers::SUB => Some("-"),
            helpers::MUL => Some("*"),
            helpers::DIV => Some("/"),
            helpers::POW => Some("^"),
            _ => None,
        };
        let checked = match (name, arith, args.as_slice()) {
            (_, Some(op), [a, b, ..]) => helper_call(
                ARITH,
                vec![
                    string_literal(op),
                    a.clone(),
                    b.clone(),
                    described(self.describe(a)),
                    described(self.describe(b)),
                ],
                0,
            ),
            (helpers::UNM, _, [a, ..]) => {
                helper_call(NEGATE, vec![a.clone(), described(self.describe(a))], 0)
            }
            (CONCAT_HELPER, _, [a, b, ..]) => helper_call(
                CONCAT,
                vec![
                    a.clone(),
                    b.clone(),
                    described(self.describe(a)),
                    described(self.describe(b)),
                ],
                0,
            ),
            (METHOD_HELPER, _, [object, rest @ ..]) => {
                let mut all = vec![helper_call(
                    SELF,
                    vec![object.clone(), described(self.describe(object))],
                    0,
                )];
                all.extend(rest.iter().cloned());
                helper_call(METHOD_HELPER, all, 0)
            }
            _ => return call,
        };
        match checked {
            Expression::FunctionCall(c) => c,
            _ => call,
        }
    }
}

impl VisitorMut for Checks {
    fn visit_block(&mut self, block: Block) -> Block {
        let names = std::mem::take(&mut self.pending).into_iter().collect();
        self.scopes.push(Scope {
            names,
            function: false,
        });
        block
    }

    fn visit_block_end(&mut self, block: Block) -> Block {
        self.scopes.pop();
        block
    }

    fn visit_function_body(&mut self, body: FunctionBody) -> FunctionBody {
        self.scopes.push(Scope::of_function(&body));
        body
    }

    fn visit_function_body_end(&mut self, body: FunctionBody) -> FunctionBody {
        self.scopes.pop();
        body
    }

    fn visit_local_function(
        &mut self,
        f: full_moon::ast::LocalFunction,
    ) -> full_moon::ast::LocalFunction {
        if let Some(scope) = self.scopes.last_mut() {
            scope.names.insert(f.name().token().to_string());
        }
        f
    }

    fn visit_local_assignment_end(&mut self, l: LocalAssignment) -> LocalAssignment {
        if let Some(scope) = self.scopes.last_mut() {
            scope
                .names
                .extend(l.names().iter().map(|n| n.token().to_string()));
        }
        l
    }

    fn visit_numeric_for(&mut self, f: NumericFor) -> NumericFor {
        self.pending = vec![f.index_variable().token().to_string()];
        f
    }

    fn visit_generic_for(&mut self, f: full_moon::ast::GenericFor) -> full_moon::ast::GenericFor {
        self.pending = f.names().iter().map(|n| n.token().to_string()).collect();
        f
    }

    fn visit_function_call_end(&mut self, call: FunctionCall) -> FunctionCall {
        if let Prefix::Name(name) = call.prefix()
            && name.token().to_string().starts_with("__")
        {
            return self.helper(&name.token().to_string(), call);
        }
        let suffixes: Vec<Suffix> = call.suffixes().cloned().collect();
        match self.chain(call.prefix(), &suffixes) {
            Some(Expression::FunctionCall(checked)) => checked,
            _ => call,
        }
    }

    fn visit_assignment_end(&mut self, a: Assignment) -> Assignment {
        let mut targets = Punctuated::new();
        for pair in a.variables().pairs() {
            let var = match pair.value() {
                Var::Expression(ve) if ve.suffixes().count() > 0 => {
                    let suffixes: Vec<Suffix> = ve.suffixes().cloned().collect();
                    let (last, object) = suffixes.split_last().expect("one suffix at least");
                    match self.chain(ve.prefix(), object) {
                        Some(object) => {
                            let desc = self.describe(&object);
                            let checked = helper_call(OBJECT, vec![object, described(desc)], 0);
                            Var::Expression(Box::new(
                                VarExpression::new(Prefix::Expression(Box::new(
                                    Expression::Parentheses {
                                        contained: ContainedSpan::new(symbol("("), symbol(")")),
                                        expression: Box::new(checked),
                                    },
                                )))
                                .with_suffixes(vec![last.clone()]),
                            ))
                        }
                        None => pair.value().clone(),
                    }
                }
                other => other.clone(),
            };
            targets.push(match pair.punctuation() {
                Some(p) => Pair::Punctuated(var, p.clone()),
                None => Pair::End(var),
            });
        }
        a.with_variables(targets)
    }

    fn visit_expression_end(&mut self, e: Expression) -> Expression {
        match e {
            Expression::Var(Var::Expression(ref ve)) => {
                let suffixes: Vec<Suffix> = ve.suffixes().cloned().collect();
                self.chain(ve.prefix(), &suffixes).unwrap_or(e)
            }
            Expression::UnaryOperator {
                unop: UnOp::Hash(_),
                expression,
            } => {
                let desc = self.describe(&expression);
                helper_call(LENGTH, vec![*expression, described(desc)], 0)
            }
            Expression::BinaryOperator { lhs, binop, rhs } => {
                let op = binop.token().token().to_string();
                let helper = match op.as_str() {
                    "+" | "-" | "*" | "/" | "^" => ARITH,
                    "<" | "<=" | ">" | ">=" => COMPARE,
                    _ => {
                        return Expression::BinaryOperator { lhs, binop, rhs };
                    }
                };
                let (dl, dr) = (self.describe(&lhs), self.describe(&rhs));
                helper_call(
                    helper,
                    vec![
                        string_literal(&op),
                        *lhs,
                        *rhs,
                        described(dl),
                        described(dr),
                    ],
                    0,
                )
            }
            other => other,
        }
    }
}

/// `code` (already rewritten, and marked) with its indexing, calls, `#`,
/// arithmetic and comparisons checked by the diagnosis helpers.
pub fn add_checks(code: &str) -> Result<String, FrontError> {
    let ast = super::markers::parse_rewritten(code, "checks")?;
    let mut checks = Checks {
        scopes: vec![Scope {
            names: HashSet::new(),
            function: true,
        }],
        pending: Vec::new(),
    };
    Ok(checks.visit_ast(ast).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_checked_with_lua_descriptions() {
        let code =
            "local t = nil\nlocal function f(a)\n  return a.x.y + t[1], #a, g(a)\nend\nt.z = 1\n";
        let checked = add_checks(code).unwrap();
        assert!(full_moon::parse(&checked).is_ok(), "{checked}");
        for needle in [
            r#"__cm_ix( __cm_ix(a, "x", "local 'a'"), "y", "field 'x'")"#,
            r#"__cm_ix(t, 1, "upvalue 't'")"#,
            r#"__cm_len(a, "local 'a'")"#,
            r#"__cm_call(g, "global 'g'", a)"#,
            r#"( __cm_obj(t, "local 't'")).z = 1"#,
        ] {
            assert!(checked.contains(needle), "{needle} in:\n{checked}");
        }
    }
}
