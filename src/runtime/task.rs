//! Tasks: one allocation per spawn, and the wrapper future that decides how a
//! task ends.
//!
//! A task is an [`async_task`] allocation holding, in one block: async-task's
//! header (state and reference count), our [`TaskMeta`], the schedule function
//! (a plain function: it finds the executor through the metadata), and the future, whose memory
//! is reused for the output. Spawning allocates nothing else.
//!
//! # How a task ends
//!
//! The future async-task runs is a [`TaskFuture`] around the user's future. It
//! turns every ending into an output, so that the [`JoinHandle`] always gets
//! one and the task is never closed without one:
//!
//! | ending                         | output                        |
//! |--------------------------------|-------------------------------|
//! | the future completes           | `Ok(value)`                   |
//! | the future panics              | `Err(JoinError::Panic(..))`   |
//! | `abort()`, or executor dropped | `Err(JoinError::Cancelled)`   |
//!
//! Cancellation is a flag in the metadata. The executor runs a cancelled task
//! once more; the wrapper sees the flag, drops the user's future *without
//! polling it* and completes. Dropping the executor does the same for every
//! live task. So the executor never drops a [`Runnable`]: it always runs it,
//! and futures are dropped on the executor's thread, inside the loop.
//!
//! When a task ends, the wrapper tells the executor (through the thread's
//! current executor) which slot of the live-task index to free, and how the
//! task ended.
//!
//! [`JoinHandle`]: crate::JoinHandle
//! [`Shared`]: crate::runtime::inbox::Shared

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::base::error::{JoinError, PanicError, panic_message};
use crate::base::group::{GroupState, SoloClock};
use crate::base::id::{TaskEnding, TaskId, TaskName};
use crate::observe::slow::PollReport;
use crate::runtime::Core;
use crate::runtime::inbox::{self, Shared};
use crate::runtime::site::Site;

/// Per-task data, stored in the task's allocation.
///
/// It must be `Sync` (wakers and join handles reach it from any thread); the
/// fields the executor alone writes are plain values set at spawn.
///
/// Every byte here is paid by every task (`benches/memory.rs`): the slot,
/// the queue, the abort flag and the state share one word, and what only
/// some tasks have is behind `site`.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) id: TaskId,
    /// Slot of the task in the executor's live-task index, set when the
    /// executor takes the task in: at once for a task spawned on its thread,
    /// when it drains the spawn for one spawned through a `Spawner`
    /// ([`UNREGISTERED`] until then). See `JoinHandle::abort` for why it is
    /// written and read with `SeqCst`. `u32::MAX` stands for `UNREGISTERED`:
    /// an executor holds fewer live tasks than [`MAX_LIVE`].
    slot: AtomicU32,
    /// Index of the task's queue in the executor (fewer than
    /// [`MAX_QUEUES`] queues).
    queue: u16,
    /// Set by `JoinHandle::abort` and by the executor's drop: the next run
    /// drops the future instead of polling it.
    pub(crate) aborted: AtomicBool,
    /// Whether the task is queued to run ([`RUNNABLE`]) or was polled and
    /// not woken since ([`POLLED`]: it waits for a wake), for the task
    /// dump. Written by the executor's thread only; it fills what was
    /// padding.
    pub(crate) state: AtomicU8,
    /// The executor's thread-safe half, where wakes go. Kept here rather than
    /// in the schedule function so that the schedule function is zero-sized:
    /// async-task then skips a waker clone and drop around every schedule.
    pub(crate) shared: Arc<Shared>,
    /// Executor-clock nanoseconds at spawn (for a task spawned through a
    /// `Spawner`: when the executor took it in). Written before the task is
    /// first queued, by the executor's thread.
    pub(crate) arrival: AtomicU64,
    /// Executor-clock nanoseconds when `state` last changed: when the task
    /// last became runnable (what its queue delay counts from) or, once it
    /// was polled, when that poll started (how long a waiting task has
    /// waited). Written by the executor's thread only, like `service`.
    pub(crate) runnable_since: AtomicU64,
    /// CPU time of the task's polls, in nanoseconds.
    pub(crate) service: AtomicU64,
    /// How many times the task was polled, for the task dump.
    pub(crate) polls: AtomicU64,
    /// The task's virtual time for `GroupFair`, when it has no group.
    pub(crate) fair: SoloClock,
    /// Where the task was spawned, and what only some tasks have (a name,
    /// a deadline, a group), in one word.
    pub(crate) site: Site,
}

