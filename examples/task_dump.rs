//! Finding the request that hangs: a live task dump, taken from another
//! thread while the executor serves, and task hooks.
//!
//! ```sh
//! cargo run --example task_dump
//! ```
//!
//! A server takes a request every millisecond (a Tokio timer stands in for
//! its socket) and handles each in a task of the "requests" queue, while a
//! "compaction" task runs in the background. One handler, request 42, waits
//! for a reply on a channel that nobody will ever send to: the kind of hang
//! no log shows, since nothing happens. An operator's thread (an admin
//! endpoint, a signal handler) asks the executor for a task dump through its
//! `Spawner` a second later; the dump lists every live task, and
//! `waiting_for` picks out those that have waited longest since they last
//! ran. The executor answers at its next poll boundary, while it serves.
//!
//! The task hooks count spawns and log panicked tasks as they end.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{ExecutorBuilder, TaskEnding, yield_maybe};

fn main() {
    let spawned = Rc::new(Cell::new(0u64));
    let count = Rc::clone(&spawned);
    let executor = ExecutorBuilder::new()
        .with_queue("requests", 8)
        .with_queue("compaction", 1)
        .on_task_spawn(move |_| count.set(count.get() + 1))
        .on_task_terminate(|task, ending| {
            if ending == TaskEnding::Panicked {
                eprintln!("{task} panicked");
            }
        })
        .build()
        .unwrap();
    let requests = executor.queue("requests").unwrap();
    let compaction = executor.queue("compaction").unwrap();

    // The operator, on another thread.
    let spawner = executor.spawner();
    let operator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        spawner.tasks(Duration::from_secs(5))
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dump = runtime.block_on(executor.run_until(async move {
        compaction.task().name("compaction").spawn(async {
            loop {
                std::hint::black_box((0..10_000u64).sum::<u64>());
                yield_maybe().await;
            }
        });
        let mut lost_replies = Vec::new();
        let mut arrivals = tokio::time::interval(Duration::from_millis(1));
        for request in 0u64.. {
            arrivals.tick().await;
            let (reply, replied) = futures::channel::oneshot::channel::<()>();
            if request == 42 {
                // The bug: the reply is never sent, nor the sender dropped.
                lost_replies.push(reply);
            } else {
                let _ = reply.send(());
            }
            requests
                .task()
                .name(format!("request {request}"))
                .spawn(async move {
                    let _ = replied.await;
                });
            if operator.is_finished() {
                break;
            }
        }
        operator.join().unwrap()
    }));

    let dump = dump.expect("the executor answers while it runs");
    println!(
        "{} live tasks, {} spawned; waiting for more than 100 ms:",
        dump.len(),
        spawned.get()
    );
    for task in dump.waiting_for(Duration::from_millis(100)) {
        println!(
            "  {} {:?} in {:?}, polled {} times, waiting for {:?}, spawned at {}",
            task.id,
            task.name.as_deref().unwrap_or("-"),
            task.queue,
            task.polls,
            task.in_state,
            task.location
        );
    }
    println!("\nThe whole dump:\n{dump}");
}
