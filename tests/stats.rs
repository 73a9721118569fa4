//! Statistics and slow-poll reports against workloads whose true values are
//! known: tasks "use CPU" by advancing a manual clock inside their polls, so
//! every duration below is exact.

mod common;
use common::yield_once;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Poll, Waker};
use std::time::Duration;

use clockworker::{Clock, Executor, ExecutorBuilder, JoinError, ManualClock, TaskId};
use futures::executor::block_on;

const US: Duration = Duration::from_micros(1);
const MS: Duration = Duration::from_millis(1);

/// A task that, `polls` times, uses `cost` of CPU and yields; then returns.
async fn busy(hand: ManualClock, cost: Duration, polls: usize) {
    for i in 0..polls {
        hand.advance(cost);
        if i + 1 < polls {
            yield_once().await;
        }
    }
}

/// Whether `value` is within the histograms' relative error (1/16) of `expected`.
fn close(value: Duration, expected: Duration) -> bool {
    let (v, e) = (value.as_nanos() as f64, expected.as_nanos() as f64);
    (v - e).abs() <= e / 16.0
}

/// An executor with one queue "q" of `weight` on a manual clock, with
/// `configure`'s settings, and the clock's hand.
fn manual(
    weight: u32,
    configure: impl FnOnce(ExecutorBuilder<&'static str>) -> ExecutorBuilder<&'static str>,
) -> (Rc<Executor<&'static str>>, ManualClock) {
    let (clock, hand) = Clock::manual();
    let builder = ExecutorBuilder::new()
        .with_queue("q", weight)
        .with_clock(clock);
    (configure(builder).build().unwrap(), hand)
}

#[test]
fn queue_counts_endings_polls_and_cpu_time() {
    let (executor, hand) = manual(3, |b| b.with_panic_on_task_panic(false));
    let queue = executor.queue("q").unwrap();
    let h = hand.clone();
    block_on(executor.run_until(async move {
        // 3 tasks × 4 polls of 100 µs; one task aborted before it runs; one
        // that panics in its first (200 µs) poll.
        let done: Vec<_> = (0..3)
            .map(|_| queue.spawn(busy(h.clone(), 100 * US, 4)))
            .collect();
        let aborted = queue.spawn(async {});
        aborted.abort();
        let panicky = queue.spawn({
            let h = h.clone();
            async move {
                h.advance(200 * US);
                panic!("boom");
            }
        });
        for handle in done {
            handle.await.unwrap();
        }
        assert!(matches!(aborted.await, Err(JoinError::Cancelled)));
        assert!(matches!(panicky.await, Err(JoinError::Panic(_))));
    }));
    let stats = executor.queue_stats("q").unwrap();
    assert_eq!(stats.weight, 3);
    assert_eq!(stats.spawned, 5);
    assert_eq!(stats.completed, 3);
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.panicked, 1);
    // The aborted task was never polled: dropping it is no poll.
    assert_eq!(stats.polls, 13);
    assert_eq!(stats.cpu_time, 1_400 * US);
    assert_eq!(stats.runnable, 0);
    assert_eq!(stats.slow_polls, 0);
    assert_eq!(stats.poll_duration.count(), 13);
    assert_eq!(stats.poll_duration.max(), Some(200 * US));
    assert_eq!(stats.poll_duration.min(), Some(100 * US));
    let median = stats.poll_duration.percentile(50.0).unwrap();
    assert!(close(median, 100 * US), "p50 {median:?}");
    assert_eq!(stats.queue_delay.count(), 13);

    let all = executor.stats();
    assert_eq!(
        (all.spawned, all.completed, all.cancelled, all.panicked),
        (5, 3, 1, 1)
    );
    assert_eq!(all.polls, 13);
    assert_eq!(all.live_tasks, 0);
    assert_eq!(all.runnable, 0);
}

