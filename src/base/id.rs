//! What identifies a task to users and reports: its id, its name, and how
//! it ended.

use std::sync::Arc;

/// A task's identity, unique within its executor for the executor's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}", self.0)
    }
}

/// A task's name: a thin pointer (one word in every task, named or not),
/// shared with the reports that mention it.
pub(crate) type TaskName = Arc<String>;

/// How a task ended, as the executor's statistics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    Cancelled,
    Panicked,
}
