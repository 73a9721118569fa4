//! The examples of clockworker 0.1's README, run as tests. That README ran
//! the executor as a task of the host (`run()` spawned on a `LocalSet`) rather
//! than with `run_until`. Its three-argument `with_queue(key, weight, LAS::new())`
//! is `with_queue_scheduler` here; the two-argument `with_queue` of the later
//! README keeps the default FIFO order.

use clockworker::{ArrivalFifo, ExecutorBuilder, JoinError, LAS, RunnableFifo, yield_maybe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::task::LocalSet;
use tokio::time::{Duration, sleep};

#[tokio::test(flavor = "current_thread")]
async fn basic_usage() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let executor = ExecutorBuilder::new()
                .with_queue_scheduler(0, 1, LAS::new())
                .build()
                .unwrap();
            let queue = executor.queue(0).unwrap();
            // Spawn executor in background
            local.spawn_local(async move {
                executor.run().await;
            });
            let handle = queue.spawn(async {
                println!("Hello from clockworker!");
                42
            });
            let result = handle.await;
            assert_eq!(result.unwrap(), 42);
        })
        .await;
}

#[derive(Debug, PartialEq, Eq, Hash, Copy, Clone)]
enum Queue {
    Foreground,
    Background,
}

#[tokio::test(flavor = "current_thread")]
async fn multiple_queues_with_different_weights() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let executor = ExecutorBuilder::new()
                .with_queue_scheduler(Queue::Foreground, 8, LAS::new())
                .with_queue_scheduler(Queue::Background, 1, LAS::new())
                .build()
                .unwrap();
            let executor_clone = executor.clone();
            local.spawn_local(async move {
                executor_clone.run().await;
            });
            let high_count = Arc::new(AtomicU32::new(0));
            let low_count = Arc::new(AtomicU32::new(0));
            let high_queue = executor.queue(Queue::Foreground).unwrap();
            let low_queue = executor.queue(Queue::Background).unwrap();
            high_queue.spawn({
                let count = high_count.clone();
                async move {
                    loop {
                        count.fetch_add(1, Ordering::Relaxed);
                        yield_maybe().await;
                    }
                }
            });
            low_queue.spawn({
                let count = low_count.clone();
                async move {
                    loop {
                        count.fetch_add(1, Ordering::Relaxed);
                        yield_maybe().await;
                    }
                }
            });
            sleep(Duration::from_millis(100)).await;
            let (high, low) = (
                high_count.load(Ordering::Relaxed),
                low_count.load(Ordering::Relaxed),
            );
            println!("High: {high}, Low: {low}");
            // Shares are checked exactly in tests/scheduling.rs; here, on a
            // real clock, only that both ran and the heavier queue ran more.
            assert!(low > 0 && high > low, "high {high}, low {low}");
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn task_cancellation() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let executor = ExecutorBuilder::new()
                .with_queue_scheduler(0, 1, LAS::new())
                .build()
                .unwrap();
            let executor_clone = executor.clone();
            local.spawn_local(async move {
                executor_clone.run().await;
            });
            let queue = executor.queue(0).unwrap();
            let handle = queue.spawn(async {
                loop {
                    println!("Running...");
                    sleep(Duration::from_millis(100)).await;
                }
            });
            sleep(Duration::from_millis(500)).await;
            handle.abort();
            let result = handle.await;
            assert!(matches!(result, Err(JoinError::Cancelled)));
            println!("Task cancelled: {:?}", result);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn panic_handling() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let executor = ExecutorBuilder::new()
                .with_queue_scheduler(0, 1, LAS::new())
                .with_panic_on_task_panic(false)
                .build()
                .unwrap();
            let executor_clone = executor.clone();
            local.spawn_local(async move {
                executor_clone.run().await;
            });
            let queue = executor.queue(0).unwrap();
            let handle = queue.spawn(async {
                panic!("Something went wrong!");
            });
            match handle.await {
                Err(JoinError::Panic(err)) => {
                    println!("Task panicked: {}", err);
                    assert_eq!(err.message(), "Something went wrong!");
                }
                other => panic!("expected a panic, got {other:?}"),
            }
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn task_grouping() {
    let local = LocalSet::new();
    local
        .run_until(async {
            let executor = ExecutorBuilder::new()
                .with_queue_scheduler(0, 1, LAS::new())
                .build()
                .unwrap();
            let executor_clone = executor.clone();
            local.spawn_local(async move {
                executor_clone.run().await;
            });
            let queue = executor.queue(0).unwrap();
            // Group tasks by tenant ID. The hash of group IDs is passed to the queue
            // scheduler, so you can configure any behavior you want.
            let a = queue.group("tenant1").spawn(async { /* some task */ });
            let b = queue.group("tenant2").spawn(async { /* some task */ });
            a.await.unwrap();
            b.await.unwrap();
        })
        .await;
}

#[test]
fn choosing_a_scheduler() {
    let _executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, LAS::new())
        .build()
        .unwrap();
    let _executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, RunnableFifo::new())
        .build()
        .unwrap();
    let _executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, ArrivalFifo::new())
        .build()
        .unwrap();
}
