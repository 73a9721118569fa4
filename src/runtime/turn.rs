//! The executor loop: the future a host runtime polls to run the executor.
//!
//! Each poll by the host is a *turn*. A turn:
//!
//! 1. polls the `run_until` future if it was woken;
//! 2. moves pending remote wakes (the inbox) into their queues, which may flag
//!    the running slice for preemption (wakes from this thread went straight
//!    into their queues as they happened);
//! 3. drops the futures of aborted tasks;
//! 4. asks for the next task (ending the slice when its queue is empty, its
//!    time is up or it is preempted, and picking the next queue) and polls it;
//! 5. moves executor time on by the poll's length. The clock is read once
//!    per poll, by the task's own future as it returns (see
//!    `Core::poll_done`), which also charges the poll to the slice, the task
//!    and its group, counts it, and tells the queue's scheduler if it asked;
//! 6. ends the turn, handing control back to the host, when no task is
//!    runnable; when the turn has held the thread for `driver_yield` or made
//!    `max_polls_per_yield` polls (then it asks the host to poll it again
//!    after the host's own IO and timers, see `host::yield_to_host`); or when
//!    the host's cooperative budget is spent (Tokio: the next host poll
//!    brings a fresh one, see the `host` module).
//!
//! `yield_maybe` inside a task checks the same `driver_yield` deadline, so a
//! task that loops with it gives the thread back to the host in time even
//! when no other task is waiting: the host's reactor is how the executor
//! learns that a socket became ready.
//!
//! Several run futures may poll one executor (say `run()` spawned on a
//! `LocalSet` while `run_until` is awaited elsewhere); tasks are run by
//! whichever is polled. Each keeps its waker in the core's runner list, and
//! the remote inbox wakes the one that registered last. When a run future
//! finishes or is dropped, it wakes the others, so that one of them takes over
//! the inbox.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

use slab::Slab;
use std::task::{Context, Waker};

use crate::observe::stats::bump;
use crate::runtime::Core;
use crate::runtime::host::{self, HostState};
use crate::runtime::task::{Runnable, TaskMeta};

/// The turn in progress, and the run futures that make turns.
pub(crate) struct TurnState {
    /// A turn is in progress on this thread (also while dropping).
    pub(super) running: Cell<bool>,
    /// The metadata of the task being polled, null between polls: one
    /// store before a poll and one at its end, and what is needed of it
    /// (see [`Polling`]) read only when it is needed.
    ///
    /// Invariant: non-null only from just before a task's `Runnable::run`
    /// in the turn's loop until its future's poll ends (`Core::poll_done`,
    /// called as the task's future returns, clears it as it returns or
    /// unwinds; the loop clears it again after the run, and the `Running`
    /// guard if the run unwinds), and then it points to that task's
    /// metadata. The run holds a reference to the task while the future is
    /// polled, so the metadata lives that long; it may not live longer: as
    /// a task completes, async-task drops the run's reference *before* it
    /// wakes the task's awaiter, user code that may drop the last handle.
    pub(super) polling: Cell<*const TaskMeta>,
    /// Data pointer of the waker the `run_until` future is polled with,
    /// while it is: with the task's waker, how a nested `run_until` tells
    /// being awaited from being blocked on (see `RunUntil::poll`).
    pub(super) until_waker: Cell<*const ()>,
    /// Wakers of the run futures currently polling this executor.
    pub(super) runners: RefCell<Slab<Waker>>,
    /// The payload of a panic to re-raise from the run future.
    pub(super) panic: Cell<Option<Box<dyn Any + Send>>>,
    /// How long the host has waited, and how the last turn ended.
    pub(super) host: HostState,
}

impl TurnState {
    pub(super) fn new() -> Self {
        TurnState {
            running: Cell::new(false),
            polling: Cell::new(std::ptr::null()),
            until_waker: Cell::new(std::ptr::null()),
            runners: RefCell::new(Slab::new()),
            panic: Cell::new(None),
            host: HostState::new(),
        }
    }
}

/// Ends the poll of the task being polled as it drops (see
/// [`Core::end_poll`]).
pub(crate) struct EndPoll<'a>(&'a TurnState);

impl Drop for EndPoll<'_> {
    fn drop(&mut self) {
        self.0.polling.set(std::ptr::null());
    }
}

/// Marks a turn in progress; cleared on every exit, unwinding included.
struct Running<'a>(&'a Core);

