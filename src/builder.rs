//! Configuration: [`ExecutorBuilder`].

mod task_hooks;

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::base::clock::Clock;
use crate::base::config::{Config, MAX_QUEUES};
use crate::base::directory::Directory;
use crate::base::error::BuildError;
use crate::base::key::QueueKey;
use crate::executor::Executor;
use crate::observe::Hooks;
use crate::observe::slow::{Kind, ReportFn, SlowPoll, reporter};
use crate::observe::watchdog::{StallFn, Watchdog};
use crate::runtime::sched::QueueScheduler;
use crate::runtime::scheduler::Scheduler;
use crate::schedulers::{RunnableFifo, custom};

/// The watchdog's settings: its threshold, and what makes its report
/// callback once the queue keys are known.
type WatchdogSetup<K> = (Duration, Box<dyn FnOnce(Arc<Directory<K>>) -> StallFn>);

/// Builds an [`Executor`]: its queues, their weights, and the scheduling tunables.
///
/// ```
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// enum Queue { Requests, Compaction }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue(Queue::Requests, 8)      // 8/9 of the CPU when both are busy
///     .with_queue(Queue::Compaction, 1)    // 1/9
///     .with_sched_latency(Duration::from_millis(4))
///     .build()?;
/// # Ok::<(), clockworker::BuildError>(())
/// ```
///
/// # Defaults
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`sched_latency`](Self::with_sched_latency) | 2 ms | period in which every runnable queue gets a slice |
/// | [`min_slice`](Self::with_min_slice) | 250 µs | floor of a slice, however many queues are runnable |
/// | [`driver_yield`](Self::with_driver_yield) | 100 µs | longest the host (its IO, its timers) waits for the thread |
/// | [`max_polls_per_yield`](Self::with_max_polls_per_yield) | 61 | most polls before the host gets control back (Tokio's own interval) |
/// | [`panic_on_task_panic`](Self::with_panic_on_task_panic) | `true` | a task panic propagates out of `run` |
/// | [`statistics`](Self::with_statistics) | `true` | per-poll counts, CPU time and histograms per queue |
/// | [`slow-poll threshold`](Self::on_slow_poll) | 10 ms | polls at least this long count as slow |
///
/// The slice defaults are those of a latency-oriented CPU scheduler scaled to
/// async polls, which typically last microseconds: with two busy queues each
/// gets 1 ms turns, short enough that a waiting queue is never far from its
/// turn, long enough that switching queues costs nothing measurable.
///
/// `driver_yield` is chosen for servers, whose requests reach their tasks
/// through the host's reactor; see [`with_driver_yield`](Self::with_driver_yield).
pub struct ExecutorBuilder<K> {
    queues: Vec<(K, u32, QueueScheduler)>,
    config: Config,
    clock: Option<Clock>,
    on_slow_poll: Option<SlowPollFn<K>>,
    task_hooks: task_hooks::UserTaskHooks<K>,
    watchdog: Option<WatchdogSetup<K>>,
    #[cfg(feature = "metrics")]
    metrics_interval: Option<Duration>,
}

/// The user's slow-poll callback.
type SlowPollFn<K> = Box<dyn Fn(&SlowPoll<'_, K>)>;

impl<K: std::fmt::Debug> std::fmt::Debug for ExecutorBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queues: Vec<_> = self
            .queues
            .iter()
            .map(|(key, weight, _)| (key, weight))
            .collect();
        f.debug_struct("ExecutorBuilder")
            .field("queues", &queues)
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("on_slow_poll", &self.on_slow_poll.is_some())
            .field(
                "task_hooks (spawn, before poll, after poll, terminate)",
                &self.task_hooks.set(),
            )
            .field(
                "watchdog",
                &self.watchdog.as_ref().map(|(threshold, _)| threshold),
            )
            .finish()
    }
}

impl<K: QueueKey> Default for ExecutorBuilder<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: QueueKey> ExecutorBuilder<K> {
    /// A builder with no queues and the default settings.
    pub fn new() -> Self {
        ExecutorBuilder {
            queues: Vec::new(),
            config: Config::default(),
            clock: None,
            on_slow_poll: None,
            task_hooks: Default::default(),
            watchdog: None,
            #[cfg(feature = "metrics")]
            metrics_interval: None,
        }
    }

