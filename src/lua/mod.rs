//! The Lua VM rules run in: piccolo (pure Rust), one instance per rule
//! file, with the library rule authors may use and nothing that reaches
//! files, processes or the network. Every call runs on a fuel budget, so a
//! runaway loop ends with an error instead of hanging the caller.
//!
//! Memory limits and crash isolation are the sandbox's job (a separate
//! process); this module only bounds CPU.

mod date;
mod env;
mod format;
mod front;
mod library;
mod pattern;
mod strlib;
mod vm;

pub use vm::{CallError, LuaValue, Vm, VmLimits};
