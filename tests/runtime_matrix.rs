//! The runtime matrix: five scenarios, written once, run on every host runtime.
//!
//! Each scenario is an async fn of an [`Env`] (the executor, a handle to each
//! of its two queues, the host's timer, the executor's thread). Each host is a
//! *driver*: a function that builds the executor where it must live (it is
//! `!Send`), runs it on that host, awaits the scenario there, and checks that
//! every task ended ([`check_ended`]). A macro makes one `#[test]` of every
//! (host, scenario) pair, named `host::scenario`.
//!
//! | scenario | what it proves |
//! |---|---|
//! | `spawn` | tasks in two queues of different weights all run to completion, with the right outputs and per-queue counts |
//! | `join` | tasks awaiting other tasks' `JoinHandle`s: a chain, a fan-in, a handle received after it was spawned, a handle of a finished task |
//! | `host_timers` | tasks awaiting the host's own timer, while other tasks keep the executor busy: the executor hands the thread back, the host's timers fire, and their wakes come in through the inbox (on monoio without the busy tasks: see [`MONOIO_TIMERS_WHILE_BUSY`]) |
//! | `cross_thread_wakes` | tasks woken by oneshots completed on other OS threads, a multi-producer channel fed by threads, and a task's output awaited on another thread |
//! | `abort` | tasks parked forever (`std::future::pending`) or never polled, aborted from the executor's thread and from another thread: `JoinError::Cancelled`, and their futures dropped on the executor's thread |
//!
//! | host | how the executor runs |
//! |---|---|
//! | `tokio_localset_run_until` | `LocalSet::run_until(executor.run_until(scenario))` inside a current-thread `block_on` |
//! | `tokio_localset_run` | `executor.run()` spawned with `spawn_local`; the scenario is the `LocalSet`'s main future |
//! | `tokio_current_thread` | current-thread `Runtime::block_on(executor.run_until(..))` |
//! | `tokio_multi_thread_spawn_blocking` | built on a `spawn_blocking` thread of a multi-thread runtime and driven there by `Handle::block_on`; timers are the multi-thread runtime's (they fire on its workers) |
//! | `tokio_std_thread_multi_thread_timers` | a dedicated std thread with its own current-thread runtime (no timer driver); the timers are a multi-thread runtime's, through its `Handle` |
//! | `smol_block_on` | `smol::block_on(executor.run_until(..))`, `smol::Timer` (async-io's: driven by `block_on` while it parks, else by async-io's own thread) |
//! | `smol_local_executor_run` | `executor.run()` spawned on a `smol::LocalExecutor`; the scenario is its main future |
//! | `futures_block_on` | `futures::executor::block_on(executor.run_until(..))`; no timers there, so the "timer" is a std thread completing a oneshot |
//! | `monoio_legacy` | monoio's legacy (epoll) driver with its timer, `Runtime::block_on(executor.run_until(..))`; `sync` feature for cross-thread wakes |
//! | `monoio_io_uring` | the same with monoio's io_uring driver; skipped (with a message) where io_uring is refused |
//! | `glommio_local_executor` | a glommio `LocalExecutor` on its own thread; skipped (with a message) where it cannot be created |
//!
//! No assertion depends on timing: the host timers are only sources of wakes
//! (1 to 5 ms), and the only time limit is a hang guard around each test.

mod common;
use common::yield_once;

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use clockworker::{Executor, ExecutorBuilder, JoinError, JoinHandle, QueueHandle, yield_maybe};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

/// Only a hang guard: a test still running after this is stuck.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Heavy,
    Light,
}

const HEAVY_WEIGHT: u32 = 8;
const LIGHT_WEIGHT: u32 = 1;

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The host's timer: a future that completes after the duration.
type Timer = Rc<dyn Fn(Duration) -> LocalFuture>;

/// What a scenario gets.
struct Env {
    executor: Rc<Executor<Queue>>,
    heavy: QueueHandle,
    light: QueueHandle,
    sleep: Timer,
    /// The thread the executor was built on and runs on.
    thread: ThreadId,
    /// Whether the host fires its timers while a task of its own (the
    /// executor's run future) keeps waking itself. See [`host_timers`].
    timers_while_busy: bool,
}

