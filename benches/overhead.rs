//! Per-task and per-poll overhead of clockworker, side by side with Tokio's
//! `LocalSet`, `async-executor`'s `LocalExecutor` and the published
//! clockworker 0.2.6, all measured in one run.
//!
//! Run with: `cargo bench --bench overhead`
//!
//! Groups (criterion reports time per element, i.e. per task or per poll):
//!
//! - `spawn_join`: spawn a trivial task (`async { 1u64 }`) and await its handle.
//!   - `batch`: spawn [`BATCH`] tasks, then await them all, repeatedly.
//!   - `immediate`: spawn one task and await it before spawning the next.
//! - `poll`: one task that yields (wakes itself and returns `Pending`) N times;
//!   total time / N is the cost of one poll of a self-waking task (the one
//!   extra poll that completes it, and spawning it, amortize away).
//!   `clockworker_no_stats` is clockworker with statistics off
//!   (`with_statistics(false)`): the difference is what the per-poll
//!   statistics (two histogram records and a few additions) cost.
//!   `clockworker_watchdog` runs with a watchdog thread (1 s threshold): what
//!   publishing every poll to the watchdog costs. `clockworker_host_yield`
//!   has `driver_yield` zero, so every poll also hands the thread back to
//!   Tokio and returns: the difference is the cost of one host yield (with
//!   the default `tokio` feature, the deferred yield after which Tokio polls
//!   its IO driver). `clockworker_hooks` has the four task hooks set
//!   (`on_task_spawn` and the others), each counting into an atomic: what
//!   calling them costs. Built with `--features console`, every
//!   `clockworker` case also carries the console feature's check (no
//!   subscriber is installed): compare with a build without it.
//! - `remote_wake`: a task on the executor ping-pongs with a helper std thread
//!   through two atomic cells and an `AtomicWaker`: per iteration the task
//!   sends a ping and parks; the helper (spinning, so its side costs ~nothing)
//!   answers and wakes the task from its own thread; the task runs again.
//!   Time per element is one round trip, i.e. one remote wake.
//!   - `idle`: the executor has nothing else to do, so the host runtime may
//!     park its thread (an OS sleep and wake-up) while the task waits, unless
//!     the answer lands before the host gets to park.
//!   - `busy`: a second task on the executor yields in a loop, so the host
//!     never parks: the wake path proper, plus the wait behind that task's
//!     polls until the executor picks the woken task up.
//! - `queue_picking` (clockworker and clockworker 0.2.6 only: the others have
//!   no queues): N equal-weight queues (N = 1, 16, 256, 1024), each with one
//!   self-waking task; time per element is per poll. Two slice settings:
//!   `default_slices` (the defaults: a queue keeps the thread for a whole
//!   slice, so picking amortizes over many polls) and `pick_every_poll`
//!   (`sched_latency` = `min_slice` = 1 ns: every poll ends the slice, so
//!   every poll pays a pick among N runnable queues). After the group, a line
//!   gives clockworker's N=1024 / N=1 ratio for each setting.
//!
//! - `remote_spawn`: spawning from another thread. A host thread runs a Tokio
//!   current-thread runtime (`block_on` of a future that waits for the stop
//!   signal) or a clockworker executor (`executor.run()` inside a Tokio
//!   current-thread runtime and a `LocalSet`); the bench thread spawns
//!   [`BATCH`] tasks onto it (`Handle::spawn`, `Spawner::spawn`,
//!   `Spawner::spawn_with`), then waits until they have all run, and so on.
//!   Time per element is per task: the spawn, the task's run on the host
//!   thread, and the wait, all amortized over the batch. Two ways of waiting:
//!   - `join`: the bench thread awaits every `JoinHandle`, in spawn order, in
//!     one `futures::executor::block_on`: each output comes back.
//!   - `detached`: the handles are dropped at once (detached); each task
//!     counts down the batch's counter, and the last one unparks the bench
//!     thread.
//!
//!   Both hosts are built by the same `tokio_rt()` (IO and timers enabled),
//!   and are shut down at the end of every `iter_custom` call (Tokio: the
//!   stop signal, then the runtime is dropped on its thread; clockworker:
//!   `spawner.shutdown(Shutdown::Cancel)`, `run()` returns), outside the
//!   timed region. `tokio_handle_spawn_no_io` is a runtime built without
//!   IO and timers: there a remote spawn unparks a condition variable if
//!   the runtime sleeps, instead of writing to the IO driver's eventfd at
//!   every spawn. After the group, a line gives clockworker's host turns per
//!   batch, then a paired measurement: rounds of 65,536 tasks that alternate
//!   between the four cases, with each case's median per task and
//!   clockworker's ratios to Tokio (on a shared machine the load moves
//!   between criterion's benchmarks, which run one after another).
//!
//! Every runtime and executor is built once per `iter_custom` call, outside
//! the timed region. Both clockworkers and the `LocalSet` run inside a Tokio
//! current-thread runtime's `block_on`; `LocalExecutor` runs inside
//! `futures-lite`'s `block_on` (its usual host).

