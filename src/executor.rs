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

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Duration;

use slab::Slab;

use crate::base::clock::{Clock, nanos};
use crate::base::config::Config;
use crate::base::directory::Directory;
use crate::base::error::{ConfigError, UnknownQueue};
use crate::base::id::Ending;
use crate::base::key::QueueKey;
use crate::base::picker::{Picker, SliceEnd};
use crate::join::JoinHandle;
use crate::observe::Hooks;
use crate::observe::slow::PollReport;
use crate::observe::stats::{ExecutorCounters, ExecutorStats, QueueStats, bump};
use crate::queue::{GroupChoice, QueueHandle, RunQueue, SchedulerPanic, SpawnOptions};
use crate::run::RunUntil;
use crate::runtime::context;
use crate::runtime::host::HostState;
use crate::runtime::inbox::Shared;
use crate::runtime::scheduler::{Scheduler, TaskInfo};
use crate::runtime::task::{self, Runnable, TaskMeta};
use crate::schedulers::RunnableFifo;
use crate::shutdown::{Shutdown, Stop, Stopped};
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
        queues: Vec<(u32, Box<dyn Scheduler>)>,
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
        Spawner::new(Arc::clone(&self.core.shared), Arc::clone(&self.directory))
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
        let queue = self.index(&key)?;
        ConfigError::check_weight(&key, weight)?;
        self.core
            .sched
            .borrow_mut()
            .picker
            .set_weight(queue, weight);
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
        ConfigError::check_weight(&key, weight)?;
        let name = format!("{key:?}");
        let scheduler = Box::new(scheduler);
        let index = self.directory.add(key, |index| {
            // Queues a spawner added before this one take their indices first.
            self.core.apply_commands();
            debug_assert_eq!(index, self.core.queue_count());
            self.core.add_queue(weight, scheduler, name);
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
        self.core.apply_commands();
        self.core.begin_shutdown(mode);
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
            .field("live_tasks", &self.core.tasks.borrow().len())
            .finish()
    }
}

/// The queue and group of the task being polled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polling {
    pub(crate) queue: usize,
    pub(crate) group: Option<u64>,
    /// The task's slot in `Core::tasks`, where its waker is.
    pub(crate) slot: usize,
}

/// The scheduling state: the picker and the queues' run queues.
pub(crate) struct Sched {
    pub(crate) picker: Picker,
    pub(crate) queues: Vec<RunQueue>,
    /// A task became runnable in a queue that should run before the current
    /// slice's queue; the slice ends at the next poll boundary.
    pub(crate) preempt: bool,
}

impl Sched {
    #[inline]
    fn push(&mut self, runnable: Runnable) -> Result<(), SchedulerPanic> {
        let queue = runnable.metadata().queue;
        let was_empty = self.queues[queue].is_empty();
        let pushed = self.queues[queue].push(runnable);
        if was_empty && self.picker.wake(queue) {
            self.preempt = true;
        }
        pushed
    }
}

