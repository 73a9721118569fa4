//! Least attained service.

use super::ReadyTask;
use super::sharing::{Policy, Sharing, turn_taking_scheduler};

/// Least attained service first: the task whose group has had the least CPU so
/// far runs next; a task without a group is its own group; ties between
/// waiting groups go by arrival.
///
/// Short jobs overtake long ones without knowing job sizes in advance, which
/// keeps tail latency low under mixed loads. With groups (one per tenant, or
/// a request and the children it spawns), a tenant's many tasks count as one,
/// and run first in, first out among themselves.
///
/// Services closer than the *granularity* (10 µs by default, see
/// [`with_granularity`](Self::with_granularity)) count as equal: the group
/// that runs keeps the thread until its service passes the least waiting
/// group's by that much, so ordering costs one heap operation per such turn
/// rather than per poll. A task or group that becomes runnable with less
/// service than the turn would end at (a new task, say) ends the turn at the
/// next poll. Every operation is
/// O(log n) in the waiting groups, most are O(1).
pub struct LAS {
    inner: Sharing<ByService>,
}

impl LAS {
    /// An empty scheduler with the default granularity.
    pub fn new() -> Self {
        LAS {
            inner: Sharing::new(ByService),
        }
    }
}

turn_taking_scheduler!(LAS);

/// Keys a group by its service.
#[derive(Debug)]
struct ByService;

impl Policy for ByService {
    fn key(&mut self, task: &ReadyTask) -> u64 {
        task.group_service()
    }

    fn is_current(&self, task: &ReadyTask, key: u64) -> bool {
        task.group_service() == key
    }

    fn after(&self, key: u64, granularity: u64) -> u64 {
        key.saturating_add(granularity)
    }

    fn service_at(&self, _task: &ReadyTask, _key: u64, end: u64) -> u64 {
        end
    }

    fn tie(&mut self, task: &ReadyTask) -> u64 {
        // Task ids grow with spawns: arrival order.
        task.id().as_u64()
    }
}
