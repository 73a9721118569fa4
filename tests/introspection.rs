//! Seeing inside a running executor: the task hooks of the builder and the
//! live task dump (`Executor::tasks`, `Spawner::tasks`). Time is a manual
//! clock, so that ages, waits and CPU times are exact.

mod common;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use clockworker::{
    Clock, DumpError, ExecutorBuilder, JoinError, ManualClock, TaskDetails, TaskState, yield_now,
};
use common::{drive, panic_message};
use futures::channel::oneshot;

const MS: Duration = Duration::from_millis(1);

/// What a hook saw: the event, the task's id, name, queue, group and line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    event: String,
    id: u64,
    name: Option<String>,
    queue: &'static str,
    group: Option<u64>,
    line: u32,
}

fn seen(event: &str, task: &TaskDetails<'_, &'static str>) -> Seen {
    Seen {
        event: event.to_owned(),
        id: task.id.as_u64(),
        name: task.name.map(str::to_owned),
        queue: task.queue,
        group: task.group,
        line: task.location.line(),
    }
}

/// Each event `log` holds, with the task's queue.
fn events_by_queue(log: &RefCell<Vec<Seen>>) -> Vec<(String, &'static str)> {
    log.borrow()
        .iter()
        .map(|s| (s.event.clone(), s.queue))
        .collect()
}

/// Where a hook finds the executor it was given to, once it is built.
type ExecutorSlot = Rc<RefCell<Option<Rc<clockworker::Executor<&'static str>>>>>;

/// Task `id`'s entry in a dump taken from a hook, through `slot`: `None`
/// before the executor is in the slot.
fn own_entry(
    slot: &ExecutorSlot,
    id: clockworker::TaskId,
) -> Option<Option<clockworker::TaskSnapshot<&'static str>>> {
    let slot = slot.borrow();
    let dump = slot.as_ref()?.tasks().unwrap();
    Some(dump.tasks().iter().find(|t| t.id == id).cloned())
}

/// A builder with two queues whose four task hooks record into `log`.
fn hooked(log: &Rc<RefCell<Vec<Seen>>>) -> ExecutorBuilder<&'static str> {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue("bg", 1)
        .with_panic_on_task_panic(false)
        .on_task_spawn(move |task| a.borrow_mut().push(seen("spawn", task)))
        .on_before_task_poll(move |task| b.borrow_mut().push(seen("before", task)))
        .on_after_task_poll(move |task| c.borrow_mut().push(seen("after", task)))
        .on_task_terminate(move |task, ending| {
            d.borrow_mut().push(seen(&format!("end {ending}"), task));
        })
}

#[test]
fn hooks_see_every_spawn_poll_and_ending_with_the_tasks_details() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let executor = hooked(&log).build().unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();

    let line = Location::caller().line() + 1;
    let named = fg.task().name("twice").group("tenant").spawn(async {
        yield_now().await;
    });
    let panics = bg.spawn(async { panic!("boom") });
    let (_never_sent, never) = oneshot::channel::<()>();
    let aborted = bg.spawn(never);
    drive(executor.run_until(async {
        named.await.unwrap();
        assert!(matches!(panics.await, Err(JoinError::Panic(_))));
        aborted.abort();
        assert!(matches!(aborted.await, Err(JoinError::Cancelled)));
    }));

    let log = log.borrow();
    let of = |id: u64| -> Vec<&str> {
        log.iter()
            .filter(|s| s.id == id)
            .map(|s| s.event.as_str())
            .collect()
    };
    let ids: Vec<u64> = log
        .iter()
        .filter(|s| s.event == "spawn")
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 3, "{log:#?}");
    // Polled twice (it yields once), then it completes.
    assert_eq!(
        of(ids[0]),
        [
            "spawn",
            "before",
            "after",
            "before",
            "after",
            "end completed"
        ]
    );
    assert_eq!(of(ids[1]), ["spawn", "before", "after", "end panicked"]);
    // Aborted while still in its queue (the light queue had not reached
    // it): the run that drops its future is no poll.
    assert_eq!(of(ids[2]), ["spawn", "end cancelled"]);

    let first = log.iter().find(|s| s.id == ids[0]).unwrap();
    assert_eq!(first.name.as_deref(), Some("twice"));
    assert_eq!(first.queue, "fg");
    assert_eq!(first.group, Some(clockworker::group_id("tenant")));
    assert_eq!(first.line, line);
    let second = log.iter().find(|s| s.id == ids[1]).unwrap();
    assert_eq!(
        (second.queue, second.name.as_deref(), second.group),
        ("bg", None, None)
    );
    // Every event of a task carries the same details.
    for id in ids {
        let details: Vec<_> = log
            .iter()
            .filter(|s| s.id == id)
            .map(|s| (&s.name, s.queue, s.group, s.line))
            .collect();
        assert!(details.windows(2).all(|w| w[0] == w[1]), "{details:?}");
    }
}

