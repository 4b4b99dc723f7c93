//! One rule file in its own VM: its handlers, their options, and what each
//! asked for.

use super::debounce::DebouncePolicy;
use super::guard::{self, Derived, Guard, Subject};
use crate::events::{Metric, Missing, Notification};
use crate::lua::CallError;
use crate::lua::{
    EventRef, EventTableCache, Limit, LuaFunction, LuaValue, Vm, VmLimits, pattern_matches,
};
use crate::task::CommandRef;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which event a handler is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerKind {
    Metric,
    Notification,
    /// A handler of the metric table with `on = "missing"`: called when a
    /// series goes silent, with the series' identity.
    Missing,
}

impl HandlerKind {
    fn guard_kind(self) -> guard::Kind {
        match self {
            // A silent series has a value list's identity.
            HandlerKind::Metric | HandlerKind::Missing => guard::Kind::Metric,
            HandlerKind::Notification => guard::Kind::Notification,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            HandlerKind::Metric => "metric",
            HandlerKind::Notification => "notification",
            HandlerKind::Missing => "missing",
        }
    }
}

/// One condition of a `match` filter.
#[derive(Clone, Debug, PartialEq)]
enum FieldMatch {
    Exact(String),
    Pattern(String),
}

/// The identity fields a `match` filter may test.
const FILTER_FIELDS: &[&str] = &["host", "plugin", "plugin_instance", "type", "type_instance"];

struct Handler {
    /// `None` for a bare function.
    name: Option<String>,
    /// The rule index's condition for calling it, or why it has none.
    guard: Derived,
    /// `<file>::metric::<name>`, made once at load (it is on every outcome).
    label: Arc<str>,
    function: LuaFunction,
    filter: Vec<(String, FieldMatch)>,
    policy: DebouncePolicy,
    /// `on = "missing"`: called when a series goes silent, not for its
    /// value lists.
    on_missing: bool,
}

impl Handler {
    /// The `match` option as a guard.
    fn match_guard(&self) -> Guard {
        self.filter.iter().fold(Guard::always(), |acc, (field, m)| {
            let Some(field) = guard::Field::named(field) else {
                return acc;
            };
            acc.and(match m {
                FieldMatch::Exact(s) => Guard::Eq(field, s.clone()),
                FieldMatch::Pattern(p) => Guard::Finds(field, p.clone(), false),
            })
        })
    }
}

/// A handler asked for a recovery command (after debouncing).
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    /// `<file>::metric::<name>` (docs/COMPATIBILITY.md §2: the result notification's type).
    pub handler: String,
    pub service: String,
    pub command: String,
    /// The host the handler named (`host = "..."`), for central rules.
    pub host: Option<String>,
    /// The handler's own cooldown (its `cooldown` option), in seconds.
    pub cooldown: Option<f64>,
    /// Why the handler holds its own decision back (`inhibited = "..."`).
    pub inhibited: Option<String>,
    /// The text of a notification asked for instead of a command.
    pub notify: Option<String>,
}

/// What a handler asked for: a command, and the host it is for when it
/// names one (central rules act on the value list's host otherwise; local
/// rules on this host).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub command: CommandRef,
    pub host: Option<String>,
    /// The handler holds it back itself while another condition holds
    /// (`inhibited = "database down"`): reported and counted, not carried
    /// out, and no debounce state is spent on it.
    pub inhibited: Option<String>,
    /// A notification instead of a command (`{notify = "text"}`; the
    /// command is then empty): a storm across a pool alerts rather than
    /// repairs.
    pub notify: Option<String>,
}

/// A handler failed or returned something that is not a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerError {
    pub handler: String,
    pub reason: String,
    /// Set when a sandbox limit stopped the call.
    pub limit: Option<Limit>,
}

/// What one handler returned for one event, before debouncing.
pub struct HandlerOutcome {
    pub handler: Arc<str>,
    pub policy: DebouncePolicy,
    /// The decision, or why there is none (and the limit hit, if any).
    pub result: Result<Option<Decision>, CallFailure>,
}

