//! Task panics: propagated out of the run future (the default), or caught and
//! reported through the task's handle (`with_panic_on_task_panic(false)`).
//!
//! The panic hook still prints each panic to stderr; that noise is expected.

mod common;
use common::{drive, yield_n};
use std::any::Any;
use std::cell::Cell;
use std::error::Error;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};
use std::time::Duration;

use clockworker::{Executor, ExecutorBuilder, JoinError, JoinHandle, PanicError};
use futures::channel::oneshot;
use futures::executor::block_on;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

/// The default configuration: task panics propagate.
fn propagating() -> Rc<Executor<Queue>> {
    ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 3)
        .with_queue(Queue::Background, 1)
        .build()
        .unwrap()
}

/// Task panics are caught and reported through the handle.
fn catching() -> Rc<Executor<Queue>> {
    ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 3)
        .with_queue(Queue::Background, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap()
}

/// Where a test running under [`on_thread_with_hang_guard`] is, and what it
/// found wrong so far: reported together if the test hangs later on.
#[derive(Clone)]
struct Report(Arc<Mutex<(&'static str, Vec<String>)>>);

impl Report {
    fn stage(&self, stage: &'static str) {
        self.0.lock().unwrap().0 = stage;
    }

    /// Records a problem unless `ok`.
    fn check(&self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.0.lock().unwrap().1.push(problem.into());
        }
    }

    /// Fails with every problem recorded.
    fn finish(&self) {
        let problems = &self.0.lock().unwrap().1;
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

/// Runs `f` on a new thread and returns its result; panics, with the stage
/// `f` reached and the problems it found, if it has not finished after a
/// generous hang guard (the thread is then left behind).
fn on_thread_with_hang_guard<T: Send + 'static>(f: impl FnOnce(Report) -> T + Send + 'static) -> T {
    let report = Report(Arc::new(Mutex::new(("setting up", Vec::new()))));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn({
        let report = report.clone();
        move || {
            let result = catch_unwind(AssertUnwindSafe(|| f(report)));
            let _ = tx.send(result);
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => {
            let (stage, problems) = &*report.0.lock().unwrap();
            panic!("hung after the 30 s hang guard, while {stage}; problems before: {problems:#?}")
        }
    }
}

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn drop_flag() -> (DropFlag, Rc<Cell<bool>>) {
    let flag = Rc::new(Cell::new(false));
    (DropFlag(Rc::clone(&flag)), flag)
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("panic in drop");
    }
}

fn message_of(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

fn expect_panic<T: std::fmt::Debug>(result: Result<T, JoinError>) -> PanicError {
    match result {
        Err(JoinError::Panic(panic)) => panic,
        other => panic!("expected JoinError::Panic, got {other:?}"),
    }
}

// ---------------------------------------------------------------- propagate (default)

/// The default: a task's panic comes out of `run_until` with its original
/// payload, `&str` or `String`.
#[test]
fn task_panic_propagates_out_of_run_until_with_the_original_payload() {
    let executor = propagating();
    let queue = executor.queue(Queue::Foreground).unwrap();

    let mut handle = queue.spawn(async {
        yield_n(2).await;
        panic!("kaboom");
    });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        block_on(executor.run_until(&mut handle))
    }));
    let payload = caught.expect_err("the task's panic did not propagate");
    assert_eq!(payload.downcast_ref::<&'static str>(), Some(&"kaboom"));

    // Formatted: a `String` payload.
    let code = 7;
    let handle = queue.spawn(async move {
        yield_n(1).await;
        panic!("kaboom {code}");
    });
    let caught = catch_unwind(AssertUnwindSafe(|| block_on(executor.run_until(handle))));
    let payload = caught.expect_err("the task's panic did not propagate");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("kaboom 7")
    );

    // Any payload type comes out as it went in.
    #[derive(Debug, PartialEq)]
    struct Custom(u32);
    let handle = queue.spawn(async { panic_any(Custom(42)) });
    let caught = catch_unwind(AssertUnwindSafe(|| block_on(executor.run_until(handle))));
    let payload = caught.expect_err("the task's panic did not propagate");
    assert_eq!(payload.downcast_ref::<Custom>(), Some(&Custom(42)));
}

/// After a propagated panic the executor still works: the tasks that were
/// queued, idle or waiting run on a later `run_until`, new tasks run, and the
/// panicked task's handle reports the panic with its message.
#[test]
fn executor_is_usable_after_a_propagated_panic() {
    let executor = propagating();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();

    let progress = Rc::new(Cell::new(0u32));
    let counters: Vec<JoinHandle<u32>> = (0..4)
        .map(|i| {
            let queue = if i % 2 == 0 { &fg } else { &bg };
            let progress = Rc::clone(&progress);
            queue.spawn(async move {
                for _ in 0..50 {
                    progress.set(progress.get() + 1);
                    yield_n(1).await;
                }
                i
            })
        })
        .collect();
    let (tx, rx) = oneshot::channel::<u32>();
    let waiting = bg.spawn(async move { rx.await.unwrap() + 1 });
    let (flag, panicked_dropped) = drop_flag();
    let mut panicking = fg.spawn(async move {
        let _flag = flag;
        yield_n(3).await;
        panic!("task failure");
    });

    let caught = catch_unwind(AssertUnwindSafe(|| {
        block_on(executor.run_until(&mut panicking))
    }));
    let payload = caught.expect_err("the task's panic did not propagate");
    assert_eq!(message_of(payload.as_ref()), Some("task failure"));
    assert!(
        panicked_dropped.get(),
        "the panicked future was not dropped"
    );
    assert!(panicking.is_finished());
    assert!(
        counters.iter().all(|handle| !handle.is_finished()),
        "the panic should have stopped the run before the counters finished"
    );

    // The panicked task's handle reports the panic; in this mode its payload
    // is the message.
    let panic = expect_panic(block_on(panicking));
    assert_eq!(panic.message(), "task failure");
    let payload = panic.into_payload();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("task failure")
    );

    // Everything else still runs, plus new work.
    tx.send(41).unwrap();
    let fresh = fg.spawn(async { "fresh" });
    let (outputs, waited, fresh) = drive(executor.run_until(async {
        let mut outputs = Vec::new();
        for handle in counters {
            outputs.push(handle.await.unwrap());
        }
        (outputs, waiting.await.unwrap(), fresh.await.unwrap())
    }));
    assert_eq!(outputs, vec![0, 1, 2, 3]);
    assert_eq!(progress.get(), 200);
    assert_eq!(waited, 42);
    assert_eq!(fresh, "fresh");
}

