//! The thread-per-core pool (feature `pool`): [`Pool`], its
//! [`PoolBuilder`] and [`PoolError`]. The model is documented on [`Pool`],
//! where the public documentation shows it.

mod builder;
mod error;

use std::future::Future;
use std::hash::Hash;
use std::thread;

pub use builder::PoolBuilder;
pub use error::PoolError;

use crate::base::error::panic_message;
use crate::base::group::group_id;
use crate::base::key::QueueKey;
use crate::base::shutdown::Shutdown;
use crate::builder::ExecutorBuilder;
use crate::join::JoinHandle;
use crate::spawner::Spawner;

/// A thread-per-core pool: `workers` threads, each running a Tokio
/// current-thread runtime and an [`Executor`](crate::Executor) built from the
/// same configuration. Feature `pool`.
///
/// # Why thread per core
///
/// An executor is single-threaded: its tasks need no `Send`, no locks and
/// no atomics, and its queue weights describe one CPU. To use every core,
/// run one executor per core and split the work between them by *key*
/// (a tenant, a user, a partition): everything about one key lives on one
/// worker, in plain thread-local data, and its requests never contend with
/// another core's. The cost is balance: a hot key loads one worker only.
/// `examples/thread_per_core.rs` is a worked example: a key-value server
/// with connections sharded by tenant.
///
/// ```text
///  Pool ── Spawner ──> worker 0: thread ─ Tokio current_thread + LocalSet ─ Executor (queues…)
///       ── Spawner ──> worker 1: thread ─ Tokio current_thread + LocalSet ─ Executor (queues…)
///       …              worker_for(key) = group_id(key) % workers
/// ```
///
/// # Lifecycle
///
/// - [`PoolBuilder::build`] starts every worker and returns once each one's
///   executor is running, or returns the first failure with every thread
///   already joined.
/// - Work goes in through each worker's [`Spawner`]: [`Pool::spawn_on`] a
///   given worker, [`Pool::spawn_for`] the worker of a key, or
///   [`Spawner::spawn_with`] (through [`Pool::spawner_for`]) for a future
///   that is built on the worker and need not be `Send`.
/// - [`Pool::shutdown`] shuts every executor down (draining or cancelling
///   their tasks, see [`Shutdown`]) and joins every thread. Dropping the
///   pool does the same with [`Shutdown::Cancel`].
///
/// # A worker that panics
///
/// With the executors' default
/// [`with_panic_on_task_panic(true)`](crate::ExecutorBuilder::with_panic_on_task_panic),
/// a task panic ends its worker: the executor re-raises it from its run
/// future, and the thread unwinds. Nothing waits on that worker forever: the
/// executor is dropped as the thread unwinds, which cancels its other tasks
/// (their handles resolve to [`JoinError::Cancelled`](crate::JoinError::Cancelled))
/// and closes its spawner (later spawns resolve to `Cancelled` too). The
/// other workers keep running. [`Pool::shutdown`] then returns
/// [`PoolError::WorkerPanicked`], and [`Pool::is_finished`] tells early.
/// To keep workers alive through task panics instead, build the executors
/// with `with_panic_on_task_panic(false)`: a panic is then only that task's
/// [`JoinError::Panic`](crate::JoinError::Panic).
///
/// # Example
///
/// ```
/// use clockworker::{ExecutorBuilder, Pool, Shutdown};
///
/// let pool = Pool::builder(|_worker| {
///     ExecutorBuilder::new()
///         .with_queue("requests", 8)
///         .with_queue("maintenance", 1)
/// })
/// .workers(2)
/// .build()?;
///
/// // Everything for one user runs on one worker.
/// let worker = pool.worker_for("user-42");
/// let answer = pool.spawn_for("user-42", "requests", async { 6 * 7 })?;
/// assert_eq!(futures::executor::block_on(answer).unwrap(), 42);
/// assert_eq!(pool.worker_for("user-42"), worker);
///
/// // Finish what was spawned, then stop every thread.
/// pool.shutdown(Shutdown::Drain { deadline: None })?;
/// # Ok::<(), clockworker::PoolError>(())
/// ```
pub struct Pool<K: QueueKey> {
    /// Worker `i` at index `i`.
    workers: Vec<Worker<K>>,
}

/// One worker: the way in to its executor, and its thread.
struct Worker<K> {
    index: usize,
    spawner: Spawner<K>,
    /// `None` once joined.
    thread: Option<thread::JoinHandle<()>>,
}

impl<K: QueueKey + Send + Sync> Pool<K> {
    /// A builder for a pool whose workers' executors are configured by
    /// `make`.
    ///
    /// `make` is called once per worker, *on that worker's thread*, with the
    /// worker's index: an [`Executor`](crate::Executor) is not `Send`, so
    /// each is built where it runs. Return the same queues from every call
    /// (keys are looked up the same way on every worker); the index is
    /// there for what may differ, such as a name in a slow-poll callback.
    pub fn builder(
        make: impl Fn(usize) -> ExecutorBuilder<K> + Send + Sync + 'static,
    ) -> PoolBuilder<K> {
        PoolBuilder::new(make)
    }

