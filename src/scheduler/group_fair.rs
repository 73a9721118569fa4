//! Weighted fair sharing between the groups of one queue.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;

use super::{ReadyTask, Scheduler};
use crate::group::IdHasher;
use crate::task::TaskId;

/// Fixed-point scale of a group's virtual time: one nanosecond at weight 1.
const VSCALE: u128 = 1 << 32;

/// Who shares the CPU: a group, or a task without a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Sharer {
    Group(u64),
    Task(u64),
}

#[derive(Debug)]
struct SharerState {
    tasks: VecDeque<ReadyTask>,
    weight: u32,
    /// Virtual time (service / weight, fixed point) as of `service_seen`.
    vtime: u128,
    service_seen: u64,
    /// In the `order` heap.
    queued: bool,
}

/// Weighted fair CPU share between the groups inside one queue, e.g. one group
/// per tenant: a tenant with 1,000 runnable tasks gets the same share as a
/// tenant with one (at equal weight). Tasks without a group share as groups
/// of one. Within a group, tasks run in the order they became runnable.
///
/// Each group has a virtual time, its CPU time divided by its weight; the
/// group with the least virtual time runs next. A group that was idle comes
/// back no earlier than the least virtual time served so far, so idling banks
/// no credit. Every operation is O(log n) amortised in runnable groups.
pub struct GroupFair {
    sharers: HashMap<Sharer, SharerState, IdHasher>,
    order: BinaryHeap<Reverse<(u128, u64, Sharer)>>,
    /// The least virtual time a new or returning group may start at.
    floor: u128,
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
    /// Tasks without a group have weight 1.
    pub fn with_weights(weight_of: impl Fn(u64) -> u32 + 'static) -> Self {
        GroupFair {
            sharers: HashMap::default(),
            order: BinaryHeap::new(),
            floor: 0,
            seq: 0,
            len: 0,
            weight_of: Box::new(weight_of),
        }
    }

    fn enqueue(&mut self, sharer: Sharer, vtime: u128) {
        self.seq += 1;
        self.order.push(Reverse((vtime, self.seq, sharer)));
    }
}

impl SharerState {
    /// Brings the virtual time up to the group's current service.
    fn catch_up(&mut self, service: u64) -> u128 {
        let delta = service.saturating_sub(self.service_seen);
        self.vtime += u128::from(delta) * VSCALE / u128::from(self.weight.max(1));
        self.service_seen = service;
        self.vtime
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
            .field("groups", &self.sharers.len())
            .field("runnable", &self.len)
            .finish_non_exhaustive()
    }
}

impl Scheduler for GroupFair {
    fn push(&mut self, task: ReadyTask) {
        let sharer = match task.group() {
            Some(group) => Sharer::Group(group),
            None => Sharer::Task(task.id().as_u64()),
        };
        let service = task.group_service();
        let floor = self.floor;
        let state = match self.sharers.entry(sharer) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(SharerState {
                tasks: VecDeque::new(),
                weight: match sharer {
                    Sharer::Group(group) => (self.weight_of)(group).max(1),
                    Sharer::Task(_) => 1,
                },
                vtime: floor,
                service_seen: service,
                queued: false,
            }),
        };
        state.tasks.push_back(task);
        self.len += 1;
        if !state.queued {
            state.queued = true;
            let vtime = state.catch_up(service).max(floor);
            state.vtime = vtime;
            self.enqueue(sharer, vtime);
        }
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        loop {
            let Reverse((key, _, sharer)) = self.order.pop()?;
            let Some(state) = self.sharers.get_mut(&sharer) else {
                continue;
            };
            let Some(front) = state.tasks.front() else {
                state.queued = false;
                continue;
            };
            let vtime = state.catch_up(front.group_service());
            if vtime > key {
                // The group ran since it was queued: its turn moves back.
                self.enqueue(sharer, vtime);
                continue;
            }
            let task = state.tasks.pop_front()?;
            let more = !state.tasks.is_empty();
            state.queued = more;
            self.floor = self.floor.max(vtime);
            self.len -= 1;
            if more {
                self.enqueue(sharer, vtime);
            }
            return Some(task);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn task_gone(&mut self, task: TaskId) {
        let sharer = Sharer::Task(task.as_u64());
        if self
            .sharers
            .get(&sharer)
            .is_some_and(|s| s.tasks.is_empty())
        {
            self.sharers.remove(&sharer);
        }
    }

    fn group_gone(&mut self, group: u64) {
        let sharer = Sharer::Group(group);
        if self
            .sharers
            .get(&sharer)
            .is_some_and(|s| s.tasks.is_empty())
        {
            self.sharers.remove(&sharer);
        }
    }
}
