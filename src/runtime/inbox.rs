//! Where wakes go: the fast path on the executor's thread, and the lock-free
//! inbox for every other wake.
//!
//! A task's waker calls [`schedule`] with the task's `Runnable`.
//!
//! - **On the executor's thread, while it is running** (a task waking itself
//!   or another task, a spawn from inside a task): the runnable goes straight
//!   into its queue's scheduler. No atomics beyond the waker's own.
//! - **Anywhere else** (another thread, or the host runtime's timers and IO
//!   on the executor's thread while the executor is parked): the runnable is
//!   pushed on the [`Shared`] inbox, a lock-free queue, and the host task that
//!   runs the executor is woken, once per batch of wakes.
//!
//! The executor drains the inbox at every poll boundary, so a remote wake of a
//! task in a queue that deserves the CPU preempts the running slice as fast as
//! a local one.
//!
//! # Invariant
//!
//! A `Runnable` pushed here is never dropped by this module: the inbox never
//! refuses a push (it is never closed; a full bounded queue spills into an
//! unbounded one), and only the executor pops it, on its own thread. A
//! runnable in the inbox keeps its task, hence its metadata, hence this
//! `Shared`, alive, so the inbox cannot be dropped while it holds a runnable.
//!
//! # Order
//!
//! Wakes from one thread arrive in the order they were made, as long as the
//! preallocated inbox has room. Past `INBOX_CAPACITY` pending remote wakes,
//! a wake that spilled into the overflow can be drained after a later wake
//! from the same thread that found room in the bounded queue while the
//! executor drained (found by the loom model `spill_keeps_per_thread_order`,
//! kept as an ignored model). Nothing is lost or duplicated; two tasks woken
//! back to back from one thread may swap places in a FIFO queue. Two fixes
//! were tried and the model refuted both (a wake joining the overflow while
//! it is not empty; the drain preferring the bounded queue at every step):
//! two FIFO queues cannot be merged in order without a sequence number per
//! wake. The sound fixes cost every remote wake something (one unbounded
//! queue: an allocation per 31 wakes; a global sequence: a contended
//! read-modify-write), for an order between different tasks that no API
//! promises; left as is.
//!
//! # Model checking
//!
//! The protocol here (the `notified` flag, the spill into `overflow` and the
//! drain order, the abort requests, the spawn queue racing its close) is
//! checked by a loom model, `src/runtime/inbox/loom_model.rs`, that drives
//! this very code: under `cfg(all(test, loom))`
//! the flag is loom's `AtomicBool` and the host waker loom's `AtomicWaker`,
//! and concurrent-queue switches to loom's atomics by itself. That is why
//! `Shared` is generic over what it carries (always a [`Runnable`] outside
//! the model, which pushes plain values and stand-in tasks). The model also
//! drives the real task registry (`Registry`, in `src/runtime/registry/`,
//! generic over its task the same way), and with it the handshake between
//! `JoinHandle::abort` (`registry::abort`) and the executor's take-in of a
//! remote spawn (`Registry::take_in`, from `Core::register_remote`), on
//! stand-in tasks whose slot and abort flag are loom atomics.

use std::sync::Arc;
#[cfg(not(all(test, loom)))]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(not(all(test, loom)))]
use atomic_waker::AtomicWaker;
use concurrent_queue::ConcurrentQueue;
#[cfg(all(test, loom))]
use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(all(test, loom))]
use loom_model::AtomicWaker;

use crate::runtime::Core;
use crate::runtime::control::Command;
use crate::runtime::task::Runnable;

/// Capacity of the preallocated inbox; more wakes at once spill into an
/// unbounded queue, so a burst is never refused and steady state never allocates.
const INBOX_CAPACITY: usize = 1024;

/// The thread-safe half of an executor, shared with every task's waker.
pub(crate) struct Shared<T = Runnable> {
    inbox: ConcurrentQueue<T>,
    overflow: ConcurrentQueue<T>,
    /// Live-task slots whose tasks were aborted from a `JoinHandle`: the
    /// executor wakes them, so that idle ones are reaped too.
    aborts: ConcurrentQueue<usize>,
    /// Tasks spawned through a [`Spawner`](crate::Spawner), not yet known to
    /// the executor. Closed when the executor shuts down or is dropped: a
    /// spawn that finds it closed is refused, and one that got in is
    /// drained (and cancelled, if need be) by the executor.
    spawns: ConcurrentQueue<T>,
    /// Configuration changes and shutdown requests from spawners, applied
    /// in order at the executor's next drain. Closed when it is dropped.
    commands: ConcurrentQueue<Command>,
    /// The next task id: tasks are numbered on whichever thread spawns them.
    next_id: std::sync::atomic::AtomicU64,
    /// Set once the executor has shut down or been dropped.
    stopped: std::sync::atomic::AtomicBool,
    /// Set when the inbox got wakes the executor has not drained yet; cleared
    /// by the executor before draining. Lets remote wakers skip waking the host
    /// when it has been woken already.
    notified: AtomicBool,
    /// The waker of the host task that runs the executor.
    host: AtomicWaker,
}

