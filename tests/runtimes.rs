//! The same scenarios on every host runtime clockworker can run on.
//!
//! Each scenario is a generic async fn of an [`Env`] (two queue handles and the
//! host's timer). Each host module runs every scenario through a *driver*: a
//! function that builds an executor, runs it on that host in one of the
//! supported ways, and awaits the scenario there:
//!
//! | driver | how the executor runs |
//! |---|---|
//! | `tokio_localset_run` | `executor.run()` spawned with `spawn_local` on a `LocalSet`; the scenario is the `LocalSet`'s main future |
//! | `tokio_localset_run_until` | `LocalSet::block_on(executor.run_until(scenario))` |
//! | `tokio_localset_run_and_run_until` | both at once: two run futures polling one executor |
//! | `tokio_block_on` | current-thread `Runtime::block_on(executor.run_until(..))`, no `LocalSet` |
//! | `smol_block_on` | `smol::block_on(executor.run_until(..))` |
//! | `smol_local_executor_run` | `executor.run()` spawned on a `smol::LocalExecutor` |
//! | `smol_local_executor_run_until` | `LocalExecutor::run(executor.run_until(..))` |
//! | `futures_block_on` | `futures::executor::block_on(executor.run_until(..))` |
//! | `futures_local_pool_run` | `executor.run()` spawned on a `futures::executor::LocalPool` |
//!
//! Timers are Tokio's on Tokio, async-io's (`smol::Timer`) elsewhere: async-io
//! timers work on any executor. Every scenario is wrapped in a hang guard (an
//! async-io timer of [`HANG_GUARD`]); no assertion depends on timing.

mod common;
use common::yield_once;
use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, JoinError, QueueHandle, yield_maybe};
use futures::channel::{mpsc, oneshot};
use futures::future::Either;
use futures::task::LocalSpawnExt;
use futures::{SinkExt, StreamExt};

/// Only a hang guard: a scenario that takes this long is stuck.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Fast,
    Slow,
}

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type Sleep = fn(Duration) -> LocalFuture;

fn tokio_sleep(duration: Duration) -> LocalFuture {
    Box::pin(tokio::time::sleep(duration))
}

fn async_io_sleep(duration: Duration) -> LocalFuture {
    Box::pin(async move {
        smol::Timer::after(duration).await;
    })
}

/// What a scenario gets: a handle to each of the executor's two queues, and
/// the host's timer.
#[derive(Clone)]
struct Env {
    fast: QueueHandle,
    slow: QueueHandle,
    sleep: Sleep,
}

impl Env {
    /// The queues alternately, by index.
    fn queue(&self, index: u64) -> &QueueHandle {
        if index % 2 == 0 {
            &self.fast
        } else {
            &self.slow
        }
    }
}

fn executor(sleep: Sleep) -> (Rc<Executor<Queue>>, Env) {
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Fast, 4)
        .with_queue(Queue::Slow, 1)
        .build()
        .unwrap();
    let env = Env {
        fast: executor.queue(Queue::Fast).unwrap(),
        slow: executor.queue(Queue::Slow).unwrap(),
        sleep,
    };
    (executor, env)
}

/// Awaits `future`, or panics if it takes longer than [`HANG_GUARD`].
async fn guarded<F: Future>(future: F) -> F::Output {
    let timer = async_io_sleep(HANG_GUARD);
    match futures::future::select(pin!(future), timer).await {
        Either::Left((output, _)) => output,
        Either::Right(((), _)) => panic!("scenario still running after {HANG_GUARD:?}"),
    }
}

/// Runs a whole test (driver and scenario) on a new thread, and fails if it
/// has not finished well after [`HANG_GUARD`]: catches hangs outside the
/// scenario too, such as in the executor's drop. The thread is then left
/// behind.
fn on_thread(test: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG_GUARD * 2) {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("hung: still running after {:?}", HANG_GUARD * 2),
    }
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    fn new() -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (DropFlag(Arc::clone(&flag)), flag)
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- scenarios

/// Tasks across both queues, with yields, non-`Send` shared state, and tasks
/// spawning tasks into the other queue; every output is joined.
async fn spawn_join(env: Env) {
    let polls = Rc::new(Cell::new(0u64));
    let mut handles = Vec::new();
    for i in 0..20u64 {
        let other = env.queue(i + 1).clone();
        let polls = Rc::clone(&polls);
        handles.push(env.queue(i).spawn(async move {
            for _ in 0..i {
                polls.set(polls.get() + 1);
                yield_once().await;
                yield_maybe().await;
            }
            let inner = other.spawn(async move { i * 10 });
            i + inner.await.unwrap()
        }));
    }
    let ids: HashSet<_> = handles.iter().map(|handle| handle.id().unwrap()).collect();
    assert_eq!(ids.len(), handles.len(), "task ids must be unique");

    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    let expected: Vec<u64> = (0..20).map(|i| i * 11).collect();
    assert_eq!(outputs, expected);
    assert_eq!(polls.get(), (0..20).sum::<u64>());
}

