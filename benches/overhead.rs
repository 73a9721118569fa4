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
//!
//! Every runtime and executor is built once per `iter_custom` call, outside
//! the timed region. Both clockworkers and the `LocalSet` run inside a Tokio
//! current-thread runtime's `block_on`; `LocalExecutor` runs inside
//! `futures-lite`'s `block_on` (its usual host).

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::task::Poll;
use std::time::{Duration, Instant};

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

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Wakes the current task and returns `Pending` once, then `Ready`. The same
/// future for every executor, so only executor overhead differs.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// The task of the `poll` group: `yields` self-wakes, so `yields + 1` polls.
async fn yielder(yields: u64) -> u64 {
    for _ in 0..yields {
        yield_once().await;
    }
    yields
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
    let rt = tokio_rt();
    let executor = clockworker::ExecutorBuilder::new()
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
    let implementations: [(&str, PollFn); 4] = [
        ("clockworker", poll_clockworker),
        ("tokio_localset", poll_tokio),
        ("async_executor", poll_async_executor),
        ("clockworker_0_2_6", poll_clockworker_026),
    ];
    for (name, run) in implementations {
        group.bench_function(name, |b| b.iter_custom(run));
    }
    group.finish();
}

criterion_group!(benches, bench_spawn_join, bench_poll);
criterion_main!(benches);