/// With `run()` spawned on a Tokio `LocalSet`, a task panic ends the `run()`
/// task with that panic; a new `run()` picks up where it stopped.
#[test]
fn task_panic_ends_run_on_a_localset_and_a_new_run_continues() {
    let executor = propagating();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let survivor = bg.spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            "survived"
        });
        let runner = tokio::task::spawn_local({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        let panicking = fg.spawn(async { panic!("boom in run") });
        let panic = expect_panic(panicking.await);
        assert_eq!(panic.message(), "boom in run");
        let ended = runner.await.expect_err("run() should have panicked");
        assert!(ended.is_panic());
        let payload = ended.into_panic();
        assert_eq!(message_of(payload.as_ref()), Some("boom in run"));

        let runner = tokio::task::spawn_local({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        let result = tokio::time::timeout(Duration::from_secs(30), survivor).await;
        assert_eq!(result.expect("hang guard").unwrap(), "survived");
        runner.abort();
    });
}

/// A panic in the `run_until` future itself (not a task) propagates in both
/// modes, and leaves the executor usable.
#[test]
fn panic_in_the_run_until_future_leaves_the_executor_usable() {
    for executor in [propagating(), catching()] {
        let fg = executor.queue(Queue::Foreground).unwrap();
        let task = fg.spawn(async {
            yield_n(10).await;
            3
        });
        let caught = catch_unwind(AssertUnwindSafe(|| {
            block_on(executor.run_until(async {
                yield_n(2).await;
                panic!("until failed");
            }))
        }));
        let payload = caught.expect_err("the run_until future's panic was swallowed");
        assert_eq!(message_of(payload.as_ref()), Some("until failed"));
        assert_eq!(drive(executor.run_until(task)).unwrap(), 3);
    }
}

// ---------------------------------------------------------------- caught

/// With `with_panic_on_task_panic(false)`, the handle reports the panic with
/// its message and the original payload.
#[test]
fn caught_panic_is_reported_with_message_and_original_payload() {
    let executor = catching();
    let fg = executor.queue(Queue::Foreground).unwrap();

    // `&'static str` payload.
    let handle = fg.spawn(async {
        yield_n(1).await;
        panic!("kaboom");
    });
    let panic = expect_panic(drive(executor.run_until(handle)));
    assert_eq!(panic.message(), "kaboom");
    assert_eq!(
        *panic.into_payload().downcast::<&'static str>().unwrap(),
        "kaboom"
    );

    // `String` payload.
    let code = 7;
    let handle = fg.spawn(async move { panic!("kaboom {}", code) });
    let panic = expect_panic(drive(executor.run_until(handle)));
    assert_eq!(panic.message(), "kaboom 7");
    assert_eq!(
        *panic.into_payload().downcast::<String>().unwrap(),
        "kaboom 7"
    );

    // Any other payload: kept as is.
    let handle = fg.spawn(async { panic_any(42u32) });
    let panic = expect_panic(drive(executor.run_until(handle)));
    assert!(!panic.message().is_empty());
    assert_eq!(*panic.into_payload().downcast::<u32>().unwrap(), 42);

    // The error as an error: Display, source, predicates.
    let handle = fg.spawn(async { panic!("kaboom") });
    let error = drive(executor.run_until(handle)).unwrap_err();
    assert!(error.is_panic());
    assert!(!error.is_cancelled());
    assert_eq!(error.to_string(), "task panicked: kaboom");
    let source = error.source().expect("a panic error has a source");
    assert_eq!(source.to_string(), "kaboom");
    assert!(source.downcast_ref::<PanicError>().is_some());
}

/// With `with_panic_on_task_panic(false)`, tasks that panic (before their
/// first yield, after several, spawned by other tasks) do not disturb the
/// others, which all complete; `run_until` itself returns normally.
#[test]
fn caught_panics_leave_other_tasks_running() {
    let executor = catching();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();
    let mut handles = Vec::new();
    let mut flags = Vec::new();
    for i in 0..30u32 {
        let queue = if i % 2 == 0 { &fg } else { &bg };
        let (flag, dropped) = drop_flag();
        flags.push((i, dropped));
        let spawner = queue.clone();
        handles.push(queue.spawn(async move {
            let _flag = flag;
            yield_n(i as usize % 5).await;
            match i % 3 {
                0 => panic!("task {i} failed"),
                1 => {
                    // A child that panics; the parent sees it as an error.
                    let child = spawner.spawn(async move {
                        yield_n(2).await;
                        panic!("child of {i} failed")
                    });
                    let panic = expect_panic(child.await);
                    assert_eq!(panic.message(), format!("child of {i} failed"));
                    i
                }
                _ => {
                    yield_n(5).await;
                    i
                }
            }
        }));
    }
    let results = drive(executor.run_until(async {
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await);
        }
        results
    }));
    for (i, result) in results.into_iter().enumerate() {
        let i = i as u32;
        if i % 3 == 0 {
            let panic = expect_panic(result);
            assert_eq!(panic.message(), format!("task {i} failed"));
        } else {
            assert_eq!(result.unwrap(), i);
        }
    }
    for (i, dropped) in flags {
        assert!(dropped.get(), "future of task {i} not dropped");
    }
}