impl<'a> Running<'a> {
    fn enter(core: &'a Core) -> Self {
        core.turn.running.set(true);
        Running(core)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.turn.running.set(false);
        // Already null unless a panic unwound out of a poll: no later code
        // may see that task as the one being polled.
        self.0.turn.polling.set(std::ptr::null());
    }
}

/// What is known of the task being polled: where `clockworker::spawn`
/// puts a task (its queue), the group a spawned task inherits, and whose
/// waker a nested `run_until` is polled with (its slot).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polling {
    pub(crate) queue: usize,
    pub(crate) group: Option<u64>,
    /// The task's slot in the live-task index (`Core::registry`), where its
    /// waker is.
    pub(crate) slot: usize,
}

impl Core {
    /// The task being polled, if one is.
    pub(crate) fn polling(&self) -> Option<Polling> {
        // SAFETY: by the invariant of `TurnState::polling`, a non-null
        // pointer is the metadata of the task whose future is being polled,
        // on this thread (`Core` is `!Sync`), so this call is made inside
        // that poll, while the run's reference keeps the metadata alive.
        // No reference escapes this function.
        let meta = unsafe { self.turn.polling.get().as_ref() }?;
        Some(Polling {
            queue: meta.queue(),
            group: meta.group().map(|group| group.id),
            slot: meta.slot(Ordering::Relaxed),
        })
    }

    /// Runs the task the turn polls (in `slot`). The task may be freed as
    /// this returns.
    #[inline]
    fn run_polled(&self, runnable: Runnable, slot: usize) {
        if self.instrumented() {
            self.run_watched(runnable, slot);
        } else {
            runnable.run();
        }
    }

    /// [`run_polled`](Self::run_polled) after the before-poll hook, under
    /// the watchdog's eye and inside the task's console span, if any is on.
    /// The time the hooks and the subscriber take is nobody's: the poll's
    /// clock reading is taken again after each.
    #[inline(never)]
    fn run_watched(&self, runnable: Runnable, slot: usize) {
        let meta = runnable.metadata();
        // A run that drops an aborted task's future is no poll: no
        // before-poll hook, no console poll. (Relaxed: as in the task's own
        // check.)
        if meta.aborted.load(Ordering::Relaxed) {
            runnable.run();
        } else {
            if self.observe.hooks.task.before_poll.is_some() {
                self.task_polling(meta);
                let raw = self.time.clock.raw();
                self.time.poll_started.set(raw);
                self.time.set_now_raw(raw);
            }
            // Entered around the whole run, not only the future's poll: a
            // wake during the poll reaches the schedule function as the run
            // ends, and only inside the span is it a self-wake.
            #[cfg(feature = "console")]
            let span = self.console_span(slot);
            #[cfg(feature = "console")]
            let entered = span
                .as_deref()
                .and_then(|span| self.guarded(|| span.enter()));
            #[cfg(not(feature = "console"))]
            let _ = slot;
            if let Some(watchdog) = &self.observe.hooks.watchdog {
                let report = meta.report(std::time::Duration::ZERO);
                let _watched = watchdog.watch(report, self.time.poll_started.get());
                runnable.run();
            } else {
                runnable.run();
            }
            // The span's exit, and its close if the task ended (the table
            // let go of it in `poll_done`): subscriber code.
            #[cfg(feature = "console")]
            {
                self.guarded(|| drop(entered));
                self.guarded(|| drop(span));
            }
        }
        if self.tells_tasks() {
            // The after-poll and termination hooks and the span's close ran
            // after the poll's clock reading: their time is not the next
            // poll's either.
            if let Some((_, elapsed)) = self.time.poll_ended.get() {
                let raw = self.time.clock.raw();
                self.time.poll_ended.set(Some((raw, elapsed)));
                self.time.set_now_raw(raw);
            }
        }
    }

    /// Whether a task of the turn is being polled (not the `run_until`
    /// future, nor a run that drops an aborted task's future), and a guard
    /// that ends its poll as it drops: from then on, no task is being
    /// polled.
    #[inline]
    pub(crate) fn end_poll(&self) -> (bool, EndPoll<'_>) {
        (!self.turn.polling.get().is_null(), EndPoll(&self.turn))
    }

    /// Whether a turn is in progress on this thread: a run future polled
    /// now is polled from inside the executor.
    pub(crate) fn is_running(&self) -> bool {
        self.turn.running.get()
    }

    /// Whether this thread is inside a turn made by the run future whose
    /// `run_until` waker has data pointer `until`: that turn polls the
    /// future again, if woken, before it ends.
    pub(crate) fn in_turn_of(until: *const ()) -> bool {
        Core::with_current(|core| core.turn.running.get() && core.turn.until_waker.get() == until)
            .unwrap_or(false)
    }

