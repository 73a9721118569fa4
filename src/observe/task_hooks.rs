//! Task hooks: the user's callbacks on a task's spawn, around each of its
//! polls, and at its end (see `ExecutorBuilder::on_task_spawn` and the
//! methods after it).
//!
//! The core holds each hook as an `Option` and checks it where the event
//! happens: an executor without hooks pays one predictable branch per
//! event, and nothing per task. A hook is called with a [`HookedTask`],
//! which names the queue by index; the builder wraps the user's callback in
//! one that finds the queue's key, so that the core stays free of the key
//! type.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;

use crate::base::directory::Directory;
use crate::base::id::{TaskEnding, TaskId};
use crate::base::key::QueueKey;

/// A task as a hook is told of it: the core's view, with the queue as an
/// index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HookedTask<'a> {
    pub(crate) id: TaskId,
    pub(crate) name: Option<&'a str>,
    pub(crate) queue: usize,
    pub(crate) group: Option<u64>,
    pub(crate) location: &'static Location<'static>,
}

/// A hook told of a spawn or a poll.
pub(crate) type HookFn = Box<dyn Fn(&HookedTask<'_>)>;
/// A hook told of a task's end, and how it ended.
pub(crate) type EndHookFn = Box<dyn Fn(&HookedTask<'_>, TaskEnding)>;

/// The user's task hooks, as the core holds them.
#[derive(Default)]
pub(crate) struct TaskHooks {
    pub(crate) spawn: Option<HookFn>,
    pub(crate) before_poll: Option<HookFn>,
    pub(crate) after_poll: Option<HookFn>,
    pub(crate) terminate: Option<EndHookFn>,
}

impl TaskHooks {
    /// Whether a hook is set that the end of a run calls (the after-poll
    /// and termination hooks, and the before-poll hook, whose after-poll
    /// call it pairs with).
    pub(crate) fn around_polls(&self) -> bool {
        self.before_poll.is_some() || self.after_poll.is_some() || self.terminate.is_some()
    }
}

/// A task, as the task hooks of
/// [`ExecutorBuilder`](crate::ExecutorBuilder) are given it: who it is,
/// where it runs, and where it was spawned.
///
/// Its `Display` prints it as the slow-poll report does, for logs:
/// `task 7 ("flush") of queue "background", spawned at src/main.rs:42:5`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaskDetails<'a, K> {
    /// The task's id, unique within its executor.
    pub id: TaskId,
    /// The task's name, if it was given one
    /// ([`TaskBuilder::name`](crate::TaskBuilder::name)).
    pub name: Option<&'a str>,
    /// The key of the task's queue.
    pub queue: &'a K,
    /// The task's group (the hash of its group key, see
    /// [`group_id`](crate::group_id)), if it has one.
    pub group: Option<u64>,
    /// Where the task was spawned.
    pub location: &'static Location<'static>,
}

impl<K: fmt::Debug> fmt::Display for TaskDetails<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(name) = self.name {
            write!(f, " ({name:?})")?;
        }
        write!(f, " of queue {:?}", self.queue)?;
        if let Some(group) = self.group {
            write!(f, ", group {group:#x}")?;
        }
        write!(f, ", spawned at {}", self.location)
    }
}

/// The queue keys of an executor, as a hook on its thread reads them: a
/// copy of the directory's keys, refreshed when a queue it has not seen
/// appears (queues are only ever added), so that a hook called on every
/// poll neither locks nor clones a key.
pub(crate) struct LocalKeys<K> {
    directory: Arc<Directory<K>>,
    /// Taken out of the cell (an `Rc` increment) for each call: a hook
    /// that spawns into a queue added meanwhile refreshes the cell while
    /// the outer call still reads its copy.
    keys: RefCell<Rc<[K]>>,
}

impl<K: QueueKey> LocalKeys<K> {
    pub(crate) fn new(directory: Arc<Directory<K>>) -> Self {
        let keys = RefCell::new(directory.keys().into());
        LocalKeys { directory, keys }
    }

    /// Calls `f` with the public view of `task`. A task's queue is always
    /// known to the directory; if it were not, the hook is not called.
    pub(crate) fn with_details(&self, task: &HookedTask<'_>, f: impl FnOnce(&TaskDetails<'_, K>)) {
        if task.queue >= self.keys.borrow().len() {
            *self.keys.borrow_mut() = self.directory.keys().into();
        }
        let keys = Rc::clone(&self.keys.borrow());
        let Some(queue) = keys.get(task.queue) else {
            return;
        };
        f(&TaskDetails {
            id: task.id,
            name: task.name,
            queue,
            group: task.group,
            location: task.location,
        });
    }
}
