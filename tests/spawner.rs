//! `Spawner`: spawns from other threads, `spawn_with`, spawns refused after
//! a shutdown or a drop, aborts racing the executor taking a task in.

mod common;
use common::{DropLedger, live_tasks, yield_once};

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use clockworker::{ExecutorBuilder, JoinError, Shutdown, Spawner};
use futures::executor::block_on;

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn spawner_is_send_sync_clone() {
    assert_send_sync_clone::<Spawner<&'static str>>();
    assert_send_sync_clone::<Spawner<u32>>();
}

/// 4 threads spawn 5,000 tasks each while the executor runs on this thread;
/// every task runs exactly once, and every handle, awaited on its spawning
/// thread, gets its own task's output.
#[test]
fn spawns_from_many_threads_at_once_lose_nothing() {
    const THREADS: u64 = 4;
    const EACH: u64 = 5_000;
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 2)
        .build()
        .unwrap();
    let ledger = DropLedger::new((THREADS * EACH) as usize);
    let sum = Arc::new(AtomicU64::new(0));
    let spawner = executor.spawner();
    let spawners: Vec<_> = (0..THREADS)
        .map(|t| {
            let (spawner, ledger, sum) = (spawner.clone(), ledger.clone(), Arc::clone(&sum));
            thread::spawn(move || {
                let handles: Vec<_> = (0..EACH)
                    .map(|i| {
                        let n = t * EACH + i;
                        let token = ledger.token(n as usize);
                        let sum = Arc::clone(&sum);
                        let key = if n % 2 == 0 { "a" } else { "b" };
                        spawner
                            .spawn(key, async move {
                                let _token = token;
                                yield_once().await;
                                sum.fetch_add(n, Ordering::Relaxed);
                                n
                            })
                            .unwrap()
                    })
                    .collect();
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(block_on(handle).unwrap(), t * EACH + i as u64);
                }
            })
        })
        .collect();
    let all_done = {
        let joined = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&joined);
        let watcher = thread::spawn(move || {
            for handle in spawners {
                handle.join().unwrap();
            }
            flag.store(true, Ordering::SeqCst);
        });
        (joined, watcher)
    };
    let (joined, watcher) = all_done;
    block_on(executor.run_until(async {
        while !joined.load(Ordering::SeqCst) {
            yield_once().await;
        }
    }));
    watcher.join().unwrap();
    let n = THREADS * EACH;
    assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
    assert_eq!(ledger.not_once(), Vec::<(usize, usize)>::new());
    let stats = executor.stats();
    assert_eq!((stats.spawned, stats.completed), (n, n));
    assert_eq!(live_tasks(&executor), 0);
}

/// `spawn_with` builds the future on the executor's thread, so it may hold
/// an `Rc`; only the closure and the output cross threads.
#[test]
fn spawn_with_builds_the_future_on_the_executor_thread() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let spawner = executor.spawner();
    let handle = thread::spawn(move || {
        spawner
            .spawn_with(0, || {
                let built_on = thread::current().id();
                let local = Rc::new(20);
                async move {
                    yield_once().await;
                    (built_on, thread::current().id(), *local + 1)
                }
            })
            .unwrap()
    })
    .join()
    .unwrap();
    let (built_on, polled_on, value) = block_on(executor.run_until(handle)).unwrap();
    assert_eq!(built_on, thread::current().id());
    assert_eq!(polled_on, thread::current().id());
    assert_eq!(value, 21);
}

#[test]
fn unknown_key_is_a_typed_error() {
    let executor = ExecutorBuilder::new().with_queue("a", 1).build().unwrap();
    let error = executor.spawner().spawn("nope", async {}).unwrap_err();
    assert_eq!(error.key(), "\"nope\"");
    assert!(executor.spawner().spawn_with("nope", || async {}).is_err());
}

