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
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
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
    assert!(bg_items.get() > 0, "the background was starved");
}
