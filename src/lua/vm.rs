//! One Lua instance: load a chunk, call its functions on a fuel budget, and
//! bring results out as owned values.

use super::env;
use super::front::{rewrite_library, rewrite_source};
use piccolo::{
    Closure, Context, Executor, ExecutorMode, Fuel, Function, Lua, StashedExecutor,
    StashedFunction, StashedTable, Value, Variadic,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Library functions written in Lua.
const PRELUDE: &str = include_str!("prelude.lua");

/// Fuel per slice between garbage collections (piccolo collects between
/// slices, never during one).
const SLICE: i32 = 4096;

/// Per-call bounds. Memory and time are checked between fuel slices; the
/// library's own functions refuse single allocations that could jump far
/// past the limit within one slice (see `string::MAX_BUILT_STRING`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VmLimits {
    /// VM fuel one call may burn (a simple handler uses a few dozen).
    pub fuel: u64,
    /// Bytes the whole Lua instance may hold while a call runs.
    pub memory: usize,
    /// Wall-clock time one call may take.
    pub deadline: Duration,
}

impl VmLimits {
    /// Default `RuleFuel`.
    pub const DEFAULT_FUEL: u64 = 10_000_000;
    /// Default `RuleMemoryLimit`, MiB.
    pub const DEFAULT_MEMORY_MIB: u64 = 64;
    /// Default `RuleTimeout`, milliseconds.
    pub const DEFAULT_TIMEOUT_MS: u64 = 1000;

    /// From the units operators write (settings, command-line flags): fuel,
    /// MiB and milliseconds.
    pub fn from_units(fuel: u64, memory_mib: u64, timeout_ms: u64) -> VmLimits {
        VmLimits {
            fuel,
            memory: usize::try_from(memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
            deadline: Duration::from_millis(timeout_ms),
        }
    }
}

impl Default for VmLimits {
    fn default() -> Self {
        VmLimits::from_units(
            VmLimits::DEFAULT_FUEL,
            VmLimits::DEFAULT_MEMORY_MIB,
            VmLimits::DEFAULT_TIMEOUT_MS,
        )
    }
}

/// Why a load or a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("{}syntax error: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Syntax { line: Option<u32>, message: String },
    #[error("{0}")]
    Runtime(String),
    #[error("CPU limit: stopped after {0} units of fuel")]
    CpuLimit(u64),
    #[error("memory limit: the Lua instance grew to {used} bytes (limit {limit})")]
    MemoryLimit { used: usize, limit: usize },
    #[error("time limit: stopped after {0:.1?}")]
    TimeLimit(Duration),
    /// The VM itself failed (a panic inside piccolo or our library): the
    /// instance is unusable from then on and must be built afresh.
    #[error("internal error of the Lua VM: {0}")]
    Internal(String),
}

/// A Lua function of a rule file, kept across calls (a handler).
pub type LuaFunction = StashedFunction;

/// The event a handler is called with; its table is built in the VM.
#[derive(Clone, Copy, Debug)]
pub enum EventRef<'a> {
    Metric(&'a crate::events::Metric),
    Notification(&'a crate::events::Notification),
    Missing(&'a crate::events::Missing),
}

/// One event's table, built for the first handler that needs it and
/// shared by the file's other handlers.
#[derive(Default)]
pub struct EventTableCache {
    table: Option<StashedTable>,
    per_series: bool,
}

impl EventTableCache {
    /// For a file whose handlers neither keep nor change their table (the
    /// caller's analysis vouches for it): a value list's table is the
    /// series' table of the VM, refilled with this value list's time and
    /// values, instead of a new one.
    pub fn kept_per_series() -> EventTableCache {
        EventTableCache {
            table: None,
            per_series: true,
        }
    }
}

/// A value brought out of the VM. Tables come out one level deep with
/// their string and integer keys; functions and tables also keep a handle
/// for calling or reading them later.
#[derive(Debug, Clone)]
pub enum LuaValue {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Function(StashedFunction),
    Table(StashedTable, BTreeMap<String, LuaValue>),
    /// Something else (thread, userdata): its type name.
    Other(&'static str),
}

impl LuaValue {
    /// Lua's `type()` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            LuaValue::Nil => "nil",
            LuaValue::Bool(_) => "boolean",
            LuaValue::Int(_) | LuaValue::Num(_) => "number",
            LuaValue::Str(_) => "string",
            LuaValue::Function(_) => "function",
            LuaValue::Table(..) => "table",
            LuaValue::Other(t) => t,
        }
    }
}

fn owned<'gc>(ctx: Context<'gc>, value: Value<'gc>, depth: u8) -> LuaValue {
    match value {
        Value::Nil => LuaValue::Nil,
        Value::Boolean(b) => LuaValue::Bool(b),
        Value::Integer(i) => LuaValue::Int(i),
        Value::Number(n) => LuaValue::Num(n),
        Value::String(s) => LuaValue::Str(s.to_str_lossy().into_owned()),
        Value::Function(f) => LuaValue::Function(ctx.stash(f)),
        Value::Table(t) => {
            let mut fields = BTreeMap::new();
            if depth > 0 {
                for (k, v) in t.iter() {
                    let key = match k {
                        Value::String(s) => s.to_str_lossy().into_owned(),
                        Value::Integer(i) => i.to_string(),
                        _ => continue,
                    };
                    fields.insert(key, owned(ctx, v, depth - 1));
                }
            }
            LuaValue::Table(ctx.stash(t), fields)
        }
        Value::Thread(_) => LuaValue::Other("thread"),
        Value::UserData(_) => LuaValue::Other("userdata"),
    }
}