/// After a shutdown, and after the executor is dropped, a spawn resolves to
/// `Cancelled` and its future is dropped (on the spawning thread: it never
/// reached the executor), never polled.
#[test]
fn spawns_after_shutdown_or_drop_are_cancelled_and_dropped() {
    let ledger = DropLedger::new(4);
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let spawner = executor.spawner();
    assert!(!spawner.is_closed());
    executor.shutdown(Shutdown::Drain { deadline: None });
    assert!(spawner.is_closed());
    let polled = Arc::new(AtomicU64::new(0));
    let spawn = |i: usize| {
        let (token, polled) = (ledger.token(i), Arc::clone(&polled));
        spawner
            .spawn(0, async move {
                let _token = token;
                polled.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
    };
    let refused = spawn(0);
    assert!(refused.is_finished());
    assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));
    assert_eq!(ledger.drops(0), 1);
    block_on(executor.run());
    assert!(executor.is_shut_down());

    let after_done = spawn(1);
    assert!(matches!(block_on(after_done), Err(JoinError::Cancelled)));
    drop(executor);
    let after_drop = spawn(2);
    assert!(matches!(block_on(after_drop), Err(JoinError::Cancelled)));
    let with = spawner.spawn_with(0, || async { 1 }).unwrap();
    assert!(matches!(block_on(with), Err(JoinError::Cancelled)));
    assert_eq!(polled.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.total(), 3);
}

/// Threads keep spawning while the executor runs and is then dropped: every
/// handle resolves (to its output or to `Cancelled`), and every future is
/// dropped exactly once.
#[test]
fn spawns_racing_the_executor_drop_all_resolve() {
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    for round in 0..5 {
        let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
        let ledger = DropLedger::new(THREADS * EACH);
        let spawner = executor.spawner();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (spawner, ledger) = (spawner.clone(), ledger.clone());
                thread::spawn(move || {
                    let handles: Vec<_> = (0..EACH)
                        .map(|i| {
                            let token = ledger.token(t * EACH + i);
                            spawner
                                .spawn(0, async move {
                                    let _token = token;
                                    yield_once().await;
                                })
                                .unwrap()
                        })
                        .collect();
                    let mut outcomes = (0, 0);
                    for handle in handles {
                        match block_on(handle) {
                            Ok(()) => outcomes.0 += 1,
                            Err(JoinError::Cancelled) => outcomes.1 += 1,
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                    outcomes
                })
            })
            .collect();
        // Run a little, then drop the executor while the threads spawn.
        block_on(executor.run_until(async {
            for _ in 0..(round * 50) {
                yield_once().await;
            }
        }));
        drop(executor);
        let mut total = 0;
        for thread in threads {
            let (done, cancelled) = thread.join().unwrap();
            total += done + cancelled;
        }
        assert_eq!(total, THREADS * EACH);
        assert_eq!(ledger.not_once(), Vec::<(usize, usize)>::new());
    }
}

/// An abort from another thread right after a remote spawn, racing the
/// executor taking the task in: the handle always resolves, and an aborted
/// task that had not started is never polled.
#[test]
fn abort_racing_the_take_in_always_resolves() {
    const TASKS: usize = 2_000;
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let spawner = executor.spawner();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let aborter = thread::spawn(move || {
        let mut outcomes = (0, 0);
        for _ in 0..TASKS {
            let handle = spawner.spawn(0, std::future::pending::<()>()).unwrap();
            handle.abort();
            match block_on(handle) {
                Err(JoinError::Cancelled) => outcomes.0 += 1,
                other => panic!("a pending task ended with {other:?}"),
            }
            let quick = spawner.spawn(0, async { 5 }).unwrap();
            quick.abort();
            match block_on(quick) {
                Ok(5) | Err(JoinError::Cancelled) => outcomes.1 += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        flag.store(true, Ordering::SeqCst);
        outcomes
    });
    block_on(executor.run_until(async {
        while !done.load(Ordering::SeqCst) {
            yield_once().await;
        }
    }));
    assert_eq!(aborter.join().unwrap(), (TASKS, TASKS));
    assert_eq!(live_tasks(&executor), 0);
    let stats = executor.stats();
    assert_eq!(stats.spawned, 2 * TASKS as u64);
    assert_eq!(stats.completed + stats.cancelled, 2 * TASKS as u64);
}

/// A spawn through the spawner from inside one of the executor's own tasks
/// works (it goes through the same queue as any other thread's).
#[test]
fn spawner_works_from_the_executor_thread_too() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let spawner = executor.spawner();
    let queue = executor.queue(0).unwrap();
    let outer = queue.spawn(async move { spawner.spawn(0, async { 3 }).unwrap().await });
    assert_eq!(block_on(executor.run_until(outer)).unwrap().unwrap(), 3);
}
