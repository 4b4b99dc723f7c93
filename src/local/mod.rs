//! Local monitoring (docs/COMPATIBILITY.md §1-§3): every value list and notification
//! collectd handles goes to the rule files of `LocalMonitorConfigDir`, each
//! in its sandboxed worker; a handler's `{service, command}` runs the
//! recovery command from the config, and the result goes out as a collectd
//! notification.
//!
//! collectd -> [`crate::events`] queue -> engine thread (batches, routed
//! per file, a frame per file per batch; centrally held to fill frames)
//! -> workers -> report threads -> responder (cooldown, command runner)
//! -> result notification.

mod catalog;
mod cooldown;
mod engine;
mod hold;
mod lifecycle;
mod respond;
mod result;
mod routing;
mod stats;
mod throttle;

pub use engine::{Engine, EngineConfig};
pub use hold::CENTRAL_HOLD_FOR;
pub use respond::{NotificationSink, Responder};
pub use result::{CENTRAL_RESULT_PLUGIN, result_notification, rule_notification};
pub use routing::Router;
pub use stats::{Figure, Stats};