/// The checked operations of a diagnosis instance.
const DIAGNOSE: &str = include_str!("diagnose.lua");

/// A Lua instance with the rule environment.
pub struct Vm {
    lua: Lua,
    executor: StashedExecutor,
    limits: VmLimits,
    /// Value-list tables kept per series (see [`EventTableCache::kept_per_series`]).
    series: super::event_table::SeriesTables,
    /// Set once a panic went through the instance: its heap may be in any
    /// state, so every later call fails with this message.
    broken: Option<String>,
    /// Chunks get line markers (a diagnosis instance, see
    /// [`Vm::diagnosing`]).
    line_markers: bool,
}

impl Vm {
    pub fn new(limits: VmLimits) -> Result<Vm, CallError> {
        let mut lua = Lua::empty();
        // A rule instance's heap is small (tens of KiB) but every event
        // allocates its tables: with the default pacing the collector would
        // restart every 4 KiB. Let 256 KiB of garbage build up between
        // cycles (far below any memory limit) and let the heap grow by as
        // much as it holds before the next cycle.
        lua.gc_metrics().set_pacing(
            gc_arena::metrics::Pacing::default()
                .with_pause_factor(1.0)
                .with_min_sleep(256 * 1024),
        );
        lua.try_enter(env::install)
            .map_err(|e| CallError::Runtime(e.to_string()))?;
        let executor = lua.enter(|ctx| ctx.stash(Executor::new(ctx)));
        let mut vm = Vm {
            lua,
            executor,
            limits,
            series: super::event_table::SeriesTables::within(limits.memory),
            broken: None,
            line_markers: false,
        };
        vm.run_prelude()?;
        Ok(vm)
    }

    /// Runs `f` on the instance, turning a panic into
    /// [`CallError::Internal`] and marking the instance broken: no panic of
    /// the VM ends the process or reaches the caller as one.
    fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Result<R, CallError> {
        if let Some(message) = &self.broken {
            return Err(CallError::Internal(message.clone()));
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(r) => Ok(r),
            Err(payload) => {
                let message = crate::panics::message(&*payload);
                self.broken = Some(message.clone());
                Err(CallError::Internal(message))
            }
        }
    }

    /// Whether a panic went through this instance (see [`CallError::Internal`]).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// The part of the library written in Lua (`prelude.lua`).
    fn run_prelude(&mut self) -> Result<(), CallError> {
        self.run(
            |ctx, executor| {
                let prelude = rewrite_library(PRELUDE, "prelude")
                    .map_err(|e| super::args::error(ctx, format!("{e:?}")))?;
                let closure = Closure::load(ctx, Some("prelude"), prelude.as_bytes())?;
                let helper = super::string::gsub_matches_callback(ctx);
                executor.restart(ctx, closure.into(), helper);
                Ok(())
            },
            |e| CallError::Runtime(format!("prelude: {e}")),
        )
        .map(|_| ())
    }

    /// An instance whose chunks record the line of every statement they
    /// reach, for [`Vm::line_reached`]: slower, only ever used to tell
    /// where a handler that failed in a normal instance fails.
    pub fn diagnosing(limits: VmLimits) -> Result<Vm, CallError> {
        let mut vm = Vm::new(limits)?;
        // Before the markers are on: the helpers' own operations are
        // the plain ones.
        vm.run_chunk("diagnose", DIAGNOSE.as_bytes())?;
        vm.line_markers = true;
        Ok(vm)
    }

