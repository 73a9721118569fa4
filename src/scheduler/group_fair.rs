//! Weighted fair sharing between the groups of one queue.

use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::Ordering;

use super::grouped::{GroupFifos, Sharer};
use super::keyed::{Keyed, pop_with};
use super::{ReadyTask, Scheduler};
use crate::group::GroupState;

/// Weighted fair CPU share between the groups inside one queue, e.g. one group
/// per tenant: a tenant with 1,000 runnable tasks gets the same share as a
/// tenant with one (at equal weight). Tasks without a group share as groups
/// of one. Within a group, tasks run in the order they became runnable.
///
/// Each group has a virtual time, its CPU time divided by its weight; the
/// group with the least virtual time runs next. A group that was idle comes
/// back no earlier than the least virtual time served so far, so idling banks
/// no credit. Virtual times live in the groups' (and tasks') own state, and a
/// group's waiting tasks in a FIFO found through the group, so no operation
/// hashes; each is O(log n) in the runnable groups.
pub struct GroupFair {
    heap: BinaryHeap<Keyed<u64, Sharer>>,
    groups: GroupFifos,
    /// The group whose task was popped last, if it has more tasks waiting: it
    /// goes back into the heap at the next pop, with its virtual time brought
    /// up to date by then.
    ran: Option<usize>,
    /// The only runnable task, when there is just one: it needs no ordering,
    /// so it skips the heap (the common case of a queue with one busy task).
    sole: Option<ReadyTask>,
    /// The least virtual time a new or returning sharer may start at: the
    /// virtual time of the last sharer served (as order-preserving bits).
    floor: u64,
    seq: u64,
    len: usize,
    weight_of: Box<dyn Fn(u64) -> u32>,
}

impl GroupFair {
    /// Equal weights for every group.
    pub fn new() -> Self {
        Self::with_weights(|_| 1)
    }

    /// Weights per group: `weight_of` gets a group's id (see
    /// [`group_id`](crate::group_id)) and returns its weight (0 counts as 1).
    /// It is asked once per group while the group lives. Tasks without a
    /// group have weight 1.
    pub fn with_weights(weight_of: impl Fn(u64) -> u32 + 'static) -> Self {
        GroupFair {
            heap: BinaryHeap::new(),
            groups: GroupFifos::default(),
            ran: None,
            sole: None,
            floor: 0,
            seq: 0,
            len: 0,
            weight_of: Box::new(weight_of),
        }
    }

    /// `1 / weight` of `group`, asked of `weight_of` once per group.
    fn inverse_weight(&self, group: &GroupState) -> f64 {
        match group.inverse_weight.load(Ordering::Relaxed) {
            0 => {
                let inverse = 1.0 / f64::from((self.weight_of)(group.id).max(1));
                group
                    .inverse_weight
                    .store(inverse.to_bits(), Ordering::Relaxed);
                inverse
            }
            bits => f64::from_bits(bits),
        }
    }

    /// The sharer's virtual time, brought up to date.
    fn vtime(&self, task: &ReadyTask) -> u64 {
        let service = task.group_service();
        match task.group_state() {
            Some(group) => group
                .fair
                .catch_up(service, self.inverse_weight(group), self.floor),
            None => task.fair_clock().catch_up(service, 1.0, self.floor),
        }
    }

    fn tie(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

impl Default for GroupFair {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for GroupFair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupFair")
            .field("runnable", &self.len)
            .field("queued_sharers", &self.heap.len())
            .finish_non_exhaustive()
    }
}

impl Scheduler for GroupFair {
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
            // Served alone, it still moves the floor, as a heap pop would.
            self.floor = self.floor.max(self.vtime(&task));
            self.len -= 1;
            return Some(task);
        }
        self.next()
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl GroupFair {
    fn queue(&mut self, task: ReadyTask) {
        self.len += 1;
        let (key, item) = match self.groups.push(task) {
            // Joined its group's FIFO: the group is queued already.
            Ok(None) => return,
            Ok(Some(slot)) => {
                let Some(front) = self.groups.front(slot) else {
                    return;
                };
                (self.vtime(front), Sharer::Group(slot))
            }
            Err(task) => (self.vtime(&task), Sharer::Task(task)),
        };
        let tie = self.tie();
        self.heap.push(Keyed { key, tie, item });
    }

    fn next(&mut self) -> Option<ReadyTask> {
        let mut ran = self.ran.take().and_then(|slot| {
            let key = self.vtime(self.groups.front(slot)?);
            let tie = self.tie();
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
                    self.floor = self.floor.max(top.key);
                    self.len -= 1;
                    return Some(task);
                }
                Sharer::Group(slot) => slot,
            };
            let Some(front) = self.groups.front(slot) else {
                continue;
            };
            // Fresh: the group that ran last, just brought up to date.
            // Otherwise the group may have run since it was queued (it got a
            // task while its last one was running): its turn moves back.
            let vtime = if fresh { top.key } else { self.vtime(front) };
            if vtime > top.key {
                top.key = vtime;
                top.tie = self.tie();
                self.heap.push(top);
                continue;
            }
            let (task, more) = self.groups.pop(slot)?;
            self.floor = self.floor.max(vtime);
            if more {
                self.ran = Some(slot);
            }
            self.len -= 1;
            return Some(task);
        }
    }
}
