//! The awaiting side of a task: [`JoinHandle`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::base::error::JoinError;
use crate::base::id::TaskId;
use crate::runtime::registry;
use crate::runtime::task::Task;

/// An owned permission to await a task's output, and to abort the task.
///
/// Awaiting it gives `Ok(output)`, or the [`JoinError`] that says why there is
/// none. Dropping it *detaches* the task: the task keeps running and its
/// output is dropped when it finishes (a panic from that drop is
/// swallowed: nobody is left to report it to). The handle can be awaited from any
/// thread and any runtime; it is `Send` when the output is.
pub struct JoinHandle<T> {
    /// `None` once the output was taken, or when the executor was already gone
    /// at spawn time.
    task: Option<Task<T>>,
}

impl<T> JoinHandle<T> {
    /// The handle of `task`; of none, a handle whose task never ran: it
    /// resolves to [`JoinError::Cancelled`].
    pub(crate) fn of(task: Option<Task<T>>) -> Self {
        JoinHandle { task }
    }

    /// Aborts the task.
    ///
    /// The task's future is dropped on the executor's thread the next time the
    /// executor runs, without being polled again, whether the task is waiting
    /// to run or idle. The handle then resolves to [`JoinError::Cancelled`]
    /// (once the future is dropped). A task that already finished keeps its
    /// result. Can be called from any thread, any number of times.
    pub fn abort(&self) {
        if let Some(task) = &self.task {
            if task.is_finished() {
                return;
            }
            let meta = task.metadata();
            // The executor wakes the task (it holds a waker for every live
            // task), so an idle task is reaped too. A task spawned through a
            // `Spawner` may not have a slot yet: then the executor's take-in
            // finds the flag (see `Registry::take_in` for the handshake).
            registry::abort(meta, &meta.shared);
        }
    }

    /// Whether the task has finished: completed, panicked, or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|task| task.is_finished())
    }

    /// The task's id, unique within its executor. `None` if the task was never
    /// spawned because its executor was gone.
    pub fn id(&self) -> Option<TaskId> {
        self.task.as_ref().map(|task| task.metadata().id)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Err(JoinError::Cancelled));
        };
        // The task's future reports every ending, cancellation included, as its
        // output (see `task`), so the task never closes without one.
        let output = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(output.into_inner())
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