    /// A message raised by the diagnosis helpers (Lua's words, with the
    /// value described), without its mark; `None` for any other.
    pub fn diagnosed_message(message: &str) -> Option<&str> {
        message.split_once('\u{1}').map(|(_, words)| words)
    }

    /// The line of the last statement a marked chunk reached.
    pub fn line_reached(&mut self) -> Option<u32> {
        let marker = super::front::LINE_MARKER;
        self.lua.enter(|ctx| match ctx.globals().get(ctx, marker) {
            Value::Integer(line) => u32::try_from(line).ok(),
            _ => None,
        })
    }

    /// Runs a chunk and returns what it returned.
    pub fn run_chunk(&mut self, name: &str, source: &[u8]) -> Result<Vec<LuaValue>, CallError> {
        self.guarded(|vm| vm.run_chunk_unguarded(name, source))?
    }

    fn run_chunk_unguarded(
        &mut self,
        name: &str,
        source: &[u8],
    ) -> Result<Vec<LuaValue>, CallError> {
        // Lua takes any bytes in strings and comments.
        let text = super::front::utf8_text(source).map_err(|e| CallError::Syntax {
            line: e.line,
            message: e.message,
        })?;
        let mut code = rewrite_source(&text, name).map_err(|e| CallError::Syntax {
            line: e.line,
            message: e.message,
        })?;
        if self.line_markers {
            code = super::front::add_line_markers(&code)
                .and_then(|marked| super::front::add_checks(&marked))
                .map_err(|e| CallError::Syntax {
                    line: e.line,
                    message: e.message,
                })?;
        }
        self.run(
            |ctx, executor| {
                let closure = Closure::load(ctx, Some(name), code.as_bytes())?;
                executor.restart(ctx, closure.into(), ());
                Ok(())
            },
            |e| syntax_error(&e),
        )
    }

