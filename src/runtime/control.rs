//! Changes to a running executor: weights, new queues, shutdown; and the
//! task dumps asked for from other threads, which travel the same way.
//!
//! Every change is a [`Command`]. Made through a [`Spawner`](crate::Spawner)
//! on another thread, it waits in the executor's command queue and is
//! applied at the executor's next drain (the next poll boundary, or the
//! next turn if the executor is idle: queueing a command wakes it). Made
//! through the [`Executor`](crate::Executor), on its own thread, it is
//! applied at once, after the commands already queued, so that changes
//! apply in the order they were made whichever side made them.
//!
//! A change takes effect at the next pick of a queue: a new weight sets the
//! queue's share and the length of its next slice, not of the one running.

use crate::base::error::DumpError;
use crate::base::shutdown::Shutdown;
use crate::observe::dump::TaskRecord;
use crate::runtime::Core;
use crate::runtime::sched::QueueScheduler;
use crate::runtime::scheduler::Scheduler;

/// A change to apply on the executor's thread. Made through a `Spawner`
/// its scheduler is `Send` (it crosses threads in the command queue); made
/// through the `Executor` it need not be.
pub(crate) enum Command<S: ?Sized = dyn Scheduler + Send> {
    /// Give the queue at `queue` a new weight (at least 1: checked by the
    /// caller).
    SetWeight { queue: usize, weight: u32 },
    /// Add a queue at the next index (which the directory gave out in
    /// command order).
    AddQueue {
        weight: u32,
        scheduler: QueueScheduler<S>,
        /// The key as `Debug` prints it, for exported metrics.
        name: String,
    },
    /// Stop accepting tasks, and drain or cancel those that live.
    Shutdown(Shutdown),
    /// Send a record of every live task (a task dump) to `reply`.
    Dump { reply: DumpReply },
}

/// Where a task dump asked for from another thread is sent.
pub(crate) type DumpReply = std::sync::mpsc::SyncSender<Result<Vec<TaskRecord>, DumpError>>;

impl Core {
    /// Applies every queued command. Runs no user code (a scheduler is
    /// moved, not called), so it may run at any drain.
    pub(crate) fn apply_commands(&self) {
        while let Some(command) = self.shared.pop_command() {
            self.apply(command.local());
        }
    }

    /// Applies a change made on the executor's thread, after those queued
    /// before it.
    pub(crate) fn command(&self, command: Command<dyn Scheduler>) {
        self.apply_commands();
        self.apply(command);
    }

    fn apply(&self, command: Command<dyn Scheduler>) {
        match command {
            Command::SetWeight { queue, weight } => {
                let mut sched = self.sched.borrow_mut();
                if queue < sched.queues.len() {
                    sched.picker.set_weight(queue, weight);
                }
            }
            Command::AddQueue {
                weight,
                scheduler,
                name,
            } => self.add_queue(weight, scheduler, name),
            Command::Shutdown(mode) => self.begin_shutdown(mode),
            Command::Dump { reply } => {
                // The asker may have given up waiting: nobody to tell.
                let _ = reply.send(self.task_records());
            }
        }
    }

    /// Adds a queue at the next index. It joins the picker idle; when it
    /// first gets a task it is placed at the average virtual runtime of the
    /// runnable queues, like any queue that wakes, so it neither owes nor is
    /// owed anything.
    fn add_queue(&self, weight: u32, scheduler: QueueScheduler, name: String) {
        let mut sched = self.sched.borrow_mut();
        sched.picker.add_queue(weight);
        sched
            .queues
            .push(crate::runtime::sched::RunQueue::new(scheduler));
        #[cfg(feature = "console")]
        self.observe.console.add_queue(name.clone());
        #[cfg(feature = "metrics")]
        self.observe.metrics.borrow_mut().add_queue(name);
        #[cfg(not(feature = "metrics"))]
        let _ = name;
    }

    /// Number of queues the executor has applied so far.
    pub(crate) fn queue_count(&self) -> usize {
        self.sched.borrow().queues.len()
    }
}

impl Command {
    /// The command as the executor's thread applies it.
    fn local(self) -> Command<dyn Scheduler> {
        match self {
            Command::SetWeight { queue, weight } => Command::SetWeight { queue, weight },
            Command::AddQueue {
                weight,
                scheduler,
                name,
            } => Command::AddQueue {
                weight,
                scheduler: scheduler.map(|scheduler| scheduler as Box<dyn Scheduler>),
                name,
            },
            Command::Shutdown(mode) => Command::Shutdown(mode),
            Command::Dump { reply } => Command::Dump { reply },
        }
    }
}