/// The executor's single-threaded state.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Clock,
    pub(crate) config: Config,
    pub(crate) sched: RefCell<Sched>,
    /// Wakes that found the scheduling state borrowed (a safety net; see `accept`).
    wake_buf: RefCell<VecDeque<Runnable>>,
    /// Aborted tasks waiting to be run once more, to drop their futures.
    reap: RefCell<Vec<Runnable>>,
    /// Whether `wake_buf` / `reap` may hold something: one `Cell` read per
    /// poll instead of two `RefCell` borrows.
    buffered: Cell<bool>,
    reap_pending: Cell<bool>,
    /// Every live task's waker, so that dropping the executor reaches idle tasks.
    pub(crate) tasks: RefCell<Slab<Waker>>,
    /// Where the executor is in its shutdown (see `shutdown`).
    pub(crate) stop: Cell<Stop>,
    /// The `run` futures waiting for the shutdown to be done.
    pub(crate) stop_waiters: RefCell<Vec<Waker>>,
    /// A turn is in progress on this thread (also while dropping).
    pub(crate) running: Cell<bool>,
    /// Raw clock reading at the start of the current poll.
    pub(crate) poll_started: Cell<u64>,
    /// Raw clock reading at the end of the last poll and the poll's length,
    /// taken by the task's own future as it returns (the one clock read per
    /// poll), for the loop to pick up.
    poll_ended: Cell<Option<(u64, u64)>>,
    /// Executor-clock nanoseconds as of the last clock read.
    now: Cell<u64>,
    /// Raw reading that executor-clock nanoseconds count from.
    origin: u64,
    /// Queue and group of the task being polled: where `clockworker::spawn`
    /// puts a task, and the group a spawned task inherits.
    polling: Cell<Option<Polling>>,
    /// Data pointer of the waker the `run_until` future is polled with,
    /// while it is: with the task's waker, how a nested `run_until` tells
    /// being awaited from being blocked on (see `RunUntil::poll`).
    pub(crate) until_waker: Cell<*const ()>,
    /// The `Rc` this core lives in, for the queue handles made from inside
    /// a task.
    this: Weak<Core>,
    /// The payload of a task panic to re-raise from the run future.
    pub(crate) panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Wakers of the run futures currently polling this executor; see `run`.
    pub(crate) runners: RefCell<Slab<Waker>>,
    pub(crate) counters: ExecutorCounters,
    /// Raw clock reading at the start of the current turn, for statistics
    /// taken during one (while `running`).
    pub(crate) turn_started: Cell<u64>,
    /// How long the host has waited, and how the last turn ended.
    pub(crate) host: HostState,
    /// Queue delay of the poll in progress, set before it when statistics
    /// are on (not for the runs that drop aborted tasks, which are no polls).
    poll_delay: Cell<Option<u64>>,
    /// The slow-poll threshold, in nanoseconds.
    slow_poll: u64,
    /// A slow poll that just ended, for the loop to report (boxed: moved in
    /// and out of the cell on every poll, it should be one word).
    slow_report: Cell<Option<Box<PollReport>>>,
    pub(crate) hooks: Hooks,
    #[cfg(feature = "metrics")]
    metrics: RefCell<crate::observe::metrics::Publisher>,
}

impl Core {
    fn new(
        queues: Vec<(u32, Box<dyn Scheduler>)>,
        config: Config,
        clock: Clock,
        hooks: Hooks,
        this: Weak<Core>,
    ) -> Self {
        let weights: Vec<u32> = queues.iter().map(|(weight, _)| *weight).collect();
        let weights = &weights[..];
        let origin = clock.raw();
        let config_slow_poll = config.slow_poll;
        let picker = Picker::new(
            weights,
            nanos(config.sched_latency),
            nanos(config.min_slice),
        );
        Core {
            shared: Arc::new(Shared::new()),
            clock,
            config,
            sched: RefCell::new(Sched {
                picker,
                queues: queues
                    .into_iter()
                    .map(|(_, scheduler)| RunQueue::new(scheduler))
                    .collect(),
                preempt: false,
            }),
            wake_buf: RefCell::new(VecDeque::new()),
            reap: RefCell::new(Vec::new()),
            buffered: Cell::new(false),
            reap_pending: Cell::new(false),
            tasks: RefCell::new(Slab::new()),
            stop: Cell::new(Stop::Running),
            stop_waiters: RefCell::new(Vec::new()),
            running: Cell::new(false),
            poll_started: Cell::new(0),
            poll_ended: Cell::new(None),
            now: Cell::new(0),
            origin,
            polling: Cell::new(None),
            until_waker: Cell::new(std::ptr::null()),
            this,
            panic: Cell::new(None),
            runners: RefCell::new(Slab::new()),
            counters: ExecutorCounters::default(),
            turn_started: Cell::new(origin),
            host: HostState::new(),
            poll_delay: Cell::new(None),
            slow_poll: nanos(config_slow_poll),
            slow_report: Cell::new(None),
            #[cfg(feature = "metrics")]
            metrics: RefCell::new(crate::observe::metrics::Publisher::new(
                hooks.queue_names.clone(),
                hooks.metrics_interval,
            )),
            hooks,
        }
    }