/// Why a handler gave no decision, and the sandbox limit it hit, if any.
pub type CallFailure = (String, Option<Limit>);

/// The value identity of an event: what `match` filters test and what
/// debounce state is kept per.
pub(super) trait Identity {
    /// `[host, plugin, plugin_instance, type, type_instance]`, in the order
    /// of [`FILTER_FIELDS`].
    fn identity_fields(&self) -> [&str; 5];

    /// A notification's severity; `None` for a value list.
    fn severity(&self) -> Option<i64> {
        None
    }

    fn field(&self, name: &str) -> &str {
        let i = FILTER_FIELDS.iter().position(|f| *f == name).unwrap_or(4);
        self.identity_fields()[i]
    }

    /// collectd's identifier, `host/plugin-instance/type-instance`.
    fn series(&self) -> String {
        series_name(self.identity_fields())
    }
}

impl Identity for Metric {
    fn identity_fields(&self) -> [&str; 5] {
        self.identity()
    }
}

impl Identity for Notification {
    fn severity(&self) -> Option<i64> {
        Some(i64::from(i32::from(self.severity)))
    }

    fn identity_fields(&self) -> [&str; 5] {
        self.identity()
    }
}

/// collectd's identifier of a series, `host/plugin-instance/type-instance`,
/// from `[host, plugin, plugin_instance, type, type_instance]`.
pub fn series_name(identity: [&str; 5]) -> String {
    let [host, plugin, plugin_instance, type_, type_instance] = identity;
    let join = |a: &str, b: &str| {
        if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    format!(
        "{host}/{}/{}",
        join(plugin, plugin_instance),
        join(type_, type_instance)
    )
}

/// collectd's identifier of an event's series, for logs and reports.
pub fn event_series(event: &crate::events::Event) -> String {
    match event {
        crate::events::Event::Metric(m) => m.series(),
        crate::events::Event::Notification(n) => n.series(),
        crate::events::Event::Missing(m) => m.series.series(),
    }
}

/// Largest rule file read. Real ones are a few KiB; a file dropped into the
/// rule directory must not make a worker read gigabytes before its limits
/// apply.
pub const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A rule file's text: a regular file of at most [`MAX_RULE_FILE_BYTES`],
/// never through a symbolic link (a link in the rule directory could point
/// a root-run worker at any file, whose text would reach the log in parse
/// errors).
pub fn read_rule_file(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::files::read_regular(path, MAX_RULE_FILE_BYTES, crate::files::Links::Refuse)
}

/// A loaded rule file.
pub struct RuleFile {
    path: PathBuf,
    vm: Vm,
    metric: Vec<Handler>,
    notification: Vec<Handler>,
    missing: Vec<Handler>,
    examples: Vec<super::examples::Example>,
    /// Skip handlers whose guard rules the event out (on unless a tool
    /// compares both ways).
    indexed: bool,
    /// Fields handlers read that their table never has, for `rules check`.
    typos: Vec<String>,
    /// Why value lists get a new table each (`None`: the metric handlers
    /// keep nothing of theirs, and one table per series is refilled).
    fresh_tables: Option<String>,
    /// The file's text and limits, for a diagnosis run (see
    /// [`RuleFile::locate`]).
    source: Vec<u8>,
    limits: VmLimits,
    /// What diagnosis runs found (the line, Lua's message), by handler
    /// and message.
    located: HashMap<(Arc<str>, String), Option<Located>>,
}

/// Where a diagnosis run failed: the line, and Lua's message.
type Located = (u32, String);

/// Diagnoses remembered per file at most.
const MAX_LOCATED: usize = 64;

impl RuleFile {
    /// Reads and runs the file; fails with a message naming the file.
    pub fn load(path: &Path, limits: VmLimits) -> Result<RuleFile, String> {
        let source = read_rule_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_source(path, &source, limits)
    }

    /// Runs `source` as the file `path`.
    pub fn from_source(path: &Path, source: &[u8], limits: VmLimits) -> Result<RuleFile, String> {
        let label = path.display().to_string();
        // Before the VM exists: the parse's memory is given back before
        // the VM's long-lived objects are allocated around it.
        let index = guard::analyse(&String::from_utf8_lossy(source));
        let mut vm = Vm::new(limits).map_err(|e| e.located(&label))?;
        let returned = vm
            .run_chunk(&label, source)
            .map_err(|e| e.located(&label))?;
        let mut metric = handlers(returned.first(), &label, "first (metric handlers)")?;
        let mut notification = handlers(returned.get(1), &label, "second (notification handlers)")?;
        if let Some(h) = notification.iter().find(|h| h.on_missing) {
            return Err(format!(
                "{label}: the second (notification handlers) return value has `{}` with on = \"missing\": missing handlers go with the metric handlers",
                h.name.as_deref().unwrap_or("")
            ));
        }
        let (mut missing, mut metric): (Vec<Handler>, Vec<Handler>) = std::mem::take(&mut metric)
            .into_iter()
            .partition(|h| h.on_missing);
        for (kind, list) in [
            (HandlerKind::Metric, &mut metric),
            (HandlerKind::Notification, &mut notification),
            (HandlerKind::Missing, &mut missing),
        ] {
            for h in list.iter_mut() {
                h.guard = index.guard(kind.guard_kind(), h.name.as_deref());
                // Debounce state is kept per series, and a series' events
                // differ in severity: skipping one would keep state the
                // call would have cleared.
                if !h.policy.is_plain() && h.guard.as_ref().is_ok_and(Guard::uses_severity) {
                    h.guard = Err(
                        "its condition tests the severity, and its hits/repeat_interval/give_up state needs every notification of the series"
                            .into(),
                    );
                }
                h.label = match &h.name {
                    Some(name) => format!("{label}::{}::{name}", kind.as_str()),
                    None => format!("{label}::{}", kind.as_str()),
                }
                .into();
            }
        }
        let examples = super::examples::parse(returned.get(2), &label)?;
        Ok(RuleFile {
            path: path.to_path_buf(),
            vm,
            metric,
            notification,
            missing,
            examples,
            indexed: true,
            typos: index.typos,
            fresh_tables: index.fresh_tables,
            source: source.to_vec(),
            limits,
            located: HashMap::new(),
        })
    }

    /// `message` with the line where the handler failed, as Lua gives it
    /// (`file.lua:4: attempt to index a nil value`). piccolo's own VM
    /// errors carry no position, and tracking lines would slow every call:
    /// instead, a failure without one is run once more in a VM of its own,
    /// from the file's start, with a line marker before each statement,
    /// and the handler called with the same event. A handler whose failure
    /// depends on what earlier events left behind may not fail there: its
    /// message keeps no line. The answer is remembered, so a handler that
    /// fails on every event costs one run.
    fn locate(
        &mut self,
        kind: HandlerKind,
        index: usize,
        event: EventRef<'_>,
        message: String,
    ) -> String {
        let label = self.path.display().to_string();
        // A message with its position already (from the front end's
        // helpers) lacks only the value's description where Lua gives one.
        let words = message
            .strip_prefix(&format!("{label}:"))
            .and_then(|rest| rest.split_once(": "))
            .map(|(_, words)| words);
        let describable = |w: &str| {
            [
                "attempt to perform arithmetic on a ",
                "attempt to concatenate a ",
            ]
            .iter()
            .any(|p| w.starts_with(p))
                && !w.ends_with(')')
        };
        if words.is_some_and(|w| !describable(w)) {
            return message;
        }
        let handler = &self.list(kind)[index];
        let key = (Arc::clone(&handler.label), message.clone());
        let found = match self.located.get(&key) {
            Some(found) => found.clone(),
            None => {
                let found = self.diagnose(kind, handler.name.clone(), event, &message);
                if self.located.len() >= MAX_LOCATED {
                    self.located.clear();
                }
                self.located.insert(key, found.clone());
                found
            }
        };
        match found {
            Some((line, words)) => format!("{label}:{line}: {words}"),
            None => message,
        }
    }

    /// Where a diagnosis run of the handler fails, and why in Lua's words
    /// (its checked operations describe the value); `None` when it does
    /// not fail there as it did here.
    fn diagnose(
        &self,
        kind: HandlerKind,
        name: Option<String>,
        event: EventRef<'_>,
        message: &str,
    ) -> Option<(u32, String)> {
        let label = self.path.display().to_string();
        let mut vm = Vm::diagnosing(self.limits).ok()?;
        let returned = vm.run_chunk(&label, &self.source).ok()?;
        let which = match kind {
            HandlerKind::Metric | HandlerKind::Missing => returned.first(),
            HandlerKind::Notification => returned.get(1),
        };
        let function = handlers(which, &label, "")
            .ok()?
            .into_iter()
            .find(|h| h.name == name)?
            .function;
        let Err(e) = vm.call_with_event(&function, &mut EventTableCache::default(), event) else {
            return None;
        };
        let text = e.to_string();
        let words = match Vm::diagnosed_message(&text) {
            Some(words) => words.to_string(),
            None if text == message => text,
            None => return None,
        };
        Some((vm.line_reached()?, words))
    }

    /// Mistakes `rules check` warns about: fields a handler reads that its
    /// event table never has (`m.plugn`), with the nearest real one.
    pub fn typos(&self) -> &[String] {
        &self.typos
    }

    /// Why each value list gets a table of its own rather than its series'
    /// refilled one (`None`: it does not), for `rules check`.
    pub fn fresh_tables(&self) -> Option<&str> {
        self.fresh_tables.as_deref()
    }

    /// Turns the rule index, and the tables kept per series, on or off
    /// (`rules test` runs both ways).
    pub fn set_indexed(&mut self, on: bool) {
        self.indexed = on;
    }

    /// The condition under which any handler of `kind` may act on an
    /// event (`None`: every event must reach the file), for the plugin to
    /// send the file only such events.
    pub fn file_guard(&self, kind: HandlerKind) -> Option<Guard> {
        if !self.indexed {
            return None;
        }
        let mut any = Guard::never();
        for h in self.list(kind) {
            let effective = match &h.guard {
                Ok(g) => h.match_guard().and(g.clone()),
                Err(_) if !h.filter.is_empty() => h.match_guard(),
                Err(_) => return None,
            };
            any = any.or(effective);
        }
        Some(any)
    }

    /// Each handler's label with the condition it is called on (its
    /// `match` option and the index's guard), or why it is called on
    /// every event.
    pub fn index_notes(&self, kind: HandlerKind) -> Vec<(String, Result<String, String>)> {
        self.list(kind)
            .iter()
            .map(|h| {
                let matched = h.match_guard();
                let note = match (&h.guard, h.filter.is_empty()) {
                    (Ok(g), _) => {
                        let g = matched.and(g.clone());
                        if g == Guard::always() {
                            Err("no test of the event's identity decides whether it acts".into())
                        } else {
                            Ok(g.to_string())
                        }
                    }
                    (Err(_), false) => Ok(matched.to_string()),
                    (Err(why), true) => Err(why.clone()),
                };
                (h.label.to_string(), note)
            })
            .collect()
    }

    /// The file's path, as loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The golden examples the file carries.
    pub fn examples(&self) -> &[super::examples::Example] {
        &self.examples
    }

    /// Handler labels of one kind, as they appear in result notifications.
    pub fn handler_names(&self, kind: HandlerKind) -> Vec<String> {
        self.list(kind)
            .iter()
            .map(|h| h.label.to_string())
            .collect()
    }

    fn list(&self, kind: HandlerKind) -> &[Handler] {
        match kind {
            HandlerKind::Metric => &self.metric,
            HandlerKind::Notification => &self.notification,
            HandlerKind::Missing => &self.missing,
        }
    }

    /// Offers a value list to every metric handler whose filter admits it.
    pub fn on_metric(&mut self, metric: &Metric) -> Vec<HandlerOutcome> {
        self.offer(HandlerKind::Metric, metric, EventRef::Metric(metric))
    }

    /// Offers a notification to every notification handler.
    pub fn on_notification(&mut self, n: &Notification) -> Vec<HandlerOutcome> {
        self.offer(HandlerKind::Notification, n, EventRef::Notification(n))
    }

    /// Offers a silent series to every `missing` handler whose filter
    /// admits it.
    pub fn on_missing(&mut self, m: &Missing) -> Vec<HandlerOutcome> {
        if self.missing.is_empty() {
            return Vec::new();
        }
        self.offer(HandlerKind::Missing, &m.series, EventRef::Missing(m))
    }

    /// Bytes the file's Lua instance holds after a full collection, when
    /// that is over `limit` (state kept in globals or upvalues that only a
    /// fresh instance can give back).
    pub fn memory_held_over(&mut self, limit: usize) -> Option<usize> {
        if self.vm.memory_in_use() <= limit {
            return None;
        }
        self.vm.collect_garbage();
        Some(self.vm.memory_in_use()).filter(|used| *used > limit)
    }

    /// Whether the file's Lua instance failed internally (a panic in the
    /// VM) and must be loaded afresh before it runs again.
    pub fn is_broken(&self) -> bool {
        self.vm.is_broken()
    }

    /// Lines the file's code printed since the last call.
    pub fn take_printed(&mut self) -> Vec<String> {
        self.vm.take_printed()
    }

    fn offer(
        &mut self,
        kind: HandlerKind,
        event: &dyn Identity,
        argument: EventRef<'_>,
    ) -> Vec<HandlerOutcome> {
        let mut outcomes = Vec::new();
        // Built on the first admitted handler, then shared by the others.
        let mut table =
            if kind == HandlerKind::Metric && self.indexed && self.fresh_tables.is_none() {
                EventTableCache::kept_per_series()
            } else {
                EventTableCache::default()
            };
        let subject = Subject {
            identity: event.identity_fields(),
            severity: event.severity(),
        };
        for i in 0..self.list(kind).len() {
            let h = &self.list(kind)[i];
            // The filter runs in Rust: a value that cannot match never
            // reaches the VM.
            if self.indexed
                && let Ok(g) = &h.guard
                && !g.admits(&subject)
            {
                continue;
            }
            let admitted = h.filter.iter().all(|(field, m)| match m {
                FieldMatch::Exact(want) => event.field(field) == want,
                FieldMatch::Pattern(p) => pattern_matches(event.field(field), p).unwrap_or(false),
            });
            if !admitted {
                continue;
            }
            let (handler, function, policy) = (Arc::clone(&h.label), h.function.clone(), h.policy);
            let result = match self.vm.call_with_event(&function, &mut table, argument) {
                Ok(r) => decision(&r).map_err(|e| (e, None)),
                Err(e) if e.limit().is_none() && matches!(e, CallError::Runtime(_)) => {
                    Err((self.locate(kind, i, argument, e.to_string()), None))
                }
                Err(e) => Err((e.to_string(), e.limit())),
            };
            outcomes.push(HandlerOutcome {
                handler,
                policy,
                result,
            });
        }
        outcomes
    }
}

/// Reads one of the chunk's return values as handlers.
fn handlers(value: Option<&LuaValue>, file: &str, which: &str) -> Result<Vec<Handler>, String> {
    match value {
        None | Some(LuaValue::Nil) => Ok(Vec::new()),
        Some(LuaValue::Function(f)) => Ok(vec![Handler {
            name: None,
            label: Arc::from(""),
            function: f.clone(),
            guard: Err(String::new()),
            filter: Vec::new(),
            policy: DebouncePolicy::default(),
            on_missing: false,
        }]),
        Some(LuaValue::Table(_, fields)) => fields
            .iter()
            .map(|(name, value)| {
                handler(name, value)
                    .map_err(|e| format!("{file}: the {which} return value has `{name}` = {e}"))
            })
            .collect(),
        Some(other) => Err(format!(
            "{file}: the {which} return value must be a function, a table of functions or nil, not a {}",
            other.type_name()
        )),
    }
}

/// A named handler: a function, or a table with `handler` and options.
fn handler(name: &str, value: &LuaValue) -> Result<Handler, String> {
    let named = |function: LuaFunction| Handler {
        name: Some(name.to_string()),
        label: Arc::from(""),
        function,
        guard: Err(String::new()),
        filter: Vec::new(),
        policy: DebouncePolicy::default(),
        on_missing: false,
    };
    let fields = match value {
        LuaValue::Function(f) => return Ok(named(f.clone())),
        LuaValue::Table(_, fields) => fields,
        other => {
            return Err(format!(
                "a {}, not a function or a table with `handler`",
                other.type_name()
            ));
        }
    };
    let Some(LuaValue::Function(f)) = fields.get("handler") else {
        return Err("a table without a `handler` function".into());
    };
    let mut h = named(f.clone());
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("handler", _) => {}
            ("on", LuaValue::Str(on)) if on == "missing" || on == "value" => {
                h.on_missing = on == "missing"
            }
            ("on", _) => {
                return Err(
                    "a table whose `on` is neither \"value\" (the default) nor \"missing\"".into(),
                );
            }
            ("match", LuaValue::Table(_, conditions)) => h.filter = filter(conditions)?,
            ("hits", LuaValue::Int(n)) if *n >= 1 => h.policy.hits = *n as u32,
            ("repeat_interval", LuaValue::Int(_) | LuaValue::Num(_)) => {
                h.policy.repeat_interval = Some(number(value))
            }
            ("cooldown", LuaValue::Int(_) | LuaValue::Num(_))
                if number(value) >= 0.0 && number(value).is_finite() =>
            {
                h.policy.cooldown = Some(number(value))
            }
            ("give_up", LuaValue::Table(_, g)) => match (g.get("after"), g.get("within")) {
                (
                    Some(LuaValue::Int(after)),
                    Some(within @ (LuaValue::Int(_) | LuaValue::Num(_))),
                ) if *after >= 1 => {
                    h.policy.give_up = Some((*after as u32, number(within)));
                }
                _ => {
                    return Err(
                        "a table whose `give_up` is not {after = N, within = SECONDS}".into(),
                    );
                }
            },
            (other, v) => {
                return Err(format!(
                    "a table with an invalid option `{other}` (a {}); options: handler, on, match, hits, repeat_interval, give_up, cooldown",
                    v.type_name()
                ));
            }
        }
    }
    if h.policy.hits == 0 {
        h.policy.hits = 1;
    }
    Ok(h)
}