impl Env {
    /// The queues alternately, by index.
    fn queue(&self, index: u64) -> &QueueHandle {
        if index % 2 == 0 {
            &self.heavy
        } else {
            &self.light
        }
    }
}

/// Builds the executor on the calling thread, with the host's timer.
fn new_executor(sleep: Timer) -> (Rc<Executor<Queue>>, Env) {
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Heavy, HEAVY_WEIGHT)
        .with_queue(Queue::Light, LIGHT_WEIGHT)
        .build()
        .unwrap();
    let env = Env {
        executor: Rc::clone(&executor),
        heavy: executor.queue(Queue::Heavy).unwrap(),
        light: executor.queue(Queue::Light).unwrap(),
        sleep,
        thread: std::thread::current().id(),
        timers_while_busy: true,
    };
    (executor, env)
}

/// After a scenario: every task ended, in exactly one way, none by panicking.
fn check_ended(executor: &Executor<Queue>) {
    let stats = executor.stats();
    assert_eq!(stats.live_tasks, 0, "tasks left alive: {stats:?}");
    assert_eq!(stats.panicked, 0, "{stats:?}");
    assert_eq!(
        stats.spawned,
        stats.completed + stats.cancelled,
        "every task ends exactly once: {stats:?}"
    );
}

/// Runs a whole test (driver and scenario) on a new thread, and fails if it
/// has not finished after [`HANG_GUARD`]. The hung thread is left behind.
fn on_thread(test: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("hung: still running after {HANG_GUARD:?}"),
    }
}

/// A test that cannot run here says why on stderr and passes.
fn skip(host: &str, why: impl std::fmt::Display) {
    eprintln!("SKIPPED {host}: {why}");
}

/// Records the thread it is dropped on.
struct DropGuard(Arc<Mutex<Option<ThreadId>>>);

