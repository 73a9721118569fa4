//! The runnable tasks of groups, first in first out within each group, for
//! the schedulers that order groups rather than tasks (`LAS`, `GroupFair`).
//!
//! A group with waiting tasks has a FIFO in a slab; the FIFO's index is kept
//! in the group's own state (`GroupState::slot`), so finding it costs no
//! hashing. The index may be stale (the FIFO released, its slot reused by
//! another group): each FIFO records its group's id, and a mismatch means the
//! group has none. Ids are unique among a queue's live groups.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use slab::Slab;

use super::ReadyTask;

/// Emptied FIFOs kept for reuse, so that a group coming and going (a lone
/// task that sleeps and wakes) does not allocate each time.
const SPARE_FIFOS: usize = 16;

/// What a heap entry stands for.
#[derive(Debug)]
pub(crate) enum Sharer {
    /// An ungrouped task, waiting alone.
    Task(ReadyTask),
    /// The group whose FIFO is in this slot.
    Group(usize),
}

#[derive(Debug)]
struct Fifo {
    group: u64,
    tasks: VecDeque<ReadyTask>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupFifos {
    fifos: Slab<Fifo>,
    spare: Vec<VecDeque<ReadyTask>>,
}

impl GroupFifos {
    /// Queues a grouped task: `Ok(Some(slot))` if its group had no FIFO
    /// before (the caller then gives the group a turn to wait for),
    /// `Ok(None)` if it joined its group's FIFO, `Err(task)` if it has no
    /// group.
    pub(crate) fn push(&mut self, task: ReadyTask) -> Result<Option<usize>, ReadyTask> {
        let Some(group) = task.group_state() else {
            return Err(task);
        };
        let slot = group.slot.load(Ordering::Relaxed);
        if let Some(fifo) = self.fifos.get_mut(slot).filter(|f| f.group == group.id) {
            fifo.tasks.push_back(task);
            return Ok(None);
        }
        let entry = self.fifos.vacant_entry();
        let slot = entry.key();
        group.slot.store(slot, Ordering::Relaxed);
        let mut tasks = self.spare.pop().unwrap_or_default();
        let group = group.id;
        tasks.push_back(task);
        entry.insert(Fifo { group, tasks });
        Ok(Some(slot))
    }

    /// The next task of the group in `slot`.
    #[inline]
    pub(crate) fn front(&self, slot: usize) -> Option<&ReadyTask> {
        self.fifos.get(slot)?.tasks.front()
    }

    /// Takes the next task of the group in `slot`. The FIFO stays, even if
    /// empty, until [`release`](Self::release)d: the group's next task joins
    /// it without a new turn.
    #[inline]
    pub(crate) fn pop(&mut self, slot: usize) -> Option<ReadyTask> {
        self.fifos.get_mut(slot)?.tasks.pop_front()
    }

    /// Frees the FIFO in `slot`, which must be empty: its group has no
    /// waiting task and no turn.
    pub(crate) fn release(&mut self, slot: usize) {
        if let Some(fifo) = self.fifos.try_remove(slot) {
            debug_assert!(fifo.tasks.is_empty(), "released a group with waiting tasks");
            if self.spare.len() < SPARE_FIFOS {
                self.spare.push(fifo.tasks);
            }
        }
    }
}
