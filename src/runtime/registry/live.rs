//! The live-task index and the reap list, generic over the task they hold.
//!
//! [`Registry`] is the part of the executor's bookkeeping of live tasks that
//! other threads race with: which slot a task has (and the handshake that
//! publishes it to `JoinHandle::abort`), whether a runnable task is reaped or
//! queued, the wake of a slot an abort names, and the cancellation of every
//! task. It is generic over the task ([`Entry`]) for one reason: the loom
//! model (`src/runtime/inbox/loom_model.rs`) drives this very code with its
//! own task type, on loom's atomics, rather than a copy of it that could
//! drift. In production `E` is always [`Runnable`], and every method here is
//! monomorphised and inlined into `Core`'s: the same work as before the split
//! (no allocation, atomic or dynamic call of its own).
//!
//! What is not here is the executor's own business, done by `Core` around
//! these calls: queues and schedulers, clocks and counters, the command
//! queue, and the loop of `Core::drop`.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::task::Waker;

use slab::Slab;

use crate::runtime::inbox::Shared;
use crate::runtime::task::{Runnable, TaskMeta, UNREGISTERED};

/// A task as the registry holds it while it is runnable: in production a
/// [`Runnable`], in the loom model a stand-in with the same contract.
pub(crate) trait Entry: Sized {
    /// What the index keeps of a live task to reach it while it is idle (its
    /// runnable then exists nowhere): a waker.
    type Handle: Clone;
    /// The task's slot and abort flag.
    type Meta: EntryMeta;

    fn meta(&self) -> &Self::Meta;
    /// A handle that wakes this task.
    fn handle(&self) -> Self::Handle;
    /// Wakes the task through `handle`: if it was idle, its runnable is
    /// scheduled (on the executor's thread: straight into `accept`).
    fn wake(handle: Self::Handle);
    /// Runs the task once: polls its future, or, if the abort flag is set,
    /// drops it unpolled. A task that ends frees its slot ([`Registry::end`]).
    fn run(self);
}

/// The two atomics of a task's metadata that the handshake between the
/// executor's take-in and `JoinHandle::abort` uses. The orderings are the
/// caller's (this module's): an implementation does the access it is asked
/// for. The loom model's adds a `SeqCst` fence after a `SeqCst` store, which
/// loom needs to model the total order of `SeqCst` accesses (see
/// `seq_cst_order` there); production's is the bare access.
pub(crate) trait EntryMeta {
    /// The task's slot in the index, [`UNREGISTERED`] until it is taken in.
    fn slot(&self, order: Ordering) -> usize;
    fn set_slot(&self, slot: usize, order: Ordering);
    /// Whether the task was aborted: its next run drops the future.
    fn aborted(&self, order: Ordering) -> bool;
    fn set_aborted(&self, order: Ordering);
}

impl EntryMeta for TaskMeta {
    #[inline]
    fn slot(&self, order: Ordering) -> usize {
        TaskMeta::slot(self, order)
    }

    #[inline]
    fn set_slot(&self, slot: usize, order: Ordering) {
        TaskMeta::set_slot(self, slot, order);
    }

    #[inline]
    fn aborted(&self, order: Ordering) -> bool {
        self.aborted.load(order)
    }

    #[inline]
    fn set_aborted(&self, order: Ordering) {
        self.aborted.store(true, order);
    }
}

impl Entry for Runnable {
    type Handle = Waker;
    type Meta = TaskMeta;

    #[inline]
    fn meta(&self) -> &TaskMeta {
        self.metadata()
    }

    #[inline]
    fn handle(&self) -> Waker {
        let waker = self.waker();
        // The index's wakers are how a task dump reaches the tasks.
        crate::runtime::dump::check_meta_offset(&waker, self.metadata());
        waker
    }

    #[inline]
    fn wake(handle: Waker) {
        handle.wake();
    }

    #[inline]
    fn run(self) {
        // Whether the task was woken during the run is the waker's business.
        let _ = async_task::Runnable::run(self);
    }
}

