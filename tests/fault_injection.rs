//! Fault injection: each callback a user hands the executor, made to panic,
//! under both panic policies. After each fault: no abort, no hang, every
//! handle resolves exactly once, every future and output is dropped exactly
//! once, the statistics balance, the executor runs on, and it drops
//! promptly.
//!
//! | user code that panics | where |
//! |---|---|
//! | a future's `poll`; its `Drop` on completion, abort, shutdown and executor drop; a detached task's output `Drop`; a `spawn_with` closure; the slow-poll callback; the metrics recorder | here |
//! | a key's `Hash`, `Eq` and `Debug` | here (`Clone` and `Hash` in `add_queue`: `reconfigure.rs`) |
//! | every `Scheduler` method, and a scheduler that spawns | `scheduler_misuse.rs` |
//! | the watchdog's callback (on its own thread, in real time) | `watchdog.rs` |
//! | blocking on `run_until` from inside a task | `reentrancy.rs` |
//!
//! The panic hook still prints each injected panic to stderr.

mod common;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clockworker::{Clock, Executor, ExecutorBuilder, JoinError, JoinHandle, ManualClock, Shutdown};
use common::{DropLedger, LedgerToken, drive, live_tasks, panic_message, yield_n};

/// Tasks per scenario; task 0 carries the fault.
const TASKS: usize = 6;

/// Where the fault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The future's `poll` panics (at its second poll).
    Poll,
    /// The closure given to `Spawner::spawn_with` panics.
    SpawnWith,
    /// The future's `Drop` panics when it is dropped after completing.
    DropAfterCompletion,
    /// The future's `Drop` panics when its task is aborted.
    DropOnAbort,
    /// The future's `Drop` panics when `shutdown(Cancel)` drops it.
    DropOnShutdown,
    /// The future's `Drop` panics when the executor is dropped with it.
    DropOnExecutorDrop,
    /// A detached task's output panics on drop.
    DetachedOutputDrop,
    /// The slow-poll callback panics (the task's poll is slow).
    SlowPollCallback,
    /// The installed `metrics` recorder panics when a metric is registered.
    #[cfg(feature = "metrics")]
    MetricsRecorder,
}

impl Fault {
    /// Whether task 0 never finishes on its own (it is ended by an abort, a
    /// shutdown or the executor's drop).
    fn pends(self) -> bool {
        matches!(
            self,
            Fault::DropOnAbort | Fault::DropOnShutdown | Fault::DropOnExecutorDrop
        )
    }
}

/// A task's future's state: its ledger entry, and whether its `Drop` panics.
struct Guard {
    _token: LedgerToken,
    panics: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The token, a field, is still dropped as this panic unwinds.
        if self.panics {
            panic!("fault: drop");
        }
    }
}

/// A task's output: its ledger entry, and whether its `Drop` panics.
struct Output {
    value: usize,
    _token: LedgerToken,
    panics: bool,
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.panics {
            panic!("fault: output drop");
        }
    }
}

/// Task `i`'s future, owning its ledger entries (`tokens`: the future's and
/// the output's). `clock` is advanced by a poll past the slow-poll and
/// metrics thresholds, where the fault needs it.
fn task(
    i: usize,
    fault: Fault,
    tokens: (LedgerToken, LedgerToken),
    clock: ManualClock,
) -> impl Future<Output = Output> {
    let faulty = i == 0;
    let guard = Guard {
        _token: tokens.0,
        panics: faulty
            && matches!(
                fault,
                Fault::DropAfterCompletion
                    | Fault::DropOnAbort
                    | Fault::DropOnShutdown
                    | Fault::DropOnExecutorDrop
            ),
    };
    let output = Output {
        value: i,
        _token: tokens.1,
        panics: faulty && fault == Fault::DetachedOutputDrop,
    };
    let body = async move {
        yield_n(1).await;
        if faulty {
            match fault {
                Fault::Poll => panic!("fault: poll"),
                Fault::SlowPollCallback => clock.advance(Duration::from_millis(20)),
                _ if fault.pends() => std::future::pending::<()>().await,
                _ => {}
            }
        }
        #[cfg(feature = "metrics")]
        if fault == Fault::MetricsRecorder {
            clock.advance(Duration::from_millis(2));
        }
        yield_n(1).await;
        output
    };
    Guarded {
        body: Box::pin(body),
        _guard: guard,
    }
}

