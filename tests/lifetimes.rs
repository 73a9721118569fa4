//! The lifetime rules of tasks, handles, wakers and the executor.
//!
//! Every rule is checked through what a user can observe: a flag set by the
//! `Drop` of something the task's future owns (and on which thread), how many
//! times a future was polled, what its `JoinHandle` resolves to, and whether
//! anything panics or hangs.

mod common;
use common::{drive, yield_n};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};

use clockworker::{
    BuildError, Executor, ExecutorBuilder, JoinError, JoinHandle, PanicError, QueueHandle, TaskId,
    UnknownQueue,
};
use futures::FutureExt;
use futures::channel::oneshot;
use futures::executor::block_on;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    A,
    B,
}

fn executor() -> Rc<Executor<Queue>> {
    ExecutorBuilder::new()
        .with_queue(Queue::A, 2)
        .with_queue(Queue::B, 1)
        .build()
        .unwrap()
}

fn queues(executor: &Executor<Queue>) -> (QueueHandle, QueueHandle) {
    (
        executor.queue(Queue::A).unwrap(),
        executor.queue(Queue::B).unwrap(),
    )
}

/// Records that it was dropped, and on which thread.
struct DropProbe(Arc<Mutex<Option<ThreadId>>>);

#[derive(Clone)]
struct Dropped(Arc<Mutex<Option<ThreadId>>>);

fn probe() -> (DropProbe, Dropped) {
    let cell = Arc::new(Mutex::new(None));
    (DropProbe(Arc::clone(&cell)), Dropped(cell))
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(thread::current().id());
    }
}

impl Dropped {
    fn yes(&self) -> bool {
        self.0.lock().unwrap().is_some()
    }

    fn on(&self) -> Option<ThreadId> {
        *self.0.lock().unwrap()
    }
}

/// A future that never completes and is never woken, counting its polls.
struct Idle {
    polls: Rc<Cell<u32>>,
}

impl Future for Idle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        Poll::Pending
    }
}

/// Polled every time it is woken, stashing its latest waker for the test.
fn stash_waker(slot: Arc<Mutex<Option<Waker>>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx| {
        *slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::<()>::Pending
    })
}

fn is_cancelled<T: std::fmt::Debug>(result: &Result<T, JoinError>) -> bool {
    matches!(result, Err(JoinError::Cancelled))
}

/// The output of a handle that must have resolved already (awaited once,
/// outside any executor).
fn resolved<T>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    handle.now_or_never().expect("the handle has not resolved")
}

/// Runs `test` on a new thread; fails, instead of hanging, if it has not
/// finished after a generous hang guard (the thread is then left behind).
/// Only a hang guard: no test here comes anywhere near it.
fn with_hang_guard(test: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("hung: the test was still running after the 60 s hang guard"),
    }
}

/// Runs `executor` for a few turns, with nothing to wait for.
fn run_briefly(executor: &Executor<Queue>) {
    drive(executor.run_until(yield_n(5)));
}

/// Runs `executor` until `done()` holds (checked between task polls).
fn run_until_true(executor: &Executor<Queue>, done: impl Fn() -> bool) {
    drive(executor.run_until(async {
        while !done() {
            yield_n(1).await;
        }
    }));
}

/// `future`, counting its first poll in `started`.
fn counted<F: Future>(
    started: &Rc<Cell<usize>>,
    future: F,
) -> impl Future<Output = F::Output> + use<F> {
    let started = Rc::clone(started);
    async move {
        started.set(started.get() + 1);
        future.await
    }
}

// ---------------------------------------------------------------- abort