    /// Calls `function` with the arguments `args` builds inside the VM.
    pub fn call(
        &mut self,
        function: &StashedFunction,
        args: impl for<'gc> FnOnce(Context<'gc>) -> Result<Vec<Value<'gc>>, piccolo::Error<'gc>>,
    ) -> Result<Vec<LuaValue>, CallError> {
        self.guarded(|vm| vm.call_unguarded(function, args))?
    }

    fn call_unguarded(
        &mut self,
        function: &StashedFunction,
        args: impl for<'gc> FnOnce(Context<'gc>) -> Result<Vec<Value<'gc>>, piccolo::Error<'gc>>,
    ) -> Result<Vec<LuaValue>, CallError> {
        self.run(
            |ctx, executor| {
                let f: Function = ctx.fetch(function);
                let args = args(ctx)?;
                executor.restart(ctx, f, Variadic(args));
                Ok(())
            },
            CallError::Runtime,
        )
    }

    /// Calls `function` with the table of `event`, built on the first call
    /// and kept in `cache` for the next ones (one event's table shared by
    /// all the handlers of a file, as the old project did).
    pub fn call_with_event(
        &mut self,
        function: &LuaFunction,
        cache: &mut EventTableCache,
        event: EventRef<'_>,
    ) -> Result<Vec<LuaValue>, CallError> {
        self.guarded(|vm| vm.call_with_event_unguarded(function, cache, event))?
    }

    fn call_with_event_unguarded(
        &mut self,
        function: &LuaFunction,
        cache: &mut EventTableCache,
        event: EventRef<'_>,
    ) -> Result<Vec<LuaValue>, CallError> {
        // Out of `self` while `run` borrows it.
        let mut series = self.series.take();
        let result = self.run(
            |ctx, executor| {
                let table = match &cache.table {
                    Some(stashed) => ctx.fetch(stashed),
                    None => {
                        let (table, stashed) = match event {
                            EventRef::Metric(m) if cache.per_series => series.table(ctx, m)?,
                            EventRef::Metric(m) => {
                                let t = super::event_table::metric_table(ctx, m)?;
                                (t, ctx.stash(t))
                            }
                            EventRef::Notification(n) => {
                                let t = super::event_table::notification_table(ctx, n)?;
                                (t, ctx.stash(t))
                            }
                            EventRef::Missing(m) => {
                                let t = super::event_table::missing_table(ctx, m)?;
                                (t, ctx.stash(t))
                            }
                        };
                        cache.table = Some(stashed);
                        table
                    }
                };
                let f: Function = ctx.fetch(function);
                executor.restart(ctx, f, Value::Table(table));
                Ok(())
            },
            |e| CallError::Runtime(library_wording(&e)),
        );
        self.series = series;
        result
    }

    /// Lines `print` produced since the last call.
    pub fn take_printed(&mut self) -> Vec<String> {
        env::take_printed()
    }

    /// Bytes the Lua instance holds now (piccolo's own accounting).
    pub fn memory_in_use(&self) -> usize {
        self.lua.total_memory()
    }

    /// Runs a full garbage collection (after a limit stopped a call),
    /// also giving back the value-list tables kept per series.
    pub fn collect_garbage(&mut self) {
        self.series.clear();
        let _ = self.guarded(|vm| vm.lua.gc_collect());
    }

    /// Abandons the running call: a stopped executor keeps its stack and
    /// everything it references until it is dropped, so take a new one.
    fn abandon_call(&mut self) {
        self.executor = self.lua.enter(|ctx| {
            ctx.fetch(&self.executor).stop(&ctx);
            ctx.stash(Executor::new(ctx))
        });
        self.lua.gc_collect();
    }

    /// Starts a run with `start` (which loads or picks the function and
    /// restarts the executor with it) and runs it to its end or to a limit.
    /// Most runs end within their first fuel slice: starting, running and
    /// taking the result then happen in one entry into the VM.
    fn run<S>(
        &mut self,
        start: S,
        start_error: impl FnOnce(String) -> CallError,
    ) -> Result<Vec<LuaValue>, CallError>
    where
        S: for<'gc> FnOnce(Context<'gc>, Executor<'gc>) -> Result<(), piccolo::Error<'gc>>,
    {
        let _run = RunUnderWay::begin();
        let mut start = Some((start, start_error));
        let mut burned: u64 = 0;
        // The clock is read only for runs that take more than one slice
        // (the first slice's few microseconds are not counted against the
        // deadline).
        let mut started: Option<Instant> = None;
        loop {
            let mut fuel = Fuel::with(SLICE);
            let outcome = self.lua.enter(|ctx| {
                let executor = ctx.fetch(&self.executor);
                if let Some((start, start_error)) = start.take() {
                    super::coroutine::reset(ctx);
                    start(ctx, executor).map_err(|e| start_error(message_of(&e)))?;
                }
                Ok(executor
                    .step(ctx, &mut fuel)
                    .then(|| result_of(ctx, executor)))
            })?;
            burned += (SLICE - fuel.remaining()).max(0) as u64;
            if let Some(result) = outcome {
                return result;
            }
            let used = self.lua.total_memory();
            let elapsed = started.get_or_insert_with(Instant::now).elapsed();
            let error = if burned > self.limits.fuel {
                CallError::CpuLimit(burned)
            } else if used > self.limits.memory {
                CallError::MemoryLimit {
                    used,
                    limit: self.limits.memory,
                }
            } else if elapsed > self.limits.deadline {
                CallError::TimeLimit(elapsed)
            } else {
                continue;
            };
            self.abandon_call();
            return Err(error);
        }
    }
}

/// What a finished run returned, or its error.
fn result_of<'gc>(ctx: Context<'gc>, executor: Executor<'gc>) -> Result<Vec<LuaValue>, CallError> {
    if executor.mode() != ExecutorMode::Result {
        return Err(CallError::Runtime(format!(
            "the VM stopped in mode {:?}",
            executor.mode()
        )));
    }
    match executor.take_result::<Variadic<Vec<Value>>>(ctx) {
        Ok(Ok(Variadic(values))) => Ok(values.into_iter().map(|v| owned(ctx, v, 4)).collect()),
        Ok(Err(e)) => Err(CallError::Runtime(library_wording(&message_of(&e)))),
        Err(e) => Err(CallError::Runtime(e.to_string())),
    }
}

/// Counts VM runs in this process: odd while one is under way. A watchdog
/// thread reads it (see [`call_in_progress`]) without costing the call a
/// clock read.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Marks a VM run under way in [`CALLS`] until dropped, also when the run
/// panics (the counter must not stay odd after the panic is caught, or the
/// watchdog would end a process that carries on with other work).
struct RunUnderWay;

impl RunUnderWay {
    fn begin() -> RunUnderWay {
        CALLS.fetch_add(1, Ordering::Relaxed);
        RunUnderWay
    }
}