/// A panicking task in catch mode, with `run()` on a Tokio `LocalSet`: the
/// `run()` task keeps going.
#[test]
fn caught_panic_does_not_end_run_on_a_localset() {
    let executor = catching();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let runner = tokio::task::spawn_local({
            let executor = Rc::clone(&executor);
            async move { executor.run().await }
        });
        let panicking = fg.spawn(async { panic!("contained") });
        assert_eq!(expect_panic(panicking.await).message(), "contained");
        let after = fg.spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            9
        });
        let result = tokio::time::timeout(Duration::from_secs(30), after).await;
        assert_eq!(result.expect("hang guard").unwrap(), 9);
        assert!(!runner.is_finished(), "run() ended");
        runner.abort();
    });
}

// ---------------------------------------------------------------- panics in Drop

/// A future whose `Drop` panics, aborted, in catch mode: the panic is a task
/// panic like any other. It must not escape `run_until` (catch mode), the
/// other tasks must keep running, the handle must resolve to
/// `JoinError::Panic` (not panic when awaited), and the executor must still
/// drop cleanly afterwards.
///
/// Regression (failed up to 9ba9882): the panic escaped `TaskFuture::poll`,
/// async-task closed the task without an output ("Task polled after
/// completion" when awaited) and the executor's drop spun forever.
#[test]
fn panic_in_drop_of_aborted_future_is_contained() {
    on_thread_with_hang_guard(|report| {
        let executor = catching();
        let fg = executor.queue(Queue::Foreground).unwrap();
        let polled = Rc::new(Cell::new(false));
        let handle = fg.spawn({
            let polled = Rc::clone(&polled);
            async move {
                let _bomb = PanicOnDrop;
                polled.set(true);
                std::future::pending::<()>().await;
            }
        });
        let mut other = fg.spawn(async {
            yield_n(20).await;
            1
        });
        drive(executor.run_until(async {
            while !polled.get() {
                yield_n(1).await;
            }
        }));
        handle.abort();

        report.stage("running the executor after the abort");
        let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(&mut other))));
        report.check(
            run.is_ok(),
            "the Drop panic escaped run_until in catch mode",
        );
        if run.is_err() {
            // Give the other task its chance anyway.
            let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(&mut other))));
            report.check(run.is_ok(), "run_until panicked again");
            if let Ok(result) = run {
                report.check(matches!(result, Ok(1)), "the other task failed");
            }
        }

        report.stage("awaiting the aborted task's handle");
        let awaited = catch_unwind(AssertUnwindSafe(|| block_on(handle)));
        match awaited {
            Ok(result) => report.check(
                matches!(&result, Err(JoinError::Panic(panic)) if panic.message() == "panic in drop"),
                format!("the aborted task's handle gave {result:?}, not the Drop panic"),
            ),
            Err(_) => report.check(false, "awaiting the aborted task's handle panicked"),
        }

        report.stage("dropping the executor");
        drop(executor);
        report.finish();
    });
}