/// An idle task (pending on something that is never woken) is aborted from
/// outside the executor: its future is dropped the next time the executor
/// runs, without being polled again, and the handle resolves to `Cancelled`.
#[test]
fn abort_drops_idle_future_when_executor_next_runs() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0));
        let handle = a.spawn({
            let polls = Rc::clone(&polls);
            async move {
                let _probe = probe;
                Idle { polls }.await;
            }
        });
        run_until_true(&executor, || polls.get() > 0);
        run_briefly(&executor);
        assert_eq!(polls.get(), 1, "the idle task should have been polled once");
        assert!(!dropped.yes());

        handle.abort();
        // Not dropped on the calling thread, in `abort` itself: on the next run.
        run_briefly(&executor);
        assert!(dropped.yes(), "aborted idle future not dropped");
        assert_eq!(dropped.on(), Some(thread::current().id()));
        assert_eq!(polls.get(), 1, "an aborted future must not be polled again");
        assert!(handle.is_finished());
        // The executor is not running any more: the handle has its output already.
        assert!(is_cancelled(&resolved(handle)));
    });
}

/// The same, aborted and awaited by another task of the executor: by the
/// time the handle resolves, the future has been dropped.
///
/// The awaiting task is woken while the executor reaps the aborted task; that
/// wake must not be lost. Regression (failed up to 9ba9882): the run loop
/// went from dropping aborted futures straight to picking the next task
/// without draining the wakes those drops made, and parked.
#[test]
fn abort_of_idle_task_awaited_by_another_task() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0));
        let idle = b.spawn({
            let polls = Rc::clone(&polls);
            async move {
                let _probe = probe;
                Idle { polls }.await;
            }
        });
        let aborter = a.spawn({
            let polls = Rc::clone(&polls);
            async move {
                while polls.get() == 0 {
                    yield_n(1).await;
                }
                idle.abort();
                let result = idle.await;
                (result, dropped.yes())
            }
        });
        let (result, dropped_before_resolving) = drive(executor.run_until(aborter)).unwrap();
        assert!(is_cancelled(&result), "{result:?}");
        assert!(dropped_before_resolving, "handle resolved before the drop");
        assert_eq!(polls.get(), 1);
    });
}

/// The same lost wake, caused by the aborted future's `Drop`: it drops a
/// channel sender, which wakes a task of the same executor waiting on it.
/// Regression, as above.
#[test]
fn drop_of_aborted_future_wakes_a_sibling() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let (tx, rx) = oneshot::channel::<()>();
        let started = Rc::new(Cell::new(0));
        let holder = a.spawn(counted(&started, async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        }));
        let waiter = b.spawn(counted(&started, async move { rx.await.is_err() }));
        run_until_true(&executor, || started.get() == 2);
        holder.abort();
        let sender_gone = drive(executor.run_until(waiter)).unwrap();
        assert!(sender_gone);
        assert!(is_cancelled(&resolved(holder)));
    });
}

/// The abort and the await in the `run_until` future itself (not a task): the
/// handle resolves once the future is dropped.
#[test]
fn abort_of_idle_task_awaited_by_run_until() {
    with_hang_guard(|| {
        let executor = executor();
        let (_, b) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0));
        let idle = b.spawn({
            let polls = Rc::clone(&polls);
            async move {
                let _probe = probe;
                Idle { polls }.await;
            }
        });
        let (result, dropped_before_resolving) = drive(executor.run_until(async {
            while polls.get() == 0 {
                yield_n(1).await;
            }
            idle.abort();
            let result = idle.await;
            (result, dropped.yes())
        }));
        assert!(is_cancelled(&result), "{result:?}");
        assert!(dropped_before_resolving, "handle resolved before the drop");
        assert_eq!(polls.get(), 1);
    });
}

/// A task aborted before it ever ran is never polled.
#[test]
fn abort_of_never_polled_task() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, dropped) = probe();
        let polled = Rc::new(Cell::new(false));
        let handle = a.spawn({
            let polled = Rc::clone(&polled);
            async move {
                let _probe = probe;
                polled.set(true);
            }
        });
        handle.abort();
        assert!(!dropped.yes());
        let result = drive(executor.run_until(handle));
        assert!(is_cancelled(&result), "{result:?}");
        assert!(dropped.yes());
        assert!(!polled.get(), "a task aborted before its first poll ran");
    });
}