#[test]
fn hooks_see_tasks_spawned_from_other_threads_and_those_cancelled_by_the_drop() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let executor = hooked(&log).build().unwrap();
    let spawner = executor.spawner();
    let remote = std::thread::spawn(move || spawner.spawn("bg", async { 7 }).unwrap())
        .join()
        .unwrap();
    assert_eq!(drive(executor.run_until(remote)).unwrap(), 7);
    let (_never_sent, never) = oneshot::channel::<()>();
    let idle = executor.queue("fg").unwrap().spawn(never);
    drive(executor.run_until(yield_now()));
    drop(executor);
    assert!(matches!(drive(idle), Err(JoinError::Cancelled)));

    let events = events_by_queue(&log);
    let expected = [
        ("spawn", "bg"),
        ("before", "bg"),
        ("after", "bg"),
        ("end completed", "bg"),
        ("spawn", "fg"),
        ("before", "fg"),
        ("after", "fg"),
        ("end cancelled", "fg"),
    ];
    assert_eq!(
        events,
        expected.map(|(event, queue)| (event.to_owned(), queue))
    );
}

#[test]
fn a_panicking_hook_propagates_after_the_poll_and_loses_no_task() {
    let executor = ExecutorBuilder::new()
        .with_queue("q", 1)
        .on_after_task_poll(|task| {
            if task.name == Some("trips") {
                panic!("hook bug");
            }
        })
        .build()
        .unwrap();
    let queue = executor.queue("q").unwrap();
    let trips = queue.task().name("trips").spawn(async { 1 });
    let other = queue.spawn(async { 2 });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drive(executor.run_until(std::future::pending::<()>()))
    }));
    assert_eq!(panic_message(caught.unwrap_err().as_ref()), "hook bug");
    // The task's poll was fully accounted: it completed, and the other
    // task runs on the next turn.
    assert_eq!(drive(executor.run_until(trips)).unwrap(), 1);
    assert_eq!(drive(executor.run_until(other)).unwrap(), 2);
    let stats = executor.stats();
    assert_eq!((stats.completed, stats.live_tasks), (2, 0));
}

/// An executor with two queues on a manual clock.
fn on_manual_clock() -> (Rc<clockworker::Executor<&'static str>>, ManualClock) {
    let (clock, hand) = Clock::manual();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue("bg", 1)
        .with_clock(clock)
        .build()
        .unwrap();
    (executor, hand)
}

/// Completes once the executor has no runnable task left (a turn polls at
/// most `max_polls_per_yield` tasks).
async fn all_idle(executor: &clockworker::Executor<&'static str>) {
    // Yields first: wakes sent from outside the executor are taken in at
    // its next turn.
    yield_now().await;
    while executor.stats().runnable > 0 {
        yield_now().await;
    }
}

