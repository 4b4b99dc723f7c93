//! The rule sandbox: every rule file runs in a worker process of its own
//! (`collectd-monitor rule-worker`), confined and resource-limited, so that
//! no rule can crash, hang or bloat collectd, or reach the host. The plugin
//! side spawns and supervises the workers and feeds them batches of events.
//!
//! Why processes: piccolo aborts the whole process when an allocation
//! fails, and memory can only be checked between fuel slices; only a
//! separate address space keeps that away from collectd.

mod confine;
mod process;
mod supervision;
/// Public for the `collectd-monitor` commands that run Lua.
pub mod watchdog;
/// Public for the benchmarks and tools that build or read batches.
pub mod wire;
/// Public for the `collectd-monitor rule-worker` entry point.
pub mod worker;
mod worker_args;

pub use confine::{confine, confine_checker};
pub use process::{ReportSink, Routing, Worker, WorkerPhase, WorkerSpec};
pub use supervision::{AfterDeath, RestartPolicy, Supervision};
pub use wire::Report;
pub use worker_args::WorkerArgs;