/// A task that is runnable and waiting in its queue (it yielded) is aborted
/// by the task that runs before it: it is dropped, not polled.
#[test]
fn abort_of_task_waiting_in_its_queue() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0u32));
        let victim = a.spawn({
            let polls = Rc::clone(&polls);
            async move {
                let _probe = probe;
                loop {
                    polls.set(polls.get() + 1);
                    yield_n(1).await;
                }
            }
        });
        let victim = Rc::new(victim);
        let aborter = a.spawn({
            let victim = Rc::clone(&victim);
            let polls = Rc::clone(&polls);
            async move {
                // Same queue, spawned second: runs right after the victim's first
                // poll, while the victim is queued again.
                assert_eq!(polls.get(), 1);
                victim.abort();
            }
        });
        drive(executor.run_until(async {
            aborter.await.unwrap();
            yield_n(3).await;
        }));
        assert!(dropped.yes());
        assert_eq!(polls.get(), 1, "the aborted task was polled again");
        let victim = Rc::try_unwrap(victim).unwrap();
        assert!(is_cancelled(&resolved(victim)));
    });
}

/// A task that aborts itself and then returns `Pending` is dropped before its
/// next poll.
#[test]
fn self_abort_while_running() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0u32));
        let slot: Rc<RefCell<Option<Rc<JoinHandle<()>>>>> = Rc::default();
        let handle = Rc::new(a.spawn({
            let polls = Rc::clone(&polls);
            let slot = Rc::clone(&slot);
            async move {
                let _probe = probe;
                let own = slot.borrow_mut().take().unwrap();
                loop {
                    polls.set(polls.get() + 1);
                    if polls.get() == 2 {
                        own.abort();
                    }
                    yield_n(1).await;
                }
            }
        }));
        *slot.borrow_mut() = Some(Rc::clone(&handle));
        run_briefly(&executor);
        assert!(dropped.yes());
        assert_eq!(polls.get(), 2, "polled after aborting itself");
        // The future, which held the other `Rc` of the handle, is gone.
        let handle = Rc::try_unwrap(handle).expect("the task's future still holds the handle");
        assert!(is_cancelled(&resolved(handle)));
    });
}

/// Aborting a finished task keeps its result; aborting twice is harmless.
#[test]
fn abort_after_completion_keeps_the_output() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, output_dropped) = probe();
        let handle = a.spawn(async move { (42, probe) });
        drive(executor.run_until(async {
            while !handle.is_finished() {
                yield_n(1).await;
            }
        }));
        handle.abort();
        handle.abort();
        run_briefly(&executor);
        assert!(
            !output_dropped.yes(),
            "the output of a finished task was dropped"
        );
        let (value, _probe) = resolved(handle).unwrap();
        assert_eq!(value, 42);
    });
}

/// `abort` from another thread, on an idle task: the future is dropped on the
/// executor's thread, and the handle, awaited on that other thread, resolves
/// to `Cancelled`.
#[test]
fn abort_from_another_thread() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let (probe, dropped) = probe();
        let polls = Rc::new(Cell::new(0));
        let handle = a.spawn({
            let polls = Rc::clone(&polls);
            async move {
                let _probe = probe;
                Idle { polls }.await;
            }
        });
        run_until_true(&executor, || polls.get() > 0);
        assert_eq!(polls.get(), 1);

        let (result_tx, result_rx) = oneshot::channel();
        let aborter = thread::spawn(move || {
            handle.abort();
            let result = block_on(handle);
            result_tx.send(result).unwrap();
        });
        let result = block_on(executor.run_until(result_rx)).unwrap();
        aborter.join().unwrap();
        assert!(is_cancelled(&result), "{result:?}");
        assert_eq!(dropped.on(), Some(thread::current().id()));
        assert_eq!(polls.get(), 1);
    });
}

