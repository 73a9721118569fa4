//! The "dedicated executor" pattern of InfluxData's article on CPU-bound
//! tasks in Tokio, done with Clockworker: a Tokio multi-thread application sends CPU-heavy jobs *and* health checks to one
//! dedicated thread, and the health checks stay fast anyway.
//!
//! ```sh
//! cargo run --release --example dedicated_executor
//! ```
//!
//! # The story
//!
//! InfluxDB IOx runs its CPU-heavy query work on a separate Tokio runtime, on
//! threads of its own, so that it cannot delay the `/health` checks that
//! Kubernetes uses to decide whether to kill the process (InfluxData's
//! article "Using Rustlang's Async Tokio Runtime for CPU-Bound Tasks"). That
//! works, but whatever lands on the dedicated runtime is served first come,
//! first served: anything latency-sensitive that has to run *there* (a
//! health check of the query engine itself, a cancellation, a small
//! metadata lookup) waits behind every CPU job that is ahead of it.
//!
//! Here the dedicated thread runs a Clockworker executor with two queues:
//!
//! - `Health`, weight 16: short, latency-sensitive tasks;
//! - `Cpu`, weight 1: the CPU-heavy jobs (hashing loops).
//!
//! Whenever a health check is waiting, the executor gives it the thread at
//! the next poll boundary, and the CPU jobs get everything else.
//!
//! # What it measures
//!
//! Three dedicated threads in turn, the same workload on each:
//!
//! 1. `Tokio current_thread`: the article's pattern, a plain Tokio runtime on
//!    the dedicated thread, tasks sent with `Handle::spawn`.
//! 2. `Clockworker, 1 queue`: a Clockworker executor with a single queue:
//!    health checks queue up behind the CPU jobs.
//! 3. `Clockworker, Health 16 / Cpu 1`: the two weighted queues.
//!
//! Eight Tokio tasks of the application keep eight CPU jobs in flight on the
//! dedicated thread (each job: 100 chunks of hashing, 256 KiB each, about
//! 0.1 ms of CPU per chunk on a 2-core VM, with `yield_maybe().await` between
//! chunks), so the thread is saturated. Four other Tokio tasks each send 50 health checks,
//! one every 20 ms, and measure each one's latency: from just before the
//! spawn to the moment the result is back in the application (the spawn,
//! the wait for the thread, the check, the trip back). The table gives
//! p50 / p99 / max over the 200 checks, and the CPU work done meanwhile
//! (hashing chunks per second), every figure measured in this run.
//! Then the executor is shut down gracefully (`Shutdown::Drain` with a
//! deadline), and its statistics are printed.
//!
//! # Reading the table
//!
//! - On the Tokio runtime a health check waits behind the CPU jobs: a task
//!   spawned from another thread lands in the runtime's remote (inject)
//!   queue, which a current-thread runtime takes a task from only once every
//!   31 polls while local tasks are runnable, and the jobs, yielding after
//!   every chunk, are always runnable.
//! - With one Clockworker queue, a check waits in FIFO order behind the jobs
//!   queued before it, and each of them keeps the thread for a whole time
//!   slice (`yield_maybe` does not yield while the queue's slice lasts).
//! - With the weighted queues, a check that arrives becomes runnable in a
//!   queue that is owed the thread; the running job's next `yield_maybe`
//!   notices (it takes in spawns from other threads itself) and yields, so
//!   the check waits for about one chunk at most.
//!
//! The CPU jobs lose little to the weights: the checks are tiny, so the
//! jobs only give up the CPU the checks actually use (compare chunks/s).
//! On a busy machine the OS may take the dedicated thread's core away for
//! milliseconds at a time, which shows in the max column.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{
    ExecutorBuilder, ExecutorStats, JoinHandle, QueueStats, Shutdown, Spawner, yield_maybe,
};

