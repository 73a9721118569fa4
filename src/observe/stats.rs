//! Statistics: what the executor counts as it runs, and the snapshots it hands
//! out ([`ExecutorStats`], [`QueueStats`]).
//!
//! Every figure is counted where it happens, on the executor's thread, in
//! plain integers: no atomics, no locks. Per poll that is two histogram
//! records (queue delay and poll duration) and a few additions, all from the
//! one clock reading the executor takes per poll anyway. Statistics can be
//! turned off ([`ExecutorBuilder::with_statistics`]); the per-poll figures
//! then stay zero, and the counts of spawns, endings, wakes, turns and slices
//! are still kept (one addition where each happens).
//!
//! [`ExecutorBuilder::with_statistics`]: crate::ExecutorBuilder::with_statistics

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use crate::base::histogram::{Compact, Histogram, Recorder};
use crate::base::id::TaskEnding;

/// A snapshot of an executor's statistics, from
/// [`Executor::stats`](crate::Executor::stats). Times are on the executor's
/// [`Clock`](crate::Clock).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Time since the executor was built.
    pub uptime: Duration,
    /// Time spent in turns: polling tasks and scheduling them.
    pub busy: Duration,
    /// Time outside turns: `uptime - busy` (the host runtime had the thread,
    /// or nothing was runnable).
    pub idle: Duration,
    /// Turns: times the host runtime polled the executor.
    pub turns: u64,
    /// Turns that ended because the executor had polled for
    /// `driver_yield` or `max_polls_per_yield`, handing the thread back to
    /// the host with tasks still runnable.
    pub driver_yields: u64,
    /// Turns that ended because the host runtime's cooperative budget was
    /// spent (Tokio, with the `tokio` feature): the next host poll brings a
    /// fresh one. The task that was refused is queued again at once, a wake
    /// counted in `local_wakes`. See the README's "Serving requests".
    pub budget_yields: u64,
    /// How long each turn held the thread: how long the host runtime (its
    /// IO, its timers, its other tasks) waited for the executor. A socket
    /// that becomes ready during a turn is only seen after it, so this is
    /// the wait that no queue delay shows. Kept when statistics are on.
    pub turn_duration: Histogram,
    /// Task polls, in all queues.
    pub polls: u64,
    /// Tasks spawned.
    pub spawned: u64,
    /// Tasks whose future returned a value.
    pub completed: u64,
    /// Tasks cancelled: aborted, or dropped with the executor.
    pub cancelled: u64,
    /// Tasks whose future panicked.
    pub panicked: u64,
    /// Tasks spawned and not ended.
    pub live_tasks: usize,
    /// Tasks runnable now, in all queues.
    pub runnable: usize,
    /// Wakes during a turn, on the executor's thread: a task waking itself
    /// or another (they go straight to the task's queue).
    pub local_wakes: u64,
    /// Wakes from outside a turn, through the inbox: from other threads, and
    /// from the host runtime on this thread between turns (its timers and
    /// IO readiness).
    pub remote_wakes: u64,
}

/// A snapshot of one queue's statistics, from
/// [`Executor::queue_stats`](crate::Executor::queue_stats).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueStats {
    /// The queue's weight.
    pub weight: u32,
    /// Tasks spawned into the queue.
    pub spawned: u64,
    /// Tasks whose future returned a value.
    pub completed: u64,
    /// Tasks cancelled: aborted, or dropped with the executor.
    pub cancelled: u64,
    /// Tasks whose future panicked.
    pub panicked: u64,
    /// Task polls.
    pub polls: u64,
    /// Time the queue's polls took.
    pub cpu_time: Duration,
    /// Slices: times the queue was picked to run.
    pub slices: u64,
    /// Slices cut short because a task of a queue owed the thread sooner
    /// became runnable.
    pub preemptions: u64,
    /// Tasks runnable now.
    pub runnable: usize,
    /// Polls that took at least the slow-poll threshold (see
    /// [`ExecutorBuilder::on_slow_poll`](crate::ExecutorBuilder::on_slow_poll)).
    pub slow_polls: u64,
    /// From a task becoming runnable to its poll starting, per poll.
    pub queue_delay: Histogram,
    /// How long each poll took.
    pub poll_duration: Histogram,
}

/// Polls whose queue delay and duration wait to be recorded: see
/// [`QueueCounters::polled`].
const PENDING: usize = 32;

/// A queue's running counts, kept in its run queue.
#[derive(Debug, Default)]
pub(crate) struct QueueCounters {
    /// The queue delay and duration of the polls not recorded yet, the
    /// first `pending_len` of them.
    pending: [(u64, u64); PENDING],
    pending_len: usize,
    spawned: u64,
    completed: u64,
    cancelled: u64,
    panicked: u64,
    /// Also the count of both recorders' samples.
    polls: u64,
    pub(crate) slices: u64,
    pub(crate) preemptions: u64,
    slow_polls: u64,
    queue_delay: Recorder,
    /// Its sum is the queue's CPU time.
    poll_duration: Recorder,
}

impl QueueCounters {
    #[inline]
    pub(crate) fn spawned(&mut self) {
        self.spawned += 1;
    }