#[test]
fn queue_delay_is_the_time_from_runnable_to_polled() {
    let (executor, hand) = manual(1, |b| b);
    let queue = executor.queue("q").unwrap();
    let h = hand.clone();
    block_on(executor.run_until(async move {
        // Spawned together, one 100 µs poll each: they wait 0, 100, 200,
        // 300 µs for their polls.
        let handles: Vec<_> = (0..4)
            .map(|_| queue.spawn(busy(h.clone(), 100 * US, 1)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }));
    let delay = executor.queue_stats("q").unwrap().queue_delay;
    assert_eq!(delay.count(), 4);
    assert_eq!(delay.min(), Some(Duration::ZERO));
    assert_eq!(delay.max(), Some(300 * US));
    let median = delay.percentile(50.0).unwrap();
    assert!(close(median, 100 * US), "p50 {median:?}");
}

#[test]
fn busy_idle_and_uptime_follow_the_clock() {
    let (executor, hand) = manual(1, |b| b);
    let queue = executor.queue("q").unwrap();
    hand.advance(5 * MS); // before any turn: idle
    let h = hand.clone();
    block_on(executor.run_until(queue.spawn(busy(h, 100 * US, 3)))).unwrap();
    hand.advance(MS); // after the run: idle again
    let stats = executor.stats();
    assert_eq!(stats.uptime, 6 * MS + 300 * US);
    assert_eq!(stats.busy, 300 * US);
    assert_eq!(stats.idle, 6 * MS);
}

#[test]
fn driver_yields_count_turns_cut_by_the_poll_budget() {
    let (executor, hand) = manual(1, |b| b.with_max_polls_per_yield(4));
    let queue = executor.queue("q").unwrap();
    // One task, 10 polls: turns of 4, 4 (both cut by the budget) and 2.
    block_on(executor.run_until(queue.spawn(busy(hand, US, 10)))).unwrap();
    let stats = executor.stats();
    assert_eq!(stats.polls, 10);
    assert_eq!(stats.driver_yields, 2);
    assert_eq!(stats.turns, 3);
}

/// Parks until `woken` is set, handing its waker out on the first poll.
async fn park(woken: Arc<AtomicBool>, wakers: mpsc::Sender<Waker>) {
    let mut sent = false;
    std::future::poll_fn(|cx| {
        if woken.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !std::mem::replace(&mut sent, true) {
            wakers.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    })
    .await
}

#[test]
fn wakes_are_counted_local_or_remote() {
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let (wakers_tx, wakers) = mpsc::channel();
    let woken = Arc::new(AtomicBool::new(false));
    // 5 yields: 5 wakes from the task itself, on the executor's thread.
    let local = queue.spawn(common::yield_n(5));
    // 7 tasks parked until another thread wakes them, while the executor is
    // not running (so each wake goes through the inbox).
    let parked: Vec<_> = (0..7)
        .map(|_| queue.spawn(park(woken.clone(), wakers_tx.clone())))
        .collect();
    block_on(executor.run_until(local)).unwrap();
    let wakers: Vec<Waker> = wakers.try_iter().collect();
    assert_eq!(wakers.len(), 7);
    std::thread::spawn(move || {
        woken.store(true, Ordering::Release);
        wakers.into_iter().for_each(Waker::wake);
    })
    .join()
    .unwrap();
    block_on(executor.run_until(async move {
        for handle in parked {
            handle.await.unwrap();
        }
    }));
    let stats = executor.stats();
    assert_eq!(stats.local_wakes, 5);
    assert_eq!(stats.remote_wakes, 7);
}

#[test]
fn slices_and_preemptions_are_counted_per_queue() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("hi", 8)
        .with_queue("lo", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let hi = executor.queue("hi").unwrap();
    let lo = executor.queue("lo").unwrap();
    let gate: Rc<RefCell<Option<futures::channel::oneshot::Sender<()>>>> = Rc::default();
    let (tx, rx) = futures::channel::oneshot::channel();
    *gate.borrow_mut() = Some(tx);
    let h = hand.clone();
    block_on(executor.run_until(async move {
        // hi waits for lo's third poll; when it wakes, it preempts lo at the
        // next poll boundary, runs its one poll, and lo gets a new slice.
        let waiter = hi.spawn({
            let h = h.clone();
            async move {
                rx.await.unwrap();
                h.advance(10 * US);
            }
        });
        let worker = lo.spawn(async move {
            for i in 0..6 {
                h.advance(10 * US);
                if i == 2 {
                    let _ = gate.borrow_mut().take().unwrap().send(());
                }
                yield_once().await;
            }
        });
        waiter.await.unwrap();
        worker.await.unwrap();
    }));
    let hi = executor.queue_stats("hi").unwrap();
    let lo = executor.queue_stats("lo").unwrap();
    // hi: a slice for its first poll (it then sleeps) and one when woken.
    assert_eq!((hi.slices, hi.preemptions), (2, 0));
    // lo: its first slice, preempted, then a second one.
    assert_eq!((lo.slices, lo.preemptions), (2, 1));
}

#[test]
fn runnable_counts_tasks_waiting_now() {
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let observer = executor.clone();
    block_on(executor.run_until(async move {
        let handles: Vec<_> = (0..3).map(|_| queue.spawn(async {})).collect();
        // Spawned, not polled yet.
        assert_eq!(observer.queue_stats("q").unwrap().runnable, 3);
        assert_eq!(observer.stats().runnable, 3);
        assert_eq!(observer.stats().live_tasks, 3);
        for handle in handles {
            handle.await.unwrap();
        }
        assert_eq!(observer.queue_stats("q").unwrap().runnable, 0);
    }));
}

#[test]
fn statistics_off_keeps_counts_but_no_per_poll_figures() {
    let (executor, hand) = manual(1, |b| b.with_statistics(false));
    let queue = executor.queue("q").unwrap();
    block_on(executor.run_until(queue.spawn(busy(hand, 100 * US, 3)))).unwrap();
    let stats = executor.queue_stats("q").unwrap();
    assert_eq!((stats.spawned, stats.completed), (1, 1));
    assert_eq!(stats.polls, 0);
    assert_eq!(stats.cpu_time, Duration::ZERO);
    assert!(stats.poll_duration.is_empty());
    assert!(stats.queue_delay.is_empty());
}

#[test]
fn unknown_queue_is_an_error() {
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let error = executor.queue_stats("nope").unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn stats_display_as_tables() {
    let (executor, hand) = manual(2, |b| b);
    let queue = executor.queue("q").unwrap();
    block_on(executor.run_until(queue.spawn(busy(hand, 100 * US, 2)))).unwrap();
    let table = executor.stats().to_string();
    assert!(table.contains("spawned 1"), "{table}");
    assert!(table.contains("polls 2"), "{table}");
    assert!(table.contains("busy 200"), "{table}");
    let table = executor.queue_stats("q").unwrap().to_string();
    assert!(table.contains("completed 1"), "{table}");
    assert!(table.contains("weight 2"), "{table}");
    assert!(table.contains("poll time"), "{table}");
    assert!(table.contains("n=2"), "{table}");
    let all = executor.all_queue_stats();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "q");
}

/// What the slow-poll callback saw: queue, task, name, file and line, duration.
type Seen = Rc<RefCell<Vec<(&'static str, TaskId, Option<String>, String, u32, Duration)>>>;

/// The slow-poll hook does not depend on the statistics: with them off,
/// a slow poll is still reported (only the per-poll counts stay zero).
#[test]
fn slow_polls_are_reported_with_statistics_off() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let (executor, hand) = manual(1, |b| {
        b.with_statistics(false)
            .on_slow_poll(MS, move |poll| sink.borrow_mut().push(poll.duration))
    });
    let queue = executor.queue("q").unwrap();
    block_on(executor.run_until(queue.spawn(busy(hand, 2 * MS, 2)))).unwrap();
    assert_eq!(*seen.borrow(), [2 * MS, 2 * MS]);
    assert_eq!(executor.queue_stats("q").unwrap().slow_polls, 0);
}

/// Per-poll figures are recorded in batches; a snapshot, taken between
/// turns or by a task in the middle of one, counts every poll made so far.
#[test]
fn a_snapshot_counts_every_poll_so_far_whatever_the_batch() {
    let (executor, hand) = manual(1, |b| b);
    let queue = executor.queue("q").unwrap();
    let inner = executor.clone();
    let polls = 100;
    let midway = block_on(executor.run_until(queue.spawn(async move {
        for _ in 0..polls {
            hand.advance(100 * US);
            yield_once().await;
        }
        inner.queue_stats("q").unwrap()
    })))
    .unwrap();
    // From inside the task's last poll: the polls before it.
    assert_eq!(midway.polls, polls);
    assert_eq!(midway.poll_duration.count(), polls);
    assert_eq!(midway.queue_delay.count(), polls);
    assert_eq!(midway.cpu_time, 100 * US * polls as u32);
    let after = executor.queue_stats("q").unwrap();
    assert_eq!(after.polls, polls + 1);
    assert_eq!(after.poll_duration.count(), polls + 1);
    assert_eq!(after.queue_delay.count(), polls + 1);
    assert_eq!(after.cpu_time, after.poll_duration.sum());
    assert_eq!(after.poll_duration.max(), Some(100 * US));
    assert_eq!(after.poll_duration.min(), Some(Duration::ZERO));
}

#[test]
fn slow_polls_are_reported_with_queue_task_name_and_location() {
    let (clock, hand) = Clock::manual();
    let seen = Seen::default();
    let sink = seen.clone();
    let executor = ExecutorBuilder::new()
        .with_queue("fast", 1)
        .with_queue("slow", 1)
        .on_slow_poll(MS, move |poll| {
            sink.borrow_mut().push((
                *poll.queue,
                poll.task,
                poll.name.map(str::to_owned),
                poll.location.file().to_owned(),
                poll.location.line(),
                poll.duration,
            ));
        })
        .with_clock(clock)
        .build()
        .unwrap();
    let fast = executor.queue("fast").unwrap();
    let slow = executor.queue("slow").unwrap();
    let h = hand.clone();
    let (ids, line) = block_on(executor.run_until(async move {
        // Below the threshold: not reported.
        fast.spawn(busy(h.clone(), 999 * US, 2)).await.unwrap();
        // Two polls at and over the threshold.
        let named = slow
            .task()
            .name("compaction")
            .spawn(busy(h.clone(), 3 * MS, 2));
        let line = line!() - 1;
        let unnamed = slow.spawn(busy(h.clone(), MS, 1));
        let ids = (named.id().unwrap(), unnamed.id().unwrap());
        named.await.unwrap();
        unnamed.await.unwrap();
        (ids, line)
    }));
    let seen = seen.borrow();
    let file = file!().to_owned();
    let named = (
        "slow",
        ids.0,
        Some("compaction".to_owned()),
        file.clone(),
        line,
        3 * MS,
    );
    let unnamed = ("slow", ids.1, None, file, line + 2, MS);
    assert_eq!(*seen, [named.clone(), unnamed, named]);
    let stats = executor.queue_stats("slow").unwrap();
    assert_eq!(stats.slow_polls, 3);
    assert_eq!(executor.queue_stats("fast").unwrap().slow_polls, 0);
}

#[test]
fn a_zero_slow_poll_threshold_is_refused() {
    let error = ExecutorBuilder::new()
        .with_queue("q", 1)
        .on_slow_poll(Duration::ZERO, |_| {})
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("slow_poll"), "{error}");
}

#[test]
fn stats_taken_during_a_turn_count_the_turn_so_far_as_busy() {
    let (executor, hand) = manual(1, |b| b);
    let queue = executor.queue("q").unwrap();
    let observer = executor.clone();
    hand.advance(MS); // idle before the run
    let during = block_on(executor.run_until(queue.spawn(async move {
        hand.advance(300 * US);
        observer.stats()
    })))
    .unwrap();
    assert_eq!(during.busy, 300 * US);
    assert_eq!(during.idle, MS);
    assert_eq!(during.uptime, MS + 300 * US);
}

/// A task spawned (through the spawner) while a long poll runs, and taken in
/// by that poll's `yield_maybe`, waited from that moment, not from the
/// poll's start: its queue delay is 0 here, where the poll yields at once.
#[test]
fn queue_delay_of_a_task_taken_in_by_yield_maybe_counts_from_then() {
    let (executor, hand) = manual(1, |b| b.with_queue("urgent", 16));
    let spawner = executor.spawner();
    let h = hand.clone();
    let urgent_ran = Rc::new(std::cell::Cell::new(false));
    let ran = Rc::clone(&urgent_ran);
    let spin = executor.queue("q").unwrap().spawn(async move {
        h.advance(Duration::from_micros(100));
        let urgent = spawner.spawn("urgent", async {}).unwrap();
        h.advance(Duration::from_micros(50));
        // Takes the spawn in and yields to it (it preempts this queue).
        clockworker::yield_maybe().await;
        ran.set(true);
        urgent.await.unwrap();
    });
    block_on(executor.run_until(spin)).unwrap();
    assert!(urgent_ran.get());
    let delay = executor.queue_stats("urgent").unwrap().queue_delay;
    assert_eq!(delay.count(), 1);
    assert_eq!(delay.max(), Some(Duration::ZERO));
}
