//! Slow polls: a poll that held the thread for longer than a threshold, told
//! to a callback with enough to find the culprit (queue, task, name, where it
//! was spawned).
//!
//! A slow poll is noticed when it returns, from the clock reading the
//! executor takes at the end of every poll anyway, so detection costs one
//! comparison per poll. The report is built only for slow polls, and the
//! callback runs from the executor's loop after the poll, outside of any
//! task, with no executor state borrowed: it may spawn or read statistics.
//! (A poll that never returns is the watchdog's job: see
//! [`ExecutorBuilder::with_watchdog`](crate::ExecutorBuilder::with_watchdog).)

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::base::directory::Directory;
use crate::base::id::{TaskId, TaskName};
use crate::base::key::QueueKey;

/// A poll that took at least the slow-poll threshold, as given to the
/// callback of [`ExecutorBuilder::on_slow_poll`](crate::ExecutorBuilder::on_slow_poll).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SlowPoll<'a, K> {
    /// The task's queue.
    pub queue: &'a K,
    /// The task.
    pub task: TaskId,
    /// The task's name, if it was given one
    /// ([`TaskBuilder::name`](crate::TaskBuilder::name)).
    pub name: Option<&'a str>,
    /// Where the task was spawned.
    pub location: &'static Location<'static>,
    /// How long the poll took (for a stall: how long it has run so far).
    pub duration: Duration,
}

impl<K: fmt::Debug> fmt::Display for SlowPoll<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.task)?;
        if let Some(name) = self.name {
            write!(f, " ({name:?})")?;
        }
        write!(
            f,
            " of queue {:?}, spawned at {}, polled for {:?}",
            self.queue, self.location, self.duration
        )
    }
}

/// What the core knows of a slow poll: [`SlowPoll`] with the queue as an
/// index, and owning the name, so that it outlives the task's poll.
#[derive(Debug, Clone)]
pub(crate) struct PollReport {
    pub(crate) queue: usize,
    pub(crate) task: TaskId,
    pub(crate) name: Option<TaskName>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) duration: Duration,
}

impl PollReport {
    /// The report as the user sees it, with the queue's key.
    pub(crate) fn with_key<'a, K>(&'a self, key: &'a K) -> SlowPoll<'a, K> {
        SlowPoll {
            queue: key,
            task: self.task,
            name: self.name.as_deref().map(String::as_str),
            location: self.location,
            duration: self.duration,
        }
    }
}

/// A callback on [`PollReport`]s, with the queue keys resolved by the builder.
pub(crate) type ReportFn = Box<dyn Fn(&PollReport)>;

/// Whether a report is of a poll that returned, or of one still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Slow,
    Stall,
}

/// A report callback for the core (slow polls) or the watchdog (stalls):
/// resolves the queue key, logs with `tracing` (when on), then calls the
/// user's `callback`, if any.
pub(crate) fn reporter<K: QueueKey>(
    keys: Arc<Directory<K>>,
    kind: Kind,
    callback: Option<impl Fn(&SlowPoll<'_, K>)>,
) -> impl Fn(&PollReport) {
    move |report| {
        // Cloned out of the directory: the callback may add a queue.
        if let Some(key) = keys.key(report.queue) {
            let poll = report.with_key(&key);
            trace(&poll, kind);
            if let Some(callback) = &callback {
                callback(&poll);
            }
        }
    }
}

/// Logs `poll` as a `tracing` warning, with the `tracing` feature; else
/// does nothing.
fn trace<K: fmt::Debug>(poll: &SlowPoll<'_, K>, kind: Kind) {
    #[cfg(feature = "tracing")]
    {
        let (task, name, location) = (poll.task.as_u64(), poll.name, poll.location);
        let (queue, duration) = (poll.queue, poll.duration);
        match kind {
            Kind::Slow => tracing::warn!(
                task, name, %location, ?queue, ?duration,
                "slow poll: a task held the executor's thread for {duration:?}"
            ),
            Kind::Stall => tracing::warn!(
                task, name, %location, ?queue, running = ?duration,
                "stalled poll: a task has held the executor's thread for {duration:?} and still runs"
            ),
        }
    }

    #[cfg(not(feature = "tracing"))]
    let _ = (poll, kind);
}
