//! Stress: many tasks, many wakes from other threads, aborts and executor
//! drops racing with those wakes. Nothing may be lost, duplicated or leaked:
//! every test counts the drops of every future (a token each future owns) and
//! adds up the outputs.
//!
//! Sized for a debug build on two cores (each test 2 s or less, the suite
//! about 2.5 s). `CLOCKWORKER_STRESS_FULL=1` runs larger counts where they
//! differ (each test then takes up to about a second more); each test's
//! comment says which. No assertion depends on timing: a race that
//! goes one way or the other only changes which outcome each task reports,
//! and both are checked against what the task itself recorded.

mod common;
use common::{DropLedger, LedgerToken, live_tasks, yield_n, yield_once};

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use clockworker::{
    ArrivalFifo, Edf, Executor, ExecutorBuilder, GroupFair, JoinError, JoinHandle, LAS,
    RunnableFifo,
};
use futures::FutureExt;

/// `full` with `CLOCKWORKER_STRESS_FULL=1`, else `quick`.
fn count(full: usize, quick: usize) -> usize {
    if std::env::var("CLOCKWORKER_STRESS_FULL").is_ok_and(|v| v == "1") {
        full
    } else {
        quick
    }
}

/// Counts the drops of every [`DropCounter`] made from it: give each future
/// one to own, and the count says how many futures were dropped.
#[derive(Clone, Default)]
struct DropCount(Arc<AtomicUsize>);

impl DropCount {
    /// A new token, counted when it is dropped.
    fn token(&self) -> DropCounter {
        DropCounter(Arc::clone(&self.0))
    }

