//! Queue keys: how users name their queues.

use std::fmt::Debug;
use std::hash::Hash;

/// A value that names a queue: an enum, an integer, a `&'static str`, a `String`…
///
/// Implemented for every `Clone + Eq + Hash + Debug + 'static` type, so there is
/// nothing to implement by hand. Keys are only looked up when a handle is
/// created ([`Executor::queue`](crate::Executor::queue)); the hot paths use a
/// dense queue index instead, so an expensive key costs nothing per task.
///
/// ```
/// use clockworker::ExecutorBuilder;
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// enum Class { Foreground, Background }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue(Class::Foreground, 8)
///     .with_queue(Class::Background, 1)
///     .build()
///     .unwrap();
/// assert!(executor.queue(Class::Background).is_ok());
/// ```
pub trait QueueKey: Clone + Eq + Hash + Debug + 'static {}

impl<T: Clone + Eq + Hash + Debug + 'static> QueueKey for T {}