/// [`TaskMeta::state`] of a task in a queue (or on its way to one).
pub(crate) const RUNNABLE: u8 = 0;
/// [`TaskMeta::state`] of a task polled and not woken since: waiting for a
/// wake.
pub(crate) const POLLED: u8 = 1;

/// The `slot` of a task the executor has not taken in yet.
pub(crate) const UNREGISTERED: usize = usize::MAX;

/// The most tasks an executor holds live at once: slots are stored in four
/// bytes (`u32::MAX` is [`UNREGISTERED`]). Some 600 GiB of tasks; a spawn
/// past it is refused (its handle reports `Cancelled`).
pub(crate) const MAX_LIVE: usize = u32::MAX as usize;

impl TaskMeta {
    /// The metadata of a new task of `queue`, numbered by `shared`: no group,
    /// no deadline, no name, and not registered with the executor yet.
    pub(crate) fn new(
        shared: &Arc<Shared>,
        queue: usize,
        location: &'static Location<'static>,
    ) -> Self {
        TaskMeta {
            id: TaskId(shared.next_task_id()),
            queue: u16::try_from(queue)
                .expect("queue indices are below MAX_QUEUES: checked as queues are added"),
            slot: AtomicU32::new(u32::MAX),
            aborted: AtomicBool::new(false),
            state: AtomicU8::new(RUNNABLE),
            shared: Arc::clone(shared),
            arrival: AtomicU64::new(0),
            runnable_since: AtomicU64::new(0),
            service: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            fair: SoloClock::default(),
            site: Site::at(location),
        }
    }

    /// The index of the task's queue.
    #[inline]
    pub(crate) fn queue(&self) -> usize {
        usize::from(self.queue)
    }

    /// The task's slot in the live-task index, [`UNREGISTERED`] until the
    /// executor takes it in.
    #[inline]
    pub(crate) fn slot(&self, order: Ordering) -> usize {
        match self.slot.load(order) {
            u32::MAX => UNREGISTERED,
            slot => slot as usize,
        }
    }

    /// Records the task's slot (below [`MAX_LIVE`]).
    #[inline]
    pub(crate) fn set_slot(&self, slot: usize, order: Ordering) {
        debug_assert!(slot < MAX_LIVE);
        self.slot.store(slot as u32, order);
    }

    /// The metadata of a task taken in as it is made, at `slot` (below
    /// [`MAX_LIVE`]): a plain write, the task being reachable by no other
    /// thread yet.
    pub(crate) fn in_slot(mut self, slot: usize) -> Self {
        debug_assert!(slot < MAX_LIVE);
        *self.slot.get_mut() = slot as u32;
        self
    }

    /// The task's group in its queue, if any.
    #[inline]
    pub(crate) fn group(&self) -> Option<&Arc<GroupState>> {
        self.site.extras()?.group.as_ref()
    }

    /// The name given at spawn, if any.
    pub(crate) fn name(&self) -> Option<&TaskName> {
        self.site.extras()?.name.as_ref()
    }

    /// Executor-clock nanoseconds by which the task should finish, if it
    /// was given a deadline.
    pub(crate) fn deadline(&self) -> Option<u64> {
        self.site.extras()?.deadline
    }

    /// A report of this task's poll that lasted `duration`, for the
    /// slow-poll hook and the watchdog.
    pub(crate) fn report(&self, duration: std::time::Duration) -> PollReport {
        PollReport {
            queue: self.queue(),
            task: self.id,
            name: self.name().cloned(),
            location: self.site.location(),
            duration,
        }
    }

