//! The runtime core: the one place whose parts depend on each other.
//! Tasks, the thread's current executor, the wake inbox, the scheduler
//! trait and its run queues, and the executor's state.

pub(crate) mod context;
pub(crate) mod control;
pub(crate) mod host;
pub(crate) mod inbox;
pub(crate) mod scheduler;
pub(crate) mod task;
