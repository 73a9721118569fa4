//! Per-queue task schedulers under a manual clock: the ordering of each
//! built-in scheduler, task groups (inheritance, opting out, overriding), the
//! freeing of group state, user-written schedulers, and schedulers that drop
//! tasks. Tasks "use CPU" by advancing the manual clock inside their polls,
//! so every outcome here is exact and independent of the machine.
//!
//! Every executor is driven by [`drive`], which fails the test if the run
//! future ever returns `Pending` without having arranged a wake-up: a real
//! host would never poll it again, so that is a hang, detected
//! deterministically.

mod common;
use common::{drive, try_drive, yield_once};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use clockworker::{
    ArrivalFifo, Clock, Edf, Executor, ExecutorBuilder, GroupFair, JoinError, LAS, ManualClock,
    QueueHandle, ReadyTask, Reports, RunnableFifo, Scheduler, TaskId, TaskInfo, group_id,
};

const US: Duration = Duration::from_micros(1);
const MS: Duration = Duration::from_millis(1);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// An executor with one queue, key 0, ordered by `scheduler`, on `clock`.
fn one_queue(scheduler: impl Scheduler, clock: Clock) -> (Rc<Executor<i32>>, QueueHandle) {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, scheduler)
        .with_clock(clock)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    (executor, queue)
}

/// One entry per poll: the label of the task polled.
type Log = Rc<RefCell<Vec<&'static str>>>;

fn log_push(log: &Log, label: &'static str) {
    log.borrow_mut().push(label);
}

/// A one-shot event: tasks wait for it, `open` wakes them all.
#[derive(Clone, Default)]
struct Gate(Rc<RefCell<(bool, Vec<Waker>)>>);

impl Gate {
    fn open(&self) {
        let waiters = {
            let mut state = self.0.borrow_mut();
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut state = self.0.borrow_mut();
            if state.0 {
                Poll::Ready(())
            } else {
                state.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// A task that, `polls` times, logs `label`, uses `cost` of CPU and yields.
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
            log_push(&log, label);
            hand.advance(cost);
            yield_once().await;
        }
    }
}

/// Like [`busy`], but runs until the log holds `limit` entries.
fn busy_until(
    label: &'static str,
    log: &Log,
    hand: &ManualClock,
    cost: Duration,
    limit: usize,
) -> impl Future<Output = ()> + 'static {
    let (log, hand) = (log.clone(), hand.clone());
    async move {
        while log.borrow().len() < limit {
            log_push(&log, label);
            hand.advance(cost);
            yield_once().await;
        }
    }
}

