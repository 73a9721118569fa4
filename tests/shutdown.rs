//! Graceful shutdown: drain (with and without a deadline) and cancel, from
//! the executor and from other threads; `run` returns once it is done.

mod common;
use common::{DropLedger, live_tasks, yield_n, yield_once};

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use clockworker::{Clock, ExecutorBuilder, JoinError, Shutdown};
use futures::channel::oneshot;
use futures::executor::block_on;

const DRAIN: Shutdown = Shutdown::Drain { deadline: None };

/// Drain: tasks alive at the shutdown run to completion (one of them waits
/// for a message sent after the shutdown), and `run` returns after them.
#[test]
fn drain_lets_live_tasks_finish_then_run_returns() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let (send, receive) = oneshot::channel::<u32>();
    let waiting = queue.spawn(async move { receive.await.unwrap() + 1 });
    let busy = queue.spawn(async {
        yield_n(100).await;
        "busy"
    });
    executor.shutdown(DRAIN);
    assert!(!executor.is_shut_down());
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5));
        send.send(41).unwrap();
    });
    block_on(executor.run());
    sender.join().unwrap();
    assert!(executor.is_shut_down());
    assert_eq!(block_on(waiting).unwrap(), 42);
    assert_eq!(block_on(busy).unwrap(), "busy");
    assert_eq!(executor.stats().cancelled, 0);
}

/// While draining, the executor's own tasks may spawn (their children are
/// part of the work being drained); a spawn from outside a turn is refused.
#[test]
fn draining_accepts_spawns_from_its_own_tasks_only() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let inner_queue = queue.clone();
    let parent = queue.spawn(async move {
        yield_once().await;
        inner_queue.spawn(async { 7 }).await
    });
    executor.shutdown(DRAIN);
    let outside = queue.spawn(async { 1 });
    assert!(matches!(block_on(outside), Err(JoinError::Cancelled)));
    block_on(executor.run());
    assert_eq!(block_on(parent).unwrap().unwrap(), 7);
    // Done: nothing is accepted any more.
    assert!(matches!(
        block_on(queue.spawn(async { 2 })),
        Err(JoinError::Cancelled)
    ));
}

/// Cancel: every live task (queued or idle) is aborted, its future dropped
/// on the executor's thread; its handle reports `Cancelled`; `run` returns.
#[test]
fn cancel_drops_every_task_on_the_executor_thread() {
    struct OnDrop(Rc<Cell<Option<thread::ThreadId>>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.set(Some(thread::current().id()));
        }
    }
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 1)
        .build()
        .unwrap();
    let dropped_on = Rc::new(Cell::new(None));
    let guard = OnDrop(Rc::clone(&dropped_on));
    let idle = executor.queue("a").unwrap().spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    let spinning = executor.queue("b").unwrap().spawn(async {
        loop {
            yield_once().await;
        }
    });
    block_on(executor.run_until(yield_n(10)));
    executor.shutdown(Shutdown::Cancel);
    block_on(executor.run());
    assert_eq!(dropped_on.get(), Some(thread::current().id()));
    assert!(matches!(block_on(idle), Err(JoinError::Cancelled)));
    assert!(matches!(block_on(spinning), Err(JoinError::Cancelled)));
    let stats = executor.stats();
    assert_eq!((stats.cancelled, stats.live_tasks), (2, 0));
}

/// A drain deadline on the manual clock: before it, nothing is cancelled;
/// once the clock passes it, the tasks still live are.
#[test]
fn drain_deadline_cancels_what_is_left() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let quick = queue.spawn(async {
        yield_n(3).await;
        "quick"
    });
    let hand2 = hand.clone();
    let slow = queue.spawn(async move {
        // Each poll "uses" 1 ms of the executor's clock, forever.
        loop {
            hand2.advance(Duration::from_millis(1));
            yield_once().await;
        }
    });
    executor.shutdown(Shutdown::Drain {
        deadline: Some(Duration::from_millis(50)),
    });
    block_on(executor.run());
    assert_eq!(block_on(quick).unwrap(), "quick");
    assert!(matches!(block_on(slow), Err(JoinError::Cancelled)));
    let stats = executor.queue_stats(0).unwrap();
    // Polled until the deadline passed: about 50 polls of 1 ms, no fewer.
    assert!(stats.polls >= 50 + 4, "{} polls", stats.polls);
    assert!(stats.cpu_time >= Duration::from_millis(50));
    assert!(stats.cpu_time <= Duration::from_millis(52));
}