    /// Drops so far.
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Adds one to its [`DropCount`] when dropped. `Send + Sync`.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `test` on a new thread; fails instead of hanging if it is still
/// running after a generous hang guard. Only a hang guard: no test comes
/// anywhere near it.
fn with_hang_guard(test: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("hung: still running after the 120 s hang guard"),
    }
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Five queues, one per built-in scheduler, of different weights.
fn five_queue_executor() -> Rc<Executor<usize>> {
    ExecutorBuilder::new()
        .with_queue_scheduler(0, 4, RunnableFifo::new())
        .with_queue_scheduler(1, 1, ArrivalFifo::new())
        .with_queue_scheduler(2, 2, LAS::new())
        .with_queue_scheduler(3, 3, GroupFair::new())
        .with_queue_scheduler(4, 1, Edf::new())
        .build()
        .unwrap()
}

/// Counts `Ok` and `Cancelled` outcomes, checking each against what the task
/// recorded: `Ok(i)` only for a task that returned `i`, `Cancelled` only for
/// one that did not complete.
#[derive(Debug, Default)]
struct Outcomes {
    ok: usize,
    cancelled: usize,
}

impl Outcomes {
    fn check(&mut self, index: usize, result: Result<usize, JoinError>, completed: &[AtomicBool]) {
        let done = completed[index].load(Ordering::SeqCst);
        match result {
            Ok(value) => {
                assert_eq!(value, index, "a handle got another task's output");
                assert!(done, "task {index}: Ok, but its future never completed");
                self.ok += 1;
            }
            Err(JoinError::Cancelled) => {
                assert!(
                    !done,
                    "task {index}: completed, but its handle says Cancelled"
                );
                self.cancelled += 1;
            }
            Err(other) => panic!("task {index}: {other:?}"),
        }
    }
}

fn flags(n: usize) -> Arc<Vec<AtomicBool>> {
    Arc::new((0..n).map(|_| AtomicBool::new(false)).collect())
}

// ---------------------------------------------------------------- volume

/// 1,000,000 tasks (the full count in both modes: about 2 s in debug),
/// spawned in batches of 10,000 into five queues (one per built-in
/// scheduler, tasks of `GroupFair` in 16 groups, of `Edf` with deadlines),
/// each yielding 0–2 times. Every 7th handle is dropped (the task is
/// detached) and the rest awaited, under a Tokio current-thread runtime.
///
/// Proves: every task ran to completion exactly once (the sum of what the
/// tasks themselves recorded is exact, and so is the sum of the awaited
/// outputs), every future was dropped (drop count == spawned), and the
/// executor's task index is empty at the end (nothing leaked in it).
#[test]
fn a_million_tasks_spawned_and_completed() {
    const BATCH: usize = 10_000;
    let total = 1_000_000;
    let executor = five_queue_executor();
    let queues: Vec<_> = (0..5).map(|k| executor.queue(k).unwrap()).collect();
    let drops = DropCount::default();
    let ran_sum = Rc::new(Cell::new(0u64));
    let awaited_sum = tokio_current_thread().block_on(executor.run_until({
        let (drops, ran_sum) = (drops.clone(), Rc::clone(&ran_sum));
        async move {
            let mut awaited_sum = 0u64;
            for batch in 0..total / BATCH {
                let mut handles = Vec::with_capacity(BATCH);
                for i in batch * BATCH..(batch + 1) * BATCH {
                    let token = drops.token();
                    let ran_sum = Rc::clone(&ran_sum);
                    let task = async move {
                        let _token = token;
                        yield_n(i % 3).await;
                        ran_sum.set(ran_sum.get() + i as u64);
                        i as u64
                    };
                    let queue = &queues[i % 5];
                    let handle = match i % 5 {
                        3 => queue.group(i % 16).spawn(task),
                        4 => queue
                            .task()
                            .deadline(Duration::from_micros((i % 100) as u64))
                            .spawn(task),
                        _ => queue.spawn(task),
                    };
                    if i % 7 == 0 {
                        drop(handle);
                    } else {
                        handles.push((i, handle));
                    }
                }
                for (i, handle) in handles {
                    let value = handle.await.unwrap();
                    assert_eq!(value, i as u64);
                    awaited_sum += value;
                }
            }
            // Detached tasks of the last batch may still be running.
            while drops.get() < total {
                yield_once().await;
            }
            awaited_sum
        }
    }));
    let n = total as u64;
    assert_eq!(ran_sum.get(), n * (n - 1) / 2, "some task did not run once");
    let detached: u64 = (0..n).filter(|i| i % 7 == 0).sum();
    assert_eq!(awaited_sum, n * (n - 1) / 2 - detached);
    assert_eq!(drops.get(), total, "futures dropped != spawned");
    assert_eq!(live_tasks(&executor), 0, "the task index kept ended tasks");
}

// ---------------------------------------------------------------- remote wakes

/// 100,000 tasks (the full count in both modes: about a second in debug)
/// park on a future that hands its waker, with the task's index, to one of
/// four channels; four OS threads take the wakers and wake them, a third
/// with `wake`, a third with `wake_by_ref`, a third twice (`wake_by_ref`
/// then `wake`). The executor runs under a Tokio current-thread runtime and
/// polls the first tasks while the threads already wake them; the wakes
/// outnumber the inbox's preallocated capacity many times over.
///
/// Proves: no wake is lost (every task completes), none is duplicated into
/// an extra poll (every task is polled exactly twice: park, then complete,
/// also when woken twice or while its first poll is still running), every
/// output arrives once (the sum), and every future is dropped exactly once.
#[test]
fn remote_wakes_from_four_threads() {
    with_hang_guard(|| {
        const THREADS: usize = 4;
        let n = 100_000;
        let executor = five_queue_executor();
        let queues: Vec<_> = (0..5).map(|k| executor.queue(k).unwrap()).collect();
        let ledger = DropLedger::new(n);
        let woken = flags(n);
        let polls: Rc<Vec<Cell<u32>>> = Rc::new((0..n).map(|_| Cell::new(0)).collect());
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
            .map(|_| mpsc::channel::<(usize, Waker)>())
            .unzip();
        let wakes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                let (woken, wakes) = (Arc::clone(&woken), Arc::clone(&wakes));
                thread::spawn(move || {
                    // Ends when every task (each holds a sender) has ended.
                    for (index, waker) in rx {
                        woken[index].store(true, Ordering::SeqCst);
                        match index % 3 {
                            0 => waker.wake(),
                            1 => waker.wake_by_ref(),
                            _ => {
                                waker.wake_by_ref();
                                waker.wake();
                            }
                        }
                        wakes.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let senders = Rc::new(senders);
        let sum = tokio_current_thread().block_on(executor.run_until({
            let (ledger, woken, polls) = (ledger.clone(), Arc::clone(&woken), Rc::clone(&polls));
            async move {
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        let token = ledger.token(i);
                        let (woken, polls, senders) =
                            (Arc::clone(&woken), Rc::clone(&polls), Rc::clone(&senders));
                        let mut sent = false;
                        queues[i % 5].spawn(std::future::poll_fn(move |cx| {
                            let _owned = (&token, &senders);
                            polls[i].set(polls[i].get() + 1);
                            if woken[i].load(Ordering::SeqCst) {
                                return Poll::Ready(i);
                            }
                            if !sent {
                                sent = true;
                                senders[i % THREADS].send((i, cx.waker().clone())).unwrap();
                            }
                            Poll::Pending
                        }))
                    })
                    .collect();
                drop(senders);
                let mut sum = 0usize;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                sum
            }
        }));
        for thread in threads {
            thread.join().expect("a waking thread panicked");
        }
        assert_eq!(sum, n * (n - 1) / 2);
        assert_eq!(wakes.load(Ordering::SeqCst), n);
        let wrong: Vec<_> = (0..n)
            .filter(|&i| polls[i].get() != 2)
            .map(|i| (i, polls[i].get()))
            .take(10)
            .collect();
        assert!(
            wrong.is_empty(),
            "tasks not polled exactly twice: {wrong:?}"
        );
        assert_eq!(ledger.not_once(), vec![]);
        assert_eq!(live_tasks(&executor), 0);
    });
}

// ---------------------------------------------------------------- aborts

/// 20,000 tasks per round (full: 100,000), 5 rounds, that complete on their
/// first, second or third poll without waiting for anything (they yield
/// 0–2 times). All their `JoinHandle`s go to another thread, which, once
/// half of the tasks have completed, aborts them in reverse order while the
/// executor runs them in order, so the two meet: near the meeting point
/// `abort` lands on tasks that are queued, being polled, or just finished.
/// Every tenth handle is dropped on that thread instead (the task is
/// detached from another thread while it runs). The handles come back and
/// are awaited.
///
/// Proves: each handle reports exactly one outcome and the right one (`Ok`
/// with the task's own output only if its future returned; `Cancelled` only
/// if it did not), and each future is dropped exactly once, whichever side
/// won, detached tasks included. How many of each outcome is up to the race
/// and is not asserted.
#[test]
fn abort_racing_completion() {
    with_hang_guard(|| {
        let n = count(100_000, 20_000);
        let mut totals = Outcomes::default();
        for _round in 0..5 {
            let executor = five_queue_executor();
            let queues: Vec<_> = (0..5).map(|k| executor.queue(k).unwrap()).collect();
            let ledger = DropLedger::new(n);
            let completed = flags(n);
            let done = Arc::new(AtomicUsize::new(0));
            let (to_aborter, aborter_rx) = mpsc::channel::<Vec<Option<JoinHandle<usize>>>>();
            let (back_tx, back_rx) = futures::channel::oneshot::channel();
            let aborter = thread::spawn({
                let done = Arc::clone(&done);
                move || {
                    let mut handles = aborter_rx.recv().unwrap();
                    // Alone, the aborter would be done long before the
                    // executor got far: it starts once the executor is
                    // halfway, so that the two meet in the second half.
                    while done.load(Ordering::SeqCst) < n / 2 {
                        thread::yield_now();
                    }
                    for (i, handle) in handles.iter_mut().enumerate().rev() {
                        if i % 10 == 9 {
                            // Detached from this thread instead.
                            drop(handle.take());
                        } else if let Some(handle) = handle {
                            handle.abort();
                        }
                    }
                    back_tx.send(handles).unwrap();
                }
            });
            let outcomes = futures::executor::block_on(executor.run_until({
                let (ledger, completed) = (ledger.clone(), Arc::clone(&completed));
                async move {
                    let handles = (0..n)
                        .map(|i| {
                            let token = ledger.token(i);
                            let (completed, done) = (Arc::clone(&completed), Arc::clone(&done));
                            Some(queues[i % 5].spawn(async move {
                                let _token = token;
                                yield_n(i % 3).await;
                                completed[i].store(true, Ordering::SeqCst);
                                done.fetch_add(1, Ordering::SeqCst);
                                i
                            }))
                        })
                        .collect();
                    to_aborter.send(handles).unwrap();
                    let handles = back_rx.await.unwrap();
                    let mut outcomes = Outcomes::default();
                    for (i, handle) in handles.into_iter().enumerate() {
                        if let Some(handle) = handle {
                            outcomes.check(i, handle.await, &completed);
                        }
                    }
                    // The detached tasks that were still running.
                    while ledger.total() < n {
                        yield_once().await;
                    }
                    outcomes
                }
            }));
            aborter.join().unwrap();
            assert_eq!(outcomes.ok + outcomes.cancelled, n - n / 10);
            assert_eq!(ledger.not_once(), vec![]);
            assert_eq!(live_tasks(&executor), 0);
            totals.ok += outcomes.ok;
            totals.cancelled += outcomes.cancelled;
        }
        eprintln!("abort_racing_completion: {totals:?}");
    });
}

/// A gate a task parks on until another thread opens it. The waker and the
/// flag are behind one lock, so an open can never slip between the task's
/// check and its registration.
#[derive(Default)]
struct Gate(Mutex<(bool, Option<Waker>)>);

impl Gate {
    /// Completes once the gate is open.
    fn wait(self: Arc<Self>) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            let mut state = self.0.lock().unwrap();
            if state.0 {
                return Poll::Ready(());
            }
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Opens the gate and wakes the task parked on it, if any.
    fn open(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// 20,000 tasks per round (full: 100,000), 5 rounds, each parked on a gate.
/// One thread opens the gates in order (a remote wake each); once it is
/// halfway, another aborts the tasks in reverse order, while the executor
/// runs: near the meeting point a task is woken and aborted at once, in
/// either order, from two threads.
///
/// Proves: exactly one outcome per handle, matching what the task did
/// (`Ok` only if it got through the gate and returned), each future dropped
/// exactly once, and no task left behind in the executor.
#[test]
fn abort_racing_remote_wake() {
    with_hang_guard(|| {
        let n = count(100_000, 20_000);
        let mut totals = Outcomes::default();
        for _round in 0..5 {
            let executor = five_queue_executor();
            let queues: Vec<_> = (0..5).map(|k| executor.queue(k).unwrap()).collect();
            let ledger = DropLedger::new(n);
            let completed = flags(n);
            let gates: Arc<Vec<Arc<Gate>>> =
                Arc::new((0..n).map(|_| Arc::new(Gate::default())).collect());
            let start = Arc::new(Barrier::new(2));
            let opened = Arc::new(AtomicUsize::new(0));
            let opener = thread::spawn({
                let (gates, start, opened) =
                    (Arc::clone(&gates), Arc::clone(&start), Arc::clone(&opened));
                move || {
                    start.wait();
                    for gate in gates.iter() {
                        gate.open();
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            let (to_aborter, aborter_rx) = mpsc::channel::<Vec<JoinHandle<usize>>>();
            let (back_tx, back_rx) = futures::channel::oneshot::channel();
            let aborter = thread::spawn(move || {
                let handles = aborter_rx.recv().unwrap();
                start.wait();
                // Aborting is much cheaper than opening: start halfway, so
                // that the two meet in the second half.
                while opened.load(Ordering::SeqCst) < n / 2 {
                    thread::yield_now();
                }
                for handle in handles.iter().rev() {
                    handle.abort();
                }
                back_tx.send(handles).unwrap();
            });
            let outcomes = futures::executor::block_on(executor.run_until({
                let (ledger, completed) = (ledger.clone(), Arc::clone(&completed));
                async move {
                    let handles = (0..n)
                        .map(|i| {
                            let token = ledger.token(i);
                            let completed = Arc::clone(&completed);
                            let gate = Arc::clone(&gates[i]);
                            queues[i % 5].spawn(async move {
                                let _token = token;
                                gate.wait().await;
                                completed[i].store(true, Ordering::SeqCst);
                                i
                            })
                        })
                        .collect();
                    // Let every task park once first, so that the opener's
                    // wakes are real remote wakes of idle tasks.
                    yield_once().await;
                    to_aborter.send(handles).unwrap();
                    let handles = back_rx.await.unwrap();
                    let mut outcomes = Outcomes::default();
                    for (i, handle) in handles.into_iter().enumerate() {
                        outcomes.check(i, handle.await, &completed);
                    }
                    outcomes
                }
            }));
            opener.join().unwrap();
            aborter.join().unwrap();
            assert_eq!(outcomes.ok + outcomes.cancelled, n);
            assert_eq!(ledger.not_once(), vec![]);
            assert_eq!(live_tasks(&executor), 0);
            totals.ok += outcomes.ok;
            totals.cancelled += outcomes.cancelled;
        }
        eprintln!("abort_racing_remote_wake: {totals:?}");
    });
}

// ---------------------------------------------------------------- executor drop

/// Owned by each task's future: counts its drop in the ledger and notes a
/// drop on any thread but the executor's.
struct Owned {
    _token: LedgerToken,
    home: ThreadId,
    elsewhere: Arc<AtomicUsize>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if thread::current().id() != self.home {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// 2,000 tasks per round (full: 10,000), 20 rounds, in five queues. Each
/// task stores its latest waker in a slot and counts its wakes; a fifth of
/// them complete on their third wake, the others never do. Four threads wake
/// every slot again and again (`wake_by_ref`, or a clone's `wake`) while the
/// executor runs, while some tasks are aborted and some handles dropped, and
/// while the executor is dropped; they go on waking for a full sweep after
/// the drop has returned.
///
/// Proves: dropping the executor under a storm of remote wakes ends: every
/// future is dropped exactly once (none leaked by the drop's give-up path,
/// none twice), on the executor's thread; every kept handle reports `Ok`
/// with its output for the tasks that completed and `Cancelled` for the
/// rest; wakes after the drop are harmless (no thread panics).
#[test]
fn executor_dropped_while_remote_wakes_arrive() {
    with_hang_guard(|| {
        const THREADS: usize = 4;
        let n = count(10_000, 2_000);
        for round in 0..20 {
            let executor = five_queue_executor();
            let queues: Vec<_> = (0..5).map(|k| executor.queue(k).unwrap()).collect();
            let ledger = DropLedger::new(n);
            let completed = flags(n);
            let elsewhere = Arc::new(AtomicUsize::new(0));
            let slots: Arc<Vec<Mutex<Option<Waker>>>> =
                Arc::new((0..n).map(|_| Mutex::new(None)).collect());
            let home = thread::current().id();
            let mut handles: Vec<Option<JoinHandle<usize>>> = (0..n)
                .map(|i| {
                    let owned = Owned {
                        _token: ledger.token(i),
                        home,
                        elsewhere: Arc::clone(&elsewhere),
                    };
                    let (slots, completed) = (Arc::clone(&slots), Arc::clone(&completed));
                    let mut polls = 0;
                    Some(queues[i % 5].spawn(std::future::poll_fn(move |cx| {
                        let _owned = &owned;
                        polls += 1;
                        if i % 5 == 0 && polls > 3 {
                            completed[i].store(true, Ordering::SeqCst);
                            return Poll::Ready(i);
                        }
                        *slots[i].lock().unwrap() = Some(cx.waker().clone());
                        Poll::Pending
                    })))
                })
                .collect();
            // Every task parks once, so that every slot has a waker.
            futures::executor::block_on(executor.run_until(yield_n(3)));
            let stop = Arc::new(AtomicBool::new(false));
            let sweeps: Arc<Vec<AtomicUsize>> =
                Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
            let start = Arc::new(Barrier::new(THREADS + 1));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (slots, stop, sweeps, start) = (
                        Arc::clone(&slots),
                        Arc::clone(&stop),
                        Arc::clone(&sweeps),
                        Arc::clone(&start),
                    );
                    thread::spawn(move || {
                        start.wait();
                        while !stop.load(Ordering::SeqCst) {
                            for (i, slot) in slots.iter().enumerate().skip(t) {
                                let waker = slot.lock().unwrap().clone();
                                if let Some(waker) = waker {
                                    if i % 2 == 0 {
                                        waker.wake_by_ref();
                                    } else {
                                        waker.wake();
                                    }
                                }
                            }
                            sweeps[t].fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            start.wait();
            // Run while the wakes arrive, with some tasks aborted and some
            // handles dropped meanwhile.
            futures::executor::block_on(executor.run_until(async {
                for step in 0..50 {
                    if step == 10 {
                        for handle in handles.iter().skip(1).step_by(7).flatten() {
                            handle.abort();
                        }
                    }
                    if step == 20 {
                        for handle in handles.iter_mut().skip(3).step_by(11) {
                            drop(handle.take());
                        }
                    }
                    yield_once().await;
                }
            }));
            // Aborted and not yet reaped: the drop must cancel these too.
            for handle in handles.iter().skip(2).step_by(13).flatten() {
                handle.abort();
            }
            drop(queues);
            drop(executor);
            // A full sweep of every thread after the drop.
            let seen: Vec<usize> = sweeps.iter().map(|s| s.load(Ordering::SeqCst)).collect();
            while sweeps
                .iter()
                .zip(&seen)
                .any(|(s, &before)| s.load(Ordering::SeqCst) < before + 2)
            {
                thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
            for thread in threads {
                thread.join().expect("a waking thread panicked");
            }
            assert_eq!(ledger.not_once(), vec![], "round {round}");
            assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "dropped off-thread");
            let mut outcomes = Outcomes::default();
            for (i, handle) in handles.into_iter().enumerate() {
                if let Some(handle) = handle {
                    let result = handle.now_or_never().expect("unresolved after the drop");
                    outcomes.check(i, result, &completed);
                }
            }
            // Drop the wakers the slots still hold (they keep tasks' memory).
            drop(slots);
        }
    });
}