/// Tasks in both queues wait on the host's timers, several times each, while
/// the awaiting future waits on one too.
async fn host_timers(env: Env) {
    let mut handles = Vec::new();
    for i in 0..8u64 {
        let sleep = env.sleep;
        handles.push(env.queue(i).spawn(async move {
            let duration = Duration::from_millis(2 + i * 3);
            let started = Instant::now();
            for _ in 0..3 {
                sleep(duration).await;
            }
            // Not a timing threshold: a host timer never fires early.
            assert!(started.elapsed() >= duration * 3);
            i
        }));
    }
    (env.sleep)(Duration::from_millis(5)).await;
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    assert_eq!(outputs, (0..8).collect::<Vec<_>>());
}

/// Tasks woken from other OS threads: a oneshot whose sender is on a thread,
/// and a bounded channel fed by a producer thread that blocks on it (so wakes
/// go both ways); plus a wake from the host's own thread.
async fn wake_from_thread(env: Env) {
    // A oneshot sent on another thread once the task is waiting.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (value_tx, value_rx) = oneshot::channel::<u64>();
    let sender = std::thread::spawn(move || {
        ready_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        value_tx.send(7).unwrap();
    });
    let one = env.fast.spawn(async move {
        ready_tx.send(()).unwrap();
        value_rx.await.unwrap()
    });

    // A capacity-1 channel: the producer thread parks on it until the task
    // drains it, the task parks until the producer sends.
    let (mut items_tx, items_rx) = mpsc::channel::<u64>(1);
    let producer = std::thread::spawn(move || {
        futures::executor::block_on(async move {
            for i in 0..200 {
                items_tx.send(i).await.unwrap();
            }
        })
    });
    let many = env.slow.spawn(async move {
        items_rx
            .fold(0, |sum, item| async move { sum + item })
            .await
    });

    // A wake from this thread, by the future that awaits the tasks.
    let (local_tx, local_rx) = oneshot::channel::<u64>();
    let local = env.fast.spawn(async move { local_rx.await.unwrap() * 2 });
    (env.sleep)(Duration::from_millis(1)).await;
    local_tx.send(21).unwrap();

    assert_eq!(one.await.unwrap(), 7);
    assert_eq!(many.await.unwrap(), (0..200).sum::<u64>());
    assert_eq!(local.await.unwrap(), 42);
    sender.join().unwrap();
    producer.join().unwrap();
}

/// Tasks parked on a long host timer are aborted, from this thread and from
/// another thread: their futures are dropped, their handles say `Cancelled`,
/// and a sibling sleeping alongside is unaffected.
async fn abort_sleeping_task(env: Env) {
    let sleep = env.sleep;
    let finished = Rc::new(Cell::new(0u32));
    let mut victims = Vec::new();
    for i in 0..2u64 {
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (flag, dropped) = DropFlag::new();
        let finished = Rc::clone(&finished);
        let handle = env.queue(i).spawn(async move {
            let _flag = flag;
            started_tx.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
            finished.set(finished.get() + 1);
        });
        victims.push((handle, started_rx, dropped));
    }
    let sibling = env.slow.spawn(async move {
        sleep(Duration::from_millis(20)).await;
        5
    });

    let mut victims = victims.into_iter();

    // Aborted from this thread.
    let (handle, started, dropped) = victims.next().unwrap();
    started.await.unwrap(); // the task is now parked on the timer
    assert!(!handle.is_finished());
    assert!(!dropped.load(Ordering::SeqCst));
    handle.abort();
    let result = handle.await;
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert!(dropped.load(Ordering::SeqCst), "aborted future not dropped");

    // Aborted from another thread (`JoinHandle<()>` is `Send`).
    let (handle, started, dropped) = victims.next().unwrap();
    started.await.unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    let handle = std::thread::spawn(move || {
        handle.abort();
        handle
    })
    .join()
    .unwrap();
    let result = handle.await;
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert!(dropped.load(Ordering::SeqCst), "aborted future not dropped");

    assert_eq!(sibling.await.unwrap(), 5);
    assert_eq!(finished.get(), 0, "an aborted task ran past its timer");
}

// ---------------------------------------------------------------- drivers

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `run()` spawned on a `LocalSet`, the scenario as the set's main future.
fn tokio_localset_run<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(tokio_sleep);
    let runtime = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let runner = tokio::task::spawn_local(async move { executor.run().await });
        guarded(scenario(env)).await;
        runner.abort();
        let stopped = runner.await.unwrap_err();
        assert!(stopped.is_cancelled(), "run() ended with {stopped:?}");
    });
}

