//! The executor's side of a shutdown: where it is, moving it on from the
//! loop, and the future that waits for its end.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::base::clock::nanos;
use crate::base::shutdown::Shutdown;
use crate::runtime::Core;
use crate::runtime::inbox::Shared;

/// Where the executor is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    /// Until the executor-clock nanoseconds given, if any.
    Draining(Option<u64>),
    Cancelling,
    Done,
}

/// The shutdown's state, and who waits for its end.
pub(crate) struct StopState {
    pub(super) state: Cell<Stop>,
    /// The `run` futures waiting for the shutdown to be done.
    pub(super) waiters: RefCell<Vec<Waker>>,
}

impl StopState {
    pub(super) fn new() -> Self {
        StopState {
            state: Cell::new(Stop::Running),
            waiters: RefCell::new(Vec::new()),
        }
    }
}

impl Core {
    /// Starts (or hastens) the shutdown. Runs no user code: the tasks are
    /// cancelled by the loop (`advance_shutdown`).
    pub(crate) fn begin_shutdown(&self, mode: Shutdown) {
        self.shared.close_spawns();
        let now = self.time.now_nanos();
        let next = match (self.stop.state.get(), mode) {
            (Stop::Done | Stop::Cancelling, _) => return,
            (_, Shutdown::Cancel) => Stop::Cancelling,
            (current, Shutdown::Drain { deadline }) => {
                let asked = deadline.map(|within| now.saturating_add(nanos(within)));
                if let Some(within) = deadline {
                    wake_at_deadline(&self.shared, within);
                }
                match current {
                    // The earlier deadline holds.
                    Stop::Draining(Some(held)) => {
                        Stop::Draining(Some(asked.map_or(held, |asked| asked.min(held))))
                    }
                    _ => Stop::Draining(asked),
                }
            }
        };
        self.stop.state.set(next);
        if !self.turn.running.get() {
            self.shared.wake_host();
        }
    }

    /// Moves the shutdown on, from the loop: cancels what must be cancelled
    /// and notices when it is done. Returns whether it did anything (ran
    /// user code or changed state), so the loop reads the clock again.
    pub(crate) fn advance_shutdown(&self) -> bool {
        let mut acted = false;
        if let Stop::Draining(Some(deadline)) = self.stop.state.get() {
            if self.time.now_nanos() >= deadline {
                self.stop.state.set(Stop::Cancelling);
                acted = true;
            }
        }
        if self.stop.state.get() == Stop::Cancelling {
            acted |= self.cancel_live();
        }
        if self.registry.is_empty() && self.shared.is_empty() {
            self.stop.state.set(Stop::Done);
            self.shared.set_stopped();
            let waiters = std::mem::take(&mut *self.stop.waiters.borrow_mut());
            waiters.into_iter().for_each(Waker::wake);
            acted = true;
        }
        acted
    }

    /// Whether a shutdown is under way (the loop moves it on).
    #[inline]
    pub(crate) fn stopping(&self) -> bool {
        matches!(self.stop.state.get(), Stop::Draining(_) | Stop::Cancelling)
    }

    /// Whether a task spawned on the executor's thread is accepted now.
    #[inline]
    pub(crate) fn accepts_local_spawn(&self) -> bool {
        match self.stop.state.get() {
            Stop::Running => true,
            Stop::Draining(_) => self.turn.running.get(),
            Stop::Cancelling | Stop::Done => false,
        }
    }

    /// Whether the shutdown has completed.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.stop.state.get() == Stop::Done
    }
}

/// Wakes the executor once `within` has passed, so that it checks a drain
/// deadline even if no task wakes it; then again every `DEADLINE_RECHECK`
/// until the shutdown is done, in case the executor's clock (a manual one,
/// say) had not reached the deadline yet. Holds the executor's shared half
/// weakly: a dropped executor ends the thread at its next wake.
fn wake_at_deadline(shared: &Arc<Shared>, within: Duration) {
    let shared = Arc::downgrade(shared);
    let _ = std::thread::Builder::new()
        .name("clockworker-drain-deadline".into())
        .spawn(move || {
            std::thread::sleep(within);
            while let Some(shared) = shared.upgrade() {
                if shared.is_stopped() {
                    return;
                }
                shared.notify();
                drop(shared);
                std::thread::sleep(DEADLINE_RECHECK);
            }
        });
}

/// How often a drain deadline that has passed in real time is checked
/// again while the executor's clock has not reached it.
const DEADLINE_RECHECK: Duration = Duration::from_millis(10);

/// The `until` future of [`Executor::run`](crate::Executor::run): ready once
/// the shutdown is done.
pub(crate) struct Stopped<'a> {
    pub(crate) core: &'a Core,
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.core.is_shut_down() {
            return Poll::Ready(());
        }
        let mut waiters = self.core.stop.waiters.borrow_mut();
        if !waiters.iter().any(|waiter| waiter.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