impl Drop for RunUnderWay {
    fn drop(&mut self) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// An identifier of the VM run under way in this process, `None` when none
/// is: the same identifier seen for longer than the time limit means a run
/// is stuck where the VM cannot check its limits (inside one builtin).
pub fn call_in_progress() -> Option<u64> {
    let n = CALLS.load(Ordering::Relaxed);
    (n % 2 == 1).then_some(n)
}

/// Which bound stopped a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Cpu,
    Memory,
    Time,
}

impl CallError {
    /// The bound this error is about, if it is a limit rather than a fault
    /// of the code (limits are counted separately in the self-monitoring).
    pub fn limit(&self) -> Option<Limit> {
        match self {
            CallError::CpuLimit(_) => Some(Limit::Cpu),
            CallError::MemoryLimit { .. } => Some(Limit::Memory),
            CallError::TimeLimit(_) => Some(Limit::Time),
            _ => None,
        }
    }

    /// The message in the `file:line: message` form rule authors know.
    pub fn located(&self, file: &str) -> String {
        match self {
            CallError::Syntax {
                line: Some(line),
                message,
            } => format!("{file}:{line}: {message}"),
            CallError::Runtime(message) if message.starts_with(&format!("{file}:")) => {
                message.clone()
            }
            other => format!("{file}: {other}"),
        }
    }
}

/// A finished run's error as Lua's message: a value Lua code raised as
/// Lua prints it, the VM's own errors (piccolo raises them as typed Rust
/// values) in Lua 5.4's words.
fn message_of(error: &piccolo::Error<'_>) -> String {
    match error {
        piccolo::Error::Lua(value) => value.to_string(),
        piccolo::Error::Runtime(e) => runtime_wording(e),
    }
}

/// The VM's own errors in Lua 5.4's words (as the prelude's `pcall` gives
/// them): piccolo's `TypeError { expected: "table", found: "nil" }` is
/// Lua's `attempt to index a nil value`.
pub(super) fn runtime_wording(error: &piccolo::RuntimeError) -> String {
    let type_error = error.downcast::<piccolo::TypeError>().copied().or_else(|| {
        match error.downcast::<piccolo::VMError>() {
            Some(piccolo::VMError::BadType(t)) => Some(*t),
            _ => None,
        }
    });
    if let Some(piccolo::TypeError { expected, found }) = type_error {
        return match expected {
            "table" => format!("attempt to index a {found} value"),
            "string or table" => format!("attempt to get length of a {found} value"),
            "function" => format!("attempt to call a {found} value"),
            _ => error.to_string(),
        };
    }
    if let Some(key) = error.downcast::<piccolo::InvalidTableKey>() {
        return match key {
            piccolo::InvalidTableKey::IsNil => "table index is nil".into(),
            piccolo::InvalidTableKey::IsNaN => "table index is NaN".into(),
        };
    }
    if let Some(op) = error.downcast::<piccolo::thread::BinaryOperatorError>() {
        use piccolo::thread::BinaryOperatorError as Op;
        // The VM's own arithmetic runs only where both operands are
        // numbers whatever happens (`front/numeric.rs`) but for an event's
        // `values[i]` beyond the last value: nil.
        if matches!(
            op,
            Op::Add
                | Op::Subtract
                | Op::Multiply
                | Op::FloatDivide
                | Op::FloorDivide
                | Op::Modulo
                | Op::Exponentiate
                | Op::UnaryNegate
        ) {
            return "attempt to perform arithmetic on a nil value".into();
        }
    }
    error.to_string()
}

/// A Lua-level error string of piccolo's library in Lua's words.
pub(super) fn library_wording(text: &str) -> String {
    match text {
        // piccolo's `next` of a key the table does not hold.
        "invalid table key" => "invalid key to 'next'".into(),
        _ => text.to_string(),
    }
}

