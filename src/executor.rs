//! The executor: its public face ([`Executor`]) and its single-threaded core.
//!
//! # Ownership
//!
//! ```text
//! Rc<Executor<K>> ──> Rc<Core> ──> queues of Runnables, live-task index
//!                        ^  │
//!   QueueHandle ── Weak ─┘  └──> Arc<Shared> <── every task's waker (WakeRouter)
//! ```
//!
//! Only the `Executor` owns the core. Queue handles hold a `Weak`, so a task
//! that keeps a handle to its own queue does not keep the executor alive.
//! Wakers hold the `Shared` half only (inbox and host waker), which outlives
//! the core harmlessly: once the core is dropped every task has ended, and
//! waking an ended task does nothing.
//!
//! # Threads
//!
//! Everything in `Core` is touched on the executor's thread only. While the
//! executor is running a turn (or dropping), the core is installed in a
//! scoped thread-local, `CURRENT`; that is how wakers find the fast path and
//! how `yield_maybe` finds the running slice.
//!
//! # Borrows
//!
//! `RefCell` borrows of the core are never held while user code runs (a
//! poll, or the drop of a future), because user code may wake or spawn tasks,
//! which borrow again.

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use crate::base::clock::Clock;
use crate::base::config::Config;
use crate::base::directory::Directory;
use crate::base::error::{ConfigError, DumpError, UnknownQueue};
use crate::base::key::QueueKey;
use crate::base::shutdown::Shutdown;
use crate::observe::Hooks;
use crate::observe::dump::{TaskDump, dump};
use crate::observe::stats::{ExecutorStats, QueueStats};
use crate::queue::QueueHandle;
use crate::run::RunUntil;
use crate::runtime::Core;
use crate::runtime::control::Command;
use crate::runtime::sched::QueueScheduler;
use crate::runtime::scheduler::Scheduler;
use crate::runtime::stop::Stopped;
use crate::schedulers::{RunnableFifo, custom};
use crate::spawner::Spawner;

/// A single-threaded executor with weighted queues.
///
/// Built by [`ExecutorBuilder`](crate::ExecutorBuilder). It runs inside any
/// host runtime: [`run_until`](Self::run_until) and [`run`](Self::run) are
/// ordinary futures that the host polls, and that poll this executor's tasks,
/// handing control back to the host regularly so its IO and timers keep going.
///
/// Dropping the executor drops every task that has not finished (their
/// handles resolve to [`JoinError::Cancelled`](crate::JoinError::Cancelled),
/// or to `Panic` for a future that panics as it is dropped; such a panic
/// does not propagate out of the drop).
///
/// A task that holds the last `Rc<Executor>` (moved into its future) keeps
/// the executor alive, and the executor keeps the task: both leak. Give
/// tasks a [`QueueHandle`] (which does not keep the executor alive) or a
/// [`Spawner`] instead.
///
/// # Threads
///
/// An executor stays on the thread that built it: its tasks' futures need
/// not be `Send`, and that is only sound because the executor, its queue
/// handles and its run futures cannot leave the thread (use a [`Spawner`]
/// from other threads).
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
/// send(executor); // `Rc<Executor<_>>` is not `Send`…
/// ```
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// fn executor_itself(executor: clockworker::Executor<u8>) {
///     send(executor); // …and neither is the `Executor` behind it.
/// }
/// ```
pub struct Executor<K: QueueKey> {
    core: Rc<Core>,
    directory: Arc<Directory<K>>,
}

impl<K: QueueKey> Executor<K> {
    /// An executor with `queues` (weight and scheduler, in the directory's
    /// index order).
    pub(crate) fn new(
        directory: Arc<Directory<K>>,
        queues: Vec<(u32, QueueScheduler)>,
        config: Config,
        clock: Clock,
        hooks: Hooks,
    ) -> Self {
        let core = Rc::new_cyclic(|this| Core::new(queues, config, clock, hooks, this.clone()));
        Executor { core, directory }
    }

    /// The index of the queue named `key`, with every queued change applied
    /// first (a queue a spawner added exists here too).
    fn index(&self, key: &K) -> Result<usize, UnknownQueue> {
        self.core.apply_commands();
        self.directory.index(key)
    }

    /// A handle to spawn tasks into the queue named `key`.
    pub fn queue(&self, key: K) -> Result<QueueHandle, UnknownQueue> {
        let index = self.index(&key)?;
        Ok(QueueHandle::new(Rc::downgrade(&self.core), index))
    }