/// A future and its guard, which the executor drops with the future once it
/// has completed. (Held inside the `async` block instead, the guard would
/// be dropped as the block returns, and a panic there leaks the returned
/// value: rust-lang/rust#47949.)
struct Guarded<F> {
    body: Pin<Box<F>>,
    _guard: Guard,
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.body.as_mut().poll(cx)
    }
}

/// How a scenario went.
#[derive(Debug, Default)]
struct Outcome {
    /// Messages of the panics that came out of run futures, in order.
    raised: Vec<String>,
    /// Each awaited handle's result: the value, or how the task ended.
    results: Vec<Result<usize, String>>,
}

/// Runs `f` (one run of the executor), recording a panic that comes out.
fn run<T>(outcome: &mut Outcome, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            outcome.raised.push(panic_message(payload.as_ref()));
            None
        }
    }
}

fn describe(result: Result<Output, JoinError>) -> Result<usize, String> {
    match result {
        Ok(output) => Ok(output.value),
        Err(JoinError::Cancelled) => Err("cancelled".into()),
        Err(JoinError::Panic(panic)) => Err(format!("panicked: {}", panic.message())),
        Err(other) => Err(format!("{other:?}")),
    }
}

/// Builds an executor with `fault` armed, runs `TASKS` tasks in two queues
/// under `panic_on_task_panic`, and checks the invariants of the module
/// documentation. Returns what happened, for the caller to check against
/// the fault's documented outcome.
fn scenario(fault: Fault, panic_on_task_panic: bool) -> Outcome {
    let (time, clock) = Clock::manual();
    let mut builder = ExecutorBuilder::new()
        .with_queue(0u8, 2)
        .with_queue(1u8, 1)
        .with_panic_on_task_panic(panic_on_task_panic)
        .with_clock(time);
    if fault == Fault::SlowPollCallback {
        builder = builder.on_slow_poll(Duration::from_millis(10), |_| {
            panic!("fault: slow-poll callback")
        });
    }
    #[cfg(feature = "metrics")]
    if fault == Fault::MetricsRecorder {
        builder = builder.with_metrics(Duration::from_millis(1));
    }
    let executor = builder.build().unwrap();
    let ledger = DropLedger::new(2 * TASKS);
    let mut outcome = Outcome::default();

    let mut handles: Vec<JoinHandle<Output>> = (0..TASKS)
        .map(|i| {
            let queue = (i % 2) as u8;
            let tokens = (ledger.token(i), ledger.token(TASKS + i));
            let clock = clock.clone();
            if fault == Fault::SpawnWith {
                // The closure owns the tokens: a panic in it drops them.
                executor
                    .spawner()
                    .spawn_with(queue, move || {
                        assert!(i != 0, "fault: spawn_with");
                        task(i, fault, tokens, clock)
                    })
                    .unwrap()
            } else {
                executor
                    .queue(queue)
                    .unwrap()
                    .spawn(task(i, fault, tokens, clock))
            }
        })
        .collect();
    if fault == Fault::DetachedOutputDrop {
        drop(handles.remove(0));
    }

    // The tasks that end on their own, first.
    let skip = usize::from(fault.pends());
    for handle in &mut handles[skip..] {
        let result = run_to_end(&executor, handle, &mut outcome);
        outcome.results.push(describe(result));
    }
    // Then task 0, if it pends, ended the fault's way.
    let mut shut_down = false;
    if fault.pends() {
        let mut pending = handles.remove(0);
        assert!(!pending.is_finished(), "{fault:?}: task 0 should pend");
        let result = match fault {
            Fault::DropOnAbort => {
                pending.abort();
                run_to_end(&executor, &mut pending, &mut outcome)
            }
            Fault::DropOnShutdown => {
                executor.shutdown(Shutdown::Cancel);
                run(&mut outcome, || drive(executor.run()));
                shut_down = true;
                drive(pending)
            }
            _ => {
                run(&mut outcome, || drop_promptly(executor));
                outcome.results.insert(0, describe(drive(pending)));
                assert_eq!(ledger.not_once(), [], "{fault:?}: drops");
                return outcome;
            }
        };
        outcome.results.insert(0, describe(result));
    }

    if !shut_down {
        // Still usable: a new task runs to its end.
        let later = executor.queue(1).unwrap().spawn(async { 9 });
        let later = run(&mut outcome, || drive(executor.run_until(later)));
        assert!(matches!(later, Some(Ok(9))), "{fault:?}: {later:?}");
    }
    let stats = executor.stats();
    assert_eq!(live_tasks(&executor), 0, "{fault:?}: {stats}");
    assert_eq!(
        stats.spawned,
        stats.completed + stats.cancelled + stats.panicked,
        "{fault:?}: {stats}"
    );
    run(&mut outcome, || drop_promptly(executor));
    assert_eq!(ledger.not_once(), [], "{fault:?}: drops");
    outcome
}