/// A future whose `Drop` panics when it is dropped after completing, in
/// catch mode: same expectations (as on Tokio, the handle reports the panic).
/// Regression, as above.
#[test]
fn panic_in_drop_of_completed_future_is_contained() {
    struct ReadyWithBomb {
        _bomb: PanicOnDrop,
    }
    impl Future for ReadyWithBomb {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(5)
        }
    }
    on_thread_with_hang_guard(|report| {
        let executor = catching();
        let fg = executor.queue(Queue::Foreground).unwrap();
        let handle = fg.spawn(ReadyWithBomb { _bomb: PanicOnDrop });
        let mut other = fg.spawn(async {
            yield_n(5).await;
            1
        });

        report.stage("running the executor");
        let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(&mut other))));
        report.check(
            run.is_ok(),
            "the Drop panic escaped run_until in catch mode",
        );
        if run.is_err() {
            let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(&mut other))));
            report.check(run.is_ok(), "run_until panicked again");
        }

        report.stage("awaiting the task's handle");
        let awaited = catch_unwind(AssertUnwindSafe(|| block_on(handle)));
        match awaited {
            Ok(result) => report.check(
                matches!(&result, Err(JoinError::Panic(panic)) if panic.message() == "panic in drop"),
                format!("the task's handle gave {result:?}, not the Drop panic"),
            ),
            Err(_) => report.check(false, "awaiting the task's handle panicked"),
        }

        report.stage("dropping the executor");
        drop(executor);
        report.finish();
    });
}

