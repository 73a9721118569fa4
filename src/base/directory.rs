//! The queue directory: queue keys and their dense indices, shared by the
//! executor, its spawners (on any thread), and the slow-poll and stall
//! reporters.
//!
//! Queues are only ever added, never removed, so an index once handed out
//! stays valid. A lookup takes the read lock for one hash lookup; the write
//! lock is taken by [`add_queue`](crate::Executor::add_queue) only. No lock
//! is held while the executor runs tasks, and user code never runs under
//! one, except the key's own `Hash`, `Eq` and `Clone`: a panic there
//! poisons nothing that matters (the maps are updated after those calls), so
//! a poisoned lock is simply taken over.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::base::config::MAX_QUEUES;
use crate::base::error::{ConfigError, UnknownQueue};
use crate::base::key::QueueKey;

/// Every queue's key and index.
#[derive(Debug)]
pub(crate) struct Directory<K> {
    inner: RwLock<Entries<K>>,
}

#[derive(Debug)]
struct Entries<K> {
    index: HashMap<K, usize>,
    /// Keys by index.
    keys: Vec<K>,
}

impl<K: QueueKey> Directory<K> {
    /// A directory of `keys`, indexed in order (the builder checked they
    /// are unique).
    pub(crate) fn new(keys: Vec<K>) -> Self {
        let index = keys.iter().cloned().zip(0..).collect();
        Directory {
            inner: RwLock::new(Entries { index, keys }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries<K>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries<K>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index of the queue named `key`.
    pub(crate) fn index(&self, key: &K) -> Result<usize, UnknownQueue> {
        self.read()
            .index
            .get(key)
            .copied()
            .ok_or_else(|| UnknownQueue::new(key))
    }

    /// The key of the queue at `index`, cloned, so that no lock is held
    /// while the caller uses it.
    pub(crate) fn key(&self, index: usize) -> Option<K> {
        self.read().keys.get(index).cloned()
    }

    /// Every key, by index.
    pub(crate) fn keys(&self) -> Vec<K> {
        self.read().keys.clone()
    }

    /// The index of the queue named `key`, for a change of its weight to
    /// `weight`: refused if the key is unknown or the weight is 0. The one
    /// check of the `Executor` and of a `Spawner`.
    pub(crate) fn weight_change(&self, key: &K, weight: u32) -> Result<usize, ConfigError> {
        let queue = self.index(key)?;
        ConfigError::check_weight(key, weight)?;
        Ok(queue)
    }

    /// Adds a queue named `key` of weight `weight` (refused if 0) at the next
    /// index, if `create` succeeds. `create` makes the queue, given its index
    /// and its name (the key as `Debug` prints it, its label in exported
    /// metrics); it is called under the write lock, so that queues are
    /// created in index order. Returns the index. The one path of the
    /// `Executor` and of a `Spawner`.
    pub(crate) fn add(
        &self,
        key: K,
        weight: u32,
        create: impl FnOnce(usize, String) -> Result<(), ConfigError>,
    ) -> Result<usize, ConfigError> {
        ConfigError::check_weight(&key, weight)?;
        let name = format!("{key:?}");
        let mut entries = self.write();
        if entries.index.contains_key(&key) {
            return Err(ConfigError::DuplicateKey {
                key: format!("{key:?}"),
            });
        }
        let index = entries.keys.len();
        if index >= MAX_QUEUES {
            return Err(ConfigError::TooManyQueues);
        }
        // The key's own code (`Clone`, `Hash`) runs before the queue is
        // created: if it panics, nothing has changed, and the next queue
        // added still gets the next index on both sides.
        let by_index = key.clone();
        entries.index.insert(key, index);
        entries.keys.push(by_index);
        if let Err(error) = create(index, name) {
            // The key hashed a moment ago; taking it out again hashes it
            // once more.
            if let Some(key) = entries.keys.pop() {
                entries.index.remove(&key);
            }
            return Err(error);
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue past `MAX_QUEUES` is a typed error, and the directory is
    /// left as it was: the key is not taken, no queue is created.
    #[test]
    fn a_queue_past_the_limit_is_refused_and_changes_nothing() {
        let directory = Directory::new((0..MAX_QUEUES).collect());
        let mut created = false;
        let refused = directory.add(MAX_QUEUES, 1, |_, _| {
            created = true;
            Ok(())
        });
        assert_eq!(refused, Err(ConfigError::TooManyQueues));
        assert!(!created);
        assert!(directory.index(&MAX_QUEUES).is_err());
        assert_eq!(directory.keys().len(), MAX_QUEUES);
        assert_eq!(
            ConfigError::TooManyQueues.to_string(),
            "an executor holds at most 65536 queues"
        );
    }
}