/// Runs the executor until `handle` resolves, across the panics that come
/// out of its run futures; a wedged executor fails the test.
fn run_to_end<T>(
    executor: &Executor<u8>,
    handle: &mut JoinHandle<T>,
    outcome: &mut Outcome,
) -> Result<T, JoinError> {
    for _ in 0..5 {
        if let Some(result) = run(outcome, || drive(executor.run_until(&mut *handle))) {
            return result;
        }
    }
    panic!("the executor is wedged: {:?}", outcome.raised);
}

/// Drops the executor, which must not take the second a wedged drop waits.
fn drop_promptly(executor: Rc<Executor<u8>>) {
    let started = Instant::now();
    drop(executor);
    // Not a timing assertion on the work: a wedged drop gives up only after
    // a full second.
    assert!(started.elapsed() < Duration::from_millis(900));
}

/// The expected outcome of `fault`: the panics raised out of run futures,
/// and task 0's result (the others complete).
fn check(fault: Fault, panic_on_task_panic: bool, raised: &[&str], task0: Option<&str>) {
    let outcome = scenario(fault, panic_on_task_panic);
    let policy = if panic_on_task_panic {
        "propagate"
    } else {
        "catch"
    };
    assert_eq!(outcome.raised, raised, "{fault:?}, {policy}");
    let mut expected: Vec<Result<usize, String>> = (1..TASKS).map(Ok).collect();
    if let Some(task0) = task0 {
        expected.insert(
            0,
            match task0 {
                "completed" => Ok(0),
                ended => Err(ended.to_string()),
            },
        );
    }
    assert_eq!(outcome.results, expected, "{fault:?}, {policy}");
}

/// Every fault in both policies: one test per fault, so that a failure
/// names it.
macro_rules! faults {
    ($($name:ident: $fault:expr => propagate $propagated:expr, catch $caught:expr, task 0 $task0:expr;)*) => {$(
        #[test]
        fn $name() {
            check($fault, true, &$propagated, $task0);
            check($fault, false, &$caught, $task0);
        }
    )*};
}

const NONE: [&str; 0] = [];

faults! {
    a_panicking_poll: Fault::Poll
        => propagate ["fault: poll"], catch NONE, task 0 Some("panicked: fault: poll");
    a_panicking_spawn_with_closure: Fault::SpawnWith
        => propagate ["fault: spawn_with"], catch NONE, task 0 Some("panicked: fault: spawn_with");
    a_future_panicking_in_drop_after_completion: Fault::DropAfterCompletion
        => propagate ["fault: drop"], catch NONE, task 0 Some("panicked: fault: drop");
    a_future_panicking_in_drop_on_abort: Fault::DropOnAbort
        => propagate ["fault: drop"], catch NONE, task 0 Some("panicked: fault: drop");
    a_future_panicking_in_drop_on_shutdown: Fault::DropOnShutdown
        => propagate NONE, catch NONE, task 0 Some("panicked: fault: drop");
    a_future_panicking_in_drop_on_executor_drop: Fault::DropOnExecutorDrop
        => propagate NONE, catch NONE, task 0 Some("panicked: fault: drop");
    a_detached_output_panicking_in_drop: Fault::DetachedOutputDrop
        => propagate NONE, catch NONE, task 0 None;
    a_panicking_slow_poll_callback: Fault::SlowPollCallback
        => propagate ["fault: slow-poll callback"], catch ["fault: slow-poll callback"], task 0 Some("completed");
}

#[cfg(feature = "metrics")]
mod recorder {
    //! A `metrics` recorder that panics on its first registration, installed
    //! for this thread only.

    use super::*;
    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Panicking(AtomicBool);