    /// The service of the task's group, or the task's own if ungrouped.
    pub(crate) fn group_service(&self) -> u64 {
        match self.group() {
            Some(group) => group.service.load(Ordering::Relaxed),
            None => self.service.load(Ordering::Relaxed),
        }
    }

    /// Records, for the task dump, a poll that started at executor time
    /// `started`: the task is polled once more, and from now on it waits
    /// for a wake, since then, unless a wake during the poll queues it
    /// again (`Core::accept`, which async-task calls as the run ends).
    /// Written on the executor's thread only: plain stores.
    #[inline]
    pub(crate) fn polled(&self, started: u64) {
        self.runnable_since.store(started, Ordering::Relaxed);
        self.state.store(POLLED, Ordering::Relaxed);
        let polls = self.polls.load(Ordering::Relaxed);
        self.polls.store(polls + 1, Ordering::Relaxed);
    }

    /// Charges a poll's time to the task and its group.
    #[inline]
    pub(crate) fn add_service(&self, nanos: u64) {
        let service = self.service.load(Ordering::Relaxed);
        self.service
            .store(service.saturating_add(nanos), Ordering::Relaxed);
        if let Some(group) = self.group() {
            group.add_service(nanos);
        }
    }
}

pub(crate) type Runnable = async_task::Runnable<TaskMeta>;
pub(crate) type Task<T> = async_task::Task<Output<Result<T, JoinError>>, TaskMeta>;

/// A task's output as async-task holds it, until the `JoinHandle` takes it.
///
/// When nobody will take it (the handle was dropped: the task is
/// detached), async-task drops the output as the task completes, inside a
/// guard that aborts the process if that drop panics. A user's output may
/// panic on drop (and so may a panic payload inside `JoinError::Panic`):
/// this wrapper drops it under `catch_unwind` instead, and the panic is
/// swallowed, as Tokio does for a detached task's output. Nobody is left to
/// report it to.
pub(crate) struct Output<T>(Option<T>);

impl<T> Output<T> {
    fn new(value: T) -> Self {
        Output(Some(value))
    }

    /// The output, for the `JoinHandle`.
    pub(crate) fn into_inner(mut self) -> T {
        self.0
            .take()
            .expect("an output is taken only once, by its JoinHandle")
    }
}

impl<T> Drop for Output<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
        }
    }
}

/// Allocates a task. The returned runnable is scheduled (ready to run); the
/// caller owns it and decides where it goes.
pub(crate) fn spawn<F>(meta: TaskMeta, future: F) -> (Runnable, Task<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    // SAFETY: `spawn_unchecked` asks, for a future that is not `Send`, that its
    // `Runnable` is only run and dropped on the thread that spawned it, and
    // for one that is, nothing more than `spawn` would. Tasks are spawned in
    // two ways:
    //
    // - On the executor's thread (the executor and its queue handles are
    //   `!Send`), with any future. The executor runs every `Runnable` there
    //   and never drops one unrun: wakes from other threads only *move* the
    //   `Runnable` into the executor's inbox, which never refuses a push and
    //   is emptied on the executor's thread, including when the executor is
    //   dropped (see `Core::drop`). An executor runs only its own
    //   `Runnable`s: the one way another's can reach it, a user's
    //   `Scheduler` handing out a `ReadyTask` it got from elsewhere
    //   (`ReadyTask` is `Send`), is checked in `RunQueue::pop`, which moves
    //   such a task to its own executor's inbox instead. A `ReadyTask`
    //   dropped anywhere goes to its executor's inbox too (aborted).
    // - On any thread through a `Spawner`. Its `spawn` takes `Send` futures
    //   only. Its `spawn_with` passes a future that holds only a `Send`
    //   closure until its first poll, which builds the `!Send` future inside
    //   it: that poll, and every later poll and drop, happen on the
    //   executor's thread, as above. The one run that may happen on the
    //   spawning thread is that of a spawn the executor refused, which is
    //   aborted first, so it drops the future unpolled, while it holds only
    //   the closure.
    //
    // The schedule function is a plain `fn`, so wakers may be used
    // anywhere. The future borrows only the task's own metadata, which
    // async-task keeps alive as long as the future.
    //
    // We use it instead of `spawn_local` for two things `spawn_local` cannot
    // give: the wrapper reads the abort flag from its metadata without an
    // extra allocation, and polls skip `spawn_local`'s per-poll thread check.
    unsafe {
        async_task::Builder::new()
            .metadata(meta)
            .spawn_unchecked(wrap(future), inbox::schedule)
    }
}