/// The executor's live tasks: every live task's handle, by slot (so that
/// an abort, a budget yield or the executor's drop reaches an idle task),
/// and the aborted tasks waiting to be run once more (to drop their
/// futures). Executor's thread only.
pub(crate) struct Registry<E: Entry> {
    tasks: RefCell<Slab<E::Handle>>,
    reap: RefCell<Vec<E>>,
    /// Whether `reap` may hold something: one `Cell` read per poll instead
    /// of a `RefCell` borrow.
    reap_pending: Cell<bool>,
}

impl<E: Entry> Registry<E> {
    pub(crate) fn new() -> Self {
        Registry {
            tasks: RefCell::new(Slab::new()),
            reap: RefCell::new(Vec::new()),
            reap_pending: Cell::new(false),
        }
    }

    /// How many tasks are live.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.borrow().is_empty()
    }

    /// Whether the task in `slot` has a handle for which `matches` holds.
    /// (A predicate rather than a clone of the handle: a waker's clone is
    /// an atomic increment.)
    #[inline]
    pub(crate) fn handle_matches(
        &self,
        slot: usize,
        matches: impl FnOnce(&E::Handle) -> bool,
    ) -> bool {
        self.tasks.borrow().get(slot).is_some_and(matches)
    }

    /// The slot the next task spawned on the executor's thread gets: the
    /// task is made with it in its metadata (a plain field, not an atomic
    /// store: no other thread can reach the task before its handle is
    /// returned), then registered with [`insert_local`](Self::insert_local),
    /// with no other insertion in between.
    #[inline]
    pub(crate) fn next_slot(&self) -> usize {
        self.tasks.borrow().vacant_key()
    }

    /// Registers a task spawned on the executor's thread, made with the
    /// slot [`next_slot`](Self::next_slot) gave. (Made outside a closure
    /// here, the task's metadata is built in place, not moved through one.)
    #[inline]
    pub(crate) fn insert_local(&self, task: &E) {
        let slot = self.tasks.borrow_mut().insert(task.handle());
        debug_assert_eq!(slot, task.meta().slot(Ordering::Relaxed));
    }

    /// Takes in a task spawned on another thread (through a `Spawner`): gives
    /// it a slot, the executor's half of the handshake with [`abort`]. The
    /// caller then hands it to [`Registry::reap_if_aborted`], whose relaxed
    /// read of the flag sees an abort that did not see the slot.
    ///
    /// `abort` stores the flag and then loads the slot; this stores the slot
    /// and then loads the flag, all `SeqCst`. In their single total order one
    /// of the two stores comes first, so at least one side sees the other's:
    /// either the abort finds the slot (and asks the executor to wake the
    /// task), or this finds the flag. The load here is for its ordering,
    /// not its value: a `SeqCst` load that reads the abort's store
    /// synchronizes with it, so `reap_if_aborted`'s relaxed load, later on
    /// this thread, reads `true` too.
    #[inline]
    pub(crate) fn take_in(&self, task: &E) {
        let slot = self.tasks.borrow_mut().insert(task.handle());
        task.meta().set_slot(slot, Ordering::SeqCst);
        let _ = task.meta().aborted(Ordering::SeqCst);
    }

    /// The first half of `Core::accept`: an aborted task goes to the reap
    /// list (returns `None`); any other is given back, for its queue. Runs
    /// no user code, so it may run inside a wake.
    #[inline]
    pub(crate) fn reap_if_aborted(&self, task: E) -> Option<E> {
        // Relaxed is enough: the store in `abort` is followed by a wake (or
        // an abort request) whose synchronization orders it before this,
        // and `take_in`'s `SeqCst` load orders it for a task just taken in.
        if task.meta().aborted(Ordering::Relaxed) {
            self.reap_later(task);
            return None;
        }
        Some(task)
    }

    /// Out of line: on the path of every wake, and rarely taken.
    #[cold]
    #[inline(never)]
    fn reap_later(&self, task: E) {
        self.reap.borrow_mut().push(task);
        self.reap_pending.set(true);
    }

    /// Whether the reap list may hold something.
    #[inline]
    pub(crate) fn reap_pending(&self) -> bool {
        self.reap_pending.get()
    }

    /// Runs the aborted tasks once more, which drops their futures, calling
    /// `before_each` before each run (the core reads its clock there).
    /// `None` if nothing was pending (the common case: one `Cell` read),
    /// else whether it ran any. The list is borrowed only to pop: a task's
    /// `Drop` may wake, and so abort, another task.
    #[inline]
    pub(crate) fn run_reaped(&self, mut before_each: impl FnMut()) -> Option<bool> {
        if !self.reap_pending.replace(false) {
            return None;
        }
        let mut reaped = false;
        loop {
            let next = self.reap.borrow_mut().pop();
            let Some(task) = next else {
                return Some(reaped);
            };
            before_each();
            task.run();
            reaped = true;
        }
    }

    /// Wakes the live task in `slot`, if any: a task whose abort was
    /// requested from another thread, or one a Tokio resource refused for
    /// want of budget. The slot's task may have ended since, and the slot
    /// may now hold another task: that task gets a spurious wake, which
    /// futures tolerate.
    #[inline]
    pub(crate) fn wake_slot(&self, slot: usize) {
        // Cloned out first: the wake re-enters the executor (`accept`).
        let handle = self.tasks.borrow().get(slot).cloned();
        if let Some(handle) = handle {
            E::wake(handle);
        }
    }

    /// Calls `f` with the handle of every live task. `f` must not run user
    /// code (the index is borrowed).
    pub(crate) fn for_each_handle(&self, mut f: impl FnMut(&E::Handle)) {
        self.tasks.borrow().iter().for_each(|(_, handle)| f(handle));
    }

    /// Frees the slot of a task that ended (called from its last run).
    #[inline]
    pub(crate) fn end(&self, meta: &E::Meta) {
        let handle = self
            .tasks
            .borrow_mut()
            .try_remove(meta.slot(Ordering::Relaxed));
        // Dropped after the borrow: dropping a waker may run user code.
        drop(handle);
    }

    /// `Core::cancel_live`: wakes every live task (so that idle ones are
    /// queued), then calls `cancel_queued` until it finds nothing to cancel.
    /// Returns whether it cancelled anything.
    pub(crate) fn cancel_live(&self, mut cancel_queued: impl FnMut() -> bool) -> bool {
        let handles: Vec<E::Handle> = self.tasks.borrow().iter().map(|(_, h)| h.clone()).collect();
        handles.into_iter().for_each(E::wake);
        let mut cancelled = false;
        while cancel_queued() {
            cancelled = true;
        }
        cancelled
    }

    /// Moves the reap list to the end of `batch` (for [`Registry::cancel`]).
    pub(crate) fn append_reaped(&self, batch: &mut Vec<E>) {
        batch.append(&mut self.reap.borrow_mut());
    }

    /// Runs every task of `batch` once with the abort flag set, which drops
    /// their futures. Returns whether there were any.
    pub(crate) fn cancel(&self, batch: Vec<E>) -> bool {
        let ran = !batch.is_empty();
        for task in batch {
            task.meta().set_aborted(Ordering::Relaxed);
            task.run();
        }
        ran
    }
}

/// `JoinHandle::abort`'s half of the handshake with [`Registry::take_in`]:
/// sets the abort flag, then, if the task has a slot, asks its executor
/// (through `shared`) to wake it, so that an idle task is reaped too. A task
/// without a slot yet is found aborted by the take-in instead (see there for
/// why one side always sees the other).
#[inline]
pub(crate) fn abort<M: EntryMeta, T>(meta: &M, shared: &Shared<T>) {
    meta.set_aborted(Ordering::SeqCst);
    let slot = meta.slot(Ordering::SeqCst);
    if slot != UNREGISTERED {
        shared.request_abort(slot);
    }
}
