//! Observability, built on the leaves only: statistics, slow-poll reports,
//! the stall watchdog, task hooks, the task dump and the `metrics` export.

#[cfg(feature = "console")]
pub(crate) mod console;
pub(crate) mod dump;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub(crate) mod slow;
pub(crate) mod stats;
pub(crate) mod task_hooks;
pub(crate) mod watchdog;

use crate::observe::slow::ReportFn;
use crate::observe::task_hooks::TaskHooks;
use crate::observe::watchdog::Watchdog;

/// The user's callbacks, with queue keys resolved, and the watchdog, for the
/// core.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) on_slow_poll: Option<ReportFn>,
    /// The hooks on a task's spawn, polls and end.
    pub(crate) task: TaskHooks,
    pub(crate) watchdog: Option<Watchdog>,
    /// Each queue's key, as `Debug` prints it: its label in exported
    /// metrics, its field in the console's task list.
    #[cfg(any(feature = "metrics", feature = "console"))]
    pub(crate) queue_names: Vec<String>,
    /// Publish metrics at the end of a turn this often.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_interval: Option<std::time::Duration>,
}