impl DropGuard {
    fn new() -> (Self, Arc<Mutex<Option<ThreadId>>>) {
        let dropped_on = Arc::new(Mutex::new(None));
        (DropGuard(Arc::clone(&dropped_on)), dropped_on)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

/// Awaits `rx`, and tells `armed` once the receiver has registered its waker
/// (its first `Pending`): a send after that must wake the task.
async fn recv_armed<T>(
    mut rx: oneshot::Receiver<T>,
    armed: std::sync::mpsc::Sender<()>,
) -> Result<T, oneshot::Canceled> {
    let mut armed = Some(armed);
    std::future::poll_fn(move |cx| {
        let poll = rx.poll_unpin(cx);
        if poll.is_pending() {
            if let Some(armed) = armed.take() {
                armed.send(()).unwrap();
            }
        }
        poll
    })
    .await
}

// ---------------------------------------------------------------- scenarios

/// Spawn: tasks in both queues (two thirds heavy), each yielding a few times
/// and sharing non-`Send` state, some spawning a child into the other queue;
/// all complete with the right outputs, and each queue counts its own.
async fn spawn(env: Env) {
    const N: u64 = 120;
    let polls = Rc::new(Cell::new(0u64));
    let mut handles = Vec::new();
    let (mut heavy, mut light) = (0u64, 0u64);
    for i in 0..N {
        let queue = if i % 3 == 2 {
            light += 1;
            &env.light
        } else {
            heavy += 1;
            &env.heavy
        };
        let other = if i % 3 == 2 {
            env.heavy.clone()
        } else {
            env.light.clone()
        };
        let polls = Rc::clone(&polls);
        handles.push(queue.spawn(async move {
            for _ in 0..i % 4 {
                polls.set(polls.get() + 1);
                yield_once().await;
            }
            yield_maybe().await;
            if i % 10 == 0 {
                // A child in the other queue; joined here.
                i * i + other.spawn(async move { i + 1 }).await.unwrap()
            } else {
                i * i
            }
        }));
    }
    let children = N.div_ceil(10);
    let ids: HashSet<_> = handles.iter().map(|handle| handle.id().unwrap()).collect();
    assert_eq!(ids.len(), handles.len(), "task ids must be unique");

    for (i, handle) in (0..N).zip(handles) {
        let expected = if i % 10 == 0 { i * i + i + 1 } else { i * i };
        assert_eq!(handle.await.unwrap(), expected, "task {i}");
    }
    assert_eq!(polls.get(), (0..N).map(|i| i % 4).sum::<u64>());

    // The children went to the other queue: those of heavy tasks (i % 3 != 2)
    // to light, those of light tasks to heavy.
    let light_children = (0..N).filter(|i| i % 10 == 0 && i % 3 != 2).count() as u64;
    let heavy_children = children - light_children;
    let heavy_stats = env.executor.queue_stats(Queue::Heavy).unwrap();
    let light_stats = env.executor.queue_stats(Queue::Light).unwrap();
    assert_eq!(heavy_stats.weight, HEAVY_WEIGHT);
    assert_eq!(light_stats.weight, LIGHT_WEIGHT);
    assert_eq!(heavy_stats.spawned, heavy + heavy_children);
    assert_eq!(heavy_stats.completed, heavy + heavy_children);
    assert_eq!(light_stats.spawned, light + light_children);
    assert_eq!(light_stats.completed, light + light_children);
}

/// Join: a dependency chain across both queues, a fan-in, a task that gets
/// the handle it awaits only after both were spawned, and a handle awaited
/// after its task finished.
async fn join(env: Env) {
    // A chain: task k awaits task k - 1 and adds k.
    const CHAIN: u64 = 12;
    let mut previous: Option<JoinHandle<u64>> = None;
    for k in 0..CHAIN {
        let before = previous.take();
        previous = Some(env.queue(k).spawn(async move {
            let base = match before {
                Some(handle) => handle.await.unwrap(),
                None => 0,
            };
            yield_once().await;
            base + k
        }));
    }
    let chain_end = previous.unwrap();

    // A fan-in: one light task awaits sixteen leaves in both queues.
    let leaves: Vec<JoinHandle<u64>> = (0..16u64)
        .map(|i| {
            env.queue(i).spawn(async move {
                for _ in 0..i % 3 {
                    yield_once().await;
                }
                i * 3
            })
        })
        .collect();
    let collector = env.light.spawn(async move {
        let mut sum = 0;
        for leaf in leaves {
            sum += leaf.await.unwrap();
        }
        sum
    });

    // A waiter spawned before the task it awaits; it gets the handle later.
    let (handle_tx, handle_rx) = oneshot::channel::<JoinHandle<u64>>();
    let waiter = env
        .heavy
        .spawn(async move { handle_rx.await.unwrap().await.unwrap() * 2 });
    let late = env.light.spawn(async move {
        yield_once().await;
        21
    });
    handle_tx.send(late).unwrap();

    // A task that finished before anyone awaited it.
    let early = env.light.spawn(async { 5u64 });
    let top = env.heavy.spawn(async move {
        // Let `early` run to completion first.
        while !early.is_finished() {
            yield_once().await;
        }
        early.await.unwrap()
    });

    assert_eq!(
        collector.await.unwrap(),
        (0..16).map(|i| i * 3).sum::<u64>()
    );
    assert_eq!(chain_end.await.unwrap(), (0..CHAIN).sum::<u64>());
    assert_eq!(waiter.await.unwrap(), 42);
    assert_eq!(top.await.unwrap(), 5);
}

/// Timers from the host: tasks in both queues await the host's timer three
/// times each, and so does the awaiting future, while two busy tasks (one in
/// each queue, one yielding with `yield_maybe`, one at every poll) stay
/// runnable until every timer has fired. The host runs its timers only when
/// the executor hands the thread back, so the timers firing proves that the
/// executor yields to the host while it still has work (`driver_yields`).
///
/// A host that does not fire timers while its own task keeps waking itself
/// (`timers_while_busy == false`) gets no busy tasks: there the timers fire
/// while the executor is idle, which proves the wakes come back, not the
/// yielding.
async fn host_timers(env: Env) {
    const TASKS: u64 = 6;
    const SLEEPS: u64 = 3;
    let before = env.executor.stats();
    let fired = Rc::new(Cell::new(0u64));
    let mut timed = Vec::new();
    for i in 0..TASKS {
        let sleep = Rc::clone(&env.sleep);
        let fired = Rc::clone(&fired);
        timed.push(env.queue(i).spawn(async move {
            for _ in 0..SLEEPS {
                sleep(Duration::from_millis(1 + i % 5)).await;
                fired.set(fired.get() + 1);
            }
            i
        }));
    }
    let all_fired = move |fired: &Cell<u64>| fired.get() == TASKS * SLEEPS;

    let mut busy = Vec::new();
    if env.timers_while_busy {
        let spin = Rc::clone(&fired);
        busy.push(env.heavy.spawn(async move {
            let mut spins = 0u64;
            while !all_fired(&spin) {
                spins += 1;
                yield_maybe().await;
            }
            spins
        }));
        let spin = Rc::clone(&fired);
        busy.push(env.light.spawn(async move {
            let mut spins = 0u64;
            while !all_fired(&spin) {
                spins += 1;
                yield_once().await;
            }
            spins
        }));
    }

    // The awaiting future waits on the host's timer as well.
    (env.sleep)(Duration::from_millis(2)).await;

    let mut outputs = Vec::new();
    for handle in timed {
        outputs.push(handle.await.unwrap());
    }
    assert_eq!(outputs, (0..TASKS).collect::<Vec<_>>());
    assert!(all_fired(&fired), "every timer fired");
    for handle in busy {
        assert!(handle.await.unwrap() > 0);
    }

    let after = env.executor.stats();
    assert!(
        after.remote_wakes > before.remote_wakes,
        "timer wakes come in through the inbox: {after:?}"
    );
    if env.timers_while_busy {
        assert!(
            after.driver_yields > before.driver_yields,
            "the executor handed the thread back while busy: {after:?}"
        );
    }
}

/// Cross-thread wakes: tasks await oneshots completed on other OS threads
/// (after the receiver has registered its waker, so each send is a wake), a
/// task sums a channel fed by several producer threads, and one task's output
/// is awaited on another thread (a wake the other way). Every task resumes on
/// the executor's thread.
async fn cross_thread_wakes(env: Env) {
    const N: u64 = 8;
    let executor_thread = env.thread;
    let mut threads = Vec::new();
    let mut handles = Vec::new();
    for i in 0..N {
        let (tx, rx) = oneshot::channel::<u64>();
        let (armed_tx, armed_rx) = std::sync::mpsc::channel::<()>();
        threads.push(std::thread::spawn(move || {
            armed_rx.recv().unwrap();
            tx.send(i * 7).unwrap();
        }));
        handles.push(env.queue(i).spawn(async move {
            let value = recv_armed(rx, armed_tx).await.unwrap();
            assert_eq!(std::thread::current().id(), executor_thread);
            value + 1
        }));
    }

    // Several producer threads, one consumer task.
    const PRODUCERS: u64 = 4;
    const ITEMS: u64 = 50;
    let (items_tx, items_rx) = mpsc::unbounded::<u64>();
    for p in 0..PRODUCERS {
        let items_tx = items_tx.clone();
        threads.push(std::thread::spawn(move || {
            for item in 0..ITEMS {
                items_tx.unbounded_send(p * 1000 + item).unwrap();
                if item % 10 == 0 {
                    std::thread::yield_now();
                }
            }
        }));
    }
    drop(items_tx);
    let consumer = env.light.spawn(async move {
        items_rx
            .fold(0u64, |sum, item| async move { sum + item })
            .await
    });

    // A task woken from one thread whose output is awaited on another.
    let (go_tx, go_rx) = oneshot::channel::<u64>();
    let (armed_tx, armed_rx) = std::sync::mpsc::channel::<()>();
    let relay = env.heavy.spawn(async move {
        let value = recv_armed(go_rx, armed_tx).await.unwrap();
        assert_eq!(std::thread::current().id(), executor_thread);
        value * 3
    });
    let (result_tx, result_rx) = oneshot::channel::<u64>();
    threads.push(std::thread::spawn(move || {
        let value = futures::executor::block_on(relay).unwrap();
        result_tx.send(value).unwrap();
    }));
    threads.push(std::thread::spawn(move || {
        armed_rx.recv().unwrap();
        go_tx.send(14).unwrap();
    }));

    for (i, handle) in (0..N).zip(handles) {
        assert_eq!(handle.await.unwrap(), i * 7 + 1);
    }
    let expected: u64 = (0..PRODUCERS)
        .map(|p| (0..ITEMS).map(|item| p * 1000 + item).sum::<u64>())
        .sum();
    assert_eq!(consumer.await.unwrap(), expected);
    assert_eq!(result_rx.await.unwrap(), 42);
    // Every thread has sent what it had to: joining them cannot block long.
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Abort: tasks parked forever on `std::future::pending`, aborted from the
/// executor's thread and from another thread, and a task aborted before it
/// was ever polled: each handle says `Cancelled`, and each future was dropped
/// on the executor's thread. A sibling that was not aborted completes.
async fn abort(env: Env) {
    let executor_thread = env.thread;
    assert_eq!(std::thread::current().id(), executor_thread);
    let before = env.executor.stats();

    let parked = |queue: &QueueHandle| {
        let (guard, dropped_on) = DropGuard::new();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let handle = queue.spawn(async move {
            let _guard = guard;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
            unreachable!("pending() completed");
        });
        (handle, started_rx, dropped_on)
    };

    // Parked in the heavy queue, aborted from the executor's thread.
    let (handle, started, dropped_on) = parked(&env.heavy);
    started.await.unwrap();
    assert!(!handle.is_finished());
    assert_eq!(*dropped_on.lock().unwrap(), None);
    handle.abort();
    let result = handle.await;
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(*dropped_on.lock().unwrap(), Some(executor_thread));

    // Parked in the light queue, aborted from another thread.
    let (handle, started, dropped_on) = parked(&env.light);
    started.await.unwrap();
    assert_eq!(*dropped_on.lock().unwrap(), None);
    let handle = std::thread::spawn(move || {
        handle.abort();
        handle
    })
    .join()
    .unwrap();
    let result = handle.await;
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(
        *dropped_on.lock().unwrap(),
        Some(executor_thread),
        "an abort from another thread drops the future on the executor's thread"
    );

    // Aborted before its first poll; a sibling spawned alongside completes.
    let (guard, dropped_on) = DropGuard::new();
    let never = env.heavy.spawn(async move {
        let _guard = guard;
        unreachable!("an aborted task was polled");
    });
    let sibling = env.heavy.spawn(async { 5 });
    never.abort();
    let result = never.await;
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(*dropped_on.lock().unwrap(), Some(executor_thread));
    assert_eq!(sibling.await.unwrap(), 5);

    let after = env.executor.stats();
    assert_eq!(after.cancelled - before.cancelled, 3, "{after:?}");
    let heavy = env.executor.queue_stats(Queue::Heavy).unwrap();
    let light = env.executor.queue_stats(Queue::Light).unwrap();
    assert_eq!((heavy.cancelled, light.cancelled), (2, 1));
}

// ---------------------------------------------------------------- hosts

/// Every driver takes the scenario as a `Send` function of the [`Env`] (the
/// futures it makes are `!Send`; some hosts build the executor on a thread
/// of their own).
trait Scenario<F>: FnOnce(Env) -> F + Send + 'static {}
impl<S: FnOnce(Env) -> F + Send + 'static, F> Scenario<F> for S {}

fn tokio_timer() -> Timer {
    Rc::new(|duration| Box::pin(tokio::time::sleep(duration)))
}

fn async_io_timer() -> Timer {
    Rc::new(|duration| {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    })
}

/// For hosts without timers: a std thread sleeps, then completes a oneshot.
fn thread_timer() -> Timer {
    Rc::new(|duration| {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel::<()>();
            std::thread::spawn(move || {
                std::thread::sleep(duration);
                let _ = tx.send(());
            });
            rx.await.unwrap();
        })
    })
}

fn tokio_current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_localset_run_until<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(tokio_timer());
    let local = tokio::task::LocalSet::new();
    tokio_current_thread_runtime().block_on(local.run_until(executor.run_until(scenario(env))));
    check_ended(&executor);
}

