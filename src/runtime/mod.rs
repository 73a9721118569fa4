//! The runtime core: the one place whose parts depend on each other.
//! Tasks, the thread's current executor, the wake inbox, the scheduler
//! trait and its run queues, and the executor's state.

#[cfg(feature = "console")]
pub(crate) mod console;
pub(crate) mod context;
pub(crate) mod control;
pub(crate) mod dump;
pub(crate) mod hooks;
pub(crate) mod host;
pub(crate) mod inbox;
pub(crate) mod registry;
pub(crate) mod sched;
pub(crate) mod scheduler;
pub(crate) mod site;
pub(crate) mod stop;
pub(crate) mod task;
pub(crate) mod time;
pub(crate) mod turn;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Weak;
use std::sync::Arc;
use std::task::Waker;

use crate::base::clock::{Clock, nanos};
use crate::base::config::Config;
use crate::base::picker::Picker;
use crate::observe::Hooks;
use crate::observe::slow::PollReport;
use crate::observe::stats::{ExecutorCounters, ExecutorStats, QueueStats};
use crate::runtime::inbox::Shared;
use crate::runtime::registry::Registry;
use crate::runtime::sched::{QueueScheduler, RunQueue, Sched};
use crate::runtime::stop::{Stop, StopState};
use crate::runtime::task::Runnable;
use crate::runtime::time::Time;
use crate::runtime::turn::TurnState;

/// The executor's single-threaded state, in components by what each owns.
/// Their fields are visible to the files of `runtime/`, which implement
/// `Core`'s methods; the public face sees `Core`'s methods only.
pub(crate) struct Core {
    /// The thread-safe half, shared with every task's waker and metadata
    /// and with the spawners: the inbox, remote spawns, abort requests,
    /// commands.
    shared: Arc<Shared>,
    config: Config,
    /// The scheduling state: the picker and the queues' run queues
    /// (`sched.rs`).
    sched: RefCell<Sched>,
    /// Wakes that found the scheduling state borrowed (a safety net; see
    /// `accept`).
    wake_buf: RefCell<VecDeque<Runnable>>,
    /// Whether `wake_buf` may hold something: one `Cell` read per poll
    /// instead of a `RefCell` borrow.
    buffered: Cell<bool>,
    /// Every live task's waker, so that an abort and dropping the executor
    /// reach idle tasks, and the aborted tasks waiting to be run once more,
    /// to drop their futures (`registry/`).
    registry: Registry<Runnable>,
    /// The executor's clock and the readings a turn takes (`time.rs`).
    time: Time,
    /// Where the executor is in its shutdown (`stop.rs`).
    stop: StopState,
    /// The turn in progress (`turn.rs`).
    turn: TurnState,
    /// Statistics, slow-poll reports and the user's hooks.
    observe: Observers,
    /// The `Rc` this core lives in, for the queue handles made from inside
    /// a task.
    this: Weak<Core>,
}

/// What the executor records of its work, and the hooks it reports to.
struct Observers {
    counters: ExecutorCounters,
    /// The slow-poll threshold, in nanoseconds.
    slow_poll: u64,
    /// A slow poll that just ended, for the loop to report (boxed: moved in
    /// and out of the cell on every poll, it should be one word).
    slow_report: Cell<Option<Box<PollReport>>>,
    hooks: Hooks,
    /// Whether a poll or termination hook or the watchdog is set, or a task
    /// has a console span (see `Core::instrumented`).
    instrumented: Cell<bool>,
    /// Whether a poll hook or the termination hook is set, or a task has a
    /// console span: what the end of a poll tells (see `Core::tells_tasks`).
    tells_tasks: Cell<bool>,
    /// The before-poll hook was called for the run in progress: its
    /// after-poll hook is called however the run ends.
    before_called: Cell<bool>,
    #[cfg(feature = "metrics")]
    metrics: RefCell<crate::observe::metrics::Publisher>,
    #[cfg(feature = "console")]
    console: console::ConsoleSpans,
}

