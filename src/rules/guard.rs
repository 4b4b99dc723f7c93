//! The rule index: for each handler, a condition on its event's identity
//! (`plugin == "memory" and type_instance == "free"`) that must hold for a
//! call to have any effect, read from the rule file's source. Where it is
//! false, not calling the handler is indistinguishable from calling it, so
//! the handler is not called. Sound before clever: a handler or a file the
//! analysis cannot vouch for is not indexed (and says why), and is called
//! on every event as before.
//!
//! What a derived condition may rely on:
//! - the handler's event table is only read (never written, passed on,
//!   stored or compared as a whole) by every handler of the file, so the
//!   identity fields a handler sees are the event's;
//! - the names it uses (local string constants, local helper predicates,
//!   the handler tables) are declared once and never assigned again;
//! - `string.find`/`string.match` are the library's (the file has no way to
//!   reach and replace them: no bare `string`, no `rawset`, `_G`, `_ENV`,
//!   `getmetatable`, no assignment to a field named `find` or `match`).

use full_moon::LuaVersion;
use full_moon::ast::{
    BinOp, Block, Call, Expression, Field as TableField, FunctionArgs, FunctionBody, Index,
    LastStmt, Parameter, Prefix, Stmt, Suffix, TableConstructor, UnOp, Var,
};
use full_moon::tokenizer::{Symbol, Token, TokenReference, TokenType};
use full_moon::visitors::Visitor;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// An identity field of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Host,
    Plugin,
    PluginInstance,
    Type,
    TypeInstance,
}

impl Field {
    const ALL: [(Field, &'static str); 5] = [
        (Field::Host, "host"),
        (Field::Plugin, "plugin"),
        (Field::PluginInstance, "plugin_instance"),
        (Field::Type, "type"),
        (Field::TypeInstance, "type_instance"),
    ];

    /// The field of this name (`"plugin"`, ...).
    pub fn named(name: &str) -> Option<Field> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// Position in `[host, plugin, plugin_instance, type, type_instance]`.
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        Self::ALL[self.index()].1
    }
}

/// A condition on an event's identity. Serializable: a rule worker sends
/// its file's conditions to the plugin, which routes events by them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// The field is exactly this string.
    Eq(Field, String),
    /// A notification's severity is this number.
    Severity(i64),
    /// `string.find`/`string.match` of the field with this Lua pattern
    /// finds something (`plain`: the pattern is plain text).
    Finds(Field, String, bool),
    Not(Box<Guard>),
    /// All hold (true when empty).
    All(Vec<Guard>),
    /// One holds (false when empty).
    Any(Vec<Guard>),
}

/// The fields a guard looks at, of one event.
pub struct Subject<'a> {
    /// `[host, plugin, plugin_instance, type, type_instance]`.
    pub identity: [&'a str; 5],
    /// A notification's severity; `None` for a value list.
    pub severity: Option<i64>,
}

impl Guard {
    /// Always true: no condition.
    pub fn always() -> Guard {
        Guard::All(Vec::new())
    }

    fn is_always(&self) -> bool {
        matches!(self, Guard::All(g) if g.is_empty())
    }

    /// Whether a handler with this guard must be called for `subject`:
    /// false only where the guard is known to be false (a pattern too
    /// costly to decide leaves it to the call).
    pub fn admits(&self, subject: &Subject<'_>) -> bool {
        self.eval(subject) != Some(false)
    }

    fn eval(&self, s: &Subject<'_>) -> Option<bool> {
        match self {
            Guard::Eq(f, want) => Some(s.identity[f.index()] == want),
            Guard::Severity(n) => s.severity.map(|v| v == *n),
            Guard::Finds(f, pattern, plain) => {
                let text = s.identity[f.index()];
                if *plain {
                    Some(text.contains(pattern.as_str()))
                } else {
                    crate::lua::pattern_matches(text, pattern).ok()
                }
            }
            Guard::Not(g) => g.eval(s).map(|b| !b),
            Guard::All(gs) => decided_by(gs, s, false),
            Guard::Any(gs) => decided_by(gs, s, true),
        }
    }

    /// Whether it looks at a notification's severity, which is not part
    /// of a series' identity (an OKAY and a FAILURE notification of one
    /// series share their debounce state).
    pub fn uses_severity(&self) -> bool {
        match self {
            Guard::Severity(_) => true,
            Guard::Not(g) => g.uses_severity(),
            Guard::All(gs) | Guard::Any(gs) => gs.iter().any(Guard::uses_severity),
            Guard::Eq(..) | Guard::Finds(..) => false,
        }
    }

