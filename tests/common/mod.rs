//! Helpers shared by the integration suites.

#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// Wakes the current task and returns `Pending` once: a plain yield, the
/// same for every executor.
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Yields `n` times.
pub async fn yield_n(n: usize) {
    for _ in 0..n {
        yield_once().await;
    }
}

/// The executor's count of live tasks, as its `Debug` shows it (the only
/// public view of its task index): 0 once every task has ended.
pub fn live_tasks<K: clockworker::QueueKey>(executor: &clockworker::Executor<K>) -> usize {
    let debug = format!("{executor:?}");
    let (_, rest) = debug
        .split_once("live_tasks: ")
        .expect("the executor's Debug shows live_tasks");
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

/// One drop count per task: proves each future was dropped exactly once,
/// not merely that the total is right.
#[derive(Clone)]
pub struct DropLedger(std::sync::Arc<Ledger>);

struct Ledger {
    counts: Vec<std::sync::atomic::AtomicUsize>,
    total: std::sync::atomic::AtomicUsize,
}

impl DropLedger {
    /// A ledger for tasks `0..n`.
    pub fn new(n: usize) -> Self {
        DropLedger(std::sync::Arc::new(Ledger {
            counts: (0..n)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
            total: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// The token of task `index`, counted when it is dropped.
    pub fn token(&self, index: usize) -> LedgerToken {
        LedgerToken {
            ledger: self.clone(),
            index,
        }
    }

    /// How many times task `index`'s token was dropped.
    pub fn drops(&self, index: usize) -> usize {
        self.0.counts[index].load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops of all tokens so far.
    pub fn total(&self) -> usize {
        self.0.total.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The tasks whose token was not dropped exactly once, with their counts.
    pub fn not_once(&self) -> Vec<(usize, usize)> {
        (0..self.0.counts.len())
            .map(|index| (index, self.drops(index)))
            .filter(|&(_, drops)| drops != 1)
            .collect()
    }
}

/// Adds one to its task's entry of a [`DropLedger`] when dropped.
pub struct LedgerToken {
    ledger: DropLedger,
    index: usize,
}

impl Drop for LedgerToken {
    fn drop(&mut self) {
        let ledger = &self.ledger.0;
        ledger.counts[self.index].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ledger
            .total
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Wake flag for [`try_drive`].
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `future` on this thread like a single-threaded host would, and
/// returns its output, or `None` if it returned `Pending` without waking
/// itself (nor being woken): a host would then never poll it again. For
/// tests where nothing outside this thread can wake the executor.
pub fn try_drive<F: Future>(future: F) -> Option<F::Output> {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        if !flag.0.load(Ordering::SeqCst) {
            return None;
        }
    }
}

/// [`try_drive`], failing the test on a stall instead of hanging.
pub fn drive<F: Future>(future: F) -> F::Output {
    try_drive(future).expect("the executor stalled: Pending with no wake-up arranged")
}

/// A FIFO scheduler whose `polled` panics the first time: a panic that
/// unwinds out of a poll's bookkeeping (and, re-raised, out of the run
/// future).
#[derive(Default)]
pub struct PanicsInPolledOnce {
    tasks: std::collections::VecDeque<clockworker::ReadyTask>,
    panicked: bool,
}

impl clockworker::Scheduler for PanicsInPolledOnce {
    fn push(&mut self, task: clockworker::ReadyTask) {
        self.tasks.push_back(task);
    }
    fn pop(&mut self) -> Option<clockworker::ReadyTask> {
        self.tasks.pop_front()
    }
    fn len(&self) -> usize {
        self.tasks.len()
    }
    fn polled(&mut self, _: &clockworker::TaskInfo, _: u64, _: bool) {
        if !std::mem::replace(&mut self.panicked, true) {
            panic!("scheduler bug");
        }
    }
}

/// The message of a panic payload (`&str` or `String`; empty otherwise).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
