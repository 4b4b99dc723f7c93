//! Recovery commands: the only place this project starts processes on
//! behalf of rules and remote controllers. Commands come from the
//! operator's config (never from a message), run with `/bin/sh -c` in their
//! own process group, with a timeout, an output cap and a concurrency limit.

mod command;
mod runner;
mod slots;

pub use command::{CommandOutcome, Ending, RunSpec, run, stop_all};
pub use runner::{Ran, Refusal, Runner, RunnerLimits, Summary};