/// A handle awaited on another thread gets the output of a task that
/// completes normally.
#[test]
fn join_handle_awaited_on_another_thread() {
    with_hang_guard(|| {
        let executor = executor();
        let (_, b) = queues(&executor);
        let handle = b.spawn(async {
            yield_n(3).await;
            String::from("done")
        });
        let (result_tx, result_rx) = oneshot::channel();
        let waiter = thread::spawn(move || result_tx.send(block_on(handle)).unwrap());
        let result = block_on(executor.run_until(result_rx)).unwrap();
        waiter.join().unwrap();
        assert_eq!(result.unwrap(), "done");
    });
}

// ---------------------------------------------------------------- handles

/// Dropping a handle detaches the task: it keeps running to completion, and
/// its output is dropped when it finishes.
#[test]
fn dropped_handle_detaches_the_task() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        let ran_to_end = Rc::new(Cell::new(false));
        let (probe, output_dropped) = probe();
        let handle = a.spawn({
            let ran_to_end = Rc::clone(&ran_to_end);
            async move {
                yield_n(5).await;
                ran_to_end.set(true);
                probe
            }
        });
        drop(handle);
        drive(executor.run_until(async {
            while !ran_to_end.get() {
                yield_n(1).await;
            }
        }));
        assert!(
            output_dropped.yes(),
            "the output of a detached task was kept"
        );
    });
}

/// Tasks unfinished when `run_until` returns stay queued, and finish the next
/// time the executor runs; the same when a `run()` future is dropped.
#[test]
fn unfinished_tasks_survive_the_end_of_a_run() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let polls = Rc::new(Cell::new(0u32));
        let spawn_counter = |queue: &QueueHandle| {
            let polls = Rc::clone(&polls);
            queue.spawn(async move {
                for _ in 0..1000 {
                    polls.set(polls.get() + 1);
                    yield_n(1).await;
                }
            })
        };
        let first = spawn_counter(&a);
        let second = spawn_counter(&b);

        drive(executor.run_until(yield_n(1)));
        assert!(!first.is_finished() && !second.is_finished());
        let after_run_until = polls.get();
        assert!(after_run_until > 0);

        // A `run()` future dropped part way.
        drive(async {
            let run = std::pin::pin!(executor.run());
            let stop = std::pin::pin!(yield_n(2));
            futures::future::select(run, stop).await;
        });
        assert!(!first.is_finished() && !second.is_finished());

        drive(executor.run_until(async {
            first.await.unwrap();
            second.await.unwrap();
        }));
        assert_eq!(polls.get(), 2000);
    });
}

/// `JoinHandle::abort` and `is_finished` on the handle of a spawn that never
/// happened (the executor was gone).
#[test]
fn handle_of_a_spawn_after_drop_is_inert() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, _) = queues(&executor);
        drop(executor);
        let handle = a.spawn(async { 1 });
        assert!(handle.is_finished());
        assert_eq!(handle.id(), None);
        handle.abort();
        handle.abort();
        assert!(is_cancelled(&resolved(handle)));
    });
}

// ---------------------------------------------------------------- executor drop

