//! The executor's hot path in a loop, for profilers: the same work as
//! `benches/overhead.rs`'s `poll` and `spawn_join/*/batch` cases, as a
//! plain program whose instructions `valgrind --tool=callgrind` can count
//! and whose time `perf` can attribute, with switches that take parts of a
//! poll's cost away one at a time.
//!
//! ```sh
//! cargo build --release --example hot_path
//! B=target/release/examples/hot_path
//! time $B poll 20000000                  # one self-waking task, 20 M polls
//! time $B poll 20000000 --tokio          # the same on a Tokio LocalSet
//! time $B spawn 5120000                  # spawn 256 tasks, await them, again
//! time $B spawn 5120000 --async-executor
//! # What a part of a poll costs: the difference with it taken away.
//! time $B poll 20000000 --no-stats --manual-clock --long-turns
//! # Instructions per poll: the difference of two runs, divided by 100,000.
//! valgrind --tool=callgrind $B poll 100000; valgrind --tool=callgrind $B poll 200000
//! ```
//!
//! Switches (clockworker only):
//!
//! - `--no-stats`: `with_statistics(false)`, no per-poll statistics;
//! - `--manual-clock`: a `Clock::manual()` that never moves, so a clock
//!   read is a load instead of the TSC (the scheduling still runs, on
//!   polls that all take no time);
//! - `--long-turns`: `max_polls_per_yield` of 100,000 instead of 61, so the
//!   executor hands the thread back to Tokio (and lets its IO driver run)
//!   about never.
//!
//! Clockworker runs, as in the benchmarks, in a Tokio current-thread
//! runtime's `block_on(executor.run_until(..))`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wakes its task and returns `Pending` once, then `Ready`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A task that yields `polls` times.
async fn yielder(polls: u64) -> u64 {
    for _ in 0..polls {
        YieldOnce(false).await;
    }
    polls
}

/// Tasks spawned before they are awaited, as in `spawn_join/*/batch`.
const BATCH: u64 = 256;

/// Spawns `n` tasks, `BATCH` at a time, awaiting each batch; returns the
/// sum of their outputs (`n`).
async fn spawn_join<H, F>(n: u64, spawn: impl Fn() -> H, output: impl Fn(H) -> F) -> u64
where
    F: Future<Output = u64>,
{
    let mut sum = 0;
    for _ in 0..n.div_ceil(BATCH) {
        let handles: Vec<H> = (0..BATCH).map(|_| spawn()).collect();
        for handle in handles {
            sum += output(handle).await;
        }
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: hot_path <poll|spawn> <count> [--tokio | --async-executor] \
                 [--no-stats] [--manual-clock] [--long-turns]";
    let (Some(mode), Some(count)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(n) = count.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let sum = match (mode.as_str(), has("--tokio"), has("--async-executor")) {
        ("poll", true, _) => {
            let local = tokio::task::LocalSet::new();
            let handle = local.spawn_local(yielder(n));
            rt.block_on(local.run_until(handle)).expect("task")
        }
        ("spawn", true, _) => {
            let local = tokio::task::LocalSet::new();
            rt.block_on(local.run_until(spawn_join(
                n,
                || tokio::task::spawn_local(async { 1 }),
                |handle| async { handle.await.expect("task") },
            )))
        }
        ("poll", _, true) => {
            let executor = async_executor::LocalExecutor::new();
            smol::block_on(executor.run(executor.spawn(yielder(n))))
        }
        ("spawn", _, true) => {
            let executor = async_executor::LocalExecutor::new();
            smol::block_on(executor.run(spawn_join(n, || executor.spawn(async { 1 }), |task| task)))
        }
        (mode @ ("poll" | "spawn"), false, false) => {
            let mut builder = clockworker::ExecutorBuilder::new()
                .with_queue(0u8, 1)
                .with_statistics(!has("--no-stats"));
            let _hand;
            if has("--manual-clock") {
                let (clock, hand) = clockworker::Clock::manual();
                _hand = hand;
                builder = builder.with_clock(clock);
            }
            if has("--long-turns") {
                builder = builder.with_max_polls_per_yield(100_000);
            }
            let executor = builder.build().expect("executor");
            let queue = executor.queue(0).expect("queue");
            if mode == "poll" {
                let handle = queue.spawn(yielder(n));
                rt.block_on(executor.run_until(handle)).expect("task")
            } else {
                rt.block_on(executor.run_until(spawn_join(
                    n,
                    || queue.spawn(async { 1 }),
                    |handle| async { handle.await.expect("task") },
                )))
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    println!("{sum}");
}
