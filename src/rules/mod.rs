//! Rule files (docs/COMPATIBILITY.md §1): each `*.lua` file of `LocalMonitorConfigDir`
//! returns metric handlers and notification handlers; a handler that
//! returns `{service = ..., command = ...}` asks for a recovery command.
//! This module loads files into their own VMs, offers them events and
//! interprets what the handlers return. It runs nothing itself.

mod debounce;
mod examples;
mod file;
pub mod guard;
mod input;
mod set;
mod tools;

pub use debounce::{DebouncePolicy, State, Verdict};
pub use examples::Example;
pub use file::{
    Fired, HandlerError, HandlerKind, HandlerOutcome, MAX_RULE_FILE_BYTES, RuleFile, event_series,
    read_rule_file, series_name,
};
pub use input::{InputError, parse_input_line};
pub use set::{Evaluation, Held, RuleSet, lua_files};
pub use tools::{
    CheckReport, ExampleVerdict, FileCheck, HandlerCheck, LineOutcome, LoadError, SourceFile,
    Unknown, check_examples, check_files, check_sources, difference, dry_run, expand_paths,
    load_warnings, read_sources,
};