#[test]
fn the_dump_finds_the_one_stuck_task_among_ten_thousand_healthy_ones() {
    let (executor, hand) = on_manual_clock();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    // 10,000 healthy tasks, each woken once per round by a channel.
    let mut ticks = Vec::new();
    for i in 0..10_000 {
        let (tick, mut ticked) = futures::channel::mpsc::unbounded::<()>();
        ticks.push(tick);
        let queue = if i % 2 == 0 { &fg } else { &bg };
        queue.spawn(async move {
            use futures::StreamExt;
            while ticked.next().await.is_some() {}
        });
    }
    // One that waits on a channel nobody will ever send to.
    let (_never_sent, never) = oneshot::channel::<()>();
    let stuck_line = Location::caller().line() + 1;
    let stuck = fg.task().name("stuck").spawn(never);
    for _round in 0..5 {
        drive(executor.run_until(all_idle(&executor)));
        hand.advance(100 * MS);
        for tick in &ticks {
            tick.unbounded_send(()).unwrap();
        }
    }
    drive(executor.run_until(all_idle(&executor)));
    hand.advance(10 * MS);

    let dump = executor.tasks().unwrap();
    assert_eq!(dump.len(), 10_001);
    let waiting = dump.waiting_for(200 * MS);
    assert_eq!(waiting.len(), 1, "{:#?}", &waiting[..waiting.len().min(3)]);
    let found = waiting[0];
    assert_eq!(found.name.as_deref(), Some("stuck"));
    assert_eq!(found.queue, "fg");
    assert_eq!(found.location.line(), stuck_line);
    assert_eq!(found.state, TaskState::Waiting);
    assert_eq!(found.polls, 1);
    assert_eq!(found.in_state, 510 * MS);
    assert_eq!(found.age, 510 * MS);
    // The healthy ones were polled every round, 10 ms ago.
    let healthy = dump.tasks().iter().filter(|t| t.name.is_none());
    let odd: Vec<_> = healthy
        .clone()
        .filter(|t| t.polls != 6 || t.in_state != 10 * MS)
        .take(3)
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
    assert_eq!(healthy.count(), 10_000);
    // The table names it too.
    let table = dump.to_string();
    let row = table
        .lines()
        .find(|line| line.contains("\"stuck\""))
        .unwrap();
    assert!(row.contains("waiting") && row.contains("510.0 ms"), "{row}");
    assert_eq!(table.lines().count(), 10_002);
    drop(stuck);
}

#[test]
fn the_dump_tells_running_runnable_and_waiting_apart_with_cpu_time_and_age() {
    let (executor, hand) = on_manual_clock();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let executor2 = Rc::clone(&executor);
    let h = hand.clone();
    let (_never_sent, never) = oneshot::channel::<()>();
    let waiting = bg.task().name("waiting").spawn(never);
    hand.advance(3 * MS);
    let asker = fg.task().name("asker").spawn(async move {
        // Two polls' worth of CPU: 2 ms, then 1 ms so far in this one.
        h.advance(2 * MS);
        yield_now().await;
        h.advance(MS);
        // Spawned, never polled before the dump: runnable.
        let runnable = bg.task().name("runnable").spawn(async {});
        (executor2.tasks().unwrap(), runnable)
    });
    let (dump, runnable) = drive(executor.run_until(asker)).unwrap();
    let by_name = |name: &str| {
        dump.tasks()
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap()
            .clone()
    };
    let asker = by_name("asker");
    assert_eq!(asker.state, TaskState::Running);
    assert_eq!(asker.polls, 2);
    // The poll in progress is not charged yet.
    assert_eq!(asker.cpu_time, 2 * MS);
    assert_eq!(asker.in_state, MS);
    assert_eq!(asker.age, 3 * MS);
    let runnable_task = by_name("runnable");
    assert_eq!(runnable_task.state, TaskState::Runnable);
    assert_eq!(runnable_task.polls, 0);
    let waiting_task = by_name("waiting");
    assert_eq!(waiting_task.state, TaskState::Waiting);
    assert_eq!(waiting_task.polls, 1);
    assert_eq!(waiting_task.age, 6 * MS);
    assert!(dump.tasks().windows(2).all(|w| w[0].id < w[1].id));
    drive(executor.run_until(runnable)).unwrap();
    drop(waiting);
}

