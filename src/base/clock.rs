//! The one source of time for the executor.
//!
//! The executor reads the clock once per poll, to charge the poll to its task,
//! its queue and the running timeslice. Reads go through [`Clock`] so that the
//! cheap counter (TSC, where it is invariant; the OS monotonic clock otherwise)
//! can be swapped for a [`ManualClock`] in tests: shares, slices and preemption
//! are then exact and independent of how busy the machine is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The time source of an executor. Cheap to clone.
///
/// [`Clock::system`] is the default. [`Clock::manual`] gives a clock that only
/// moves when told to, for deterministic tests of scheduling behaviour.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: quanta::Clock,
    /// Under Miri, which cannot run quanta's TSC detection and reads
    /// (inline assembly): the system clock is a mock clock that every read
    /// first moves to the OS clock's time since the clock was made.
    #[cfg(miri)]
    follow_os: Option<(Arc<quanta::Mock>, std::time::Instant)>,
}

impl Clock {
    /// The machine's clock: the TSC where it is invariant, else the OS monotonic clock.
    #[cfg(not(miri))]
    pub fn system() -> Self {
        Clock {
            inner: quanta::Clock::new(),
        }
    }

    /// The machine's clock (under Miri: the OS clock, through a mock).
    #[cfg(miri)]
    pub fn system() -> Self {
        let (inner, mock) = quanta::Clock::mock();
        Clock {
            inner,
            follow_os: Some((mock, std::time::Instant::now())),
        }
    }

    /// A clock that stands still until [`ManualClock::advance`] moves it.
    ///
    /// ```
    /// use clockworker::Clock;
    /// use std::time::Duration;
    ///
    /// let (clock, hand) = Clock::manual();
    /// let before = clock.now_nanos();
    /// hand.advance(Duration::from_millis(3));
    /// assert_eq!(clock.now_nanos() - before, 3_000_000);
    /// ```
    pub fn manual() -> (Self, ManualClock) {
        let (inner, mock) = quanta::Clock::mock();
        let hand = ManualClock {
            mock,
            advancing: Arc::new(Mutex::new(())),
        };
        let clock = Clock {
            inner,
            #[cfg(miri)]
            follow_os: None,
        };
        (clock, hand)
    }

    /// Nanoseconds since an arbitrary, fixed origin.
    pub fn now_nanos(&self) -> u64 {
        self.inner.delta_as_nanos(0, self.raw())
    }

    /// A raw reading, only meaningful to [`Clock::nanos_between`]. Cheaper than
    /// [`Clock::now_nanos`]: the scaling to nanoseconds is deferred.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        #[cfg(miri)]
        if let Some((mock, origin)) = &self.follow_os {
            let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            mock.increment(now.saturating_sub(mock.value()));
        }
        self.inner.raw()
    }

    /// Nanoseconds between two raw readings (0 if `end` is before `start`).
    #[inline]
    pub(crate) fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.inner.delta_as_nanos(start, end)
    }

    /// The fewest raw ticks that span at least `nanos` nanoseconds
    /// (`u64::MAX` if no span does): a limit checked on every poll is then
    /// a subtraction of two readings, not a conversion (a 128-bit multiply
    /// and shift for the TSC).
    pub(crate) fn ticks_for(&self, nanos: u64) -> u64 {
        if nanos == 0 {
            return 0;
        }
        let spans = |ticks: u64| self.inner.delta_as_nanos(0, ticks) >= nanos;
        // Doubling to a span long enough, then halving the gap: the
        // conversion is monotonic over the range this explores.
        let mut high = 1u64;
        while !spans(high) {
            if high > u64::MAX / 2 {
                return u64::MAX;
            }
            high *= 2;
        }
        let mut low = high / 2;
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if spans(mid) {
                high = mid;
            } else {
                low = mid;
            }
        }
        high
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// The hand of a [`Clock::manual`] clock. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct ManualClock {
    mock: Arc<quanta::Mock>,
    /// Serialises advances, so that two of them from different threads
    /// cannot both see room below `u64::MAX` and together wrap past it.
    advancing: Arc<Mutex<()>>,
}

impl ManualClock {
    /// Moves the clock forward by `by`, stopping at the end of its range
    /// (`u64::MAX` nanoseconds, some 584 years): it never goes backwards.
    ///
    /// ```
    /// use clockworker::Clock;
    /// use std::time::Duration;
    ///
    /// let (clock, hand) = Clock::manual();
    /// hand.advance(Duration::MAX);
    /// let end = clock.now_nanos();
    /// hand.advance(Duration::from_secs(1));
    /// assert_eq!(clock.now_nanos(), end);
    /// ```
    pub fn advance(&self, by: Duration) {
        // The mock's own addition wraps; a poisoned lock guards nothing
        // but this read-then-add, so it is still good to use.
        let _advancing = self
            .advancing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = u64::MAX - self.mock.value();
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.mock.increment(by.min(room));
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (some 584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ticks_for` gives the shortest span of raw ticks that covers the
    /// nanoseconds asked for, on the machine's clock and on a manual one.
    #[test]
    fn ticks_for_is_the_shortest_span_that_covers_the_nanoseconds() {
        let (manual, _hand) = Clock::manual();
        for clock in [Clock::system(), manual] {
            assert_eq!(clock.ticks_for(0), 0);
            for nanos in [1, 7, 1_000, 100_000, 2_000_000, 1 << 40] {
                let ticks = clock.ticks_for(nanos);
                assert!(clock.nanos_between(0, ticks) >= nanos, "{nanos} ns");
                assert!(clock.nanos_between(0, ticks - 1) < nanos, "{nanos} ns");
            }
            assert_eq!(clock.ticks_for(u64::MAX), u64::MAX);
        }
    }
}