    /// The number of workers; valid worker indices are `0..workers()`.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The spawner of worker `worker`, or `None` if there is no such worker
    /// (like [`slice::get`]). Through it: [`Spawner::spawn_with`] for futures
    /// that are not `Send`, weights, queues added at run time, and a
    /// shutdown of this worker alone. Clone it to keep it past the pool:
    /// once the worker has shut down, its spawns resolve to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    pub fn spawner(&self, worker: usize) -> Option<&Spawner<K>> {
        self.workers.get(worker).map(|worker| &worker.spawner)
    }

    /// The worker that `shard` maps to: its [`group_id`] modulo the number
    /// of workers. The same key always maps to the same worker of a pool
    /// (the hash is a fixed-key SipHash, not randomized per process), so
    /// everything about one key can live on that worker, unshared. The
    /// mapping may change with the number of workers, or in another build
    /// (of this crate, or of the standard library whose hasher it uses): do
    /// not persist it.
    pub fn worker_for<H: Hash + ?Sized>(&self, shard: &H) -> usize {
        // The remainder is below `workers`, which is a `usize`.
        (group_id(shard) % self.workers.len() as u64) as usize
    }

    /// The spawner of [the worker for `shard`](Self::worker_for). Use it to
    /// [`spawn_with`](Spawner::spawn_with) a future that uses the worker's
    /// local state for that key.
    pub fn spawner_for<H: Hash + ?Sized>(&self, shard: &H) -> &Spawner<K> {
        &self.workers[self.worker_for(shard)].spawner
    }

    /// Spawns `future` into the queue named `key` of worker `worker`; see
    /// [`Spawner::spawn`]. Fails with [`PoolError::NoSuchWorker`] or
    /// [`PoolError::UnknownQueue`]. If the worker has shut down (or
    /// panicked), the returned handle resolves to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    #[track_caller]
    pub fn spawn_on<F>(
        &self,
        worker: usize,
        key: K,
        future: F,
    ) -> Result<JoinHandle<F::Output>, PoolError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let spawner = self.spawner(worker).ok_or(PoolError::NoSuchWorker {
            index: worker,
            workers: self.workers(),
        })?;
        Ok(spawner.spawn(key, future)?)
    }

    /// Spawns `future` into the queue named `key` of [the worker for
    /// `shard`](Self::worker_for): shard by key.
    #[track_caller]
    pub fn spawn_for<H, F>(
        &self,
        shard: &H,
        key: K,
        future: F,
    ) -> Result<JoinHandle<F::Output>, PoolError>
    where
        H: Hash + ?Sized,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(self.spawner_for(shard).spawn(key, future)?)
    }

    /// Whether worker `worker`'s thread has ended (`None` if there is no
    /// such worker). Before [`shutdown`](Self::shutdown), a worker ends only
    /// if it panicked or was shut down through its spawner: a cheap health
    /// check, for instance to stop routing work to it. `shutdown` tells
    /// which panicked, and why.
    pub fn is_finished(&self, worker: usize) -> Option<bool> {
        let worker = self.workers.get(worker)?;
        Some(
            worker
                .thread
                .as_ref()
                .is_none_or(|thread| thread.is_finished()),
        )
    }

    /// Shuts every worker's executor down with `mode` (see [`Shutdown`]), and
    /// waits for every worker thread to end. Spawns are refused as soon as
    /// the request is sent; the workers drain or cancel in parallel. A drain
    /// without a deadline waits for every task to end: give one if some
    /// task may never end on its own (a background loop, an idle
    /// connection). While draining, a worker's tasks may still spawn on
    /// their own executor (through a [`QueueHandle`](crate::QueueHandle)),
    /// but not on other workers: every spawner is closed, so such a spawn
    /// resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    ///
    /// Returns the first (by worker index) panic of a worker thread, whether
    /// it happened now or earlier, as [`PoolError::WorkerPanicked`]; every
    /// thread is joined either way.
    ///
    /// Blocks the calling thread, so call it from outside the pool. Called
    /// from one of the pool's own tasks, it cannot join that task's worker
    /// (a thread cannot wait for itself): that worker is shut down, and its
    /// thread ends, unjoined, after the task returns; meanwhile, as the
    /// call waits for the other workers, it runs nothing else.
    pub fn shutdown(mut self, mode: Shutdown) -> Result<(), PoolError> {
        self.stop(mode)
    }
}

impl<K: QueueKey> Pool<K> {
    fn stop(&mut self, mode: Shutdown) -> Result<(), PoolError> {
        // Every worker first, so that they drain in parallel.
        for worker in &self.workers {
            worker.spawner.shutdown(mode);
        }
        let mut first = None;
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                if let Err(error) = join(worker.index, thread) {
                    first.get_or_insert(error);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl<K: QueueKey> Drop for Pool<K> {
    /// Shuts every worker down with [`Shutdown::Cancel`] and joins its
    /// thread, so no thread outlives the pool. Worker panics are ignored
    /// here (a drop cannot return them, and panicking in a drop may abort
    /// the process): call [`shutdown`](Pool::shutdown) to learn of them.
    fn drop(&mut self) {
        if self.workers.iter().any(|worker| worker.thread.is_some()) {
            let _ = self.stop(Shutdown::Cancel);
        }
    }
}

impl<K: QueueKey> std::fmt::Debug for Pool<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let finished: Vec<usize> = self
            .workers
            .iter()
            .filter(|worker| worker.thread.as_ref().is_none_or(|t| t.is_finished()))
            .map(|worker| worker.index)
            .collect();
        f.debug_struct("Pool")
            .field("workers", &self.workers.len())
            .field("finished", &finished)
            .finish()
    }
}

/// Waits for worker `index`'s thread to end, and turns its panic into
/// [`PoolError::WorkerPanicked`]. A thread cannot wait for itself: called on
/// the worker's own thread (the pool was shut down or dropped by one of its
/// tasks), it returns at once; that worker ends once the task returns.
fn join(index: usize, thread: thread::JoinHandle<()>) -> Result<(), PoolError> {
    if thread.thread().id() == thread::current().id() {
        return Ok(());
    }
    thread.join().map_err(|payload| PoolError::WorkerPanicked {
        worker: index,
        message: panic_message(payload.as_ref()),
    })
}