impl<T> Shared<T> {
    pub(crate) fn new() -> Self {
        Self::with_capacity(INBOX_CAPACITY)
    }

    /// An inbox whose preallocated part holds `capacity` wakes (the loom
    /// model makes it tiny, to spill).
    fn with_capacity(capacity: usize) -> Self {
        Shared {
            inbox: ConcurrentQueue::bounded(capacity),
            overflow: ConcurrentQueue::unbounded(),
            aborts: ConcurrentQueue::unbounded(),
            spawns: ConcurrentQueue::unbounded(),
            commands: ConcurrentQueue::unbounded(),
            next_id: std::sync::atomic::AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            notified: AtomicBool::new(false),
            host: AtomicWaker::new(),
        }
    }

    /// Registers the waker of the host task currently running the executor.
    pub(crate) fn register_host(&self, waker: &std::task::Waker) {
        self.host.register(waker);
    }

    /// Wakes the host task, if it is parked.
    pub(crate) fn wake_host(&self) {
        self.host.wake();
    }

    fn push(&self, runnable: T) {
        if let Err(full) = self.inbox.push(runnable) {
            if let Err(refused) = self.overflow.push(full.into_inner()) {
                // Unreachable: neither queue is ever closed. Leaking is the
                // only sound choice on a foreign thread (see the invariant).
                std::mem::forget(refused.into_inner());
            }
        }
        self.notify();
    }

    /// Asks the executor to wake the task in `slot` (see `JoinHandle::abort`).
    pub(crate) fn request_abort(&self, slot: usize) {
        // Never closed, so never refused.
        let _ = self.aborts.push(slot);
        self.notify();
    }

    /// Wakes the executor's host task unless it was woken already; its next
    /// turn drains whatever is waiting.
    pub(crate) fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.host.wake();
        }
    }

    /// A fresh task id, unique within this executor.
    pub(crate) fn next_task_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Hands a task spawned on another thread to the executor. Gives it back
    /// if the executor no longer accepts spawns.
    pub(crate) fn push_spawn(&self, task: T) -> Result<(), T> {
        self.spawns
            .push(task)
            .map_err(|refused| refused.into_inner())?;
        self.notify();
        Ok(())
    }

    /// Refuses spawns from now on. Returns whether they were accepted until now.
    pub(crate) fn close_spawns(&self) -> bool {
        self.spawns.close()
    }

    /// Whether spawns are refused.
    pub(crate) fn spawns_closed(&self) -> bool {
        self.spawns.is_closed()
    }

    /// Takes every spawn handed over so far. Executor's thread only.
    pub(crate) fn drain_spawns(&self, mut each: impl FnMut(T)) {
        while let Ok(task) = self.spawns.pop() {
            each(task);
        }
    }

    /// Records that the executor has shut down (or is being dropped).
    pub(crate) fn set_stopped(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the executor has shut down or is gone.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Queues a command for the executor. Gives it back if the executor is gone.
    pub(crate) fn push_command(&self, command: Command) -> Result<(), Command> {
        self.commands
            .push(command)
            .map_err(|refused| refused.into_inner())?;
        self.notify();
        Ok(())
    }

    /// Takes the next queued command. Executor's thread only.
    pub(crate) fn pop_command(&self) -> Option<Command> {
        self.commands.pop().ok()
    }

    /// Refuses commands from now on (the executor is being dropped).
    pub(crate) fn close_commands(&self) {
        self.commands.close();
    }

    /// Whether remote wakes are waiting. One relaxed load: cheap enough for
    /// every poll boundary.
    #[inline]
    pub(crate) fn has_remote_wakes(&self) -> bool {
        self.notified.load(Ordering::Relaxed)
    }

    /// Takes every waiting remote wake and abort request. Call on the
    /// executor's thread only.
    pub(crate) fn drain(&self, mut each: impl FnMut(T), mut abort: impl FnMut(usize)) {
        // Clear before popping: a push that lands after our last pop sets the
        // flag again and wakes the host, so no wake is lost.
        self.notified.swap(false, Ordering::AcqRel);
        while let Ok(runnable) = self.inbox.pop() {
            each(runnable);
        }
        while let Ok(runnable) = self.overflow.pop() {
            each(runnable);
        }
        while let Ok(slot) = self.aborts.pop() {
            abort(slot);
        }
    }

    /// Whether the inbox and the spawns are empty (used when the executor
    /// is dropped or shut down).
    pub(crate) fn is_empty(&self) -> bool {
        self.inbox.is_empty() && self.overflow.is_empty() && self.spawns.is_empty()
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("inbox", &(self.inbox.len() + self.overflow.len()))
            .field("notified", &self.notified)
            .finish_non_exhaustive()
    }
}

/// The schedule function of every task: routes a wake to the fast path or to
/// the inbox of the task's executor.
pub(crate) fn schedule(runnable: Runnable) {
    if let Err(runnable) = Core::wake_local(runnable) {
        let shared = Arc::clone(&runnable.metadata().shared);
        shared.push(runnable);
    }
}

#[cfg(all(test, loom))]
mod loom_model;
