//! First in, first out: by when tasks became runnable, or by when they arrived.

use std::collections::{BinaryHeap, VecDeque};

use super::keyed::Keyed;
use super::{ReadyTask, Reports, Scheduler};

/// Tasks run in the order they became runnable. A task that sleeps and wakes
/// goes to the back. The default, and the cheapest: good for throughput.
#[derive(Debug, Default)]
pub struct RunnableFifo {
    tasks: VecDeque<ReadyTask>,
}

impl RunnableFifo {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for RunnableFifo {
    #[inline]
    fn push(&mut self, task: ReadyTask) {
        self.tasks.push_back(task);
    }

    #[inline]
    fn pop(&mut self) -> Option<ReadyTask> {
        self.tasks.pop_front()
    }

    #[inline]
    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// None: what it orders by is read from each task's live figures.
    fn reports(&self) -> Reports {
        Reports::NONE
    }
}

/// Tasks run in the order they were spawned; a task keeps its place across
/// sleeps, so the oldest request always goes first.
#[derive(Debug, Default)]
pub struct ArrivalFifo {
    tasks: BinaryHeap<Keyed<u64>>,
}

impl ArrivalFifo {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for ArrivalFifo {
    fn push(&mut self, task: ReadyTask) {
        // Task ids grow with spawns: the id is the arrival order, with no ties.
        self.tasks.push(Keyed::new(task.id().as_u64(), task));
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
