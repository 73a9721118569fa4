//! The live task dump: every live task's metadata, reached through the
//! index of live tasks, snapshotted on the executor's thread.
//!
//! The index keeps a waker per live task (that is what keeps an idle task
//! alive and lets an abort reach it), not a pointer to its metadata: a
//! second pointer would cost every task one more word (`benches/memory.rs`)
//! for the sake of a debugging aid. A waker's data pointer is the address of
//! the task's allocation, and the metadata sits at a fixed distance from
//! it, fixed by async-task's header layout for our one metadata type. That
//! layout is async-task's private business, so the distance is not
//! assumed: it is measured on the first task registered in the process,
//! and *checked on every task as it is registered* (one load and one
//! compare per spawn). A dump reads metadata through the index's wakers
//! only if no task ever failed the check: then, for every waker in the
//! index, the distance was verified on that very task.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Duration;

use crate::base::error::DumpError;
use crate::observe::dump::{TaskRecord, TaskState};
use crate::runtime::Core;
use crate::runtime::task::{RUNNABLE, TaskMeta};

/// The distance from a task's waker data pointer to its metadata, measured
/// on the first task registered; [`UNMEASURED`] until then.
static META_OFFSET: AtomicUsize = AtomicUsize::new(UNMEASURED);
const UNMEASURED: usize = usize::MAX;
/// Set if a task's metadata was ever found elsewhere: dumps are refused.
static META_OFFSET_BROKEN: AtomicBool = AtomicBool::new(false);

/// Checks, as a task is registered with the index of live tasks, that its
/// metadata lies at [`META_OFFSET`] from the data pointer of `waker` (one
/// of its wakers).
#[inline]
pub(crate) fn check_meta_offset(waker: &Waker, meta: &TaskMeta) {
    let offset = (meta as *const TaskMeta as usize).wrapping_sub(waker.data() as usize);
    // The metadata is inside the allocation, after async-task's header.
    debug_assert_ne!(offset, UNMEASURED);
    match META_OFFSET.load(Ordering::Relaxed) {
        known if known == offset => {}
        UNMEASURED => measure_meta_offset(offset),
        _ => META_OFFSET_BROKEN.store(true, Ordering::Relaxed),
    }
}

#[cold]
fn measure_meta_offset(offset: usize) {
    // Executors on other threads may race to measure: the first one sets
    // it, and the others are checked against it.
    if let Err(known) =
        META_OFFSET.compare_exchange(UNMEASURED, offset, Ordering::Relaxed, Ordering::Relaxed)
    {
        if known != offset {
            META_OFFSET_BROKEN.store(true, Ordering::Relaxed);
        }
    }
}

impl Core {
    /// A record of every live task, for a dump on the executor's thread,
    /// with the wakes that are waiting taken in first (they make their
    /// tasks runnable). Runs no user code but a spawn hook, for a task a
    /// `Spawner` sent meanwhile.
    pub(crate) fn dump(&self) -> Result<Vec<TaskRecord>, DumpError> {
        if !self.turn.running.get() {
            // Between turns the executor's time is the last turn's: the
            // wakes taken in now are stamped with the present.
            self.time.reread();
        }
        self.drain_wakes();
        self.task_records()
    }

    /// A record of every live task. Runs no user code.
    pub(crate) fn task_records(&self) -> Result<Vec<TaskRecord>, DumpError> {
        // Every task in the index was registered on this thread, and
        // checked as it was: it matched `META_OFFSET` (which never changes
        // once measured), or it set the flag, on this thread, before this.
        if META_OFFSET_BROKEN.load(Ordering::Relaxed) {
            return Err(DumpError::Unsupported);
        }
        let offset = META_OFFSET.load(Ordering::Relaxed);
        let now = self.time.now_nanos();
        let polled = self.turn.polling.get();
        // The running task's poll started at the turn's last poll start.
        // Once the poll has ended (a dump from an after-poll or termination
        // hook), the task is no longer running.
        let in_poll = !polled.is_null() && self.time.poll_ended.get().is_none();
        let poll_started = in_poll.then(|| {
            let time = &self.time;
            time.clock
                .nanos_between(time.origin, time.poll_started.get())
        });
        let mut records = Vec::with_capacity(self.registry.len());
        self.registry.for_each_handle(|waker| {
            let at = waker
                .data()
                .cast::<u8>()
                .wrapping_add(offset)
                .cast::<TaskMeta>();
            // SAFETY: `waker` is in the index of live tasks, so it was
            // registered, and `check_meta_offset` found that task's
            // metadata at `offset` from its data pointer (a waker's clones
            // share it), or the dump would have been refused above: `at`
            // is that metadata, inside the task's allocation (derived from
            // the allocation's own pointer). The index's waker holds a
            // reference to the task, which keeps the allocation, and the
            // metadata in its header, alive while the waker is in the
            // index, that is, for this call. The metadata is only ever
            // shared (atomics and fields set at spawn).
            let meta = unsafe { &*at };
            let running = poll_started.filter(|_| std::ptr::eq(meta, polled));
            records.push(record(meta, now, running));
        });
        Ok(records)
    }
}

/// What a dump shows of a task at executor time `now`; `running` is when
/// its poll started, if it is the task being polled.
fn record(meta: &TaskMeta, now: u64, running: Option<u64>) -> TaskRecord {
    let (state, since) = match running {
        Some(poll_started) => (TaskState::Running, poll_started),
        None => {
            let state = match meta.state.load(Ordering::Relaxed) {
                RUNNABLE => TaskState::Runnable,
                _ => TaskState::Waiting,
            };
            (state, meta.runnable_since.load(Ordering::Relaxed))
        }
    };
    let nanos = |at: u64| Duration::from_nanos(now.saturating_sub(at));
    TaskRecord {
        id: meta.id,
        name: meta.name().cloned(),
        queue: meta.queue(),
        group: meta.group().map(|group| group.id),
        location: meta.site.location(),
        state,
        in_state: nanos(since),
        // A poll is counted as it ends: the running task's is in progress.
        polls: meta.polls.load(Ordering::Relaxed) + u64::from(running.is_some()),
        cpu_time: Duration::from_nanos(meta.service.load(Ordering::Relaxed)),
        age: nanos(meta.arrival.load(Ordering::Relaxed)),
    }
}
