//! Least attained service.

use std::collections::BinaryHeap;

use super::grouped::{GroupFifos, Sharer};
use super::keyed::{Keyed, pop_with};
use super::{ReadyTask, Scheduler};

/// Least attained service first: the task whose group has had the least CPU so
/// far runs next; a task without a group is its own group; ties go by arrival.
///
/// Short jobs overtake long ones without knowing job sizes in advance, which
/// keeps tail latency low under mixed loads. With groups (one per tenant, or
/// a request and the children it spawns), a tenant's many tasks count as one,
/// and run first in, first out among themselves.
///
/// The heap holds one entry per waiting ungrouped task and one per group with
/// waiting tasks, keyed by service. Only a group's own polls raise its
/// service, and the group whose task runs is kept out of the heap until the
/// next pop, when its service is up to date: keys are never stale. Every
/// operation is O(log n).
#[derive(Debug, Default)]
pub struct LAS {
    heap: BinaryHeap<Keyed<u64, Sharer>>,
    groups: GroupFifos,
    /// The group whose task was popped last and which has more tasks waiting:
    /// it goes back into the heap at the next pop, when that task's poll has
    /// been charged, so its key is never stale.
    ran: Option<(usize, u64)>,
    /// The only runnable task, when there is just one: it needs no ordering,
    /// so it skips the heap (the common case of a queue with one busy task).
    sole: Option<ReadyTask>,
    len: usize,
}

impl LAS {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for LAS {
    fn push(&mut self, task: ReadyTask) {
        if self.len == 0 {
            self.sole = Some(task);
            self.len = 1;
            return;
        }
        if let Some(sole) = self.sole.take() {
            self.len -= 1;
            self.queue(sole);
        }
        self.queue(task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        if let Some(task) = self.sole.take() {
            self.len -= 1;
            return Some(task);
        }
        self.next()
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl LAS {
    fn queue(&mut self, task: ReadyTask) {
        self.len += 1;
        let service = task.group_service();
        let tie = task.id().as_u64();
        let item = match self.groups.push(task) {
            Ok(None) => return,
            Ok(Some(slot)) => Sharer::Group(slot),
            Err(task) => Sharer::Task(task),
        };
        self.heap.push(Keyed {
            key: service,
            tie,
            item,
        });
    }

    fn next(&mut self) -> Option<ReadyTask> {
        let mut ran = self.ran.take().and_then(|(slot, tie)| {
            let key = self.groups.front(slot)?.group_service();
            Some(Keyed {
                key,
                tie,
                item: Sharer::Group(slot),
            })
        });
        loop {
            let (mut top, fresh) = pop_with(&mut self.heap, ran.take())?;
            let slot = match top.item {
                // An ungrouped task's service does not change while it waits.
                Sharer::Task(task) => {
                    self.len -= 1;
                    return Some(task);
                }
                Sharer::Group(slot) => slot,
            };
            let Some(front) = self.groups.front(slot) else {
                continue;
            };
            // A group gains service only while its task runs, and the group
            // that ran last was out of the heap until now (`fresh`). A group
            // that got a task while its last one was running entered the heap
            // before that poll was charged: re-checked here.
            if !fresh {
                let service = front.group_service();
                if service > top.key {
                    top.key = service;
                    self.heap.push(top);
                    continue;
                }
            }
            let (task, more) = self.groups.pop(slot)?;
            if let Some(next) = more.then(|| self.groups.front(slot)).flatten() {
                self.ran = Some((slot, next.id().as_u64()));
            }
            self.len -= 1;
            return Some(task);
        }
    }
}