mod common;
use common::{time_self_waking, tokio_rt, yield_once, yielder};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Tasks spawned before awaiting them, in the `batch` pattern. Bounded so that
/// memory stays small however many iterations criterion asks for.
const BATCH: u64 = 256;

/// One implementation's measurement: `iters` elements, their total time.
type SpawnJoinFn = fn(u64, Pattern) -> Duration;
type PollFn = fn(u64) -> Duration;

#[derive(Clone, Copy, Debug)]
enum Pattern {
    Batch,
    Immediate,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Batch => "batch",
            Pattern::Immediate => "immediate",
        }
    }
}

/// The body of the `spawn_join` group, generic over the executor: `spawn`
/// spawns `async { 1u64 }`, `output` unwraps what its handle resolves to.
/// Returns the sum of the outputs (`iters`).
async fn spawn_join_body<H: Future>(
    iters: u64,
    pattern: Pattern,
    spawn: impl Fn() -> H,
    output: impl Fn(H::Output) -> u64,
) -> u64 {
    let mut sum = 0;
    match pattern {
        Pattern::Immediate => {
            for _ in 0..iters {
                sum += output(spawn().await);
            }
        }
        Pattern::Batch => {
            let mut handles = Vec::with_capacity(BATCH as usize);
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                handles.extend((0..n).map(|_| spawn()));
                for handle in handles.drain(..) {
                    sum += output(handle.await);
                }
                left -= n;
            }
        }
    }
    sum
}

// ---------------------------------------------------------------------------
// spawn_join
// ---------------------------------------------------------------------------

