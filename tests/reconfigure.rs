//! Configuration changes at run time: `set_weight` and `add_queue`, on the
//! executor and through a spawner, under a manual clock so that shares are
//! exact.

mod common;
use common::yield_once;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use clockworker::{Clock, ConfigError, Executor, ExecutorBuilder, LAS, ManualClock, Shutdown};
use futures::executor::block_on;

const US: Duration = Duration::from_micros(1);

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A task that, forever, uses 10 µs of CPU per poll and logs it.
fn busy(label: &'static str, log: &Log, hand: &ManualClock) -> impl Future<Output = ()> + 'static {
    let (log, hand) = (log.clone(), hand.clone());
    async move {
        loop {
            log.borrow_mut().push(label);
            hand.advance(10 * US);
            yield_once().await;
        }
    }
}

/// Runs the executor until `polls` more polls have been logged. The check
/// is the `run_until` future, which the executor polls outside its queues,
/// so it takes no share.
fn run_polls(executor: &Executor<&'static str>, log: &Log, polls: usize) {
    let target = log.borrow().len() + polls;
    block_on(executor.run_until(std::future::poll_fn(|cx| {
        if log.borrow().len() >= target {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })));
}

fn share(log: &[&'static str], label: &str) -> f64 {
    log.iter().filter(|&&l| l == label).count() as f64 / log.len() as f64
}

fn two_saturated(a: u32, b: u32) -> (Rc<Executor<&'static str>>, Log, ManualClock) {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("a", a)
        .with_queue("b", b)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    executor.queue("a").unwrap().spawn(busy("a", &log, &hand));
    executor.queue("b").unwrap().spawn(busy("b", &log, &hand));
    (executor, log, hand)
}

/// 1:1, then 3:1: the shares follow the new weights from the change on.
#[test]
fn set_weight_changes_the_shares() {
    let (executor, log, _hand) = two_saturated(1, 1);
    run_polls(&executor, &log, 20_000);
    let before = share(&log.borrow(), "a");
    assert!((before - 0.5).abs() < 0.01, "share of a before: {before}");
    executor.set_weight("a", 3).unwrap();
    log.borrow_mut().clear();
    run_polls(&executor, &log, 40_000);
    let after = share(&log.borrow(), "a");
    assert!((after - 0.75).abs() < 0.01, "share of a after: {after}");
    assert_eq!(executor.queue_stats("a").unwrap().weight, 3);
}

/// The change takes effect at the next pick: right after it, the heavier
/// queue's slices are three times as long as the other's.
#[test]
fn set_weight_applies_at_the_next_pick() {
    let (executor, log, _hand) = two_saturated(1, 1);
    run_polls(&executor, &log, 2_000);
    executor.set_weight("b", 3).unwrap();
    log.borrow_mut().clear();
    run_polls(&executor, &log, 2_000);
    let log = log.borrow();
    // Runs of equal labels, past the first (which may be the old slice).
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for &label in log.iter() {
        match runs.last_mut() {
            Some((last, n)) if *last == label => *n += 1,
            _ => runs.push((label, 1)),
        }
    }
    let full: Vec<_> = runs[1..runs.len() - 1].to_vec();
    let longest = |label| {
        full.iter()
            .filter(|r| r.0 == label)
            .map(|r| r.1)
            .max()
            .unwrap()
    };
    // sched_latency 2 ms over weights 3+1: slices of 1.5 ms and 0.5 ms.
    assert_eq!(longest("b"), 150);
    assert_eq!(longest("a"), 50);
}

/// A queue added while another has run alone for long starts at the
/// average virtual runtime: it gets its share from then on, no catch-up
/// burst for the time it did not exist.
#[test]
fn added_queue_starts_even() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    executor.queue("a").unwrap().spawn(busy("a", &log, &hand));
    run_polls(&executor, &log, 10_000);
    let added = executor.add_queue("new", 1).unwrap();
    added.spawn(busy("new", &log, &hand));
    log.borrow_mut().clear();
    run_polls(&executor, &log, 1_000);
    let log = log.borrow();
    // Had it started at virtual time 0 it would run alone for 100 ms
    // (10,000 polls); it alternates in 1 ms slices instead.
    let first_new_run = log.iter().take_while(|&&l| l == "new").count();
    assert!(
        first_new_run <= 100,
        "new ran {first_new_run} polls in a row"
    );
    let new_share = share(&log, "new");
    assert!(
        (new_share - 0.5).abs() < 0.05,
        "share of the new queue: {new_share}"
    );
}

/// Through a spawner on another thread: a queue added there can be spawned
/// into at once, with a scheduler of its own, and weight changes apply.
#[test]
fn spawner_adds_queues_and_sets_weights() {
    let executor = ExecutorBuilder::new().with_queue("a", 1).build().unwrap();
    let spawner = executor.spawner();
    let handle = std::thread::spawn(move || {
        spawner.add_queue("b", 5).unwrap();
        spawner
            .add_queue_with_scheduler("c", 2, LAS::default())
            .unwrap();
        spawner.set_weight("a", 9).unwrap();
        let b = spawner.spawn("b", async { "in b" }).unwrap();
        let c = spawner.spawn("c", async { "in c" }).unwrap();
        (b, c)
    })
    .join()
    .unwrap();
    let (b, c) = block_on(executor.run_until(async { (handle.0.await, handle.1.await) }));
    assert_eq!((b.unwrap(), c.unwrap()), ("in b", "in c"));
    let weights: Vec<_> = executor
        .all_queue_stats()
        .into_iter()
        .map(|(key, stats)| (key, stats.weight, stats.completed))
        .collect();
    assert_eq!(weights, vec![("a", 9, 0), ("b", 5, 1), ("c", 2, 1)]);
    assert!(executor.queue("c").is_ok());
}

#[test]
fn bad_changes_are_typed_errors_and_change_nothing() {
    let executor = ExecutorBuilder::new().with_queue("a", 4).build().unwrap();
    assert!(matches!(
        executor.set_weight("a", 0),
        Err(ConfigError::ZeroWeight { .. })
    ));
    assert!(matches!(
        executor.set_weight("zz", 1),
        Err(ConfigError::UnknownQueue(_))
    ));
    assert!(matches!(
        executor.add_queue("a", 1),
        Err(ConfigError::DuplicateKey { .. })
    ));
    assert!(matches!(
        executor.add_queue("b", 0),
        Err(ConfigError::ZeroWeight { .. })
    ));
    let spawner = executor.spawner();
    assert!(matches!(
        spawner.add_queue("a", 1),
        Err(ConfigError::DuplicateKey { .. })
    ));
    assert!(matches!(
        spawner.set_weight("a", 0),
        Err(ConfigError::ZeroWeight { .. })
    ));
    assert_eq!(executor.queue_stats("a").unwrap().weight, 4);
    assert_eq!(executor.all_queue_stats().len(), 1);
    executor.shutdown(Shutdown::Cancel);
    drop(executor);
    assert_eq!(spawner.set_weight("a", 2), Err(ConfigError::ExecutorGone));
    assert_eq!(spawner.add_queue("b", 2), Err(ConfigError::ExecutorGone));
    // A refused add leaves the key free (nothing half-done).
    assert_eq!(spawner.add_queue("b", 2), Err(ConfigError::ExecutorGone));
}

/// A queue key whose `Clone` panics for the name "bad", and whose `Hash`
/// panics for it from its second call on (the first, the duplicate check,
/// passes): user code that runs inside `add_queue`.
#[derive(Debug, PartialEq, Eq)]
struct Touchy(&'static str);

thread_local! {
    static BAD_HASHES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Clone for Touchy {
    fn clone(&self) -> Self {
        assert_ne!(self.0, "bad-clone", "Clone of a bad key");
        Touchy(self.0)
    }
}

impl std::hash::Hash for Touchy {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.0 == "bad-hash" {
            let calls = BAD_HASHES.with(|calls| calls.replace(calls.get() + 1));
            assert_eq!(calls, 0, "Hash of a bad key");
        }
        self.0.hash(state);
    }
}

#[test]
fn a_key_whose_clone_or_hash_panics_in_add_queue_leaves_the_queues_aligned() {
    let executor = ExecutorBuilder::new()
        .with_queue(Touchy("main"), 1)
        .build()
        .unwrap();
    let spawner = executor.spawner();
    for (bad, weight) in [("bad-clone", 3), ("bad-hash", 4)] {
        BAD_HASHES.with(|calls| calls.set(0));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            executor.add_queue(Touchy(bad), weight)
        }));
        assert!(panicked.is_err());
        BAD_HASHES.with(|calls| calls.set(0));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawner.add_queue(Touchy(bad), weight + 10)
        }));
        assert!(panicked.is_err());
    }
    // The next queues get their own weights, from either side.
    executor.add_queue(Touchy("second"), 7).unwrap();
    spawner.add_queue(Touchy("third"), 9).unwrap();
    assert_eq!(executor.queue_stats(Touchy("second")).unwrap().weight, 7);
    assert_eq!(executor.queue_stats(Touchy("third")).unwrap().weight, 9);
    let keys: Vec<_> = executor
        .all_queue_stats()
        .into_iter()
        .map(|(key, stats)| (key.0, stats.weight))
        .collect();
    assert_eq!(keys, [("main", 1), ("second", 7), ("third", 9)]);
    let third = executor.queue(Touchy("third")).unwrap();
    assert_eq!(
        block_on(executor.run_until(third.spawn(async { 3 }))).unwrap(),
        3
    );
}

/// Changes apply in the order they were made, whichever side made them: a
/// weight set on the executor's thread after one a spawner queued wins,
/// and a queue the executor adds after one a spawner added gets the next
/// index.
#[test]
fn changes_from_both_sides_apply_in_the_order_they_were_made() {
    let executor = ExecutorBuilder::new().with_queue("a", 1).build().unwrap();
    let spawner = executor.spawner();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            spawner.set_weight("a", 5).unwrap();
            spawner.add_queue("b", 2).unwrap();
        });
    });
    executor.set_weight("a", 3).unwrap();
    executor.add_queue("c", 4).unwrap();
    let weights: Vec<_> = executor
        .all_queue_stats()
        .into_iter()
        .map(|(key, stats)| (key, stats.weight))
        .collect();
    assert_eq!(weights, [("a", 3), ("b", 2), ("c", 4)]);
}