fn number(v: &LuaValue) -> f64 {
    match v {
        LuaValue::Int(i) => *i as f64,
        LuaValue::Num(n) => *n,
        _ => 0.0,
    }
}

fn filter(conditions: &BTreeMap<String, LuaValue>) -> Result<Vec<(String, FieldMatch)>, String> {
    conditions
        .iter()
        .map(|(field, want)| {
            if !FILTER_FIELDS.contains(&field.as_str()) {
                return Err(format!(
                    "a `match` on unknown field `{field}` (fields: {})",
                    FILTER_FIELDS.join(", ")
                ));
            }
            let m = match want {
                LuaValue::Str(s) => FieldMatch::Exact(s.clone()),
                LuaValue::Table(_, t) => match t.get("pattern") {
                    Some(LuaValue::Str(p)) => {
                        pattern_matches("", p).map_err(|e| {
                            format!("a `match` with a bad pattern for `{field}`: {e}")
                        })?;
                        FieldMatch::Pattern(p.clone())
                    }
                    _ => {
                        return Err(format!(
                            "a `match` whose `{field}` is not a string or {{pattern = \"...\"}}"
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "a `match` whose `{field}` is a {}",
                        other.type_name()
                    ));
                }
            };
            Ok((field.clone(), m))
        })
        .collect()
}

/// An optional string field of a decision: absent or nil is none, and
/// `false` too where `false_is_none` (`inhibited = cond and "reason"`).
fn optional_text(
    fields: &BTreeMap<String, LuaValue>,
    name: &str,
    false_is_none: bool,
) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(LuaValue::Nil) => Ok(None),
        Some(LuaValue::Bool(false)) if false_is_none => Ok(None),
        Some(LuaValue::Str(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!(
            "returned a `{name}` that is a {}, not a string",
            other.type_name()
        )),
    }
}

