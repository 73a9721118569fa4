//! Per-poll cost of each built-in per-queue [`Scheduler`]: the same self-waking
//! workload on a one-queue executor built with
//! `ExecutorBuilder::new().with_queue_scheduler(0, 1, S)`, for `S` in
//! [`RunnableFifo`], [`ArrivalFifo`], [`LAS`], [`GroupFair`] and [`Edf`].
//!
//! Run with: `cargo bench --bench schedulers`
//!
//! One group, `scheduler_poll`, reports time per element, i.e. per poll, as
//! `scheduler_poll/<scheduler>/<variant>`:
//!
//! - `single`: one ungrouped task that yields (wakes itself and returns
//!   `Pending`) N times; total time / N is the cost of one poll of a
//!   self-waking task, exactly as the `poll` group of `benches/overhead.rs`
//!   measures it (the one extra poll that completes the task, and spawning
//!   it, amortize away).
//! - `grouped_16x4`: [`TASKS`] self-waking tasks in [`GROUPS`] groups (task
//!   `i` in group `i % GROUPS`, spawned with `queue.group(g).spawn(..)`) that
//!   yield N times in all; total time / N is the cost of one poll when the
//!   scheduler has to choose among several runnable tasks and groups (the
//!   [`TASKS`] completing polls and spawns amortize away).
//! - `ungrouped_16`: the same [`TASKS`] tasks without groups: under [`LAS`]
//!   and [`GroupFair`] each task is its own group.
//!
//! `las_exact` and `group_fair_exact` are [`LAS`] and [`GroupFair`] with a
//! granularity of zero, ordering exactly at every poll: the difference is
//! what taking turns (the default 10 µs granularity) saves.
//!
//! The Tokio current-thread runtime and the executor are built once per
//! `iter_custom` call, outside the timed region; the tasks are spawned and run
//! with `rt.block_on(executor.run_until(..))` inside it, as in
//! `benches/overhead.rs`. No task has a deadline, so [`Edf`] runs them in its
//! FIFO order.
//!
//! Goal of the issue: the per-poll cost under [`LAS`] and under [`GroupFair`]
//! must be at most 1.3× the per-poll cost under [`RunnableFifo`].

mod common;
use common::{time_self_waking, tokio_rt, yielder};
use std::hint::black_box;
use std::time::{Duration, Instant};

use clockworker::{ArrivalFifo, Edf, ExecutorBuilder, GroupFair, LAS, RunnableFifo, Scheduler};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};

/// Self-waking tasks in the `grouped_16x4` variant.
const TASKS: u64 = 16;
/// Groups those tasks are spread over.
const GROUPS: u64 = 4;

/// `iters` polls of one ungrouped self-waking task under `scheduler`.
fn poll_single<S: Scheduler>(iters: u64, scheduler: S) -> Duration {
    time_self_waking(
        iters,
        ExecutorBuilder::new().with_queue_scheduler(0, 1, scheduler),
    )
}

/// `iters` polls in all, spread over [`TASKS`] self-waking tasks, in `groups`
/// groups or ungrouped, under `scheduler`.
fn poll_many<S: Scheduler>(iters: u64, scheduler: S, groups: Option<u64>) -> Duration {
    let rt = tokio_rt();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let start = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            // The first `iters % TASKS` tasks take one extra yield.
            let yields = iters / TASKS + u64::from(i < iters % TASKS);
            match groups {
                Some(groups) => queue.group(i % groups).spawn(yielder(yields)),
                None => queue.spawn(yielder(yields)),
            }
        })
        .collect();
    let sum = rt.block_on(executor.run_until(async move {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        sum
    }));
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}

/// Both variants under the scheduler that `make` builds.
fn bench_scheduler<S: Scheduler>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    make: fn() -> S,
) {
    group.bench_function(BenchmarkId::new(name, "single"), |b| {
        b.iter_custom(|iters| poll_single(iters, make()))
    });
    group.bench_function(BenchmarkId::new(name, "grouped_16x4"), |b| {
        b.iter_custom(|iters| poll_many(iters, make(), Some(GROUPS)))
    });
    group.bench_function(BenchmarkId::new(name, "ungrouped_16"), |b| {
        b.iter_custom(|iters| poll_many(iters, make(), None))
    });
}

fn bench_scheduler_poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler_poll");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    bench_scheduler(&mut group, "runnable_fifo", RunnableFifo::new);
    bench_scheduler(&mut group, "arrival_fifo", ArrivalFifo::new);
    bench_scheduler(&mut group, "las", LAS::new);
    bench_scheduler(&mut group, "group_fair", GroupFair::new);
    bench_scheduler(&mut group, "edf", Edf::new);
    // Ordering exactly at every poll: what the default granularity saves.
    bench_scheduler(&mut group, "las_exact", || {
        LAS::new().with_granularity(Duration::ZERO)
    });
    bench_scheduler(&mut group, "group_fair_exact", || {
        GroupFair::new().with_granularity(Duration::ZERO)
    });
    group.finish();
}

criterion_group!(benches, bench_scheduler_poll);
criterion_main!(benches);