    /// Enters a run future polled with `waker` in the runner list (`slot`
    /// is its place there, once it has one), and makes it the host task the
    /// inbox wakes.
    pub(crate) fn register_runner(&self, slot: &mut Option<usize>, waker: &Waker) {
        self.shared.register_host(waker);
        let mut runners = self.turn.runners.borrow_mut();
        match slot {
            Some(slot) => {
                let known = &mut runners[*slot];
                if !known.will_wake(waker) {
                    known.clone_from(waker);
                }
            }
            None => *slot = Some(runners.insert(waker.clone())),
        }
    }

    /// Takes a run future that finished or was dropped out of the runner
    /// list, and wakes the others, so that one of them takes over the inbox.
    pub(crate) fn leave_runner(&self, slot: usize) {
        let others: Vec<Waker> = {
            let mut runners = self.turn.runners.borrow_mut();
            runners.remove(slot);
            runners.iter().map(|(_, waker)| waker.clone()).collect()
        };
        others.into_iter().for_each(Waker::wake);
    }

    /// Runs one turn for a run future polled with `cx`, with this core as
    /// the thread's current executor. `poll_until` polls the `run_until`
    /// future (with `until_waker`) when `until_woken` says it was woken.
    /// Returns `true` when it reported the future finished.
    pub(crate) fn run_turn(
        &self,
        cx: &mut Context<'_>,
        until_woken: &AtomicBool,
        until_waker: &Waker,
        poll_until: &mut dyn FnMut() -> bool,
    ) -> bool {
        self.turn.until_waker.set(until_waker.data());
        let _running = Running::enter(self);
        let _unwinding = WakeIfUnwinding {
            woken: until_woken,
            host: cx.waker(),
        };
        self.enter(|| self.turn(cx, until_woken, poll_until))
    }

    /// One turn of the loop (see the module documentation). Returns `true` when
    /// `poll_until` reported the `run_until` future finished.
    fn turn(
        &self,
        cx: &mut Context<'_>,
        until_woken: &AtomicBool,
        poll_until: &mut dyn FnMut() -> bool,
    ) -> bool {
        bump(&self.observe.counters.turns, 1);
        let start = self.time.clock.raw();
        self.time.turn_started.set(start);
        if self.turn.host.reactor_ran.get() {
            self.turn.host.held_since.set(start);
        }
        let (end, last) = self.polls(cx, until_woken, poll_until, start);
        // After a budget yield the host polls the executor again at once,
        // maybe without running its reactor (Tokio, with the executor as a
        // spawned task): the wait for the reactor goes on.
        self.turn.host.reactor_ran.set(end != TurnEnd::Budget);
        let held = self.time.clock.nanos_between(start, last);
        bump(&self.observe.counters.busy_nanos, held);
        if self.config.statistics {
            self.observe
                .counters
                .turn_duration
                .borrow_mut()
                .record(held);
        }
        #[cfg(feature = "metrics")]
        self.publish_metrics_if_due();
        end == TurnEnd::Finished
    }

