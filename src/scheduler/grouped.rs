//! The runnable tasks of groups, first in first out within each group, for
//! the schedulers that order groups rather than tasks (`LAS`, `GroupFair`).
//!
//! A group's tasks wait in a FIFO; the scheduler's heap holds one entry per
//! group with waiting tasks, plus one per waiting ungrouped task. The FIFO's
//! index is kept in the group's own state (`GroupState::slot`), so finding it
//! costs no hashing.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use slab::Slab;

use super::ReadyTask;

/// What a heap entry stands for.
#[derive(Debug)]
pub(crate) enum Sharer {
    /// An ungrouped task, waiting alone.
    Task(ReadyTask),
    /// The group whose FIFO is in this slot.
    Group(usize),
}

#[derive(Debug, Default)]
pub(crate) struct GroupFifos {
    fifos: Slab<VecDeque<ReadyTask>>,
}

impl GroupFifos {
    /// Queues a grouped task: `Ok(Some(slot))` if its group had no waiting
    /// task before (the caller then gives the group a heap entry), `Ok(None)`
    /// if it joined its group's FIFO, `Err(task)` if it has no group.
    pub(crate) fn push(&mut self, task: ReadyTask) -> Result<Option<usize>, ReadyTask> {
        let Some(group) = task.group_state() else {
            return Err(task);
        };
        let slot = group.slot.load(Ordering::Relaxed);
        if let Some(fifo) = self.fifos.get_mut(slot) {
            fifo.push_back(task);
            return Ok(None);
        }
        let slot = self.fifos.vacant_entry().key();
        group.slot.store(slot, Ordering::Relaxed);
        self.fifos.insert(VecDeque::from([task]));
        Ok(Some(slot))
    }

    /// The next task of the group in `slot`.
    pub(crate) fn front(&self, slot: usize) -> Option<&ReadyTask> {
        self.fifos.get(slot)?.front()
    }

    /// Takes the next task of the group in `slot`, and whether the group has
    /// more waiting. An emptied group gives its slot back.
    pub(crate) fn pop(&mut self, slot: usize) -> Option<(ReadyTask, bool)> {
        let fifo = self.fifos.get_mut(slot)?;
        let task = fifo.pop_front()?;
        if fifo.is_empty() {
            self.fifos.remove(slot);
            if let Some(group) = task.group_state() {
                group.slot.store(usize::MAX, Ordering::Relaxed);
            }
            return Some((task, false));
        }
        Some((task, true))
    }
}
