//! The machinery that [`LAS`](super::LAS) and [`GroupFair`](super::GroupFair)
//! share: *sharers* (groups, and ungrouped tasks as groups of one) ordered by
//! a key that only grows while the sharer runs, least key first, taking
//! *turns*.
//!
//! # Turns
//!
//! Ordering sharers exactly on every poll costs a heap operation per poll.
//! Instead the sharer with the least key gets the thread for a turn, which
//! lasts until its key passes the least waiting key by the scheduler's
//! *granularity*: as CFS does with its minimum granularity, sharers whose
//! keys are within the granularity count as tied, and the one running keeps
//! running. During a turn a pop is a FIFO pop and one comparison, as cheap as
//! [`RunnableFifo`](super::RunnableFifo); the heap is touched once per turn.
//! The turn's end is converted from a key into the holder's service once,
//! when the turn starts, so the check needs no arithmetic.
//!
//! A sharer that becomes runnable with a key below the turn's end (say a new
//! task under `LAS`, with no service yet) ends the turn at the next pop,
//! where the sharers are ordered exactly again. A granularity of zero gives
//! exact ordering at every poll.
//!
//! # Invariants
//!
//! - The heap holds one entry per waiting sharer, except the turn's holder,
//!   which never is in the heap: its tasks wait in its FIFO (a group) or in
//!   `Turn::parked` (an ungrouped task).
//! - A key in the heap is current, except for a group that entered the heap
//!   while its task was polled outside of a turn (the single-task fast path):
//!   it is checked with [`Policy::is_current`] when it reaches the top.
//! - `len` counts every task held: the lone task, the parked one, the FIFOs'
//!   and the heap's ungrouped ones.

use std::collections::BinaryHeap;
use std::time::Duration;

use super::ReadyTask;
use super::grouped::{GroupFifos, Sharer};
use super::keyed::{Keyed, pop_with};
use crate::base::id::TaskId;

/// How a scheduler keys its sharers.
pub(crate) trait Policy {
    /// The key of the sharer of `task` (its group, or itself if ungrouped),
    /// brought up to date with its service.
    fn key(&mut self, task: &ReadyTask) -> u64;

    /// Whether `key`, computed earlier for the sharer of `task`, still holds:
    /// no service was charged to the sharer since.
    fn is_current(&self, task: &ReadyTask, key: u64) -> bool;

    /// The key `granularity` nanoseconds of (weighted) service after `key`.
    fn after(&self, key: u64, granularity: u64) -> u64;

    /// The service the sharer of `task`, whose key is `key`, may reach before
    /// its key reaches `end`.
    fn service_at(&self, task: &ReadyTask, key: u64, end: u64) -> u64;

    /// The tie-breaker of a sharer entering the heap: lower goes first.
    fn tie(&mut self, task: &ReadyTask) -> u64;

    /// A sharer at `key` starts a turn.
    fn served(&mut self, key: u64) {
        let _ = key;
    }
}

/// Who holds the turn.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Group(usize),
    Task(TaskId),
}

#[derive(Debug)]
struct Turn {
    holder: Holder,
    /// The holder's ungrouped task, runnable again during its own turn.
    parked: Option<ReadyTask>,
    /// The turn lasts while the holder's service is below this.
    until_service: u64,
    /// The key at which the turn ends: a sharer arriving below it ends the
    /// turn early.
    until_key: u64,
}

pub(crate) struct Sharing<P> {
    pub(crate) policy: P,
    granularity: u64,
    heap: BinaryHeap<Keyed<u64, Sharer>>,
    groups: GroupFifos,
    turn: Option<Turn>,
    /// The only runnable task, when there is just one: it needs no ordering,
    /// so it skips the heap and turns (the common case of a queue with one
    /// busy task).
    sole: Option<ReadyTask>,
    len: usize,
}

/// The default granularity of `LAS` and `GroupFair`.
const DEFAULT_GRANULARITY: Duration = Duration::from_micros(10);

impl<P: Policy> Sharing<P> {
    /// An empty scheduler with the default granularity.
    pub(crate) fn new(policy: P) -> Self {
        Sharing {
            policy,
            granularity: crate::base::clock::nanos(DEFAULT_GRANULARITY),
            heap: BinaryHeap::new(),
            groups: GroupFifos::default(),
            turn: None,
            sole: None,
            len: 0,
        }
    }

