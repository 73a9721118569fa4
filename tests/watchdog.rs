//! The watchdog reports a poll that is still running past its threshold, with
//! the task's queue, id, name and spawn location; polls below the threshold
//! are left alone. Tasks "use CPU" by advancing a manual clock, and the
//! stalled task blocks its thread until the watchdog has reported it, so the
//! outcome does not depend on how fast the machine is.

mod common;
use common::yield_once;
use std::sync::mpsc;
use std::time::Duration;

use clockworker::{Clock, ExecutorBuilder, TaskId};
use futures::executor::block_on;

const MS: Duration = Duration::from_millis(1);

/// What a stall report held: queue, task, name, spawn line, running time.
type Stall = (&'static str, TaskId, Option<String>, u32, Duration);

/// Generous guard against a broken watchdog hanging the suite; never reached
/// when it works (it reports within milliseconds).
const HANG_GUARD: Duration = Duration::from_secs(60);

#[test]
fn a_poll_still_running_past_the_threshold_is_reported_once() {
    let (clock, hand) = Clock::manual();
    let (stalls_tx, stalls) = mpsc::channel::<Stall>();
    let executor = ExecutorBuilder::new()
        .with_queue("fine", 1)
        .with_queue("stuck", 1)
        .with_watchdog(4 * MS, move |stall| {
            let name = stall.name.map(str::to_owned);
            let report = (
                *stall.queue,
                stall.task,
                name,
                stall.location.line(),
                stall.duration,
            );
            let _ = stalls_tx.send(report);
        })
        .with_clock(clock)
        .build()
        .unwrap();
    let fine = executor.queue("fine").unwrap();
    let stuck = executor.queue("stuck").unwrap();
    let h = hand.clone();
    let (first, stalls, task, line) = block_on(executor.run_until(async move {
        // 20 polls of 1 ms each (below the 4 ms threshold), each holding the
        // thread for 2 ms of real time so that the watchdog looks at them.
        let h2 = h.clone();
        fine.spawn(async move {
            for _ in 0..20 {
                h2.advance(MS);
                std::thread::sleep(2 * MS);
                yield_once().await;
            }
        })
        .await
        .unwrap();
        // Then a poll that has used 5 ms and blocks its thread until the
        // watchdog reports it.
        let handle = stuck.task().name("blocking call").spawn(async move {
            h.advance(5 * MS);
            let first = stalls.recv_timeout(HANG_GUARD).expect("no stall reported");
            (first, stalls)
        });
        let line = line!() - 5;
        let task = handle.id().unwrap();
        let (first, stalls) = handle.await.unwrap();
        (first, stalls, task, line)
    }));
    drop(executor); // stops and joins the watchdog thread
    let expected = (
        "stuck",
        task,
        Some("blocking call".to_owned()),
        line,
        5 * MS,
    );
    assert_eq!(first, expected);
    // Reported once, and nothing about the short polls.
    assert_eq!(stalls.try_iter().count(), 0);
}

#[test]
fn a_zero_watchdog_threshold_is_refused() {
    let error = ExecutorBuilder::new()
        .with_queue("q", 1)
        .with_watchdog(Duration::ZERO, |_| {})
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("watchdog"), "{error}");
}

#[test]
fn after_a_panic_unwinds_out_of_a_poll_an_idle_executor_is_not_reported_stalled() {
    let (clock, hand) = Clock::manual();
    let (stalls_tx, stalls) = mpsc::channel::<Duration>();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, common::PanicsInPolledOnce::default())
        .with_watchdog(4 * MS, move |stall| {
            let _ = stalls_tx.send(stall.duration);
        })
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let _task = queue.spawn(async {});
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::drive(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(unwound.is_err());
    // Idle now. Time passes (on the executor's clock, and for the watchdog
    // thread to look several times): no poll is running, so no stall.
    hand.advance(10 * MS);
    assert!(
        stalls.recv_timeout(50 * MS).is_err(),
        "an idle executor was reported stalled"
    );
}

#[test]
fn a_panicking_stall_callback_does_not_end_the_watchdog() {
    // Two stalls, one after the other; the callback panics on the first.
    // The second is still reported.
    let (clock, hand) = Clock::manual();
    let (stalls_tx, stalls) = mpsc::channel::<TaskId>();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_watchdog(4 * MS, move |stall| {
            let _ = stalls_tx.send(stall.task);
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("stall callback bug");
            }
        })
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let stalls = std::sync::Arc::new(std::sync::Mutex::new(stalls));
    let stalled =
        |hand: clockworker::ManualClock,
         stalls: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<TaskId>>>| async move {
            hand.advance(5 * MS);
            stalls
                .lock()
                .unwrap()
                .recv_timeout(HANG_GUARD)
                .expect("no stall reported")
        };
    let first = queue.spawn(stalled(hand.clone(), stalls.clone()));
    let first_id = first.id().unwrap();
    assert_eq!(block_on(executor.run_until(first)).unwrap(), first_id);
    let second = queue.spawn(stalled(hand, stalls));
    let second_id = second.id().unwrap();
    assert_eq!(block_on(executor.run_until(second)).unwrap(), second_id);
}