/// The two classes of work on the dedicated thread. Any `Clone + Eq + Hash +
/// Debug` type can name a queue; an enum makes a typo a compile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Work {
    /// Health checks: tiny, and someone is waiting for each one.
    Health,
    /// CPU-heavy jobs: large, and only their throughput matters.
    Cpu,
}

/// CPU jobs kept in flight on the dedicated thread.
const CPU_JOBS_IN_FLIGHT: usize = 8;
/// Chunks of hashing per CPU job.
const CHUNKS_PER_JOB: usize = 100;
/// Bytes hashed per chunk (about 0.1 ms of CPU with SipHash).
const CHUNK_BYTES: usize = 256 * 1024;
/// Tasks of the application that send health checks.
const CHECKERS: usize = 4;
/// Health checks sent by each checker: 4 × 50 = 200 in all.
const CHECKS_PER_CHECKER: usize = 50;
/// Time between two checks of one checker.
const CHECK_PERIOD: Duration = Duration::from_millis(20);
/// How long in-flight CPU jobs may take to finish at shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_millis(500);

// ============================================================================
// The dedicated thread
// ============================================================================

/// What the dedicated thread hands back when it exits: the executor's
/// statistics (Clockworker only).
type Report = Option<(ExecutorStats, Vec<(Work, QueueStats)>)>;

/// Starts a dedicated thread running a Clockworker executor with `queues`,
/// and returns its `Spawner` and the thread's handle.
///
/// Why a `Spawner`: the `Executor` itself is `!Send` (its tasks need not be
/// `Send`, and scheduling runs without locks or atomics), so it must be built
/// and run on the dedicated thread. `executor.spawner()` is the executor's
/// `Send + Sync + Clone` handle for every other thread: it spawns tasks into
/// a queue by key, and shuts the executor down. The thread sends one back
/// over a channel once the executor exists.
fn start_clockworker(
    queues: &'static [(Work, u32)],
) -> (Spawner<Work>, thread::JoinHandle<Report>) {
    let (spawner_tx, spawner_rx) = std::sync::mpsc::channel();
    let thread = thread::Builder::new()
        .name("cpu-executor".into())
        .spawn(move || {
            // The host runtime: Clockworker owns no reactor and no timers,
            // so it runs inside an ordinary runtime, here a Tokio
            // current-thread runtime with a `LocalSet` (the executor's
            // `run()` future is `!Send`). Tasks on the executor can use
            // Tokio's timers and IO.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let local = tokio::task::LocalSet::new();
            let mut builder = ExecutorBuilder::new();
            for &(work, weight) in queues {
                builder = builder.with_queue(work, weight);
            }
            let executor = builder.build().expect("valid configuration");
            spawner_tx
                .send(executor.spawner())
                .expect("the application waits for the spawner");
            // Runs the tasks until a `Spawner` shuts the executor down, then
            // returns.
            local.block_on(&rt, executor.run());
            Some((executor.stats(), executor.all_queue_stats()))
        })
        .expect("spawn the dedicated thread");
    let spawner = spawner_rx.recv().expect("the dedicated thread started");
    (spawner, thread)
}

/// The article's pattern, as the first baseline: a plain Tokio current-thread
/// runtime on a dedicated thread, tasks sent with `Handle::spawn`. One run
/// queue, first come first served.
fn start_tokio() -> (
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<()>,
    thread::JoinHandle<Report>,
) {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = thread::Builder::new()
        .name("cpu-runtime".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            handle_tx.send(rt.handle().clone()).expect("application");
            rt.block_on(async {
                let _ = stop_rx.await;
            });
            // Dropping the runtime drops the tasks still on it.
            None
        })
        .expect("spawn the dedicated thread");
    let handle = handle_rx.recv().expect("the dedicated thread started");
    (handle, stop_tx, thread)
}

/// The dedicated thread of one column, as the application sees it.
enum Dedicated {
    Tokio {
        handle: tokio::runtime::Handle,
        stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    },
    Clockworker {
        spawner: Spawner<Work>,
        /// Whether the executor has one queue, `Cpu`, for everything.
        single_queue: bool,
    },
}

