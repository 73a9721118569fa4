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
    /// Whether anything watches a task's runs: a poll or termination hook,
    /// the watchdog, or a tokio-console span. When nothing does, a poll
    /// pays this one `Cell` read for them. (The spawn hook is checked where
    /// tasks are spawned.)
    #[inline]
    pub(crate) fn instrumented(&self) -> bool {
        self.observe.instrumented.get()
    }

    /// Whether the end of a poll has watchers to tell: a task hook, or a
    /// task's console span (the watchdog needs nothing there).
    #[inline]
    pub(crate) fn tells_tasks(&self) -> bool {
        self.observe.tells_tasks.get()
    }

    /// Tells the watchers of a task just taken in: its console span is
    /// made (if a subscriber wants it), and the spawn hook called.
    #[inline]
    pub(crate) fn task_spawned(&self, meta: &TaskMeta) {
        #[cfg(feature = "console")]
        self.console_spawned(meta);
        if let Some(hook) = &self.observe.hooks.task.spawn {
            self.call_hook(meta, |task| hook(task));
        }
    }

    /// Calls the before-poll hook, if set, as a poll starts (the turn
    /// calls this only when [`instrumented`](Self::instrumented)).
    pub(crate) fn task_polling(&self, meta: &TaskMeta) {
        if let Some(hook) = &self.observe.hooks.task.before_poll {
            self.observe.before_called.set(true);
            self.call_hook(meta, |task| hook(task));
        }
    }

    /// Tells the watchers of a run that ended: the after-poll hook for a
    /// poll the turn made (`polled`: not the run that drops an aborted
    /// task's future); for a task that ended with `ending`, the
    /// termination hook, and its console span is closed. (`poll_done`
    /// calls this only when [`tells_tasks`](Self::tells_tasks).)
    pub(crate) fn task_polled(&self, meta: &TaskMeta, polled: bool, ending: Option<TaskEnding>) {
        #[cfg(feature = "console")]
        if ending.is_some() {
            self.console_ended(meta);
        }
        let hooks = &self.observe.hooks.task;
        // Also after a run the before-poll hook saw start, that ended up
        // dropping the future (aborted meanwhile, say by that hook).
        let before_called = self.observe.before_called.replace(false);
        if polled || before_called {
            if let Some(hook) = &hooks.after_poll {
                self.call_hook(meta, |task| hook(task));
            }
        }
        if let (Some(ending), Some(hook)) = (ending, &hooks.terminate) {
            self.call_hook(meta, |task| hook(task, ending));
        }
    }

    /// Calls `hook` with `meta`'s task, [guarded](Self::guarded).
    #[cold]
    #[inline(never)]
    fn call_hook(&self, meta: &TaskMeta, hook: impl FnOnce(&HookedTask<'_>)) {
        let task = HookedTask {
            id: meta.id,
            name: meta.name().map(|name| name.as_str()),
            queue: meta.queue(),
            group: meta.group().map(|group| group.id),
            location: meta.site.location(),
        };
        self.guarded(|| hook(&task));
    }

    /// Runs `f`, user code (a hook, a `tracing` subscriber), catching its
    /// panic for the run future to re-raise after the poll in progress:
    /// `None` if it panicked.
    pub(crate) fn guarded<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Some(value),
            Err(panic) => {
                self.stash_panic(panic);
                None
            }
        }
    }
}