fn tokio_localset_run<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(tokio_timer());
    let local = tokio::task::LocalSet::new();
    local.block_on(&tokio_current_thread_runtime(), async {
        let runner = tokio::task::spawn_local({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        scenario(env).await;
        runner.abort();
        let stopped = runner.await.unwrap_err();
        assert!(stopped.is_cancelled(), "run() ended with {stopped:?}");
    });
    check_ended(&executor);
}

fn tokio_current_thread<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(tokio_timer());
    tokio_current_thread_runtime().block_on(executor.run_until(scenario(env)));
    check_ended(&executor);
}

fn tokio_multi_thread_spawn_blocking<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let runtime = tokio_multi_thread_runtime();
    let blocking = runtime.spawn_blocking(move || {
        // Built here: the executor is `!Send`. `tokio::time::sleep` uses the
        // multi-thread runtime's timer (this thread is in its context), whose
        // wakes come from its worker threads.
        let (executor, env) = new_executor(tokio_timer());
        let handle = tokio::runtime::Handle::current();
        handle.block_on(executor.run_until(scenario(env)));
        check_ended(&executor);
    });
    match runtime.block_on(blocking) {
        Ok(()) => {}
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the blocking task failed: {error}"),
    }
}

fn tokio_std_thread_multi_thread_timers<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let runtime = tokio_multi_thread_runtime();
    let timers = runtime.handle().clone();
    let thread = std::thread::spawn(move || {
        // The multi-thread runtime's timers; this thread's runtime has no
        // timer driver of its own (a sleep made in its context would panic).
        let sleep: Timer = Rc::new(move |duration| {
            let _context = timers.enter();
            Box::pin(tokio::time::sleep(duration))
        });
        let (executor, env) = new_executor(sleep);
        let local_runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        local_runtime.block_on(executor.run_until(scenario(env)));
        check_ended(&executor);
    });
    if let Err(payload) = thread.join() {
        std::panic::resume_unwind(payload);
    }
}