#[test]
fn a_dump_from_another_thread_is_answered_while_the_executor_runs() {
    let (executor, _hand) = on_manual_clock();
    let spawner = executor.spawner();
    executor
        .queue("bg")
        .unwrap()
        .task()
        .name("idle")
        .spawn(std::future::pending::<()>());
    let dump = drive(executor.run_until(async {
        let asker = std::thread::spawn(move || spawner.tasks(Duration::from_secs(60)));
        while !asker.is_finished() {
            yield_now().await;
        }
        asker.join().unwrap()
    }))
    .unwrap();
    // The `run_until` future is no task: one task, waiting.
    assert_eq!(dump.len(), 1);
    assert_eq!(dump.tasks()[0].name.as_deref(), Some("idle"));
    assert_eq!(dump.tasks()[0].queue, "bg");
    assert_eq!(dump.tasks()[0].state, TaskState::Waiting);
}

#[test]
fn a_dump_from_a_task_through_the_spawner_is_answered_at_once() {
    let (executor, _hand) = on_manual_clock();
    let spawner = executor.spawner();
    let asker = executor
        .queue("fg")
        .unwrap()
        .spawn(async move { spawner.tasks(Duration::from_secs(60)) });
    let dump = drive(executor.run_until(asker)).unwrap().unwrap();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump.tasks()[0].state, TaskState::Running);
}

#[test]
fn a_dump_of_a_stalled_or_dropped_executor_is_an_error() {
    let (executor, _hand) = on_manual_clock();
    let spawner = executor.spawner();
    // Nobody polls the executor: no answer within the timeout.
    let asked = std::thread::spawn({
        let spawner = spawner.clone();
        move || spawner.tasks(10 * MS)
    });
    assert_eq!(asked.join().unwrap(), Err(DumpError::Stalled(10 * MS)));
    // The executor is dropped while a request waits: it is gone.
    let waiting = std::thread::spawn({
        let spawner = spawner.clone();
        move || spawner.tasks(Duration::from_secs(60))
    });
    // Whether its request is queued before the drop or refused after it,
    // the answer is the same.
    std::thread::sleep(MS);
    drop(executor);
    assert_eq!(waiting.join().unwrap(), Err(DumpError::ExecutorGone));
    assert_eq!(spawner.tasks(MS), Err(DumpError::ExecutorGone));
    assert!(
        DumpError::Stalled(MS)
            .to_string()
            .contains("did not answer")
    );
}

#[test]
fn a_task_aborted_in_its_queue_is_announced_ended_but_never_polled() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let executor = hooked(&log).build().unwrap();
    let queued = executor.queue("fg").unwrap().spawn(async { 1 });
    queued.abort();
    assert!(matches!(
        drive(executor.run_until(queued)),
        Err(JoinError::Cancelled)
    ));
    let events: Vec<String> = log.borrow().iter().map(|s| s.event.clone()).collect();
    assert_eq!(events, ["spawn", "end cancelled"]);
    assert_eq!(executor.tasks().unwrap().len(), 0);
}

#[test]
fn a_dump_from_a_terminate_hook_sees_the_ending_task_no_longer_running() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let executor_slot = ExecutorSlot::default();
    let (slot, record) = (Rc::clone(&executor_slot), Rc::clone(&seen));
    let executor = ExecutorBuilder::new()
        .with_queue("q", 1)
        .on_task_terminate(move |task, _| {
            if let Some(me) = own_entry(&slot, task.id) {
                record.borrow_mut().push(me.map(|t| (t.state, t.polls)));
            }
        })
        .build()
        .unwrap();
    *executor_slot.borrow_mut() = Some(Rc::clone(&executor));
    let task = executor.queue("q").unwrap().spawn(async {
        yield_now().await;
    });
    drive(executor.run_until(task)).unwrap();
    // Polled twice; as it ends, the dump shows it waiting, not running,
    // with each poll counted once.
    assert_eq!(*seen.borrow(), [Some((TaskState::Waiting, 2))]);
    executor_slot.borrow_mut().take();
}

