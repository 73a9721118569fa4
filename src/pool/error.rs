//! [`PoolError`]: why a pool could not be built, used or shut down cleanly.

use std::error::Error;
use std::fmt;

use crate::base::error::{BuildError, UnknownQueue};

/// Why a [`Pool`](crate::Pool) operation failed.
///
/// Everything is kept as plain data (a worker index, a message, the
/// executor's own typed error), so the error is `Send + Sync + 'static`
/// whatever the queue key type is: it can cross threads and travel through
/// `anyhow` or `Box<dyn Error + Send + Sync>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// [`PoolBuilder::workers`](crate::PoolBuilder::workers) was 0: there
    /// would be nowhere to run a task, and no worker for a key to map to.
    NoWorkers,
    /// The executor configuration that the builder's closure returned for
    /// this worker was refused.
    Build {
        /// The worker whose configuration was refused.
        worker: usize,
        /// Why.
        error: BuildError,
    },
    /// The worker's Tokio runtime could not be built (the message is the
    /// operating system's, e.g. out of file descriptors).
    Runtime {
        /// The worker whose runtime could not be built.
        worker: usize,
        /// The IO error, as `Display` prints it.
        message: String,
    },
    /// A worker thread could not be started (the message is the operating
    /// system's).
    Thread(String),
    /// [`pin_to_cores(true)`](crate::PoolBuilder::pin_to_cores) was asked
    /// for, but the list of cores this process may run on could not be
    /// read (or was empty).
    NoCores,
    /// [`pin_to_cores(true)`](crate::PoolBuilder::pin_to_cores) was asked
    /// for, but the operating system refused to pin this worker's thread.
    Pin {
        /// The worker that could not be pinned.
        worker: usize,
        /// The core it was to be pinned to (its id in the core list).
        core: usize,
    },
    /// There is no worker with this index.
    NoSuchWorker {
        /// The index asked for.
        index: usize,
        /// How many workers the pool has (valid indices are `0..workers`).
        workers: usize,
    },
    /// No queue has this key (every worker has the same queues).
    UnknownQueue(UnknownQueue),
    /// A worker thread panicked: a task panicked with the executor's default
    /// [`with_panic_on_task_panic(true)`](crate::ExecutorBuilder::with_panic_on_task_panic),
    /// or one of the pool builder's closures panicked.
    WorkerPanicked {
        /// The worker whose thread panicked.
        worker: usize,
        /// The panic message: the `&str` or `String` it panicked with, or a
        /// placeholder for other payloads.
        message: String,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoWorkers => f.write_str("the pool has no workers: ask for at least one"),
            PoolError::Build { worker, error } => {
                write!(
                    f,
                    "worker {worker}: invalid executor configuration: {error}"
                )
            }
            PoolError::Runtime { worker, message } => {
                write!(
                    f,
                    "worker {worker}: could not build its Tokio runtime: {message}"
                )
            }
            PoolError::Thread(message) => {
                write!(f, "could not start a worker thread: {message}")
            }
            PoolError::NoCores => {
                f.write_str("could not read the list of cores to pin the workers to")
            }
            PoolError::Pin { worker, core } => {
                write!(f, "worker {worker}: could not be pinned to core {core}")
            }
            PoolError::NoSuchWorker { index, workers } => {
                write!(
                    f,
                    "no worker {index}: the pool has {workers} (0..{workers})"
                )
            }
            PoolError::UnknownQueue(unknown) => unknown.fmt(f),
            PoolError::WorkerPanicked { worker, message } => {
                write!(f, "worker {worker} panicked: {message}")
            }
        }
    }
}

impl Error for PoolError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PoolError::Build { error, .. } => Some(error),
            PoolError::UnknownQueue(unknown) => Some(unknown),
            _ => None,
        }
    }
}

impl From<UnknownQueue> for PoolError {
    fn from(unknown: UnknownQueue) -> Self {
        PoolError::UnknownQueue(unknown)
    }
}
