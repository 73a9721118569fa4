//! The per-queue scheduler trait: which runnable task of a queue runs next.
//!
//! The queue picker chooses a queue; the queue's [`Scheduler`] chooses the
//! task. A scheduler holds the queue's runnable tasks as [`ReadyTask`]s: the
//! executor [`push`](Scheduler::push)es a task when it becomes runnable and
//! [`pop`](Scheduler::pop)s the next one to poll. It is told how long each
//! poll took ([`polled`](Scheduler::polled)) and when a task or a group is gone,
//! to free any state it keeps. See [`Scheduler`] for the built-ins and an
//! example of a scheduler of your own.

use std::fmt;
use std::sync::atomic::Ordering;

use crate::base::group::{GroupState, SoloClock};
use crate::base::id::TaskId;
use crate::runtime::task::{Runnable, TaskMeta};

/// Orders the runnable tasks of one queue.
///
/// The executor pushes a task when it becomes runnable and pops the next one
/// to poll; it reports every poll ([`polled`](Self::polled)) and tells when a
/// task or a group is gone.
///
/// | scheduler | order | use it for |
/// |---|---|---|
/// | [`RunnableFifo`](crate::RunnableFifo) (default) | when the task became runnable | throughput; a woken task goes to the back |
/// | [`ArrivalFifo`](crate::ArrivalFifo) | when the task was spawned | old requests first, also across sleeps |
/// | [`LAS`](crate::LAS) | least attained service (per group) | tail latency: short jobs overtake long ones |
/// | [`Edf`](crate::Edf) | earliest deadline | requests with deadlines; others after, FIFO |
/// | [`GroupFair`](crate::GroupFair) | least weighted service of the group | fairness between tenants / streams |
///
/// Every built-in operation is O(log n) or better in the queue's runnable tasks.
///
/// # Writing your own
///
/// ```
/// use clockworker::{ExecutorBuilder, ReadyTask, Scheduler};
/// use std::collections::VecDeque;
///
/// /// Last in, first out: the most recently woken task runs first.
/// #[derive(Default)]
/// struct Lifo(Vec<ReadyTask>);
///
/// impl Scheduler for Lifo {
///     fn push(&mut self, task: ReadyTask) {
///         self.0.push(task);
///     }
///     fn pop(&mut self) -> Option<ReadyTask> {
///         self.0.pop()
///     }
///     fn len(&self) -> usize {
///         self.0.len()
///     }
/// }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler("stack", 1, Lifo::default())
///     .build()
///     .unwrap();
/// let queue = executor.queue("stack").unwrap();
/// let order = futures::executor::block_on(executor.run_until(async {
///     let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
///     let handles: Vec<_> = (0..3)
///         .map(|i| {
///             let order = order.clone();
///             queue.spawn(async move { order.borrow_mut().push(i) })
///         })
///         .collect();
///     for handle in handles {
///         handle.await.unwrap();
///     }
///     order.take()
/// }));
/// assert_eq!(order, vec![2, 1, 0]);
/// ```
///
/// A scheduler must hand back every task it was given. A task that a
/// scheduler drops instead is cancelled (its handle reports
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled)), never lost. A
/// task that a scheduler hands out but that another executor gave it (two
/// executors sharing a queue through a static, say) is sent back to its own
/// executor, which runs it on its own thread: a task never runs, is dropped
/// or is counted anywhere else.
///
/// A scheduler's methods run in the middle of the executor's bookkeeping.
/// They may panic: the panic is caught, the bookkeeping finished (every
/// task still ends exactly once), and the panic is re-raised from the run
/// future after the poll in progress, whatever
/// [`with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)
/// says, since it is not a task's. They may wake tasks. They must not spawn
/// (through a queue handle or [`spawn`](crate::spawn)): that panics, with a
/// message that says so.
///
/// Times are nanoseconds on the executor's [`Clock`](crate::Clock).
pub trait Scheduler: 'static {
    /// A task of this queue became runnable (spawned, or woken).
    fn push(&mut self, task: ReadyTask);

    /// The task to poll next, if any.
    fn pop(&mut self) -> Option<ReadyTask>;

    /// The number of tasks held.
    fn len(&self) -> usize;

    /// Whether no task is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A task of this queue was polled for `elapsed` nanoseconds; `finished`
    /// if that poll ended it. `task` already includes this poll's service.
    fn polled(&mut self, task: &TaskInfo, elapsed: u64, finished: bool) {
        let _ = (task, elapsed, finished);
    }

    /// A task of this queue ended (completed, panicked or cancelled): forget it.
    fn task_gone(&mut self, task: TaskId) {
        let _ = task;
    }

    /// The last task of a group ended in this queue: forget the group.
    fn group_gone(&mut self, group: u64) {
        let _ = group;
    }

    /// Which of the reports above ([`polled`](Self::polled), and
    /// [`task_gone`](Self::task_gone) with [`group_gone`](Self::group_gone))
    /// this scheduler uses. The executor asks once, when it makes the
    /// queue, and skips the calls the scheduler does not want: a report
    /// is a dynamic call on every poll or every task's end, and `polled`
    /// builds a [`TaskInfo`] for it.
    ///
    /// The default is [`Reports::ALL`], so that a scheduler that overrides
    /// a report is always told. One that overrides none can say
    /// [`Reports::NONE`]; the built-in schedulers do, since they read what
    /// they need from each task's live figures
    /// ([`ReadyTask::service`], [`ReadyTask::group_service`], ...). If this
    /// method panics, the scheduler gets every report.
    fn reports(&self) -> Reports {
        Reports::ALL
    }
}

