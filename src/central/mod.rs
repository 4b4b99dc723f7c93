//! The fleet's side of the rules: on a central collectd that receives the
//! hosts' values, rule decisions become requests to the host they are
//! for (`responder.rs`). The decisions that must be right before any
//! message goes out are pure code: how many repairs may run at once and
//! when they stop (`guards.rs`), and the task id that makes redundant
//! controllers repair once (`task_id.rs`).

mod guards;
mod responder;
mod task_id;

pub use guards::{CommandState, GuardPolicy, Guards, HeldBack, Outcome, Stopped, Verdict};
pub use responder::{Central, CentralConfig};
pub use task_id::derived_task_id;
