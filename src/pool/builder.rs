//! [`PoolBuilder`]: the pool's settings, and the start of its worker threads.
//!
//! # Start-up protocol
//!
//! `build` starts every thread first (so the workers set up in parallel),
//! then waits for each one's report, in order. A worker reports exactly
//! once: its [`Spawner`] once its runtime and executor exist, or the error
//! that stopped it (and then its thread ends). A worker that panics before
//! it reports (one of the builder's closures panicked) drops its end of the channel,
//! which ends the wait too, and joining its thread tells why. So `build`
//! never waits for a worker that will not report, and never panics: if any
//! worker failed, the healthy ones are cancelled and joined, and the first
//! failure (in worker order) is returned.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use core_affinity::CoreId;
use tokio::task::LocalSet;

use super::{Pool, PoolError, Worker};
use crate::base::key::QueueKey;
use crate::base::shutdown::Shutdown;
use crate::builder::ExecutorBuilder;
use crate::executor::Executor;
use crate::spawner::Spawner;

/// The closure that configures each worker's executor.
type Make<K> = dyn Fn(usize) -> ExecutorBuilder<K> + Send + Sync;

/// The closure that sees each worker's executor before it runs.
type OnStart<K> = dyn Fn(usize, &Executor<K>) + Send + Sync;

/// What every worker thread is started with.
struct Setup<K: QueueKey> {
    make: Box<Make<K>>,
    on_start: Option<Box<OnStart<K>>>,
}

/// What a worker reports to `build`: its spawner, or why it has none.
type Report<K> = Result<Spawner<K>, PoolError>;

/// Builds a [`Pool`]; from [`Pool::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`workers`](Self::workers) | [`std::thread::available_parallelism`] (1 if unknown) |
/// | [`pin_to_cores`](Self::pin_to_cores) | `false` |
/// | [`thread_name`](Self::thread_name) | `"clockworker"` (threads `clockworker-0`, `clockworker-1`, …) |
pub struct PoolBuilder<K: QueueKey> {
    make: Box<Make<K>>,
    on_start: Option<Box<OnStart<K>>>,
    workers: Option<usize>,
    pin_to_cores: bool,
    thread_name: String,
}

impl<K: QueueKey + Send + Sync> PoolBuilder<K> {
    pub(crate) fn new(make: impl Fn(usize) -> ExecutorBuilder<K> + Send + Sync + 'static) -> Self {
        PoolBuilder {
            make: Box::new(make),
            on_start: None,
            workers: None,
            pin_to_cores: false,
            thread_name: "clockworker".to_owned(),
        }
    }

    /// How many workers (threads, each with its own runtime and executor)
    /// to start. By default one per core the process may use: thread per
    /// core. 0 is refused by [`build`](Self::build) with
    /// [`PoolError::NoWorkers`].
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Whether to pin each worker's thread to a core (off by default), so
    /// that the operating system does not move it: its caches stay warm,
    /// and two workers never share a core while another sits idle.
    ///
    /// The list of cores the process may run on is read once, by
    /// [`build`](Self::build); worker `i` is pinned to core `i % cores`.
    /// Pinning that fails is an error, not a silent fallback: you asked for
    /// it, and an unpinned pool behaves differently (it is
    /// [`PoolError::NoCores`] if the core list cannot be read, and
    /// [`PoolError::Pin`] if the system refuses a worker's pin). Build
    /// again without pinning to accept that.
    pub fn pin_to_cores(mut self, pin: bool) -> Self {
        self.pin_to_cores = pin;
        self
    }

