//! Executor time: the clock, and the readings a turn takes of it.
//!
//! The executor reads the clock once per poll (see `Core::poll_done`); in
//! between it keeps *executor-clock nanoseconds* (`now`), counted from the
//! executor's creation, which stamp arrivals, runnable times and deadlines.

use std::cell::Cell;

use crate::base::clock::Clock;

/// The executor's clock and the readings of the turn in progress.
pub(crate) struct Time {
    pub(super) clock: Clock,
    /// Raw reading that executor-clock nanoseconds count from.
    pub(super) origin: u64,
    /// Executor-clock nanoseconds as of the last clock read.
    pub(super) now: Cell<u64>,
    /// Raw reading at the start of the current poll.
    pub(super) poll_started: Cell<u64>,
    /// Raw reading at the end of the last poll and the poll's length, taken
    /// by the task's own future as it returns (the one clock read per
    /// poll), for the loop to pick up.
    pub(super) poll_ended: Cell<Option<(u64, u64)>>,
    /// Raw reading at the start of the current turn, for statistics taken
    /// during one.
    pub(super) turn_started: Cell<u64>,
    /// `driver_yield` in raw ticks: how long a turn may hold the host's
    /// thread, checked after every poll.
    pub(super) driver_yield_ticks: u64,
}

impl Time {
    pub(super) fn new(clock: Clock, driver_yield: u64) -> Self {
        let origin = clock.raw();
        Time {
            driver_yield_ticks: clock.ticks_for(driver_yield),
            clock,
            origin,
            now: Cell::new(0),
            poll_started: Cell::new(0),
            poll_ended: Cell::new(None),
            turn_started: Cell::new(origin),
        }
    }

    /// Executor-clock nanoseconds now (a fresh clock reading).
    pub(super) fn now_nanos(&self) -> u64 {
        self.clock.nanos_between(self.origin, self.clock.raw())
    }

    /// Moves the executor clock to raw reading `raw`.
    pub(super) fn set_now_raw(&self, raw: u64) {
        self.now.set(self.clock.nanos_between(self.origin, raw));
    }

    /// Reads the clock, moves the executor clock to the reading, and
    /// returns it (raw): after work that is nobody's poll.
    pub(super) fn reread(&self) -> u64 {
        let raw = self.clock.raw();
        self.set_now_raw(raw);
        raw
    }
}
