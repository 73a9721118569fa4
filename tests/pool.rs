//! The thread-per-core pool (feature `pool`): start, use and shutdown, a
//! worker that panics, build errors, typed errors.
//!
//! Every test runs under a hang guard: a pool bug shows up as a failure
//! naming the test, not as a suite that never ends. No assertion depends on
//! timing. The panic hook prints the deliberate panics to stderr; that noise
//! is expected.

#![cfg(feature = "pool")]

use std::cell::OnceCell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use clockworker::{BuildError, ExecutorBuilder, JoinError, Pool, PoolError, QueueHandle, Shutdown};
use futures::executor::block_on;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Requests,
    Maintenance,
}

fn config() -> ExecutorBuilder<Queue> {
    ExecutorBuilder::new()
        .with_queue(Queue::Requests, 8)
        .with_queue(Queue::Maintenance, 1)
}

fn pool(workers: usize) -> Pool<Queue> {
    Pool::builder(|_| config())
        .workers(workers)
        .thread_name("pool-test")
        .build()
        .expect("the pool starts")
}

/// Runs `test` on a thread of its own and returns its result; fails instead
/// of hanging if it has not finished after a generous guard (the thread is
/// then left behind).
fn no_hang<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(test)));
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => resume_unwind(payload),
        Err(_) => panic!("hung: the test did not finish within the 60 s guard"),
    }
}

/// The id of the thread of each worker, from a task on it.
fn worker_threads(pool: &Pool<Queue>) -> Vec<ThreadId> {
    (0..pool.workers())
        .map(|worker| {
            let handle = pool
                .spawn_on(worker, Queue::Requests, async { thread::current().id() })
                .unwrap();
            block_on(handle).unwrap()
        })
        .collect()
}

/// Sets its flag when dropped: shows that a cancelled future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn assert_send_sync_static<T: Send + Sync + 'static>() {}

// ------------------------------------------------------------ start and use