/// A task sent to the dedicated thread: resolves to its output, or `None`
/// if it was cancelled (at shutdown).
enum Job<T> {
    Tokio(tokio::task::JoinHandle<T>),
    Clockworker(JoinHandle<T>),
}

impl<T> Job<T> {
    async fn output(self) -> Option<T> {
        match self {
            Job::Tokio(handle) => handle.await.ok(),
            Job::Clockworker(handle) => handle.await.ok(),
        }
    }
}

impl Dedicated {
    /// Sends `future` to the dedicated thread, as work of class `work`.
    fn spawn<F>(&self, work: Work, future: F) -> Job<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Dedicated::Tokio { handle, .. } => Job::Tokio(handle.spawn(future)),
            Dedicated::Clockworker {
                spawner,
                single_queue,
            } => {
                let key = if *single_queue { Work::Cpu } else { work };
                // `spawn` takes a `Send` future (it is built here and moved
                // to the dedicated thread). Its `JoinHandle` can be awaited
                // on any runtime: here, on the application's Tokio workers.
                // After a shutdown the handle resolves to `Cancelled`.
                Job::Clockworker(spawner.spawn(key, future).expect("the queue exists"))
            }
        }
    }

    /// Stops the dedicated thread. Clockworker: spawns are refused from
    /// now on, the jobs in flight may finish within `DRAIN_DEADLINE`, and
    /// those still running then are cancelled; `run()` returns once no task
    /// is left. Tokio: the runtime is dropped, which cancels what is left.
    fn shutdown(&self) {
        match self {
            Dedicated::Tokio { stop, .. } => {
                if let Some(stop) = stop.lock().expect("stop").take() {
                    let _ = stop.send(());
                }
            }
            Dedicated::Clockworker { spawner, .. } => {
                spawner.shutdown(Shutdown::Drain {
                    deadline: Some(DRAIN_DEADLINE),
                });
            }
        }
    }
}

// ============================================================================
// The work
// ============================================================================

/// A CPU-heavy job: hashes `data` `CHUNKS_PER_JOB` times, counting chunks.
///
/// Why `yield_maybe`: a task on a single-threaded executor keeps the thread
/// until it returns `Pending`. `yield_maybe().await` returns at once (no
/// yield, no cost beyond a few loads) unless the job's queue has used up its
/// time slice or a task of a queue that should run first has become
/// runnable, e.g. a health check that just arrived from another thread: then
/// it yields once, and the health check runs. So it can be called often,
/// between small chunks, and preemption is as fine-grained as those chunks.
/// (Outside Clockworker, as on the Tokio baseline, it yields every time,
/// like `tokio::task::yield_now`.)
async fn cpu_job(data: Arc<Vec<u8>>, seed: u64, chunks_done: Arc<AtomicU64>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut digest = seed;
    for _ in 0..CHUNKS_PER_JOB {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        digest.hash(&mut hasher);
        data.hash(&mut hasher);
        digest = hasher.finish();
        chunks_done.fetch_add(1, Ordering::Relaxed);
        yield_maybe().await;
    }
    digest
}

/// A health check: looks at the job counter and reports when it ran. Tiny,
/// like a real one; its latency is all waiting.
async fn health_check(chunks_done: Arc<AtomicU64>) -> (Instant, u64) {
    (Instant::now(), chunks_done.load(Ordering::Relaxed))
}

// ============================================================================
// One column
// ============================================================================

/// What one column measured.
struct Column {
    name: &'static str,
    /// Submit → result back in the application, per health check.
    latencies: Vec<Duration>,
    /// Submit → the check starts running on the dedicated thread.
    queue_delays: Vec<Duration>,
    /// Hashing chunks per second while the checks ran.
    chunks_per_sec: f64,
    /// CPU jobs outstanding when submitting stopped: finished, cancelled.
    drained: u64,
    cancelled: u64,
    shutdown_took: Duration,
    report: Report,
}

