//! Scheduling behaviour under a manual clock: shares, slices, preemption,
//! host yields and `yield_maybe`. Every task "uses CPU" by advancing the
//! clock inside its poll, so the outcomes are exact and machine-independent.

mod common;
use common::yield_once;
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{Clock, ExecutorBuilder, ManualClock, yield_maybe};

const US: Duration = Duration::from_micros(1);

/// The order in which polls happened: one entry per poll, the queue's label.
type Log = Rc<RefCell<Vec<&'static str>>>;

/// A task that, `polls` times, uses `cost` of CPU and yields.
fn busy(
    label: &'static str,
    log: &Log,
    hand: &ManualClock,
    cost: Duration,
    polls: usize,
) -> impl Future<Output = ()> + 'static {
    let (log, hand) = (log.clone(), hand.clone());
    async move {
        for _ in 0..polls {
            log.borrow_mut().push(label);
            hand.advance(cost);
            yield_once().await;
        }
    }
}

/// Lengths of the runs of equal labels in `log`, e.g. `[("a", 3), ("b", 2)]`.
fn runs(log: &[&'static str]) -> Vec<(&'static str, usize)> {
    let mut runs: Vec<(&'static str, usize)> = Vec::new();
    for &label in log {
        match runs.last_mut() {
            Some((last, n)) if *last == label => *n += 1,
            _ => runs.push((label, 1)),
        }
    }
    runs
}

fn count(log: &[&'static str], label: &str) -> usize {
    log.iter().filter(|&&l| l == label).count()
}

#[test]
fn saturated_queues_share_the_cpu_by_weight() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("heavy", 3)
        .with_queue("light", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let heavy = executor.queue("heavy").unwrap();
    let light = executor.queue("light").unwrap();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        // Far more work than the window we look at: both stay saturated.
        heavy.spawn(busy("heavy", &log2, &hand2, 10 * US, 1_000_000));
        light.spawn(busy("light", &log2, &hand2, 10 * US, 1_000_000));
        let watcher = heavy.spawn({
            let log = log2.clone();
            async move {
                while log.borrow().len() < 40_000 {
                    yield_once().await;
                }
            }
        });
        watcher.await.unwrap();
    }));
    let log = log.borrow();
    let window = &log[..40_000];
    let share = count(window, "heavy") as f64 / window.len() as f64;
    // 400 ms of CPU in ~1 ms slices: the share is 3/4 up to one slice.
    assert!((share - 0.75).abs() < 0.01, "heavy share {share}");
}

#[test]
fn equal_queues_alternate_in_slices_of_latency_over_n() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 1)
        .with_sched_latency(Duration::from_millis(2))
        .with_min_slice(Duration::from_micros(100))
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let (a, b) = (executor.queue("a").unwrap(), executor.queue("b").unwrap());
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let ha = a.spawn(busy("a", &log2, &hand2, 100 * US, 100));
        let hb = b.spawn(busy("b", &log2, &hand2, 100 * US, 100));
        ha.await.unwrap();
        hb.await.unwrap();
    }));
    // Two runnable queues: 2 ms / 2 = 1 ms slices = 10 polls of 100 µs.
    let runs = runs(&log.borrow());
    assert_eq!(runs.len(), 20, "{runs:?}");
    for (i, &(label, n)) in runs.iter().enumerate() {
        assert_eq!(label, if i % 2 == 0 { "a" } else { "b" }, "{runs:?}");
        assert_eq!(n, 10, "{runs:?}");
    }
}

