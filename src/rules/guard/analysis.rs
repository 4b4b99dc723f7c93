//! Reading a rule file's source for its handlers' guards (the soundness
//! rules are in the module's documentation).

use super::lint::{field_typos, unreturned_decision};
use super::syntax::*;
use super::{Derived, Field, FileIndex, Guard, Kind};
use full_moon::LuaVersion;
use full_moon::ast::{
    BinOp, Block, Call, Expression, Field as TableField, FunctionArgs, FunctionBody, Index,
    LastStmt, Parameter, Prefix, Stmt, Suffix, TableConstructor, UnOp, Var,
};
use full_moon::tokenizer::{Symbol, Token, TokenReference, TokenType};
use full_moon::visitors::Visitor;
use std::collections::{HashMap, HashSet};

/// Names the file's code may not use for `string.find`/`string.match`
/// guards to be trusted (each is a way to reach the string library).
const STRING_LIBRARY_DOORS: &[&str] = &["rawset", "_G", "_ENV", "getmetatable", "setmetatable"];

/// Derives the guards of every handler the file's last statement returns.
pub fn analyse(source: &str) -> FileIndex {
    // Nested too deeply for the parser (and for Lua): the VM refuses it.
    if crate::lua::too_deep(source).is_some() {
        return FileIndex::refuse("the source is nested too deeply");
    }
    let source = crate::lua::blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return FileIndex::refuse("the source is not understood");
    };
    let block = ast.nodes();
    let facts = Facts::of(&ast, &source);
    let mut locals: HashMap<String, &Expression> = HashMap::new();
    let mut functions: HashMap<String, &FunctionBody> = HashMap::new();
    for stmt in block.stmts() {
        match stmt {
            Stmt::LocalAssignment(l) => {
                let names: Vec<&TokenReference> = l.names().iter().collect();
                let exprs: Vec<&Expression> = l.expressions().iter().collect();
                for (i, name) in names.iter().enumerate() {
                    let name = ident(name);
                    if facts.stable(&name) {
                        if let (Some(e), true) = (exprs.get(i), names.len() == exprs.len()) {
                            locals.insert(name, e);
                        }
                    }
                }
            }
            Stmt::LocalFunction(f) => {
                let name = ident(f.name());
                if facts.stable(&name) {
                    functions.insert(name, f.body());
                }
            }
            _ => {}
        }
    }
    let Some(LastStmt::Return(ret)) = block.last_stmt() else {
        return FileIndex::refuse("the file does not end with `return`");
    };
    if facts.chunk_returns != 1 {
        return FileIndex::refuse("the file returns from more than one place");
    }
    let scope = Scope {
        block,
        facts: &facts,
        locals: &locals,
        functions: &functions,
    };
    let mut found: Vec<(Kind, Option<String>, &FunctionBody)> = Vec::new();
    for (kind, expr) in [Kind::Metric, Kind::Notification]
        .into_iter()
        .zip(ret.returns().iter())
    {
        match scope.handler_list(expr) {
            Ok(list) => found.extend(list.into_iter().map(|(n, b)| (kind, n, b))),
            Err(why) => return FileIndex::refuse(why),
        }
    }
    let typos = found
        .iter()
        .flat_map(|(kind, name, body)| {
            field_typos(*kind, name.as_deref(), body)
                .into_iter()
                .chain(unreturned_decision(name.as_deref(), body))
        })
        .collect();
    // Every handler shares the event's table: one that writes or passes
    // it on could change what the others' fields say.
    for (_, name, body) in &found {
        if let Err(why) = scope.reads_event_only(body) {
            let who = name.as_deref().unwrap_or("the handler");
            let mut index = FileIndex::refuse(format!("{who} {why}"));
            index.typos = typos;
            return index;
        }
    }
    let fresh_tables = found
        .iter()
        .filter(|(kind, _, _)| *kind == Kind::Metric)
        .find_map(|(_, name, body)| {
            let why = scope.keeps_nothing_of_event(body).err()?;
            Some(format!(
                "{} {why}",
                name.as_deref().unwrap_or("the handler")
            ))
        });
    let handlers = found
        .into_iter()
        .map(|(kind, name, body)| ((kind, name), scope.handler_guard(kind, body)))
        .collect();
    FileIndex {
        file_reason: None,
        handlers,
        typos,
        fresh_tables,
    }
}

