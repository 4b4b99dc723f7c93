//! The Lua VM rules run in: piccolo (pure Rust), one instance per rule
//! file, with the library rule authors may use and nothing that reaches
//! files, processes or the network. Every call runs on a fuel budget, so a
//! runaway loop ends with an error instead of hanging the caller.
//!
//! Memory limits and crash isolation are the sandbox's job (a separate
//! process); this module only bounds CPU.

mod args;
mod base;
mod coroutine;
mod env;
mod event_table;
mod front;
mod math;
mod numeral;
mod ops;
mod os;
mod setindex;
mod string;
mod table;
mod utf8;
mod vm;

/// Public for `tests/lua_suite.rs`, which cuts files the way the front end
/// reads them.
pub use front::{blank_empty_statements, comparison_warnings, too_deep};
pub use vm::{
    CallError, EventRef, EventTableCache, Limit, LuaFunction, LuaValue, Vm, VmLimits,
    call_in_progress,
};

/// Whether `subject` matches the Lua pattern `pattern` anywhere (for the
/// rules' declarative `match` filters, which run without a VM).
pub fn pattern_matches(subject: &str, pattern: &str) -> Result<bool, String> {
    let mut budget = 1_000_000;
    string::pattern::find_at(subject.as_bytes(), pattern.as_bytes(), 0, &mut budget)
        .map(|m| m.is_some())
        .map_err(|e| match e {
            string::pattern::PatternError::Malformed(m) => m,
            string::pattern::PatternError::TooExpensive => "pattern too expensive".into(),
        })
}

/// Metamethods never called: piccolo 0.3.3 does not call the arithmetic
/// ones, and the front end routes only `//`, `%`, the bitwise operators
/// and comparisons through helpers that do (`ops.rs`); `__concat`,
/// `__tostring`, `__index`, `__newindex`, `__call`, `__eq`, `__len`,
/// `__lt`, `__le`, `__idiv`, `__mod` and the bitwise ones work.
const UNSUPPORTED_METAMETHODS: &[&str] = &[
    "__add", "__sub", "__mul", "__div", "__pow", "__unm", "__close", "__gc", "__mode",
];

/// Warnings for features a rule file uses that this VM does not provide,
/// for `rules check` (docs/rules.md lists the same gaps).
pub fn unsupported_features(source: &str) -> Vec<String> {
    UNSUPPORTED_METAMETHODS
        .iter()
        .filter(|m| {
            source.match_indices(*m).any(|(i, _)| {
                let after = source[i + m.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|m| {
            format!("metamethod {m} is not supported by the Lua VM (piccolo): it is never called")
        })
        .collect()
}