    pub(crate) fn set_granularity(&mut self, granularity: u64) {
        self.granularity = granularity;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, task: ReadyTask) {
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

    pub(crate) fn pop(&mut self) -> Option<ReadyTask> {
        if let Some(task) = self.sole.take() {
            // Served alone, it still counts as served (`GroupFair` moves its
            // floor), as if it had had a turn.
            let key = self.policy.key(&task);
            self.policy.served(key);
            self.len -= 1;
            return Some(task);
        }
        let task = match self.continue_turn() {
            Some(task) => task,
            None => self.next_turn()?,
        };
        self.len -= 1;
        Some(task)
    }

    fn queue(&mut self, task: ReadyTask) {
        self.len += 1;
        if let Some(turn) = &mut self.turn {
            if let Holder::Task(id) = turn.holder {
                if task.id() == id {
                    turn.parked = Some(task);
                    return;
                }
            }
        }
        let item = match self.groups.push(task) {
            // Joined its group's FIFO: the group waits in the heap already,
            // or holds the turn.
            Ok(None) => return,
            Ok(Some(slot)) => Sharer::Group(slot),
            Err(task) => Sharer::Task(task),
        };
        let Some(front) = front_of(&self.groups, &item) else {
            return;
        };
        let key = self.policy.key(front);
        let tie = self.policy.tie(front);
        if let Some(turn) = &mut self.turn {
            if key < turn.until_key {
                // Owed the thread before the turn would end: the sharers are
                // ordered exactly at the next pop.
                turn.until_service = 0;
            }
        }
        self.heap.push(Keyed { key, tie, item });
    }

    /// The next task of the turn's holder, if its turn lasts.
    #[inline]
    fn continue_turn(&mut self) -> Option<ReadyTask> {
        let turn = self.turn.as_mut()?;
        match turn.holder {
            Holder::Group(slot) => {
                let front = self.groups.front(slot)?;
                if front.group_service() >= turn.until_service {
                    return None;
                }
                self.groups.pop(slot)
            }
            Holder::Task(_) => {
                if turn.parked.as_ref()?.service() >= turn.until_service {
                    return None;
                }
                turn.parked.take()
            }
        }
    }

    /// Ends the current turn (its holder goes back to the heap if it has
    /// tasks waiting) and starts the next one: the sharer with the least key.
    fn next_turn(&mut self) -> Option<ReadyTask> {
        let mut holder = self.turn.take().and_then(|turn| self.requeue(turn));
        loop {
            let (mut top, fresh) = pop_with(&mut self.heap, holder.take())?;
            let Some(front) = front_of(&self.groups, &top.item) else {
                if let Sharer::Group(slot) = top.item {
                    self.groups.release(slot);
                }
                continue;
            };
            if !fresh && !self.policy.is_current(front, top.key) {
                // It ran since it entered the heap: its place moves back.
                top.key = self.policy.key(front);
                self.heap.push(top);
                continue;
            }
            let until_key = match self.heap.peek() {
                Some(next) => self.policy.after(next.key, self.granularity),
                None => u64::MAX,
            };
            let until_service = self.policy.service_at(front, top.key, until_key);
            self.policy.served(top.key);
            let (task, holder) = match top.item {
                Sharer::Task(task) => {
                    let id = task.id();
                    (task, Holder::Task(id))
                }
                Sharer::Group(slot) => (self.groups.pop(slot)?, Holder::Group(slot)),
            };
            self.turn = Some(Turn {
                holder,
                parked: None,
                until_service,
                until_key,
            });
            return Some(task);
        }
    }

    /// The heap entry of a turn's holder that has tasks waiting, keyed now;
    /// a holder without frees its FIFO.
    fn requeue(&mut self, turn: Turn) -> Option<Keyed<u64, Sharer>> {
        let item = match (turn.holder, turn.parked) {
            (Holder::Task(_), Some(task)) => Sharer::Task(task),
            (Holder::Task(_), None) => return None,
            (Holder::Group(slot), _) => {
                if self.groups.front(slot).is_none() {
                    self.groups.release(slot);
                    return None;
                }
                Sharer::Group(slot)
            }
        };
        let front = front_of(&self.groups, &item)?;
        let key = self.policy.key(front);
        let tie = self.policy.tie(front);
        Some(Keyed { key, tie, item })
    }
}

/// The task at the front of a sharer: itself, or its group's first.
#[inline]
fn front_of<'a>(groups: &'a GroupFifos, sharer: &'a Sharer) -> Option<&'a ReadyTask> {
    match sharer {
        Sharer::Task(task) => Some(task),
        Sharer::Group(slot) => groups.front(*slot),
    }
}

impl<P> Sharing<P> {
    /// A `Debug` rendering for the scheduler named `name`.
    pub(crate) fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("runnable", &self.len)
            .field("waiting_sharers", &self.heap.len())
            .field("granularity_ns", &self.granularity)
            .finish_non_exhaustive()
    }
}

/// The public face of a scheduler built on [`Sharing`] (a struct with an
/// `inner: Sharing<_>` field and a `new()`): `with_granularity`, `Default`,
/// `Debug` and `Scheduler`, alike for `LAS` and `GroupFair`.
macro_rules! turn_taking_scheduler {
    ($name:ident) => {
        impl $name {
            /// Sets the granularity: how far (in service, divided by weight
            /// for `GroupFair`) the running group may get ahead of the least
            /// waiting one before the next runs. Zero orders exactly at every
            /// poll, at the cost of a heap operation per poll.
            pub fn with_granularity(mut self, granularity: std::time::Duration) -> Self {
                self.inner
                    .set_granularity(crate::base::clock::nanos(granularity));
                self
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.debug(stringify!($name), f)
            }
        }

        impl $crate::Scheduler for $name {
            fn push(&mut self, task: $crate::ReadyTask) {
                self.inner.push(task);
            }

            fn pop(&mut self) -> Option<$crate::ReadyTask> {
                self.inner.pop()
            }

            fn len(&self) -> usize {
                self.inner.len()
            }

            /// None: the shares are read from each task's live figures.
            fn reports(&self) -> $crate::Reports {
                $crate::Reports::NONE
            }
        }
    };
}

pub(crate) use turn_taking_scheduler;