fn smol_block_on<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(async_io_timer());
    smol::block_on(executor.run_until(scenario(env)));
    check_ended(&executor);
}

fn smol_local_executor_run<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(async_io_timer());
    let local = smol::LocalExecutor::new();
    smol::block_on(local.run(async {
        let runner = local.spawn({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        scenario(env).await;
        assert!(runner.cancel().await.is_none());
    }));
    check_ended(&executor);
}

fn futures_block_on<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let (executor, env) = new_executor(thread_timer());
    futures::executor::block_on(executor.run_until(scenario(env)));
    check_ended(&executor);
}

/// monoio (0.2.4, both drivers) runs its timers only when it parks, and it
/// parks only when its run queue is empty: a task that keeps waking itself
/// starves them, executor or not (a bare monoio task looping on
/// `wake_by_ref(); Pending` never sees a 1 ms `monoio::time::sleep` fire;
/// monoio-rs/monoio#370). The executor's run future is such a task while it
/// has runnable tasks, so on monoio `host_timers` runs without busy tasks.
#[cfg(target_os = "linux")]
const MONOIO_TIMERS_WHILE_BUSY: bool = false;

#[cfg(target_os = "linux")]
fn monoio_timer() -> Timer {
    Rc::new(|duration| Box::pin(monoio::time::sleep(duration)))
}

