//! The host runtime, as the executor sees it: how a turn hands the thread
//! back, and what the host's cooperative budget says.
//!
//! The executor is one task of its host. Two things about that task matter
//! for the tasks inside it.
//!
//! **Handing back must reach the host's reactor.** A turn that ends with
//! tasks still runnable wakes its own host task, so that the host polls it
//! again. On Tokio a task that wakes itself goes straight back onto the run
//! queue, and Tokio polls its IO driver and timers only every 61 tasks or
//! when the queue runs dry: a busy executor would be polled again and again
//! while a socket's readiness waits. Tokio's own `yield_now` defers the wake
//! until after the driver has run, and with the `tokio` feature that is what
//! [`yield_to_host`] does (outside a Tokio runtime it wakes at once, as on
//! every other host).
//!
//! **Tokio's budget belongs to one host poll.** Tokio grants each poll of a
//! task 128 operations on its resources (channels, sockets, timers); once
//! they are spent, every resource answers `Pending` (and wakes the task
//! after the driver has run), so that one task cannot hold the thread
//! forever. All the tasks of one executor turn share the turn's grant. Left
//! alone, the first task of a turn spends it and every later task of the turn
//! is refused with data ready. With the `tokio` feature the executor instead
//! ends its turn as soon as the grant is spent ([`budget_spent`]), and
//! requeues the task that was refused: the next host poll brings a fresh
//! grant, and the queue picker, not the order of the turn, decides who gets
//! it. A task may still get only what the tasks before it in the turn left
//! of the grant; it is never refused and then left waiting. A task that
//! loops on an always-ready channel is still made to yield, as on Tokio.
//!
//! Tokio delivers a deferred wake when its scheduler next parks. A foreign
//! `block_on` (`futures::executor::block_on`, pollster) called on a Tokio
//! thread keeps it from ever parking, so the wake never comes: the same
//! limitation as Tokio's own `yield_now` (tokio-rs/tokio#6996). Such an
//! executor must be built with
//! [`with_deferred_host_yield(false)`](crate::ExecutorBuilder::with_deferred_host_yield).

use std::cell::Cell;
use std::task::Context;

/// What the executor knows of its host between turns.
#[derive(Debug)]
pub(crate) struct HostState {
    /// Raw clock reading since which the host has had no chance to run its
    /// reactor: the start of the first turn after one that ended otherwise
    /// than by a budget yield. `driver_yield` counts from here.
    pub(super) held_since: Cell<u64>,
    /// Whether the last turn ended in a way that lets the host run its
    /// reactor before the next one (idle, finished, host yield).
    pub(super) reactor_ran: Cell<bool>,
    /// The `run_until` future spent the host's budget in the last turn
    /// before any task ran: the next turn polls tasks first.
    pub(super) until_after_tasks: Cell<bool>,
}

impl HostState {
    pub(crate) fn new() -> Self {
        HostState {
            held_since: Cell::new(0),
            reactor_ran: Cell::new(true),
            until_after_tasks: Cell::new(false),
        }
    }
}

/// Hands the thread back to the host with the executor still runnable: the
/// host polls it again, after its own IO and timers have had their turn
/// where the host tells them apart (Tokio, with the `tokio` feature, when
/// `deferred`).
pub(crate) fn yield_to_host(cx: &mut Context<'_>, deferred: bool) {
    #[cfg(feature = "tokio")]
    if deferred {
        use std::future::Future;
        // Inside a Tokio runtime this hands the waker to the scheduler's
        // deferred list, woken after the driver's next poll; outside one,
        // it wakes at once.
        let mut yielded = std::pin::pin!(tokio::task::yield_now());
        if yielded.as_mut().poll(cx).is_pending() {
            return;
        }
    }
    let _ = deferred;
    cx.waker().wake_by_ref();
}

/// Whether the host's cooperative budget for the current host poll is spent:
/// a resource used now would answer `Pending`. Always `false` without the
/// `tokio` feature and outside a Tokio runtime.
#[inline]
pub(crate) fn budget_spent() -> bool {
    #[cfg(feature = "tokio")]
    {
        !tokio::task::coop::has_budget_remaining()
    }

    #[cfg(not(feature = "tokio"))]
    {
        false
    }
}
