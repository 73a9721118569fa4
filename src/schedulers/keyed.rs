//! A heap entry ordered by a key, then by a tie-breaker, smallest first.

use std::cmp::Ordering;

use super::ReadyTask;

/// Orders ascending by `key`, then by `tie` (usually arrival), in a
/// `BinaryHeap` (which is a max-heap: the order is reversed here).
#[derive(Debug)]
pub(crate) struct Keyed<K, T = ReadyTask> {
    pub(crate) key: K,
    pub(crate) tie: u64,
    pub(crate) item: T,
}

impl<K> Keyed<K> {
    /// A task keyed by `key`, ties broken by arrival (task ids grow with spawns).
    pub(crate) fn new(key: K, task: ReadyTask) -> Self {
        Keyed {
            key,
            tie: task.id().as_u64(),
            item: task,
        }
    }

    pub(crate) fn into_task(self) -> ReadyTask {
        self.item
    }
}

impl<K: Ord, T> PartialEq for Keyed<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: Ord, T> Eq for Keyed<K, T> {}

impl<K: Ord, T> PartialOrd for Keyed<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, T> Ord for Keyed<K, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (&other.key, other.tie).cmp(&(&self.key, self.tie))
    }
}

/// Takes the least entry of `heap`, where `extra` (if any) is an entry that
/// was outside the heap: if `extra` is the least it is returned without
/// touching the heap; otherwise it replaces the heap's least in one sift,
/// instead of a push and a pop. The flag tells whether the entry returned is
/// `extra` itself.
#[inline(always)]
pub(crate) fn pop_with<K: Ord, T>(
    heap: &mut std::collections::BinaryHeap<Keyed<K, T>>,
    extra: Option<Keyed<K, T>>,
) -> Option<(Keyed<K, T>, bool)> {
    let Some(extra) = extra else {
        return heap.pop().map(|least| (least, false));
    };
    match heap.peek_mut() {
        // The heap is a max-heap over the reversed order: "greater" is less.
        Some(mut least) if *least > extra => Some((std::mem::replace(&mut *least, extra), false)),
        _ => Some((extra, true)),
    }
}
