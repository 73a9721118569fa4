//! The builder's task hooks: callbacks on every task's spawn, polls and
//! end, as Tokio's runtime builder offers them.

use std::rc::Rc;
use std::sync::Arc;

use crate::ExecutorBuilder;
use crate::base::directory::Directory;
use crate::base::id::TaskEnding;
use crate::base::key::QueueKey;
use crate::observe::task_hooks::{LocalKeys, TaskDetails, TaskHooks};

/// A hook the user gave, told of a spawn or a poll.
type UserHook<K> = Box<dyn Fn(&TaskDetails<'_, K>)>;
/// A hook the user gave, told of a task's end.
type UserEndHook<K> = Box<dyn Fn(&TaskDetails<'_, K>, TaskEnding)>;

/// The task hooks given to the builder, before the queue keys are known.
pub(super) struct UserTaskHooks<K> {
    spawn: Option<UserHook<K>>,
    before_poll: Option<UserHook<K>>,
    after_poll: Option<UserHook<K>>,
    terminate: Option<UserEndHook<K>>,
}

impl<K> Default for UserTaskHooks<K> {
    fn default() -> Self {
        UserTaskHooks {
            spawn: None,
            before_poll: None,
            after_poll: None,
            terminate: None,
        }
    }
}

impl<K> UserTaskHooks<K> {
    /// Which hooks are set, for the builder's `Debug`.
    pub(super) fn set(&self) -> [bool; 4] {
        [
            self.spawn.is_some(),
            self.before_poll.is_some(),
            self.after_poll.is_some(),
            self.terminate.is_some(),
        ]
    }
}

impl<K: QueueKey> UserTaskHooks<K> {
    /// The hooks as the core holds them: each finds its task's queue key in
    /// one copy of the keys, shared by the four.
    pub(super) fn resolve(self, directory: &Arc<Directory<K>>) -> TaskHooks {
        let keys = Rc::new(LocalKeys::new(Arc::clone(directory)));
        let wrap = |hook: Option<UserHook<K>>| {
            let keys = Rc::clone(&keys);
            hook.map(|hook| -> crate::observe::task_hooks::HookFn {
                Box::new(move |task| keys.with_details(task, |details| hook(details)))
            })
        };
        TaskHooks {
            spawn: wrap(self.spawn),
            before_poll: wrap(self.before_poll),
            after_poll: wrap(self.after_poll),
            terminate: self
                .terminate
                .map(|hook| -> crate::observe::task_hooks::EndHookFn {
                    let keys = Rc::clone(&keys);
                    Box::new(move |task, ending| {
                        keys.with_details(task, |details| hook(details, ending));
                    })
                }),
        }
    }
}

impl<K: QueueKey> ExecutorBuilder<K> {
    /// Calls `hook` on the executor's thread for every task as it is
    /// spawned (a task spawned through a [`Spawner`](crate::Spawner): as
    /// the executor takes it in), before its first poll.
    ///
    /// Hooks see every task of every queue, and cost nothing when unset
    /// (one branch where they would be called). They run on the
    /// executor's thread with nothing of the executor borrowed: they may
    /// spawn, read statistics or take a [task dump](crate::Executor::tasks).
    /// A panic in a hook is caught, the task's bookkeeping completes, and
    /// the panic propagates out of the run future after the poll in
    /// progress (as a task's panic does under the default policy); during
    /// a shutdown, or as the executor is dropped, it is dropped instead, as
    /// a cancelled future's is.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let spawned = Rc::new(Cell::new(0));
    /// let count = Rc::clone(&spawned);
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .on_task_spawn(move |task| {
    ///         count.set(count.get() + 1);
    ///         println!("spawned {task}");
    ///     })
    ///     .build()?;
    /// executor.queue("requests")?.task().name("handshake").spawn(async {});
    /// assert_eq!(spawned.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_spawn(mut self, hook: impl Fn(&TaskDetails<'_, K>) + 'static) -> Self {
        self.task_hooks.spawn = Some(Box::new(hook));
        self
    }

    /// Calls `hook` on the executor's thread just before each poll of a
    /// task (not before the run that drops an aborted task's future, which
    /// is no poll). See [`on_task_spawn`](Self::on_task_spawn) for what
    /// hooks may do. The time hooks take is charged to no task and no
    /// queue (the clock is read again around them), but it is the host's:
    /// it counts toward the turn's `driver_yield`.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Instant;
    /// use std::cell::Cell;
    ///
    /// thread_local!(static POLL_START: Cell<Option<Instant>> = Cell::new(None));
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .on_before_task_poll(|_| POLL_START.set(Some(Instant::now())))
    ///     .on_after_task_poll(|task| {
    ///         if let Some(start) = POLL_START.take() {
    ///             println!("{task} polled for {:?}", start.elapsed());
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), clockworker::BuildError>(())
    /// ```
    pub fn on_before_task_poll(mut self, hook: impl Fn(&TaskDetails<'_, K>) + 'static) -> Self {
        self.task_hooks.before_poll = Some(Box::new(hook));
        self
    }

    /// Calls `hook` on the executor's thread just after each poll of a
    /// task, the last one included (then before
    /// [`on_task_terminate`](Self::on_task_terminate)'s hook). See
    /// [`on_before_task_poll`](Self::on_before_task_poll).
    pub fn on_after_task_poll(mut self, hook: impl Fn(&TaskDetails<'_, K>) + 'static) -> Self {
        self.task_hooks.after_poll = Some(Box::new(hook));
        self
    }

    /// Calls `hook` on the executor's thread as each task ends, with how
    /// it ended: it completed, it panicked, or it was cancelled (aborted, or
    /// ended by a shutdown or the executor's drop). Every task announced to
    /// [`on_task_spawn`](Self::on_task_spawn)'s hook is announced here
    /// exactly once.
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, TaskEnding};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .on_task_terminate(|task, ending| {
    ///         if ending == TaskEnding::Panicked {
    ///             eprintln!("{task} panicked");
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), clockworker::BuildError>(())
    /// ```
    pub fn on_task_terminate(
        mut self,
        hook: impl Fn(&TaskDetails<'_, K>, TaskEnding) + 'static,
    ) -> Self {
        self.task_hooks.terminate = Some(Box::new(hook));
        self
    }
}
