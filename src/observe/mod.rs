//! Observability, built on the leaves only: statistics, slow-poll reports,
//! the stall watchdog and the `metrics` export.

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub(crate) mod slow;
pub(crate) mod stats;
pub(crate) mod watchdog;