    /// Adds a queue. When several queues have runnable tasks, each gets CPU in
    /// proportion to its `weight`. Tasks within the queue run in the order they
    /// became runnable.
    pub fn with_queue(self, key: K, weight: u32) -> Self {
        self.with_queue_scheduler(key, weight, RunnableFifo::new())
    }

    /// Adds a queue whose tasks are ordered by `scheduler`: one of the
    /// built-in ones ([`LAS`](crate::LAS), [`ArrivalFifo`](crate::ArrivalFifo),
    /// [`Edf`](crate::Edf), [`GroupFair`](crate::GroupFair),
    /// [`RunnableFifo`]) or your own [`Scheduler`].
    ///
    /// ```
    /// use clockworker::{ExecutorBuilder, LAS};
    ///
    /// let _executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler(0, 1, LAS::new())
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn with_queue_scheduler(mut self, key: K, weight: u32, scheduler: impl Scheduler) -> Self {
        let scheduler = custom(scheduler).map(|scheduler| scheduler as Box<dyn Scheduler>);
        self.queues.push((key, weight, scheduler));
        self
    }

    /// The period in which every runnable queue gets a slice: each slice is
    /// `sched_latency / runnable queues`, but at least `min_slice`.
    pub fn with_sched_latency(mut self, sched_latency: Duration) -> Self {
        self.config.sched_latency = sched_latency;
        self
    }

    /// The shortest slice a queue gets, however many queues are runnable.
    pub fn with_min_slice(mut self, min_slice: Duration) -> Self {
        self.config.min_slice = min_slice;
        self
    }

    /// The longest the host runtime waits for the thread while the executor
    /// holds it: a turn ends once it has lasted this long, and
    /// [`yield_maybe`](crate::yield_maybe) yields past it, so that a busy
    /// executor still lets the host poll its IO and timers. Zero means after
    /// every poll.
    ///
    /// The host's reactor is how a socket's readiness reaches a task: a
    /// request that becomes ready while the executor is busy waits for the
    /// next host turn, up to `driver_yield` plus whatever poll (or stretch of
    /// a `yield_maybe` loop) is in progress. Each host turn is a round trip
    /// through the host, about 0.4 µs on Tokio (one non-blocking `epoll_wait`
    /// with the `tokio` feature), paid only while the executor stays busy.
    ///
    /// Measured with `examples/http_server` (a hyper server, 50 µs of CPU per
    /// request, four background loops of 200 µs chunks with `yield_maybe`;
    /// closed loop, 4 connections; Tokio alone: p50 0.231 ms):
    ///
    /// | `driver_yield` | p50 | requests/s | host turns/s |
    /// |---|---|---|---|
    /// | 100 µs (default) | 0.235 ms | 16,152 | ~8,400 (0.3 % of the thread) |
    /// | 250 µs | 0.439 ms | 9,313 | ~2,400 |
    /// | 500 µs | 0.638 ms | 6,217 | ~1,550 |
    ///
    /// Raise it for batch work that no request waits on; below the length of
    /// the tasks' polls it changes nothing but the host's overhead. At zero,
    /// every `yield_maybe` yields and every poll is followed by a host
    /// round trip. (With
    /// the benchmark from clockworker 0.2's README, whose foreground sleeps
    /// on Tokio timers, 100 µs lets those timers fire closer to their
    /// deadline: total latency improves by about 5 % and the delay to a new
    /// task's first poll grows by about 10 %, BENCHMARKS.md.)
    pub fn with_driver_yield(mut self, driver_yield: Duration) -> Self {
        self.config.driver_yield = driver_yield;
        self
    }

