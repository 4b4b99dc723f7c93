//! The fleet's side of the rules: on a central collectd that receives the
//! hosts' values, rule decisions become requests to the host they are
//! for (`responder.rs`). What must be right before any message goes out
//! is pure code: whose values prove which host (`origins.rs`), which
//! hosts central rules know, with their keys and pauses (`roster.rs`),
//! how many repairs may run at once and when they stop (`guards.rs`), the
//! task id that makes redundant controllers repair once (`task_id.rs`),
//! what the other controllers announce (`peers.rs`), and one log line per
//! host and interval (`quiet.rs`).

mod guards;
mod origins;
mod peers;
mod quiet;
mod responder;
mod roster;
mod running;
mod task_id;
mod unproven;
mod view;

pub use guards::{
    CommandState, GuardPolicy, Guards, HeldBack, HostFacts, Outcome, Refusal, Stopped, Verdict,
};
pub use origins::{Origin, Origins, Unproven};
pub use peers::Announcement;
pub use responder::{Central, CentralConfig};
pub use roster::Roster;
pub use running::{CentralRunning, CentralStart, StartError};
pub use task_id::derived_task_id;
