//! Remote collectd.conf replacement (docs/COMPATIBILITY.md §5): validate the pushed
//! config inside the plugin, then let a detached helper process stop
//! collectd, swap the file, start collectd, roll back when it does not come
//! up, and publish exactly one result.

mod changes;
mod helper;
mod host;
mod includes;
mod invocation;
mod job;
mod launch;
mod lock;
mod policy;
mod procedure;
mod trusted;
mod validate;

pub use helper::run_helper;
pub use includes::expand_as_collectd;
pub use invocation::{Invocation, this_library_dir};
pub use launch::{Push, ReplaceContext, launch, pending_reports};
pub use policy::{
    CODE_RUNNING_PLUGINS, PushPolicy, READ_PATHS, Refused, RunningFiles, WRITTEN_PATHS,
    written_paths,
};
pub use procedure::{Host, ReplaceOutcome, Started, replace};
pub use validate::{Checked, DEFAULT_PLUGIN_DIR, validate};