    /// A poll that waited `delay` and ran `elapsed` nanoseconds.
    #[inline]
    pub(crate) fn polled(&mut self, delay: u64, elapsed: u64, slow: bool) {
        self.polls += 1;
        if slow {
            self.slow_polls += 1;
        }
        // Recorded in batches: two histogram records on the path of every
        // poll cost it some 10 ns (measured), twice what the same records
        // cost in a loop of their own.
        self.pending[self.pending_len] = (delay, elapsed);
        self.pending_len += 1;
        if self.pending_len == PENDING {
            self.record_pending();
        }
    }

    /// Records the polls that wait in `pending`.
    #[inline(never)]
    fn record_pending(&mut self) {
        Recorder::record_pairs(
            &mut self.queue_delay,
            &mut self.poll_duration,
            &self.pending[..self.pending_len],
        );
        self.pending_len = 0;
    }

    pub(crate) fn ended(&mut self, ending: TaskEnding) {
        match ending {
            TaskEnding::Completed => self.completed += 1,
            TaskEnding::Cancelled => self.cancelled += 1,
            TaskEnding::Panicked => self.panicked += 1,
        }
    }

    pub(crate) fn snapshot(&mut self, weight: u32, runnable: usize) -> QueueStats {
        self.record_pending();
        let poll_duration = self.poll_duration.snapshot(self.polls);
        QueueStats {
            weight,
            spawned: self.spawned,
            completed: self.completed,
            cancelled: self.cancelled,
            panicked: self.panicked,
            polls: self.polls,
            cpu_time: poll_duration.sum(),
            slices: self.slices,
            preemptions: self.preemptions,
            runnable,
            slow_polls: self.slow_polls,
            queue_delay: self.queue_delay.snapshot(self.polls),
            poll_duration,
        }
    }
}

/// The executor-wide counts, in the core.
#[derive(Debug, Default)]
pub(crate) struct ExecutorCounters {
    pub(crate) turns: Cell<u64>,
    pub(crate) driver_yields: Cell<u64>,
    pub(crate) budget_yields: Cell<u64>,
    pub(crate) turn_duration: RefCell<Histogram>,
    pub(crate) local_wakes: Cell<u64>,
    pub(crate) remote_wakes: Cell<u64>,
    pub(crate) busy_nanos: Cell<u64>,
}

/// Adds `n` to a counter cell.
#[inline]
pub(crate) fn bump(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_add(n));
}

impl ExecutorCounters {
    /// The executor-wide snapshot: these counts (with `turn_so_far` of a
    /// turn in progress counted busy), and the sums over `queues` (each
    /// queue's counters and its number of runnable tasks).
    pub(crate) fn snapshot<'a>(
        &self,
        uptime: u64,
        turn_so_far: u64,
        live_tasks: usize,
        queues: impl IntoIterator<Item = (&'a QueueCounters, usize)>,
    ) -> ExecutorStats {
        let busy = self
            .busy_nanos
            .get()
            .saturating_add(turn_so_far)
            .min(uptime);
        let mut stats = ExecutorStats {
            uptime: Duration::from_nanos(uptime),
            busy: Duration::from_nanos(busy),
            idle: Duration::from_nanos(uptime - busy),
            turns: self.turns.get(),
            driver_yields: self.driver_yields.get(),
            budget_yields: self.budget_yields.get(),
            turn_duration: self.turn_duration.borrow().clone(),
            polls: 0,
            spawned: 0,
            completed: 0,
            cancelled: 0,
            panicked: 0,
            live_tasks,
            runnable: 0,
            local_wakes: self.local_wakes.get(),
            remote_wakes: self.remote_wakes.get(),
        };
        for (queue, runnable) in queues {
            stats.polls += queue.polls;
            stats.spawned += queue.spawned;
            stats.completed += queue.completed;
            stats.cancelled += queue.cancelled;
            stats.panicked += queue.panicked;
            stats.runnable += runnable;
        }
        stats
    }
}

impl fmt::Display for ExecutorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = if self.uptime.is_zero() {
            0.0
        } else {
            100.0 * self.busy.as_secs_f64() / self.uptime.as_secs_f64()
        };
        writeln!(
            f,
            "time    uptime {}  busy {} ({share:.1}%)  idle {}",
            Compact(self.uptime),
            Compact(self.busy),
            Compact(self.idle),
        )?;
        writeln!(
            f,
            "turns   {}  driver yields {}  budget yields {}  polls {}",
            self.turns, self.driver_yields, self.budget_yields, self.polls,
        )?;
        writeln!(f, "turn    {}", self.turn_duration)?;
        writeln!(
            f,
            "tasks   spawned {}  completed {}  cancelled {}  panicked {}  live {}  runnable {}",
            self.spawned,
            self.completed,
            self.cancelled,
            self.panicked,
            self.live_tasks,
            self.runnable,
        )?;
        write!(
            f,
            "wakes   local {}  remote {}",
            self.local_wakes, self.remote_wakes
        )
    }
}

impl fmt::Display for QueueStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tasks        spawned {}  completed {}  cancelled {}  panicked {}  runnable {}",
            self.spawned, self.completed, self.cancelled, self.panicked, self.runnable,
        )?;
        writeln!(
            f,
            "polls        {} (slow {})  cpu {}  weight {}  slices {}  preemptions {}",
            self.polls,
            self.slow_polls,
            Compact(self.cpu_time),
            self.weight,
            self.slices,
            self.preemptions,
        )?;
        writeln!(f, "queue delay  {}", self.queue_delay)?;
        write!(f, "poll time    {}", self.poll_duration)
    }
}