/// Dropping the executor drops every unfinished future — idle, runnable in a
/// queue, woken from another thread but not yet run, never polled, aborted but
/// not yet reaped, detached — on the executor's thread, and every handle
/// resolves to `Cancelled`.
#[test]
fn dropping_the_executor_drops_every_unfinished_future() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let mut probes = Vec::new();
        let mut handles = Vec::new();
        let started = Rc::new(Cell::new(0));

        // Idle: polled once, pending on nothing.
        for queue in [&a, &b] {
            let (probe, dropped) = probe();
            probes.push(("idle", dropped));
            handles.push(queue.spawn(counted(&started, async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            })));
        }
        // Runnable: yields forever, so always queued or just woken.
        for queue in [&a, &b] {
            let (probe, dropped) = probe();
            probes.push(("runnable", dropped));
            handles.push(queue.spawn(counted(&started, async move {
                let _probe = probe;
                loop {
                    yield_n(1).await;
                }
            })));
        }
        // Woken from another thread after the last run.
        let waker_slot = Arc::new(Mutex::new(None));
        {
            let (probe, dropped) = probe();
            probes.push(("woken remotely", dropped));
            let slot = Arc::clone(&waker_slot);
            handles.push(b.spawn(counted(&started, async move {
                let _probe = probe;
                stash_waker(slot).await;
            })));
        }
        // Aborted after the last run.
        let aborted = {
            let (probe, dropped) = probe();
            probes.push(("aborted", dropped));
            a.spawn(counted(&started, async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            }))
        };
        // Detached.
        {
            let (probe, dropped) = probe();
            probes.push(("detached", dropped));
            drop(b.spawn(counted(&started, async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            })));
        }

        run_until_true(&executor, || started.get() == 7);

        let waker = waker_slot
            .lock()
            .unwrap()
            .take()
            .expect("task never polled");
        thread::spawn(move || waker.wake()).join().unwrap();
        aborted.abort();
        handles.push(aborted);
        // Never polled: spawned after the last run.
        for queue in [&a, &b] {
            let (probe, dropped) = probe();
            probes.push(("never polled", dropped));
            handles.push(queue.spawn(async move {
                let _probe = probe;
            }));
        }

        for (kind, dropped) in &probes {
            assert!(!dropped.yes(), "{kind} future dropped before the executor");
        }
        drop(executor);
        let here = Some(thread::current().id());
        for (kind, dropped) in &probes {
            assert_eq!(
                dropped.on(),
                here,
                "{kind} future not dropped on this thread"
            );
        }
        for handle in handles {
            assert!(handle.is_finished());
            let result = resolved(handle);
            assert!(is_cancelled(&result), "{result:?}");
        }
    });
}

/// While the executor is being dropped, futures' `Drop` impls wake other
/// tasks and spawn new ones: the woken tasks are dropped without being
/// polled, and the spawns are refused (their futures dropped, their handles
/// `Cancelled`).
#[test]
fn drop_impls_that_wake_and_spawn_during_executor_drop() {
    with_hang_guard(|| {
        struct OnDrop<F: FnMut()>(F);
        impl<F: FnMut()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }

        let executor = executor();
        let (a, b) = queues(&executor);
        let late_handles: Rc<RefCell<Vec<JoinHandle<()>>>> = Rc::default();
        let late_probes: Rc<RefCell<Vec<Dropped>>> = Rc::default();
        let receiver_got_value = Rc::new(Cell::new(false));

        let (tx, rx) = oneshot::channel::<u32>();
        let started = Rc::new(Cell::new(0));
        let receiver = b.spawn({
            let got = Rc::clone(&receiver_got_value);
            counted(&started, async move {
                let _ = rx.await;
                got.set(true);
            })
        });
        let sender = a.spawn({
            let late_handles = Rc::clone(&late_handles);
            let late_probes = Rc::clone(&late_probes);
            let queue = a.clone();
            counted(&started, async move {
                // Dropping the sender wakes the receiver.
                let _tx = tx;
                let _spawner = OnDrop(move || {
                    let (probe, dropped) = probe();
                    late_probes.borrow_mut().push(dropped);
                    late_handles.borrow_mut().push(queue.spawn(async move {
                        let _probe = probe;
                    }));
                });
                std::future::pending::<()>().await;
            })
        });
        run_until_true(&executor, || started.get() == 2);
        drop(executor);

        assert!(!receiver_got_value.get(), "a task was polled during drop");
        assert!(is_cancelled(&resolved(receiver)));
        assert!(is_cancelled(&resolved(sender)));
        let late_probes = late_probes.borrow();
        assert_eq!(late_probes.len(), 1);
        assert!(
            late_probes[0].yes(),
            "a future spawned during drop was kept"
        );
        for handle in late_handles.borrow_mut().drain(..) {
            assert_eq!(handle.id(), None);
            assert!(is_cancelled(&resolved(handle)));
        }
    });
}