/// Which reports a [`Scheduler`] wants from the executor (see
/// [`Scheduler::reports`]). Made from [`ALL`](Self::ALL) or
/// [`NONE`](Self::NONE), changed with the `with_` methods (so that a
/// report added later does not break your code):
///
/// ```
/// use clockworker::Reports;
///
/// let polls_only = Reports::NONE.with_polled(true);
/// assert!(polls_only.polled && !polls_only.gone);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Reports {
    /// Call [`Scheduler::polled`] after every poll of the queue's tasks.
    pub polled: bool,
    /// Call [`Scheduler::task_gone`] when a task of the queue ends, and
    /// [`Scheduler::group_gone`] when a group's last task does.
    pub gone: bool,
}

impl Reports {
    /// Every report.
    pub const ALL: Reports = Reports {
        polled: true,
        gone: true,
    };

    /// No report: the scheduler only pushes and pops.
    pub const NONE: Reports = Reports {
        polled: false,
        gone: false,
    };

    /// These reports, with [`Scheduler::polled`] or without it.
    #[must_use]
    pub const fn with_polled(mut self, polled: bool) -> Self {
        self.polled = polled;
        self
    }

    /// These reports, with [`Scheduler::task_gone`] and
    /// [`Scheduler::group_gone`] or without them.
    #[must_use]
    pub const fn with_gone(mut self, gone: bool) -> Self {
        self.gone = gone;
        self
    }
}

/// What a scheduler knows about a task. Times are executor-clock nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// The task's group (the hash of its group key), if it has one.
    pub group: Option<u64>,
    /// When the task was spawned: for a task spawned during the executor's
    /// turn (by another task, the `run_until` future, or a future's `Drop`),
    /// as of the executor's last clock reading (for a task spawned by a
    /// task, the start of the spawning poll), like `runnable_since`; for
    /// one with a deadline, or spawned from outside the turn, the moment of
    /// the spawn; for one spawned through a `Spawner`, when the executor
    /// took it in.
    pub arrival: u64,
    /// When the task last became runnable, as of the executor's last clock
    /// reading (a wake during a poll is stamped with that poll's start, or,
    /// if a `yield_maybe` in the poll takes it in, with that moment).
    pub runnable_since: u64,
    /// CPU time the task's polls have taken so far.
    pub service: u64,
    /// CPU time of all the group's tasks so far (the task's own if ungrouped).
    pub group_service: u64,
    /// The deadline the task was spawned with, if any.
    pub deadline: Option<u64>,
}

impl TaskInfo {
    pub(crate) fn of(meta: &TaskMeta) -> Self {
        TaskInfo {
            id: meta.id,
            group: meta.group().map(|group| group.id),
            arrival: meta.arrival.load(Ordering::Relaxed),
            runnable_since: meta.runnable_since.load(Ordering::Relaxed),
            service: meta.service.load(Ordering::Relaxed),
            group_service: meta.group_service(),
            deadline: meta.deadline(),
        }
    }
}

/// A runnable task, held by a [`Scheduler`] until it is popped.
///
/// Its accessors read the task's live figures, so a scheduler can re-check a
/// task's service when it pops it.
pub struct ReadyTask {
    runnable: Option<Runnable>,
}

impl ReadyTask {
    pub(crate) fn new(runnable: Runnable) -> Self {
        ReadyTask {
            runnable: Some(runnable),
        }
    }

    pub(crate) fn into_runnable(mut self) -> Runnable {
        self.runnable
            .take()
            .expect("a ReadyTask holds its runnable until consumed")
    }

    fn meta(&self) -> &TaskMeta {
        self.runnable
            .as_ref()
            .expect("a ReadyTask holds its runnable until consumed")
            .metadata()
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.meta().id
    }

    /// The task's group, if it has one.
    pub fn group(&self) -> Option<u64> {
        self.meta().group().map(|group| group.id)
    }

    /// When the task was spawned (see [`TaskInfo::arrival`]).
    pub fn arrival(&self) -> u64 {
        self.meta().arrival.load(Ordering::Relaxed)
    }

    /// When the task last became runnable.
    pub fn runnable_since(&self) -> u64 {
        self.meta().runnable_since.load(Ordering::Relaxed)
    }

    /// The task's CPU time so far.
    pub fn service(&self) -> u64 {
        self.meta().service.load(Ordering::Relaxed)
    }

    /// The CPU time of the task's group so far, or the task's own if ungrouped.
    pub fn group_service(&self) -> u64 {
        self.meta().group_service()
    }

    /// The task's deadline, if it was spawned with one.
    pub fn deadline(&self) -> Option<u64> {
        self.meta().deadline()
    }

    pub(crate) fn group_state(&self) -> Option<&GroupState> {
        self.meta().group().map(|group| &**group)
    }

    pub(crate) fn solo_clock(&self) -> &SoloClock {
        &self.meta().fair
    }

    /// All of the above at once.
    pub fn info(&self) -> TaskInfo {
        TaskInfo::of(self.meta())
    }
}

impl fmt::Debug for ReadyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.runnable {
            Some(_) => fmt::Debug::fmt(&self.info(), f),
            None => f.write_str("ReadyTask(consumed)"),
        }
    }
}

impl Drop for ReadyTask {
    /// A scheduler dropped a task instead of handing it back: cancel it
    /// cleanly (the executor runs it once more with the abort flag set).
    fn drop(&mut self) {
        if let Some(runnable) = self.runnable.take() {
            runnable.metadata().aborted.store(true, Ordering::Relaxed);
            // Through the fast path during a turn, else through the inbox:
            // never dropped unrun.
            crate::runtime::inbox::schedule(runnable);
        }
    }
}
