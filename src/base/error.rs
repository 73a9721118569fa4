//! Typed errors: configuration, queue lookups, and why a task gave no
//! output.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::Mutex;

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
    /// More queues than an executor can hold ([`MAX_QUEUES`](crate::MAX_QUEUES)).
    TooManyQueues,
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
            BuildError::TooManyQueues => too_many_queues(f),
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
    /// The executor holds [`MAX_QUEUES`](crate::MAX_QUEUES) queues already.
    TooManyQueues,
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
            ConfigError::TooManyQueues => too_many_queues(f),
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

fn too_many_queues(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "an executor holds at most {} queues",
        crate::base::config::MAX_QUEUES
    )
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

/// Why [`Spawner::tasks`](crate::Spawner::tasks) gave no task dump.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DumpError {
    /// The executor was dropped: there are no tasks to dump.
    ExecutorGone,
    /// The executor did not answer within the timeout: its thread is
    /// blocked (a task that never returns from a poll: see
    /// [`ExecutorBuilder::with_watchdog`](crate::ExecutorBuilder::with_watchdog)),
    /// or its host runtime does not poll it.
    Stalled(std::time::Duration),
    /// This build cannot reach a task's details from the executor's
    /// index of live tasks (the task allocator laid a task out in an
    /// unexpected way). Not expected with the async-task versions this
    /// crate accepts; reported rather than guessed.
    Unsupported,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::ExecutorGone => f.write_str("the executor is gone"),
            DumpError::Stalled(timeout) => write!(
                f,
                "the executor did not answer within {timeout:?}: its thread is blocked or its host does not poll it"
            ),
            DumpError::Unsupported => {
                f.write_str("task dumps are not supported by this build's task layout")
            }
        }
    }
}

impl Error for DumpError {}

/// Why a task did not produce its output.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted with [`JoinHandle::abort`](crate::JoinHandle::abort), cancelled by a
    /// [`Shutdown::Cancel`](crate::Shutdown::Cancel), or its executor was
    /// dropped before it finished.
    Cancelled,
    /// The task panicked: in a poll, or as its future was dropped (also when
    /// it was being cancelled).
    Panic(PanicError),
}

impl JoinError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panic(_))
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panic(panic) => write!(f, "task panicked: {panic}"),
        }
    }
}

impl Error for JoinError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            JoinError::Cancelled => None,
            JoinError::Panic(panic) => Some(panic),
        }
    }
}

/// The panic of a task: its message, and the original payload.
///
/// With [`with_panic_on_task_panic(true)`](crate::ExecutorBuilder::with_panic_on_task_panic)
/// (the default) the original payload is re-raised from the executor's run
/// future instead, and this error carries the message as its payload.
pub struct PanicError {
    // Boxed: a task's output slot is as large as its largest value, and
    // every task's output may be this error. One pointer keeps a
    // `JoinError` (and so the output slot of a task with a small output)
    // at one word; a panic, which is rare, pays an allocation.
    inner: Box<Panicked>,
}

struct Panicked {
    message: String,
    // `Box<dyn Any + Send>` is not `Sync`; the mutex makes the error `Sync`
    // (so it fits `anyhow` and `Box<dyn Error + Send + Sync>`) without unsafe.
    // It is only ever locked through `&mut self` or `self`, never contended.
    payload: Mutex<Box<dyn Any + Send + 'static>>,
}

impl PanicError {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = panic_message(payload.as_ref());
        Self::with(message, payload)
    }

    pub(crate) fn from_message(message: String) -> Self {
        let payload: Box<dyn Any + Send> = Box::new(message.clone());
        Self::with(message, payload)
    }

    fn with(message: String, payload: Box<dyn Any + Send + 'static>) -> Self {
        PanicError {
            inner: Box::new(Panicked {
                message,
                payload: Mutex::new(payload),
            }),
        }
    }

    /// The panic message: the `&str` or `String` the task panicked with, or a
    /// placeholder for other payloads.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The value the task panicked with, e.g. to re-raise it with
    /// [`std::panic::resume_unwind`].
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        match self.inner.payload.into_inner() {
            Ok(payload) => payload,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicError")
            .field("message", &self.inner.message)
            .finish_non_exhaustive()
    }
}

impl Error for PanicError {}