/// piccolo says "runtime error: parse error at line 2: unexpected ...".
fn syntax_error(raw: &str) -> CallError {
    let text = raw.strip_prefix("runtime error: ").unwrap_or(raw);
    let parsed = text
        .strip_prefix("parse error at line ")
        .and_then(|rest| rest.split_once(": "))
        .and_then(|(line, message)| Some((line.parse().ok()?, message)));
    match parsed {
        Some((line, message)) => CallError::Syntax {
            line: Some(line),
            message: message.to_string(),
        },
        None => CallError::Syntax {
            line: None,
            message: text.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> Vm {
        Vm::new(VmLimits::default()).unwrap()
    }

    #[test]
    fn runs_chunks_and_brings_values_out() {
        let mut vm = vm();
        let out = vm
            .run_chunk("t", b"return 1, 2.5, 'x', {a = 1, [1] = true}, nil")
            .unwrap();
        assert!(matches!(out[0], LuaValue::Int(1)));
        assert!(matches!(out[1], LuaValue::Num(n) if n == 2.5));
        assert!(matches!(&out[2], LuaValue::Str(s) if s == "x"));
        let LuaValue::Table(_, fields) = &out[3] else {
            panic!("{:?}", out[3])
        };
        assert!(
            matches!(fields["a"], LuaValue::Int(1)) && matches!(fields["1"], LuaValue::Bool(true))
        );
    }

    #[test]
    fn calls_keep_state_in_upvalues() {
        let mut vm = vm();
        let out = vm
            .run_chunk(
                "t",
                b"local n = 0 return function(x) n = n + x return n end",
            )
            .unwrap();
        let LuaValue::Function(f) = &out[0] else {
            panic!()
        };
        for expected in [5, 10] {
            let r = vm.call(f, |_| Ok(vec![Value::Integer(5)])).unwrap();
            assert!(matches!(r[0], LuaValue::Int(n) if n == expected));
        }
    }

    #[test]
    fn runaway_loops_hit_the_cpu_limit_and_the_vm_stays_usable() {
        let mut vm = Vm::new(VmLimits {
            fuel: 100_000,
            ..VmLimits::default()
        })
        .unwrap();
        let out = vm
            .run_chunk(
                "t",
                b"return function() while true do end end, function() return 7 end",
            )
            .unwrap();
        let (LuaValue::Function(spin), LuaValue::Function(seven)) = (&out[0], &out[1]) else {
            panic!()
        };
        assert!(matches!(
            vm.call(spin, |_| Ok(vec![])),
            Err(CallError::CpuLimit(_))
        ));
        assert!(matches!(
            vm.call(seven, |_| Ok(vec![])).unwrap()[0],
            LuaValue::Int(7)
        ));
    }

    #[test]
    fn a_panic_in_the_vm_is_an_error_and_ends_the_run() {
        let mut vm = vm();
        // piccolo 0.3.3 panics compiling a goto out of a loop.
        let e = vm
            .run_chunk("t", b"for i = 1, 2 do goto e end ::e:: print('ok')")
            .unwrap_err();
        assert!(matches!(e, CallError::Internal(_)), "{e:?}");
        assert!(vm.is_broken());
        assert!(matches!(
            vm.run_chunk("t", b"return 1"),
            Err(CallError::Internal(_))
        ));
    }

    #[test]
    fn errors_and_syntax_errors_are_reported() {
        let mut vm = vm();
        let e = vm.run_chunk("t.lua", b"local x = 1\nreturn +").unwrap_err();
        assert!(e.located("t.lua").starts_with("t.lua:2: "), "{e:?}");
        let e = vm.run_chunk("t", b"error('boom')").unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn the_closed_world_has_no_files_processes_or_loaders() {
        let mut vm = vm();
        let out = vm
            .run_chunk("t", b"return io, os.execute, os.remove, os.getenv, require, dofile, loadfile, load, debug, package")
            .unwrap();
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|v| matches!(v, LuaValue::Nil)), "{out:?}");
        let out = vm.run_chunk("t", b"print('a', 1, 2.0, nil, true) return NOTIF_FAILURE, NOTIF_WARNING, NOTIF_OKAY, tonumber('0x10'), tonumber('2.5'), tonumber('x')").unwrap();
        assert_eq!(vm.take_printed(), vec!["a\t1\t2.0\tnil\ttrue"]);
        let ints: Vec<i64> = out[..4]
            .iter()
            .map(|v| if let LuaValue::Int(i) = v { *i } else { -1 })
            .collect();
        assert_eq!(ints, vec![1, 2, 4, 16]);
        assert!(matches!(out[4], LuaValue::Num(n) if n == 2.5) && matches!(out[5], LuaValue::Nil));
    }

    /// `f` called with `m`'s table kept per series, its answers as text.
    fn kept_call(vm: &mut Vm, f: &LuaFunction, m: &crate::events::Metric) -> String {
        let mut cache = EventTableCache::kept_per_series();
        let r = vm
            .call_with_event(f, &mut cache, EventRef::Metric(m))
            .unwrap();
        format!("{r:?}")
    }

    /// The function the chunk `source` returns.
    fn function_of(vm: &mut Vm, source: &[u8]) -> LuaFunction {
        match vm.run_chunk("t", source).unwrap().first() {
            Some(LuaValue::Function(f)) => f.clone(),
            other => panic!("not a function: {other:?}"),
        }
    }

    fn gauge(plugin_instance: &str, values: &[f64], dsnames: &[&str]) -> crate::events::Metric {
        use crate::events::{DsType, Value as V};
        crate::events::Metric {
            host: "h".into(),
            plugin: "p".into(),
            plugin_instance: plugin_instance.into(),
            type_: "t".into(),
            type_instance: String::new(),
            time: values[0],
            interval: 10.0,
            values: values.iter().map(|v| V::Gauge(*v)).collect(),
            dsnames: dsnames.iter().map(|s| s.to_string()).collect(),
            dstypes: vec![DsType::Gauge; values.len()],
        }
    }

    #[test]
    fn a_series_table_is_refilled_with_each_value_list_and_rebuilt_when_its_data_sources_change() {
        let mut vm = vm();
        let f = &function_of(
            &mut vm,
            b"return function(m) return m.time, #m.values, m.values[1], m.values[2], m.dsnames[1], m.plugin_instance end",
        );
        let mut call = |m: &crate::events::Metric| kept_call(&mut vm, f, m);
        let first = call(&gauge("a", &[1.0, 2.0], &["rx", "tx"]));
        let other_series = call(&gauge("b", &[7.0, 8.0], &["rx", "tx"]));
        let again = call(&gauge("a", &[3.0, 4.0], &["rx", "tx"]));
        let fewer = call(&gauge("a", &[5.0], &["value"]));
        assert!(
            first.contains("Num(1.0), Int(2), Num(1.0), Num(2.0), Str(\"tx\"), Str(\"a\")"),
            "{first}"
        );
        assert!(
            other_series.contains("Num(7.0), Int(2), Num(7.0), Num(8.0), Str(\"tx\"), Str(\"b\")"),
            "{other_series}"
        );
        assert!(
            again.contains("Num(3.0), Int(2), Num(3.0), Num(4.0), Str(\"tx\"), Str(\"a\")"),
            "{again}"
        );
        assert!(
            fewer.contains("Num(5.0), Int(1), Num(5.0), Nil, Nil, Str(\"a\")"),
            "{fewer}"
        );
    }

    /// A VM with a handler reading its event's first value, whose tables
    /// may be kept per series, and a call of it for `m`.
    fn first_value_handler() -> (Vm, impl Fn(&mut Vm, &crate::events::Metric)) {
        let mut vm = vm();
        let out = vm
            .run_chunk("t", b"return function(m) return m.values[1] end")
            .unwrap();
        let LuaValue::Function(f) = out[0].clone() else {
            panic!("not a function: {:?}", out[0])
        };
        let call = move |vm: &mut Vm, m: &crate::events::Metric| {
            let mut cache = EventTableCache::kept_per_series();
            vm.call_with_event(&f, &mut cache, EventRef::Metric(m))
                .unwrap();
        };
        (vm, call)
    }

    #[test]
    fn a_fleet_larger_than_the_kept_tables_keeps_the_first_ones_warm() {
        let (mut vm, call) = first_value_handler();
        let capacity = vm.series.capacity();
        let series: Vec<_> = (0..capacity * 2)
            .map(|i| gauge(&format!("host-{i}"), &[1.0], &["value"]))
            .collect();
        for _ in 0..2 {
            for m in &series {
                call(&mut vm, m);
            }
        }
        // Those that came first stay (none is idle yet); the others get
        // tables for their call only: clearing all when full would miss
        // every one of a fleet this large.
        assert_eq!(vm.series.kept(), capacity);
        assert!(vm.series.keeps(&series[0]));
        assert!(vm.series.keeps(&series[capacity - 1]));
        assert!(!vm.series.keeps(&series[capacity]));
    }

    #[test]
    fn series_past_the_kept_ones_read_their_own_fields_from_the_one_spare_table() {
        let mut vm = vm();
        let f = &function_of(
            &mut vm,
            b"return function(m) return m.host, m.plugin_instance, #m.values, m.values[1], m.values[2], m.dsnames[0], m.dsnames[1], m.dstypes[1] end",
        );
        let capacity = vm.series.capacity();
        let mut call = |m: &crate::events::Metric| kept_call(&mut vm, f, m);
        for i in 0..capacity {
            call(&gauge(&format!("kept-{i}"), &[1.0], &["value"]));
        }
        // Past the kept ones: two values, then one value of another data
        // source, then another host: nothing of the series before shows.
        let two = call(&gauge("past-1", &[7.0, 8.0], &["rx", "tx"]));
        let one = call(&gauge("past-2", &[5.0], &["value"]));
        let mut other = gauge("past-2", &[6.0], &["value"]);
        other.host = "h2".into();
        let other = call(&other);
        assert!(
            two.contains(r#"Str("h"), Str("past-1"), Int(2), Num(7.0), Num(8.0), Str("rx"), Str("tx"), Str("gauge")"#),
            "{two}"
        );
        assert!(
            one.contains(
                r#"Str("h"), Str("past-2"), Int(1), Num(5.0), Nil, Str("value"), Nil, Nil"#
            ),
            "{one}"
        );
        assert!(
            other.contains(
                r#"Str("h2"), Str("past-2"), Int(1), Num(6.0), Nil, Str("value"), Nil, Nil"#
            ),
            "{other}"
        );
        assert_eq!(vm.series.kept(), capacity);
    }

    /// The `monitor` helpers answer as docs/rules.md says, and forget the
    /// key updated longest ago past their `keys`.
    #[test]
    fn the_monitor_helpers_keep_bounded_state_per_key() {
        let mut vm = vm();
        let out = vm
            .run_chunk(
                "t",
                br##"
local out = {}
local function put(...) for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end end
local s = monitor.stable{ readings = 3 }
put(s("a", true, 1), s("a", true, 2), s("a", true, 3), s("a", false, 4), s("a", true, 5))
local t = monitor.stable{ seconds = 10 }
put(t("a", true, 100), t("a", true, 105), t("a", true, 110))
local r = monitor.rate{ wrap = 2^32 }
put(r("x", 100, 10), r("x", 300, 20), r("x", 50, 30), r("x", 60, 30))
local plain = monitor.rate{}
put(plain("x", 100, 10), plain("x", 50, 20))
local w = monitor.window{ size = 3 }
w("k", 5); w("k", 1); w("k", 9)
put(w("k", 3))
local f = monitor.fleet{ expire = 60 }
f:set("web1", true, 100); f:set("web2", false, 100); f:set("web3", true, 100); f:set("db1", true, 100)
put(f:count("^web", 120))
f:set("web2", true, 170)
put(f:count("^web", 170))
local small = monitor.stable{ readings = 1, keys = 2 }
small("k1", true, 1); small("k2", true, 2); small("k1", true, 3); small("k3", true, 4)
local few = monitor.window{ size = 2, keys = 2 }
few("k1", 1); few("k2", 2); few("k1", 3); few("k3", 4)
put(select(3, few("k2", 10)), select(3, few("k1", 7)))
return table.concat(out, " "), pcall(monitor.window, { size = 0 })
"##,
            )
            .unwrap();
        let LuaValue::Str(answers) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            answers,
            "false false true false false false false true nil 20.0 429496704.6 nil nil nil 1 9 4.3333333333333 2 3 0.66666666666667 1 1 1.0 10.0 7.0"
        );
        assert!(matches!(out[1], LuaValue::Bool(false)), "{out:?}");
    }

    #[test]
    fn a_stream_of_ever_new_series_keeps_the_kept_tables_bounded() {
        let (mut vm, call) = first_value_handler();
        let mut peak = 0;
        let base = vm.memory_in_use();
        for i in 0..20_000 {
            let m = gauge(&format!("series-{i}"), &[1.0, 2.0], &["rx", "tx"]);
            call(&mut vm, &m);
            peak = peak.max(vm.memory_in_use());
        }
        // Twice: a collection caught mid-sweep only finishes that cycle,
        // and what died during it waits for the next.
        vm.lua.gc_collect();
        vm.lua.gc_collect();
        let live = vm.memory_in_use() - base;
        // At most an eighth of the memory limit in kept tables (about 2.7
        // KiB a series), and the garbage of the tables built for series
        // past them is collected as it comes: 20 000 kept series would
        // hold over 50 MiB.
        let eighth = vm.limits.memory / 8;
        assert!(live < eighth + (1 << 20), "holds {live} bytes");
        assert!(
            peak - base < 2 * eighth + (4 << 20),
            "grew by {} bytes",
            peak - base
        );
    }
}
