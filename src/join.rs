//! The awaiting side of a task: [`JoinHandle`] and [`JoinError`].

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use crate::base::id::TaskId;
use crate::runtime::task::{Task, UNREGISTERED};

/// Why a task did not produce its output.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted with [`JoinHandle::abort`], cancelled by a
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
    message: String,
    // `Box<dyn Any + Send>` is not `Sync`; the mutex makes the error `Sync`
    // (so it fits `anyhow` and `Box<dyn Error + Send + Sync>`) without unsafe.
    // It is only ever locked through `&mut self` or `self`, never contended.
    payload: Mutex<Box<dyn Any + Send + 'static>>,
}

impl PanicError {
    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = panic_message(payload.as_ref());
        PanicError {
            message,
            payload: Mutex::new(payload),
        }
    }

    pub(crate) fn from_message(message: String) -> Self {
        let payload: Box<dyn Any + Send> = Box::new(message.clone());
        PanicError {
            message,
            payload: Mutex::new(payload),
        }
    }

    /// The panic message: the `&str` or `String` the task panicked with, or a
    /// placeholder for other payloads.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The value the task panicked with, e.g. to re-raise it with
    /// [`std::panic::resume_unwind`].
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        match self.payload.into_inner() {
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
        f.write_str(&self.message)
    }
}

impl fmt::Debug for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicError")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl Error for PanicError {}

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
    pub(crate) fn new(task: Task<T>) -> Self {
        JoinHandle { task: Some(task) }
    }

    /// A handle whose task never ran: it resolves to [`JoinError::Cancelled`].
    pub(crate) fn cancelled() -> Self {
        JoinHandle { task: None }
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
            // `Spawner` may not have a slot yet: `SeqCst` on both sides
            // (here: store the flag, load the slot; in `Core::register`:
            // store the slot, load the flag) means that either this finds
            // the slot, or the executor finds the flag as it takes the task
            // in, and reaps it then.
            meta.aborted.store(true, Ordering::SeqCst);
            let slot = meta.slot.load(Ordering::SeqCst);
            if slot != UNREGISTERED {
                meta.shared.request_abort(slot);
            }
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
