//! Calling the user's task hooks (see `observe/task_hooks.rs`), and the
//! console's spans (`console.rs`), from the places where a task is spawned,
//! polled and ended.
//!
//! A hook is user code: it runs with no borrow of the core held, and its
//! panic is caught and re-raised from the run future after the poll in
//! progress, as a scheduler's is, so that the task's bookkeeping around
//! the hook always completes.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::base::id::TaskEnding;
use crate::observe::task_hooks::HookedTask;
use crate::runtime::Core;
use crate::runtime::task::TaskMeta;

impl Core {
    /// Calls the spawn hook, if any, for a task just taken in (and makes
    /// its console span).
    #[inline]
    pub(crate) fn task_spawned(&self, meta: &TaskMeta) {
        #[cfg(feature = "console")]
        self.console_spawned(meta);
        if let Some(hook) = &self.observe.hooks.task.spawn {
            self.call_hook(meta, |task| hook(task));
        }
    }

    /// Calls the after-poll hook for a poll the turn made, and the
    /// termination hook for a task that ended with `ending`, if set (and
    /// closes its console span).
    #[inline]
    pub(crate) fn task_polled(&self, meta: &TaskMeta, turn_poll: bool, ending: Option<TaskEnding>) {
        #[cfg(feature = "console")]
        if ending.is_some() {
            self.console_ended(meta);
        }
        let hooks = &self.observe.hooks.task;
        if turn_poll {
            if let Some(hook) = &hooks.after_poll {
                self.call_hook(meta, |task| hook(task));
            }
        }
        if let (Some(ending), Some(hook)) = (ending, &hooks.terminate) {
            self.call_hook(meta, |task| hook(task, ending));
        }
    }

    /// Calls `hook` with `meta`'s task, catching its panic for the run
    /// future to re-raise.
    #[cold]
    #[inline(never)]
    pub(crate) fn call_hook(&self, meta: &TaskMeta, hook: impl FnOnce(&HookedTask<'_>)) {
        let task = HookedTask {
            id: meta.id,
            name: meta.name().map(|name| name.as_str()),
            queue: meta.queue(),
            group: meta.group().map(|group| group.id),
            location: meta.site.location(),
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(&task))) {
            self.stash_panic(panic);
        }
    }
}