#[cfg(target_os = "linux")]
fn monoio_legacy<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let (executor, mut env) = new_executor(monoio_timer());
    env.timers_while_busy = MONOIO_TIMERS_WHILE_BUSY;
    runtime.block_on(executor.run_until(scenario(env)));
    check_ended(&executor);
}

#[cfg(target_os = "linux")]
fn monoio_io_uring<F: Future<Output = ()>>(scenario: impl Scenario<F>) {
    let built = std::panic::catch_unwind(|| {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
    });
    let mut runtime = match built {
        Ok(Ok(runtime)) => runtime,
        Ok(Err(error)) => return skip("monoio io_uring", format!("no io_uring runtime: {error}")),
        Err(panic) => {
            return skip(
                "monoio io_uring",
                format!("building the runtime panicked: {}", panic_text(&*panic)),
            );
        }
    };
    let (executor, mut env) = new_executor(monoio_timer());
    env.timers_while_busy = MONOIO_TIMERS_WHILE_BUSY;
    runtime.block_on(executor.run_until(scenario(env)));
    check_ended(&executor);
}

#[cfg(target_os = "linux")]
fn glommio_local_executor<F: Future<Output = ()> + 'static>(scenario: impl Scenario<F>) {
    use std::sync::atomic::{AtomicBool, Ordering};

    // Set once the scenario's thread is up: a failure after that is the
    // scenario's, not glommio's refusal to start.
    let started = Arc::new(AtomicBool::new(false));
    let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let started = Arc::clone(&started);
        glommio::LocalExecutorBuilder::default()
            // Less locked memory than the default 10 MiB of IO buffers, for
            // the usual 8 MiB RLIMIT_MEMLOCK; the scenarios do no IO.
            .io_memory(1 << 20)
            .spawn(move || async move {
                started.store(true, Ordering::SeqCst);
                let sleep: Timer = Rc::new(|duration| Box::pin(glommio::timer::sleep(duration)));
                let (executor, env) = new_executor(sleep);
                executor.run_until(scenario(env)).await;
                check_ended(&executor);
            })
    }));
    let handle = match spawned {
        Ok(Ok(handle)) => handle,
        Ok(Err(error)) => return skip("glommio", format!("no executor: {error}")),
        Err(panic) => {
            return skip(
                "glommio",
                format!("creating the executor panicked: {}", panic_text(&*panic)),
            );
        }
    };
    match handle.join() {
        Ok(()) => {}
        Err(glommio::GlommioError::BuilderError(glommio::BuilderErrorKind::ThreadPanic(
            payload,
        ))) if !started.load(Ordering::SeqCst) => skip(
            "glommio",
            format!("creating the executor panicked: {}", panic_text(&*payload)),
        ),
        Err(error) if !started.load(Ordering::SeqCst) => {
            skip("glommio", format!("the executor did not start: {error}"));
        }
        Err(glommio::GlommioError::BuilderError(glommio::BuilderErrorKind::ThreadPanic(
            payload,
        ))) => std::panic::resume_unwind(payload),
        Err(error) => panic!("glommio failed after the scenario started: {error}"),
    }
}

