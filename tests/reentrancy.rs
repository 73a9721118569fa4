//! Running an executor from inside itself: awaiting its `run_until` in one of
//! its own tasks just awaits the future, while *blocking* on it there (a
//! foreign `block_on`) would park the thread inside the executor for ever.
//! That panics with a clear message instead, under the panic policy, and
//! leaves the executor usable.
//!
//! The panic hook still prints the expected panics to stderr.

mod common;
use common::{drive, live_tasks, panic_message, yield_n};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use clockworker::{Executor, ExecutorBuilder};
use futures::executor::block_on;
use futures::future::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};

fn executor(panic_on_task_panic: bool) -> Rc<Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_panic_on_task_panic(panic_on_task_panic)
        .build()
        .unwrap()
}

#[test]
fn awaiting_run_until_inside_an_own_task_awaits_the_future() {
    let executor = executor(true);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let outer = queue.spawn(async move {
        let sibling = inner.queue(0).unwrap().spawn(async {
            yield_n(3).await;
            7
        });
        inner.run_until(sibling).await.unwrap() * 6
    });
    assert_eq!(drive(executor.run_until(outer)).unwrap(), 42);
    assert_eq!(live_tasks(&executor), 0);
}

#[test]
fn blocking_on_run_until_inside_an_own_task_panics_instead_of_deadlocking() {
    let executor = executor(false);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let sibling = queue.spawn(async {
        yield_n(3).await;
        7
    });
    let blocker = queue.spawn(async move {
        // Pending until `sibling` runs, which it cannot while this blocks.
        block_on(inner.run_until(sibling))
    });
    let error = drive(executor.run_until(blocker)).unwrap_err();
    assert!(error.is_panic(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("blocked on"), "{text}");
    // The executor is still usable, and nothing leaked.
    let after = queue.spawn(async { 1 });
    assert_eq!(drive(executor.run_until(after)).unwrap(), 1);
    // The detached sibling runs on to its end.
    drive(executor.run_until(yield_n(4)));
    assert_eq!(live_tasks(&executor), 0);
}

#[test]
fn blocking_on_run_until_inside_an_own_task_propagates_by_default() {
    let executor = executor(true);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let blocker = queue.spawn(async move {
        let pending = inner.queue(0).unwrap().spawn(yield_n(2));
        block_on(inner.run_until(pending))
    });
    let payload = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(blocker))))
        .expect_err("the panic propagates out of the run future");
    assert!(panic_message(&*payload).contains("blocked on"));
    // Both tasks are still accounted for: the orphaned child runs on.
    drive(executor.run_until(yield_n(4)));
    assert_eq!(live_tasks(&executor), 0);
}

#[test]
fn blocking_on_run_until_inside_the_run_until_future_panics() {
    let executor = executor(true);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        drive(executor.run_until(async move {
            let pending = queue.spawn(yield_n(2));
            block_on(inner.run_until(pending))
        }))
    }))
    .expect_err("blocking inside the run_until future panics");
    assert!(panic_message(&*payload).contains("blocked on"));
}

#[test]
fn blocking_on_a_ready_run_until_inside_an_own_task_is_allowed() {
    // Nothing to wait for, so nothing deadlocks: the future is just polled.
    let executor = executor(true);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let task = queue.spawn(async move { block_on(inner.run_until(async { 5 })) });
    assert_eq!(drive(executor.run_until(task)).unwrap(), 5);
}

#[test]
fn a_combinator_with_wakers_of_its_own_counts_as_blocking() {
    // Documented: `FuturesUnordered` polls with a waker the executor cannot
    // tell from a `block_on`'s, so a pending `run_until` inside it panics.
    let executor = executor(false);
    let queue = executor.queue(0).unwrap();
    let inner = executor.clone();
    let task = queue.spawn(async move {
        let pending = inner.queue(0).unwrap().spawn(yield_n(2));
        let mut set = FuturesUnordered::new();
        set.push(inner.run_until(pending).boxed_local());
        set.next().await
    });
    let error = drive(executor.run_until(task)).unwrap_err();
    assert!(error.to_string().contains("blocked on"), "{error}");
    drive(executor.run_until(yield_n(4)));
    assert_eq!(live_tasks(&executor), 0);
}

/// The `run_until` future is woken from inside the turn that polls it (a
/// task it awaits ends, or it yields): the turn polls it again before it
/// ends, without waking the host. When the future yields with no task to
/// run, the turn ends idle and must then ask the host to poll again, or a
/// host that polls only when woken would stall.
#[test]
fn a_run_until_future_woken_inside_its_own_turn_is_polled_again() {
    let executor = ExecutorBuilder::new().with_queue((), 1).build().unwrap();
    let queue = executor.queue(()).unwrap();
    // Yields with no task at all.
    assert_eq!(drive(executor.run_until(async { yield_n(100).await })), ());
    // Yields beside an idle task, then awaits tasks that end in the turn.
    let idle = queue.spawn(std::future::pending::<()>());
    let sum = drive(executor.run_until(async {
        yield_n(10).await;
        let mut sum = 0;
        for i in 0..50 {
            sum += queue.spawn(async move { i }).await.unwrap();
        }
        sum
    }));
    assert_eq!(sum, (0..50).sum());
    assert!(!idle.is_finished());
}