#[test]
fn each_worker_runs_tasks_on_its_own_named_thread() {
    no_hang(|| {
        let pool = pool(3);
        assert_eq!(pool.workers(), 3);
        let results: Vec<(usize, ThreadId, Option<String>)> = (0..3)
            .map(|worker| {
                let handle = pool
                    .spawn_on(worker, Queue::Requests, async move {
                        let me = thread::current();
                        (worker * 10, me.id(), me.name().map(str::to_owned))
                    })
                    .unwrap();
                block_on(handle).unwrap()
            })
            .collect();

        let threads: HashSet<ThreadId> = results.iter().map(|(_, id, _)| *id).collect();
        assert_eq!(threads.len(), 3, "the workers share threads: {results:?}");
        assert!(!threads.contains(&thread::current().id()));
        for (worker, (value, _, name)) in results.iter().enumerate() {
            assert_eq!(*value, worker * 10);
            assert_eq!(
                name.as_deref(),
                Some(format!("pool-test-{worker}").as_str())
            );
            assert_eq!(pool.is_finished(worker), Some(false));
        }
        // Both queues exist on every worker.
        for worker in 0..3 {
            let handle = pool
                .spawn_on(worker, Queue::Maintenance, async { 1 })
                .unwrap();
            assert_eq!(block_on(handle).unwrap(), 1);
        }
        assert!(pool.spawner(2).is_some());
        assert!(pool.spawner(3).is_none());
        assert_eq!(pool.is_finished(3), None);
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

#[test]
fn default_worker_count_is_the_core_count() {
    no_hang(|| {
        let pool = Pool::builder(|_| config()).build().unwrap();
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(pool.workers(), cores);
        pool.shutdown(Shutdown::Cancel).unwrap();
    });
}

#[test]
fn worker_for_is_stable_in_range_and_spawn_for_follows_it() {
    no_hang(|| {
        let pool = pool(3);
        let threads = worker_threads(&pool);
        let mut used = HashSet::new();
        for key in 0..60u32 {
            let worker = pool.worker_for(&key);
            assert!(worker < 3);
            assert_eq!(pool.worker_for(&key), worker, "key {key} moved");
            assert_eq!(worker as u64, clockworker::group_id(&key) % 3);
            used.insert(worker);
            let ran_on = pool
                .spawn_for(&key, Queue::Requests, async { thread::current().id() })
                .unwrap();
            assert_eq!(block_on(ran_on).unwrap(), threads[worker], "key {key}");
        }
        // A fixed hash: 60 keys over 3 workers use all of them.
        assert_eq!(used.len(), 3);
        // A key hashes the same whichever way it is borrowed.
        assert_eq!(
            pool.worker_for("tenant-7"),
            pool.worker_for(&String::from("tenant-7"))
        );
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

#[test]
fn spawner_for_builds_non_send_futures_on_the_keys_worker() {
    no_hang(|| {
        let pool = pool(2);
        let threads = worker_threads(&pool);
        for tenant in ["alice", "bob", "carol", "dave"] {
            let worker = pool.worker_for(tenant);
            let handle = pool
                .spawner_for(tenant)
                .spawn_with(Queue::Requests, move || {
                    // Not `Send`: only possible because it is built on the worker.
                    let local = Rc::new(tenant.len());
                    async move { (*local, thread::current().id()) }
                })
                .unwrap();
            let (len, ran_on) = block_on(handle).unwrap();
            assert_eq!(len, tenant.len());
            assert_eq!(ran_on, threads[worker], "{tenant}");
        }
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

thread_local! {
    /// The `Requests` queue of this thread's worker, set by `on_worker_start`.
    static REQUESTS: OnceCell<QueueHandle> = const { OnceCell::new() };
}

#[test]
fn on_worker_start_gives_tasks_their_own_executors_queues() {
    no_hang(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let pool = Pool::builder(|_| config())
            .workers(3)
            .on_worker_start(move |worker, executor| {
                record
                    .lock()
                    .unwrap()
                    .push((worker, thread::current().id()));
                // Inside the worker's runtime (this panics outside one).
                let _ = tokio::runtime::Handle::current();
                let requests = executor.queue(Queue::Requests).unwrap();
                REQUESTS.with(|cell| cell.set(requests).ok());
            })
            .build()
            .unwrap();
        // Once per worker, on its thread, before `build` returned.
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by_key(|(worker, _)| *worker);
        let threads = worker_threads(&pool);
        let expected: Vec<_> = threads.iter().copied().enumerate().collect();
        assert_eq!(seen, expected);

        // A task spawns a child that is not `Send`, in a group and named, on
        // its own worker, through the handle the hook kept.
        let parent = pool
            .spawn_on(2, Queue::Requests, async {
                let child = REQUESTS.with(|cell| {
                    cell.get()
                        .expect("set by on_worker_start")
                        .task()
                        .group("tenant-7")
                        .name("child")
                        .spawn(async {
                            let not_send = Rc::new(thread::current().id());
                            *not_send
                        })
                });
                child.await.unwrap()
            })
            .unwrap();
        assert_eq!(block_on(parent).unwrap(), threads[2]);
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

#[test]
fn tasks_use_the_workers_tokio_runtime() {
    no_hang(|| {
        let pool = pool(2);
        let handle = pool
            .spawn_on(1, Queue::Requests, async {
                // Timers and sockets of the worker's own runtime.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = listener.local_addr().unwrap();
                let local = tokio::task::spawn_local(async move {
                    let (_socket, _) = listener.accept().await.unwrap();
                    "accepted"
                });
                let _client = tokio::net::TcpStream::connect(address).await.unwrap();
                local.await.unwrap()
            })
            .unwrap();
        assert_eq!(block_on(handle).unwrap(), "accepted");
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

// ---------------------------------------------------------------- shutdown

#[test]
fn drain_waits_for_running_tasks_then_refuses_spawns() {
    no_hang(|| {
        let pool = pool(2);
        let late = pool.spawner(0).unwrap().clone();
        let flags: Vec<Arc<AtomicBool>> =
            (0..8).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let handles: Vec<_> = flags
            .iter()
            .enumerate()
            .map(|(i, flag)| {
                let flag = Arc::clone(flag);
                pool.spawn_on(i % 2, Queue::Requests, async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    flag.store(true, Ordering::SeqCst);
                    i
                })
                .unwrap()
            })
            .collect();

        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();

        for (i, flag) in flags.iter().enumerate() {
            assert!(flag.load(Ordering::SeqCst), "task {i} was not drained");
        }
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(block_on(handle).unwrap(), i);
        }
        assert!(late.is_closed());
        let refused = late.spawn(Queue::Requests, async { 1 }).unwrap();
        assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));
    });
}

#[test]
fn drain_deadline_cancels_what_does_not_finish() {
    no_hang(|| {
        let pool = pool(2);
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(Arc::clone(&dropped));
        let stuck = pool
            .spawn_on(0, Queue::Maintenance, async move {
                let _guard = guard;
                std::future::pending::<()>().await
            })
            .unwrap();
        let quick = pool.spawn_on(1, Queue::Requests, async { "done" }).unwrap();
        pool.shutdown(Shutdown::Drain {
            deadline: Some(Duration::from_millis(10)),
        })
        .unwrap();
        assert!(dropped.load(Ordering::SeqCst));
        assert!(matches!(block_on(stuck), Err(JoinError::Cancelled)));
        assert_eq!(block_on(quick).unwrap(), "done");
    });
}

#[test]
fn cancel_drops_pending_tasks_and_returns() {
    no_hang(|| {
        let pool = pool(2);
        let (started, running) = mpsc::channel();
        let mut dropped = Vec::new();
        let mut pending = Vec::new();
        for worker in 0..2 {
            let flag = Arc::new(AtomicBool::new(false));
            let guard = DropFlag(Arc::clone(&flag));
            dropped.push(flag);
            let started = started.clone();
            pending.push(
                pool.spawn_on(worker, Queue::Requests, async move {
                    let _guard = guard;
                    started.send(()).unwrap();
                    std::future::pending::<()>().await
                })
                .unwrap(),
            );
        }
        // Both tasks are running (parked in `pending`), not merely queued.
        running.recv().unwrap();
        running.recv().unwrap();
        // And one that never got to run.
        let queued = pool
            .spawn_on(0, Queue::Maintenance, std::future::pending::<()>())
            .unwrap();

        pool.shutdown(Shutdown::Cancel).unwrap();

        for flag in &dropped {
            assert!(
                flag.load(Ordering::SeqCst),
                "a cancelled future was not dropped"
            );
        }
        for handle in pending {
            assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
        }
        assert!(matches!(block_on(queued), Err(JoinError::Cancelled)));
    });
}

#[test]
fn dropping_the_pool_cancels_and_joins() {
    no_hang(|| {
        let pool = pool(2);
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(Arc::clone(&dropped));
        let (started, running) = mpsc::channel();
        let pending = pool
            .spawn_on(1, Queue::Requests, async move {
                let _guard = guard;
                started.send(thread::current()).unwrap();
                std::future::pending::<()>().await
            })
            .unwrap();
        let worker = running.recv().unwrap();
        drop(pool);
        // Joined: the future was dropped before the drop returned.
        assert!(dropped.load(Ordering::SeqCst));
        assert!(matches!(block_on(pending), Err(JoinError::Cancelled)));
        drop(worker);
    });
}

#[test]
fn a_worker_shut_down_through_its_spawner_is_finished_not_failed() {
    no_hang(|| {
        let pool = pool(2);
        pool.spawner(0)
            .unwrap()
            .shutdown(Shutdown::Drain { deadline: None });
        while pool.is_finished(0) != Some(true) {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.is_finished(1), Some(false));
        let refused = pool.spawn_on(0, Queue::Requests, async {}).unwrap();
        assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));
        let served = pool.spawn_on(1, Queue::Requests, async { 2 }).unwrap();
        assert_eq!(block_on(served).unwrap(), 2);
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

#[test]
fn shutdown_from_a_workers_own_task_does_not_deadlock() {
    no_hang(|| {
        let pool = Arc::new(Mutex::new(Some(pool(2))));
        let (reply, result) = mpsc::channel();
        let shared = Arc::clone(&pool);
        let spawner = pool
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .spawner(0)
            .unwrap()
            .clone();
        let task = spawner
            .spawn(Queue::Requests, async move {
                let pool = shared.lock().unwrap().take().unwrap();
                reply.send(pool.shutdown(Shutdown::Cancel)).unwrap();
            })
            .unwrap();
        // Worker 1 was joined; worker 0 (the caller) was only shut down,
        // after the task that asked.
        assert_eq!(result.recv().unwrap(), Ok(()));
        assert!(block_on(task).is_ok());
    });
}

#[test]
fn spawns_racing_a_shutdown_all_resolve() {
    no_hang(|| {
        for round in 0..20 {
            let pool = pool(2);
            let spawners: Vec<_> = (0..2).map(|w| pool.spawner(w).unwrap().clone()).collect();
            let go = Arc::new(std::sync::Barrier::new(3));
            let spawning: Vec<_> = spawners
                .into_iter()
                .map(|spawner| {
                    let go = Arc::clone(&go);
                    thread::spawn(move || {
                        go.wait();
                        (0..200)
                            .map(|i| {
                                let ran = Arc::new(AtomicBool::new(false));
                                let flag = Arc::clone(&ran);
                                let handle = spawner
                                    .spawn(Queue::Requests, async move {
                                        flag.store(true, Ordering::SeqCst);
                                        i
                                    })
                                    .unwrap();
                                (i, ran, handle)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            go.wait();
            pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
            for spawner in spawning {
                for (i, ran, handle) in spawner.join().unwrap() {
                    // Accepted and run to the end, or refused: never lost.
                    match block_on(handle) {
                        Ok(value) => assert!(value == i && ran.load(Ordering::SeqCst)),
                        Err(JoinError::Cancelled) => assert!(!ran.load(Ordering::SeqCst)),
                        Err(other) => panic!("round {round}: {other:?}"),
                    }
                }
            }
        }
    });
}

// ---------------------------------------------------------------- panics

#[test]
fn a_panicking_worker_surfaces_from_shutdown_and_the_others_keep_working() {
    no_hang(|| {
        let pool = pool(3);
        let before: Vec<_> = [0, 2]
            .into_iter()
            .map(|worker| {
                pool.spawn_on(worker, Queue::Requests, async move { worker })
                    .unwrap()
            })
            .collect();
        let victim = pool
            .spawn_on(1, Queue::Maintenance, std::future::pending::<()>())
            .unwrap();
        let panicking = pool
            .spawn_on(1, Queue::Requests, async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                panic!("boom on worker 1");
            })
            .unwrap();

        match block_on(panicking) {
            Err(JoinError::Panic(panic)) => assert_eq!(panic.message(), "boom on worker 1"),
            other => panic!("expected the task's panic, got {other:?}"),
        }
        // The worker's executor was dropped as its thread unwound: its other
        // tasks are cancelled, and it takes no more work.
        assert!(matches!(block_on(victim), Err(JoinError::Cancelled)));
        while pool.is_finished(1) != Some(true) {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(pool.spawner(1).unwrap().is_closed());
        let refused = pool.spawn_on(1, Queue::Requests, async { 1 }).unwrap();
        assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));

        // The other workers' results are intact, and they still work.
        let results: Vec<usize> = before.into_iter().map(|h| block_on(h).unwrap()).collect();
        assert_eq!(results, [0, 2]);
        for worker in [0, 2] {
            assert_eq!(pool.is_finished(worker), Some(false));
            let handle = pool
                .spawn_on(worker, Queue::Requests, async move { worker + 1 })
                .unwrap();
            assert_eq!(block_on(handle).unwrap(), worker + 1);
        }

        let error = pool
            .shutdown(Shutdown::Drain { deadline: None })
            .unwrap_err();
        assert_eq!(
            error,
            PoolError::WorkerPanicked {
                worker: 1,
                message: "boom on worker 1".to_owned()
            }
        );
        assert_eq!(error.to_string(), "worker 1 panicked: boom on worker 1");
    });
}

#[test]
fn a_panic_is_reported_even_if_shutdown_comes_first() {
    no_hang(|| {
        let pool = pool(2);
        // Spawned and shut down at once: the drain runs the task, which
        // panics while the worker drains.
        let task = pool
            .spawn_on(0, Queue::Requests, async {
                panic!("panic while draining");
            })
            .unwrap();
        let error = pool
            .shutdown(Shutdown::Drain { deadline: None })
            .unwrap_err();
        assert!(
            matches!(&error, PoolError::WorkerPanicked { worker: 0, message } if message == "panic while draining"),
            "{error:?}"
        );
        assert!(block_on(task).unwrap_err().is_panic());
    });
}

#[test]
fn dropping_a_pool_with_a_panicked_worker_does_not_panic() {
    no_hang(|| {
        let pool = pool(2);
        let handle = pool
            .spawn_on(0, Queue::Requests, async { panic!("ignored by drop") })
            .unwrap();
        assert!(block_on(handle).unwrap_err().is_panic());
        drop(pool);
    });
}

#[test]
fn caught_task_panics_leave_the_worker_running() {
    no_hang(|| {
        let pool = Pool::builder(|_| config().with_panic_on_task_panic(false))
            .workers(2)
            .build()
            .unwrap();
        let handle = pool
            .spawn_on(0, Queue::Requests, async { panic!("only this task") })
            .unwrap();
        assert!(block_on(handle).unwrap_err().is_panic());
        let handle = pool
            .spawn_on(0, Queue::Requests, async { "still here" })
            .unwrap();
        assert_eq!(block_on(handle).unwrap(), "still here");
        assert_eq!(pool.is_finished(0), Some(false));
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

// ---------------------------------------------------------------- build errors

#[test]
fn a_refused_configuration_is_a_build_error_and_every_thread_is_joined() {
    no_hang(|| {
        // Held by the builder's closure, which every worker thread shares:
        // once the count is back to one, no worker thread is left.
        let witness = Arc::new(());
        let held = Arc::clone(&witness);
        let result = Pool::builder(move |worker| {
            let _ = &held;
            if worker == 1 {
                ExecutorBuilder::new().with_queue(Queue::Requests, 0)
            } else {
                config()
            }
        })
        .workers(3)
        .build();
        match result {
            Err(PoolError::Build {
                worker: 1,
                error: BuildError::ZeroWeight { key },
            }) => assert_eq!(key, "Requests"),
            other => panic!("expected a build error for worker 1, got {other:?}"),
        }
        assert_eq!(
            Arc::strong_count(&witness),
            1,
            "a worker thread is still alive"
        );

        // On every worker: the first is reported.
        let error = Pool::builder(|_| ExecutorBuilder::<Queue>::new())
            .workers(2)
            .build()
            .unwrap_err();
        assert_eq!(
            error,
            PoolError::Build {
                worker: 0,
                error: BuildError::NoQueues
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("worker 0: invalid executor configuration")
        );
        assert!(std::error::Error::source(&error).is_some());
    });
}

#[test]
fn a_panicking_configuration_or_start_closure_is_an_error_not_a_panic() {
    no_hang(|| {
        let result = Pool::builder(|worker| {
            if worker == 2 {
                panic!("no config for worker 2");
            }
            config()
        })
        .workers(3)
        .build();
        assert_eq!(
            result.unwrap_err(),
            PoolError::WorkerPanicked {
                worker: 2,
                message: "no config for worker 2".to_owned()
            }
        );

        let result = Pool::builder(|_| config())
            .workers(2)
            .on_worker_start(|worker, _| assert_ne!(worker, 1, "no start for worker 1"))
            .build();
        match result {
            Err(PoolError::WorkerPanicked { worker: 1, message }) => {
                assert!(message.contains("no start for worker 1"), "{message}")
            }
            other => panic!("expected worker 1's panic, got {other:?}"),
        }
    });
}

#[test]
fn zero_workers_is_refused() {
    let error = Pool::builder(|_| config()).workers(0).build().unwrap_err();
    assert_eq!(error, PoolError::NoWorkers);
}

#[test]
fn pinned_workers_run_on_their_core() {
    no_hang(|| {
        let Some(cores) = core_affinity::get_core_ids() else {
            eprintln!("skipped: this platform does not list cores");
            return;
        };
        let pool = Pool::builder(|_| config())
            .workers(3)
            .pin_to_cores(true)
            .build()
            .expect("pinning to the cores this process may use");
        for worker in 0..3 {
            // On the worker, the cores it may run on: the one it is pinned to.
            let allowed = pool
                .spawn_on(worker, Queue::Requests, async {
                    core_affinity::get_core_ids()
                })
                .unwrap();
            let allowed = block_on(allowed).unwrap();
            if cfg!(target_os = "linux") {
                assert_eq!(
                    allowed,
                    Some(vec![cores[worker % cores.len()]]),
                    "worker {worker}"
                );
            }
        }
        pool.shutdown(Shutdown::Drain { deadline: None }).unwrap();
    });
}

// ---------------------------------------------------------------- typed errors

#[test]
fn unknown_workers_and_keys_are_typed_errors() {
    no_hang(|| {
        let pool = Pool::builder(|_| ExecutorBuilder::new().with_queue("requests", 1))
            .workers(2)
            .build()
            .unwrap();
        let error = pool.spawn_on(2, "requests", async {}).unwrap_err();
        assert_eq!(
            error,
            PoolError::NoSuchWorker {
                index: 2,
                workers: 2
            }
        );
        assert_eq!(error.to_string(), "no worker 2: the pool has 2 (0..2)");

        match pool.spawn_on(1, "nope", async {}) {
            Err(PoolError::UnknownQueue(unknown)) => assert_eq!(unknown.key(), "\"nope\""),
            other => panic!("expected UnknownQueue, got {other:?}"),
        }
        assert!(matches!(
            pool.spawn_for("tenant", "nope", async {}),
            Err(PoolError::UnknownQueue(_))
        ));
        pool.shutdown(Shutdown::Cancel).unwrap();
    });
}

#[test]
fn the_pool_and_its_error_cross_threads() {
    assert_send_sync_static::<PoolError>();
    assert_send_sync_static::<Pool<Queue>>();
    assert_send_sync_static::<clockworker::Spawner<Queue>>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(PoolError::NoWorkers);
    assert!(boxed.to_string().contains("no workers"));
}
