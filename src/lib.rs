#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod builder;
mod clock;
mod context;
mod control;
mod directory;
mod error;
mod executor;
mod group;
mod histogram;
mod host;
#[cfg(feature = "hyper")]
pub mod hyper_rt;
mod inbox;
mod join;
mod key;
#[cfg(feature = "metrics")]
mod metrics;
mod picker;
#[cfg(feature = "pool")]
mod pool;
mod queue;
mod run;
mod scheduler;
mod shutdown;
mod slow;
mod spawner;
mod stats;
mod task;
mod watchdog;
mod yielding;

pub use builder::{
    DEFAULT_DRIVER_YIELD, DEFAULT_MAX_POLLS_PER_YIELD, DEFAULT_MIN_SLICE, DEFAULT_SCHED_LATENCY,
    DEFAULT_SLOW_POLL, ExecutorBuilder,
};
pub use clock::{Clock, ManualClock};
pub use error::{BuildError, ConfigError, NoCurrentTask, UnknownQueue};
pub use executor::Executor;
pub use group::group_id;
pub use histogram::{Bucket, Histogram};
#[cfg(feature = "hyper")]
pub use hyper_rt::SpawnerExecutor;
pub use join::{JoinError, JoinHandle, PanicError};
pub use key::QueueKey;
#[cfg(feature = "pool")]
pub use pool::{Pool, PoolBuilder, PoolError};
pub use queue::{QueueHandle, TaskBuilder, spawn};
pub use run::RunUntil;
pub use scheduler::{
    ArrivalFifo, Edf, GroupFair, LAS, ReadyTask, RunnableFifo, Scheduler, TaskInfo,
};
pub use shutdown::Shutdown;
pub use slow::SlowPoll;
pub use spawner::Spawner;
pub use stats::{ExecutorStats, QueueStats};
pub use task::TaskId;
pub use yielding::{YieldMaybe, YieldNow, yield_maybe, yield_now};