    /// Whether a host yield asks Tokio to poll its IO driver before it
    /// polls the executor again (default `true`; only with the `tokio`
    /// feature, inside a Tokio runtime). Tokio's own `yield_now` does the
    /// same: the wake is deferred until Tokio's scheduler next parks.
    ///
    /// Turn it off for an executor run by a foreign `block_on`
    /// (`futures::executor::block_on`, pollster) on a thread of a Tokio
    /// runtime: that `block_on` keeps Tokio from parking, so a deferred wake
    /// never comes and the executor would hang at its first host yield
    /// (tokio-rs/tokio#6996). Off, a host yield wakes the executor at once,
    /// and Tokio polls its driver only every 61 task polls when the
    /// executor runs as a spawned task (when it runs as `block_on`'s future,
    /// at every yield either way).
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0, 1)
    ///     .with_deferred_host_yield(false)
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let busy = queue.spawn(async {
    ///     let start = std::time::Instant::now();
    ///     while start.elapsed() < std::time::Duration::from_millis(2) {
    ///         clockworker::yield_maybe().await; // hands the thread back every 100 µs
    ///     }
    /// });
    /// runtime.block_on(async {
    ///     // A foreign block_on inside a Tokio runtime (best avoided).
    ///     futures::executor::block_on(executor.run_until(busy)).unwrap();
    /// });
    /// ```
    pub fn with_deferred_host_yield(mut self, deferred: bool) -> Self {
        self.config.deferred_host_yield = deferred;
        self
    }

    /// The most polls the executor makes before it hands control back to the host.
    pub fn with_max_polls_per_yield(mut self, max_polls: u32) -> Self {
        self.config.max_polls_per_yield = max_polls;
        self
    }

    /// Whether a panic in a task brings the executor down (`true`, the default,
    /// as on Tokio's current-thread runtime): the panic propagates out of
    /// [`run`](Executor::run) / [`run_until`](Executor::run_until). With
    /// `false`, the panic is caught, the task's handle reports
    /// [`JoinError::Panic`](crate::JoinError::Panic), and the other tasks keep
    /// running.
    pub fn with_panic_on_task_panic(mut self, panic_on_task_panic: bool) -> Self {
        self.config.panic_on_task_panic = panic_on_task_panic;
        self
    }

    /// Whether the executor keeps per-poll statistics (on by default): poll
    /// counts, slow-poll counts, CPU time, and the queue-delay and
    /// poll-duration histograms of [`QueueStats`](crate::QueueStats). Off,
    /// those stay zero and each poll saves two histogram records (about
    /// 6 ns a poll; see BENCHMARKS.md); counts of spawns, endings, wakes,
    /// turns and slices are kept either way, and slow polls are still
    /// reported to [`on_slow_poll`](Self::on_slow_poll).
    pub fn with_statistics(mut self, statistics: bool) -> Self {
        self.config.statistics = statistics;
        self
    }

    /// Calls `callback` after every poll that took `threshold` or longer,
    /// with the queue, the task, its name and where it was spawned: the task
    /// that blocked the thread. The callback runs on the executor's thread,
    /// between polls. Also sets the threshold of
    /// [`QueueStats::slow_polls`](crate::QueueStats::slow_polls) (10 ms by
    /// default). With the `tracing` feature, slow polls are also logged as
    /// warnings.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .on_slow_poll(Duration::from_millis(5), |poll| {
    ///         eprintln!("slow poll: {poll}");
    ///     })
    ///     .build()?;
    /// # Ok::<(), clockworker::BuildError>(())
    /// ```
    pub fn on_slow_poll(
        mut self,
        threshold: Duration,
        callback: impl Fn(&SlowPoll<'_, K>) + 'static,
    ) -> Self {
        self.config.slow_poll = threshold;
        self.on_slow_poll = Some(Box::new(callback));
        self
    }

    /// Starts a watchdog thread that notices a poll running for `threshold`
    /// or longer *while it still runs* (an infinite loop, a blocking call in
    /// async code), and calls `callback` on that thread with the queue, the
    /// task, its name and where it was spawned; once per stalled poll, with
    /// how long it had run when noticed (within about a quarter threshold,
    /// and 50 ms, of the threshold). With the `tracing` feature, stalls are
    /// also logged as warnings. The thread stops when the executor is
    /// dropped. Without a watchdog, nothing of this runs or costs anything.
    /// A panic in `callback` is caught on the watchdog's thread (the panic
    /// hook prints it), and the watchdog goes on watching.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .with_watchdog(Duration::from_millis(100), |stall| {
    ///         eprintln!("executor thread blocked: {stall}");
    ///     })
    ///     .build()?;
    /// # Ok::<(), clockworker::BuildError>(())
    /// ```
    pub fn with_watchdog(
        mut self,
        threshold: Duration,
        callback: impl Fn(&SlowPoll<'_, K>) + Send + 'static,
    ) -> Self
    where
        K: Send + Sync,
    {
        let make = move |keys: Arc<Directory<K>>| -> StallFn {
            Box::new(reporter(keys, Kind::Stall, Some(callback)))
        };
        self.watchdog = Some((threshold, Box::new(make)));
        self
    }

    /// Publishes the executor's statistics through the [`metrics`] facade
    /// every `interval` (checked at the end of each turn), labelled by queue;
    /// see [`Executor::publish_metrics`] for what is published. Nothing is
    /// recorded per poll. Feature `metrics`.
    ///
    /// ```
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // With a recorder installed (e.g. metrics-exporter-prometheus), the
    /// // queue's figures appear as `clockworker_*{queue=""requests""}`.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 1)
    ///     .with_metrics(Duration::from_secs(1))
    ///     .build()?;
    /// # Ok::<(), clockworker::BuildError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn with_metrics(mut self, interval: Duration) -> Self {
        self.metrics_interval = Some(interval);
        self
    }

    /// The clock the executor measures polls with. [`Clock::manual`] makes
    /// scheduling deterministic in tests.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the configuration and builds the executor.
    pub fn build(self) -> Result<Rc<Executor<K>>, BuildError> {
        if self.queues.is_empty() {
            return Err(BuildError::NoQueues);
        }
        if self.queues.len() > MAX_QUEUES {
            return Err(BuildError::TooManyQueues);
        }
        let mut seen = HashSet::with_capacity(self.queues.len());
        for (key, weight, _) in &self.queues {
            if *weight == 0 {
                return Err(BuildError::ZeroWeight {
                    key: format!("{key:?}"),
                });
            }
            if !seen.insert(key) {
                return Err(BuildError::DuplicateKey {
                    key: format!("{key:?}"),
                });
            }
        }
        let watchdog_threshold = self.watchdog.as_ref().map(|(threshold, _)| *threshold);
        self.config.check(watchdog_threshold)?;
        let clock = self.clock.unwrap_or_default();
        let keys: Vec<K> = self.queues.iter().map(|(key, _, _)| key.clone()).collect();
        let directory = Arc::new(Directory::new(keys));
        let watchdog = match self.watchdog {
            Some((threshold, make)) => {
                let report = make(Arc::clone(&directory));
                let watchdog = Watchdog::start(clock.clone(), threshold, report)
                    .map_err(|error| BuildError::Watchdog(error.to_string()))?;
                Some(watchdog)
            }
            None => None,
        };
        let hooks = Hooks {
            #[cfg(any(feature = "metrics", feature = "console"))]
            queue_names: directory
                .keys()
                .iter()
                .map(|key| format!("{key:?}"))
                .collect(),
            #[cfg(feature = "metrics")]
            metrics_interval: self.metrics_interval,
            on_slow_poll: slow_poll_hook(Arc::clone(&directory), self.on_slow_poll),
            task: self.task_hooks.resolve(&directory),
            watchdog,
        };
        let queues = self
            .queues
            .into_iter()
            .map(|(_, weight, scheduler)| (weight, scheduler))
            .collect();
        Ok(Rc::new(Executor::new(
            directory,
            queues,
            self.config,
            clock,
            hooks,
        )))
    }
}

/// The core's slow-poll hook: the user's callback, and the `tracing` log
/// when that feature is on. `None` when there is neither.
fn slow_poll_hook<K: QueueKey>(
    keys: Arc<Directory<K>>,
    callback: Option<SlowPollFn<K>>,
) -> Option<ReportFn> {
    if callback.is_none() && !cfg!(feature = "tracing") {
        return None;
    }
    Some(Box::new(reporter(keys, Kind::Slow, callback)))
}
