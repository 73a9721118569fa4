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

/// How a task ended: what its `JoinHandle` reports, as the statistics
/// count it and as the termination hook
/// ([`ExecutorBuilder::on_task_terminate`](crate::ExecutorBuilder::on_task_terminate))
/// is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskEnding {
    /// The future returned its output.
    Completed,
    /// The task was aborted, or the executor shut down or was dropped
    /// before it finished: its future was dropped unfinished.
    Cancelled,
    /// The future panicked, in a poll or in its `Drop`.
    Panicked,
}

impl std::fmt::Display for TaskEnding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskEnding::Completed => "completed",
            TaskEnding::Cancelled => "cancelled",
            TaskEnding::Panicked => "panicked",
        })
    }
}
