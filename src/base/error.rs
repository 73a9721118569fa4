//! Typed errors for configuration and queue lookups.

use std::error::Error;
use std::fmt;

/// Why [`ExecutorBuilder::build`](crate::ExecutorBuilder::build) refused a configuration.
///
/// The key is kept as its `Debug` rendering, so the error is `Send + Sync + 'static`
/// whatever the key type is, and can travel through `anyhow` or `Box<dyn Error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No queue was configured: there would be nowhere to spawn.
    NoQueues,
    /// A queue was given weight 0, which would never be picked.
    ZeroWeight {
        /// The queue's key, as `Debug` prints it.
        key: String,
    },
    /// Two queues were configured with the same key.
    DuplicateKey {
        /// The repeated key, as `Debug` prints it.
        key: String,
    },
    /// A duration setting is out of range.
    InvalidDuration {
        /// The setting, e.g. `"sched_latency"`.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `max_polls_per_yield` was 0: the executor would never poll a task.
    ZeroPollBudget,
    /// The watchdog thread could not be started (the message is the
    /// operating system's).
    Watchdog(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoQueues => {
                f.write_str("executor has no queues: add at least one with `with_queue`")
            }
            BuildError::ZeroWeight { key } => {
                write!(f, "queue {key} has weight 0: weights must be at least 1")
            }
            BuildError::DuplicateKey { key } => {
                write!(
                    f,
                    "queue {key} is configured twice: queue keys must be unique"
                )
            }
            BuildError::InvalidDuration { setting, reason } => {
                write!(f, "invalid `{setting}`: {reason}")
            }
            BuildError::ZeroPollBudget => f.write_str(
                "`max_polls_per_yield` is 0: the executor must poll at least one task per turn",
            ),
            BuildError::Watchdog(reason) => {
                write!(f, "could not start the watchdog thread: {reason}")
            }
        }
    }
}

impl Error for BuildError {}

/// [`Executor::queue`](crate::Executor::queue) was asked for a key that no queue has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownQueue {
    key: String,
}

impl UnknownQueue {
    pub(crate) fn new(key: &impl fmt::Debug) -> Self {
        UnknownQueue {
            key: format!("{key:?}"),
        }
    }

    /// The key that was asked for, as `Debug` prints it.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for UnknownQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no queue has the key {}", self.key)
    }
}

impl Error for UnknownQueue {}

/// Why a change to a running executor's configuration
/// ([`set_weight`](crate::Executor::set_weight),
/// [`add_queue`](crate::Executor::add_queue), or the same through a
/// [`Spawner`](crate::Spawner)) was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No queue has this key.
    UnknownQueue(UnknownQueue),
    /// A queue with this key exists already.
    DuplicateKey {
        /// The key, as `Debug` prints it.
        key: String,
    },
    /// A weight of 0 was asked for: the queue would never be picked.
    ZeroWeight {
        /// The queue's key, as `Debug` prints it.
        key: String,
    },
    /// The executor has been dropped.
    ExecutorGone,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownQueue(unknown) => unknown.fmt(f),
            ConfigError::DuplicateKey { key } => write!(f, "a queue with the key {key} exists"),
            ConfigError::ZeroWeight { key } => {
                write!(
                    f,
                    "queue {key} would get weight 0: weights must be at least 1"
                )
            }
            ConfigError::ExecutorGone => f.write_str("the executor has been dropped"),
        }
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ConfigError::UnknownQueue(unknown) => Some(unknown),
            _ => None,
        }
    }
}

impl ConfigError {
    /// Refuses weight 0 for the queue named `key`.
    pub(crate) fn check_weight(key: &impl fmt::Debug, weight: u32) -> Result<(), ConfigError> {
        if weight == 0 {
            return Err(ConfigError::ZeroWeight {
                key: format!("{key:?}"),
            });
        }
        Ok(())
    }
}

impl From<UnknownQueue> for ConfigError {
    fn from(unknown: UnknownQueue) -> Self {
        ConfigError::UnknownQueue(unknown)
    }
}

/// [`spawn`](crate::spawn) or [`QueueHandle::current`](crate::QueueHandle::current)
/// was called outside a task of a clockworker executor: from the host
/// runtime's own tasks, another thread, or an executor's `run_until`
/// future, none of which belongs to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoCurrentTask;

impl fmt::Display for NoCurrentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not inside a clockworker task: spawn through a `QueueHandle` or a `Spawner` instead",
        )
    }
}

impl Error for NoCurrentTask {}
