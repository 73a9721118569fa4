//! Weighted fair sharing between the groups of one queue.

use std::sync::atomic::Ordering;

use super::ReadyTask;
use super::sharing::{Policy, Sharing, turn_taking_scheduler};
use crate::base::group::GroupState;

/// Weighted fair CPU share between the groups inside one queue, e.g. one group
/// per tenant: a tenant with 1,000 runnable tasks gets the same share as a
/// tenant with one (at equal weight). Tasks without a group share as groups
/// of one. Within a group, tasks run in the order they became runnable.
///
/// Each group has a virtual time, its CPU time divided by its weight; the
/// group with the least virtual time runs next. A group that was idle comes
/// back no earlier than the virtual time of the group served last, so idling
/// banks no credit.
///
/// Virtual times closer than the *granularity* (10 µs by default, see
/// [`with_granularity`](Self::with_granularity)) count as equal: the group
/// that runs keeps the thread until its virtual time passes the least waiting
/// group's by that much, so groups take turns of about `granularity × weight`
/// of CPU, and ordering costs one heap operation per turn rather than per
/// poll. Virtual times live in the groups' (and tasks') own state, and a
/// group's waiting tasks in a FIFO found through the group, so no operation
/// hashes; each is O(log n) in the waiting groups, most are O(1).
pub struct GroupFair {
    inner: Sharing<ByVirtualTime>,
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
        let policy = ByVirtualTime {
            floor: 0,
            seq: 0,
            weight_of: Box::new(weight_of),
        };
        GroupFair {
            inner: Sharing::new(policy),
        }
    }
}

turn_taking_scheduler!(GroupFair);

/// Keys a group by its virtual time, as order-preserving `f64` bits
/// (virtual times are never negative).
struct ByVirtualTime {
    /// The least virtual time a new or returning group may start at: that
    /// of the group whose turn started last.
    floor: u64,
    /// Ties go round-robin: to the group that entered the heap first.
    seq: u64,
    weight_of: Box<dyn Fn(u64) -> u32>,
}

impl ByVirtualTime {
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

    /// The `1 / weight` of the task's sharer: its group's, or 1 for a task
    /// without one.
    fn sharer_inverse_weight(&self, task: &ReadyTask) -> f64 {
        task.group_state()
            .map_or(1.0, |group| self.inverse_weight(group))
    }
}

impl Policy for ByVirtualTime {
    fn key(&mut self, task: &ReadyTask) -> u64 {
        match task.group_state() {
            Some(group) => {
                let inverse_weight = self.inverse_weight(group);
                group
                    .fair
                    .catch_up(task.group_service(), inverse_weight, self.floor)
            }
            None => task.solo_clock().catch_up(task.service(), self.floor),
        }
    }

    fn is_current(&self, task: &ReadyTask, key: u64) -> bool {
        match task.group_state() {
            Some(group) => group.fair.counts(task.group_service()),
            None => task.solo_clock().at(task.service()) == key,
        }
    }

    fn after(&self, key: u64, granularity: u64) -> u64 {
        (f64::from_bits(key) + granularity as f64).to_bits()
    }

    fn service_at(&self, task: &ReadyTask, key: u64, end: u64) -> u64 {
        if end == u64::MAX {
            return u64::MAX;
        }
        let inverse_weight = self.sharer_inverse_weight(task);
        let span = (f64::from_bits(end) - f64::from_bits(key)).max(0.0) / inverse_weight;
        // `as` saturates: a span past `u64::MAX` nanoseconds is no limit.
        task.group_service().saturating_add(span as u64)
    }

    fn tie(&mut self, _task: &ReadyTask) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn served(&mut self, key: u64) {
        self.floor = self.floor.max(key);
    }
}