    /// The polls of a turn that started at clock reading `start`. Returns
    /// why the turn ended, and the latest clock reading.
    fn polls(
        &self,
        cx: &mut Context<'_>,
        until_woken: &AtomicBool,
        poll_until: &mut dyn FnMut() -> bool,
        start: u64,
    ) -> (TurnEnd, u64) {
        let clock = &self.time.clock;
        let driver_yield = self.time.driver_yield_ticks;
        let max_polls = self.config.max_polls_per_yield;
        let mut last = start;
        self.time.set_now_raw(last);
        let mut polls = 0;
        // The `run_until` future spent the last turn's budget before any
        // task ran: this turn, tasks go first, or a future that always
        // spends the budget (an accept loop with a backlog) would starve
        // them.
        let mut until_after_tasks = self.turn.host.until_after_tasks.replace(false);
        loop {
            if !until_after_tasks && until_woken.load(Ordering::Relaxed) {
                until_woken.store(false, Ordering::Relaxed);
                if poll_until() {
                    return (TurnEnd::Finished, last);
                }
                // The `run_until` future is nobody's poll: not charged.
                last = self.time.reread();
                if host::budget_spent() {
                    // A task polled now would be refused by every Tokio
                    // resource.
                    self.turn.host.until_after_tasks.set(true);
                    bump(&self.observe.counters.budget_yields, 1);
                    cx.waker().wake_by_ref();
                    return (TurnEnd::Budget, last);
                }
            }
            self.drain_wakes();
            if self.stopping() && self.advance_shutdown() {
                // Cancelling tasks is nobody's poll either.
                last = self.time.reread();
                self.time.poll_ended.set(None);
                // A future that panicked as it was dropped reports it on
                // its handle; a shutdown completes (see `Shutdown`).
                if let Some(payload) = self.turn.panic.take() {
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
                }
                continue;
            }
            if self.reap_aborted() {
                // Dropping aborted futures is nobody's poll: not charged.
                // Their `Drop` may have woken tasks: take those wakes too.
                last = self.time.reread();
                // A `Drop` that panicked is that task's panic: re-raised
                // now, under the same policy as a panic in its poll, not
                // by some later, unrelated turn.
                if let Some(payload) = self.turn.panic.take() {
                    std::panic::resume_unwind(payload);
                }
                continue;
            }
            let Some(runnable) = self.next_runnable() else {
                if let Some(payload) = self.turn.panic.take() {
                    // A scheduler's `pop` panicked.
                    std::panic::resume_unwind(payload);
                }
                if until_after_tasks {
                    // No task to go first after all.
                    until_after_tasks = false;
                    continue;
                }
                if self.has_pending_work() {
                    // A scheduler dropped a task while being asked for one:
                    // the task waits to be cancelled.
                    continue;
                }
                if until_woken.load(Ordering::Relaxed) {
                    // The `run_until` future woke itself as it was polled
                    // (a yield), which does not wake the host from inside
                    // the turn (see `Core::in_turn_of`): the host is to
                    // poll again, after its own IO and timers.
                    cx.waker().wake_by_ref();
                }
                return (TurnEnd::Idle, last);
            };
            until_after_tasks = false;
            self.time.poll_started.set(last);
            let meta = runnable.metadata();
            let slot = meta.slot(Ordering::Relaxed);
            self.turn.polling.set(meta);
            self.run_polled(runnable, slot);
            self.turn.polling.set(std::ptr::null());
            // The task's future read the clock as it returned, charged the
            // poll and moved the executor's time on by its length
            // (`Core::poll_done`).
            let (now, _) = self.time.poll_ended.take().unwrap_or_else(|| {
                // Not reachable: every run of a task ends in `poll_done`,
                // which reads the clock first thing.
                let now = clock.raw();
                let elapsed = clock.nanos_between(last, now);
                self.sched.borrow_mut().picker.charge(elapsed);
                self.time.now.set(self.time.now.get() + elapsed);
                (now, elapsed)
            });
            last = now;
            if let Some(payload) = self.turn.panic.take() {
                std::panic::resume_unwind(payload);
            }
            self.report_slow_poll();
            polls += 1;
            // Measured from when the host last had its reactor run, not
            // summed over polls: the host waits for all of it, scheduling
            // work included.
            let held = last.saturating_sub(self.turn.host.held_since.get());
            if polls >= max_polls || held >= driver_yield {
                bump(&self.observe.counters.driver_yields, 1);
                host::yield_to_host(cx, self.config.deferred_host_yield);
                return (TurnEnd::Host, last);
            }
            if host::budget_spent() {
                // The task was likely refused by a resource of the host
                // because the budget ran out, not because it has nothing to
                // do: runnable again at once (a no-op if it ended or is
                // queued already; one spurious poll if it really had
                // nothing to do). The next turn brings a fresh budget.
                self.wake_slot(slot);
                bump(&self.observe.counters.budget_yields, 1);
                cx.waker().wake_by_ref();
                return (TurnEnd::Budget, last);
            }
        }
    }
}

/// Wakes the host if a panic unwinds out of the turn while the `run_until`
/// future is woken: a wake from inside the turn does not wake the host (see
/// `Core::in_turn_of`), and a host that catches the panic may poll the run
/// future again only when woken.
struct WakeIfUnwinding<'a> {
    woken: &'a AtomicBool,
    host: &'a Waker,
}

impl Drop for WakeIfUnwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && self.woken.load(Ordering::Relaxed) {
            self.host.wake_by_ref();
        }
    }
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TurnEnd {
    /// The `run_until` future finished.
    Finished,
    /// Nothing was runnable: the host polls the executor again when woken.
    Idle,
    /// The turn held the thread for `driver_yield` or `max_polls_per_yield`
    /// polls: handed back to the host, to run its reactor first.
    Host,
    /// The host's cooperative budget was spent: handed back for a fresh one.
    Budget,
}