impl Core {
    pub(crate) fn new(
        queues: Vec<(u32, QueueScheduler)>,
        config: Config,
        clock: Clock,
        hooks: Hooks,
        this: Weak<Core>,
    ) -> Self {
        let weights: Vec<u32> = queues.iter().map(|(weight, _)| *weight).collect();
        let weights = &weights[..];
        let config_slow_poll = config.slow_poll;
        let config_driver_yield = config.driver_yield;
        let picker = Picker::new(
            weights,
            nanos(config.sched_latency),
            nanos(config.min_slice),
        );
        Core {
            shared: Arc::new(Shared::new()),
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
            buffered: Cell::new(false),
            registry: Registry::new(),
            time: Time::new(clock, nanos(config_driver_yield)),
            stop: StopState::new(),
            turn: TurnState::new(),
            observe: Observers {
                counters: ExecutorCounters::default(),
                slow_poll: nanos(config_slow_poll),
                slow_report: Cell::new(None),
                instrumented: Cell::new(hooks.task.around_polls() || hooks.watchdog.is_some()),
                tells_tasks: Cell::new(hooks.task.around_polls()),
                before_called: Cell::new(false),
                #[cfg(feature = "console")]
                console: console::ConsoleSpans::new(hooks.queue_names.clone()),
                #[cfg(feature = "metrics")]
                metrics: RefCell::new(crate::observe::metrics::Publisher::new(
                    hooks.queue_names.clone(),
                    hooks.metrics_interval,
                )),
                hooks,
            },
            this,
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

    /// Keeps a panic's payload for the run future to re-raise after the
    /// poll in progress. The first one is kept; a later one is dropped
    /// (under `catch_unwind`: a payload may panic on drop too).
    #[cold]
    #[inline(never)]
    pub(crate) fn stash_panic(&self, payload: Box<dyn Any + Send>) {
        match self.turn.panic.take() {
            None => self.turn.panic.set(Some(payload)),
            Some(first) => {
                self.turn.panic.set(Some(first));
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
            }
        }
    }

    /// Whether `waker` is the one the executor is polling with right now: the
    /// polled task's own, or the `run_until` future's between tasks. A
    /// future polled with any other waker during a turn is polled by
    /// something else inside the turn (a foreign `block_on`, or a combinator
    /// that wraps wakers).
    pub(crate) fn polls_with(&self, waker: &Waker) -> bool {
        match self.polling() {
            Some(polling) => self
                .registry
                .handle_matches(polling.slot, |own| own.data() == waker.data()),
            None => self.turn.until_waker.get() == waker.data(),
        }
    }

    /// A handle to the queue of the task being polled, if a task is.
    pub(crate) fn polling_queue(&self) -> Option<(Weak<Core>, usize)> {
        let polling = self.polling()?;
        Some((self.this.clone(), polling.queue))
    }

    /// The thread-safe half, for a `Spawner`.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// How many tasks are live: spawned and not ended.
    pub(crate) fn live_tasks(&self) -> usize {
        self.registry.len()
    }

    /// A snapshot of the executor-wide statistics.
    pub(crate) fn stats(&self) -> ExecutorStats {
        let now = self.time.clock.raw();
        let uptime = self.time.clock.nanos_between(self.time.origin, now);
        // Taken during a turn (from a task): the turn so far is busy too.
        let turn = if self.turn.running.get() {
            self.time
                .clock
                .nanos_between(self.time.turn_started.get(), now)
        } else {
            0
        };
        let live = self.registry.len();
        let sched = self.sched.borrow();
        let queues = sched.queues.iter().map(|q| (&q.counters, q.len()));
        self.observe.counters.snapshot(uptime, turn, live, queues)
    }

    /// A snapshot of the statistics of the queue at `index`.
    pub(crate) fn queue_stats(&self, index: usize) -> QueueStats {
        let mut sched = self.sched.borrow_mut();
        let weight = sched.picker.weight(index);
        let queue = &mut sched.queues[index];
        let runnable = queue.len();
        queue.counters.snapshot(weight, runnable)
    }

    /// Tells the slow-poll hook (the user's callback, the `tracing` log) of
    /// the poll that just ended, if it was slow.
    #[inline]
    pub(crate) fn report_slow_poll(&self) {
        let Some(report) = self.observe.slow_report.take() else {
            return;
        };
        if let Some(callback) = &self.observe.hooks.on_slow_poll {
            callback(&report);
        }
    }

    /// Publishes the statistics through the `metrics` facade.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        let stats = self.stats();
        let queues: Vec<QueueStats> = (0..self.queue_count())
            .map(|index| self.queue_stats(index))
            .collect();
        let mut publisher = self.observe.metrics.borrow_mut();
        publisher.last = stats.uptime.as_nanos().try_into().unwrap_or(u64::MAX);
        publisher.publish(&stats, &queues);
    }

    /// Publishes metrics if their interval has passed (at the end of a turn).
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics_if_due(&self) {
        let due = {
            let publisher = self.observe.metrics.borrow();
            publisher.interval.is_some_and(|interval| {
                self.time.now.get().saturating_sub(publisher.last) >= interval
            })
        };
        if due {
            self.publish_metrics();
        }
    }
}

impl Drop for Core {
    /// Ends every live task: wakes them all (so idle ones are scheduled), then
    /// runs each once with the abort flag set, which drops its future on this
    /// thread and resolves its handle to `Cancelled`.
    fn drop(&mut self) {
        let core = &*self;
        core.turn.running.set(true);
        core.stop.state.set(Stop::Cancelling);
        core.shared.close_spawns();
        core.shared.close_commands();
        // Commands queued before the close are not applied: dropped here,
        // so that the thread waiting for a task dump learns the executor
        // is gone. (A queue's scheduler may panic as it drops.)
        while let Some(command) = core.shared.pop_command() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(command)));
        }
        core.shared.set_stopped();
        core.enter(|| {
            let mut stalled_since = None;
            loop {
                let live = core.registry.len();
                if live == 0 && core.shared.is_empty() {
                    break;
                }
                core.cancel_live();
                if core.registry.len() < live {
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
