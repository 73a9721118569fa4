//! Queues: the handle users spawn through, and each queue's run queue.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::rc::Weak;

use crate::executor::Core;
use crate::join::JoinHandle;
use crate::task::Runnable;

/// A handle to one queue of an executor, for spawning tasks into it.
///
/// Cheap to clone. It does not keep the executor alive: tasks may hold handles
/// to their own executor without creating a reference cycle. Spawning through
/// a handle whose executor is gone returns a [`JoinHandle`] that resolves to
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled), and drops the future.
#[derive(Clone)]
pub struct QueueHandle {
    core: Weak<Core>,
    queue: usize,
}

impl QueueHandle {
    pub(crate) fn new(core: Weak<Core>, queue: usize) -> Self {
        QueueHandle { core, queue }
    }

    /// Spawns a task into this queue and returns the handle to await it.
    ///
    /// The future does not need to be `Send`: it only ever runs on the
    /// executor's thread. It starts running the next time the executor polls.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::rc::Rc;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("main", 1).build().unwrap();
    /// let queue = executor.queue("main").unwrap();
    /// let shared = Rc::new(5); // not Send, and that is fine
    /// let answer = futures::executor::block_on(executor.run_until(async move {
    ///     queue.spawn(async move { *shared * 2 }).await
    /// }));
    /// assert_eq!(answer.unwrap(), 10);
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match self.core.upgrade() {
            Some(core) => core.spawn(self.queue, future),
            None => JoinHandle::cancelled(),
        }
    }
}

impl fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueHandle")
            .field("queue", &self.queue)
            .field("executor_alive", &(self.core.strong_count() > 0))
            .finish()
    }
}

/// The runnable tasks of one queue, in the order they became runnable.
#[derive(Default)]
pub(crate) struct RunQueue {
    tasks: VecDeque<Runnable>,
}

impl RunQueue {
    #[inline]
    pub(crate) fn push(&mut self, runnable: Runnable) {
        self.tasks.push_back(runnable);
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Runnable> {
        self.tasks.pop_front()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Runnable> + '_ {
        self.tasks.drain(..)
    }
}
