//! The scheduling state: the queue picker and every queue's run queue (its
//! scheduler, its live groups, its counters), and how a runnable task gets
//! in (a wake, local or remote) and out (the next task to poll).

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::base::group::{GroupState, IdHasher};
use crate::base::picker::{Picker, SliceEnd};
use crate::observe::stats::{QueueCounters, bump};
use crate::runtime::Core;
use crate::runtime::inbox::Shared;
use crate::runtime::scheduler::{ReadyTask, Reports, Scheduler};
use crate::runtime::task::{RUNNABLE, Runnable};

/// The scheduling state: the picker and the queues' run queues.
pub(crate) struct Sched {
    pub(super) picker: Picker,
    pub(super) queues: Vec<RunQueue>,
    /// A task became runnable in a queue that should run before the current
    /// slice's queue; the slice ends at the next poll boundary.
    pub(super) preempt: bool,
}

impl Sched {
    #[inline]
    fn push(&mut self, runnable: Runnable) -> Result<(), SchedulerPanic> {
        let queue = runnable.metadata().queue();
        let was_empty = self.queues[queue].is_empty();
        let pushed = self.queues[queue].push(runnable);
        if was_empty && self.picker.wake(queue) {
            self.preempt = true;
        }
        pushed
    }
}

/// The payload of a panic in a user's [`Scheduler`] method.
///
/// A scheduler runs in the middle of the executor's bookkeeping (a spawn, a
/// wake, the end of a poll). A panic unwinding from there would leave a
/// task half-queued or half-ended: a handle that never resolves, a live
/// task that is never dropped. So every call into a scheduler is made under
/// `catch_unwind`, the bookkeeping is finished, and the payload is re-raised
/// from the run future after the poll in progress (or the next one), whatever
/// the task panic policy: it is the executor's configuration that failed,
/// not a task.
pub(crate) type SchedulerPanic = Box<dyn std::any::Any + Send>;

/// One queue's runnable tasks (held by its scheduler) and its live groups.
pub(crate) struct RunQueue {
    policy: Policy,
    /// Tasks held by the scheduler, counted here so that the hot path asks
    /// `is_empty` without a dynamic call.
    len: usize,
    /// Groups with live tasks in this queue.
    pub(super) groups: HashMap<u64, Arc<GroupState>, IdHasher>,
    pub(super) counters: QueueCounters,
}

/// How a queue orders its runnable tasks.
enum Policy {
    /// The default, [`RunnableFifo`](crate::RunnableFifo), kept natively:
    /// the same order with no dynamic call, no [`ReadyTask`] and no guard
    /// against a panic, since no user code runs. (A `RunnableFifo` given to
    /// the builder becomes this too; see `schedulers::custom`.)
    Fifo(VecDeque<Runnable>),
    /// A scheduler object, built in or the user's, and the reports it wants.
    Custom {
        scheduler: Box<dyn Scheduler>,
        reports: Reports,
    },
}

/// The scheduler a queue is made with: `None` for the default FIFO.
pub(crate) type QueueScheduler<S = dyn Scheduler> = Option<Box<S>>;

impl RunQueue {
    pub(crate) fn new(scheduler: QueueScheduler) -> Self {
        let policy = match scheduler {
            None => Policy::Fifo(VecDeque::new()),
            Some(scheduler) => Policy::Custom {
                // Asked once: a `reports` that panics is read as "all".
                reports: catch_unwind(AssertUnwindSafe(|| scheduler.reports()))
                    .unwrap_or(Reports::ALL),
                scheduler,
            },
        };
        RunQueue {
            policy,
            len: 0,
            groups: HashMap::default(),
            counters: QueueCounters::default(),
        }
    }

