//! Earliest deadline first.

use std::collections::BinaryHeap;

use super::keyed::Keyed;
use super::{ReadyTask, Reports, Scheduler};

/// Earliest deadline first: tasks spawned with a deadline
/// ([`TaskBuilder::deadline`](crate::TaskBuilder::deadline)) run in deadline
/// order; tasks without one run after all of those, in arrival order.
#[derive(Debug, Default)]
pub struct Edf {
    tasks: BinaryHeap<Keyed<(bool, u64)>>,
}

impl Edf {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for Edf {
    fn push(&mut self, task: ReadyTask) {
        let key = match task.deadline() {
            Some(deadline) => (false, deadline),
            None => (true, 0),
        };
        self.tasks.push(Keyed::new(key, task));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.tasks.pop().map(Keyed::into_task)
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// None: what it orders by is read from each task's live figures.
    fn reports(&self) -> Reports {
        Reports::NONE
    }
}
