//! The live task dump: a snapshot of every task an executor holds, to find
//! the one that hangs a service (see [`Executor::tasks`] and
//! [`Spawner::tasks`]).
//!
//! The core takes [`TaskRecord`]s, with queues as indices and plain data
//! only, so that a dump asked for from another thread crosses back to it;
//! the public face names the queues and builds the [`TaskDump`].
//!
//! [`Executor::tasks`]: crate::Executor::tasks
//! [`Spawner::tasks`]: crate::Spawner::tasks

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::base::id::{TaskId, TaskName};

/// What a task is doing at the moment of a [`TaskDump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Being polled: the task that asked for the dump, or, for a dump
    /// asked for from another thread, the task that was polled when the
    /// executor answered (at a `yield_maybe` of a long poll). A task that
    /// blocks the thread does not let the executor answer at all
    /// ([`DumpError::Stalled`](crate::DumpError::Stalled)).
    Running,
    /// Woken, and waiting in its queue for its turn.
    Runnable,
    /// Polled, and waiting for a wake (a socket, a timer, a channel...).
    Waiting,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TaskState::Running => "running",
            TaskState::Runnable => "runnable",
            TaskState::Waiting => "waiting",
        })
    }
}

/// One live task in a [`TaskDump`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSnapshot<K> {
    /// The task's id, unique within its executor.
    pub id: TaskId,
    /// The task's name, if it was given one
    /// ([`TaskBuilder::name`](crate::TaskBuilder::name)).
    pub name: Option<String>,
    /// The key of the task's queue.
    pub queue: K,
    /// The task's group (the hash of its group key), if it has one.
    pub group: Option<u64>,
    /// Where the task was spawned.
    pub location: &'static Location<'static>,
    /// What the task is doing.
    pub state: TaskState,
    /// How long the task has been in `state`: for a waiting task, since its
    /// last poll started (so, for a task that waits forever, since it last
    /// ran); for a runnable one, since it was woken; for the running one,
    /// since its poll started. Executor time: a [`ManualClock`] moves it.
    ///
    /// [`ManualClock`]: crate::ManualClock
    pub in_state: Duration,
    /// How many times the task has been polled (for the running task, with
    /// the poll in progress).
    pub polls: u64,
    /// The CPU time of its polls so far (for the running task, without the
    /// poll in progress).
    pub cpu_time: Duration,
    /// How long ago it was spawned (for a task spawned through a
    /// [`Spawner`](crate::Spawner): taken in by the executor).
    pub age: Duration,
}

/// Every live task of an executor at one moment, ordered by id (oldest
/// first), from [`Executor::tasks`](crate::Executor::tasks) or
/// [`Spawner::tasks`](crate::Spawner::tasks).
///
/// Its `Display` is a table, one task per line:
///
/// ```text
///  task  queue         state     for        polls  cpu        age        name / spawned at
///     1  "requests"    waiting   12.0 s     1      4 µs       12.0 s     "stuck" src/main.rs:20:9
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDump<K> {
    pub(crate) tasks: Vec<TaskSnapshot<K>>,
}

impl<K> TaskDump<K> {
    /// The tasks, ordered by id.
    pub fn tasks(&self) -> &[TaskSnapshot<K>] {
        &self.tasks
    }

    /// The tasks, ordered by id, owned.
    pub fn into_tasks(self) -> Vec<TaskSnapshot<K>> {
        self.tasks
    }

    /// How many tasks were live.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task was live.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks that have been waiting for a wake for at least `at_least`,
    /// longest first: where to look when a request hangs.
    pub fn waiting_for(&self, at_least: Duration) -> Vec<&TaskSnapshot<K>> {
        let mut waiting: Vec<_> = self
            .tasks
            .iter()
            .filter(|task| task.state == TaskState::Waiting && task.in_state >= at_least)
            .collect();
        waiting.sort_by(|a, b| b.in_state.cmp(&a.in_state).then(a.id.cmp(&b.id)));
        waiting
    }
}

