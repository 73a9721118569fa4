//! The latency benchmark from clockworker 0.2's README: foreground latency
//! with and without background load, Clockworker side by side with Tokio.
//!
//! ```sh
//! cargo run --release --example priority
//! cargo run --release --example priority -- --fg-count 500 --runs 1 --json
//! ```
//!
//! # Setup
//!
//! A generator thread, pinned to its own core, sends foreground tasks over a
//! channel (in column 7, spawns them through the executor's spawner) at
//! `--rps` per second with Poisson (exponential) gaps, busy-waiting the gaps
//! for precision. Each foreground task does 1–3 segments of
//! 100–500 µs of CPU (a busy spin) with a 100–500 µs sleep (the host's timer,
//! `tokio::time::sleep`) between segments. `--bg` background tasks loop on
//! the same kind of CPU work and sleep, enough to saturate the CPU. The
//! workload comes from a seeded RNG and is the same in every column.
//!
//! Measured per foreground task: queue delay (submit → first poll) and total
//! latency (submit → finish); and background iterations per second over the
//! window from the first arrival to the last foreground completion.
//!
//! # Columns
//!
//! Each column runs in a fresh runtime on the runtime thread, pinned to one core:
//!
//! 1. `Tokio fg only` (the baseline): a Tokio current-thread runtime; a
//!    receiver loop on a `LocalSet` spawns each foreground task with `spawn_local`.
//! 2. `CW fg+bg`: Clockworker on a Tokio current-thread runtime, driven by
//!    `rt.block_on(executor.run_until(..))`; queue `Fg` (weight 99) holds the
//!    receiver task and the foreground tasks it spawns, queue `Bg` (weight 1)
//!    the background tasks.
//! 3. `CW fg only`: the same without background tasks.
//! 4. `Tokio fg+bg`: everything on one Tokio current-thread runtime.
//! 5. `Two-RT/OS`: two Tokio current-thread runtimes on two threads, both pinned
//!    to the runtime core; the background one at nice 19.
//! 6. `CW fg+bg LAS`: like 2, with the `LAS` scheduler in the foreground queue.
//! 7. `CW fg+bg Spawner`: like 2, but with no receiver task: the generator
//!    spawns each foreground task straight into queue `Fg` from its own
//!    thread, through the executor's [`Spawner`](clockworker::Spawner)
//!    (`spawn_with`, which builds the `!Send` task on the runtime thread).
//!    Queue delay is measured the same way, from just before the spawn (the
//!    send, in the other columns) to the task's first poll.
//!
//! # Output
//!
//! The table of clockworker 0.2's README (each figure's % against the
//! baseline), the three goal ratios with PASS/MISS for columns 2 and 7 each,
//! a diagnostic (background CPU segments begun while a foreground arrival
//! waited: inversions the scheduler could have avoided),
//! an SVG of the latency CDFs under `target/priority/`, and with `--json` every
//! figure as JSON on stdout. Before the table, for each Clockworker column, the
//! executor's own statistics ([`ExecutorStats`](clockworker::ExecutorStats) and
//! each queue's [`QueueStats`](clockworker::QueueStats)) of the last run
//! (`--no-stats` leaves them out; `--json` has a summary of them for every run).
//!
//! The figures only mean something on an otherwise idle machine: the run
//! warns when other processes took part of the runtime core or held up the
//! generator. Tokio's timer has 1 ms granularity, so the 100–500 µs sleeps
//! last 1–2 ms, in every column alike.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc as std_mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, ExecutorStats, Histogram, LAS, QueueStats, Spawner};
use core_affinity::CoreId;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "shared/core_busy.rs"]
mod core_busy;
use core_busy::core_busy;
use serde_json::{Value, json};
use tokio::task::LocalSet;

// ============================================================================
// Configuration
// ============================================================================

const USAGE: &str = "\
The latency benchmark from clockworker 0.2's README: foreground latency with and
without background load, Clockworker side by side with Tokio.

USAGE: cargo run --release --example priority -- [OPTIONS]

OPTIONS:
  --fg-count N            foreground tasks per column and run [default: 10000]
  --rps N                 foreground arrivals per second [default: 1000]
  --bg N                  background tasks in the fg+bg columns [default: 8]
  --runs N                repeat all columns N times; report medians [default: 1]
  --json                  print all figures as JSON on stdout (the table goes to stderr)
  --seed N                workload seed [default: 2]
  --only LIST             run only these columns, by number (1-7), comma-separated
  --no-stats              leave out the Clockworker columns' executor and queue statistics