#[test]
fn slices_never_go_below_min_slice() {
    let (clock, hand) = Clock::manual();
    let labels = ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"];
    let mut builder = ExecutorBuilder::new()
        .with_sched_latency(Duration::from_millis(2))
        .with_min_slice(Duration::from_micros(500))
        .with_clock(clock);
    for label in labels {
        builder = builder.with_queue(label, 1);
    }
    let executor = builder.build().unwrap();
    let log = Log::default();
    let queues: Vec<_> = labels.iter().map(|&l| executor.queue(l).unwrap()).collect();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let handles: Vec<_> = queues
            .iter()
            .zip(labels)
            .map(|(q, l)| q.spawn(busy(l, &log2, &hand2, 100 * US, 50)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    // 2 ms / 8 queues = 250 µs, below the 500 µs floor: runs of 5 polls.
    let runs = runs(&log.borrow());
    assert!(runs.iter().all(|&(_, n)| n == 5), "{runs:?}");
}

#[test]
fn a_heavier_queue_preempts_at_the_next_poll() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let bg_task = bg.spawn({
            let (log, hand, fg) = (log2.clone(), hand2.clone(), fg.clone());
            async move {
                let mut fg_task = None;
                for i in 0..40 {
                    log.borrow_mut().push("bg");
                    hand.advance(10 * US);
                    if i == 3 {
                        // Mid-slice, work arrives for the foreground queue.
                        fg_task = Some(fg.spawn(busy("fg", &log, &hand, 10 * US, 1)));
                    }
                    yield_once().await;
                }
                fg_task.unwrap().await.unwrap();
            }
        });
        bg_task.await.unwrap();
    }));
    let log = log.borrow();
    // The poll right after the spawn is the foreground task's, not the rest
    // of the background slice.
    assert_eq!(&log[..6], &["bg", "bg", "bg", "bg", "fg", "bg"], "{log:?}");
}

#[test]
fn an_equal_queue_waits_for_the_slice_to_end() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 1)
        .with_sched_latency(Duration::from_millis(1))
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let (a, b) = (executor.queue("a").unwrap(), executor.queue("b").unwrap());
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let task = a.spawn({
            let (log, hand, b) = (log2.clone(), hand2.clone(), b.clone());
            async move {
                let mut other = None;
                for i in 0..30 {
                    log.borrow_mut().push("a");
                    hand.advance(100 * US);
                    if i == 1 {
                        other = Some(b.spawn(busy("b", &log, &hand, 100 * US, 1)));
                    }
                    yield_once().await;
                }
                other.unwrap().await.unwrap();
            }
        });
        task.await.unwrap();
    }));
    let runs = runs(&log.borrow());
    // Alone, `a` had a 1 ms slice (10 polls); `b` gets no preemption, so `a`
    // finishes that slice before `b` runs.
    assert_eq!(runs[0], ("a", 10), "{runs:?}");
    assert_eq!(runs[1], ("b", 1), "{runs:?}");
}

#[test]
fn an_idle_queue_banks_no_credit() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("early", 1)
        .with_queue("late", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let early = executor.queue("early").unwrap();
    let late = executor.queue("late").unwrap();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let task = early.spawn({
            let (log, hand, late) = (log2.clone(), hand2.clone(), late.clone());
            async move {
                let mut other = None;
                for i in 0..2_000 {
                    log.borrow_mut().push("early");
                    hand.advance(100 * US);
                    if i == 999 {
                        // `late` was idle for the first 100 ms.
                        other = Some(late.spawn(busy("late", &log, &hand, 100 * US, 1_000)));
                    }
                    yield_once().await;
                }
                other.unwrap().await.unwrap();
            }
        });
        task.await.unwrap();
    }));
    let log = log.borrow();
    // From the moment `late` wakes, the two share the CPU evenly: `late` does
    // not get the 100 ms it "missed".
    let after = &log[1_000..1_200];
    let late_share = count(after, "late") as f64 / after.len() as f64;
    assert!((late_share - 0.5).abs() <= 0.05, "late share {late_share}");
}

/// Polls `future` to completion with `futures::executor`, counting host polls.
fn block_on_counting<F: Future>(future: F) -> (F::Output, usize) {
    block_on_hosting(future, |_| {})
}

/// Polls `future` to completion with `futures::executor`, calling
/// `between(host_poll)` before each host poll: the host's own work between
/// turns, such as its reactor waking tasks. Returns the output and the
/// number of host polls.
fn block_on_hosting<F: Future>(future: F, mut between: impl FnMut(usize)) -> (F::Output, usize) {
    let mut future = pin!(future);
    let mut polls = 0;
    let output = futures::executor::block_on(std::future::poll_fn(|cx| {
        between(polls);
        polls += 1;
        future.as_mut().poll(cx)
    }));
    (output, polls)
}

