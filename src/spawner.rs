//! [`Spawner`]: the executor's `Send + Sync` handle, for other threads.
//!
//! A spawn from another thread allocates the task on that thread, pushes it
//! on a lock-free queue and wakes the executor (once per batch, like a remote
//! wake), then returns the task's [`JoinHandle`]. The executor takes the task
//! in at its next poll boundary: it numbers its slot, stamps its arrival and
//! queues it. Nothing is locked but the queue directory's read lock, for the
//! key lookup, and no lock is ever held while the executor runs.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use crate::base::directory::Directory;
use crate::base::error::{ConfigError, DumpError, UnknownQueue};
use crate::base::key::QueueKey;
use crate::base::shutdown::Shutdown;
use crate::join::JoinHandle;
use crate::observe::dump::{TaskDump, dump};
use crate::runtime::Core;
use crate::runtime::control::Command;
use crate::runtime::inbox::Shared;
use crate::runtime::scheduler::Scheduler;
use crate::runtime::task::{self, TaskMeta};
use crate::schedulers::{RunnableFifo, custom};

/// A handle to an [`Executor`](crate::Executor) for any thread: spawns tasks,
/// changes weights, adds queues and shuts the executor down.
///
/// From [`Executor::spawner`](crate::Executor::spawner). Cheap to clone,
/// `Send` and `Sync`. It does not keep the executor alive: once the
/// executor has shut down or been dropped, spawns resolve to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled) and configuration
/// changes fail with [`ConfigError::ExecutorGone`] (after a shutdown they
/// still apply, harmlessly).
///
/// ```
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("jobs", 1).build().unwrap();
/// let spawner = executor.spawner();
/// let job = std::thread::spawn(move || {
///     spawner.spawn("jobs", async { 6 * 7 }).unwrap()
/// })
/// .join()
/// .unwrap();
/// let answer = futures::executor::block_on(executor.run_until(job));
/// assert_eq!(answer.unwrap(), 42);
/// ```
pub struct Spawner<K> {
    shared: Arc<Shared>,
    directory: Arc<Directory<K>>,
}

impl<K> Clone for Spawner<K> {
    fn clone(&self) -> Self {
        Spawner {
            shared: Arc::clone(&self.shared),
            directory: Arc::clone(&self.directory),
        }
    }
}

impl<K: QueueKey> Spawner<K> {
    pub(crate) fn new(shared: Arc<Shared>, directory: Arc<Directory<K>>) -> Self {
        Spawner { shared, directory }
    }

