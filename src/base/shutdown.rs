//! Graceful shutdown: stop accepting tasks, then drain or cancel the live ones.
//!
//! # States
//!
//! ```text
//! Running ──shutdown(Drain)──> Draining ──deadline passed──> Cancelling
//!    │                            │                              │
//!    └──────shutdown(Cancel)──────┴──────────────────────────────┤
//!                                 │ no live task                 │ no live task
//!                                 └────────────> Done <──────────┘
//! ```
//!
//! - **Running → any other state** closes the spawn queue at once (a
//!   [`Spawner`](crate::Spawner) closes it itself before it sends the
//!   request), so every spawn from outside the executor is refused from
//!   then on: its handle resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled).
//! - **Draining**: the live tasks run on. Tasks spawned *by those tasks*
//!   (during a turn) are accepted, as part of the work being drained; spawns
//!   through a [`QueueHandle`](crate::QueueHandle) from outside the executor's
//!   turn are refused. A deadline, measured on the executor's clock, turns
//!   the drain into a cancel.
//! - **Cancelling**: every live task is aborted. Its future is dropped on the
//!   executor's thread, and its handle resolves to `Cancelled`. No spawn is
//!   accepted.
//! - **Done**, once no task is live and no accepted spawn is in flight:
//!   [`Executor::run`](crate::Executor::run) returns. Later spawns are
//!   refused; the executor's statistics stay readable.
//!
//! The executor owns no timer, so a drain deadline is kept by a short-lived
//! thread that sleeps until it and then wakes the executor, which checks its
//! own clock (and again every 10 ms until the shutdown is done, should that
//! clock lag). If the thread cannot be started, the deadline is checked at
//! the executor's next turn. The thread sleeps the whole deadline even if
//! the executor finishes earlier: a drain with a long deadline leaves a
//! sleeping thread behind for that long, and nothing else.

use std::time::Duration;

/// How to shut an executor down: see [`Executor::shutdown`](crate::Executor::shutdown).
///
/// Cancelling a task drops its future on the executor's thread; a future
/// whose `Drop` panics then reports [`JoinError::Panic`](crate::JoinError::Panic)
/// on its handle rather than `Cancelled`, and the panic does not propagate
/// out of [`run`](crate::Executor::run): a shutdown, once asked for,
/// completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Stop accepting new tasks, and let the live ones finish. With a
    /// `deadline`, the tasks still live that long after the executor got the
    /// request are cancelled.
    Drain {
        /// How long the live tasks may take, on the executor's clock.
        deadline: Option<Duration>,
    },
    /// Stop accepting new tasks, and cancel every live one.
    Cancel,
}
