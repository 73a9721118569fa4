//! Queues: the handle users spawn through, and each queue's run queue.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::Location;
use std::rc::Weak;
use std::sync::Arc;
use std::time::Duration;

use crate::base::error::NoCurrentTask;
use crate::base::group::group_id;
use crate::join::JoinHandle;
use crate::runtime::Core;
use crate::runtime::registry::{GroupChoice, SpawnOptions};

/// A handle to one queue of an executor, for spawning tasks into it.
///
/// Cheap to clone. It does not keep the executor alive: tasks may hold handles
/// to their own executor without creating a reference cycle. Spawning through
/// a handle whose executor is gone returns a [`JoinHandle`] that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled), and drops the future.
///
/// It is not `Send`: it spawns `!Send` futures, which must stay on the
/// executor's thread (from other threads, use a [`Spawner`](crate::Spawner)).
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// send(executor.queue(0).unwrap());
/// ```
#[derive(Clone)]
pub struct QueueHandle {
    core: Weak<Core>,
    queue: usize,
}

impl QueueHandle {
    pub(crate) fn new(core: Weak<Core>, queue: usize) -> Self {
        QueueHandle { core, queue }
    }

    /// A handle to the queue of the task being polled: the queue a task
    /// spawned from here with [`spawn`](crate::spawn) goes to. Fails
    /// outside a clockworker task.
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, QueueHandle};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("main", 1).build().unwrap();
    /// let queue = executor.queue("main").unwrap();
    /// assert!(QueueHandle::current().is_err()); // not inside a task
    /// let inner = futures::executor::block_on(executor.run_until(queue.spawn(async {
    ///     let mine = QueueHandle::current().unwrap();
    ///     mine.spawn(async { 6 * 7 }).await
    /// })));
    /// assert_eq!(inner.unwrap().unwrap(), 42);
    /// ```
    pub fn current() -> Result<QueueHandle, NoCurrentTask> {
        Core::with_current(Core::polling_queue)
            .flatten()
            .map(|(core, queue)| QueueHandle::new(core, queue))
            .ok_or(NoCurrentTask)
    }

    /// Spawns a task into this queue and returns the handle to await it.
    ///
    /// The future does not need to be `Send`: it only ever runs on the
    /// executor's thread. It starts running the next time the executor polls.
    /// Spawned from inside a task that has a group, it joins the same group
    /// (use [`task`](Self::task) to choose otherwise).
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::rc::Rc;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("main", 1).build().unwrap();
    /// let queue = executor.queue("main").unwrap();
    /// let shared = Rc::new(5); // not Send, and that is fine
    /// let answer = futures::executor::block_on(executor.run_until(async move {
    ///     queue.spawn(async move { *shared * 2 }).await
    /// }));
    /// assert_eq!(answer.unwrap(), 10);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.task().spawn(future)
    }

    /// A builder for a task in the group named `key` (any `Hash` value): a
    /// tenant, a stream, a request. Schedulers such as [`LAS`](crate::LAS) and
    /// [`GroupFair`](crate::GroupFair) treat a group's tasks as one.
    ///
    /// ```
    /// # use clockworker::ExecutorBuilder;
    /// # let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// # let queue = executor.queue(0).unwrap();
    /// queue.group("tenant1").spawn(async { /* some task */ });
    /// queue.group(42u64).spawn(async { /* some task */ });
    /// ```
    pub fn group<G: Hash>(&self, key: G) -> TaskBuilder<'_> {
        self.task().group(key)
    }

    /// A builder for a task with options: group, deadline.
    pub fn task(&self) -> TaskBuilder<'_> {
        TaskBuilder {
            queue: self,
            options: SpawnOptions::default(),
        }
    }
}

/// Spawns a task from inside a task, into the spawning task's queue and
/// group: a connection's handler, a request's sub-requests, without passing
/// a [`QueueHandle`] down. The same as
/// `QueueHandle::current()?.spawn(future)`.
///
/// Fails with [`NoCurrentTask`] outside a clockworker task; the future is
/// then dropped unpolled.
///
/// `tokio::spawn` and `tokio::task::spawn_local` called inside a task put
/// their future on Tokio's scheduler, not on the executor's queues: it then
/// competes with the executor as one more Tokio task, outside every weight.
/// Libraries do this too (`axum::serve` spawns each connection with
/// `tokio::spawn`): give them this function or a `QueueHandle` where they
/// take a spawner, such as hyper's executor trait (feature `hyper`).
///
/// ```
/// use clockworker::{ExecutorBuilder, JoinHandle};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("requests", 8)
///     .with_queue("compaction", 1)
///     .build()
///     .unwrap();
/// let requests = executor.queue("requests").unwrap();
/// let stats = futures::executor::block_on(executor.run_until(requests.spawn(async {
///     let parts: Vec<JoinHandle<u32>> = (1..=3)
///         .map(|part| clockworker::spawn(async move { part * 10 }).unwrap())
///         .collect();
///     let mut sum = 0;
///     for part in parts {
///         sum += part.await.unwrap();
///     }
///     sum
/// })));
/// assert_eq!(stats.unwrap(), 60);
/// assert_eq!(executor.queue_stats("requests").unwrap().spawned, 4);
/// assert!(clockworker::spawn(async {}).is_err()); // not inside a task
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, NoCurrentTask>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Ok(QueueHandle::current()?.spawn(future))
}

/// Spawns a task with options. From [`QueueHandle::task`] or [`QueueHandle::group`].
#[derive(Debug, Clone)]
#[must_use = "a TaskBuilder spawns nothing until `spawn` is called"]
pub struct TaskBuilder<'a> {
    queue: &'a QueueHandle,
    options: SpawnOptions,
}

impl TaskBuilder<'_> {
    /// The task joins the group named `key`.
    pub fn group<G: Hash>(mut self, key: G) -> Self {
        self.options.group = GroupChoice::Group(group_id(&key));
        self
    }

    /// The task has no group, even when spawned from a grouped task.
    pub fn no_group(mut self) -> Self {
        self.options.group = GroupChoice::Ungrouped;
        self
    }

    /// The task should finish within `within` of now. The [`Edf`](crate::Edf)
    /// scheduler runs tasks by deadline; other schedulers ignore it.
    pub fn deadline(mut self, within: Duration) -> Self {
        self.options.deadline = Some(within);
        self
    }

    /// Names the task, for slow-poll and stall reports (see
    /// [`ExecutorBuilder::on_slow_poll`](crate::ExecutorBuilder::on_slow_poll)).
    /// A named task allocates its name (twice for a `&str`) and a box of
    /// the extras a task rarely has (name, deadline, group), one word in
    /// its metadata; an unnamed task without a deadline or group has none.
    ///
    /// ```
    /// # use clockworker::ExecutorBuilder;
    /// # let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// # let queue = executor.queue(0).unwrap();
    /// queue.task().name("compaction L0->L1").spawn(async { /* ... */ });
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = Some(Arc::new(name.into()));
        self
    }

    /// Spawns the task; see [`QueueHandle::spawn`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let location = Location::caller();
        match self.queue.core.upgrade() {
            Some(core) => {
                JoinHandle::of(core.spawn(self.queue.queue, future, self.options, location))
            }
            None => JoinHandle::of(None),
        }
    }
}

impl fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueHandle")
            .field("queue", &self.queue)
            .field("executor_alive", &(self.core.strong_count() > 0))
            .finish()
    }
}