async fn run_column(
    name: &'static str,
    dedicated: Dedicated,
    thread: thread::JoinHandle<Report>,
) -> Column {
    let dedicated = Arc::new(dedicated);
    let data: Arc<Vec<u8>> = Arc::new((0..CHUNK_BYTES).map(|i| (i * 31 % 251) as u8).collect());
    let chunks_done = Arc::new(AtomicU64::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicU64::new(0));
    let cancelled = Arc::new(AtomicU64::new(0));

    // The CPU load: each submitter keeps one job in flight, from the
    // application's multi-thread runtime.
    let submitters: Vec<_> = (0..CPU_JOBS_IN_FLIGHT as u64)
        .map(|seed| {
            let (dedicated, data, chunks_done) =
                (dedicated.clone(), data.clone(), chunks_done.clone());
            let (stopping, drained, cancelled) =
                (stopping.clone(), drained.clone(), cancelled.clone());
            tokio::spawn(async move {
                while !stopping.load(Ordering::Relaxed) {
                    let job = dedicated
                        .spawn(Work::Cpu, cpu_job(data.clone(), seed, chunks_done.clone()));
                    let finished = job.output().await.is_some();
                    if stopping.load(Ordering::Relaxed) {
                        let counter = if finished { &drained } else { &cancelled };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Let the jobs saturate the thread before measuring.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let chunks_before = chunks_done.load(Ordering::Relaxed);
    let checkers: Vec<_> = (0..CHECKERS)
        .map(|checker| {
            let (dedicated, chunks_done) = (dedicated.clone(), chunks_done.clone());
            tokio::spawn(async move {
                // Checkers out of phase, so that checks do not arrive in bursts.
                let offset = CHECK_PERIOD * checker as u32 / CHECKERS as u32;
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, CHECK_PERIOD);
                let mut samples = Vec::with_capacity(CHECKS_PER_CHECKER);
                for _ in 0..CHECKS_PER_CHECKER {
                    ticks.tick().await;
                    let submitted = Instant::now();
                    let job = dedicated.spawn(Work::Health, health_check(chunks_done.clone()));
                    let (ran_at, _chunks) = job.output().await.expect("health check ran");
                    samples.push((submitted.elapsed(), ran_at - submitted));
                }
                samples
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut queue_delays = Vec::new();
    for checker in checkers {
        for (latency, queue_delay) in checker.await.expect("checker") {
            latencies.push(latency);
            queue_delays.push(queue_delay);
        }
    }
    let chunks = chunks_done.load(Ordering::Relaxed) - chunks_before;
    let chunks_per_sec = chunks as f64 / started.elapsed().as_secs_f64();

    // Shut down: stop submitting, then stop the dedicated thread and wait
    // for it (off the async workers: joining a thread blocks).
    stopping.store(true, Ordering::Relaxed);
    let shutdown_began = Instant::now();
    dedicated.shutdown();
    let report = tokio::task::spawn_blocking(move || thread.join().expect("dedicated thread"))
        .await
        .expect("join");
    let shutdown_took = shutdown_began.elapsed();
    for submitter in submitters {
        submitter.await.expect("submitter");
    }
    Column {
        name,
        latencies,
        queue_delays,
        chunks_per_sec,
        drained: drained.load(Ordering::Relaxed),
        cancelled: cancelled.load(Ordering::Relaxed),
        shutdown_took,
        report,
    }
}

// ============================================================================
// Main
// ============================================================================

/// The application: a Tokio multi-thread runtime, as most servers have.
#[tokio::main]
async fn main() {
    println!(
        "{CPU_JOBS_IN_FLIGHT} CPU jobs in flight ({CHUNKS_PER_JOB} chunks of {} KiB hashed each, \
         yield_maybe between chunks), {} health checks from {CHECKERS} tasks, one per {:?} each\n",
        CHUNK_BYTES / 1024,
        CHECKERS * CHECKS_PER_CHECKER,
        CHECK_PERIOD,
    );
    let mut columns = Vec::new();

    let (handle, stop, thread) = start_tokio();
    let dedicated = Dedicated::Tokio {
        handle,
        stop: std::sync::Mutex::new(Some(stop)),
    };
    columns.push(run_column("Tokio current_thread", dedicated, thread).await);

    // One queue: health checks wait behind the CPU jobs, like on Tokio.
    const ONE_QUEUE: &[(Work, u32)] = &[(Work::Cpu, 1)];
    let (spawner, thread) = start_clockworker(ONE_QUEUE);
    let dedicated = Dedicated::Clockworker {
        spawner,
        single_queue: true,
    };
    columns.push(run_column("Clockworker, 1 queue", dedicated, thread).await);

    // Why weights: a queue's weight is its share of the thread when both
    // queues have work. Health checks take almost no CPU, so 16:1 does not
    // starve the jobs: it means that whenever a check is waiting, it is
    // owed the thread, and the executor preempts the running job's slice
    // at its next `yield_maybe`.
    const WEIGHTED: &[(Work, u32)] = &[(Work::Health, 16), (Work::Cpu, 1)];
    let (spawner, thread) = start_clockworker(WEIGHTED);
    let dedicated = Dedicated::Clockworker {
        spawner,
        single_queue: false,
    };
    columns.push(run_column("Clockworker, Health 16 / Cpu 1", dedicated, thread).await);

    print_table(&columns);

    // The executor's own view of the weighted run: time busy, turns, polls,
    // and per queue its CPU time, slices, preemptions (slices of `Cpu` cut
    // short for a health check) and histograms. These queue delays are the
    // executor's own measurement; the table's queueing column is the
    // application's, from the moment it submitted the check.
    let weighted = columns.last().expect("three columns");
    if let Some((stats, queues)) = &weighted.report {
        println!("\nExecutor statistics, \"{}\" (whole run):", weighted.name);
        println!("{}", indent(&stats.to_string()));
        for (work, queue) in queues {
            println!("  queue {work:?}");
            println!("{}", indent(&indent(&queue.to_string())));
        }
    }
}

fn print_table(columns: &[Column]) {
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>13} {:>9}",
        "health-check latency", "p50", "p99", "max", "p99 queueing", "chunks/s"
    );
    for column in columns {
        let latency = Percentiles::of(&column.latencies);
        let queueing = Percentiles::of(&column.queue_delays);
        println!(
            "{:<32} {:>9} {:>9} {:>9} {:>13} {:>9.0}",
            column.name,
            ms(latency.p50),
            ms(latency.p99),
            ms(latency.max),
            ms(queueing.p99),
            column.chunks_per_sec,
        );
    }
    println!(
        "(latency: submit -> result back in the application; queueing: submit -> the check \
         starts; {} checks per column)",
        columns[0].latencies.len()
    );
    let weighted = Percentiles::of(&columns[columns.len() - 1].latencies);
    for column in &columns[..columns.len() - 1] {
        let other = Percentiles::of(&column.latencies);
        println!(
            "{} / weighted queues: p50 {:.0}x, p99 {:.0}x, max {:.1}x",
            column.name,
            ratio(other.p50, weighted.p50),
            ratio(other.p99, weighted.p99),
            ratio(other.max, weighted.max),
        );
    }
    println!(
        "\nshutdown (stop submitting, then stop the dedicated thread; \
         the CPU jobs outstanding then):"
    );
    for column in columns {
        println!(
            "  {:<32} took {:>9}: {} finished, {} cancelled",
            column.name,
            ms(column.shutdown_took),
            column.drained,
            column.cancelled,
        );
    }
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Percentiles {
    fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at =
            |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.3}ms", duration.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