    /// A handle for other threads: spawns `Send` futures (or builds
    /// `!Send` ones here, with [`Spawner::spawn_with`]), changes weights,
    /// adds queues and shuts the executor down.
    pub fn spawner(&self) -> Spawner<K>
    where
        K: Send + Sync,
    {
        Spawner::new(Arc::clone(self.core.shared()), Arc::clone(&self.directory))
    }

    /// Sets the weight of the queue named `key`. It applies from the next
    /// pick of a queue: the queue's share, and the length of its next slice
    /// (the running slice keeps its length). What the queue is owed or
    /// owes is kept in CPU time, so the change neither rewards nor punishes
    /// it.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 8)
    ///     .with_queue("compaction", 1)
    ///     .build()
    ///     .unwrap();
    /// // Compaction is falling behind: give it a quarter of the thread.
    /// executor.set_weight("compaction", 3).unwrap();
    /// assert_eq!(executor.queue_stats("compaction").unwrap().weight, 3);
    /// assert!(executor.set_weight("compaction", 0).is_err());
    /// ```
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), ConfigError> {
        let queue = self.directory.weight_change(&key, weight)?;
        self.core.command(Command::SetWeight { queue, weight });
        Ok(())
    }

    /// Adds a queue named `key` with the default scheduler
    /// ([`RunnableFifo`]), and returns a handle to it. The queue joins the
    /// scheduling when it first has a task, at the average virtual runtime
    /// of the runnable queues: it starts even, owed nothing and owing
    /// nothing.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("requests", 4).build().unwrap();
    /// let tenant = executor.add_queue("tenant-7", 1).unwrap();
    /// let done = futures::executor::block_on(executor.run_until(tenant.spawn(async { 7 })));
    /// assert_eq!(done.unwrap(), 7);
    /// assert!(executor.add_queue("tenant-7", 1).is_err()); // the key is taken
    /// ```
    pub fn add_queue(&self, key: K, weight: u32) -> Result<QueueHandle, ConfigError> {
        self.add_queue_with_scheduler(key, weight, RunnableFifo::default())
    }

    /// Adds a queue named `key` that orders its tasks with `scheduler`; see
    /// [`add_queue`](Self::add_queue).
    pub fn add_queue_with_scheduler(
        &self,
        key: K,
        weight: u32,
        scheduler: impl Scheduler,
    ) -> Result<QueueHandle, ConfigError> {
        let scheduler = custom(scheduler).map(|scheduler| scheduler as Box<dyn Scheduler>);
        let index = self.directory.add(key, weight, |index, name| {
            // Queues a spawner added before this one take their indices
            // first (`command` applies them).
            self.core.command(Command::AddQueue {
                weight,
                scheduler,
                name,
            });
            debug_assert_eq!(index + 1, self.core.queue_count());
            Ok(())
        })?;
        Ok(QueueHandle::new(Rc::downgrade(&self.core), index))
    }

    /// Shuts the executor down (see [`Shutdown`] for the two modes):
    /// spawns are refused from now on, except, while draining, those made by
    /// the executor's own tasks. The tasks are drained or cancelled as the
    /// executor runs, and [`run`](Self::run) returns once none is left.
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, JoinError, Shutdown};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let finishing = queue.spawn(async { "done" });
    /// let stuck = queue.spawn(std::future::pending::<()>());
    /// executor.shutdown(Shutdown::Cancel);
    /// futures::executor::block_on(executor.run()); // returns: nothing is left
    /// assert!(matches!(
    ///     futures::executor::block_on(stuck),
    ///     Err(JoinError::Cancelled)
    /// ));
    /// # let _ = finishing;
    /// assert!(executor.is_shut_down());
    /// ```
    pub fn shutdown(&self, mode: Shutdown) {
        self.core.command(Command::Shutdown(mode));
    }

    /// Whether a shutdown has completed: no task is left, and none will be
    /// accepted.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down()
    }

    /// Runs the executor's tasks until `future` completes, and returns its output.
    ///
    /// `future` is polled by the executor itself, outside any queue, whenever
    /// it is woken. Tasks still unfinished when it completes stay in their
    /// queues and run the next time the executor runs.
    ///
    /// Awaited from inside one of this executor's own tasks, it simply awaits
    /// `future`: the executor is already running.
    ///
    /// # Panics
    ///
    /// If blocked on from inside one of this executor's own tasks (or from
    /// the future another `run_until` runs) while `future` is pending, as in
    /// `futures::executor::block_on(executor.run_until(..))`: the thread
    /// would block inside the executor, whose other tasks could never run
    /// again to finish `future`. The panic is the task's, under the
    /// executor's panic policy. A combinator that polls it with a waker of
    /// its own (`FuturesUnordered`, say) counts as blocking on it too: await
    /// it directly, or spawn the work as a task.
    pub fn run_until<F: Future>(&self, future: F) -> RunUntil<'_, F> {
        RunUntil::new(&self.core, future)
    }

    /// A snapshot of the executor's statistics: time busy and idle, turns,
    /// polls, tasks, wakes. See [`ExecutorStats`].
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("main", 1).build().unwrap();
    /// let queue = executor.queue("main").unwrap();
    /// futures::executor::block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let stats = executor.stats();
    /// assert_eq!((stats.spawned, stats.completed, stats.polls), (1, 1, 1));
    /// println!("{stats}");
    /// ```
    pub fn stats(&self) -> ExecutorStats {
        self.core.stats()
    }

    /// A snapshot of the statistics of the queue named `key`: tasks, polls,
    /// CPU time, slices, and histograms of queue delay and poll duration.
    /// See [`QueueStats`].
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("main", 1).build().unwrap();
    /// let queue = executor.queue("main").unwrap();
    /// futures::executor::block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let stats = executor.queue_stats("main").unwrap();
    /// assert_eq!(stats.poll_duration.count(), 1);
    /// println!("{stats}");
    /// ```
    pub fn queue_stats(&self, key: K) -> Result<QueueStats, UnknownQueue> {
        let index = self.index(&key)?;
        Ok(self.core.queue_stats(index))
    }

    /// Publishes the statistics through the [`metrics`](https://docs.rs/metrics)
    /// facade, to whatever recorder is installed: per queue (label `queue`,
    /// the key as `Debug` prints it) the task, poll, slice and preemption
    /// counters, CPU time, runnable tasks, and the queue-delay and
    /// poll-duration histograms (the polls recorded since the last
    /// publication); executor-wide the turns, driver yields, wakes (label
    /// `source`), busy and idle time, and live tasks. All names start with
    /// `clockworker_`. Feature `metrics`; see also
    /// [`ExecutorBuilder::with_metrics`](crate::ExecutorBuilder::with_metrics).
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        self.core.publish_metrics();
    }

    /// The statistics of every queue, in the order they were configured.
    pub fn all_queue_stats(&self) -> Vec<(K, QueueStats)> {
        self.core.apply_commands();
        let applied = self.core.queue_count();
        self.directory
            .keys()
            .into_iter()
            .take(applied)
            .enumerate()
            .map(|(index, key)| (key, self.core.queue_stats(index)))
            .collect()
    }

    /// A snapshot of every live task: its id, name, queue, group, spawn
    /// location, state (running, runnable, waiting), polls, CPU time, age,
    /// and how long it has been in its state. Its `Display` is a table.
    /// Call it from a task, a hook, or between runs; from another thread,
    /// use [`Spawner::tasks`].
    ///
    /// A task that waits forever (on a channel nobody will send to, a lock
    /// never released) shows as `waiting`, for longer than the others:
    /// [`TaskDump::waiting_for`] lists those, longest first.
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, TaskState};
    /// use std::time::Duration;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("requests", 1).build()?;
    /// let requests = executor.queue("requests")?;
    /// let (_never_sent, never) = futures::channel::oneshot::channel::<()>();
    /// requests.task().name("stuck").spawn(never);
    /// futures::executor::block_on(executor.run_until(clockworker::yield_now()));
    ///
    /// let dump = executor.tasks()?;
    /// println!("{dump}");
    /// let stuck = &dump.tasks()[0];
    /// assert_eq!((stuck.name.as_deref(), stuck.state, stuck.polls), (Some("stuck"), TaskState::Waiting, 1));
    /// assert_eq!(dump.waiting_for(Duration::ZERO)[0].id, stuck.id);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tasks(&self) -> Result<TaskDump<K>, DumpError> {
        let records = self.core.dump()?;
        let keys = self.directory.keys();
        Ok(dump(records, |queue| keys.get(queue).cloned()))
    }

    /// Runs the executor's tasks until it has [shut down](Self::shutdown).
    /// Run it as a task of the host (e.g. `LocalSet::spawn_local`), or
    /// `block_on` it on a thread of its own. Dropped before that, it stops
    /// running tasks; they stay queued.
    pub fn run(&self) -> impl Future<Output = ()> + '_ {
        RunUntil::new(&self.core, Stopped { core: &self.core })
    }
}

impl<K: QueueKey> fmt::Debug for Executor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("queues", &self.directory.keys())
            .field("live_tasks", &self.core.live_tasks())
            .finish()
    }
}
