//! A task in a min-heap, ordered by a key and then by arrival.

use std::cmp::Ordering;

use super::ReadyTask;

/// Orders ascending by `key`, then by task id (arrival), in a `BinaryHeap`
/// (which is a max-heap: the order is reversed here).
#[derive(Debug)]
pub(crate) struct Keyed<K> {
    pub(crate) key: K,
    arrival: u64,
    task: ReadyTask,
}

impl<K> Keyed<K> {
    pub(crate) fn new(key: K, task: ReadyTask) -> Self {
        Keyed {
            key,
            arrival: task.id().as_u64(),
            task,
        }
    }

    pub(crate) fn task(&self) -> &ReadyTask {
        &self.task
    }

    pub(crate) fn into_task(self) -> ReadyTask {
        self.task
    }
}

impl<K: Ord> PartialEq for Keyed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: Ord> Eq for Keyed<K> {}

impl<K: Ord> PartialOrd for Keyed<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for Keyed<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (&other.key, other.arrival).cmp(&(&self.key, self.arrival))
    }
}