    /// Runs `f` with this core installed as the thread's current executor.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        context::enter(self, f)
    }

    /// Calls `f` with the executor running a turn on this thread, if any.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
        context::with_current(f)
    }

    /// The fast path of a wake: if the task's executor is running a turn on
    /// this thread, put the task straight into its queue. Otherwise hand the
    /// runnable back, for the inbox.
    #[inline]
    pub(crate) fn wake_local(runnable: Runnable) -> Result<(), Runnable> {
        let mut runnable = Some(runnable);
        Core::with_current(|core| {
            if let Some(r) = runnable.take_if(|r| Arc::ptr_eq(&core.shared, &r.metadata().shared)) {
                bump(&core.counters.local_wakes, 1);
                core.accept(r);
            }
        });
        runnable.map_or(Ok(()), Err)
    }

    pub(crate) fn spawn<F>(
        &self,
        queue: usize,
        future: F,
        options: SpawnOptions,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if !self.accepts_local_spawn() {
            return JoinHandle::cancelled();
        }
        let group = match options.group {
            GroupChoice::Inherit => self.polling.get().and_then(|polling| polling.group),
            GroupChoice::Ungrouped => None,
            GroupChoice::Group(group) => Some(group),
        };
        // Read now, not taken from the poll's start: a deadline counts from
        // the moment of the spawn.
        let arrival = self.now_nanos();
        let mut meta = TaskMeta::new(&self.shared, queue, location);
        meta.arrival = AtomicU64::new(arrival);
        meta.deadline = options
            .deadline
            .map(|within| arrival.saturating_add(nanos(within)));
        meta.name = options.name;
        {
            let Ok(mut sched) = self.sched.try_borrow_mut() else {
                // Only a scheduler's own method runs while the scheduling
                // state is borrowed; its panic is caught and re-raised from
                // the run future.
                panic!("a Scheduler must not spawn tasks from its own methods");
            };
            let run_queue = &mut sched.queues[queue];
            run_queue.counters.spawned();
            meta.group = group.map(|group| {
                let state = run_queue.group(group);
                state.live.fetch_add(1, Ordering::Relaxed);
                state
            });
        }
        // A task spawned here is reachable by no other thread until this
        // returns its handle: its slot is set as it is created.
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        meta.slot = AtomicUsize::new(entry.key());
        let (runnable, task) = task::spawn(meta, future);
        entry.insert(runnable.waker());
        drop(tasks);
        self.accept(runnable);
        if !self.running.get() {
            // Spawned from outside a turn (e.g. by another task of the host):
            // the run future may be parked.
            self.shared.wake_host();
        }
        JoinHandle::new(task)
    }

    /// Takes in a task spawned through a `Spawner` and queues it.
    fn admit(&self, runnable: Runnable) {
        self.register_remote(&runnable);
        self.accept(runnable);
    }

    /// Takes in a task spawned through a `Spawner`: gives it a slot in the
    /// live-task index (the executor's drop reaches it through there), stamps
    /// its arrival, and counts it. Its queue may be one a spawner added after
    /// this drain looked at the commands: the command is visible now (it was
    /// queued before the key could be found), so apply it. A queue still
    /// unknown cannot happen; the task would be cancelled.
    fn register_remote(&self, runnable: &Runnable) {
        let meta = runnable.metadata();
        if meta.queue >= self.queue_count() {
            self.apply_commands();
            if meta.queue >= self.queue_count() {
                meta.aborted.store(true, Ordering::Relaxed);
                return;
            }
        }
        let slot = self.tasks.borrow_mut().insert(runnable.waker());
        // Pairs with `JoinHandle::abort`, which stores `aborted` and then
        // loads `slot`: either the abort finds the slot (and wakes it), or
        // `accept`, after this, finds the flag (and reaps the task). The
        // load here orders `accept`'s relaxed load after the store.
        meta.slot.store(slot, Ordering::SeqCst);
        let _ = meta.aborted.load(Ordering::SeqCst);
        meta.arrival.store(self.now.get(), Ordering::Relaxed);
        self.sched.borrow_mut().queues[meta.queue]
            .counters
            .spawned();
    }

    /// Moves every pending wake into its queue. Aborted tasks are set aside to
    /// be reaped by the loop. Runs no user code.
    #[inline]
    pub(crate) fn drain_wakes(&self) {
        if self.shared.has_remote_wakes() {
            let mut wakes = 0;
            self.shared.drain(
                |runnable| {
                    wakes += 1;
                    self.accept(runnable);
                },
                |slot| self.wake_slot(slot),
            );
            bump(&self.counters.remote_wakes, wakes);
            // After the flag was cleared (in `drain`): a command or spawn
            // queued after these pops notifies again.
            self.apply_commands();
            self.shared.drain_spawns(|runnable| self.admit(runnable));
        }
        if self.buffered.replace(false) {
            loop {
                let next = self.wake_buf.borrow_mut().pop_front();
                match next {
                    Some(runnable) => self.accept(runnable),
                    None => break,
                }
            }
        }
    }

    /// Wakes the live task in `slot`, if any: a task whose abort was
    /// requested from another thread, or one a Tokio resource refused for
    /// want of budget. The slot's task may have ended since, and the slot
    /// may now hold another task: that task gets a spurious wake, which
    /// futures tolerate.
    pub(crate) fn wake_slot(&self, slot: usize) {
        let waker = self.tasks.borrow().get(slot).cloned();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes a runnable task: into its queue, or, if aborted, into the reap
    /// list. Runs no user code, so it may run inside a wake.
    #[inline]
    fn accept(&self, runnable: Runnable) {
        if runnable.metadata().aborted.load(Ordering::Relaxed) {
            self.reap.borrow_mut().push(runnable);
            self.reap_pending.set(true);
            return;
        }
        runnable
            .metadata()
            .runnable_since
            .store(self.now.get(), Ordering::Relaxed);
        match self.sched.try_borrow_mut() {
            Ok(mut sched) => {
                if let Err(panic) = sched.push(runnable) {
                    drop(sched);
                    self.stash_panic(panic);
                }
            }
            // Not reachable today (the scheduling state is never borrowed
            // across user code), but a wake must never panic: buffer it.
            Err(_) => {
                self.wake_buf.borrow_mut().push_back(runnable);
                self.buffered.set(true);
            }
        }
    }

    /// Charges a poll's nanoseconds to the current slice.
    #[inline]
    pub(crate) fn charge(&self, elapsed: u64) {
        self.sched.borrow_mut().picker.charge(elapsed);
    }

    /// The next task to poll: from the current slice's queue, or from the
    /// queue the picker starts a slice for. `None` when nothing is runnable.
    #[inline]
    pub(crate) fn next_runnable(&self) -> Option<Runnable> {
        let mut sched = self.sched.borrow_mut();
        let sched = &mut *sched;
        loop {
            if let Some(queue) = sched.picker.current() {
                let end = if sched.queues[queue].is_empty() {
                    Some(SliceEnd::Empty)
                } else if sched.preempt {
                    Some(SliceEnd::Preempted)
                } else if sched.picker.slice_expired(0) && !sched.picker.renew_if_not_ahead() {
                    Some(SliceEnd::Expired)
                } else {
                    None
                };
                match end {
                    None => match sched.queues[queue].pop(&self.shared) {
                        Ok(Some(runnable)) => return Some(runnable),
                        Err(panic) => {
                            // The loop re-raises it at once; the slice
                            // stays, for the next turn to pop again.
                            self.stash_panic(panic);
                            return None;
                        }
                        // The scheduler lost tasks (they were cancelled as it
                        // dropped them): the queue is empty after all.
                        Ok(None) => {
                            sched.picker.end_slice(SliceEnd::Empty);
                        }
                    },
                    Some(end) => {
                        if end == SliceEnd::Preempted {
                            sched.queues[queue].counters.preemptions += 1;
                        }
                        sched.picker.end_slice(end);
                    }
                }
            }
            sched.preempt = false;
            let picked = sched.picker.pick()?;
            sched.queues[picked].counters.slices += 1;
        }
    }

    /// Whether the running task should yield: the host is due (the turn has
    /// held the thread for `driver_yield`), its slice is over, or a queue
    /// that should run first has work. Called by `yield_maybe`, during a poll.
    pub(crate) fn should_yield(&self) -> bool {
        let raw = self.clock.raw();
        let in_poll = self.clock.nanos_between(self.poll_started.get(), raw);
        // Wakes and spawns taken in here are stamped with this reading, not
        // the poll's start: a long poll that yields as soon as a task
        // arrives must not make that task look as if it waited the whole
        // poll. (The loop moves the clock on by the poll's length after it.)
        let poll_start = self.now.get();
        self.now.set(poll_start + in_poll);
        self.drain_wakes();
        self.now.set(poll_start);
        // The host's reactor is the only way a socket's readiness reaches
        // the executor: waiting for a task to be preempted would never end
        // when only the host knows that a task should preempt it.
        let held = self.clock.nanos_between(self.host.held_since.get(), raw);
        if held >= nanos(self.config.driver_yield) {
            return true;
        }
        let sched = self.sched.borrow();
        if sched.preempt {
            return true;
        }
        if sched.picker.current().is_none() {
            // Not inside a slice (e.g. the `run_until` future itself): yield
            // if any task is waiting for the thread.
            return sched.picker.runnable() > 0;
        }
        sched.picker.slice_expired(in_poll)
    }

    /// Whether wakes or cancellations are waiting outside the queues.
    pub(crate) fn has_pending_work(&self) -> bool {
        self.reap_pending.get() || self.buffered.get() || self.shared.has_remote_wakes()
    }

    /// Runs aborted tasks once more, which drops their futures. Returns
    /// whether there were any.
    #[inline]
    pub(crate) fn reap_aborted(&self) -> bool {
        if !self.reap_pending.replace(false) {
            return false;
        }
        let mut reaped = false;
        loop {
            let next = self.reap.borrow_mut().pop();
            match next {
                Some(runnable) => {
                    self.poll_started.set(self.clock.raw());
                    runnable.run();
                    reaped = true;
                }
                None => {
                    // Reaping is nobody's poll.
                    self.poll_ended.set(None);
                    return reaped;
                }
            }
        }
    }

    /// Called by a task's future at the end of every poll: takes the poll's
    /// one clock reading, charges the poll to the task and its group, tells
    /// the queue's scheduler, and, if the task ended, frees what it held.
    pub(crate) fn poll_done(&self, meta: &TaskMeta, ending: Option<Ending>) {
        let now = self.clock.raw();
        let elapsed = self.clock.nanos_between(self.poll_started.get(), now);
        self.poll_ended.set(Some((now, elapsed)));
        meta.add_service(elapsed);
        let Ok(mut sched) = self.sched.try_borrow_mut() else {
            return;
        };
        let queue = &mut sched.queues[meta.queue];
        // A run that cancels the task drops its future unpolled: no poll.
        let delay = self.poll_delay.take();
        if let Some(delay) = delay.filter(|_| ending != Some(Ending::Cancelled)) {
            let slow = elapsed >= self.slow_poll;
            queue.counters.polled(delay, elapsed, slow);
            if slow {
                let report = meta.report(Duration::from_nanos(elapsed));
                self.slow_report.set(Some(Box::new(report)));
            }
        }
        let info = TaskInfo::of(meta);
        let told = queue.tell(|scheduler| scheduler.polled(&info, elapsed, ending.is_some()));
        let Some(ending) = ending else {
            drop(sched);
            if let Err(panic) = told {
                self.stash_panic(panic);
            }
            return;
        };
        queue.counters.ended(ending);
        let gone_group = meta.group.as_ref().filter(|group| {
            let last = group.live.fetch_sub(1, Ordering::Relaxed) == 1;
            if last {
                queue.groups.remove(&group.id);
            }
            last
        });
        let told = told.and_then(|()| {
            queue.tell(|scheduler| {
                scheduler.task_gone(meta.id);
                if let Some(group) = gone_group {
                    scheduler.group_gone(group.id);
                }
            })
        });
        drop(sched);
        if let Err(panic) = told {
            self.stash_panic(panic);
        }
        let waker = self
            .tasks
            .borrow_mut()
            .try_remove(meta.slot.load(Ordering::Relaxed));
        drop(waker);
    }

    /// Notes the queue delay of `meta`'s poll, about to start.
    #[inline]
    pub(crate) fn set_poll_delay(&self, meta: &TaskMeta) {
        let since = meta.runnable_since.load(Ordering::Relaxed);
        self.poll_delay
            .set(Some(self.now.get().saturating_sub(since)));
    }

    /// Tells the slow-poll hook (the user's callback, the `tracing` log) of
    /// the poll that just ended, if it was slow.
    #[inline]
    pub(crate) fn report_slow_poll(&self) {
        let Some(report) = self.slow_report.take() else {
            return;
        };
        if let Some(callback) = &self.hooks.on_slow_poll {
            callback(&report);
        }
    }

    /// A snapshot of the executor-wide statistics.
    pub(crate) fn stats(&self) -> ExecutorStats {
        let now = self.clock.raw();
        let uptime = self.clock.nanos_between(self.origin, now);
        // Taken during a turn (from a task): the turn so far is busy too.
        let turn = if self.running.get() {
            self.clock.nanos_between(self.turn_started.get(), now)
        } else {
            0
        };
        let live = self.tasks.borrow().len();
        let sched = self.sched.borrow();
        let queues = sched.queues.iter().map(|q| (&q.counters, q.len()));
        self.counters.snapshot(uptime, turn, live, queues)
    }

    /// Publishes the statistics through the `metrics` facade.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        let stats = self.stats();
        let queues: Vec<QueueStats> = (0..self.queue_count())
            .map(|index| self.queue_stats(index))
            .collect();
        let mut publisher = self.metrics.borrow_mut();
        publisher.last = stats.uptime.as_nanos().try_into().unwrap_or(u64::MAX);
        publisher.publish(&stats, &queues);
    }

    /// Publishes metrics if their interval has passed (at the end of a turn).
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics_if_due(&self) {
        let due = {
            let publisher = self.metrics.borrow();
            publisher
                .interval
                .is_some_and(|interval| self.now.get().saturating_sub(publisher.last) >= interval)
        };
        if due {
            self.publish_metrics();
        }
    }

    /// A snapshot of the statistics of the queue at `index`.
    pub(crate) fn queue_stats(&self, index: usize) -> QueueStats {
        let sched = self.sched.borrow();
        let queue = &sched.queues[index];
        queue
            .counters
            .snapshot(sched.picker.weight(index), queue.len())
    }

    /// Takes the clock reading of the poll that just ended, if its future
    /// took one (the executor's own future always does).
    #[inline]
    pub(crate) fn take_poll_end(&self) -> Option<(u64, u64)> {
        self.poll_ended.take()
    }

    /// Moves the executor clock to `raw` (a turn starts).
    pub(crate) fn set_now_raw(&self, raw: u64) {
        self.now.set(self.clock.nanos_between(self.origin, raw));
    }

    /// Moves the executor clock forward by a poll's length.
    #[inline]
    pub(crate) fn advance_now(&self, elapsed: u64) {
        self.now.set(self.now.get() + elapsed);
    }

    /// Notes the queue and group of the task about to be polled (`None`
    /// after the poll).
    #[inline]
    pub(crate) fn set_polling(&self, polling: Option<Polling>) {
        self.polling.set(polling);
    }

    /// Whether `waker` is the one the executor is polling with right now: the
    /// polled task's own, or the `run_until` future's between tasks. A
    /// future polled with any other waker during a turn is polled by
    /// something else inside the turn (a foreign `block_on`, or a combinator
    /// that wraps wakers).
    pub(crate) fn polls_with(&self, waker: &Waker) -> bool {
        match self.polling.get() {
            Some(polling) => self
                .tasks
                .borrow()
                .get(polling.slot)
                .is_some_and(|own| own.data() == waker.data()),
            None => self.until_waker.get() == waker.data(),
        }
    }

    /// A handle to the queue of the task being polled, if a task is.
    pub(crate) fn polling_queue(&self) -> Option<QueueHandle> {
        let polling = self.polling.get()?;
        Some(QueueHandle::new(self.this.clone(), polling.queue))
    }

    /// Hands a task that a scheduler dropped back to the executor, which
    /// cancels it (its abort flag is set): through the fast path during a
    /// turn, else through the inbox. It is never dropped unrun.
    pub(crate) fn reap_later(runnable: Runnable) {
        crate::runtime::inbox::schedule(runnable);
    }

    pub(crate) fn propagates_panics(&self) -> bool {
        self.config.panic_on_task_panic
    }

    /// Keeps a panic's payload for the run future to re-raise after the
    /// poll in progress. The first one is kept; a later one is dropped
    /// (under `catch_unwind`: a payload may panic on drop too).
    pub(crate) fn stash_panic(&self, payload: Box<dyn Any + Send>) {
        match self.panic.take() {
            None => self.panic.set(Some(payload)),
            Some(first) => {
                self.panic.set(Some(first));
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
            }
        }
    }

    /// Executor-clock nanoseconds now (a fresh clock reading).
    pub(crate) fn now_nanos(&self) -> u64 {
        self.clock.nanos_between(self.origin, self.clock.raw())
    }

    /// Adds a queue's label to the metrics publisher.
    #[cfg(feature = "metrics")]
    pub(crate) fn add_metrics_label(&self, name: String) {
        self.metrics.borrow_mut().add_queue(name);
    }

    /// Cancels every live task: wakes them all (so that idle ones are
    /// queued), then runs each once with the abort flag set, which drops its
    /// future on this thread and resolves its handle to `Cancelled`. A task
    /// woken by another thread that has not reached the inbox yet is missed;
    /// it is cancelled when it lands. Returns whether it cancelled anything.
    pub(crate) fn cancel_live(&self) -> bool {
        let wakers: Vec<Waker> = self.tasks.borrow().iter().map(|(_, w)| w.clone()).collect();
        wakers.into_iter().for_each(Waker::wake);
        let mut cancelled = false;
        while self.cancel_queued() {
            cancelled = true;
        }
        cancelled
    }

    /// Runs every queued, woken, aborted and newly spawned task once with
    /// the abort flag set, which drops their futures. Returns whether it ran
    /// anything.
    fn cancel_queued(&self) -> bool {
        let mut batch: Vec<Runnable> = Vec::new();
        self.shared.drain(|runnable| batch.push(runnable), |_| {});
        self.shared.drain_spawns(|runnable| {
            self.register_remote(&runnable);
            batch.push(runnable);
        });
        batch.extend(self.wake_buf.borrow_mut().drain(..));
        batch.append(&mut self.reap.borrow_mut());
        for queue in &mut self.sched.borrow_mut().queues {
            loop {
                match queue.pop(&self.shared) {
                    Ok(Some(runnable)) => batch.push(runnable),
                    Ok(None) => break,
                    Err(panic) => {
                        self.stash_panic(panic);
                        break;
                    }
                }
            }
        }
        let ran = !batch.is_empty();
        for runnable in batch {
            runnable.metadata().aborted.store(true, Ordering::Relaxed);
            runnable.run();
        }
        ran
    }
}

impl Drop for Core {
    /// Ends every live task: wakes them all (so idle ones are scheduled), then
    /// runs each once with the abort flag set, which drops its future on this
    /// thread and resolves its handle to `Cancelled`.
    fn drop(&mut self) {
        let core = &*self;
        core.running.set(true);
        core.stop.set(Stop::Cancelling);
        core.shared.close_spawns();
        core.shared.close_commands();
        core.shared.set_stopped();
        core.enter(|| {
            let mut stalled_since = None;
            loop {
                let live = core.tasks.borrow().len();
                if live == 0 && core.shared.is_empty() {
                    break;
                }
                core.cancel_live();
                if core.tasks.borrow().len() < live {
                    stalled_since = None;
                    continue;
                }
                // A wake from another thread has marked a task scheduled but
                // not pushed it into the inbox yet; it lands within moments.
                // Every task ends through its own future, so a task that never
                // lands would be a bug: rather than hang, give up after a
                // generous wait and leak it.
                let since = *stalled_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > STALLED_DROP_LIMIT {
                    break;
                }
                std::thread::yield_now();
            }
        });
    }
}

/// How long dropping the executor waits for a task woken by another thread to
/// arrive in the inbox before giving up on it.
const STALLED_DROP_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);
