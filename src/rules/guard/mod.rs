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
//!
//! The same reading decides whether a file's value-list tables may be kept
//! per series and refilled ([`FileIndex::fresh_tables`]): only where no
//! metric handler can hold its table, or a table in it, past the call.

mod analysis;
mod lint;
mod syntax;

pub use analysis::analyse;
pub use lint::requested_commands;

use std::collections::BTreeMap;
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
    /// The plugins the guard asks for by name (`plugin == "df"`), outside
    /// any `not`: what a rule waiting for those plugins' series expects.
    pub fn plugins(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_plugins(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_plugins(&self, out: &mut Vec<String>) {
        match self {
            Guard::Eq(Field::Plugin, name) => out.push(name.clone()),
            Guard::All(gs) | Guard::Any(gs) => gs.iter().for_each(|g| g.collect_plugins(out)),
            _ => {}
        }
    }

    /// Always true: no condition.
    pub fn always() -> Guard {
        Guard::All(Vec::new())
    }

    pub(super) fn is_always(&self) -> bool {
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
    pub(super) fn negated(self) -> Guard {
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
            // In the rule API's names, as rule authors write them.
            Guard::Severity(n) => match n {
                1 => write!(f, "severity == NOTIF_FAILURE"),
                2 => write!(f, "severity == NOTIF_WARNING"),
                4 => write!(f, "severity == NOTIF_OKAY"),
                n => write!(f, "severity == {n}"),
            },
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
    pub(super) handlers: BTreeMap<(Kind, Option<String>), Derived>,
    /// Fields handlers read that their event table never has (`m.plugn`),
    /// with the nearest real name: for `rules check`.
    pub typos: Vec<String>,
    /// Why the file's value-list tables must be built afresh for every
    /// value list; `None` when every metric handler only reads its table
    /// and keeps nothing of it, so one table per series can be refilled.
    pub fresh_tables: Option<String>,
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

    pub(super) fn refuse(why: impl Into<String>) -> FileIndex {
        let why = why.into();
        FileIndex {
            file_reason: Some(why.clone()),
            fresh_tables: Some(why),
            ..FileIndex::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lint::edit_distance;
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

    const EXAMPLE: &str = include_str!("../../../rules/example.lua");

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
        assert_eq!(n.to_string(), "severity == NOTIF_FAILURE");
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
            (
                "return { a = function(...) local m = ... m.plugin = 'x' end }",
                "takes its event as `...`",
            ),
        ] {
            let g = guard(source, Kind::Metric, Some("a"));
            assert!(
                g.as_ref().is_err_and(|e| e.contains(why)),
                "{source}: {g:?}"
            );
        }
    }

    #[test]
    fn value_list_tables_are_kept_per_series_only_where_no_handler_can_keep_one() {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.lua"))
                .unwrap();
        assert_eq!(analyse(&example).fresh_tables, None);
        let reads = "return { a = function(m) if m.values[1] ~= m.values[1] or #m.values > 2 or m.dsnames[0] == 'x' then print(m.plugin, m.time) end end }";
        assert_eq!(analyse(reads).fresh_tables, None);
        for (source, why) in [
            (
                "return { a = function(m) last = m.values end }",
                "uses `m.values` other than indexing it",
            ),
            (
                "return { a = function(m) print(#m.values, m.dstypes) end }",
                "uses `m.dstypes`",
            ),
            (
                "return { a = function(m) later = function() return m.values[1] end end }",
                "defines a function",
            ),
            ("return { a = function(m) kept = m end }", "passes `m` on"),
            (
                "return { a = function(...) end }",
                "takes its event as `...`",
            ),
        ] {
            let index = analyse(source);
            assert!(
                index.fresh_tables.as_ref().is_some_and(|e| e.contains(why)),
                "{source}: {:?}",
                index.fresh_tables
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