impl<'a, K> IntoIterator for &'a TaskDump<K> {
    type Item = &'a TaskSnapshot<K>;
    type IntoIter = std::slice::Iter<'a, TaskSnapshot<K>>;

    fn into_iter(self) -> Self::IntoIter {
        self.tasks.iter()
    }
}

impl<K> IntoIterator for TaskDump<K> {
    type Item = TaskSnapshot<K>;
    type IntoIter = std::vec::IntoIter<TaskSnapshot<K>>;

    fn into_iter(self) -> Self::IntoIter {
        self.tasks.into_iter()
    }
}

impl<K: fmt::Debug> fmt::Display for TaskDump<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues: Vec<String> = self
            .tasks
            .iter()
            .map(|task| format!("{:?}", task.queue))
            .collect();
        let queue_width = queues.iter().map(String::len).max().unwrap_or(0).max(5);
        writeln!(
            f,
            "{:>6}  {:<queue_width$}  {:<8}  {:>9}  {:>8}  {:>9}  {:>9}  name / spawned at",
            "task", "queue", "state", "for", "polls", "cpu", "age"
        )?;
        for (task, queue) in self.tasks.iter().zip(&queues) {
            write!(
                f,
                "{:>6}  {:<queue_width$}  {:<8}  {:>9}  {:>8}  {:>9}  {:>9}  ",
                task.id.as_u64(),
                queue,
                task.state,
                Short(task.in_state),
                task.polls,
                Short(task.cpu_time),
                Short(task.age),
            )?;
            if let Some(name) = &task.name {
                write!(f, "{name:?} ")?;
            }
            if let Some(group) = task.group {
                write!(f, "group {group:#x} ")?;
            }
            writeln!(f, "{}", task.location)?;
        }
        Ok(())
    }
}

/// A duration with three significant digits and a unit, for the table.
struct Short(Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let text = if nanos < 1e3 {
            format!("{nanos:.0} ns")
        } else if nanos < 1e6 {
            format!("{:.1} µs", nanos / 1e3)
        } else if nanos < 1e9 {
            format!("{:.1} ms", nanos / 1e6)
        } else {
            format!("{:.1} s", nanos / 1e9)
        };
        f.pad(&text)
    }
}

/// A live task as the core records it for a dump: [`TaskSnapshot`] with
/// the queue as an index. Plain data, so that it crosses threads.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    pub(crate) id: TaskId,
    pub(crate) name: Option<TaskName>,
    pub(crate) queue: usize,
    pub(crate) group: Option<u64>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) state: TaskState,
    pub(crate) in_state: Duration,
    pub(crate) polls: u64,
    pub(crate) cpu_time: Duration,
    pub(crate) age: Duration,
}

impl TaskRecord {
    /// The public snapshot, with the queue's key (`None` if `key` does not
    /// know the queue: then the task is left out).
    pub(crate) fn named<K>(self, key: impl FnOnce(usize) -> Option<K>) -> Option<TaskSnapshot<K>> {
        Some(TaskSnapshot {
            id: self.id,
            name: self.name.map(|name| name.as_str().to_owned()),
            queue: key(self.queue)?,
            group: self.group,
            location: self.location,
            state: self.state,
            in_state: self.in_state,
            polls: self.polls,
            cpu_time: self.cpu_time,
            age: self.age,
        })
    }
}

/// Builds the dump from the core's records, naming each queue with `key`.
pub(crate) fn dump<K>(
    records: Vec<TaskRecord>,
    mut key: impl FnMut(usize) -> Option<K>,
) -> TaskDump<K> {
    let mut tasks: Vec<TaskSnapshot<K>> = records
        .into_iter()
        .filter_map(|record| record.named(&mut key))
        .collect();
    tasks.sort_by_key(|task| task.id);
    TaskDump { tasks }
}