#[test]
fn a_remote_spawn_still_in_the_inbox_at_the_drop_is_announced_and_ended() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let executor = hooked(&log).build().unwrap();
    let spawner = executor.spawner();
    let pending = std::thread::spawn(move || spawner.spawn("bg", async { 1 }).unwrap())
        .join()
        .unwrap();
    // Never run: the executor is dropped with the spawn in its inbox.
    drop(executor);
    assert!(matches!(drive(pending), Err(JoinError::Cancelled)));
    let events = events_by_queue(&log);
    let expected = [("spawn", "bg"), ("end cancelled", "bg")];
    assert_eq!(
        events,
        expected.map(|(event, queue)| (event.to_owned(), queue))
    );
}

#[test]
fn a_dump_from_the_spawn_hook_sees_the_new_task_runnable_since_its_spawn() {
    let (clock, hand) = Clock::manual();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let executor_slot = ExecutorSlot::default();
    let (slot, record) = (Rc::clone(&executor_slot), Rc::clone(&seen));
    let executor = ExecutorBuilder::new()
        .with_queue("q", 1)
        .with_clock(clock)
        .on_task_spawn(move |task| {
            if let Some(me) = own_entry(&slot, task.id) {
                record.borrow_mut().push(me.map(|t| (t.state, t.in_state)));
            }
        })
        .build()
        .unwrap();
    *executor_slot.borrow_mut() = Some(Rc::clone(&executor));
    hand.advance(5 * MS);
    let task = executor.queue("q").unwrap().spawn(async {});
    assert_eq!(
        *seen.borrow(),
        [Some((TaskState::Runnable, Duration::ZERO))]
    );
    drive(executor.run_until(task)).unwrap();
    executor_slot.borrow_mut().take();
}

#[test]
fn a_yielding_task_alone_waits_nothing_for_its_next_poll() {
    // Its yield reaches the executor as its poll ends: its next poll, at
    // once, did not wait, however long the poll before it took.
    let (executor, hand) = on_manual_clock();
    let h = hand.clone();
    let yielder = executor.queue("fg").unwrap().spawn(async move {
        for _ in 0..3 {
            h.advance(MS);
            yield_now().await;
        }
    });
    drive(executor.run_until(yielder)).unwrap();
    let delay = executor.queue_stats("fg").unwrap().queue_delay;
    assert_eq!(delay.count(), 4);
    assert_eq!(delay.max(), Some(Duration::ZERO), "{delay:?}");
}

#[test]
fn the_time_hooks_take_is_charged_to_no_poll() {
    let (clock, hand) = Clock::manual();
    let (before, after, end) = (hand.clone(), hand.clone(), hand.clone());
    let executor = ExecutorBuilder::new()
        .with_queue("q", 1)
        .with_clock(clock)
        .on_before_task_poll(move |_| before.advance(MS))
        .on_after_task_poll(move |_| after.advance(2 * MS))
        .on_task_terminate(move |_, _| end.advance(3 * MS))
        .build()
        .unwrap();
    let queue = executor.queue("q").unwrap();
    let first = queue.spawn(yield_now());
    let second = queue.spawn(async {});
    drive(executor.run_until(async {
        first.await.unwrap();
        second.await.unwrap();
    }));
    // Three polls that took no time, whatever the hooks around them took.
    let stats = executor.queue_stats("q").unwrap();
    assert_eq!(stats.polls, 3);
    assert_eq!(stats.cpu_time, Duration::ZERO);
    assert_eq!(stats.poll_duration.max(), Some(Duration::ZERO));
}