    /// The name prefix of the worker threads: worker `i` is named
    /// `{prefix}-{i}`, which is what debuggers, `top -H` and panic messages
    /// show. (Linux keeps the first 15 bytes of a thread's name.)
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Calls `on_start` on each worker's thread, with the worker's index and
    /// its executor, after the executor is built and before it runs; `build`
    /// returns after every call.
    ///
    /// The executor never leaves its thread, and the pool only holds its
    /// [`Spawner`]. This is the place to take what the worker's own tasks
    /// need from the executor itself: [`QueueHandle`](crate::QueueHandle)s,
    /// kept in a thread-local, let them spawn tasks that are not `Send`, in
    /// a group, with a name or a deadline; and it is the place to spawn the
    /// worker's background tasks. (A queue handle does not keep the executor
    /// alive.) It runs inside the worker's Tokio runtime, so it may create
    /// timers and sockets. A panic here is reported by `build` as
    /// [`PoolError::WorkerPanicked`].
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, GroupFair, Pool, QueueHandle, Shutdown};
    /// use std::cell::OnceCell;
    ///
    /// thread_local! {
    ///     static REQUESTS: OnceCell<QueueHandle> = const { OnceCell::new() };
    /// }
    ///
    /// let pool = Pool::builder(|_| {
    ///     ExecutorBuilder::new().with_queue_scheduler("requests", 1, GroupFair::new())
    /// })
    /// .workers(2)
    /// .on_worker_start(|_worker, executor| {
    ///     let requests = executor.queue("requests").unwrap();
    ///     REQUESTS.with(|cell| cell.set(requests).ok());
    /// })
    /// .build()?;
    ///
    /// // A task of the pool spawns a child in a group, on its own worker.
    /// let parent = pool.spawn_on(1, "requests", async {
    ///     let child = REQUESTS.with(|cell| cell.get().unwrap().group("tenant-7").spawn(async { 7 }));
    ///     child.await.unwrap()
    /// })?;
    /// assert_eq!(futures::executor::block_on(parent).unwrap(), 7);
    /// pool.shutdown(Shutdown::Drain { deadline: None })?;
    /// # Ok::<(), clockworker::PoolError>(())
    /// ```
    pub fn on_worker_start(
        mut self,
        on_start: impl Fn(usize, &Executor<K>) + Send + Sync + 'static,
    ) -> Self {
        self.on_start = Some(Box::new(on_start));
        self
    }

    /// Starts the workers, and returns once every one of them is running.
    ///
    /// Each worker thread builds a Tokio current-thread runtime (IO and
    /// timers enabled) and a [`LocalSet`] (so tasks may use
    /// `tokio::task::spawn_local`), then its executor, from the builder's
    /// closure called *on that thread* with the worker's index (an
    /// [`Executor`](crate::Executor) is not `Send`: it is born where it
    /// runs). Then it runs the executor until the executor is shut down.
    ///
    /// If any worker cannot start (its configuration is refused, its
    /// runtime or thread cannot be created, it cannot be pinned, or one of
    /// the builder's closures panics), the workers already running are cancelled and
    /// joined, and the first failure is returned: no thread is left behind.
    pub fn build(self) -> Result<Pool<K>, PoolError> {
        let workers = match self.workers {
            Some(0) => return Err(PoolError::NoWorkers),
            Some(workers) => workers,
            None => thread::available_parallelism().map_or(1, |cores| cores.get()),
        };
        let cores = if self.pin_to_cores {
            match core_affinity::get_core_ids() {
                Some(cores) if !cores.is_empty() => Some(cores),
                _ => return Err(PoolError::NoCores),
            }
        } else {
            None
        };

        let setup = Arc::new(Setup {
            make: self.make,
            on_start: self.on_start,
        });
        let mut starting = Vec::with_capacity(workers);
        let mut not_started = None;
        for index in 0..workers {
            let core = cores.as_ref().map(|cores| cores[index % cores.len()]);
            let name = format!("{}-{index}", self.thread_name);
            match start(index, name, core, Arc::clone(&setup)) {
                Ok(started) => starting.push(started),
                Err(error) => {
                    not_started = Some(error);
                    break;
                }
            }
        }

        let mut running = Vec::with_capacity(starting.len());
        let mut failure = None;
        for (index, (thread, report)) in starting.into_iter().enumerate() {
            match report.recv() {
                Ok(Ok(spawner)) => running.push(Worker {
                    index,
                    spawner,
                    thread: Some(thread),
                }),
                // The thread has ended or is ending: joining it is quick.
                Ok(Err(error)) => {
                    let _ = thread.join();
                    failure.get_or_insert(error);
                }
                // It panicked before it could report.
                Err(mpsc::RecvError) => {
                    let error = super::join(index, thread).err().unwrap_or_else(|| {
                        PoolError::Thread(format!("worker {index} ended without starting"))
                    });
                    failure.get_or_insert(error);
                }
            }
        }

        let pool = Pool { workers: running };
        match failure.or(not_started) {
            None => Ok(pool),
            Some(error) => {
                // What the healthy workers say as they stop is beside the
                // point: the build failed.
                let _ = pool.shutdown(Shutdown::Cancel);
                Err(error)
            }
        }
    }
}

/// Starts worker `index`'s thread. Returns it with the channel on which it
/// will report.
fn start<K: QueueKey + Send + Sync>(
    index: usize,
    name: String,
    core: Option<CoreId>,
    setup: Arc<Setup<K>>,
) -> Result<(thread::JoinHandle<()>, mpsc::Receiver<Report<K>>), PoolError> {
    let (report, reported) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(name)
        .spawn(move || run_worker(index, &setup, core, report))
        .map_err(|error| PoolError::Thread(error.to_string()))?;
    Ok((thread, reported))
}

/// The body of worker `index`'s thread: sets up, reports, then runs the
/// executor until it is shut down. A task panic that the executor re-raises
/// unwinds out of here and ends the thread; the executor is dropped on the
/// way, which cancels its other tasks and closes its spawner, so nobody
/// waits on this worker forever. [`Pool::shutdown`] reports the panic.
fn run_worker<K: QueueKey + Send + Sync>(
    index: usize,
    setup: &Setup<K>,
    core: Option<CoreId>,
    report: mpsc::Sender<Report<K>>,
) {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            let _ = report.send(Err(PoolError::Pin {
                worker: index,
                core: core.id,
            }));
            return;
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = report.send(Err(PoolError::Runtime {
                worker: index,
                message: error.to_string(),
            }));
            return;
        }
    };
    // `make` and `on_start` run in the runtime's context: they may create
    // its timers and sockets.
    let context = runtime.enter();
    // Declared after the runtime, so dropped before it: the tasks' futures
    // (which may hold the runtime's timers and sockets) go first.
    let executor = match (setup.make)(index).build() {
        Ok(executor) => executor,
        Err(error) => {
            let _ = report.send(Err(PoolError::Build {
                worker: index,
                error,
            }));
            return;
        }
    };
    if let Some(on_start) = &setup.on_start {
        on_start(index, &executor);
    }
    drop(context);
    let local = LocalSet::new();
    if report.send(Ok(executor.spawner())).is_err() {
        return; // `build` gave up on the pool: nobody can reach this worker.
    }
    drop(report);
    local.block_on(&runtime, executor.run());
}

impl<K: QueueKey> std::fmt::Debug for PoolBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("workers", &self.workers)
            .field("pin_to_cores", &self.pin_to_cores)
            .field("on_worker_start", &self.on_start.is_some())
            .field("thread_name", &self.thread_name)
            .finish_non_exhaustive()
    }
}