/// File-wide facts the analysis relies on.
#[derive(Default)]
struct Facts {
    /// Times each name is declared (locals, parameters, loop variables,
    /// local functions), anywhere in the file.
    declared: HashMap<String, usize>,
    /// Names assigned to anywhere (`x = ...`).
    assigned: HashSet<String>,
    /// How often each identifier token occurs.
    mentions: HashMap<String, usize>,
    /// Field names assigned through (`x.find = ...`, `x["find"] = ...`).
    field_targets: HashSet<String>,
    /// Names whose fields are assigned (`x.f = ...`, `x[k] = ...`).
    written_bases: HashSet<String>,
    /// `return` statements of the chunk itself (not of its functions).
    chunk_returns: usize,
    /// How deep in function bodies the visit is.
    function_depth: usize,
    /// `string.find`/`string.match` are the library's.
    string_library_intact: bool,
}

impl Facts {
    /// The facts of `ast`, parsed from `source`.
    fn of(ast: &full_moon::ast::Ast, source: &str) -> Facts {
        let mut facts = Facts::default();
        facts.visit_ast(ast);
        let lexed = significant_tokens(source);
        let tokens: Vec<&Token> = lexed.iter().collect();
        let mut bare_string = false;
        for (i, t) in tokens.iter().enumerate() {
            if let TokenType::Identifier { identifier } = t.token_type() {
                *facts.mentions.entry(identifier.to_string()).or_default() += 1;
                let next_is_dot = tokens.get(i + 1).is_some_and(|n| is_symbol(n, Symbol::Dot));
                let prev_is_dot = i > 0 && is_symbol(tokens[i - 1], Symbol::Dot);
                if identifier.as_str() == "string" && !next_is_dot && !prev_is_dot {
                    bare_string = true;
                }
            }
        }
        let doors = STRING_LIBRARY_DOORS
            .iter()
            .any(|d| facts.mentions.contains_key(*d));
        let replaced = ["find", "match"]
            .iter()
            .any(|k| facts.field_targets.contains(*k));
        facts.string_library_intact =
            !bare_string && !doors && !replaced && !facts.assigned.contains("string");
        facts
    }

    /// Declared once and never assigned: what a reader of the declaration
    /// sees is what the code gets.
    fn stable(&self, name: &str) -> bool {
        self.declared.get(name) == Some(&1) && !self.assigned.contains(name)
    }
}

impl Visitor for Facts {
    fn visit_local_assignment(&mut self, l: &full_moon::ast::LocalAssignment) {
        for name in l.names() {
            *self.declared.entry(ident(name)).or_default() += 1;
        }
    }

    fn visit_local_function(&mut self, f: &full_moon::ast::LocalFunction) {
        *self.declared.entry(ident(f.name())).or_default() += 1;
    }

    fn visit_function_body_end(&mut self, _: &FunctionBody) {
        self.function_depth -= 1;
    }

    fn visit_return(&mut self, _: &full_moon::ast::Return) {
        if self.function_depth == 0 {
            self.chunk_returns += 1;
        }
    }

    fn visit_function_body(&mut self, body: &FunctionBody) {
        self.function_depth += 1;
        for p in body.parameters() {
            if let Parameter::Name(name) = p {
                *self.declared.entry(ident(name)).or_default() += 1;
            }
        }
    }

    fn visit_numeric_for(&mut self, f: &full_moon::ast::NumericFor) {
        *self.declared.entry(ident(f.index_variable())).or_default() += 1;
    }

    fn visit_generic_for(&mut self, f: &full_moon::ast::GenericFor) {
        for name in f.names() {
            *self.declared.entry(ident(name)).or_default() += 1;
        }
    }

    fn visit_function_declaration(&mut self, f: &full_moon::ast::FunctionDeclaration) {
        // `function name()` assigns the global (or field) `name`.
        let names: Vec<String> = f.name().names().iter().map(ident).collect();
        if names.len() == 1 && f.name().method_name().is_none() {
            self.assigned.insert(names[0].clone());
        } else if let Some(last) = f.name().method_name().or(f.name().names().iter().last()) {
            self.field_targets.insert(ident(last));
        }
    }