/// A task holding handles to its own executor's queues does not keep the
/// executor alive: dropping the last `Rc<Executor>` drops the task.
#[test]
fn queue_handle_in_a_task_does_not_keep_the_executor_alive() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let (probe, dropped) = probe();
        let spawned_sibling = Rc::new(Cell::new(false));
        let handle = a.spawn({
            let own = a.clone();
            let other = b.clone();
            let spawned_sibling = Rc::clone(&spawned_sibling);
            async move {
                let _probe = probe;
                // The handles work while the executor lives.
                let sibling = own.spawn(async { 1 });
                other.spawn(async { 2 }).await.unwrap();
                spawned_sibling.set(sibling.await.unwrap() == 1);
                std::future::pending::<()>().await;
                drop((own, other));
            }
        });
        run_until_true(&executor, || spawned_sibling.get());

        let weak = Rc::downgrade(&executor);
        drop(executor);
        assert!(weak.upgrade().is_none());
        assert!(
            dropped.yes(),
            "the task (holding queue handles) outlived its executor"
        );
        assert!(is_cancelled(&resolved(handle)));
        // And the executor's core is gone: the handles we kept refuse to spawn.
        assert_eq!(a.spawn(async {}).id(), None);
        assert_eq!(b.spawn(async {}).id(), None);
    });
}

/// Spawning through a queue handle whose executor is gone drops the future at
/// once and returns a handle resolving to `Cancelled`.
#[test]
fn spawn_after_the_executor_is_dropped() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        drop(executor);
        for queue in [&a, &b, &a.clone()] {
            let (probe, dropped) = probe();
            let polled = Rc::new(Cell::new(false));
            let handle = queue.spawn({
                let polled = Rc::clone(&polled);
                async move {
                    let _probe = probe;
                    polled.set(true);
                    5
                }
            });
            assert!(dropped.yes(), "the refused future was kept");
            assert!(handle.is_finished());
            assert_eq!(handle.id(), None);
            assert!(is_cancelled(&resolved(handle)));
            assert!(!polled.get());
        }
    });
}

// ---------------------------------------------------------------- wakers

/// A waker kept past the executor's drop is harmless: waking it, cloning it,
/// dropping it, on this thread or another, does nothing.
#[test]
fn wake_after_the_executor_is_gone_is_a_no_op() {
    with_hang_guard(|| {
        let executor = executor();
        let (a, b) = queues(&executor);
        let polls = Rc::new(Cell::new(0u32));
        let mut slots = Vec::new();
        let mut handles = Vec::new();
        let mut probes = Vec::new();
        for queue in [&a, &b, &a, &b] {
            let slot = Arc::new(Mutex::new(None));
            let (probe, dropped) = probe();
            let polls = Rc::clone(&polls);
            handles.push(queue.spawn({
                let slot = Arc::clone(&slot);
                async move {
                    let _probe = probe;
                    polls.set(polls.get() + 1);
                    stash_waker(slot).await;
                }
            }));
            slots.push(slot);
            probes.push(dropped);
        }
        run_until_true(&executor, || polls.get() == 4);
        let mut wakers: Vec<Waker> = slots
            .iter()
            .map(|slot| slot.lock().unwrap().take().unwrap())
            .collect();

        drop(executor);
        assert!(probes.iter().all(Dropped::yes));

        // This thread.
        for waker in &wakers {
            waker.wake_by_ref();
            let clone = waker.clone();
            clone.wake();
        }
        wakers.pop().unwrap().wake();
        // Another thread, which also drops the last references.
        let more = wakers.split_off(1);
        thread::spawn(move || {
            for waker in &more {
                waker.wake_by_ref();
            }
            drop(more);
        })
        .join()
        .unwrap();
        drop(wakers);

        assert_eq!(polls.get(), 4, "a task ran after its executor was dropped");
        for handle in handles {
            assert!(is_cancelled(&resolved(handle)));
        }
    });
}