/// Shutdown requested from another thread through the spawner, while the
/// executor runs on its own thread: `run` returns there, and the tasks'
/// handles resolve on the requesting thread.
#[test]
fn shutdown_through_the_spawner_from_another_thread() {
    for mode in [DRAIN, Shutdown::Cancel] {
        let (spawner_out, spawner_in) = std::sync::mpsc::channel();
        let release = Arc::new(AtomicBool::new(false));
        let release2 = Arc::clone(&release);
        let worker = thread::spawn(move || {
            let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
            spawner_out.send(executor.spawner()).unwrap();
            block_on(executor.run());
            executor.stats()
        });
        let spawner = spawner_in.recv().unwrap();
        let ledger = DropLedger::new(100);
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (token, release) = (ledger.token(i), Arc::clone(&release2));
                spawner
                    .spawn(0, async move {
                        let _token = token;
                        while !release.load(Ordering::SeqCst) {
                            yield_once().await;
                        }
                        i
                    })
                    .unwrap()
            })
            .collect();
        spawner.shutdown(mode);
        let refused = spawner.spawn(0, async { 0 }).unwrap();
        assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));
        release.store(true, Ordering::SeqCst);
        let results: Vec<_> = handles.into_iter().map(block_on).collect();
        let stats = worker.join().unwrap();
        assert_eq!(ledger.not_once(), Vec::<(usize, usize)>::new());
        if mode == DRAIN {
            assert!(
                results
                    .iter()
                    .enumerate()
                    .all(|(i, r)| *r.as_ref().unwrap() == i)
            );
            assert_eq!(stats.completed, 100);
        } else {
            assert!(
                results
                    .iter()
                    .all(|r| r.is_ok() || r.as_ref().unwrap_err().is_cancelled())
            );
            assert_eq!(stats.completed + stats.cancelled, 100);
        }
        assert_eq!(stats.live_tasks, 0);
    }
}

/// An idle executor with nothing to do shuts down at once; a drain can be
/// hastened into a cancel; shutting down twice is harmless.
#[test]
fn shutdown_edge_cases() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    executor.shutdown(DRAIN);
    executor.shutdown(DRAIN);
    block_on(executor.run());
    assert!(executor.is_shut_down());
    executor.shutdown(Shutdown::Cancel);
    block_on(executor.run());

    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let stuck = executor
        .queue(0)
        .unwrap()
        .spawn(std::future::pending::<()>());
    executor.shutdown(DRAIN);
    // Nothing finishes a pending task: the drain would wait forever...
    block_on(executor.run_until(yield_n(5)));
    assert!(!executor.is_shut_down());
    // ...until it is turned into a cancel.
    executor.shutdown(Shutdown::Cancel);
    block_on(executor.run());
    assert!(matches!(block_on(stuck), Err(JoinError::Cancelled)));
    assert_eq!(live_tasks(&executor), 0);
}

/// `run` on a Tokio `LocalSet` returns once a spawner on another thread
/// asks for the shutdown, with a drain deadline kept in real time even
/// though no task wakes the executor.
#[test]
fn drain_deadline_wakes_an_idle_executor() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let stuck = executor
        .queue(0)
        .unwrap()
        .spawn(std::future::pending::<()>());
    let spawner = executor.spawner();
    let requester = thread::spawn(move || {
        spawner.shutdown(Shutdown::Drain {
            deadline: Some(Duration::from_millis(20)),
        });
    });
    local.block_on(&runtime, executor.run());
    requester.join().unwrap();
    assert!(matches!(block_on(stuck), Err(JoinError::Cancelled)));
}

/// A drain deadline on a manual clock that reaches it only after the
/// real-time wake has fired: the wake is repeated, so `run` still returns
/// (found by the pool's author).
#[test]
fn drain_deadline_on_a_lagging_clock_still_ends() {
    let (clock, hand) = Clock::manual();
    let (ready_out, ready_in) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        let executor = ExecutorBuilder::new()
            .with_queue(0, 1)
            .with_clock(clock)
            .build()
            .unwrap();
        let stuck = executor
            .queue(0)
            .unwrap()
            .spawn(std::future::pending::<()>());
        executor.shutdown(Shutdown::Drain {
            deadline: Some(Duration::from_millis(5)),
        });
        ready_out.send(()).unwrap();
        block_on(executor.run());
        block_on(stuck)
    });
    ready_in.recv().unwrap();
    // Well past the real-time wake, then the executor's clock moves.
    thread::sleep(Duration::from_millis(30));
    hand.advance(Duration::from_millis(10));
    assert!(matches!(worker.join().unwrap(), Err(JoinError::Cancelled)));
}

#[test]
fn a_future_that_panics_as_a_shutdown_drops_it_reports_the_panic_and_the_shutdown_completes() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("panic in drop");
        }
    }
    // The default policy, in which a task's panic in a poll propagates.
    let executor = clockworker::ExecutorBuilder::new()
        .with_queue(0, 1)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let handle = queue.spawn(async {
        let _bomb = PanicOnDrop;
        std::future::pending::<()>().await;
    });
    common::drive(executor.run_until(common::yield_once()));
    executor.shutdown(clockworker::Shutdown::Cancel);
    common::drive(executor.run()); // returns, without the panic
    assert!(executor.is_shut_down());
    assert!(matches!(
        futures::executor::block_on(handle),
        Err(clockworker::JoinError::Panic(_))
    ));
    // Nothing left over for a later run.
    common::drive(executor.run_until(async {}));
}