    /// Hands a task to the scheduler. A panic in the scheduler is caught
    /// and returned (see [`SchedulerPanic`]); the task then either stays
    /// with the scheduler or, if it was dropped, is cancelled.
    #[inline]
    pub(crate) fn push(&mut self, runnable: Runnable) -> Result<(), SchedulerPanic> {
        // Counted first: a scheduler that panics after keeping the task
        // must not strand it behind a count of zero (an over-count is
        // corrected when `pop` finds the scheduler empty).
        self.len += 1;
        match &mut self.policy {
            Policy::Fifo(tasks) => {
                tasks.push_back(runnable);
                Ok(())
            }
            Policy::Custom { scheduler, .. } => catch_unwind(AssertUnwindSafe(|| {
                scheduler.push(ReadyTask::new(runnable))
            })),
        }
    }

    /// The reports the queue's scheduler asked for (none for the native
    /// FIFO).
    #[inline]
    pub(crate) fn reports(&self) -> Reports {
        match &self.policy {
            Policy::Fifo(_) => Reports::NONE,
            Policy::Custom { reports, .. } => *reports,
        }
    }

    /// Runs `call` on the scheduler, catching a panic (see
    /// [`SchedulerPanic`]). Only for a report the scheduler asked for
    /// ([`reports`](Self::reports)).
    #[inline]
    pub(crate) fn tell(
        &mut self,
        call: impl FnOnce(&mut dyn Scheduler),
    ) -> Result<(), SchedulerPanic> {
        match &mut self.policy {
            Policy::Fifo(_) => Ok(()),
            Policy::Custom { scheduler, .. } => {
                let scheduler = &mut **scheduler;
                catch_unwind(AssertUnwindSafe(|| call(scheduler)))
            }
        }
    }