#[cfg(target_os = "linux")]
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(not a string)".to_owned()
    }
}

// ---------------------------------------------------------------- tests

macro_rules! matrix {
    ($($(#[$attr:meta])* $host:ident;)*) => {$(
        $(#[$attr])*
        mod $host {
            #[test]
            fn spawn() {
                super::on_thread(|| super::$host(super::spawn));
            }

            #[test]
            fn join() {
                super::on_thread(|| super::$host(super::join));
            }

            #[test]
            fn host_timers() {
                super::on_thread(|| super::$host(super::host_timers));
            }

            #[test]
            fn cross_thread_wakes() {
                super::on_thread(|| super::$host(super::cross_thread_wakes));
            }

            #[test]
            fn abort() {
                super::on_thread(|| super::$host(super::abort));
            }
        }
    )*};
}

matrix! {
    tokio_localset_run_until;
    tokio_localset_run;
    tokio_current_thread;
    tokio_multi_thread_spawn_blocking;
    tokio_std_thread_multi_thread_timers;
    smol_block_on;
    smol_local_executor_run;
    futures_block_on;
    #[cfg(target_os = "linux")]
    monoio_legacy;
    #[cfg(target_os = "linux")]
    monoio_io_uring;
    #[cfg(target_os = "linux")]
    glommio_local_executor;
}