    fn visit_assignment(&mut self, a: &full_moon::ast::Assignment) {
        for var in a.variables() {
            match var {
                Var::Name(name) => {
                    self.assigned.insert(ident(name));
                }
                Var::Expression(e) => {
                    if let Prefix::Name(base) = e.prefix() {
                        self.written_bases.insert(ident(base));
                    }
                    let key = match e.suffixes().last() {
                        Some(Suffix::Index(Index::Dot { name, .. })) => Some(ident(name)),
                        Some(Suffix::Index(Index::Brackets { expression, .. })) => {
                            string_literal(expression)
                        }
                        _ => None,
                    };
                    // (A computed key cannot reach the string table: without
                    // a bare `string`, `_G`, `_ENV` or `getmetatable` no
                    // variable holds it.)
                    self.field_targets.extend(key);
                }
                _ => {}
            }
        }
    }
}

/// What the analysis of one handler can look up.
struct Scope<'a> {
    /// The chunk's top-level statements.
    block: &'a Block,
    facts: &'a Facts,
    locals: &'a HashMap<String, &'a Expression>,
    functions: &'a HashMap<String, &'a FunctionBody>,
}

/// How deep helper predicates may call each other.
const MAX_HELPER_DEPTH: usize = 8;

impl<'a> Scope<'a> {
    /// The handlers one return value stands for, with their names.
    fn handler_list(
        &self,
        expr: &'a Expression,
    ) -> Result<Vec<(Option<String>, &'a FunctionBody)>, String> {
        match unparen(expr) {
            Expression::Symbol(t) if ident(t) == "nil" => Ok(Vec::new()),
            Expression::Function(f) => Ok(vec![(None, f.body())]),
            Expression::TableConstructor(t) => self.handler_table(t),
            Expression::Var(Var::Name(name)) => {
                let name = ident(name);
                if let Some(body) = self.functions.get(&name) {
                    return Ok(vec![(None, body)]);
                }
                // A local table of handlers, used nowhere but here: the
                // table that is returned is the one the source spells out.
                match self.locals.get(&name).map(|e| unparen(e)) {
                    Some(Expression::TableConstructor(t))
                        if self.facts.mentions.get(&name) == Some(&2) =>
                    {
                        self.handler_table(t)
                    }
                    Some(Expression::TableConstructor(t)) if t.fields().is_empty() => {
                        self.filled_table(&name)
                    }
                    Some(Expression::Function(f)) => Ok(vec![(None, f.body())]),
                    _ => Err(format!(
                        "the handler table `{name}` is not a local table used only in the return statement"
                    )),
                }
            }
            _ => Err("a returned value is neither a table of handlers nor a function".into()),
        }
    }