/// What a handler's return values mean: nil/false/nothing is "no action",
/// `{service = "...", command = "..."}` a request.
fn decision(returned: &[LuaValue]) -> Result<Option<Decision>, String> {
    match returned.first() {
        None | Some(LuaValue::Nil) | Some(LuaValue::Bool(false)) => Ok(None),
        Some(LuaValue::Table(_, fields)) => {
            let notify = optional_text(fields, "notify", false)?;
            let command = match (fields.get("service"), fields.get("command"), &notify) {
                (Some(LuaValue::Str(service)), Some(LuaValue::Str(command)), None) => {
                    CommandRef::new(service, command)
                }
                (None, None, Some(_)) => CommandRef::new("", ""),
                (_, _, Some(_)) => {
                    return Err(
                        "returned a table with both `notify` and `service`/`command`: a decision is a notification or a command".into(),
                    );
                }
                _ => {
                    return Err(
                        "returned a table without string fields `service` and `command` (or `notify`)".into(),
                    );
                }
            };
            let host = optional_text(fields, "host", false)?;
            let inhibited = optional_text(fields, "inhibited", true)?;
            Ok(Some(Decision {
                command,
                host,
                inhibited,
                notify,
            }))
        }
        Some(other) => Err(format!(
            "returned a {}; expected nil or {{service = \"...\", command = \"...\"}}",
            other.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(fields: &[(&str, LuaValue)]) -> Vec<LuaValue> {
        let map: BTreeMap<String, LuaValue> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mut vm = Vm::new(VmLimits::default()).unwrap();
        // Any table handle will do: `decision` reads the fields.
        let LuaValue::Table(handle, _) = vm.run_chunk("t", b"return {}").unwrap().remove(0) else {
            panic!()
        };
        vec![LuaValue::Table(handle, map)]
    }

    fn text(s: &str) -> LuaValue {
        LuaValue::Str(s.into())
    }

    /// A decision is a command or a notification, never both; `inhibited`
    /// and `notify` are strings.
    #[test]
    fn decisions_are_a_command_or_a_notification() {
        let d = decision(&table(&[
            ("service", text("app")),
            ("command", text("restart")),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (d.command.to_string(), d.notify),
            ("app/restart".into(), None)
        );
        let d = decision(&table(&[("notify", text("pool loaded"))]))
            .unwrap()
            .unwrap();
        assert_eq!(d.notify.as_deref(), Some("pool loaded"));
        let d = decision(&table(&[
            ("service", text("app")),
            ("command", text("restart")),
            ("inhibited", text("database down")),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(d.inhibited.as_deref(), Some("database down"));
        let d = decision(&table(&[
            ("service", text("app")),
            ("command", text("restart")),
            ("inhibited", LuaValue::Bool(false)),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(d.inhibited, None);
        for bad in [
            table(&[
                ("notify", text("x")),
                ("service", text("a")),
                ("command", text("b")),
            ]),
            table(&[("notify", LuaValue::Int(1))]),
            table(&[
                ("service", text("a")),
                ("command", text("b")),
                ("inhibited", LuaValue::Int(1)),
            ]),
            table(&[("service", text("a"))]),
        ] {
            assert!(decision(&bad).is_err(), "{bad:?}");
        }
    }
}