    impl Panicking {
        fn fault(&self) {
            if !self.0.swap(true, Ordering::SeqCst) {
                panic!("fault: recorder");
            }
        }
    }

    impl Recorder for Panicking {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            self.fault();
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            self.fault();
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            self.fault();
            Histogram::noop()
        }
    }

    #[test]
    fn a_panicking_metrics_recorder() {
        for panic_on_task_panic in [true, false] {
            let recorder = Panicking::default();
            metrics::with_local_recorder(&recorder, || {
                check(
                    Fault::MetricsRecorder,
                    panic_on_task_panic,
                    &["fault: recorder"],
                    Some("completed"),
                )
            });
        }
    }
}

/// A queue key whose `Hash`, `Eq` or `Debug` panics when asked to.
#[derive(Clone, Copy)]
struct Touchy {
    id: u8,
    hash_panics: bool,
    eq_panics: bool,
    debug_panics: bool,
}

impl Touchy {
    fn plain(id: u8) -> Self {
        Touchy {
            id,
            hash_panics: false,
            eq_panics: false,
            debug_panics: false,
        }
    }
}

impl Hash for Touchy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert!(!self.hash_panics, "fault: hash");
        self.id.hash(state);
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        assert!(!(self.eq_panics || other.eq_panics), "fault: eq");
        self.id == other.id
    }
}

impl Eq for Touchy {}

impl std::fmt::Debug for Touchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        assert!(!self.debug_panics, "fault: debug");
        write!(f, "Touchy({})", self.id)
    }
}

/// Calls `f`, which must panic with `message`.
fn panics_with<T>(message: &str, f: impl FnOnce() -> T) {
    let payload = catch_unwind(AssertUnwindSafe(f))
        .err()
        .unwrap_or_else(|| panic!("expected the panic {message:?}"));
    assert_eq!(panic_message(payload.as_ref()), message);
}

#[test]
fn panicking_keys_leave_the_directory_and_the_executor_usable() {
    for panic_on_task_panic in [true, false] {
        let executor = ExecutorBuilder::new()
            .with_queue(Touchy::plain(0), 1)
            .with_queue(Touchy::plain(1), 1)
            .with_panic_on_task_panic(panic_on_task_panic)
            .build()
            .unwrap();
        let spawner = executor.spawner();
        let hashing = Touchy {
            hash_panics: true,
            ..Touchy::plain(1)
        };
        let comparing = Touchy {
            eq_panics: true,
            ..Touchy::plain(1)
        };
        let printing = Touchy {
            debug_panics: true,
            ..Touchy::plain(7)
        };
        // Lookups, from the executor's thread and another one.
        panics_with("fault: hash", || executor.queue(hashing));
        panics_with("fault: eq", || executor.queue(comparing));
        panics_with("fault: debug", || executor.queue(printing));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                panics_with("fault: eq", || spawner.spawn(comparing, async { 1 }));
                panics_with("fault: debug", || spawner.spawn(printing, async { 1 }));
            });
        });
        // Configuration changes.
        panics_with("fault: eq", || executor.set_weight(comparing, 3));
        panics_with("fault: eq", || executor.add_queue(comparing, 3));
        panics_with("fault: hash", || spawner.add_queue(hashing, 3));
        // A duplicate key is named in the error: by its `Debug`.
        let duplicate = Touchy {
            debug_panics: true,
            ..Touchy::plain(0)
        };
        panics_with("fault: debug", || executor.add_queue(duplicate, 3));
        // Nothing changed: both queues answer, a new key gets a new queue
        // with the weight it asked for, and tasks run.
        executor.set_weight(Touchy::plain(1), 5).unwrap();
        let added = executor.add_queue(Touchy::plain(2), 7).unwrap();
        assert_eq!(executor.queue_stats(Touchy::plain(2)).unwrap().weight, 7);
        let from_spawner = spawner.spawn(Touchy::plain(0), async { 1 }).unwrap();
        let tasks = (
            executor.queue(Touchy::plain(1)).unwrap().spawn(async { 2 }),
            added.spawn(async { 3 }),
        );
        let outputs =
            drive(executor.run_until(async { (from_spawner.await, tasks.0.await, tasks.1.await) }));
        assert!(matches!(outputs, (Ok(1), Ok(2), Ok(3))), "{outputs:?}");
        assert_eq!(live_tasks(&executor), 0);
    }
}