#[test]
fn control_returns_to_the_host_every_driver_yield() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_driver_yield(Duration::from_millis(1))
        .with_max_polls_per_yield(1_000)
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let log = Log::default();
    let task = queue.spawn(busy("t", &log, &hand, 100 * US, 200));
    let (_, host_polls) = block_on_counting(executor.run_until(task));
    // 200 polls of 100 µs = 20 ms of work, handed back every 1 ms (10 polls):
    // 20 turns, and the turn that sees the task finish.
    assert_eq!(host_polls, 21);
}

#[test]
fn control_returns_to_the_host_every_max_polls() {
    let (clock, _hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_max_polls_per_yield(8)
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let task = queue.spawn(async {
        for _ in 0..79 {
            yield_once().await;
        }
    });
    let (_, host_polls) = block_on_counting(executor.run_until(task));
    // 80 polls in turns of 8, plus the turn that sees the task finish.
    assert_eq!(host_polls, 11);
}

#[test]
fn yield_maybe_hands_the_thread_to_the_host_every_driver_yield() {
    // One queue, one task: nothing inside the executor would ever preempt
    // it, and its slice renews for as long as it is alone. Only the host
    // knows that, say, a socket became ready; it must get the thread every
    // `driver_yield`, or a foreground request waits for the whole loop.
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_sched_latency(Duration::from_secs(1))
        .with_driver_yield(Duration::from_millis(1))
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let task = queue.spawn(async move {
        for _ in 0..200 {
            hand.advance(100 * US);
            yield_maybe().await;
        }
    });
    let mut host_polls = Vec::new();
    let (output, _) = block_on_hosting(executor.run_until(task), |_| {
        host_polls.push(clock.now_nanos());
    });
    output.unwrap();
    // 20 ms of work handed back every 1 ms (10 iterations): 20 turns, and
    // the one that sees the task finish.
    assert_eq!(host_polls.len(), 21);
    let longest_wait = host_polls.windows(2).map(|w| w[1] - w[0]).max();
    assert_eq!(longest_wait, Some(1_000_000));
    assert_eq!(executor.stats().driver_yields, 20);
    assert_eq!(
        executor.stats().turn_duration.max(),
        Some(Duration::from_millis(1))
    );
}

#[test]
fn a_wake_from_the_host_preempts_the_background_at_the_next_host_turn() {
    // The server's shape: background loops of 200 µs chunks with
    // `yield_maybe` in a weight-1 queue, and a foreground task that the
    // host's reactor wakes (from outside any turn, as epoll readiness does).
    // The foreground must run in the first turn after the host saw the
    // event, ahead of any further background chunk.
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 99)
        .with_queue("bg", 1)
        .with_driver_yield(Duration::from_micros(500))
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let log = Log::default();
    let ready = Rc::new(std::cell::Cell::new(false));
    let reactor: Rc<RefCell<Option<std::task::Waker>>> = Rc::default();
    for _ in 0..4 {
        let (log, hand) = (log.clone(), hand.clone());
        bg.spawn(async move {
            loop {
                log.borrow_mut().push("bg");
                hand.advance(200 * US);
                yield_maybe().await;
            }
        });
    }
    let request = fg.spawn({
        let (log, ready, reactor) = (log.clone(), ready.clone(), reactor.clone());
        async move {
            std::future::poll_fn(|cx| {
                if ready.get() {
                    std::task::Poll::Ready(())
                } else {
                    *reactor.borrow_mut() = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            })
            .await;
            log.borrow_mut().push("fg");
        }
    });
    let event_at = 4_300_000; // ns, in the middle of a background chunk
    let mut seen_at = None;
    let (output, host_polls) = block_on_hosting(executor.run_until(request), |_| {
        if seen_at.is_none() && clock.now_nanos() >= event_at {
            seen_at = Some(clock.now_nanos());
            ready.set(true);
            reactor.borrow_mut().take().unwrap().wake();
        }
    });
    output.unwrap();
    let seen_at = seen_at.expect("the host saw the event");
    // The host saw it at its first poll after the event: at most one
    // `driver_yield` plus one chunk later.
    assert!(
        seen_at - event_at <= 700_000,
        "seen {} ns late",
        seen_at - event_at
    );
    // And the foreground ran in that turn, before any more background.
    let log = log.borrow();
    let bg_before = log.iter().take_while(|&&l| l == "bg").count();
    assert_eq!(log.get(bg_before), Some(&"fg"));
    assert_eq!(bg_before as u64, seen_at / 200_000, "{host_polls:?}");
}

/// Wraps `future`, counting how many times it is polled.
fn counting_polls<F: Future>(
    future: F,
    polls: Rc<RefCell<usize>>,
) -> impl Future<Output = F::Output> {
    let mut future = Box::pin(future);
    std::future::poll_fn(move |cx| {
        *polls.borrow_mut() += 1;
        future.as_mut().poll(cx)
    })
}

#[test]
fn yield_maybe_yields_only_when_the_slice_is_over() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_sched_latency(Duration::from_millis(1))
        // Out of the way: this test is about slices (the host's deadline
        // has tests of its own below).
        .with_driver_yield(Duration::from_secs(1))
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let polls = Rc::new(RefCell::new(0));
    let task = queue.spawn(counting_polls(
        async move {
            for _ in 0..1_000 {
                hand.advance(10 * US);
                yield_maybe().await;
            }
        },
        polls.clone(),
    ));
    futures::executor::block_on(executor.run_until(task)).unwrap();
    // 10 ms of work in 1 ms slices: it yields after every 100 iterations,
    // 10 times, so it is polled 11 times.
    assert_eq!(*polls.borrow(), 11);
}