fn count(log: &[&'static str], label: &str) -> usize {
    log.iter().filter(|&&l| l == label).count()
}

/// The longest run of consecutive `label`s in `log`.
fn longest_run(log: &[&'static str], label: &str) -> usize {
    let (mut best, mut current) = (0, 0);
    for &l in log {
        current = if l == label { current + 1 } else { 0 };
        best = best.max(current);
    }
    best
}

/// Everything a [`Recorder`] saw.
#[derive(Default)]
struct Events {
    /// The task's figures at each push.
    pushes: Vec<TaskInfo>,
    /// Each `polled` call.
    polls: Vec<(TaskInfo, u64, bool)>,
    tasks_gone: Vec<TaskId>,
    groups_gone: Vec<u64>,
}

impl Events {
    fn pushes_of(&self, id: TaskId) -> Vec<TaskInfo> {
        self.pushes.iter().filter(|i| i.id == id).copied().collect()
    }

    fn polls_of(&self, id: TaskId) -> Vec<(TaskInfo, u64, bool)> {
        self.polls
            .iter()
            .filter(|p| p.0.id == id)
            .copied()
            .collect()
    }

    /// The group every push of `id` saw (asserting they agree).
    fn group_of(&self, id: TaskId) -> Option<u64> {
        let pushes = self.pushes_of(id);
        assert!(!pushes.is_empty(), "{id} was never pushed");
        assert!(pushes.iter().all(|i| i.group == pushes[0].group));
        pushes[0].group
    }
}

/// Wraps a scheduler and records every call into shared [`Events`]. It
/// asks for every report, unless made to ask for `reports`.
struct Recorder<S> {
    inner: S,
    events: Rc<RefCell<Events>>,
    reports: Reports,
}

impl<S: Scheduler> Recorder<S> {
    fn new(inner: S) -> (Self, Rc<RefCell<Events>>) {
        Self::asking(inner, Reports::ALL)
    }

    fn asking(inner: S, reports: Reports) -> (Self, Rc<RefCell<Events>>) {
        let events = Rc::new(RefCell::new(Events::default()));
        (
            Recorder {
                inner,
                events: events.clone(),
                reports,
            },
            events,
        )
    }
}

impl<S: Scheduler> Scheduler for Recorder<S> {
    fn push(&mut self, task: ReadyTask) {
        let info = task.info();
        // The accessors and `info` agree.
        assert_eq!(info.id, task.id());
        assert_eq!(info.group, task.group());
        assert_eq!(info.group_service, task.group_service());
        assert_eq!(info.service, task.service());
        assert_eq!(info.deadline, task.deadline());
        assert_eq!(info.arrival, task.arrival());
        self.events.borrow_mut().pushes.push(info);
        self.inner.push(task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.inner.pop()
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn polled(&mut self, task: &TaskInfo, elapsed: u64, finished: bool) {
        self.events
            .borrow_mut()
            .polls
            .push((*task, elapsed, finished));
        self.inner.polled(task, elapsed, finished);
    }

    fn task_gone(&mut self, task: TaskId) {
        self.events.borrow_mut().tasks_gone.push(task);
        self.inner.task_gone(task);
    }

    fn group_gone(&mut self, group: u64) {
        self.events.borrow_mut().groups_gone.push(group);
        self.inner.group_gone(group);
    }

    fn reports(&self) -> Reports {
        self.reports
    }
}

// ---------------------------------------------------------------------------
// 1. Ordering of the built-in schedulers
// ---------------------------------------------------------------------------

/// Four tasks, spawned in the order W, A, B, D. W and A each sleep on a gate
/// after their first poll. B opens W's gate and yields; W, woken, opens A's
/// gate. So A is woken *after* B became runnable again. D polls once.
/// Returns the poll log.
fn sleep_and_wake_scenario(scheduler: impl Scheduler) -> Vec<&'static str> {
    let (clock, _hand) = Clock::manual();
    let (executor, queue) = one_queue(scheduler, clock);
    let log = Log::default();
    let (gate_w, gate_a) = (Gate::default(), Gate::default());
    let l = log.clone();
    drive(executor.run_until(async move {
        let w = queue.spawn({
            let (log, gate_w, gate_a) = (l.clone(), gate_w.clone(), gate_a.clone());
            async move {
                log_push(&log, "W1");
                gate_w.wait().await;
                log_push(&log, "W2");
                gate_a.open();
            }
        });
        let a = queue.spawn({
            let (log, gate_a) = (l.clone(), gate_a.clone());
            async move {
                log_push(&log, "A1");
                gate_a.wait().await;
                log_push(&log, "A2");
            }
        });
        let b = queue.spawn({
            let (log, gate_w) = (l.clone(), gate_w.clone());
            async move {
                log_push(&log, "B1");
                gate_w.open();
                yield_once().await;
                log_push(&log, "B2");
            }
        });
        let d = queue.spawn({
            let log = l.clone();
            async move { log_push(&log, "D1") }
        });
        for h in [w, a, b, d] {
            h.await.unwrap();
        }
    }));
    log.take()
}

#[test]
fn runnable_fifo_runs_in_order_of_becoming_runnable() {
    let log = sleep_and_wake_scenario(RunnableFifo::new());
    // After B1 the queue holds D (spawned), W (woken by B), B (yielded); W2
    // then wakes A, which goes to the back, behind B.
    assert_eq!(log, ["W1", "A1", "B1", "D1", "W2", "B2", "A2"]);
}

/// The default FIFO is kept natively by its queue (no scheduler object):
/// the same order as the `RunnableFifo` object behind a wrapper, which the
/// queue calls like any scheduler of the user's.
#[test]
fn the_native_fifo_orders_tasks_as_the_runnable_fifo_object_does() {
    let native = sleep_and_wake_scenario(RunnableFifo::new());
    let (wrapped, events) = Recorder::new(RunnableFifo::new());
    assert_eq!(sleep_and_wake_scenario(wrapped), native);
    assert!(
        !events.borrow().pushes.is_empty(),
        "the wrapper was not used"
    );
}

#[test]
fn arrival_fifo_runs_in_spawn_order_across_sleeps() {
    let log = sleep_and_wake_scenario(ArrivalFifo::new());
    // W and A slept, and were woken after B became runnable again, yet they
    // keep their places (spawned first): W2, A2 before B2. D, spawned last,
    // waits behind all of them, though it was runnable all along.
    assert_eq!(log, ["W1", "A1", "B1", "W2", "A2", "B2", "D1"]);
}

#[test]
fn arrival_fifo_a_young_task_woken_early_still_waits_for_older_ones() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(ArrivalFifo::new(), clock);
    let log = Log::default();
    let gate = Gate::default();
    let (l, g) = (log.clone(), gate.clone());
    drive(executor.run_until(async move {
        // The youngest task is woken (by the first poll of the oldest) before
        // the two middle tasks have run at all.
        let mut handles = vec![queue.spawn({
            let (log, gate) = (l.clone(), g.clone());
            async move {
                log_push(&log, "old");
                gate.open();
                yield_once().await;
                log_push(&log, "old");
            }
        })];
        for label in ["mid1", "mid2"] {
            handles.push(queue.spawn(busy(label, &l, &hand, US, 2)));
        }
        handles.push(queue.spawn({
            let (log, gate) = (l.clone(), g.clone());
            async move {
                gate.wait().await;
                log_push(&log, "young");
            }
        }));
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(
        log.take(),
        ["old", "old", "mid1", "mid1", "mid2", "mid2", "young"]
    );
}

/// LAS ordering exactly at every poll (granularity zero), for the tests of
/// its exact order, ties included.
fn exact_las() -> LAS {
    LAS::new().with_granularity(Duration::ZERO)
}

#[test]
fn las_new_short_tasks_overtake_a_long_running_one() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(exact_las(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let long = queue.spawn({
            let (log, hand, queue) = (l.clone(), h.clone(), queue.clone());
            async move {
                let mut shorts = Vec::new();
                for i in 0..10 {
                    log_push(&log, "L");
                    hand.advance(MS);
                    if i == 4 {
                        // Ungrouped children of an ungrouped task: each is
                        // its own group, with no service yet.
                        for label in ["S1", "S2", "S3"] {
                            shorts.push(queue.spawn(busy(label, &log, &hand, 100 * US, 2)));
                        }
                    }
                    yield_once().await;
                }
                for s in shorts {
                    s.await.unwrap();
                }
            }
        });
        long.await.unwrap();
    }));
    // The long task has 5 ms of service when the short ones arrive; they all
    // run to completion first, round-robin by equal service, ties by arrival.
    let mut expected = vec!["L"; 5];
    expected.extend(["S1", "S2", "S3", "S1", "S2", "S3"]);
    expected.extend(["L"; 5]);
    assert_eq!(log.take(), expected);
}

#[test]
fn las_ties_go_by_arrival() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(LAS::new(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        // Zero-cost polls: every task always has service 0, so LAS is pure
        // arrival order (and a yielding task does *not* go to the back).
        let handles: Vec<_> = ["t0", "t1", "t2"]
            .into_iter()
            .map(|label| queue.spawn(busy(label, &l, &h, Duration::ZERO, 2)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(log.take(), ["t0", "t0", "t1", "t1", "t2", "t2"]);
}

#[test]
fn las_charges_a_group_for_all_of_its_tasks() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(exact_las(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    let fresh_at = Rc::new(RefCell::new(None));
    let fresh_at2 = fresh_at.clone();
    drive(executor.run_until(async move {
        // Ten tasks of group "big", 100 µs per poll: after 50 polls the group
        // has 5 ms of service, though no single task has more than 500 µs...
        let mut handles = Vec::new();
        for _ in 0..10 {
            let (log, hand, queue, fresh_at) =
                (l.clone(), h.clone(), queue.clone(), fresh_at2.clone());
            handles.push(queue.clone().group("big").spawn(async move {
                let mut fresh = None;
                for _ in 0..10 {
                    log_push(&log, "big");
                    hand.advance(100 * US);
                    if log.borrow().len() == 50 {
                        // ...when a single-task group arrives, whose polls
                        // take 1 ms each.
                        *fresh_at.borrow_mut() = Some(50);
                        fresh = Some(
                            queue
                                .group("fresh")
                                .spawn(busy("fresh", &log, &hand, MS, 8)),
                        );
                    }
                    yield_once().await;
                }
                if let Some(fresh) = fresh {
                    fresh.await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    }));
    let log = log.take();
    assert_eq!(*fresh_at.borrow(), Some(50));
    assert_eq!(log.len(), 108);
    // The fresh group runs while its service (0..4 ms) is below the big
    // group's 5 ms; at 5 ms it ties and loses on arrival. Were service
    // counted per task, it would lose to the big tasks after its first poll.
    assert_eq!(
        &log[50..56],
        ["fresh", "fresh", "fresh", "fresh", "fresh", "big"]
    );
    // Every fresh poll ran (its group was never starved either).
    assert_eq!(count(&log, "fresh"), 8);
}

#[test]
fn las_ungrouped_tasks_are_their_own_groups() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(exact_las(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        // Two ungrouped tasks with different costs: each is its own group, so
        // the cheap one runs until its own service catches up.
        let a = queue.spawn(busy("a", &l, &h, 300 * US, 3));
        let b = queue.spawn(busy("b", &l, &h, 100 * US, 6));
        a.await.unwrap();
        b.await.unwrap();
    }));
    // a: 0 -> 300; b: 0,100,200 -> 300 (tie, a is older); a: 300 -> 600;
    // b: 300,400,500 -> 600; a: 600 -> 900 (done); b done.
    assert_eq!(log.take(), ["a", "b", "b", "b", "a", "b", "b", "b", "a"]);
}

#[test]
fn edf_runs_by_deadline_then_the_rest_in_fifo_order() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(Edf::new(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let specs: [(&'static str, Option<u32>); 7] = [
            ("none1", None),
            ("d30", Some(30)),
            ("d10a", Some(10)),
            ("none2", None),
            ("d20", Some(20)),
            ("d10b", Some(10)),
            ("none3", None),
        ];
        let handles: Vec<_> = specs
            .into_iter()
            .map(|(label, deadline)| {
                let task = match deadline {
                    Some(ms) => queue.task().deadline(ms * MS),
                    None => queue.task(),
                };
                task.spawn(busy(label, &l, &h, 100 * US, 1))
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(
        log.take(),
        ["d10a", "d10b", "d20", "d30", "none1", "none2", "none3"]
    );
}

#[test]
fn edf_no_deadline_tasks_keep_fifo_order_across_yields() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(Edf::new(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let a = queue.spawn(busy("a", &l, &h, US, 2));
        let b = queue.spawn(busy("b", &l, &h, US, 2));
        let d = queue.task().deadline(MS).spawn(busy("d", &l, &h, US, 2));
        for h in [a, b, d] {
            h.await.unwrap();
        }
    }));
    // The deadline task first, to completion; then a (yielding keeps it
    // ahead of b: arrival order, not runnable order).
    assert_eq!(log.take(), ["d", "d", "a", "a", "b", "b"]);
}

#[test]
fn edf_deadlines_are_absolute_from_spawn_time() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(Edf::new(), clock);
    let log = Log::default();
    let gate = Gate::default();
    let (l, h, g) = (log.clone(), hand.clone(), gate.clone());
    drive(executor.run_until(async move {
        // At t = 0: A, due at 10 ms, waits on the gate.
        let a = queue.task().deadline(10 * MS).spawn({
            let (log, gate) = (l.clone(), g.clone());
            async move {
                gate.wait().await;
                log_push(&log, "A");
            }
        });
        let spawner = queue.spawn({
            let (log, hand, gate, queue) = (l.clone(), h.clone(), g.clone(), queue.clone());
            async move {
                hand.advance(8 * MS);
                yield_once().await;
                // At t = 8 ms: B due at 13 ms, C due at 9 ms; A woken.
                let b = queue
                    .task()
                    .deadline(5 * MS)
                    .spawn(busy("B", &log, &hand, US, 1));
                let c = queue
                    .task()
                    .deadline(MS)
                    .spawn(busy("C", &log, &hand, US, 1));
                gate.open();
                b.await.unwrap();
                c.await.unwrap();
            }
        });
        a.await.unwrap();
        spawner.await.unwrap();
    }));
    assert_eq!(log.take(), ["C", "A", "B"]);
}

#[test]
fn las_the_running_task_keeps_the_thread_within_the_granularity() {
    let (clock, hand) = Clock::manual();
    let las = LAS::new().with_granularity(250 * US);
    let (executor, queue) = one_queue(las, clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let a = queue.spawn(busy("a", &l, &h, 100 * US, 6));
        let b = queue.spawn(busy("b", &l, &h, 100 * US, 6));
        a.await.unwrap();
        b.await.unwrap();
    }));
    // a runs while its service is below b's 0 + 250 µs: 3 polls (300 µs).
    // b then runs while below a's 300 + 250 µs: all 6 of its polls (600
    // µs). a finishes.
    let mut expected = vec!["a"; 3];
    expected.extend(["b"; 6]);
    expected.extend(["a"; 3]);
    assert_eq!(log.take(), expected);
}

#[test]
fn las_a_newcomer_with_less_service_ends_the_turn_at_the_next_poll() {
    let (clock, hand) = Clock::manual();
    // A granularity far above every service here: only arrivals end turns.
    let las = LAS::new().with_granularity(Duration::from_secs(1));
    let (executor, queue) = one_queue(las, clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let mut handles = vec![queue.group("g").spawn(busy("g", &l, &h, MS, 6))];
        handles.push(queue.group("g").spawn({
            let (log, hand, queue) = (l.clone(), h.clone(), queue.clone());
            async move {
                log_push(&log, "g");
                hand.advance(MS);
                yield_once().await;
                // The group has 3 ms of service; the newcomer none.
                let newcomer = queue
                    .task()
                    .no_group()
                    .spawn(busy("new", &log, &hand, MS, 2));
                log_push(&log, "g");
                hand.advance(MS);
                newcomer.await.unwrap();
            }
        }));
        for handle in handles {
            handle.await.unwrap();
        }
    }));
    // The group's turn had no end (nobody was waiting when it started); the
    // newcomer's arrival ends it after the poll that spawned it, and the
    // newcomer runs both its polls (2 ms < the group's 4 ms) in its turn.
    assert_eq!(
        log.take(),
        ["g", "g", "g", "g", "new", "new", "g", "g", "g", "g"]
    );
}

#[test]
fn group_fair_no_group_gets_more_than_the_granularity_ahead() {
    const POLLS: usize = 2_000;
    let (clock, hand) = Clock::manual();
    let fair = GroupFair::new().with_granularity(MS);
    let (executor, queue) = one_queue(fair, clock);
    let log = two_groups(executor, queue, &hand, [4, 1], POLLS);
    assert_eq!(log.len(), POLLS);
    // A group runs until it is 1 ms (10 polls) ahead of the other: turns of
    // 20 polls once both have run, and the two never drift further apart
    // than the granularity plus one poll.
    assert_eq!(longest_run(&log, "a"), 20);
    assert_eq!(longest_run(&log, "b"), 20);
    assert!(max_lag(&log, 1) <= 11, "lag {}", max_lag(&log, 1));
    assert_eq!(count(&log, "a"), POLLS / 2);
}

/// Runs groups "a" and "b" with `tasks[0]` and `tasks[1]` tasks of 100 µs
/// polls until `polls` polls in all, and returns the log of which ran.
fn two_groups(
    executor: Rc<Executor<i32>>,
    queue: QueueHandle,
    hand: &ManualClock,
    tasks: [usize; 2],
    polls: usize,
) -> Vec<&'static str> {
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let mut handles = Vec::new();
        for (label, n) in ["a", "b"].into_iter().zip(tasks) {
            for _ in 0..n {
                let task = busy_until(label, &l, &h, 100 * US, polls);
                handles.push(queue.group(label).spawn(task));
            }
        }
        for h in handles {
            h.await.unwrap();
        }
    }));
    log.take()
}

/// The largest gap, over every prefix of `log`, between `count(a)` and
/// `weight_a * count(b)`, in polls (all polls cost the same): how far the
/// weighted shares ever drift apart.
fn max_lag(log: &[&'static str], weight_a: i64) -> i64 {
    let (mut a, mut b, mut worst) = (0i64, 0i64, 0i64);
    for &l in log {
        match l {
            "a" => a += 1,
            "b" => b += 1,
            other => panic!("unexpected label {other}"),
        }
        worst = worst.max((a - weight_a * b).abs());
    }
    worst
}

#[test]
fn group_fair_splits_evenly_between_groups_whatever_their_task_counts() {
    const POLLS: usize = 4_000;
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(GroupFair::new(), clock);
    let log = two_groups(executor, queue, &hand, [10, 1], POLLS);
    assert_eq!(log.len(), POLLS);
    // Equal weights, equal poll costs: at every point the two groups'
    // CPU times differ by at most one poll (100 µs).
    assert!(max_lag(&log, 1) <= 1, "lag {}", max_lag(&log, 1));
    assert_eq!(count(&log, "a"), POLLS / 2);
    assert_eq!(count(&log, "b"), POLLS / 2);
}

#[test]
fn group_fair_with_weights_shares_by_weight() {
    const POLLS: usize = 4_000;
    let (clock, hand) = Clock::manual();
    let a_id = group_id(&"a");
    let fair = GroupFair::with_weights(move |g| if g == a_id { 3 } else { 1 });
    let (executor, queue) = one_queue(fair, clock);
    // The heavy group has one task, the light one ten: weight, not task
    // count, decides.
    let log = two_groups(executor, queue, &hand, [1, 10], POLLS);
    assert_eq!(log.len(), POLLS);
    // a's service / 3 and b's service stay within one poll of each other
    // (3 polls of a).
    assert!(max_lag(&log, 3) <= 3, "lag {}", max_lag(&log, 3));
    assert_eq!(count(&log, "a"), 3 * POLLS / 4);
}

#[test]
fn group_fair_an_idle_group_banks_no_credit() {
    const POLLS: usize = 2_000;
    const WAKE_AT: usize = 1_000;
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(GroupFair::new(), clock);
    let log = Log::default();
    let gate = Gate::default();
    let (l, h, g) = (log.clone(), hand.clone(), gate.clone());
    drive(executor.run_until(async move {
        let a = queue.group("a").spawn({
            let (log, hand, gate) = (l.clone(), h.clone(), g.clone());
            async move {
                while log.borrow().len() < POLLS {
                    log_push(&log, "a");
                    hand.advance(100 * US);
                    if log.borrow().len() == WAKE_AT {
                        gate.open();
                    }
                    yield_once().await;
                }
            }
        });
        let b = queue.group("b").spawn({
            let (log, hand, gate) = (l.clone(), h.clone(), g.clone());
            async move {
                // Ten polls, then idle (alive, asleep) for ~99 ms of a's CPU.
                busy("b", &log, &hand, 100 * US, 10).await;
                gate.wait().await;
                busy_until("b", &log, &hand, 100 * US, POLLS).await;
            }
        });
        a.await.unwrap();
        b.await.unwrap();
    }));
    let log = log.take();
    assert_eq!(log.len(), POLLS);
    let before = &log[..WAKE_AT];
    assert_eq!(count(before, "b"), 10);
    // After the wake, the two alternate: b does not get a burst of the
    // ~98 ms it "missed".
    let after = &log[WAKE_AT..];
    assert!(
        longest_run(after, "b") <= 2,
        "b ran {} in a row",
        longest_run(after, "b")
    );
    assert!(max_lag(after, 1) <= 2, "lag {}", max_lag(after, 1));
}

#[test]
fn group_fair_within_a_group_tasks_run_in_runnable_order() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(GroupFair::new(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let handles: Vec<_> = ["x", "y", "z"]
            .into_iter()
            .map(|label| queue.group("g").spawn(busy(label, &l, &h, 100 * US, 2)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(log.take(), ["x", "y", "z", "x", "y", "z"]);
}

// ---------------------------------------------------------------------------
// 2. Groups: explicit, inherited, opted out, overridden
// ---------------------------------------------------------------------------

#[test]
fn groups_are_inherited_unless_opted_out_or_overridden() {
    let (clock, _hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let ids: Rc<RefCell<HashMap<&'static str, TaskId>>> = Rc::default();
    let ids2 = ids.clone();
    drive(executor.run_until(async move {
        let record = {
            let ids = ids2.clone();
            move |label: &'static str, id: Option<TaskId>| {
                ids.borrow_mut().insert(label, id.unwrap());
            }
        };
        let top = queue.spawn(async {});
        record("top", top.id());
        let parent = queue.group("tenant").spawn({
            let (queue, record) = (queue.clone(), record.clone());
            async move {
                let child = queue.spawn({
                    let (queue, record) = (queue.clone(), record.clone());
                    async move {
                        // A grandchild inherits through the child.
                        let grandchild = queue.spawn(async {});
                        record("grandchild", grandchild.id());
                        grandchild.await.unwrap();
                    }
                });
                record("child", child.id());
                let loose = queue.task().no_group().spawn({
                    let (queue, record) = (queue.clone(), record.clone());
                    async move {
                        // A child of an ungrouped task has no group either.
                        let loose_child = queue.spawn(async {});
                        record("loose_child", loose_child.id());
                        loose_child.await.unwrap();
                    }
                });
                record("loose", loose.id());
                let other = queue.task().group("other").spawn({
                    let (queue, record) = (queue.clone(), record.clone());
                    async move {
                        let other_child = queue.spawn(async {});
                        record("other_child", other_child.id());
                        other_child.await.unwrap();
                    }
                });
                record("other", other.id());
                // Yielding does not lose the group: spawn after a yield.
                yield_once().await;
                let late = queue.spawn(async {});
                record("late", late.id());
                for h in [child, loose, other] {
                    h.await.unwrap();
                }
                late.await.unwrap();
            }
        });
        record("parent", parent.id());
        parent.await.unwrap();
        top.await.unwrap();
        // Spawned from the run_until future after the grouped tasks ran.
        let after = queue.spawn(async {});
        record("after", after.id());
        after.await.unwrap();
    }));
    let ids = ids.take();
    let events = events.borrow();
    let group = |label: &str| events.group_of(ids[label]);
    let tenant = Some(group_id(&"tenant"));
    let other = Some(group_id(&"other"));
    assert_eq!(group("top"), None);
    assert_eq!(group("parent"), tenant);
    assert_eq!(group("child"), tenant);
    assert_eq!(group("grandchild"), tenant);
    assert_eq!(group("late"), tenant);
    assert_eq!(group("loose"), None);
    assert_eq!(group("loose_child"), None);
    assert_eq!(group("other"), other);
    assert_eq!(group("other_child"), other);
    assert_eq!(group("after"), None);
    // The polls report the same groups.
    for (label, &id) in &ids {
        for (info, _, _) in events.polls_of(id) {
            assert_eq!(info.group, group(label), "{label}");
        }
    }
}

#[test]
fn group_keys_of_any_hash_type_name_groups_by_group_id() {
    let (clock, _hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let handles = drive(executor.run_until(async move {
        let a = queue.group("k").spawn(async {});
        let b = queue.group(String::from("k")).spawn(async {});
        let c = queue.group(7u64).spawn(async {});
        let ids = [a.id().unwrap(), b.id().unwrap(), c.id().unwrap()];
        for h in [a, b, c] {
            h.await.unwrap();
        }
        ids
    }));
    let events = events.borrow();
    assert_eq!(events.group_of(handles[0]), Some(group_id("k")));
    // A String and a &str with the same text hash alike: the same group.
    assert_eq!(events.group_of(handles[1]), Some(group_id("k")));
    assert_eq!(events.group_of(handles[2]), Some(group_id(&7u64)));
    assert_ne!(group_id("k"), group_id(&7u64));
}

#[test]
fn las_inherited_children_are_charged_to_the_parents_group() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(LAS::new(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        // "req" used 5 ms, then spawns a child (inherits "req") and an
        // opted-out child. A fresh ungrouped task arrives at the same time.
        let req = queue.group("req").spawn({
            let (log, hand, queue) = (l.clone(), h.clone(), queue.clone());
            async move {
                log_push(&log, "req");
                hand.advance(5 * MS);
                let child = queue.spawn(busy("child", &log, &hand, MS, 1));
                let free = queue
                    .task()
                    .no_group()
                    .spawn(busy("free", &log, &hand, MS, 3));
                child.await.unwrap();
                free.await.unwrap();
            }
        });
        req.await.unwrap();
    }));
    // The opted-out child starts at 0 service and runs 3 ms worth (0, 1, 2 ms
    // < 5 ms) before the inherited child, which starts at its group's 5 ms.
    assert_eq!(log.take(), ["req", "free", "free", "free", "child"]);
}

// ---------------------------------------------------------------------------
// 3. Group state is freed with the group's last task
// ---------------------------------------------------------------------------

#[test]
fn ten_thousand_groups_are_each_forgotten_when_their_task_ends() {
    const GROUPS: u64 = 10_000;
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(GroupFair::new());
    let (executor, queue) = one_queue(recorder, clock);
    let ids = drive(executor.run_until(async move {
        let mut ids = Vec::new();
        for i in 0..GROUPS {
            let hand = hand.clone();
            let task = queue.group(i).spawn(async move {
                hand.advance(US);
                yield_once().await;
            });
            ids.push(task.id().unwrap());
            task.await.unwrap();
        }
        ids
    }));
    let events = events.borrow();
    assert_eq!(events.groups_gone.len(), GROUPS as usize);
    let gone: HashSet<u64> = events.groups_gone.iter().copied().collect();
    let expected: HashSet<u64> = (0..GROUPS).map(|i| group_id(&i)).collect();
    assert_eq!(gone, expected);
    assert_eq!(events.tasks_gone, ids);
    // Exactly one finishing poll per task.
    assert_eq!(events.polls.iter().filter(|p| p.2).count(), GROUPS as usize);
}

#[test]
fn group_service_starts_again_at_zero_once_the_group_has_ended() {
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let k = group_id(&"k");
    let (h, ev) = (hand.clone(), events.clone());
    let (first, second) = drive(executor.run_until(async move {
        let first = queue.group("k").spawn({
            let hand = h.clone();
            async move { hand.advance(MS) }
        });
        let first_id = first.id().unwrap();
        first.await.unwrap();
        assert_eq!(ev.borrow().groups_gone, [k]);
        let second = queue.group("k").spawn({
            let hand = h.clone();
            async move { hand.advance(2 * MS) }
        });
        let second_id = second.id().unwrap();
        second.await.unwrap();
        (first_id, second_id)
    }));
    let events = events.borrow();
    assert_eq!(events.groups_gone, [k, k]);
    let first_poll = events.polls_of(first)[0].0;
    assert_eq!(first_poll.group, Some(k));
    assert_eq!(first_poll.group_service, nanos(MS));
    let second_push = events.pushes_of(second)[0];
    assert_eq!(second_push.group, Some(k));
    assert_eq!(
        second_push.group_service, 0,
        "the old group's service leaked"
    );
    let second_poll = events.polls_of(second)[0].0;
    assert_eq!(second_poll.group_service, nanos(2 * MS));
}

#[test]
fn group_state_lives_as_long_as_any_of_its_tasks() {
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let k = group_id(&"k");
    let gate = Gate::default();
    let (h, ev, g) = (hand.clone(), events.clone(), gate.clone());
    let sleeper = drive(executor.run_until(async move {
        let sleeper = queue.group("k").spawn({
            let (hand, gate) = (h.clone(), g.clone());
            async move {
                hand.advance(MS);
                gate.wait().await;
                hand.advance(MS);
            }
        });
        let sleeper_id = sleeper.id().unwrap();
        let worker = queue.group("k").spawn({
            let hand = h.clone();
            async move { hand.advance(3 * MS) }
        });
        worker.await.unwrap();
        // The sleeper keeps the group alive.
        assert!(ev.borrow().groups_gone.is_empty());
        g.open();
        sleeper.await.unwrap();
        sleeper_id
    }));
    let events = events.borrow();
    // Woken, the sleeper still sees the whole group's service: 1 + 3 ms.
    let pushes = events.pushes_of(sleeper);
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[1].group_service, nanos(4 * MS));
    assert_eq!(pushes[1].service, nanos(MS));
    assert_eq!(events.groups_gone, [k]);
}

// ---------------------------------------------------------------------------
// 4. User-written schedulers
// ---------------------------------------------------------------------------

/// Highest priority first (priority by group, via a table); FIFO among equals.
struct ByPriority {
    priority_of: HashMap<u64, u32>,
    tasks: Vec<(u32, u64, ReadyTask)>,
    seq: u64,
}

impl Scheduler for ByPriority {
    fn push(&mut self, task: ReadyTask) {
        let priority = task
            .group()
            .and_then(|g| self.priority_of.get(&g).copied())
            .unwrap_or(0);
        self.seq += 1;
        self.tasks.push((priority, self.seq, task));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        let best = (0..self.tasks.len()).max_by_key(|&i| {
            let (priority, seq, _) = &self.tasks[i];
            (*priority, std::cmp::Reverse(*seq))
        })?;
        Some(self.tasks.swap_remove(best).2)
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }
}

#[test]
fn a_user_priority_scheduler_orders_tasks() {
    let (clock, hand) = Clock::manual();
    let scheduler = ByPriority {
        priority_of: [("low", 1), ("mid", 5), ("high", 9)]
            .into_iter()
            .map(|(k, p)| (group_id(&k), p))
            .collect(),
        tasks: Vec::new(),
        seq: 0,
    };
    let (executor, queue) = one_queue(scheduler, clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let specs = [
            ("low", "L1"),
            ("mid", "M1"),
            ("high", "H1"),
            ("low", "L2"),
            ("high", "H2"),
            ("mid", "M2"),
        ];
        let handles: Vec<_> = specs
            .into_iter()
            .map(|(group, label)| queue.group(group).spawn(busy(label, &l, &h, US, 2)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(
        log.take(),
        [
            "H1", "H2", "H1", "H2", "M1", "M2", "M1", "M2", "L1", "L2", "L1", "L2"
        ]
    );
}

/// Last in, first out.
#[derive(Default)]
struct Lifo(Vec<ReadyTask>);

impl Scheduler for Lifo {
    fn push(&mut self, task: ReadyTask) {
        self.0.push(task);
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.0.pop()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

#[test]
fn a_user_lifo_scheduler_orders_tasks() {
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(Lifo::default(), clock);
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    drive(executor.run_until(async move {
        let handles: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|label| queue.spawn(busy(label, &l, &h, US, 2)))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    // The most recently runnable task first: a yielding task is pushed again
    // and runs again at once.
    assert_eq!(log.take(), ["c", "c", "b", "b", "a", "a"]);
}

#[test]
fn polled_reports_each_poll_its_elapsed_time_and_the_last_one_as_finished() {
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let polls = Rc::new(RefCell::new(HashMap::<&'static str, usize>::new()));
    let (h, p) = (hand.clone(), polls.clone());
    let (t, u) = drive(executor.run_until(async move {
        // t: three polls of 1, 2 and 3 ms. u: interleaved, 250 µs, 0, 0.
        let t = queue.spawn({
            let (hand, polls) = (h.clone(), p.clone());
            async move {
                for cost in [MS, 2 * MS, 3 * MS] {
                    *polls.borrow_mut().entry("t").or_default() += 1;
                    hand.advance(cost);
                    if cost < 3 * MS {
                        yield_once().await;
                    }
                }
            }
        });
        let u = queue.spawn({
            let (hand, polls) = (h.clone(), p.clone());
            async move {
                for cost in [250 * US, Duration::ZERO, Duration::ZERO] {
                    *polls.borrow_mut().entry("u").or_default() += 1;
                    hand.advance(cost);
                    if !cost.is_zero() || polls.borrow()["u"] < 3 {
                        yield_once().await;
                    }
                }
            }
        });
        let ids = (t.id().unwrap(), u.id().unwrap());
        t.await.unwrap();
        u.await.unwrap();
        ids
    }));
    let events = events.borrow();
    let polls = polls.borrow();
    let t_polls: Vec<(u64, u64, bool)> = events
        .polls_of(t)
        .iter()
        .map(|(info, elapsed, finished)| (*elapsed, info.service, *finished))
        .collect();
    assert_eq!(polls["t"], 3);
    assert_eq!(
        t_polls,
        [
            (nanos(MS), nanos(MS), false),
            (nanos(2 * MS), nanos(3 * MS), false),
            (nanos(3 * MS), nanos(6 * MS), true),
        ]
    );
    let u_polls: Vec<(u64, bool)> = events
        .polls_of(u)
        .iter()
        .map(|(_, elapsed, finished)| (*elapsed, *finished))
        .collect();
    // u's last iteration does not yield, so it completes in its third poll.
    assert_eq!(polls["u"], 3);
    assert_eq!(u_polls, [(nanos(250 * US), false), (0, false), (0, true)]);
    // One `polled` per poll, nothing else.
    assert_eq!(events.polls.len(), 6);
    assert_eq!(events.tasks_gone, [t, u]);
}

#[test]
fn time_spent_in_the_run_until_future_is_not_charged_to_tasks() {
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let id = drive(executor.run_until(async move {
        // The run_until future itself works for 5 ms, then spawns a task
        // that takes no time at all.
        hand.advance(5 * MS);
        let task = queue.spawn(async {});
        let id = task.id().unwrap();
        task.await.unwrap();
        id
    }));
    let polls = events.borrow().polls_of(id);
    assert_eq!(polls.len(), 1);
    assert_eq!(
        (polls[0].1, polls[0].0.service),
        (0, 0),
        "the run_until future's 5 ms was charged to the task"
    );
}

#[test]
fn a_task_spawned_late_in_a_poll_arrives_when_it_is_spawned() {
    let (clock, hand) = Clock::manual();
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (executor, queue) = one_queue(recorder, clock);
    let child = drive(executor.run_until(async move {
        let parent = queue.spawn({
            let queue = queue.clone();
            async move {
                hand.advance(8 * MS);
                let child = queue.task().deadline(MS).spawn(async {});
                let id = child.id().unwrap();
                child.await.unwrap();
                id
            }
        });
        parent.await.unwrap()
    }));
    let events = events.borrow();
    let parent_arrival = events.pushes[0].arrival;
    let pushed = events.pushes_of(child)[0];
    assert_eq!(pushed.arrival - parent_arrival, nanos(8 * MS), "arrival");
    assert_eq!(
        pushed.deadline,
        Some(parent_arrival + nanos(9 * MS)),
        "deadline"
    );
}

// ---------------------------------------------------------------------------
// 5. Schedulers that drop tasks
// ---------------------------------------------------------------------------

/// FIFO that drops tasks of the group `doomed`: on push, or on pop.
struct Dropper {
    tasks: VecDeque<ReadyTask>,
    doomed: u64,
    on_push: bool,
    tasks_gone: Rc<RefCell<Vec<TaskId>>>,
    groups_gone: Rc<RefCell<Vec<u64>>>,
}

type Shared<T> = Rc<RefCell<Vec<T>>>;

impl Dropper {
    fn new(on_push: bool) -> (Self, Shared<TaskId>, Shared<u64>) {
        let tasks_gone = Shared::default();
        let groups_gone = Shared::default();
        (
            Dropper {
                tasks: VecDeque::new(),
                doomed: group_id(&"doomed"),
                on_push,
                tasks_gone: tasks_gone.clone(),
                groups_gone: groups_gone.clone(),
            },
            tasks_gone,
            groups_gone,
        )
    }
}

impl Scheduler for Dropper {
    fn push(&mut self, task: ReadyTask) {
        if self.on_push && task.group() == Some(self.doomed) {
            drop(task);
        } else {
            self.tasks.push_back(task);
        }
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        loop {
            let task = self.tasks.pop_front()?;
            if task.group() != Some(self.doomed) {
                return Some(task);
            }
            drop(task);
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn task_gone(&mut self, task: TaskId) {
        self.tasks_gone.borrow_mut().push(task);
    }

    fn group_gone(&mut self, group: u64) {
        self.groups_gone.borrow_mut().push(group);
    }
}

/// Sets its flag when dropped: tells whether a future was dropped.
struct DropFlag(Rc<RefCell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.borrow_mut() = true;
    }
}

/// A doomed task (which must never be polled) among normal ones, in one queue
/// whose scheduler drops it on push or on pop.
fn dropped_task_is_cancelled(on_push: bool) {
    let (clock, hand) = Clock::manual();
    let (dropper, tasks_gone, groups_gone) = Dropper::new(on_push);
    let (executor, queue) = one_queue(dropper, clock);
    let log = Log::default();
    let polled = Rc::new(RefCell::new(false));
    let dropped = Rc::new(RefCell::new(false));
    let (l, h, p, d) = (log.clone(), hand.clone(), polled.clone(), dropped.clone());
    let doomed_id = drive(executor.run_until(async move {
        let before = queue.spawn(busy("before", &l, &h, US, 2));
        let doomed = queue.group("doomed").spawn({
            let guard = DropFlag(d.clone());
            let polled = p.clone();
            async move {
                let _guard = guard;
                *polled.borrow_mut() = true;
            }
        });
        let doomed_id = doomed.id().unwrap();
        let after = queue.spawn(busy("after", &l, &h, US, 2));
        assert!(matches!(doomed.await, Err(JoinError::Cancelled)));
        before.await.unwrap();
        after.await.unwrap();
        // The executor keeps working afterwards.
        queue.spawn(busy("later", &l, &h, US, 1)).await.unwrap();
        doomed_id
    }));
    assert!(!*polled.borrow(), "the dropped task was polled");
    assert!(
        *dropped.borrow(),
        "the dropped task's future was not dropped"
    );
    assert_eq!(log.take(), ["before", "after", "before", "after", "later"]);
    // The cancelled task ended like any other: the scheduler was told, and
    // its group freed.
    assert!(tasks_gone.borrow().contains(&doomed_id));
    assert_eq!(*groups_gone.borrow(), [group_id(&"doomed")]);
}

#[test]
fn a_task_dropped_on_push_is_cancelled() {
    dropped_task_is_cancelled(true);
}

#[test]
fn a_task_dropped_on_pop_is_cancelled() {
    dropped_task_is_cancelled(false);
}

/// Regression: at commit 8018c7f, when `Scheduler::pop` dropped the queue's
/// last task and returned `None`, the turn ended without waking the host while
/// the dropped task waited in the reap list: the run future hung.
#[test]
fn a_last_task_dropped_on_pop_does_not_stall_the_executor() {
    let (clock, _hand) = Clock::manual();
    let (dropper, _tasks_gone, _groups_gone) = Dropper::new(false);
    let (executor, queue) = one_queue(dropper, clock);
    let result = try_drive(executor.run_until(async move {
        // The doomed task is the only runnable task when popped.
        let doomed = queue.group("doomed").spawn(async {});
        doomed.await
    }));
    let result = result.expect("the executor stalled: Pending with no wake-up arranged");
    assert!(matches!(result, Err(JoinError::Cancelled)));
}

/// Regression: at commit 8018c7f, a task dropped on push left the run queue's
/// count one too high; when the picker chose that queue, `pop` returned `None`
/// and the whole turn ended without waking the host, though another queue had
/// runnable tasks: the run future hung.
#[test]
fn a_task_dropped_on_push_does_not_stall_other_queues() {
    let (clock, hand) = Clock::manual();
    let (dropper, _tasks_gone, _groups_gone) = Dropper::new(true);
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("dropper", 1, dropper)
        .with_queue("normal", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    let dropping = executor.queue("dropper").unwrap();
    let normal = executor.queue("normal").unwrap();
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    let result = try_drive(executor.run_until(async move {
        let doomed = dropping.group("doomed").spawn(async {});
        let work = normal.spawn(busy("work", &l, &h, US, 3));
        // Await the normal task first: the doomed task's end wakes nobody.
        work.await.unwrap();
        doomed.await
    }));
    let result = result.expect("the executor stalled: Pending with no wake-up arranged");
    assert!(matches!(result, Err(JoinError::Cancelled)));
    assert_eq!(log.take(), ["work", "work", "work"]);
}

/// Regression: at commit 8018c7f, a task spawned outside a turn and dropped by
/// its scheduler on push had its `Runnable` dropped (no current executor):
/// awaiting its handle panicked with async-task's "Task polled after
/// completion" instead of returning `Cancelled`, and its slot and group were
/// never freed.
#[test]
fn a_task_spawned_outside_a_turn_and_dropped_on_push_is_cancelled() {
    let (clock, hand) = Clock::manual();
    let (dropper, tasks_gone, groups_gone) = Dropper::new(true);
    let (executor, queue) = one_queue(dropper, clock);
    // Spawned before the executor runs.
    let doomed = queue.group("doomed").spawn(async {});
    let doomed_id = doomed.id().unwrap();
    let log = Log::default();
    let (l, h) = (log.clone(), hand.clone());
    let result = drive(executor.run_until(async move {
        let result = doomed.await;
        queue.spawn(busy("after", &l, &h, US, 1)).await.unwrap();
        result
    }));
    assert!(matches!(result, Err(JoinError::Cancelled)));
    assert_eq!(log.take(), ["after"]);
    assert!(tasks_gone.borrow().contains(&doomed_id));
    assert_eq!(*groups_gone.borrow(), [group_id(&"doomed")]);
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// The executor asks a scheduler once which reports it wants and makes
/// only those calls: `polled` after each poll, `task_gone` and
/// `group_gone` as tasks and groups end. The default is all of them.
#[test]
fn a_scheduler_is_told_only_the_reports_it_asks_for() {
    let polled_only = Reports::NONE.with_polled(true);
    let gone_only = Reports::ALL.with_polled(false);
    assert_eq!(gone_only, Reports::NONE.with_gone(true));
    for (reports, told_polls, told_ends) in [
        (Reports::ALL, true, true),
        (polled_only, true, false),
        (gone_only, false, true),
        (Reports::NONE, false, false),
    ] {
        let (recorder, events) = Recorder::asking(RunnableFifo::new(), reports);
        let (clock, hand) = Clock::manual();
        let (executor, queue) = one_queue(recorder, clock);
        let log = Log::default();
        let (l, h) = (log.clone(), hand.clone());
        drive(executor.run_until(async move {
            let a = queue.spawn(busy("a", &l, &h, US, 2));
            let b = queue.group("g").spawn(busy("b", &l, &h, US, 2));
            a.await.unwrap();
            b.await.unwrap();
        }));
        // The tasks ran whatever was asked: each polled three times (it
        // yields after each of its two steps), pushed at its spawn and at
        // each yield.
        assert_eq!(count(&log.take(), "a"), 2, "{reports:?}");
        let events = events.borrow();
        assert_eq!(events.pushes.len(), 6, "{reports:?}");
        let expected_polls = if told_polls { 6 } else { 0 };
        assert_eq!(events.polls.len(), expected_polls, "{reports:?}");
        let expected_ends = if told_ends { 2 } else { 0 };
        assert_eq!(events.tasks_gone.len(), expected_ends, "{reports:?}");
        let expected_groups: &[u64] = if told_ends { &[group_id(&"g")] } else { &[] };
        assert_eq!(events.groups_gone, expected_groups, "{reports:?}");
    }
}

/// The built-in schedulers read what they need from each task and ask for
/// no report; a scheduler of the user's gets every report by default.
#[test]
fn the_built_in_schedulers_ask_for_no_reports() {
    assert_eq!(RunnableFifo::new().reports(), Reports::NONE);
    assert_eq!(ArrivalFifo::new().reports(), Reports::NONE);
    assert_eq!(LAS::new().reports(), Reports::NONE);
    assert_eq!(GroupFair::new().reports(), Reports::NONE);
    assert_eq!(Edf::new().reports(), Reports::NONE);
    assert_eq!(Lifo::default().reports(), Reports::ALL);
}

/// A task spawned by a task arrives at the start of the spawning poll (the
/// executor's last clock reading), as a wake is stamped; one with a
/// deadline at the moment of the spawn, which its deadline counts from.
#[test]
fn a_spawned_task_arrives_at_the_spawning_poll_unless_it_has_a_deadline() {
    let (recorder, events) = Recorder::new(RunnableFifo::new());
    let (clock, hand) = Clock::manual();
    let (executor, queue) = one_queue(recorder, clock);
    let start = drive(executor.run_until({
        let queue = queue.clone();
        let hand = hand.clone();
        async move {
            let parent = queue.spawn({
                let queue = queue.clone();
                async move {
                    hand.advance(3 * MS);
                    let plain = queue.spawn(async {});
                    let timed = queue.task().deadline(10 * MS).spawn(async {});
                    (plain.id().unwrap(), timed.id().unwrap(), plain, timed)
                }
            });
            let (plain, timed, plain_handle, timed_handle) = parent.await.unwrap();
            plain_handle.await.unwrap();
            timed_handle.await.unwrap();
            (plain, timed)
        }
    }));
    let (plain, timed) = start;
    let events = events.borrow();
    let parent = events.pushes[0];
    let plain = events.pushes_of(plain)[0];
    let timed = events.pushes_of(timed)[0];
    // The parent's poll started where the parent arrived (nothing ran
    // before it); it then took 3 ms before spawning.
    assert_eq!(plain.arrival, parent.arrival);
    assert_eq!(timed.arrival, parent.arrival + nanos(3 * MS));
    assert_eq!(timed.deadline, Some(timed.arrival + nanos(10 * MS)));
}
