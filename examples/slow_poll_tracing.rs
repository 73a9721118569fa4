//! Finding the task that blocks the executor's thread: slow-poll reports,
//! the watchdog, and the `tracing` feature.
//!
//! ```sh
//! cargo run --example slow_poll_tracing --features tracing
//! ```
//!
//! A task that makes a blocking call (a synchronous file read, a lock, a long
//! computation) holds the one thread every other task needs. Clockworker
//! tells you which task it was, two ways:
//!
//! - `on_slow_poll(threshold, callback)`: after a poll that took at least
//!   `threshold` *returns*, on the executor's thread, between polls;
//! - `with_watchdog(threshold, callback)`: *while* a poll is still running
//!   past `threshold`, from a watchdog thread: the way to catch a task that
//!   never returns.
//!
//! With the `tracing` feature, each report is also a `tracing` WARN event,
//! printed here by `tracing_subscriber::fmt`. Reports carry the queue, the
//! task's id, its name (`queue.task().name(..)`) and where it was spawned.

use std::time::{Duration, Instant};

use clockworker::ExecutorBuilder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Queue {
    Requests,
    Maintenance,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Print `tracing` events (INFO and up) on stdout. Installed globally, so
    // that the watchdog thread's warnings are printed too.
    tracing_subscriber::fmt().with_target(false).init();

    let start = Instant::now();
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Requests, 8)
        .with_queue(Queue::Maintenance, 1)
        // Runs on the executor's thread after the slow poll returned: it may
        // touch `!Send` state, spawn tasks or read statistics.
        .on_slow_poll(Duration::from_millis(5), move |poll| {
            // The fields one by one; `{poll}` prints them all in one line.
            println!(
                "[{:>3} ms] on_slow_poll: queue {:?}, {} named {:?}, spawned at {}, took {:?}",
                start.elapsed().as_millis(),
                poll.queue,
                poll.task,
                poll.name.unwrap_or("-"),
                poll.location,
                poll.duration,
            );
        })
        // Runs on the watchdog thread (so the callback must be `Send`), once
        // per stalled poll, while the task still holds the thread.
        .with_watchdog(Duration::from_millis(50), move |stall| {
            println!("[{:>3} ms] watchdog: {stall}", start.elapsed().as_millis());
        })
        .build()
        .expect("valid configuration");
    let requests = executor.queue(Queue::Requests).unwrap();
    let maintenance = executor.queue(Queue::Maintenance).unwrap();

    executor
        .run_until(async {
            // A request handler with a blocking call in it: one poll of
            // about 20 ms. Reported once it returns (20 ms >= 5 ms), not by
            // the watchdog (20 ms < 50 ms).
            let handler = requests.task().name("GET /report").spawn(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                std::thread::sleep(Duration::from_millis(20));
            });
            handler.await.unwrap();

            // A task that blocks for 200 ms: the watchdog reports it after
            // about 50 ms, while it runs; when it finally returns it is a
            // slow poll too.
            let compaction = maintenance.task().name("compaction L0->L1").spawn(async {
                std::thread::sleep(Duration::from_millis(200));
            });
            compaction.await.unwrap();
        })
        .await;

    // The slow polls are counted in the queue statistics as well.
    for (queue, stats) in executor.all_queue_stats() {
        println!(
            "{queue:?}: {} polls, {} slow",
            stats.polls, stats.slow_polls
        );
    }
}