/// Wakes that race with the executor's drop: another thread keeps waking the
/// tasks while the executor is dropped. The drop ends (every future dropped,
/// on the executor's thread), and the late wakes are harmless.
#[test]
fn wakes_racing_with_the_executor_drop() {
    with_hang_guard(|| {
        for _round in 0..20 {
            let executor = executor();
            let (a, b) = queues(&executor);
            let mut slots = Vec::new();
            let mut probes = Vec::new();
            for i in 0..50 {
                let slot = Arc::new(Mutex::new(None));
                let (probe, dropped) = probe();
                let queue = if i % 2 == 0 { &a } else { &b };
                drop(queue.spawn({
                    let slot = Arc::clone(&slot);
                    async move {
                        let _probe = probe;
                        stash_waker(slot).await;
                    }
                }));
                slots.push(slot);
                probes.push(dropped);
            }
            run_until_true(&executor, || {
                slots.iter().all(|slot| slot.lock().unwrap().is_some())
            });
            let wakers: Vec<Waker> = slots
                .iter()
                .map(|slot| slot.lock().unwrap().take().unwrap())
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let started = Arc::new(Barrier::new(2));
            let waking = thread::spawn({
                let stop = Arc::clone(&stop);
                let started = Arc::clone(&started);
                move || {
                    started.wait();
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) || rounds == 0 {
                        for waker in &wakers {
                            waker.wake_by_ref();
                        }
                        rounds += 1;
                    }
                }
            });
            started.wait();
            drop(executor);
            stop.store(true, Ordering::Relaxed);
            waking.join().unwrap();
            let here = Some(thread::current().id());
            for dropped in &probes {
                assert_eq!(dropped.on(), here);
            }
        }
    });
}

/// Four threads each wake 1000 tasks (through oneshot channels) while the
/// executor runs; every task completes with the right output.
#[test]
fn cross_thread_wakes_from_four_threads() {
    with_hang_guard(|| {
        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 1000;
        let executor = executor();
        let (a, b) = queues(&executor);
        let start = Arc::new(Barrier::new(THREADS as usize + 1));
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for t in 0..THREADS {
            let mut senders = Vec::new();
            for i in 0..PER_THREAD {
                let (tx, rx) = oneshot::channel::<u64>();
                senders.push((t * PER_THREAD + i, tx));
                let queue = if i % 2 == 0 { &a } else { &b };
                handles.push(queue.spawn(async move { rx.await.unwrap() * 2 }));
            }
            let start = Arc::clone(&start);
            threads.push(thread::spawn(move || {
                start.wait();
                for (value, tx) in senders {
                    tx.send(value).unwrap();
                }
            }));
        }
        let total = block_on(executor.run_until(async {
            start.wait();
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            total
        }));
        for thread in threads {
            thread.join().unwrap();
        }
        let n = THREADS * PER_THREAD;
        assert_eq!(total, n * (n - 1)); // 2 * (0 + 1 + … + n-1)
    });
}

