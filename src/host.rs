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
//! it. A task that loops on an always-ready channel is still made to yield,
//! as on Tokio.

use std::task::Context;

/// Hands the thread back to the host with the executor still runnable: the
/// host polls it again, after its own IO and timers have had their turn
/// where the host tells them apart (Tokio, with the `tokio` feature).
pub(crate) fn yield_to_host(cx: &mut Context<'_>) {
    #[cfg(feature = "tokio")]
    {
        use std::future::Future;
        // Inside a Tokio runtime this hands the waker to the scheduler's
        // deferred list, woken after the driver's next poll; outside one,
        // it wakes at once.
        let mut yielded = std::pin::pin!(tokio::task::yield_now());
        if yielded.as_mut().poll(cx).is_pending() {
            return;
        }
    }
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