fn spawn_join_clockworker(iters: u64, pattern: Pattern) -> Duration {
    let rt = tokio_rt();
    let executor = clockworker::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let start = Instant::now();
    let sum = rt.block_on(executor.run_until(spawn_join_body(
        iters,
        pattern,
        || queue.spawn(async { 1u64 }),
        |result| result.expect("task failed"),
    )));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn spawn_join_clockworker_026(iters: u64, pattern: Pattern) -> Duration {
    let rt = tokio_rt();
    let executor = clockworker026::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let start = Instant::now();
    let sum = rt.block_on(executor.run_until(spawn_join_body(
        iters,
        pattern,
        || queue.spawn(async { 1u64 }),
        |result| result.expect("task failed"),
    )));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn spawn_join_tokio(iters: u64, pattern: Pattern) -> Duration {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    let sum = rt.block_on(local.run_until(spawn_join_body(
        iters,
        pattern,
        || local.spawn_local(async { 1u64 }),
        |result| result.expect("task failed"),
    )));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn spawn_join_async_executor(iters: u64, pattern: Pattern) -> Duration {
    let executor = async_executor::LocalExecutor::new();
    let start = Instant::now();
    let sum = smol::block_on(executor.run(spawn_join_body(
        iters,
        pattern,
        || executor.spawn(async { 1u64 }),
        |value| value,
    )));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn bench_spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for pattern in [Pattern::Batch, Pattern::Immediate] {
        let implementations: [(&str, SpawnJoinFn); 4] = [
            ("clockworker", spawn_join_clockworker),
            ("tokio_localset", spawn_join_tokio),
            ("async_executor", spawn_join_async_executor),
            ("clockworker_0_2_6", spawn_join_clockworker_026),
        ];
        for (name, run) in implementations {
            group.bench_function(BenchmarkId::new(name, pattern.name()), |b| {
                b.iter_custom(|iters| run(iters, pattern))
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// poll
// ---------------------------------------------------------------------------

fn poll_clockworker(iters: u64) -> Duration {
    poll_clockworker_with(iters, |builder| builder)
}

/// The same with statistics off: what the per-poll statistics cost.
fn poll_clockworker_no_stats(iters: u64) -> Duration {
    poll_clockworker_with(iters, |builder| builder.with_statistics(false))
}

/// The same with `driver_yield` zero: every poll ends the turn and hands
/// the thread back to the host (Tokio) and comes back. The difference from
/// `clockworker` is the cost of one host yield, what `driver_yield` trades
/// against latency (with the `tokio` feature, the host polls its IO driver
/// at every such yield).
fn poll_clockworker_host_yield(iters: u64) -> Duration {
    poll_clockworker_with(iters, |builder| builder.with_driver_yield(Duration::ZERO))
}

/// The same with a watchdog thread watching every poll.
fn poll_clockworker_watchdog(iters: u64) -> Duration {
    poll_clockworker_with(iters, |builder| {
        builder.with_watchdog(Duration::from_secs(1), |_| {})
    })
}

/// The same with the four task hooks set, each doing nothing but count:
/// the cost of calling them (unset, they cost what `clockworker` measures).
fn poll_clockworker_hooks(iters: u64) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static EVENTS: AtomicU64 = AtomicU64::new(0);
    poll_clockworker_with(iters, |builder| {
        builder
            .on_task_spawn(|_| {
                EVENTS.fetch_add(1, Relaxed);
            })
            .on_before_task_poll(|_| {
                EVENTS.fetch_add(1, Relaxed);
            })
            .on_after_task_poll(|_| {
                EVENTS.fetch_add(1, Relaxed);
            })
            .on_task_terminate(|_, _| {
                EVENTS.fetch_add(1, Relaxed);
            })
    })
}

type Builder = clockworker::ExecutorBuilder<u8>;

fn poll_clockworker_with(iters: u64, configure: fn(Builder) -> Builder) -> Duration {
    time_self_waking(iters, configure(Builder::new().with_queue(0, 1)))
}

fn poll_clockworker_026(iters: u64) -> Duration {
    let rt = tokio_rt();
    let executor = clockworker026::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let start = Instant::now();
    let handle = queue.spawn(yielder(iters));
    let sum = rt
        .block_on(executor.run_until(handle))
        .expect("task failed");
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn poll_tokio(iters: u64) -> Duration {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    let handle = local.spawn_local(yielder(iters));
    let sum = rt.block_on(local.run_until(handle)).expect("task failed");
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn poll_async_executor(iters: u64) -> Duration {
    let executor = async_executor::LocalExecutor::new();
    let start = Instant::now();
    let task = executor.spawn(yielder(iters));
    let sum = smol::block_on(executor.run(task));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

fn bench_poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let implementations: [(&str, PollFn); 8] = [
        ("clockworker", poll_clockworker),
        ("clockworker_no_stats", poll_clockworker_no_stats),
        ("clockworker_host_yield", poll_clockworker_host_yield),
        ("clockworker_watchdog", poll_clockworker_watchdog),
        ("clockworker_hooks", poll_clockworker_hooks),
        ("tokio_localset", poll_tokio),
        ("async_executor", poll_async_executor),
        ("clockworker_0_2_6", poll_clockworker_026),
    ];
    for (name, run) in implementations {
        group.bench_function(name, |b| b.iter_custom(run));
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// remote_wake
// ---------------------------------------------------------------------------

/// `ping` value that tells the helper thread to exit.
const STOP: u64 = u64::MAX;

/// The two cells of the ping-pong, and the waker of the task on the executor.
struct Signal {
    /// Last ping sent by the task (sequence number from 1).
    ping: AtomicU64,
    /// Last ping answered by the helper thread.
    pong: AtomicU64,
    /// The task's waker, registered before each ping.
    waker: AtomicWaker,
}

impl Signal {
    fn new() -> Arc<Self> {
        Arc::new(Signal {
            ping: AtomicU64::new(0),
            pong: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        })
    }
}

/// The helper thread: spins until a new ping, answers it, and wakes the task
/// from this thread. Spinning keeps the helper's side of the round trip to a
/// few cache-line transfers, so the round trip is the executor's wake path
/// plus its host's park / unpark.
fn spawn_helper(signal: Arc<Signal>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut last = 0;
        loop {
            let mut spins = 0u32;
            let ping = loop {
                let ping = signal.ping.load(Ordering::Acquire);
                if ping != last {
                    break ping;
                }
                spins = spins.wrapping_add(1);
                if spins < 1 << 14 {
                    std::hint::spin_loop();
                } else {
                    // Between two samples of a benchmark, or a busy machine.
                    thread::yield_now();
                }
            };
            if ping == STOP {
                return;
            }
            last = ping;
            signal.pong.store(ping, Ordering::Release);
            signal.waker.wake();
        }
    })
}

/// One round trip: register the waker, send ping `seq`, park (always: the
/// first poll returns `Pending`, so every round trip is one remote wake), and
/// finish when the helper's answer is there.
fn round_trip(signal: &Signal, seq: u64) -> impl Future<Output = ()> + '_ {
    let mut sent = false;
    poll_fn(move |cx| {
        signal.waker.register(cx.waker());
        if !sent {
            sent = true;
            signal.ping.store(seq, Ordering::Release);
            return Poll::Pending;
        }
        if signal.pong.load(Ordering::Acquire) == seq {
            Poll::Ready(())
        } else {
            // Spurious poll: the waker is registered again above.
            Poll::Pending
        }
    })
}

/// The task of the `remote_wake` group, the same for every executor.
async fn ping_pong(signal: Arc<Signal>, iters: u64) -> u64 {
    for seq in 1..=iters {
        round_trip(&signal, seq).await;
    }
    iters
}

/// The other task of the `busy` variant: keeps the executor runnable (wakes
/// itself and returns `Pending`) until `stop`.
async fn spin_until(stop: Arc<AtomicBool>) -> u64 {
    let mut polls = 0;
    while !stop.load(Ordering::Relaxed) {
        yield_once().await;
        polls += 1;
    }
    polls
}

/// What else the executor has to do while the ping-pong task is parked.
#[derive(Clone, Copy, Debug)]
enum Load {
    /// Nothing: the host runtime may park its thread until the wake (an OS
    /// sleep and wake-up, unless the wake lands before the host parks).
    Idle,
    /// A second task yields in a loop, so the host never parks: the round trip
    /// is the wake path proper plus the wait behind the other task's polls.
    Busy,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Busy => "busy",
        }
    }
}

type BoxedTask = std::pin::Pin<Box<dyn Future<Output = u64>>>;
type RemoteWakeFn = fn(u64, Load) -> Duration;

/// The `run_until` future of the `remote_wake` group, generic over the
/// executor: spawns the ping-pong task (and, when busy, the spinning task)
/// with `spawn`, awaits them, and returns the ping-pong task's output.
async fn remote_wake_body<H: Future>(
    signal: Arc<Signal>,
    iters: u64,
    load: Load,
    spawn: impl Fn(BoxedTask) -> H,
    output: impl Fn(H::Output) -> u64,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = match load {
        Load::Idle => None,
        Load::Busy => Some(spawn(Box::pin(spin_until(Arc::clone(&stop))))),
    };
    let done = output(spawn(Box::pin(ping_pong(signal, iters))).await);
    stop.store(true, Ordering::Relaxed);
    if let Some(spinner) = spinner {
        black_box(output(spinner.await));
    }
    done
}

/// Starts the helper, runs `run` (which must run `remote_wake_body` to
/// completion) under the timer, stops the helper.
fn remote_wake_with(iters: u64, run: impl FnOnce(Arc<Signal>) -> u64) -> Duration {
    let signal = Signal::new();
    let helper = spawn_helper(Arc::clone(&signal));
    let start = Instant::now();
    let done = run(Arc::clone(&signal));
    let elapsed = start.elapsed();
    signal.ping.store(STOP, Ordering::Release);
    helper.join().expect("helper thread");
    assert_eq!(black_box(done), iters);
    elapsed
}

fn remote_wake_clockworker(iters: u64, load: Load) -> Duration {
    let rt = tokio_rt();
    let executor = clockworker::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    remote_wake_with(iters, |signal| {
        rt.block_on(executor.run_until(remote_wake_body(
            signal,
            iters,
            load,
            |task| queue.spawn(task),
            |result| result.expect("task failed"),
        )))
    })
}

fn remote_wake_clockworker_026(iters: u64, load: Load) -> Duration {
    let rt = tokio_rt();
    let executor = clockworker026::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    remote_wake_with(iters, |signal| {
        rt.block_on(executor.run_until(remote_wake_body(
            signal,
            iters,
            load,
            |task| queue.spawn(task),
            |result| result.expect("task failed"),
        )))
    })
}

fn remote_wake_tokio(iters: u64, load: Load) -> Duration {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    remote_wake_with(iters, |signal| {
        rt.block_on(local.run_until(remote_wake_body(
            signal,
            iters,
            load,
            |task| local.spawn_local(task),
            |result| result.expect("task failed"),
        )))
    })
}

fn remote_wake_async_executor(iters: u64, load: Load) -> Duration {
    let executor = async_executor::LocalExecutor::new();
    remote_wake_with(iters, |signal| {
        smol::block_on(executor.run(remote_wake_body(
            signal,
            iters,
            load,
            |task| executor.spawn(task),
            |value| value,
        )))
    })
}

fn bench_remote_wake(c: &mut Criterion) {
    let mut group = c.benchmark_group("remote_wake");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for load in [Load::Idle, Load::Busy] {
        let implementations: [(&str, RemoteWakeFn); 4] = [
            ("clockworker", remote_wake_clockworker),
            ("tokio_localset", remote_wake_tokio),
            ("async_executor", remote_wake_async_executor),
            ("clockworker_0_2_6", remote_wake_clockworker_026),
        ];
        for (name, run) in implementations {
            group.bench_function(BenchmarkId::new(name, load.name()), |b| {
                b.iter_custom(|iters| run(iters, load))
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// queue_picking
// ---------------------------------------------------------------------------

/// Numbers of runnable queues. clockworker 0.2.6 refuses more than 256 queues
/// (`build()` errors: "Cannot have more than 256 queues (preemption mask
/// limit)"), so it skips N = 1024; N = 256 is there to compare the two at
/// 0.2.6's largest size.
const QUEUE_COUNTS: [usize; 4] = [1, 16, 256, 1024];
const CLOCKWORKER_026_MAX_QUEUES: usize = 256;

#[derive(Clone, Copy, Debug)]
enum Slices {
    /// Default `sched_latency` / `min_slice`.
    Default,
    /// `sched_latency` = `min_slice` = 1 ns: every poll ends the slice. (0.2.6
    /// still polls up to 4 times per slice before it looks at the clock.)
    EveryPoll,
}

impl Slices {
    fn name(self) -> &'static str {
        match self {
            Slices::Default => "default_slices",
            Slices::EveryPoll => "pick_every_poll",
        }
    }
}

type PickingFn = fn(u64, usize, Slices) -> Duration;

/// Actual (nanoseconds, polls) of every call, by benchmark name, warm-up
/// included: the source of the N=1024 / N=1 line printed after the group.
static PICKING_TOTALS: Mutex<Option<HashMap<String, (u128, u64)>>> = Mutex::new(None);

/// Yields per task so that `n` tasks make at least `iters` polls in all.
fn picking_yields(iters: u64, n: usize) -> u64 {
    iters.div_ceil(n as u64).max(1)
}

/// Records the actual run and returns the time of `iters` polls (the run may
/// have made more: at least one yield per queue).
fn picking_result(key: String, elapsed: Duration, polls: u64, iters: u64) -> Duration {
    let nanos = elapsed.as_nanos();
    {
        let mut totals = PICKING_TOTALS.lock().expect("totals");
        let entry = totals
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_insert((0, 0));
        entry.0 += nanos;
        entry.1 += polls;
    }
    let scaled = nanos * u128::from(iters) / u128::from(polls);
    Duration::from_nanos(u64::try_from(scaled).expect("duration"))
}

fn picking_mean_nanos(key: &str) -> Option<f64> {
    let totals = PICKING_TOTALS.lock().expect("totals");
    let &(nanos, polls) = totals.as_ref()?.get(key)?;
    (polls > 0).then(|| nanos as f64 / polls as f64)
}

fn picking_clockworker(iters: u64, n: usize, slices: Slices) -> Duration {
    let rt = tokio_rt();
    let mut builder = clockworker::ExecutorBuilder::new();
    for key in 0..n {
        builder = builder.with_queue(key, 1);
    }
    if let Slices::EveryPoll = slices {
        builder = builder
            .with_sched_latency(Duration::from_nanos(1))
            .with_min_slice(Duration::from_nanos(1));
    }
    let executor = builder.build().expect("executor");
    let yields = picking_yields(iters, n);
    let handles: Vec<_> = (0..n)
        .map(|key| executor.queue(key).expect("queue").spawn(yielder(yields)))
        .collect();
    let start = Instant::now();
    let sum = rt.block_on(executor.run_until(async move {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        sum
    }));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), yields * n as u64);
    let key = format!("clockworker/{}/{n}", slices.name());
    picking_result(key, elapsed, n as u64 * (yields + 1), iters)
}

fn picking_clockworker_026(iters: u64, n: usize, slices: Slices) -> Duration {
    let rt = tokio_rt();
    let mut builder = clockworker026::ExecutorBuilder::new();
    for key in 0..n {
        builder = builder.with_queue(key, 1);
    }
    if let Slices::EveryPoll = slices {
        builder = builder
            .with_sched_latency(Duration::from_nanos(1))
            .with_min_slice(Duration::from_nanos(1));
    }
    let executor = builder.build().expect("executor");
    let yields = picking_yields(iters, n);
    let handles: Vec<_> = (0..n)
        .map(|key| executor.queue(key).expect("queue").spawn(yielder(yields)))
        .collect();
    let start = Instant::now();
    let sum = rt.block_on(executor.run_until(async move {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        sum
    }));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), yields * n as u64);
    let key = format!("clockworker_0_2_6/{}/{n}", slices.name());
    picking_result(key, elapsed, n as u64 * (yields + 1), iters)
}

fn bench_queue_picking(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_picking");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let implementations: [(&str, PickingFn, usize); 2] = [
        ("clockworker", picking_clockworker, usize::MAX),
        (
            "clockworker_0_2_6",
            picking_clockworker_026,
            CLOCKWORKER_026_MAX_QUEUES,
        ),
    ];
    for slices in [Slices::Default, Slices::EveryPoll] {
        for (name, run, max_queues) in implementations {
            for n in QUEUE_COUNTS.into_iter().filter(|&n| n <= max_queues) {
                let id = BenchmarkId::new(format!("{name}/{}", slices.name()), n);
                group.bench_function(id, |b| b.iter_custom(|iters| run(iters, n, slices)));
            }
        }
    }
    group.finish();
    for slices in [Slices::Default, Slices::EveryPoll] {
        let one = picking_mean_nanos(&format!("clockworker/{}/1", slices.name()));
        let many = picking_mean_nanos(&format!("clockworker/{}/1024", slices.name()));
        if let (Some(one), Some(many)) = (one, many) {
            println!(
                "queue_picking/{}: clockworker per poll N=1024 / N=1 = {:.2} \
                 ({many:.1} ns / {one:.1} ns, mean of all calls incl. warm-up)",
                slices.name(),
                many / one,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// remote_spawn
// ---------------------------------------------------------------------------

type RemoteSpawnFn = fn(u64, Wait) -> Duration;

/// How the bench thread waits for a batch of tasks it spawned onto the host.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Awaits every handle, in spawn order, in one `block_on`.
    Join,
    /// Drops the handles at once; the batch's last task unparks the bench
    /// thread.
    Detached,
}

impl Wait {
    fn name(self) -> &'static str {
        match self {
            Wait::Join => "join",
            Wait::Detached => "detached",
        }
    }
}

/// The countdown of one batch of detached tasks: the task that takes it to
/// zero unparks the bench thread.
struct Countdown {
    left: AtomicU64,
    waiter: thread::Thread,
}

impl Countdown {
    fn new(tasks: u64) -> Arc<Self> {
        Arc::new(Countdown {
            left: AtomicU64::new(tasks),
            waiter: thread::current(),
        })
    }

    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiter.unpark();
        }
    }

    fn wait(&self) {
        while self.left.load(Ordering::Acquire) != 0 {
            thread::park();
        }
    }
}

/// The task of the `remote_spawn` group, the same for every host: counts
/// down the batch's countdown if detached, and returns 1.
async fn remote_task(countdown: Option<Arc<Countdown>>) -> u64 {
    if let Some(countdown) = countdown {
        countdown.done();
    }
    1
}

/// The bench thread's side, the same for every host: `iters` tasks in
/// batches of [`BATCH`], each batch spawned with `spawn` and waited for as
/// `wait` says. Returns the time it took.
fn remote_spawn_batches<H: Future>(
    iters: u64,
    wait: Wait,
    spawn: impl Fn(Option<Arc<Countdown>>) -> H,
    output: impl Fn(H::Output) -> u64,
) -> Duration {
    let mut handles = Vec::with_capacity(BATCH as usize);
    let mut sum = 0;
    let mut left = iters;
    let start = Instant::now();
    while left > 0 {
        let n = left.min(BATCH);
        match wait {
            Wait::Join => {
                handles.extend((0..n).map(|_| spawn(None)));
                sum += futures::executor::block_on(async {
                    let mut sum = 0;
                    for handle in handles.drain(..) {
                        sum += output(handle.await);
                    }
                    sum
                });
            }
            Wait::Detached => {
                let countdown = Countdown::new(n);
                for _ in 0..n {
                    drop(spawn(Some(Arc::clone(&countdown))));
                }
                countdown.wait();
                sum += n;
            }
        }
        left -= n;
    }
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

/// A Tokio current-thread runtime on a thread of its own, in `block_on`
/// until stopped (tasks spawned through its handle run meanwhile).
fn remote_spawn_tokio(iters: u64, wait: Wait) -> Duration {
    remote_spawn_tokio_on(iters, wait, tokio_rt)
}

/// The same on a runtime without IO and timers: there a remote spawn
/// unparks a condition variable (only if the runtime thread sleeps) instead
/// of writing to the IO driver's eventfd (at every spawn).
fn remote_spawn_tokio_no_io(iters: u64, wait: Wait) -> Duration {
    remote_spawn_tokio_on(iters, wait, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

fn remote_spawn_tokio_on(
    iters: u64,
    wait: Wait,
    runtime: fn() -> tokio::runtime::Runtime,
) -> Duration {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let host = thread::spawn(move || {
        let rt = runtime();
        handle_tx.send(rt.handle().clone()).expect("bench thread");
        rt.block_on(async {
            let _ = stop_rx.await;
        });
    });
    let handle = handle_rx.recv().expect("host thread");
    let elapsed = remote_spawn_batches(
        iters,
        wait,
        |countdown| handle.spawn(remote_task(countdown)),
        |result| result.expect("task failed"),
    );
    let _ = stop_tx.send(());
    host.join().expect("host thread");
    elapsed
}

/// How the clockworker case spawns.
#[derive(Clone, Copy, Debug)]
enum RemoteSpawn {
    /// `spawner.spawn(key, future)`.
    Spawn,
    /// `spawner.spawn_with(key, || future)`: the future is built on the host.
    SpawnWith,
}

/// Host turns and tasks spawned by the clockworker cases, every call
/// (warm-up included): the source of the line printed after the group.
static REMOTE_SPAWN_TURNS: Mutex<Option<HashMap<String, (u64, u64)>>> = Mutex::new(None);

/// A clockworker executor on a thread of its own, run as users will run it:
/// `executor.run()` inside a Tokio current-thread runtime and a `LocalSet`,
/// until a spawner shuts it down.
fn remote_spawn_clockworker(iters: u64, wait: Wait, how: RemoteSpawn) -> Duration {
    let (spawner_tx, spawner_rx) = std::sync::mpsc::channel();
    let host = thread::spawn(move || {
        let rt = tokio_rt();
        let local = tokio::task::LocalSet::new();
        let executor = clockworker::ExecutorBuilder::new()
            .with_queue(0u8, 1)
            .build()
            .expect("executor");
        spawner_tx.send(executor.spawner()).expect("bench thread");
        rt.block_on(local.run_until(executor.run()));
        executor.stats()
    });
    let spawner = spawner_rx.recv().expect("host thread");
    let elapsed = match how {
        RemoteSpawn::Spawn => remote_spawn_batches(
            iters,
            wait,
            |countdown| spawner.spawn(0, remote_task(countdown)).expect("queue"),
            |result| result.expect("task failed"),
        ),
        RemoteSpawn::SpawnWith => remote_spawn_batches(
            iters,
            wait,
            |countdown| {
                spawner
                    .spawn_with(0, move || remote_task(countdown))
                    .expect("queue")
            },
            |result| result.expect("task failed"),
        ),
    };
    spawner.shutdown(clockworker::Shutdown::Cancel);
    let stats = host.join().expect("host thread");
    assert_eq!(stats.completed, iters);
    let mut totals = REMOTE_SPAWN_TURNS.lock().expect("totals");
    let entry = totals
        .get_or_insert_with(HashMap::new)
        .entry(format!("{how:?}/{}", wait.name()))
        .or_insert((0, 0));
    entry.0 += stats.turns;
    entry.1 += stats.spawned;
    elapsed
}

fn bench_remote_spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("remote_spawn");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for wait in [Wait::Join, Wait::Detached] {
        let tokio: [(&str, RemoteSpawnFn); 2] = [
            ("tokio_handle_spawn", remote_spawn_tokio),
            ("tokio_handle_spawn_no_io", remote_spawn_tokio_no_io),
        ];
        for (name, run) in tokio {
            group.bench_function(BenchmarkId::new(name, wait.name()), |b| {
                b.iter_custom(|iters| run(iters, wait))
            });
        }
        for (name, how) in [
            ("clockworker_spawner", RemoteSpawn::Spawn),
            ("clockworker_spawner_spawn_with", RemoteSpawn::SpawnWith),
        ] {
            group.bench_function(BenchmarkId::new(name, wait.name()), |b| {
                b.iter_custom(|iters| remote_spawn_clockworker(iters, wait, how))
            });
        }
    }
    group.finish();
    let totals: Vec<(String, (u64, u64))> = REMOTE_SPAWN_TURNS
        .lock()
        .expect("totals")
        .iter()
        .flatten()
        .map(|(case, &counts)| (case.clone(), counts))
        .collect();
    // Only after a measurement run of the clockworker cases (`cargo test
    // --benches` runs each case once, with one task).
    let measured: u64 = totals.iter().map(|(_, (_, spawned))| spawned).sum();
    if measured < PAIRED_MIN_MEASURED {
        return;
    }
    let mut totals = totals;
    totals.sort();
    for (case, (turns, spawned)) in totals {
        println!(
            "remote_spawn: clockworker {case}: {:.1} host turns per batch of {BATCH} \
             ({turns} turns, {spawned} tasks, all calls incl. warm-up)",
            turns as f64 * BATCH as f64 / spawned as f64,
        );
    }
    for wait in [Wait::Join, Wait::Detached] {
        remote_spawn_paired(wait);
    }
}

/// Rounds and tasks per round of the paired measurement.
const PAIRED_ROUNDS: usize = 15;
const PAIRED_TASKS: u64 = 256 * BATCH;
/// Tasks the clockworker cases must have run for the paired measurement to
/// follow the group (a measurement run does millions).
const PAIRED_MIN_MEASURED: u64 = 1_000_000;

/// The ratios again, from rounds that alternate between the cases: on a
/// shared machine the load moves between criterion's benchmarks, which run
/// one after the other, and with it their ratio; here every case sees every
/// phase of it. Prints each case's median time per task over the rounds, and
/// clockworker's ratios to both Tokio cases.
fn remote_spawn_paired(wait: Wait) {
    type Case<'a> = (&'a str, &'a dyn Fn(u64, Wait) -> Duration);
    let cases: [Case<'_>; 4] = [
        ("tokio_handle_spawn", &remote_spawn_tokio),
        ("tokio_handle_spawn_no_io", &remote_spawn_tokio_no_io),
        ("clockworker_spawner", &|iters, wait| {
            remote_spawn_clockworker(iters, wait, RemoteSpawn::Spawn)
        }),
        ("clockworker_spawner_spawn_with", &|iters, wait| {
            remote_spawn_clockworker(iters, wait, RemoteSpawn::SpawnWith)
        }),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..PAIRED_ROUNDS {
        for ((_, run), samples) in cases.iter().zip(&mut samples) {
            let elapsed = run(PAIRED_TASKS, wait);
            samples.push(elapsed.as_nanos() as f64 / PAIRED_TASKS as f64);
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|samples| {
            samples.sort_by(f64::total_cmp);
            samples[samples.len() / 2]
        })
        .collect();
    let figures: Vec<String> = cases
        .iter()
        .zip(&medians)
        .map(|((name, _), median)| format!("{name} {median:.0} ns"))
        .collect();
    println!(
        "remote_spawn paired/{}: median per task over {PAIRED_ROUNDS} alternating rounds \
         of {PAIRED_TASKS} tasks: {}",
        wait.name(),
        figures.join(", "),
    );
    for (name, median) in cases.iter().zip(&medians).skip(2).map(|((n, _), m)| (n, m)) {
        println!(
            "remote_spawn paired/{}: {name} / tokio_handle_spawn = {:.2}, \
             / tokio_handle_spawn_no_io = {:.2}",
            wait.name(),
            median / medians[0],
            median / medians[1],
        );
    }
}

criterion_group!(
    benches,
    bench_spawn_join,
    bench_poll,
    bench_remote_wake,
    bench_queue_picking,
    bench_remote_spawn
);
criterion_main!(benches);