/// The same number of wakes, all arriving while the executor is not running
/// (more than the inbox's preallocated capacity): none is lost.
#[test]
fn burst_of_remote_wakes_while_the_executor_is_parked() {
    with_hang_guard(|| {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 1000;
        let executor = executor();
        let (a, b) = queues(&executor);
        let waiting = Rc::new(Cell::new(0usize));
        let mut handles = Vec::new();
        let mut senders: Vec<Vec<(usize, oneshot::Sender<usize>)>> =
            (0..THREADS).map(|_| Vec::new()).collect();
        for i in 0..THREADS * PER_THREAD {
            let (tx, rx) = oneshot::channel::<usize>();
            senders[i % THREADS].push((i, tx));
            let queue = if i % 2 == 0 { &a } else { &b };
            let waiting = Rc::clone(&waiting);
            handles.push(queue.spawn(async move {
                waiting.set(waiting.get() + 1);
                rx.await.unwrap() + 1
            }));
        }
        drive(executor.run_until(async {
            while waiting.get() < THREADS * PER_THREAD {
                yield_n(1).await;
            }
        }));
        let threads: Vec<_> = senders
            .into_iter()
            .map(|senders| {
                thread::spawn(move || {
                    for (value, tx) in senders {
                        tx.send(value).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(handles.iter().all(|handle| !handle.is_finished()));
        let outputs = drive(executor.run_until(async {
            let mut outputs = Vec::new();
            for handle in handles {
                outputs.push(handle.await.unwrap());
            }
            outputs
        }));
        let expected: Vec<usize> = (1..=THREADS * PER_THREAD).collect();
        assert_eq!(outputs, expected);
    });
}

/// The same tasks woken many times from several threads at once (duplicate
/// wakes of one task coalesce; none is lost and nothing runs twice at once).
#[test]
fn many_threads_waking_the_same_tasks() {
    with_hang_guard(|| {
        const TASKS: usize = 64;
        const THREADS: usize = 4;
        const ROUNDS: usize = 200;
        let executor = executor();
        let (a, b) = queues(&executor);
        // Each task counts how many rounds it has seen; a round is a counter
        // bumped by the threads, followed by a wake.
        let counters: Arc<Vec<AtomicUsize>> =
            Arc::new((0..TASKS).map(|_| AtomicUsize::new(0)).collect());
        let wakers: Arc<Vec<Mutex<Option<Waker>>>> =
            Arc::new((0..TASKS).map(|_| Mutex::new(None)).collect());
        let mut handles = Vec::new();
        for i in 0..TASKS {
            let counters = Arc::clone(&counters);
            let wakers = Arc::clone(&wakers);
            let queue = if i % 2 == 0 { &a } else { &b };
            handles.push(queue.spawn(std::future::poll_fn(move |cx| {
                *wakers[i].lock().unwrap() = Some(cx.waker().clone());
                if counters[i].load(Ordering::SeqCst) == THREADS * ROUNDS {
                    Poll::Ready(i)
                } else {
                    Poll::Pending
                }
            })));
        }
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let counters = Arc::clone(&counters);
                let wakers = Arc::clone(&wakers);
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        for i in 0..TASKS {
                            counters[i].fetch_add(1, Ordering::SeqCst);
                            if let Some(waker) = wakers[i].lock().unwrap().as_ref() {
                                waker.wake_by_ref();
                            }
                        }
                    }
                })
            })
            .collect();
        let outputs = block_on(executor.run_until(async {
            let mut outputs = Vec::new();
            for handle in handles {
                outputs.push(handle.await.unwrap());
            }
            outputs
        }));
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(outputs, (0..TASKS).collect::<Vec<_>>());
    });
}

// ---------------------------------------------------------------- auto traits

fn assert_send<T: Send>() {}
fn assert_send_sync<T: Send + Sync>() {}
fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn join_handle_is_send_when_the_output_is() {
    with_hang_guard(|| {
        assert_send::<JoinHandle<u32>>();
        assert_send::<JoinHandle<String>>();
        assert_send::<JoinHandle<()>>();
        assert_send::<JoinHandle<Result<Vec<u8>, JoinError>>>();
        // And usable as such: the handle of a finished task, moved to
        // another thread, gives the output there.
        let executor = executor();
        let (a, _) = queues(&executor);
        let handle = a.spawn(async { 7u32 });
        run_until_true(&executor, || handle.is_finished());
        let output = thread::spawn(move || resolved(handle)).join().unwrap();
        assert_eq!(output.unwrap(), 7);
    });
}

#[test]
fn errors_are_send_sync_errors() {
    with_hang_guard(|| {
        assert_error::<JoinError>();
        assert_error::<PanicError>();
        assert_error::<BuildError>();
        assert_error::<UnknownQueue>();
        assert_send_sync::<TaskId>();
        // Usable as boxed errors.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(JoinError::Cancelled);
        assert_eq!(boxed.to_string(), "task was cancelled");
        assert!(boxed.source().is_none());
    });
}