fn tokio_localset_run_until<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(tokio_sleep);
    let runtime = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, executor.run_until(guarded(scenario(env))));
}

/// `run()` spawned on the `LocalSet` *and* `run_until` awaited: two run
/// futures poll the same executor.
fn tokio_localset_run_and_run_until<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(tokio_sleep);
    let runtime = tokio_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let runner = tokio::task::spawn_local({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        executor.run_until(guarded(scenario(env))).await;
        runner.abort();
        let stopped = runner.await.unwrap_err();
        assert!(stopped.is_cancelled(), "run() ended with {stopped:?}");
    });
}

fn tokio_block_on<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(tokio_sleep);
    tokio_runtime().block_on(executor.run_until(guarded(scenario(env))));
}

fn smol_block_on<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(async_io_sleep);
    smol::block_on(executor.run_until(guarded(scenario(env))));
}

fn smol_local_executor_run<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(async_io_sleep);
    let local = smol::LocalExecutor::new();
    smol::block_on(local.run(async {
        let runner = local.spawn(async move { executor.run().await });
        guarded(scenario(env)).await;
        assert!(runner.cancel().await.is_none());
    }));
}

fn smol_local_executor_run_until<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(async_io_sleep);
    let local = smol::LocalExecutor::new();
    smol::block_on(local.run(executor.run_until(guarded(scenario(env)))));
}

fn futures_block_on<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(async_io_sleep);
    futures::executor::block_on(executor.run_until(guarded(scenario(env))));
}

fn futures_local_pool_run<S, F>(scenario: S)
where
    S: FnOnce(Env) -> F,
    F: Future<Output = ()>,
{
    let (executor, env) = executor(async_io_sleep);
    let mut pool = futures::executor::LocalPool::new();
    pool.spawner()
        .spawn_local(async move { executor.run().await })
        .unwrap();
    pool.run_until(guarded(scenario(env)));
}

// ---------------------------------------------------------------- tests

macro_rules! host_tests {
    ($($host:ident;)*) => {$(
        mod $host {
            #[test]
            fn spawn_join() {
                super::on_thread(|| super::$host(super::spawn_join));
            }

            #[test]
            fn host_timers() {
                super::on_thread(|| super::$host(super::host_timers));
            }

            #[test]
            fn wake_from_thread() {
                super::on_thread(|| super::$host(super::wake_from_thread));
            }

            #[test]
            fn abort_sleeping_task() {
                super::on_thread(|| super::$host(super::abort_sleeping_task));
            }
        }
    )*};
}

host_tests! {
    tokio_localset_run;
    tokio_localset_run_until;
    tokio_localset_run_and_run_until;
    tokio_block_on;
    smol_block_on;
    smol_local_executor_run;
    smol_local_executor_run_until;
    futures_block_on;
    futures_local_pool_run;
}

/// Two executors on one host thread, each run by `run()` on the same
/// `LocalSet`, with tasks of one waking and awaiting tasks of the other.
#[test]
fn two_executors_on_one_localset() {
    on_thread(|| {
        let (first, first_env) = executor(tokio_sleep);
        let (second, second_env) = executor(tokio_sleep);
        let runtime = tokio_runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let runners = [
                tokio::task::spawn_local(async move { first.run().await }),
                tokio::task::spawn_local(async move { second.run().await }),
            ];
            guarded(async {
                let (tx, rx) = oneshot::channel::<u64>();
                let waiting = second_env.slow.spawn(async move { rx.await.unwrap() + 1 });
                let second_queue = second_env.fast.clone();
                let sender = first_env.fast.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tx.send(41).unwrap();
                    // Awaits a task of the other executor from inside a task.
                    second_queue.spawn(async { 100 }).await.unwrap()
                });
                assert_eq!(waiting.await.unwrap(), 42);
                assert_eq!(sender.await.unwrap(), 100);
            })
            .await;
            for runner in runners {
                runner.abort();
                assert!(runner.await.unwrap_err().is_cancelled());
            }
        });
    });
}

/// The host runtime is free to move from one `run_until` to another: tasks
/// that were unfinished when one host stopped finish on the next one.
#[test]
fn tasks_outlive_one_host_and_finish_on_another() {
    on_thread(|| {
        let (executor, env) = executor(async_io_sleep);
        let (tx, rx) = oneshot::channel::<u64>();
        let waiting = env.slow.spawn(async move { rx.await.unwrap() * 3 });
        // Tokio: the task is polled and parks on the channel.
        tokio_runtime().block_on(executor.run_until(async {
            for _ in 0..10 {
                yield_once().await;
            }
        }));
        assert!(!waiting.is_finished());
        tx.send(5).unwrap();
        // smol: the wake that came in while no host ran it is picked up.
        let output = smol::block_on(executor.run_until(guarded(waiting)));
        assert_eq!(output.unwrap(), 15);
    });
}