#[test]
fn yield_maybe_is_free_without_competition_and_yields_on_preemption() {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let log = Log::default();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        let task = bg.spawn({
            let (log, fg) = (log2.clone(), fg.clone());
            async move {
                let mut fg_task = None;
                for i in 0..20 {
                    log.borrow_mut().push("bg");
                    if i == 5 {
                        fg_task = Some(fg.spawn(busy("fg", &log, &hand2, US, 1)));
                    }
                    // No clock advance: the slice never ends; only the
                    // preemption makes yield_maybe yield.
                    yield_maybe().await;
                }
                fg_task.unwrap().await.unwrap();
            }
        });
        task.await.unwrap();
    }));
    let log = log.borrow();
    assert_eq!(
        runs(&log),
        vec![("bg", 6), ("fg", 1), ("bg", 14)],
        "bg must run uninterrupted except for the preemption"
    );
}

#[test]
fn a_light_queue_gets_its_turn_without_splitting_heavy_bursts() {
    // Weight 99 against 1, the background always runnable with 300 µs polls,
    // the foreground in bursts of eight 400 µs polls with idle gaps. The
    // background is owed a hundredth of each burst: it must not get a whole
    // poll in the middle of one (it gets the gaps, and its share over time).
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 99)
        .with_queue("bg", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let log = Log::default();
    let (log2, hand2) = (log.clone(), hand.clone());
    futures::executor::block_on(executor.run_until(async move {
        bg.spawn(busy("bg", &log2, &hand2, 300 * US, usize::MAX));
        for _ in 0..20 {
            yield_once().await;
            yield_once().await;
            let burst: Vec<_> = (0..8)
                .map(|_| fg.spawn(busy("fg", &log2, &hand2, 400 * US, 1)))
                .collect();
            for task in burst {
                task.await.unwrap();
            }
        }
    }));
    let runs = runs(&log.borrow());
    let fg_runs: Vec<usize> = runs.iter().filter(|r| r.0 == "fg").map(|r| r.1).collect();
    assert_eq!(fg_runs, vec![8; 20], "{runs:?}");
}

#[test]
fn the_manual_clock_stops_at_the_end_of_its_range_instead_of_wrapping() {
    let (clock, hand) = Clock::manual();
    hand.advance(Duration::from_nanos(u64::MAX - 10));
    let near_end = clock.now_nanos();
    hand.advance(Duration::from_secs(1));
    assert!(clock.now_nanos() >= near_end, "the clock went backwards");
    assert_eq!(clock.now_nanos(), u64::MAX);
}