/// In the default mode, a panic in the Drop of an aborted future may
/// propagate out of `run_until` like any task panic, but the executor must
/// survive it: dropping it afterwards finishes and drops the other tasks.
/// Regression, as above: the executor's drop spun forever.
#[test]
fn panic_in_drop_of_aborted_future_does_not_wedge_the_executor() {
    on_thread_with_hang_guard(|report| {
        let executor = propagating();
        let fg = executor.queue(Queue::Foreground).unwrap();
        let started = Rc::new(Cell::new(false));
        let handle = fg.spawn({
            let started = Rc::clone(&started);
            async move {
                let _bomb = PanicOnDrop;
                started.set(true);
                std::future::pending::<()>().await;
            }
        });
        let (flag, other_dropped) = drop_flag();
        let other = fg.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        drive(executor.run_until(async {
            while !started.get() {
                yield_n(1).await;
            }
        }));
        handle.abort();

        report.stage("running the executor after the abort");
        let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(yield_n(3)))));
        match run {
            Ok(()) => report.check(
                false,
                "the Drop panic did not propagate in the default mode",
            ),
            Err(payload) => report.check(
                message_of(payload.as_ref()) == Some("panic in drop"),
                "a different panic propagated",
            ),
        }

        report.stage("dropping the executor");
        drop(executor);
        report.check(
            other_dropped.get(),
            "the other task's future was not dropped",
        );
        report.check(other.is_finished(), "the other task is not finished");
        report.finish();
    });
}

#[test]
fn a_detached_tasks_output_that_panics_on_drop_does_not_abort_the_process() {
    // async-task drops a detached task's output inside a guard that aborts
    // the process on a panic; the whole test binary would die here.
    for executor in [propagating(), catching()] {
        let queue = executor.queue(Queue::Foreground).unwrap();
        drop(queue.spawn(async { PanicOnDrop }));
        let after = queue.spawn(async { 7 });
        assert_eq!(drive(executor.run_until(after)).unwrap(), 7);
        let stats = executor.stats();
        assert_eq!((stats.completed, stats.panicked), (2, 0), "{stats}");
        assert_eq!(common::live_tasks(&executor), 0);
    }
}

#[test]
fn a_detached_tasks_panic_payload_that_panics_on_drop_does_not_abort_the_process() {
    let executor = catching();
    let queue = executor.queue(Queue::Foreground).unwrap();
    drop(queue.spawn(async { panic_any(PanicOnDrop) }));
    let after = queue.spawn(async { 7 });
    assert_eq!(drive(executor.run_until(after)).unwrap(), 7);
    assert_eq!(executor.stats().panicked, 1);
    assert_eq!(common::live_tasks(&executor), 0);
}

#[test]
fn a_panic_in_an_aborted_futures_drop_surfaces_in_the_run_that_drops_it() {
    // Default policy: the panic propagates out of the run future whose turn
    // dropped the future, not out of some later, unrelated one.
    let executor = propagating();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let handle = fg.spawn(async {
        let _bomb = PanicOnDrop;
        std::future::pending::<()>().await;
    });
    drive(executor.run_until(yield_n(1)));
    handle.abort();
    let reaping = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(yield_n(1)))));
    let payload = reaping.expect_err("the Drop panic did not surface where the future was dropped");
    assert_eq!(message_of(payload.as_ref()), Some("panic in drop"));
    // Nothing is left over for a later run.
    let later = fg.spawn(async { yield_n(2).await });
    let run = catch_unwind(AssertUnwindSafe(|| drive(executor.run_until(later))));
    assert!(matches!(run, Ok(Ok(()))), "a later run re-raised it");
    assert!(matches!(block_on(handle), Err(JoinError::Panic(_))));
}