    /// `local H = {}` filled by top-level `H.name = function ... end` or
    /// `function H.name(...) ... end`, used nowhere else but the return.
    fn filled_table(&self, table: &str) -> Result<Vec<(Option<String>, &'a FunctionBody)>, String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for stmt in self.block.stmts() {
            let (name, body) = match stmt {
                Stmt::Assignment(a) => {
                    let vars: Vec<&Var> = a.variables().iter().collect();
                    let exprs: Vec<&Expression> = a.expressions().iter().collect();
                    let ([Var::Expression(v)], [value]) = (vars.as_slice(), exprs.as_slice())
                    else {
                        continue;
                    };
                    let suffixes: Vec<&Suffix> = v.suffixes().collect();
                    let (Prefix::Name(base), [Suffix::Index(Index::Dot { name, .. })]) =
                        (v.prefix(), suffixes.as_slice())
                    else {
                        continue;
                    };
                    if ident(base) != table {
                        continue;
                    }
                    let body = match unparen(value) {
                        Expression::Function(f) => f.body(),
                        Expression::Var(Var::Name(f)) => match self.functions.get(&ident(f)) {
                            Some(body) => body,
                            None => {
                                return Err(format!(
                                    "the handler `{}` is not a local function",
                                    ident(name)
                                ));
                            }
                        },
                        _ => {
                            return Err(format!(
                                "the handler `{}` is not a function written here",
                                ident(name)
                            ));
                        }
                    };
                    (ident(name), body)
                }
                Stmt::FunctionDeclaration(f) => {
                    let names: Vec<String> = f.name().names().iter().map(ident).collect();
                    if names.first().map(String::as_str) != Some(table) {
                        continue;
                    }
                    if names.len() != 2 || f.name().method_name().is_some() {
                        return Err(format!(
                            "`{table}` gets a handler other than `{table}.name`"
                        ));
                    }
                    (names[1].clone(), f.body())
                }
                _ => continue,
            };
            if !seen.insert(name.clone()) {
                return Err(format!("the handler `{name}` is given twice"));
            }
            out.push((Some(name), body));
        }
        // Declared, filled by these statements, returned: nothing else.
        if self.facts.mentions.get(table) != Some(&(out.len() + 2)) {
            return Err(format!(
                "the handler table `{table}` is used other than filled with `{table}.name = function` at the top level and returned"
            ));
        }
        Ok(out)
    }

    fn handler_table(
        &self,
        t: &'a TableConstructor,
    ) -> Result<Vec<(Option<String>, &'a FunctionBody)>, String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for field in t.fields() {
            let (name, value) = match field {
                TableField::NameKey { key, value, .. } => (ident(key), value),
                TableField::ExpressionKey { key, value, .. } => match string_literal(key) {
                    Some(k) => (k, value),
                    None => return Err("a handler table with a computed key".into()),
                },
                _ => return Err("a handler table with a positional field".into()),
            };
            if !seen.insert(name.clone()) {
                return Err(format!("the handler `{name}` is given twice"));
            }
            let body = match unparen(value) {
                Expression::Function(f) => f.body(),
                Expression::Var(Var::Name(f)) => match self.functions.get(&ident(f)) {
                    Some(body) => body,
                    None => return Err(format!("the handler `{name}` is not a local function")),
                },
                Expression::TableConstructor(options) => self.options_handler(&name, options)?,
                _ => {
                    return Err(format!(
                        "the handler `{name}` is not a function written here"
                    ));
                }
            };
            out.push((Some(name), body));
        }
        Ok(out)
    }

    /// The `handler` function of a table with options.
    fn options_handler(
        &self,
        name: &str,
        options: &'a TableConstructor,
    ) -> Result<&'a FunctionBody, String> {
        for field in options.fields() {
            if let TableField::NameKey { key, value, .. } = field
                && ident(key) == "handler"
            {
                return match unparen(value) {
                    Expression::Function(f) => Ok(f.body()),
                    Expression::Var(Var::Name(f)) => {
                        self.functions.get(&ident(f)).copied().ok_or_else(|| {
                            format!("the handler of `{name}` is not a local function")
                        })
                    }
                    _ => Err(format!(
                        "the handler of `{name}` is not a function written here"
                    )),
                };
            }
        }
        Err(format!("`{name}` has no handler"))
    }

    /// Whether the handler uses its event only by reading its fields
    /// (`event.plugin`, `event.values[1]`) or handing it to a helper
    /// predicate that does the same.
    fn reads_event_only(&self, body: &FunctionBody) -> Result<(), String> {
        if matches!(
            body.parameters().iter().next(),
            Some(Parameter::Ellipsis(_))
        ) {
            return Err("takes its event as `...`".into());
        }
        let Some(param) = first_param(body) else {
            return Ok(()); // no parameter: the event is out of its reach
        };
        let mut redeclared = Facts::default();
        full_moon::visitors::Visit::visit(body.block(), &mut redeclared);
        if redeclared.declared.contains_key(&param) || redeclared.assigned.contains(&param) {
            return Err(format!("declares or assigns `{param}` again"));
        }
        if redeclared.written_bases.contains(&param) {
            return Err(format!("writes to a field of `{param}`"));
        }
        let lexed = significant_tokens(&body.block().to_string());
        let tokens: Vec<&Token> = lexed.iter().collect();
        for (i, t) in tokens.iter().enumerate() {
            if !matches!(t.token_type(), TokenType::Identifier { identifier } if identifier.as_str() == param)
            {
                continue;
            }
            if i > 0 && is_symbol(tokens[i - 1], Symbol::Dot) {
                continue; // `x.param`: a field name, not the variable
            }
            let next = tokens.get(i + 1);
            if next.is_some_and(|n| is_symbol(n, Symbol::Dot)) {
                continue; // `param.field`: a read (writes were refused above)
            }
            // `helper(param)`: a local predicate that only reads it.
            let helper = (i >= 2)
                .then(|| (tokens[i - 2], tokens[i - 1]))
                .filter(|(_, open)| is_symbol(open, Symbol::LeftParen))
                .and_then(|(name, _)| match name.token_type() {
                    TokenType::Identifier { identifier } => Some(identifier.to_string()),
                    _ => None,
                });
            let closes = next.is_some_and(|n| is_symbol(n, Symbol::RightParen));
            match helper {
                Some(h) if closes && self.is_predicate(&h, 0) => {}
                _ => return Err(format!("passes `{param}` on or uses it as a whole")),
            }
        }
        Ok(())
    }

    /// Whether nothing of the handler's event table outlives the call, for
    /// a handler [`Self::reads_event_only`] already passed: its tables (`values`, `dsnames`,
    /// `dstypes`) are only indexed or measured (`m.values[1]`,
    /// `#m.values`), never held, and no function is defined in the
    /// handler (a closure could keep the table). Then a table refilled
    /// for the next value list of the series is one the handler cannot
    /// tell from a new one.
    fn keeps_nothing_of_event(&self, body: &FunctionBody) -> Result<(), String> {
        let Some(param) = first_param(body) else {
            return Ok(());
        };
        let lexed = significant_tokens(&body.block().to_string());
        let tokens: Vec<&Token> = lexed.iter().collect();
        if tokens.iter().any(|t| is_symbol(t, Symbol::Function)) {
            return Err("defines a function, which could keep its table".into());
        }
        for (i, t) in tokens.iter().enumerate() {
            let is_param = matches!(t.token_type(), TokenType::Identifier { identifier } if identifier.as_str() == param);
            if !is_param || (i > 0 && is_symbol(tokens[i - 1], Symbol::Dot)) {
                continue;
            }
            let Some(field) = tokens
                .get(i + 2)
                .filter(|_| tokens.get(i + 1).is_some_and(|n| is_symbol(n, Symbol::Dot)))
            else {
                continue; // `helper(param)`: a predicate of its identity
            };
            let name = field.to_string();
            if !matches!(name.as_str(), "values" | "dsnames" | "dstypes") {
                continue;
            }
            let measured = i > 0 && is_symbol(tokens[i - 1], Symbol::Hash);
            let indexed = tokens
                .get(i + 3)
                .is_some_and(|n| is_symbol(n, Symbol::LeftBracket));
            if !measured && !indexed {
                return Err(format!(
                    "uses `{param}.{name}` other than indexing it, which could keep it"
                ));
            }
        }
        Ok(())
    }

    /// A stable local function whose body is `return <condition>` over its
    /// one parameter.
    fn is_predicate(&self, name: &str, depth: usize) -> bool {
        depth < MAX_HELPER_DEPTH
            && self.functions.get(name).is_some_and(|body| {
                first_param(body).is_some_and(|p| self.predicate_expr(body, &p, depth).is_some())
            })
    }

    /// The condition a predicate returns, as a guard over its parameter.
    fn predicate_expr(&self, body: &FunctionBody, param: &str, depth: usize) -> Option<Guard> {
        let block = body.block();
        if block.stmts().next().is_some() {
            return None;
        }
        let Some(LastStmt::Return(r)) = block.last_stmt() else {
            return None;
        };
        let mut returns = r.returns().iter();
        let (Some(e), None) = (returns.next(), returns.next()) else {
            return None;
        };
        self.exact(e, param, Kind::Metric, depth + 1)
    }

    /// The guard of one handler.
    fn handler_guard(&self, kind: Kind, body: &FunctionBody) -> Derived {
        let Some(param) = first_param(body) else {
            return Err("does not take its event".into());
        };
        self.block_guard(body.block(), &param, kind)
    }

    /// A condition that holds whenever running `block` may have an effect.
    fn block_guard(&self, block: &Block, p: &str, kind: Kind) -> Derived {
        let stmts: Vec<&Stmt> = block.stmts().collect();
        let mut acc = Guard::always();
        for (i, stmt) in stmts.iter().enumerate() {
            let last = i + 1 == stmts.len() && block.last_stmt().is_none();
            let Stmt::If(branch) = stmt else {
                // Past the early returns, anything may happen.
                if acc.is_always() {
                    return Err(format!(
                        "runs `{}` before its condition",
                        first_line(&stmt.to_string())
                    ));
                }
                return Ok(acc);
            };
            let plain = branch.else_if().is_none_or(Vec::is_empty) && branch.else_block().is_none();
            if plain && does_nothing(branch.block()) {
                // `if C then return end`: the rest runs only where C is false.
                let Some(c) = self.exact(branch.condition(), p, kind, 0) else {
                    return Err(format!(
                        "its early return tests more than the event's identity: `{}`",
                        first_line(&branch.condition().to_string())
                    ));
                };
                acc = acc.and(c.negated());
                continue;
            }
            if !last {
                // More follows an `if` that acts: it runs either way.
                if acc.is_always() {
                    return Err("has statements after an `if` that does more than return".into());
                }
                return Ok(acc);
            }
            return Ok(acc.and(self.if_guard(branch, p, kind)));
        }
        match block.last_stmt() {
            // Nothing left to run: no effect at all past the early returns.
            None => Ok(acc.and(Guard::Any(Vec::new()))),
            Some(LastStmt::Return(r)) if r.returns().iter().all(is_nil_or_false) => {
                Ok(acc.and(Guard::Any(Vec::new())))
            }
            Some(_) => Ok(acc),
        }
    }

    /// When an `if` (with its `elseif`s and `else`) may have an effect.
    fn if_guard(&self, branch: &full_moon::ast::If, p: &str, kind: Kind) -> Guard {
        let mut conditions: Vec<&Expression> = vec![branch.condition()];
        if let Some(others) = branch.else_if() {
            conditions.extend(others.iter().map(|e| e.condition()));
        }
        let else_acts = branch.else_block().is_some_and(|b| !does_nothing(b));
        // Walk back from the last branch: a branch is reached only where
        // the conditions before it were false without effect.
        let mut rest = if else_acts {
            Guard::always()
        } else {
            Guard::Any(Vec::new())
        };
        // An effect needs a condition that may be true (or may fail), or
        // the conditions before it false and a later branch's effect.
        for c in conditions.iter().rev() {
            rest = self.may_be_true(c, p, kind).or(rest);
        }
        rest
    }

    /// A guard that holds whenever `e` may be truthy or have an effect
    /// (always, where that is unknown).
    fn may_be_true(&self, e: &Expression, p: &str, kind: Kind) -> Guard {
        if let Some(exact) = self.exact(e, p, kind, 0) {
            return exact;
        }
        match unparen(e) {
            Expression::BinaryOperator {
                lhs,
                binop: BinOp::And(_),
                rhs,
            } => match self.exact(lhs, p, kind, 0) {
                Some(l) => l.and(self.may_be_true(rhs, p, kind)),
                None => self.may_be_true(lhs, p, kind),
            },
            Expression::BinaryOperator {
                lhs,
                binop: BinOp::Or(_),
                rhs,
            } => self
                .may_be_true(lhs, p, kind)
                .or(self.may_be_true(rhs, p, kind)),
            _ => Guard::always(),
        }
    }

    /// `e` as a guard, when it reads nothing but the event's identity and
    /// cannot fail or have an effect.
    fn exact(&self, e: &Expression, p: &str, kind: Kind, depth: usize) -> Option<Guard> {
        match unparen(e) {
            Expression::UnaryOperator {
                unop: UnOp::Not(_),
                expression,
            } => Some(self.exact(expression, p, kind, depth)?.negated()),
            Expression::BinaryOperator { lhs, binop, rhs } => match binop {
                BinOp::And(_) => Some(
                    self.exact(lhs, p, kind, depth)?
                        .and(self.exact(rhs, p, kind, depth)?),
                ),
                BinOp::Or(_) => Some(
                    self.exact(lhs, p, kind, depth)?
                        .or(self.exact(rhs, p, kind, depth)?),
                ),
                BinOp::TwoEqual(_) => self.equality(lhs, rhs, p, kind),
                BinOp::TildeEqual(_) => Some(self.equality(lhs, rhs, p, kind)?.negated()),
                _ => None,
            },
            Expression::FunctionCall(call) => self.call(call, p, kind, depth),
            _ => None,
        }
    }

    /// `event.field == "text"` (either way round), or a notification's
    /// `event.severity == NOTIF_*` or a number.
    fn equality(&self, a: &Expression, b: &Expression, p: &str, kind: Kind) -> Option<Guard> {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(f) = event_field(x, p) {
                if let Some(field) = Field::named(&f) {
                    return self.constant_string(y).map(|s| Guard::Eq(field, s));
                }
                if f == "severity" && kind == Kind::Notification {
                    return self.severity_value(y).map(Guard::Severity);
                }
                return None;
            }
        }
        None
    }

    /// A string literal, or a stable local initialised with one.
    fn constant_string(&self, e: &Expression) -> Option<String> {
        match unparen(e) {
            e @ Expression::String(_) => string_literal(e),
            Expression::Var(Var::Name(name)) => {
                let local = self.locals.get(&ident(name))?;
                match unparen(local) {
                    e @ Expression::String(_) => string_literal(e),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn severity_value(&self, e: &Expression) -> Option<i64> {
        match unparen(e) {
            Expression::Number(n) => n.token().to_string().trim().parse().ok(),
            Expression::Var(Var::Name(name)) => {
                let name = ident(name);
                let value = match name.as_str() {
                    "NOTIF_FAILURE" => 1,
                    "NOTIF_WARNING" => 2,
                    "NOTIF_OKAY" => 4,
                    _ => return None,
                };
                (!self.facts.assigned.contains(&name) && !self.facts.declared.contains_key(&name))
                    .then_some(value)
            }
            _ => None,
        }
    }

    /// A helper predicate `h(event)`, or `string.find`/`string.match` of
    /// an identity field (as functions or methods).
    fn call(
        &self,
        call: &full_moon::ast::FunctionCall,
        p: &str,
        kind: Kind,
        depth: usize,
    ) -> Option<Guard> {
        let suffixes: Vec<&Suffix> = call.suffixes().collect();
        let Prefix::Name(prefix) = call.prefix() else {
            return None;
        };
        let prefix = ident(prefix);
        match suffixes.as_slice() {
            // helper(event)
            [Suffix::Call(Call::AnonymousCall(args))] => {
                let args = arguments(args)?;
                let [only] = args.as_slice() else {
                    return None;
                };
                let Expression::Var(Var::Name(arg)) = unparen(only) else {
                    return None;
                };
                if ident(arg) != p || depth >= MAX_HELPER_DEPTH {
                    return None;
                }
                let body = self.functions.get(&prefix)?;
                let param = first_param(body)?;
                let g = self.predicate_expr(body, &param, depth)?;
                // Notification-only parts cannot appear in a predicate
                // (it is analysed as over a value list), so it holds as is.
                let _ = kind;
                Some(g)
            }
            // string.find(event.field, "pattern" ...)
            [
                Suffix::Index(Index::Dot { name, .. }),
                Suffix::Call(Call::AnonymousCall(args)),
            ] if prefix == "string" => {
                self.string_function_call(&prefix, Some(&ident(name)), args, p)
            }
            // event.field:find("pattern" ...)
            [
                Suffix::Index(Index::Dot { name: field, .. }),
                Suffix::Call(Call::MethodCall(method)),
            ] if prefix == p => {
                let field = Field::named(&ident(field))?;
                let args = arguments(method.args())?;
                self.finds(&ident(method.name()), field, &args)
            }
            _ => None,
        }
    }

    fn string_function_call(
        &self,
        prefix: &str,
        function: Option<&str>,
        args: &FunctionArgs,
        p: &str,
    ) -> Option<Guard> {
        if prefix != "string" {
            return None;
        }
        let args = arguments(args)?;
        let (subject, rest) = args.split_first()?;
        let field = Field::named(&event_field(subject, p)?)?;
        self.finds(function?, field, rest)
    }

    /// `find`/`match` of a field with a literal pattern (and, for `find`,
    /// an optional `1, true` for plain text).
    fn finds(&self, function: &str, field: Field, args: &[&Expression]) -> Option<Guard> {
        if !self.facts.string_library_intact {
            return None;
        }
        let pattern = match args.first().map(|e| unparen(e)) {
            Some(e @ Expression::String(_)) => string_literal(e)?,
            _ => return None,
        };
        let plain = match (function, &args[1..]) {
            ("find" | "match", []) => false,
            ("find", [init, plain]) => {
                let one = matches!(unparen(init), Expression::Number(n) if n.token().to_string().trim() == "1");
                let yes = matches!(unparen(plain), Expression::Symbol(t) if ident(t) == "true");
                if !(one && yes) {
                    return None;
                }
                true
            }
            _ => return None,
        };
        // A malformed pattern is an error in Lua: not a guard.
        if !plain && crate::lua::pattern_matches("", &pattern).is_err() {
            return None;
        }
        Some(Guard::Finds(field, pattern, plain))
    }
}