    fn is_never(&self) -> bool {
        matches!(self, Guard::Any(g) if g.is_empty())
    }

    /// Negation, without double negatives.
    fn negated(self) -> Guard {
        match self {
            Guard::Not(inner) => *inner,
            other => Guard::Not(Box::new(other)),
        }
    }

    /// Never true.
    pub fn never() -> Guard {
        Guard::Any(Vec::new())
    }

    /// Both hold.
    pub fn and(self, other: Guard) -> Guard {
        match (self, other) {
            (a, _) if a.is_never() => a,
            (_, b) if b.is_never() => b,
            (a, b) if a.is_always() => b,
            (a, b) if b.is_always() => a,
            (Guard::All(mut a), Guard::All(b)) => {
                a.extend(b);
                Guard::All(a)
            }
            (Guard::All(mut a), b) => {
                a.push(b);
                Guard::All(a)
            }
            (a, b) => Guard::All(vec![a, b]),
        }
    }

    /// One holds.
    pub fn or(self, other: Guard) -> Guard {
        if self.is_always() || other.is_always() {
            return Guard::always();
        }
        match (self, other) {
            (a, b) if a.is_never() => b,
            (a, b) if b.is_never() => a,
            (Guard::Any(mut a), b) => {
                a.push(b);
                Guard::Any(a)
            }
            (a, b) => Guard::Any(vec![a, b]),
        }
    }
}

/// Three-valued `all`/`any`: one guard equal to `decisive` decides; else
/// any unknown leaves it unknown; else the other value.
fn decided_by(gs: &[Guard], s: &Subject<'_>, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for g in gs {
        match g.eval(s) {
            Some(v) if v == decisive => return Some(decisive),
            None => unknown = true,
            Some(_) => {}
        }
    }
    if unknown { None } else { Some(!decisive) }
}

