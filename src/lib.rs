#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

// The layers, bottom to top; each imports only from those above it in this
// list (the runtime core's parts also from each other). ARCHITECTURE.md
// walks through them.
mod base;
mod observe;
mod runtime;
mod schedulers;

// The public face: thin types over the runtime core.
mod builder;
mod executor;
#[cfg(feature = "hyper")]
pub mod hyper_rt;
mod join;
#[cfg(feature = "pool")]
mod pool;
mod queue;
mod run;
mod spawner;
mod yielding;

pub use base::clock::{Clock, ManualClock};
pub use base::config::{
    DEFAULT_DRIVER_YIELD, DEFAULT_MAX_POLLS_PER_YIELD, DEFAULT_MIN_SLICE, DEFAULT_SCHED_LATENCY,
    DEFAULT_SLOW_POLL, MAX_QUEUES,
};
pub use base::error::DumpError;
pub use base::error::{BuildError, ConfigError, NoCurrentTask, UnknownQueue};
pub use base::error::{JoinError, PanicError};
pub use base::group::group_id;
pub use base::histogram::{Bucket, Histogram};
pub use base::id::{TaskEnding, TaskId};
pub use base::key::QueueKey;
pub use base::shutdown::Shutdown;
pub use builder::ExecutorBuilder;
pub use executor::Executor;
#[cfg(feature = "hyper")]
pub use hyper_rt::SpawnerExecutor;
pub use join::JoinHandle;
pub use observe::dump::{TaskDump, TaskSnapshot, TaskState};
pub use observe::slow::SlowPoll;
pub use observe::stats::{ExecutorStats, QueueStats};
pub use observe::task_hooks::TaskDetails;
#[cfg(feature = "pool")]
pub use pool::{Pool, PoolBuilder, PoolError};
pub use queue::{QueueHandle, TaskBuilder, spawn};
pub use run::RunUntil;
pub use runtime::scheduler::{ReadyTask, Reports, Scheduler, TaskInfo};
pub use schedulers::{ArrivalFifo, Edf, GroupFair, LAS, RunnableFifo};
pub use spawner::Spawner;
pub use yielding::{YieldMaybe, YieldNow, yield_maybe, yield_now};
