//! Tokio's cooperative budget (feature `tokio`): tasks that use Tokio
//! resources inside the executor behave as they would as Tokio tasks.
//!
//! Tokio grants each poll of one of *its* tasks 128 operations; the executor
//! is one such task, so without care all the tasks of one turn share a grant,
//! and every task after the first is refused with data ready. These tests
//! count polls and (on a manual clock) CPU shares: no timing.
#![cfg(feature = "tokio")]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{Clock, ExecutorBuilder};
use tokio::sync::mpsc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A channel holding `items` values, its sender dropped: drained, it ends.
fn filled(items: u32) -> mpsc::UnboundedReceiver<u32> {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..items {
        tx.send(i).unwrap();
    }
    rx
}

#[test]
fn each_task_spends_a_budget_of_its_own_instead_of_being_refused_with_data_ready() {
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        // Out of the way: turns end by the budget, not by time.
        .with_driver_yield(Duration::from_secs(1))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let mut rx = filled(1_000);
            queue.spawn(async move {
                let mut received = 0;
                while rx.recv().await.is_some() {
                    received += 1;
                }
                received
            })
        })
        .collect();
    let received = rt.block_on(executor.run_until(futures::future::join_all(tasks)));
    assert!(received.into_iter().all(|r| r.unwrap() == 1_000));
    let stats = executor.stats();
    // As Tokio tasks: 1,001 receives in grants of 128 are 8 polls per task.
    // Sharing one grant per turn, a task is refused again and again while
    // the others spend the grant (tens of thousands of polls).
    assert!(stats.polls <= 2 * 100 * 8, "{} polls\n{stats}", stats.polls);
    assert!(stats.budget_yields >= 100 * 7, "{stats}");
}

#[test]
fn weights_hold_for_tasks_on_always_ready_channels() {
    let rt = runtime();
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 99)
        .with_queue("bg", 1)
        // Out of the way: every turn must end by the budget, not by time.
        .with_driver_yield(Duration::from_secs(1))
        .with_clock(clock)
        .build()
        .unwrap();
    let bg_items = Rc::new(Cell::new(0u32));
    let mut bg_rx = filled(1_000_000);
    executor.queue("bg").unwrap().spawn({
        let (bg_items, hand) = (bg_items.clone(), hand.clone());
        async move {
            while bg_rx.recv().await.is_some() {
                hand.advance(Duration::from_micros(1));
                bg_items.set(bg_items.get() + 1);
            }
        }
    });
    let mut fg_rx = filled(99_000);
    let fg = executor.queue("fg").unwrap().spawn(async move {
        while fg_rx.recv().await.is_some() {
            hand.advance(Duration::from_micros(1));
        }
    });
    rt.block_on(executor.run_until(fg)).unwrap();
    // Every item costs the same 1 µs: the items are the CPU shares. Within
    // two points of 99 % / 1 %.
    let bg_share = f64::from(bg_items.get()) / f64::from(99_000 + bg_items.get());
    assert!(bg_share <= 0.03, "background share {bg_share}");
    assert!(bg_share >= 0.005, "the background was starved: {bg_share}");
}

#[test]
fn a_run_until_future_that_spends_every_budget_does_not_starve_the_tasks() {
    // Like an accept loop with a backlog: the `run_until` future spends the
    // whole grant each time it is polled. The tasks must still run.
    let rt = runtime();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let mut rx = filled(1_000);
    let task = queue.spawn(async move {
        let mut received = 0;
        while rx.recv().await.is_some() {
            received += 1;
        }
        received
    });
    let done = Rc::new(Cell::new(false));
    let spins = rt.block_on(executor.run_until({
        let done = done.clone();
        async move {
            let mut spins = 0u64;
            let mut task = std::pin::pin!(task);
            loop {
                tokio::task::consume_budget().await;
                spins += 1;
                if let std::task::Poll::Ready(received) = futures::poll!(task.as_mut()) {
                    assert_eq!(received.unwrap(), 1_000);
                    done.set(true);
                    return spins;
                }
                assert!(spins < 10_000_000, "the task never finished");
            }
        }
    }));
    assert!(done.get());
    assert!(executor.stats().polls > 0, "{spins}");
}

#[test]
fn budget_yields_do_not_reset_the_hosts_deadline() {
    // A task on an always-ready channel spends a grant in 64 µs: every turn
    // ends by the budget before `driver_yield` (100 µs). Those turns come
    // back at once, maybe without the host's reactor running (Tokio, with
    // the executor as a spawned task), so the deadline counts across them:
    // at least every second turn is a host yield.
    let rt = runtime();
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_driver_yield(Duration::from_micros(100))
        .with_clock(clock)
        .build()
        .unwrap();
    let mut rx = filled(10_000);
    let task = executor.queue(0).unwrap().spawn(async move {
        while rx.recv().await.is_some() {
            hand.advance(Duration::from_nanos(500));
        }
    });
    rt.block_on(executor.run_until(task)).unwrap();
    let stats = executor.stats();
    assert!(stats.budget_yields > 10, "{stats}");
    assert!(stats.driver_yields * 2 >= stats.budget_yields, "{stats}");
}
