//! The executor's tunables, their defaults, and their validation.

use std::time::Duration;

use crate::base::error::BuildError;

/// Default target period in which every runnable queue gets a turn.
pub const DEFAULT_SCHED_LATENCY: Duration = Duration::from_millis(2);
/// Default shortest timeslice.
pub const DEFAULT_MIN_SLICE: Duration = Duration::from_micros(250);
/// Default longest the host runtime waits for the thread while the executor
/// holds it (see [`ExecutorBuilder::with_driver_yield`](crate::ExecutorBuilder::with_driver_yield) for the trade-off).
pub const DEFAULT_DRIVER_YIELD: Duration = Duration::from_micros(100);
/// Default number of polls after which control goes back to the host runtime.
pub const DEFAULT_MAX_POLLS_PER_YIELD: u32 = 61;
/// Default slow-poll threshold: polls at least this long count as slow in
/// [`QueueStats::slow_polls`](crate::QueueStats::slow_polls).
pub const DEFAULT_SLOW_POLL: Duration = Duration::from_millis(10);

/// The most queues one executor holds. A task carries its queue's index in
/// two bytes of its metadata (every byte there is paid per task); a queue
/// costs some 10 KiB of statistics, so this is some 640 MiB of queues.
pub const MAX_QUEUES: usize = 1 << 16;

/// Tunables shared by the executor's layers.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) sched_latency: Duration,
    pub(crate) min_slice: Duration,
    pub(crate) driver_yield: Duration,
    pub(crate) deferred_host_yield: bool,
    pub(crate) max_polls_per_yield: u32,
    pub(crate) panic_on_task_panic: bool,
    pub(crate) statistics: bool,
    pub(crate) slow_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sched_latency: DEFAULT_SCHED_LATENCY,
            min_slice: DEFAULT_MIN_SLICE,
            driver_yield: DEFAULT_DRIVER_YIELD,
            deferred_host_yield: true,
            max_polls_per_yield: DEFAULT_MAX_POLLS_PER_YIELD,
            panic_on_task_panic: true,
            statistics: true,
            slow_poll: DEFAULT_SLOW_POLL,
        }
    }
}

impl Config {
    /// Refuses settings the executor cannot run with: a zero duration where
    /// it divides or bounds time (and a zero `watchdog` threshold, if one
    /// is set), and a zero poll budget.
    pub(crate) fn check(&self, watchdog: Option<Duration>) -> Result<(), BuildError> {
        let positive = [
            ("sched_latency", Some(self.sched_latency)),
            ("min_slice", Some(self.min_slice)),
            ("slow_poll threshold", Some(self.slow_poll)),
            ("watchdog threshold", watchdog),
        ];
        if let Some((setting, _)) = positive
            .into_iter()
            .find(|(_, value)| value.is_some_and(|value| value.is_zero()))
        {
            return Err(BuildError::InvalidDuration {
                setting,
                reason: "must be greater than zero",
            });
        }
        if self.max_polls_per_yield == 0 {
            return Err(BuildError::ZeroPollBudget);
        }
        Ok(())
    }
}