    /// The next task of the executor whose thread-safe half is `owner`.
    ///
    /// A scheduler is user code, and `ReadyTask` is `Send`: a scheduler may
    /// hand out a task that another executor gave to it (through a shared
    /// static, say). Such a task must never run here: its future may be
    /// `!Send` and belong to another thread, and its bookkeeping to another
    /// executor. It goes back to its own executor, through that executor's
    /// inbox, as a wake from another thread would; this executor asks its
    /// scheduler again. (The native FIFO holds only what this executor
    /// pushed.)
    ///
    /// A panic in the scheduler's `pop` is returned instead (see
    /// [`SchedulerPanic`]); the count is left alone, since the scheduler
    /// may still hold the queue's tasks, to hand out at the next pop.
    #[inline]
    pub(crate) fn pop(&mut self, owner: &Arc<Shared>) -> Result<Option<Runnable>, SchedulerPanic> {
        let scheduler = match &mut self.policy {
            Policy::Fifo(tasks) => {
                let next = tasks.pop_front();
                self.len = tasks.len();
                return Ok(next);
            }
            Policy::Custom { scheduler, .. } => scheduler,
        };
        loop {
            match catch_unwind(AssertUnwindSafe(|| scheduler.pop()))? {
                Some(task) => {
                    let runnable = task.into_runnable();
                    if !Arc::ptr_eq(&runnable.metadata().shared, owner) {
                        crate::runtime::inbox::schedule(runnable);
                        continue;
                    }
                    // Saturating: a scheduler may also have lost this
                    // queue's tasks to another executor.
                    self.len = self.len.saturating_sub(1);
                    return Ok(Some(runnable));
                }
                None => {
                    // Only a scheduler that lost tasks gets here; those
                    // tasks were cancelled when it dropped them, or went
                    // back to their own executor.
                    self.len = 0;
                    return Ok(None);
                }
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tasks held by the scheduler.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The group named `id`, created if it has no live task yet.
    pub(crate) fn group(&mut self, id: u64) -> Arc<GroupState> {
        Arc::clone(
            self.groups
                .entry(id)
                .or_insert_with(|| Arc::new(GroupState::new(id))),
        )
    }
}

impl Core {
    /// The fast path of a wake: if the task's executor is running a turn on
    /// this thread, put the task straight into its queue. Otherwise hand the
    /// runnable back, for the inbox.
    #[inline]
    pub(crate) fn wake_local(runnable: Runnable) -> Result<(), Runnable> {
        let mut runnable = Some(runnable);
        Core::with_current(|core| {
            if let Some(r) = runnable.take_if(|r| Arc::ptr_eq(&core.shared, &r.metadata().shared)) {
                bump(&core.observe.counters.local_wakes, 1);
                #[cfg(feature = "console")]
                core.console_woke(r.metadata());
                core.accept(r);
            }
        });
        runnable.map_or(Ok(()), Err)
    }

    /// Moves every pending wake into its queue. Aborted tasks are set aside to
    /// be reaped by the loop. Runs no user code.
    #[inline]
    pub(crate) fn drain_wakes(&self) {
        // Two loads on the path every poll takes; the work, when there is
        // any, out of line, so that the loop around this stays small.
        if self.shared.has_remote_wakes() {
            self.drain_remote();
        }
        if self.buffered.get() {
            self.drain_buffered();
        }
    }

    /// Takes the remote wakes, abort requests, commands and spawns.
    #[inline(never)]
    fn drain_remote(&self) {
        let mut wakes = 0;
        self.shared.drain(
            |runnable| {
                wakes += 1;
                #[cfg(feature = "console")]
                self.console_woke(runnable.metadata());
                self.accept(runnable);
            },
            |slot| self.wake_slot(slot),
        );
        bump(&self.observe.counters.remote_wakes, wakes);
        // After the flag was cleared (in `drain`): a command or spawn
        // queued after these pops notifies again. Spawns first, so that a
        // task dump asked for after a spawn sees the task (a spawn into a
        // queue added meanwhile applies the commands itself).
        self.shared.drain_spawns(|runnable| self.admit(runnable));
        self.apply_commands();
    }

    /// Takes the wakes that found the scheduling state borrowed.
    #[cold]
    fn drain_buffered(&self) {
        self.buffered.set(false);
        loop {
            let next = self.wake_buf.borrow_mut().pop_front();
            match next {
                Some(runnable) => self.accept(runnable),
                None => break,
            }
        }
    }

    /// Takes a runnable task: into its queue, or, if aborted, into the reap
    /// list. Runs no user code, so it may run inside a wake.
    ///
    /// Every wake on the executor's thread and every spawn comes through
    /// here: the rare branches are out of line, so that this stays small
    /// enough to inline into the wake.
    #[inline]
    pub(super) fn accept(&self, runnable: Runnable) {
        let Some(runnable) = self.registry.reap_if_aborted(runnable) else {
            return;
        };
        let meta = runnable.metadata();
        meta.runnable_since
            .store(self.time.now.get(), Ordering::Relaxed);
        meta.state.store(RUNNABLE, Ordering::Relaxed);
        let Ok(mut sched) = self.sched.try_borrow_mut() else {
            return self.buffer_wake(runnable);
        };
        if let Err(panic) = sched.push(runnable) {
            drop(sched);
            self.stash_panic(panic);
        }
    }

    /// A wake that found the scheduling state borrowed. Not reachable
    /// today (it is never borrowed across user code), but a wake must never
    /// panic: it waits in a buffer for the next drain.
    #[cold]
    #[inline(never)]
    fn buffer_wake(&self, runnable: Runnable) {
        self.wake_buf.borrow_mut().push_back(runnable);
        self.buffered.set(true);
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
        let raw = self.time.clock.raw();
        let in_poll = self
            .time
            .clock
            .nanos_between(self.time.poll_started.get(), raw);
        // Wakes and spawns taken in here are stamped with this reading, not
        // the poll's start: a long poll that yields as soon as a task
        // arrives must not make that task look as if it waited the whole
        // poll. (The loop moves the clock on by the poll's length after it.)
        let poll_start = self.time.now.get();
        self.time.now.set(poll_start + in_poll);
        self.drain_wakes();
        self.time.now.set(poll_start);
        // The host's reactor is the only way a socket's readiness reaches
        // the executor: waiting for a task to be preempted would never end
        // when only the host knows that a task should preempt it.
        let held = raw.saturating_sub(self.turn.host.held_since.get());
        if held >= self.time.driver_yield_ticks {
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
        self.registry.reap_pending() || self.buffered.get() || self.shared.has_remote_wakes()
    }
}