    /// Spawns a task into the queue named `key`, from any thread.
    ///
    /// The task starts at the executor's next poll boundary. Its handle can
    /// be awaited on any thread and any runtime. If the executor has shut
    /// down or been dropped, the future is dropped here and the handle
    /// resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    /// Tasks spawned this way have no group.
    #[track_caller]
    pub fn spawn<F>(&self, key: K, future: F) -> Result<JoinHandle<F::Output>, UnknownQueue>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let queue = self.directory.index(&key)?;
        Ok(self.spawn_at(queue, future, Location::caller()))
    }

    /// Spawns a task whose future is built on the executor's thread, by
    /// `make`, so it need not be `Send` (it may hold `Rc`s, or use the
    /// executor's thread-local state). Only `make` and the output cross
    /// threads.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::rc::Rc;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let spawner = executor.spawner();
    /// let handle = std::thread::spawn(move || {
    ///     spawner
    ///         .spawn_with(0, || {
    ///             let local = Rc::new(21); // not Send: built on the executor's thread
    ///             async move { *local * 2 }
    ///         })
    ///         .unwrap()
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(futures::executor::block_on(executor.run_until(handle)).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn_with<M, F>(&self, key: K, make: M) -> Result<JoinHandle<F::Output>, UnknownQueue>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let queue = self.directory.index(&key)?;
        // Until its first poll, on the executor's thread, this future holds
        // `make` only (see the safety argument of `task::spawn`).
        let future = async move { make().await };
        Ok(self.spawn_at(queue, future, Location::caller()))
    }

    fn spawn_at<F>(
        &self,
        queue: usize,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.shared.spawns_closed() {
            return JoinHandle::of(None);
        }
        let meta = TaskMeta::new(&self.shared, queue, location);
        let (runnable, task) = task::spawn(meta, future);
        if let Err(refused) = self.shared.push_spawn(runnable) {
            // The executor shut down meanwhile. Cancel the task here: the
            // run drops the future unpolled and resolves the handle.
            refused.metadata().aborted.store(true, Ordering::Relaxed);
            refused.run();
        }
        JoinHandle::of(Some(task))
    }

    /// Sets the weight of the queue named `key`; see
    /// [`Executor::set_weight`](crate::Executor::set_weight). Applied at the
    /// executor's next poll boundary.
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), ConfigError> {
        let queue = self.directory.weight_change(&key, weight)?;
        self.command(Command::SetWeight { queue, weight })
    }

    /// Adds a queue named `key` with the default scheduler
    /// ([`RunnableFifo`]); see [`Executor::add_queue`](crate::Executor::add_queue).
    /// The key can be spawned into as soon as this returns.
    pub fn add_queue(&self, key: K, weight: u32) -> Result<(), ConfigError> {
        self.add_queue_with_scheduler(key, weight, RunnableFifo::default())
    }

    /// Adds a queue named `key` that orders its tasks with `scheduler`.
    pub fn add_queue_with_scheduler(
        &self,
        key: K,
        weight: u32,
        scheduler: impl Scheduler + Send,
    ) -> Result<(), ConfigError> {
        let scheduler = custom(scheduler).map(|scheduler| scheduler as Box<dyn Scheduler + Send>);
        self.directory.add(key, weight, |_, name| {
            self.command(Command::AddQueue {
                weight,
                scheduler,
                name,
            })
        })?;
        Ok(())
    }

    /// Shuts the executor down; see [`Executor::shutdown`](crate::Executor::shutdown).
    /// Spawns are refused as soon as this returns; the rest happens on the
    /// executor's thread, at its next poll boundary. Does nothing if the
    /// executor is gone.
    pub fn shutdown(&self, mode: Shutdown) {
        self.shared.close_spawns();
        let _ = self.shared.push_command(Command::Shutdown(mode));
    }

    /// Whether the executor refuses spawns: it is shutting down, has shut
    /// down, or is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.spawns_closed()
    }

    /// A snapshot of every live task of the executor, from any thread; see
    /// [`Executor::tasks`](crate::Executor::tasks) for what it holds.
    ///
    /// The executor takes it at its next poll boundary (the next turn, if it
    /// is idle: asking wakes it), so this works while it runs. This thread
    /// waits for the answer for at most `timeout`: an executor whose thread
    /// is blocked (a task stuck inside a poll) or whose host runtime no
    /// longer polls it does not answer ([`DumpError::Stalled`]). Called from
    /// one of the executor's own tasks, it is answered at once; called on
    /// the executor's thread between its turns, nothing can answer until
    /// this returns: use [`Executor::tasks`](crate::Executor::tasks) there.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("jobs", 1).build()?;
    /// let spawner = executor.spawner();
    /// executor.queue("jobs")?.task().name("idle").spawn(std::future::pending::<()>());
    /// let dump = futures::executor::block_on(executor.run_until(async {
    ///     // Another thread asks while the executor runs.
    ///     let asker = std::thread::spawn(move || spawner.tasks(Duration::from_secs(10)));
    ///     while !asker.is_finished() {
    ///         clockworker::yield_now().await;
    ///     }
    ///     asker.join().unwrap()
    /// }))?;
    /// assert_eq!(dump.tasks()[0].name.as_deref(), Some("idle"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tasks(&self, timeout: Duration) -> Result<TaskDump<K>, DumpError> {
        let records = Core::with_current(|core| {
            Arc::ptr_eq(core.shared(), &self.shared).then(|| core.dump())
        })
        .flatten();
        let records = match records {
            Some(records) => records?,
            None => {
                let (reply, answer) = std::sync::mpsc::sync_channel(1);
                self.shared
                    .push_command(Command::Dump { reply })
                    .map_err(|_| DumpError::ExecutorGone)?;
                match answer.recv_timeout(timeout) {
                    Ok(records) => records?,
                    Err(RecvTimeoutError::Timeout) => return Err(DumpError::Stalled(timeout)),
                    Err(RecvTimeoutError::Disconnected) => return Err(DumpError::ExecutorGone),
                }
            }
        };
        Ok(dump(records, |queue| self.directory.key(queue)))
    }

    fn command(&self, command: Command) -> Result<(), ConfigError> {
        self.shared
            .push_command(command)
            .map_err(|_| ConfigError::ExecutorGone)
    }
}

impl<K> std::fmt::Debug for Spawner<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner")
            .field("closed", &self.shared.spawns_closed())
            .finish_non_exhaustive()
    }
}