impl fmt::Display for Guard {
    /// Lua-like text, for `rules check`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::Eq(field, s) => write!(f, "{} == {s:?}", field.name()),
            Guard::Severity(n) => write!(f, "severity == {n}"),
            Guard::Finds(field, p, true) => write!(f, "{} contains {p:?}", field.name()),
            Guard::Finds(field, p, false) => write!(f, "{} matches {p:?}", field.name()),
            Guard::Not(g) => match g.as_ref() {
                Guard::Eq(field, s) => write!(f, "{} ~= {s:?}", field.name()),
                other => write!(f, "not ({other})"),
            },
            Guard::All(gs) if gs.is_empty() => write!(f, "true"),
            Guard::Any(gs) if gs.is_empty() => write!(f, "false"),
            Guard::All(gs) | Guard::Any(gs) => {
                let join = if matches!(self, Guard::All(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, g) in gs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(join)?;
                    }
                    match g {
                        Guard::All(_) | Guard::Any(_) => write!(f, "({g})")?,
                        _ => write!(f, "{g}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// Which handler list of a file (the chunk's first or second return value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Metric,
    Notification,
}

/// What the analysis found for one handler: its guard, or why it has none.
pub type Derived = Result<Guard, String>;

/// The guards of a file's handlers, by kind and name (`None` for a bare
/// function).
#[derive(Debug, Default)]
pub struct FileIndex {
    /// Why no handler of the file is indexed, when that is the case.
    file_reason: Option<String>,
    handlers: BTreeMap<(Kind, Option<String>), Derived>,
    /// Fields handlers read that their event table never has (`m.plugn`),
    /// with the nearest real name: for `rules check`.
    pub typos: Vec<String>,
}

impl FileIndex {
    /// The guard of a handler, or why it has none.
    pub fn guard(&self, kind: Kind, name: Option<&str>) -> Derived {
        if let Some(why) = &self.file_reason {
            return Err(why.clone());
        }
        self.handlers
            .get(&(kind, name.map(str::to_string)))
            .cloned()
            .unwrap_or_else(|| Err("not found in the file's return statement".into()))
    }

    fn refuse(why: impl Into<String>) -> FileIndex {
        FileIndex {
            file_reason: Some(why.into()),
            ..FileIndex::default()
        }
    }
}

/// Names the file's code may not use for `string.find`/`string.match`
/// guards to be trusted (each is a way to reach the string library).
const STRING_LIBRARY_DOORS: &[&str] = &["rawset", "_G", "_ENV", "getmetatable", "setmetatable"];

/// Derives the guards of every handler the file's last statement returns.
pub fn analyse(source: &str) -> FileIndex {
    let source = crate::lua::blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return FileIndex::refuse("the source is not understood");
    };
    let block = ast.nodes();
    let facts = Facts::of(&ast);
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
        .flat_map(|(kind, name, body)| field_typos(*kind, name.as_deref(), body))
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
    let handlers = found
        .into_iter()
        .map(|(kind, name, body)| ((kind, name), scope.handler_guard(kind, body)))
        .collect();
    FileIndex {
        file_reason: None,
        handlers,
        typos,
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
    fn of(ast: &full_moon::ast::Ast) -> Facts {
        let mut facts = Facts::default();
        facts.visit_ast(ast);
        let lexed = significant_tokens(&ast.nodes().to_string());
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
        let Some(param) = first_param(body) else {
            return Ok(());
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

/// The fields of a value list's table and of a notification's.
const METRIC_FIELDS: &[&str] = &[
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
    "time",
    "interval",
    "values",
    "dsnames",
    "dstypes",
];
const NOTIFICATION_FIELDS: &[&str] = &[
    "severity",
    "time",
    "message",
    "host",
    "plugin",
    "plugin_instance",
    "type",
    "type_instance",
    "meta",
];

/// `param.name` reads in a handler where its table never has `name`,
/// each with the nearest field there is.
fn field_typos(kind: Kind, handler: Option<&str>, body: &FunctionBody) -> Vec<String> {
    let Some(param) = first_param(body) else {
        return Vec::new();
    };
    let (fields, table) = match kind {
        Kind::Metric => (METRIC_FIELDS, "a value list's table"),
        Kind::Notification => (NOTIFICATION_FIELDS, "a notification's table"),
    };
    let tokens = significant_tokens(&body.block().to_string());
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        let (
            TokenType::Identifier { identifier: base },
            TokenType::Identifier { identifier: name },
        ) = (w[0].token_type(), w[2].token_type())
        else {
            continue;
        };
        if base.as_str() != param
            || !is_symbol(&w[1], Symbol::Dot)
            || fields.contains(&name.as_str())
        {
            continue;
        }
        let nearest = fields
            .iter()
            .min_by_key(|f| edit_distance(f, name))
            .copied()
            .unwrap_or("plugin");
        let who = handler.map_or_else(|| "the handler".to_string(), |h| format!("handler `{h}`"));
        let line = format!(
            "{who} reads `{param}.{name}`, which {table} never has (did you mean `{param}.{nearest}`?)"
        );
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// Every `{service = "...", command = "..."}` the source spells out with
/// string literals (what its handlers can ask for), in order.
pub fn requested_commands(source: &str) -> Vec<crate::task::CommandRef> {
    struct Requests(Vec<crate::task::CommandRef>);
    impl Visitor for Requests {
        fn visit_table_constructor(&mut self, t: &TableConstructor) {
            let mut service = None;
            let mut command = None;
            for field in t.fields() {
                if let TableField::NameKey { key, value, .. } = field {
                    match ident(key).as_str() {
                        "service" => service = string_literal(value),
                        "command" => command = string_literal(value),
                        _ => {}
                    }
                }
            }
            if let (Some(s), Some(c)) = (service, command) {
                let r = crate::task::CommandRef::new(s, c);
                if !self.0.contains(&r) {
                    self.0.push(r);
                }
            }
        }
    }
    let source = crate::lua::blank_empty_statements(source);
    let Ok(ast) = full_moon::parse_fallible(&source, LuaVersion::lua54()).into_result() else {
        return Vec::new();
    };
    let mut found = Requests(Vec::new());
    found.visit_ast(&ast);
    found.0
}

/// Levenshtein distance, for suggesting a field name.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `event.field` (a dot read of the handler's parameter), its field name.
fn event_field(e: &Expression, p: &str) -> Option<String> {
    let Expression::Var(Var::Expression(v)) = unparen(e) else {
        return None;
    };
    let Prefix::Name(name) = v.prefix() else {
        return None;
    };
    let suffixes: Vec<&Suffix> = v.suffixes().collect();
    match suffixes.as_slice() {
        [Suffix::Index(Index::Dot { name: field, .. })] if ident(name) == p => Some(ident(field)),
        _ => None,
    }
}

fn arguments(args: &FunctionArgs) -> Option<Vec<&Expression>> {
    match args {
        FunctionArgs::Parentheses { arguments, .. } => Some(arguments.iter().collect()),
        _ => None,
    }
}

fn unparen(mut e: &Expression) -> &Expression {
    while let Expression::Parentheses { expression, .. } = e {
        e = expression;
    }
    e
}

fn ident(t: &TokenReference) -> String {
    match t.token().token_type() {
        TokenType::Identifier { identifier } => identifier.to_string(),
        TokenType::Symbol { symbol } => symbol.to_string(),
        _ => t.token().to_string(),
    }
}

/// The text of a quoted string literal without escapes (an escape would
/// need decoding; such strings are not used as guards).
fn string_literal(e: &Expression) -> Option<String> {
    let Expression::String(t) = unparen(e) else {
        return None;
    };
    match t.token().token_type() {
        TokenType::StringLiteral {
            literal,
            multi_line_depth: 0,
            ..
        } if !literal.contains('\\') && !t.token().to_string().starts_with('[') => {
            Some(literal.to_string())
        }
        _ => None,
    }
}

/// The tokens of `text` in source order, without whitespace and comments
/// (an AST node's own token walk is not in source order).
fn significant_tokens(text: &str) -> Vec<Token> {
    match full_moon::tokenizer::Lexer::new(text, LuaVersion::lua54()).collect() {
        full_moon::tokenizer::LexerResult::Ok(tokens) => tokens
            .into_iter()
            .filter(|t| !t.token_type().is_trivia())
            .collect(),
        _ => Vec::new(),
    }
}

fn first_param(body: &FunctionBody) -> Option<String> {
    match body.parameters().iter().next()? {
        Parameter::Name(name) => Some(ident(name)),
        _ => None,
    }
}

fn is_symbol(t: &Token, s: Symbol) -> bool {
    matches!(t.token_type(), TokenType::Symbol { symbol } if *symbol == s)
}

fn is_nil_or_false(e: &Expression) -> bool {
    matches!(unparen(e), Expression::Symbol(t) if matches!(ident(t).as_str(), "nil" | "false"))
}

/// A block that is empty or only `return` (with nothing, `nil` or `false`).
fn does_nothing(block: &Block) -> bool {
    block.stmts().next().is_none()
        && match block.last_stmt() {
            None => true,
            Some(LastStmt::Return(r)) => r.returns().iter().all(is_nil_or_false),
            Some(_) => false,
        }
}

fn first_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(source: &str, kind: Kind, name: Option<&str>) -> Derived {
        analyse(source).guard(kind, name)
    }

    fn text(source: &str, name: &str) -> String {
        match guard(source, Kind::Metric, Some(name)) {
            Ok(g) => g.to_string(),
            Err(why) => format!("not indexed: {why}"),
        }
    }

    fn subject<'a>(plugin: &'a str, type_instance: &'a str) -> Subject<'a> {
        Subject {
            identity: ["h", plugin, "", "memory", type_instance],
            severity: None,
        }
    }

    const EXAMPLE: &str = include_str!("../../rules/example.lua");

    #[test]
    fn the_example_rules_are_indexed_through_their_helper() {
        let g = guard(EXAMPLE, Kind::Metric, Some("memory_free_is_under_10GB")).unwrap();
        assert_eq!(
            g.to_string(),
            r#"plugin == "memory" and type_instance == "free""#
        );
        assert!(g.admits(&subject("memory", "free")));
        assert!(!g.admits(&subject("memory", "used")));
        assert!(!g.admits(&subject("cpu", "free")));
        let n = guard(EXAMPLE, Kind::Notification, Some("fail_example")).unwrap();
        assert_eq!(n.to_string(), "severity == 1");
        let mut s = subject("nginx", "");
        s.severity = Some(4);
        assert!(!n.admits(&s));
        s.severity = Some(1);
        assert!(n.admits(&s));
    }

    #[test]
    fn early_returns_conditions_and_branches() {
        let source = r#"
local DF = "df"
local function is_root(m) return m.plugin_instance == "root" end
return {
  early = function(m)
    if m.plugin ~= DF then return end
    if not is_root(m) then return nil end
    return { service = "s", command = "c" }
  end,
  chain = function(m)
    if m.plugin == "a" and m.values[1] > 3 then
      return { service = "s", command = "c" }
    elseif m.plugin == "b" or m.type == "x" then
      return { service = "s", command = "c" }
    end
  end,
  found = function(m)
    if m.type_instance:find("^eth") or string.match(m.plugin, "disk") then print("x") end
  end,
  plain = function(m)
    if string.find(m.plugin, "a.b", 1, true) then print("x") end
  end,
  counter = function(m)
    count = (count or 0) + 1
    if m.plugin == "a" then return { service = "s", command = "c" } end
  end,
  impure_else = function(m)
    if m.plugin == "a" then return nil else print("other") end
  end,
}
"#;
        assert_eq!(
            text(source, "early"),
            r#"plugin == "df" and plugin_instance == "root""#
        );
        assert_eq!(
            text(source, "chain"),
            r#"plugin == "a" or (plugin == "b" or type == "x")"#
        );
        assert_eq!(
            text(source, "found"),
            r#"type_instance matches "^eth" or plugin matches "disk""#
        );
        assert_eq!(text(source, "plain"), r#"plugin contains "a.b""#);
        assert!(text(source, "counter").starts_with("not indexed: runs `count"));
        assert_eq!(text(source, "impure_else"), "true");
    }

    #[test]
    fn what_makes_a_file_unindexable() {
        for (source, why) in [
            (
                "local h = { a = function(m) m.plugin = 'x' end, b = function(m) if m.plugin == 'x' then print(1) end end } return h",
                "writes to a field",
            ),
            (
                "local saved return { a = function(m) saved = m end }",
                "passes `m` on",
            ),
            (
                "local h = { a = function(m) if m.plugin == 'x' then print(1) end end } h.a = print return h",
                "not a local table used only",
            ),
            (
                "if os.time() > 0 then return { } end return { a = function(m) end }",
                "more than one place",
            ),
            ("return {", "not understood"),
        ] {
            let g = guard(source, Kind::Metric, Some("a"));
            assert!(
                g.as_ref().is_err_and(|e| e.contains(why)),
                "{source}: {g:?}"
            );
        }
    }

    #[test]
    fn the_string_library_must_be_out_of_reach_for_pattern_guards() {
        for door in [
            "string.find = function() return 1 end",
            "local s = string",
            "rawset(getmetatable('').__index, 'match', print)",
        ] {
            let source = format!(
                "{door}\nreturn {{ a = function(m) if m.plugin:find('x') then print(1) end end }}"
            );
            assert_eq!(text(&source, "a"), "true", "{door}");
        }
        // Tables written with computed keys cannot be the string table.
        let source = "local t = {} t[k] = 1\nreturn { a = function(m) if m.plugin:find('x') then print(1) end end }";
        assert_eq!(text(source, "a"), r#"plugin matches "x""#);
        // A constant, reassigned, is not a constant.
        let source = "local P = 'x' P = 'y' return { a = function(m) if m.plugin == P then print(1) end end }";
        assert_eq!(text(source, "a"), "true");
    }

    #[test]
    fn a_table_filled_statement_by_statement_is_indexed() {
        let source = "local H = {}\nH.a = function(m) if m.plugin == 'x' then print(1) end end\nfunction H.b(m) if m.type == 'y' then print(2) end end\nreturn H";
        assert_eq!(text(source, "a"), r#"plugin == "x""#);
        assert_eq!(text(source, "b"), r#"type == "y""#);
        let used = "local H = {}\nH.a = function(m) if m.plugin == 'x' then print(1) end end\nsetup(H)\nreturn H";
        assert!(text(used, "a").contains("is used other than filled"));
    }

    #[test]
    fn fields_a_table_never_has_are_named_with_the_nearest_one() {
        let source = "return { a = function(m) if m.plugn == 'x' and m.value[1] > 1 then print(m.plugin) end end }, { n = function(n) if n.sevrity == 1 then end end }";
        let typos = analyse(source).typos;
        assert_eq!(typos.len(), 3, "{typos:?}");
        assert!(
            typos[0].contains("`m.plugn`") && typos[0].contains("`m.plugin`?"),
            "{typos:?}"
        );
        assert!(
            typos[1].contains("`m.value`") && typos[1].contains("`m.values`?"),
            "{typos:?}"
        );
        assert!(
            typos[2].contains("`n.sevrity`") && typos[2].contains("`n.severity`?"),
            "{typos:?}"
        );
        assert!(analyse(EXAMPLE).typos.is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_commands_a_file_can_ask_for_are_found() {
        let found = requested_commands(EXAMPLE);
        assert_eq!(found, [crate::task::CommandRef::new("hello", "exec")]);
    }

    #[test]
    fn an_empty_handler_never_acts_and_a_bare_function_is_indexed() {
        assert_eq!(
            analyse("return { a = function(m) end }").guard(Kind::Metric, Some("a")),
            Ok(Guard::Any(vec![]))
        );
        let g = analyse("return function(m) if m.host == 'h' then print(1) end end")
            .guard(Kind::Metric, None)
            .unwrap();
        assert_eq!(g.to_string(), r#"host == "h""#);
    }

    #[test]
    fn a_costly_pattern_leaves_the_decision_to_the_call() {
        let g = Guard::Finds(Field::Plugin, "(a*)*b".into(), false);
        let long = "a".repeat(30000);
        let s = Subject {
            identity: ["", &long, "", "", ""],
            severity: None,
        };
        assert!(g.admits(&s));
        assert!(Guard::Not(Box::new(g)).admits(&s));
    }
}