/// The closure async-task calls with the task's metadata to build its future.
fn wrap<'m, F>(future: F) -> impl FnOnce(&'m TaskMeta) -> TaskFuture<'m, F> {
    move |meta| TaskFuture {
        meta,
        future: Some(future),
    }
}

pin_project! {
    /// The future async-task runs: the user's future plus the rules above.
    struct TaskFuture<'m, F> {
        meta: &'m TaskMeta,
        // `None` once the user's future has been dropped.
        #[pin]
        future: Option<F>,
    }
}

impl<F: Future> Future for TaskFuture<'_, F> {
    type Output = Output<Result<F::Output, JoinError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let meta: &TaskMeta = this.meta;
        let mut future = this.future;
        // Relaxed is enough: the store in `abort` is followed by a wake, whose
        // read-modify-write of the task state orders it before this run.
        let aborted = meta.aborted.load(Ordering::Relaxed);
        // User code runs in here: the future's `poll`, and its `Drop`, which
        // may panic too. Either way the task ends with an output.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if aborted {
                future.set(None);
                return Poll::Ready(None);
            }
            let Some(running) = future.as_mut().as_pin_mut() else {
                // Not reachable: async-task never polls a completed future.
                return Poll::Pending;
            };
            let value = std::task::ready!(running.poll(cx));
            future.set(None);
            Poll::Ready(Some(value))
        }));
        match outcome {
            Ok(Poll::Pending) => {
                Core::with_current(|core| core.poll_done(meta, None));
                Poll::Pending
            }
            Ok(Poll::Ready(Some(value))) => finish(meta, TaskEnding::Completed, Ok(value)),
            Ok(Poll::Ready(None)) => finish(meta, TaskEnding::Cancelled, Err(JoinError::Cancelled)),
            Err(payload) => {
                // The future panicked in `poll` (and is dropped here) or in
                // `Drop` (and is gone: an assignment whose drop unwinds still
                // stores the new value). A second panic from this drop is
                // swallowed: the first one is the one to report.
                if future.is_some() {
                    let _ = catch_unwind(AssertUnwindSafe(|| future.set(None)));
                }
                let error = panic_error(meta, payload);
                finish(meta, TaskEnding::Panicked, Err(JoinError::Panic(error)))
            }
        }
    }
}

/// The error a panicked task's handle reports. When the executor propagates
/// panics, it re-raises the original payload from its run future, and the
/// handle keeps the message.
fn panic_error(meta: &TaskMeta, payload: Box<dyn std::any::Any + Send>) -> PanicError {
    match with_own_core(meta, |core| core.config.panic_on_task_panic) {
        Some(true) => {
            let error = PanicError::from_message(panic_message(payload.as_ref()));
            with_own_core(meta, |core| core.stash_panic(payload));
            error
        }
        _ => PanicError::new(payload),
    }
}

fn finish<T>(meta: &TaskMeta, ending: TaskEnding, output: T) -> Poll<Output<T>> {
    with_own_core(meta, |core| core.poll_done(meta, Some(ending)));
    Poll::Ready(Output::new(output))
}

/// Calls `f` with the task's own executor, if it is running a turn on this
/// thread and has taken the task in. A spawn refused by a shut-down
/// executor ends (cancelled) on the spawning thread, maybe inside another
/// executor's turn, which must not count it.
fn with_own_core<R>(meta: &TaskMeta, f: impl FnOnce(&Core) -> R) -> Option<R> {
    Core::with_current(|core| {
        let own =
            Arc::ptr_eq(&core.shared, &meta.shared) && meta.slot(Ordering::Relaxed) != UNREGISTERED;
        own.then(|| f(core))
    })
    .flatten()
}