Clockworker tunables, for experiments (default: the executor's defaults):
  --driver-yield-us N     ExecutorBuilder::with_driver_yield
  --max-polls N           ExecutorBuilder::with_max_polls_per_yield
  --sched-latency-us N    ExecutorBuilder::with_sched_latency
  --min-slice-us N        ExecutorBuilder::with_min_slice
";

#[derive(Debug, Clone)]
struct Config {
    fg_count: usize,
    rps: f64,
    bg: usize,
    runs: usize,
    json: bool,
    /// Print the Clockworker columns' executor and queue statistics.
    stats: bool,
    seed: u64,
    columns: Vec<Column>,
    tunables: Tunables,
}

/// Clockworker settings to override; `None` keeps the executor's default.
#[derive(Debug, Clone, Copy, Default)]
struct Tunables {
    driver_yield: Option<Duration>,
    max_polls: Option<u32>,
    sched_latency: Option<Duration>,
    min_slice: Option<Duration>,
}

impl Tunables {
    fn apply<K: clockworker::QueueKey>(
        &self,
        mut builder: ExecutorBuilder<K>,
    ) -> ExecutorBuilder<K> {
        if let Some(d) = self.driver_yield {
            builder = builder.with_driver_yield(d);
        }
        if let Some(n) = self.max_polls {
            builder = builder.with_max_polls_per_yield(n);
        }
        if let Some(d) = self.sched_latency {
            builder = builder.with_sched_latency(d);
        }
        if let Some(d) = self.min_slice {
            builder = builder.with_min_slice(d);
        }
        builder
    }

    fn is_default(&self) -> bool {
        self.driver_yield.is_none()
            && self.max_polls.is_none()
            && self.sched_latency.is_none()
            && self.min_slice.is_none()
    }
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        fg_count: 10_000,
        rps: 1000.0,
        bg: 8,
        runs: 1,
        json: false,
        stats: true,
        seed: 2,
        columns: Column::ALL.to_vec(),
        tunables: Tunables::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let micros = |v: String| number::<u64>(&flag, &v).map(Duration::from_micros);
        match flag.as_str() {
            "--fg-count" => config.fg_count = number(&flag, &value()?)?,
            "--rps" => config.rps = number(&flag, &value()?)?,
            "--bg" => config.bg = number(&flag, &value()?)?,
            "--runs" => config.runs = number(&flag, &value()?)?,
            "--seed" => config.seed = number(&flag, &value()?)?,
            "--json" => config.json = true,
            "--no-stats" => config.stats = false,
            "--only" => {
                config.columns = value()?
                    .split(',')
                    .map(|n| {
                        let n: usize = number(&flag, n.trim())?;
                        Column::ALL
                            .get(n.wrapping_sub(1))
                            .copied()
                            .ok_or_else(|| format!("--only: no column {n} (1-7)"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--driver-yield-us" => config.tunables.driver_yield = Some(micros(value()?)?),
            "--max-polls" => config.tunables.max_polls = Some(number(&flag, &value()?)?),
            "--sched-latency-us" => config.tunables.sched_latency = Some(micros(value()?)?),
            "--min-slice-us" => config.tunables.min_slice = Some(micros(value()?)?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if config.fg_count == 0 || config.runs == 0 || config.rps <= 0.0 {
        return Err("--fg-count, --runs and --rps must be greater than zero".into());
    }
    Ok(config)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: `{value}` is not a valid number"))
}

/// The benchmark's columns, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    TokioFgOnly,
    CwFgBg,
    CwFgOnly,
    TokioFgBg,
    TwoRtOs,
    CwFgBgLas,
    CwFgBgSpawner,
}

impl Column {
    const ALL: [Column; 7] = [
        Column::TokioFgOnly,
        Column::CwFgBg,
        Column::CwFgOnly,
        Column::TokioFgBg,
        Column::TwoRtOs,
        Column::CwFgBgLas,
        Column::CwFgBgSpawner,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::TokioFgOnly => "Tokio fg only",
            Column::CwFgBg => "CW fg+bg",
            Column::CwFgOnly => "CW fg only",
            Column::TokioFgBg => "Tokio fg+bg",
            Column::TwoRtOs => "Two-RT/OS",
            Column::CwFgBgLas => "CW fg+bg LAS",
            Column::CwFgBgSpawner => "CW fg+bg Spawner",
        }
    }

    fn has_background(self) -> bool {
        !matches!(self, Column::TokioFgOnly | Column::CwFgOnly)
    }
}

// ============================================================================
// Cores
// ============================================================================

/// Where the threads run: the runtime thread(s) on one core, the generator
/// (and this main thread, which only draws the progress bar) on another.
#[derive(Debug, Clone, Copy)]
struct Cores {
    runtime: Option<CoreId>,
    generator: Option<CoreId>,
}

impl Cores {
    /// Reads the core list once, before anything is pinned: a pinned thread's
    /// children inherit its mask, so a later read would see a single core.
    fn detect() -> Self {
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        if ids.len() < 2 {
            eprintln!(
                "warning: {} core(s) available; the benchmark needs 2 to pin the runtime \
                 and the generator apart. Running unpinned: expect noisier figures.",
                ids.len()
            );
            return Cores {
                runtime: None,
                generator: None,
            };
        }
        // The last core for the runtime: core 0 tends to take more interrupts.
        Cores {
            runtime: ids.last().copied(),
            generator: ids.get(ids.len() - 2).copied(),
        }
    }

    fn describe(&self) -> String {
        match (self.runtime, self.generator) {
            (Some(rt), Some(generator)) => format!(
                "runtime thread pinned to core {}, generator to core {}; Two-RT/OS pins \
                 both of its runtimes to core {} too, so every column has one core",
                rt.id, generator.id, rt.id
            ),
            _ => "unpinned".to_string(),
        }
    }
}

fn pin(core: Option<CoreId>) {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            eprintln!("warning: could not pin a thread to core {}", core.id);
        }
    }
}

// ============================================================================
// Workload
// ============================================================================

#[derive(Debug, Clone, Copy)]
enum Step {
    Cpu(Duration),
    Sleep(Duration),
}

/// One foreground task of the workload: the gap before it arrives, and its steps.
#[derive(Debug, Clone)]
struct Job {
    gap: Duration,
    steps: Vec<Step>,
}

/// The foreground workload, the same in every column.
fn make_workload(config: &Config) -> Arc<Vec<Job>> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mean_gap = 1.0 / config.rps;
    let jobs = (0..config.fg_count)
        .map(|_| {
            // Exponential gaps: a Poisson arrival process.
            let u: f64 = rng.r#gen();
            let gap = Duration::from_secs_f64(-(1.0 - u).ln() * mean_gap);
            let segments = rng.gen_range(1..=3);
            let mut steps = Vec::with_capacity(2 * segments - 1);
            for segment in 0..segments {
                if segment > 0 {
                    steps.push(Step::Sleep(micros(&mut rng)));
                }
                steps.push(Step::Cpu(micros(&mut rng)));
            }
            Job { gap, steps }
        })
        .collect();
    Arc::new(jobs)
}

/// 100–500 µs.
fn micros(rng: &mut StdRng) -> Duration {
    Duration::from_micros(rng.gen_range(100..=500))
}

/// What a busy spin counts: wall time, or the thread's own CPU time.
///
/// The single-runtime columns spin on `Instant`: alone on their core, wall
/// time is CPU time. In Two-RT/OS two threads share the core, and a spin on
/// `Instant` would count the other thread's time as its own work, inflating the
/// background's iterations and shortening the foreground's segments when one
/// preempts the other, so that column spins on the thread's CPU clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpinClock {
    Wall,
    ThreadCpu,
}

fn burn(duration: Duration, clock: SpinClock) {
    let mut acc = 0u64;
    let mut step = || {
        for _ in 0..32 {
            acc = acc
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        std::hint::black_box(acc);
    };
    match clock {
        SpinClock::Wall => {
            let start = Instant::now();
            while start.elapsed() < duration {
                step();
            }
        }
        SpinClock::ThreadCpu => {
            let start = thread_cpu_time();
            while thread_cpu_time().saturating_sub(start) < duration {
                step();
            }
        }
    }
}

#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    // No portable per-thread CPU clock: fall back to wall time.
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// State of one column run that crosses threads.
struct Shared {
    jobs: Arc<Vec<Job>>,
    /// Foreground tasks finished (read by the progress bar).
    done: AtomicUsize,
    /// Background iterations finished.
    bg_iterations: AtomicU64,
    /// Tells background loops to stop.
    shutdown: AtomicBool,
    /// Arrivals sent by the generator, and foreground tasks started: while
    /// `sent > started`, an arrival is waiting for the runtime.
    sent: AtomicUsize,
    started: AtomicUsize,
    /// Background CPU segments begun while an arrival was waiting: priority
    /// inversions the scheduler could have avoided (give or take a wake that
    /// lands just as the segment starts).
    inversions: AtomicU64,
}

/// A foreground task as the generator sends it.
#[derive(Debug)]
struct Arrival {
    job: usize,
    submitted: Instant,
}

/// What the generator reports: when the arrivals' clock started, the
/// background iteration count then, and how far it fell behind schedule.
struct Generated {
    t0: Instant,
    bg0: u64,
    /// The latest send, behind its due time: normally a fraction of a
    /// millisecond; milliseconds mean another process took the generator's
    /// core and the arrivals bunched up.
    max_lateness: Duration,
}

/// How the generator hands its arrivals to the runtime thread.
enum Submit {
    /// Columns 1-6: over a channel, to a receiver loop that spawns them.
    Channel(mpsc::UnboundedSender<Arrival>),
    /// Column 7: straight into the foreground queue, through the executor's
    /// spawner, which the runtime thread sends once it has built the executor.
    Spawner(std_mpsc::Receiver<Spawner<Queue>>),
}

thread_local! {
    /// Column 7: the probe of the run on this (runtime) thread, for the
    /// foreground tasks that the generator's spawns build here.
    static PROBE: RefCell<Option<Rc<Probe>>> = const { RefCell::new(None) };
}

/// Column 7's foreground task, built on the runtime thread.
fn spawned_foreground(arrival: Arrival) -> impl Future<Output = ()> {
    let probe = PROBE.with_borrow(|probe| probe.clone().expect("probe installed"));
    foreground(arrival, probe, SpinClock::Wall)
}

/// Sends the workload's arrivals at their times; busy-waits the gaps.
fn generate(
    shared: Arc<Shared>,
    submit: Submit,
    start: Arc<Barrier>,
    core: Option<CoreId>,
) -> Generated {
    pin(core);
    let spawner = match &submit {
        Submit::Channel(_) => None,
        Submit::Spawner(rx) => Some(rx.recv().expect("the runtime thread sends the spawner")),
    };
    // Column 7's join handles, kept to the end so that no detach runs between
    // arrivals.
    let mut handles = Vec::new();
    start.wait();
    let t0 = Instant::now();
    let bg0 = shared.bg_iterations.load(Ordering::Relaxed);
    // Absolute due times: a late send does not delay the ones after it.
    let mut due = t0;
    let mut max_lateness = Duration::ZERO;
    for (job, spec) in shared.jobs.iter().enumerate() {
        due += spec.gap;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let submitted = Instant::now();
        max_lateness = max_lateness.max(submitted - due);
        let arrival = Arrival { job, submitted };
        if let Some(spawner) = &spawner {
            let spawned =
                spawner.spawn_with(Queue::Foreground, move || spawned_foreground(arrival));
            handles.push(spawned.expect("foreground queue"));
        } else if let Submit::Channel(tx) = &submit {
            if tx.unbounded_send(arrival).is_err() {
                break;
            }
        }
    }
    drop(handles);
    Generated {
        t0,
        bg0,
        max_lateness,
    }
}

/// One latency sample, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    queue_delay: u64,
    total: u64,
}

/// Collects the samples on the thread that runs the foreground tasks.
struct Probe {
    shared: Arc<Shared>,
    samples: RefCell<Vec<Sample>>,
    /// When the last foreground task finished, and the background count then.
    end: Cell<Option<(Instant, u64)>>,
    /// Notified when the last foreground task finishes (column 7 waits for it:
    /// it has no receiver task that awaits them all).
    finished: tokio::sync::Notify,
}

impl Probe {
    fn new(shared: Arc<Shared>) -> Rc<Self> {
        let capacity = shared.jobs.len();
        Rc::new(Probe {
            shared,
            samples: RefCell::new(Vec::with_capacity(capacity)),
            end: Cell::new(None),
            finished: tokio::sync::Notify::new(),
        })
    }

    fn record(&self, submitted: Instant, started: Instant, finished: Instant) {
        self.samples.borrow_mut().push(Sample {
            queue_delay: nanos(started - submitted),
            total: nanos(finished - submitted),
        });
        let done = self.shared.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done == self.shared.jobs.len() {
            let bg = self.shared.bg_iterations.load(Ordering::Relaxed);
            self.end.set(Some((finished, bg)));
            self.finished.notify_one();
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

async fn foreground(arrival: Arrival, probe: Rc<Probe>, clock: SpinClock) {
    let started = Instant::now();
    probe.shared.started.fetch_add(1, Ordering::Relaxed);
    let jobs = Arc::clone(&probe.shared.jobs);
    for step in &jobs[arrival.job].steps {
        match *step {
            Step::Cpu(d) => burn(d, clock),
            Step::Sleep(d) => tokio::time::sleep(d).await,
        }
    }
    probe.record(arrival.submitted, started, Instant::now());
}

async fn background(shared: Arc<Shared>, seed: u64, clock: SpinClock) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !shared.shutdown.load(Ordering::Relaxed) {
        let started = shared.started.load(Ordering::Relaxed);
        if shared.sent.load(Ordering::Relaxed) > started {
            shared.inversions.fetch_add(1, Ordering::Relaxed);
        }
        burn(micros(&mut rng), clock);
        tokio::time::sleep(micros(&mut rng)).await;
        shared.bg_iterations.fetch_add(1, Ordering::Relaxed);
    }
}

fn background_seed(config: &Config, index: usize) -> u64 {
    config.seed ^ 0xB6_0000 ^ index as u64
}

// ============================================================================
// Runners, one per kind of column
// ============================================================================

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Columns 1 and 4, and the foreground runtime of column 5: a receiver loop on
/// a `LocalSet` that `spawn_local`s each arrival.
fn run_tokio(
    probe: &Rc<Probe>,
    mut rx: mpsc::UnboundedReceiver<Arrival>,
    background_tasks: usize,
    config: &Config,
    clock: SpinClock,
    start: &Barrier,
) {
    let rt = current_thread_runtime();
    let local = LocalSet::new();
    start.wait();
    local.block_on(&rt, async {
        for i in 0..background_tasks {
            let shared = Arc::clone(&probe.shared);
            tokio::task::spawn_local(background(shared, background_seed(config, i), clock));
        }
        let mut handles = Vec::with_capacity(probe.shared.jobs.len());
        while let Some(arrival) = rx.next().await {
            handles.push(tokio::task::spawn_local(foreground(
                arrival,
                Rc::clone(probe),
                clock,
            )));
        }
        for handle in handles {
            handle.await.expect("foreground task");
        }
    });
    probe.shared.shutdown.store(true, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

/// How arrivals reach a Clockworker column's foreground queue.
enum Intake {
    /// Columns 2, 3 and 6: a receiver task of the foreground queue spawns
    /// each arrival into that queue.
    Receiver(mpsc::UnboundedReceiver<Arrival>),
    /// Column 7: the generator spawns them itself, through the executor's
    /// spawner, sent to it here.
    Spawner(std_mpsc::Sender<Spawner<Queue>>),
}

/// Columns 2, 3, 6 and 7: Clockworker on a Tokio current-thread runtime,
/// driven by `rt.block_on(executor.run_until(..))`, arrivals taken in as
/// `intake` says. Returns the executor's statistics as the last foreground
/// task finished.
fn run_clockworker(
    probe: &Rc<Probe>,
    intake: Intake,
    background_tasks: usize,
    las: bool,
    config: &Config,
    start: &Barrier,
) -> CwStats {
    let rt = current_thread_runtime();
    let builder = ExecutorBuilder::new();
    let builder = if las {
        builder.with_queue_scheduler(Queue::Foreground, 99, LAS::new())
    } else {
        builder.with_queue(Queue::Foreground, 99)
    };
    let builder = config
        .tunables
        .apply(builder.with_queue(Queue::Background, 1));
    let executor = builder.build().expect("executor");
    let fg = executor.queue(Queue::Foreground).expect("foreground queue");
    let bg = executor.queue(Queue::Background).expect("background queue");
    if let Intake::Spawner(out) = &intake {
        PROBE.set(Some(Rc::clone(probe)));
        out.send(executor.spawner())
            .expect("generator thread alive");
    }
    start.wait();
    rt.block_on(executor.run_until(async {
        for i in 0..background_tasks {
            let shared = Arc::clone(&probe.shared);
            bg.spawn(background(
                shared,
                background_seed(config, i),
                SpinClock::Wall,
            ));
        }
        let mut rx = match intake {
            Intake::Receiver(rx) => rx,
            Intake::Spawner(_) => return probe.finished.notified().await,
        };
        let spawner = fg.clone();
        let probe = Rc::clone(probe);
        let receiver = fg.spawn(async move {
            let mut handles = Vec::with_capacity(probe.shared.jobs.len());
            while let Some(arrival) = rx.next().await {
                let task = foreground(arrival, Rc::clone(&probe), SpinClock::Wall);
                handles.push(spawner.spawn(task));
            }
            for handle in handles {
                handle.await.expect("foreground task");
            }
        });
        receiver.await.expect("receiver task");
    }));
    PROBE.set(None);
    probe.shared.shutdown.store(true, Ordering::Relaxed);
    // Before the drop, which would count the background tasks as cancelled.
    let stats = CwStats {
        executor: executor.stats(),
        queues: executor.all_queue_stats(),
    };
    // Dropping the executor (before the runtime) cancels the background tasks.
    drop(executor);
    stats
}

/// A Clockworker column's own statistics, at the end of a run.
#[derive(Debug, Clone)]
struct CwStats {
    executor: ExecutorStats,
    queues: Vec<(Queue, QueueStats)>,
}

/// Column 5: a second current-thread runtime on its own thread, pinned to the
/// same core, at nice 19, runs the background; the foreground runs as in
/// column 1 on this thread. No coordination but the OS scheduler's.
fn run_two_runtimes(
    probe: &Rc<Probe>,
    rx: mpsc::UnboundedReceiver<Arrival>,
    config: &Config,
    core: Option<CoreId>,
    start: &Barrier,
) -> Duration {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shared = Arc::clone(&probe.shared);
    let background_tasks = config.bg;
    let seeds: Vec<u64> = (0..background_tasks)
        .map(|i| background_seed(config, i))
        .collect();
    let bg_thread = thread::Builder::new()
        .name("bg-runtime".into())
        .spawn(move || {
            pin(core);
            lower_priority();
            let rt = current_thread_runtime();
            let local = LocalSet::new();
            local.block_on(&rt, async move {
                for seed in seeds {
                    let shared = Arc::clone(&shared);
                    tokio::task::spawn_local(background(shared, seed, SpinClock::ThreadCpu));
                }
                let _ = stop_rx.await;
            });
            thread_cpu_time()
        })
        .expect("spawn background runtime thread");
    run_tokio(probe, rx, 0, config, SpinClock::ThreadCpu, start);
    let _ = stop_tx.send(());
    // The background runtime's CPU time, for `RunResult::interference`.
    bg_thread.join().expect("background runtime thread")
}

/// Nice 19 for the calling thread (on Linux, `PRIO_PROCESS` with id 0 is the
/// calling thread, not the whole process).
fn lower_priority() {
    #[cfg(unix)]
    {
        // SAFETY: plain syscall on the calling thread, no pointers.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        if rc != 0 {
            eprintln!(
                "warning: setpriority(19) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The outcome of one column in one run.
#[derive(Debug, Clone)]
struct RunResult {
    samples: Vec<Sample>,
    bg_per_sec: f64,
    /// Background segments begun while an arrival waited, per second.
    inversions_per_sec: f64,
    elapsed: Duration,
    /// Involuntary context switches of the (foreground) runtime thread: how
    /// often something else took its core. High values mean the figures are
    /// skewed by other processes (or, in Two-RT/OS, by the other runtime).
    preempted: Option<u64>,
    /// CPU time that other processes (and the kernel) took on the runtime
    /// core during the run, and its share of the run's wall time.
    interference: Option<(Duration, f64)>,
    /// How far the generator fell behind its schedule, at worst.
    generator_lateness: Duration,
    /// The executor's statistics, in the Clockworker columns.
    cw_stats: Option<CwStats>,
}

/// Runs one column in fresh runtimes and threads.
fn run_column(
    column: Column,
    config: &Config,
    jobs: &Arc<Vec<Job>>,
    cores: Cores,
    bar: &ProgressBar,
) -> RunResult {
    let shared = Arc::new(Shared {
        jobs: Arc::clone(jobs),
        done: AtomicUsize::new(0),
        bg_iterations: AtomicU64::new(0),
        shutdown: AtomicBool::new(false),
        sent: AtomicUsize::new(0),
        started: AtomicUsize::new(0),
        inversions: AtomicU64::new(0),
    });
    let (tx, rx) = mpsc::unbounded();
    let (spawner_tx, spawner_rx) = std_mpsc::channel();
    let submit = if column == Column::CwFgBgSpawner {
        Submit::Spawner(spawner_rx)
    } else {
        Submit::Channel(tx)
    };
    let start = Arc::new(Barrier::new(2));
    let (busy0, wall0) = (
        cores.runtime.and_then(|core| core_busy(core.id)),
        Instant::now(),
    );

    let generator = {
        let (shared, start) = (Arc::clone(&shared), Arc::clone(&start));
        thread::Builder::new()
            .name("generator".into())
            .spawn(move || generate(shared, submit, start, cores.generator))
            .expect("spawn generator thread")
    };
    let runtime = {
        let (shared, config) = (Arc::clone(&shared), config.clone());
        thread::Builder::new()
            .name("runtime".into())
            .spawn(move || {
                pin(cores.runtime);
                let switches = involuntary_switches();
                let probe = Probe::new(shared);
                let bg = if column.has_background() {
                    config.bg
                } else {
                    0
                };
                let (helper_cpu, cw_stats) = match column {
                    Column::TokioFgOnly | Column::TokioFgBg => {
                        run_tokio(&probe, rx, bg, &config, SpinClock::Wall, &start);
                        (Duration::ZERO, None)
                    }
                    Column::CwFgBg | Column::CwFgOnly | Column::CwFgBgLas => {
                        let las = column == Column::CwFgBgLas;
                        let intake = Intake::Receiver(rx);
                        let stats = run_clockworker(&probe, intake, bg, las, &config, &start);
                        (Duration::ZERO, Some(stats))
                    }
                    Column::CwFgBgSpawner => {
                        let intake = Intake::Spawner(spawner_tx);
                        let stats = run_clockworker(&probe, intake, bg, false, &config, &start);
                        (Duration::ZERO, Some(stats))
                    }
                    Column::TwoRtOs => (
                        run_two_runtimes(&probe, rx, &config, cores.runtime, &start),
                        None,
                    ),
                };
                let preempted = involuntary_switches()
                    .zip(switches)
                    .map(|(after, before)| after - before);
                let cpu = thread_cpu_time() + helper_cpu;
                let samples = probe.samples.take();
                (samples, probe.end.get(), preempted, cpu, cw_stats)
            })
            .expect("spawn runtime thread")
    };

    while !runtime.is_finished() {
        bar.set_position(shared.done.load(Ordering::Relaxed) as u64);
        thread::sleep(Duration::from_millis(50));
    }
    let (samples, end, preempted, our_cpu, cw_stats) = runtime.join().expect("runtime thread");
    let (busy1, wall1) = (
        cores.runtime.and_then(|core| core_busy(core.id)),
        Instant::now(),
    );
    let interference = busy0.zip(busy1).map(|(before, after)| {
        let others = after.saturating_sub(before).saturating_sub(our_cpu);
        (others, others.as_secs_f64() / (wall1 - wall0).as_secs_f64())
    });
    let generated = generator.join().expect("generator thread");
    let (t0, bg0) = (generated.t0, generated.bg0);
    bar.set_position(shared.done.load(Ordering::Relaxed) as u64);
    let (t_end, bg_end) = end.expect("every foreground task finished");
    let elapsed = t_end.saturating_duration_since(t0);
    RunResult {
        samples,
        bg_per_sec: (bg_end - bg0) as f64 / elapsed.as_secs_f64(),
        inversions_per_sec: shared.inversions.load(Ordering::Relaxed) as f64
            / elapsed.as_secs_f64(),
        elapsed,
        preempted,
        interference,
        generator_lateness: generated.max_lateness,
        cw_stats,
    }
}

/// Involuntary context switches of the calling thread so far.
#[cfg(target_os = "linux")]
fn involuntary_switches() -> Option<u64> {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (rc == 0).then_some(usage.ru_nivcsw as u64)
}

#[cfg(not(target_os = "linux"))]
fn involuntary_switches() -> Option<u64> {
    None
}

/// The share of the machine's CPU time used over a short look, while this
/// benchmark is idle: anything above a few percent is another process that
/// will compete with the pinned threads.
#[cfg(target_os = "linux")]
fn machine_busy() -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
        Some((fields.iter().take(8).sum(), idle))
    }
    let (total0, idle0) = sample()?;
    thread::sleep(Duration::from_millis(500));
    let (total1, idle1) = sample()?;
    let total = total1.checked_sub(total0)?;
    (total > 0).then(|| 1.0 - (idle1 - idle0) as f64 / total as f64)
}

#[cfg(not(target_os = "linux"))]
fn machine_busy() -> Option<f64> {
    None
}

// ============================================================================
// Statistics
// ============================================================================

/// The figures of the table, latencies in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    queue: [f64; 3],
    total: [f64; 3],
    bg_per_sec: f64,
    /// Not in the table: a diagnostic (see `Shared::inversions`).
    inversions_per_sec: f64,
}

const PERCENTILES: [f64; 3] = [50.0, 90.0, 99.0];

impl Figures {
    fn of(run: &RunResult) -> Self {
        let mut queue: Vec<u64> = run.samples.iter().map(|s| s.queue_delay).collect();
        let mut total: Vec<u64> = run.samples.iter().map(|s| s.total).collect();
        queue.sort_unstable();
        total.sort_unstable();
        Figures {
            queue: PERCENTILES.map(|p| ms(percentile(&queue, p))),
            total: PERCENTILES.map(|p| ms(percentile(&total, p))),
            bg_per_sec: run.bg_per_sec,
            inversions_per_sec: run.inversions_per_sec,
        }
    }

    /// The median of each figure over runs.
    fn median(all: &[Figures]) -> Self {
        let pick = |f: &dyn Fn(&Figures) -> f64| median(all.iter().map(f).collect());
        Figures {
            queue: [0, 1, 2].map(|i| pick(&|x| x.queue[i])),
            total: [0, 1, 2].map(|i| pick(&|x| x.total[i])),
            bg_per_sec: pick(&|x| x.bg_per_sec),
            inversions_per_sec: pick(&|x| x.inversions_per_sec),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "p50_queue_delay_ms": self.queue[0],
            "p90_queue_delay_ms": self.queue[1],
            "p99_queue_delay_ms": self.queue[2],
            "p50_total_latency_ms": self.total[0],
            "p90_total_latency_ms": self.total[1],
            "p99_total_latency_ms": self.total[2],
            "bg_iterations_per_sec": self.bg_per_sec,
            "bg_segments_started_while_fg_waited_per_sec": self.inversions_per_sec,
        })
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// Everything measured for one column.
struct ColumnResult {
    column: Column,
    runs: Vec<RunResult>,
    figures: Vec<Figures>,
    median: Figures,
}

/// A goal of the benchmark: a ratio of two columns' figures.
struct Goal {
    /// The figure compared, its column and the column it is compared with.
    metric: &'static str,
    column: Column,
    baseline: Column,
    ratio: Option<f64>,
    bound: f64,
    at_most: bool,
}

impl Goal {
    fn name(&self) -> String {
        format!(
            "{}, {} / {}",
            self.metric,
            self.column.name(),
            self.baseline.name()
        )
    }

    fn pass(&self) -> Option<bool> {
        self.ratio.map(|r| {
            if self.at_most {
                r <= self.bound
            } else {
                r >= self.bound
            }
        })
    }
}

/// The three goals, for each of the two Clockworker fg+bg columns with the
/// default scheduler (2, and 7, its Spawner variant).
fn goals(results: &[ColumnResult]) -> Vec<Goal> {
    let get = |c: Column| results.iter().find(|r| r.column == c).map(|r| r.median);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let (base, tokio_bg) = (get(Column::TokioFgOnly), get(Column::TokioFgBg));
    let mut goals = Vec::new();
    for column in [Column::CwFgBg, Column::CwFgBgSpawner] {
        let cw = get(column);
        goals.extend([
            Goal {
                metric: "p99 queue delay",
                column,
                baseline: Column::TokioFgOnly,
                ratio: ratio(cw.map(|f| f.queue[2]), base.map(|f| f.queue[2])),
                bound: 1.10,
                at_most: true,
            },
            Goal {
                metric: "p50 queue delay",
                column,
                baseline: Column::TokioFgOnly,
                ratio: ratio(cw.map(|f| f.queue[0]), base.map(|f| f.queue[0])),
                bound: 1.6,
                at_most: true,
            },
            Goal {
                metric: "BG throughput",
                column,
                baseline: Column::TokioFgBg,
                ratio: ratio(cw.map(|f| f.bg_per_sec), tokio_bg.map(|f| f.bg_per_sec)),
                bound: 0.95,
                at_most: false,
            },
        ]);
    }
    goals
}

// ============================================================================
// Output: table, goals, chart, JSON
// ============================================================================

fn table(results: &[ColumnResult]) -> String {
    let base = results
        .iter()
        .find(|r| r.column == Column::TokioFgOnly)
        .map(|r| r.median);
    let cell = |value: f64, base: Option<f64>, is_base: bool| match base {
        Some(b) if !is_base && b > 0.0 => {
            format!("{value:.2}ms ({:+.0}%)", (value / b - 1.0) * 100.0)
        }
        _ => format!("{value:.2}ms"),
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["Metric".to_string()];
    header.extend(results.iter().map(|r| r.column.name().to_string()));
    rows.push(header);
    for (which, label) in [(0, "queue delay"), (1, "total latency")] {
        for (i, p) in PERCENTILES.iter().enumerate() {
            let mut row = vec![format!("p{p:.0} {label}")];
            for r in results {
                let pick = |f: &Figures| if which == 0 { f.queue[i] } else { f.total[i] };
                let is_base = r.column == Column::TokioFgOnly;
                row.push(cell(pick(&r.median), base.as_ref().map(pick), is_base));
            }
            rows.push(row);
        }
    }
    let mut bg_row = vec!["BG throughput (iter/s)".to_string()];
    bg_row.extend(
        results
            .iter()
            .map(|r| format!("{:.0}", r.median.bg_per_sec)),
    );
    rows.push(bg_row);

    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:^w$}"))
            .collect();
        format!("|{}|\n", cells.join("|"))
    };
    let mut out = line(&rows[0]);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &rows[1..] {
        out.push_str(&line(row));
    }
    out
}

fn goals_text(goals: &[Goal]) -> String {
    let mut out = String::from("Goals:\n");
    for goal in goals {
        let op = if goal.at_most { "<=" } else { ">=" };
        let (ratio, verdict) = match (goal.ratio, goal.pass()) {
            (Some(r), Some(pass)) => (format!("{r:.3}"), if pass { "PASS" } else { "MISS" }),
            _ => ("n/a".to_string(), "n/a (column not run)"),
        };
        out.push_str(&format!(
            "  {:<16} {:<16} / {:<13}: {ratio:>6}  (goal {op} {:.2})  {verdict}\n",
            format!("{},", goal.metric),
            goal.column.name(),
            goal.baseline.name(),
            goal.bound
        ));
    }
    out
}

/// The diagnostic behind the latencies: how often a background segment began
/// while a foreground arrival was waiting.
fn inversions_text(results: &[ColumnResult]) -> String {
    let mut out = String::from(
        "Background CPU segments begun while a foreground arrival waited (per second):\n",
    );
    for r in results.iter().filter(|r| r.column.has_background()) {
        out.push_str(&format!(
            "  {:<16} {:>7.1}/s\n",
            r.column.name(),
            r.median.inversions_per_sec
        ));
    }
    out
}

/// The Clockworker columns' executor and per-queue statistics, of each
/// column's last run.
fn stats_text(results: &[ColumnResult], runs: usize) -> String {
    let which = if runs > 1 {
        format!("last of {runs} runs")
    } else {
        "the run".to_string()
    };
    let mut out = format!(
        "Clockworker statistics ({which}, at the last foreground completion; --no-stats hides them):\n"
    );
    let indent =
        |text: String| -> String { text.lines().map(|line| format!("    {line}\n")).collect() };
    for r in results {
        let Some(stats) = r.runs.last().and_then(|run| run.cw_stats.as_ref()) else {
            continue;
        };
        out.push_str(&format!("\n== {} ==\n  executor\n", r.column.name()));
        out.push_str(&indent(stats.executor.to_string()));
        for (queue, queue_stats) in &stats.queues {
            out.push_str(&format!("  queue {queue:?}\n"));
            out.push_str(&indent(queue_stats.to_string()));
        }
    }
    out
}

impl CwStats {
    /// A compact summary for `--json`: executor totals, and per queue the
    /// counts and the p50/p99/max of queue delay and poll duration, in ns.
    fn to_json(&self) -> Value {
        let ns = |d: Duration| nanos(d);
        let summary = |h: &Histogram| {
            json!({
                "count": h.count(),
                "p50": h.p50().map(ns),
                "p99": h.p99().map(ns),
                "max": h.max().map(ns),
            })
        };
        let e = &self.executor;
        let queues: Vec<Value> = self
            .queues
            .iter()
            .map(|(queue, q)| {
                json!({
                    "queue": format!("{queue:?}"),
                    "weight": q.weight,
                    "spawned": q.spawned,
                    "completed": q.completed,
                    "polls": q.polls,
                    "cpu_time_ns": ns(q.cpu_time),
                    "slices": q.slices,
                    "preemptions": q.preemptions,
                    "slow_polls": q.slow_polls,
                    "queue_delay_ns": summary(&q.queue_delay),
                    "poll_duration_ns": summary(&q.poll_duration),
                })
            })
            .collect();
        json!({
            "executor": {
                "uptime_ns": ns(e.uptime),
                "busy_ns": ns(e.busy),
                "turns": e.turns,
                "driver_yields": e.driver_yields,
                "polls": e.polls,
                "spawned": e.spawned,
                "completed": e.completed,
                "local_wakes": e.local_wakes,
                "remote_wakes": e.remote_wakes,
            },
            "queues": queues,
        })
    }
}

fn chart_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("priority").join("latency_cdf.svg")
}

/// Picks one latency out of a sample.
type Metric = fn(&Sample) -> u64;

/// One column's CDF of one metric, over every run's samples.
struct Curve {
    column: Column,
    /// Index into the chart's palette: the column's place in the table.
    color: usize,
    /// (milliseconds, fraction of tasks at or below).
    points: Vec<(f64, f64)>,
}

impl Curve {
    const POINTS: usize = 1000;

    fn of(result: &ColumnResult, metric: Metric) -> Self {
        let mut values: Vec<u64> = result
            .runs
            .iter()
            .flat_map(|run| run.samples.iter().map(metric))
            .collect();
        values.sort_unstable();
        let points = (0..=Self::POINTS)
            .map(|k| {
                let q = k as f64 / Self::POINTS as f64;
                let value = percentile(&values, (q * 100.0).max(0.01));
                // Floor at 1 µs: the axis is logarithmic.
                (ms(value).max(1e-3), q)
            })
            .collect();
        Curve {
            column: result.column,
            color: Column::ALL
                .iter()
                .position(|&c| c == result.column)
                .unwrap_or(0),
            points,
        }
    }
}

/// Two panels, queue delay and total latency: the CDF of each column, over
/// every run's samples, on a log time axis.
fn draw_chart(results: &[ColumnResult], path: &PathBuf) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    const COLORS: [RGBColor; 7] = [
        RGBColor(0, 0, 0),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(23, 190, 207),
    ];
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1400, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "Foreground latency CDF (the workload of clockworker 0.2's README)",
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((1, 2));
    let metrics: [(&str, Metric); 2] = [
        ("Queue delay (submit → first poll)", |s| s.queue_delay),
        ("Total latency (submit → finish)", |s| s.total),
    ];
    for (panel, (title, metric)) in panels.iter().zip(metrics) {
        let curves: Vec<Curve> = results.iter().map(|r| Curve::of(r, metric)).collect();
        let xs = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
        let hi = xs().fold(1.0f64, f64::max);
        let lo = xs().fold(hi, f64::min);
        let (lo, hi) = (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil()),
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("milliseconds (log scale)")
            .y_desc("fraction of foreground tasks")
            .draw()?;
        for curve in curves {
            let color = COLORS[curve.color % COLORS.len()];
            chart
                .draw_series(LineSeries::new(curve.points, color.stroke_width(2)))?
                .label(curve.column.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Warns about runs in which other processes took a noticeable share of the
/// runtime core: their figures are skewed.
fn warn_interference(results: &[ColumnResult]) {
    for result in results {
        for (run, r) in result.runs.iter().enumerate() {
            let which = format!("{} run {}", result.column.name(), run + 1);
            // /proc/stat counts in ticks (10 ms): ignore less than a few.
            if let Some((time, share)) = r.interference {
                if share > 0.03 && time > Duration::from_millis(50) {
                    eprintln!(
                        "warning: {which}: other processes took {:.0}% of the runtime core \
                         ({:.2}s); its figures are skewed",
                        share * 100.0,
                        time.as_secs_f64()
                    );
                }
            }
            if r.generator_lateness > Duration::from_millis(2) {
                eprintln!(
                    "warning: {which}: the generator fell {:.2}ms behind schedule (another \
                     process took its core), so arrivals bunched up; its figures are skewed",
                    r.generator_lateness.as_secs_f64() * 1e3
                );
            }
        }
    }
}

fn to_json(
    config: &Config,
    cores: Cores,
    machine_busy: Option<f64>,
    results: &[ColumnResult],
    goals: &[Goal],
    chart: Option<&PathBuf>,
    wall: Duration,
) -> Value {
    let columns: Vec<Value> = results
        .iter()
        .map(|r| {
            let runs: Vec<Value> = r
                .runs
                .iter()
                .zip(&r.figures)
                .map(|(run, figures)| {
                    let mut value = figures.to_json();
                    value["foreground_tasks"] = json!(run.samples.len());
                    value["elapsed_s"] = json!(run.elapsed.as_secs_f64());
                    value["runtime_thread_preempted"] = json!(run.preempted);
                    value["runtime_core_other_load"] = json!(run.interference.map(|i| i.1));
                    value["generator_max_lateness_ms"] =
                        json!(run.generator_lateness.as_secs_f64() * 1e3);
                    if let Some(stats) = &run.cw_stats {
                        value["clockworker_stats"] = stats.to_json();
                    }
                    value
                })
                .collect();
            json!({ "name": r.column.name(), "median": r.median.to_json(), "runs": runs })
        })
        .collect();
    let goals: Vec<Value> = goals
        .iter()
        .map(|g| {
            json!({
                "name": g.name(),
                "ratio": g.ratio,
                "goal": format!("{} {}", if g.at_most { "<=" } else { ">=" }, g.bound),
                "pass": g.pass(),
            })
        })
        .collect();
    let micros = |d: Option<Duration>| d.map(|d| d.as_micros() as u64);
    json!({
        "config": {
            "fg_count": config.fg_count,
            "rps": config.rps,
            "bg": config.bg,
            "runs": config.runs,
            "seed": config.seed,
            "runtime_core": cores.runtime.map(|c| c.id),
            "generator_core": cores.generator.map(|c| c.id),
            "driver_yield_us": micros(config.tunables.driver_yield),
            "max_polls_per_yield": config.tunables.max_polls,
            "sched_latency_us": micros(config.tunables.sched_latency),
            "min_slice_us": micros(config.tunables.min_slice),
        },
        "columns": columns,
        "goals": goals,
        "machine_busy_before": machine_busy,
        "chart": chart.map(|p| p.display().to_string()),
        "wall_time_s": wall.as_secs_f64(),
    })
}

// ============================================================================
// Main
// ============================================================================

fn main() {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let wall = Instant::now();
    // Before any thread is pinned.
    let cores = Cores::detect();
    // This thread only draws the progress bar: keep it off the runtime core.
    pin(cores.generator);

    // With --json, stdout is the JSON alone; the human-readable report goes to stderr.
    let say = |text: &str| {
        if config.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    };
    say(&format!(
        "Priority benchmark (clockworker 0.2's README): {} foreground tasks per column @ {} rps (Poisson), \
         {} background tasks, {} run(s)\n\
         Foreground: 1-3 x [100-500us CPU], 100-500us tokio::time::sleep between; \
         background: loop of 100-500us CPU + 100-500us sleep\n\
         Cores: {}\n\
         Two-RT/OS: background runtime at nice 19; CPU work there spins on the thread's \
         CPU clock (elsewhere on Instant)\n\
         CW fg+bg Spawner: the generator spawns each foreground task through the \
         executor's Spawner (no channel, no receiver task)\n",
        config.fg_count,
        config.rps,
        config.bg,
        config.runs,
        cores.describe(),
    ));
    if !config.tunables.is_default() {
        say(&format!("Clockworker tunables: {:?}\n", config.tunables));
    }
    let busy = machine_busy();
    if let Some(busy) = busy.filter(|&b| b > 0.05) {
        eprintln!(
            "warning: {:.0}% of the machine's CPU is in use by other processes before the \
             benchmark starts; they will compete with the pinned threads and skew the figures",
            busy * 100.0
        );
    }
    say("\n");

    let jobs = make_workload(&config);
    let style = ProgressStyle::with_template(
        "{prefix:>20} [{bar:30}] {pos:>6}/{len} fg tasks {elapsed:>3} {msg}",
    )
    .expect("progress template")
    .progress_chars("=> ");
    let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); config.columns.len()];
    for run in 0..config.runs {
        for (i, &column) in config.columns.iter().enumerate() {
            let bar = ProgressBar::new(config.fg_count as u64).with_style(style.clone());
            bar.set_prefix(if config.runs > 1 {
                format!("{} ({}/{})", column.name(), run + 1, config.runs)
            } else {
                column.name().to_string()
            });
            let result = run_column(column, &config, &jobs, cores, &bar);
            let figures = Figures::of(&result);
            bar.finish_with_message(format!(
                "p99 queue {:.2}ms, total {:.2}ms; bg {:.0}/s; others on core {}",
                figures.queue[2],
                figures.total[2],
                figures.bg_per_sec,
                result
                    .interference
                    .map_or("?".into(), |(_, share)| format!("{:.1}%", share * 100.0)),
            ));
            runs[i].push(result);
        }
    }

    let results: Vec<ColumnResult> = config
        .columns
        .iter()
        .zip(runs)
        .map(|(&column, runs)| {
            let figures: Vec<Figures> = runs.iter().map(Figures::of).collect();
            let median = Figures::median(&figures);
            ColumnResult {
                column,
                runs,
                figures,
                median,
            }
        })
        .collect();
    let goals = goals(&results);
    warn_interference(&results);

    if config.stats
        && results
            .iter()
            .any(|r| r.runs.iter().any(|run| run.cw_stats.is_some()))
    {
        say(&format!("\n{}", stats_text(&results, config.runs)));
    }

    let median_note = if config.runs > 1 {
        format!(" (medians over {} runs)", config.runs)
    } else {
        String::new()
    };
    say(&format!("\nResults{median_note}:\n\n{}\n", table(&results)));
    say(&goals_text(&goals));
    say(&inversions_text(&results));

    let path = chart_path();
    let chart = match draw_chart(&results, &path) {
        Ok(()) => {
            say(&format!("\nChart: {}\n", path.display()));
            Some(path)
        }
        Err(error) => {
            eprintln!(
                "warning: could not write the chart to {}: {error}",
                path.display()
            );
            None
        }
    };
    let wall = wall.elapsed();
    say(&format!("Wall time: {:.1}s\n", wall.as_secs_f64()));
    if config.json {
        let value = to_json(&config, cores, busy, &results, &goals, chart.as_ref(), wall);
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    }
}
