//! Least attained service.

use std::collections::BinaryHeap;

use super::keyed::Keyed;
use super::{ReadyTask, Scheduler};

/// Least attained service first: the task whose group has had the least CPU so
/// far runs next; a task without a group is its own group; ties go by arrival.
///
/// Short jobs overtake long ones without knowing job sizes in advance, which
/// keeps tail latency low under mixed loads. With groups (one per tenant, or
/// a request and the children it spawns), a tenant's many tasks count as one.
///
/// A group's service grows while its tasks wait (a sibling runs), so heap keys
/// can only be too small, never too large: `pop` re-checks the top task's
/// current service and re-inserts it if it is stale. Each operation is
/// O(log n) amortised.
#[derive(Debug, Default)]
pub struct LAS {
    tasks: BinaryHeap<Keyed<u64>>,
}

impl LAS {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for LAS {
    fn push(&mut self, task: ReadyTask) {
        self.tasks.push(Keyed::new(task.group_service(), task));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        loop {
            let mut top = self.tasks.pop()?;
            let service = top.task().group_service();
            if service <= top.key {
                return Some(top.into_task());
            }
            top.key = service;
            self.tasks.push(top);
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }
}
