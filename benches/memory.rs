//! Memory per idle task: clockworker, Tokio's `LocalSet`, `async-executor`'s
//! `LocalExecutor` and the published clockworker 0.2.6, measured in one run.
//!
//! Run with: `cargo bench --bench memory`
//!
//! Each implementation spawns [`TASKS`] tasks that park forever (they count
//! their first poll, then await `std::future::pending()` — no waker kept, no
//! wake ever), runs until every task has been polled once, and measures the
//! heap bytes allocated and still live at that point with a counting global
//! allocator (bytes requested: add on alloc, subtract on dealloc, the
//! difference on realloc; the allocator's own rounding and headers are not
//! counted). Per task:
//!
//! - `bytes/task`: (live after − live before) / [`TASKS`]. "Before" is taken
//!   once the host runtime and the executor are built; "after" includes the
//!   `Vec` that keeps every `JoinHandle` (or `Task`) alive, and whatever
//!   the executor keeps.
//! - `excl. Vec`: the same minus the `Vec` of handles (capacity × handle size).
//! - `peak/task`: highest live bytes during the run, over the same baseline.
//!
//! Three spawn patterns:
//!
//! - `burst`: all [`TASKS`] spawned, then run until all have been polled. Run
//!   queues grow to [`TASKS`] entries; a `Vec`/`VecDeque`-based run queue keeps
//!   that capacity when it empties, which then counts as live.
//! - `batched`: spawned [`BATCH`] at a time, each batch run until polled
//!   before the next, so run queues stay small: the steady-state cost of an
//!   idle task.
//! - `holding`: `batched`, with tasks that hold 64 bytes across their await:
//!   a task with some state, whose future is larger than its output (the
//!   idle task of the other two is smaller than the slot its output needs,
//!   so what a task's future costs beyond its own state does not show
//!   there).
//!
//! Hosts, as in `benches/overhead.rs`: both clockworkers and the `LocalSet` run
//! inside a Tokio current-thread runtime's `block_on`, `LocalExecutor` inside
//! `smol::block_on`.

mod common;
use common::tokio_rt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::mem::size_of;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Idle tasks per implementation and pattern.
const TASKS: usize = 1_000_000;
/// Tasks spawned between two runs of the executor in the `batched` pattern.
const BATCH: usize = 1024;

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// Bytes currently allocated (requested sizes).
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Highest value of `LIVE` since the last `reset_peak`.
static PEAK: AtomicIsize = AtomicIsize::new(0);

struct Counting;

impl Counting {
    fn grow(bytes: usize) {
        let bytes = bytes as isize;
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    fn shrink(bytes: usize) {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Counting::grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Counting::grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        Counting::shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block is still allocated: nothing changes.
            Counting::grow(new_size);
            Counting::shrink(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

fn peak() -> isize {
    PEAK.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Workload
// ---------------------------------------------------------------------------

/// Tasks polled so far (each task counts its first poll).
static POLLED: AtomicUsize = AtomicUsize::new(0);

/// The idle task, the same for every executor: counts its first poll, then
/// parks forever without keeping its waker. It holds `N` bytes across its
/// await (none for the executor's fixed cost; 64 for a task with some
/// state, whose future is larger than its output slot).
async fn idle_task<const N: usize>() {
    let held = [0u8; N];
    POLLED.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await;
    black_box(&held);
}

/// Completes once `target` tasks have been polled; until then wakes itself,
/// so that the executor keeps running its tasks.
fn all_polled(target: usize) -> impl Future<Output = ()> {
    poll_fn(move |cx| {
        if POLLED.load(Ordering::Relaxed) >= target {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    Burst,
    Batched,
    /// `Batched`, with tasks that hold 64 bytes across their await.
    Holding,
}

impl Pattern {
    fn batch(self) -> usize {
        match self {
            Pattern::Burst => TASKS,
            Pattern::Batched | Pattern::Holding => BATCH,
        }
    }
}

/// Spawns with `spawn` the idle task `pattern` asks for, and measures.
macro_rules! measure_idle {
    ($pattern:expr, |$task:ident| $spawn:expr, $run:expr) => {
        match $pattern {
            Pattern::Holding => measure(
                $pattern,
                || {
                    let $task = idle_task::<64>();
                    $spawn
                },
                $run,
            ),
            _ => measure(
                $pattern,
                || {
                    let $task = idle_task::<0>();
                    $spawn
                },
                $run,
            ),
        }
    };
}

/// One implementation's measurement, in bytes over [`TASKS`] tasks.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Live bytes after − before, handles' `Vec` included.
    total: isize,
    /// The handles' `Vec`: capacity × handle size.
    vec: usize,
    /// Peak live bytes − before.
    peak: isize,
    /// Size of one handle.
    handle: usize,
    elapsed: Duration,
}

impl Sample {
    fn per_task(self) -> f64 {
        self.total as f64 / TASKS as f64
    }

    fn per_task_excl_vec(self) -> f64 {
        (self.total - self.vec as isize) as f64 / TASKS as f64
    }

    fn peak_per_task(self) -> f64 {
        self.peak as f64 / TASKS as f64
    }
}

/// Spawns [`TASKS`] idle tasks with `spawn`, `pattern.batch()` at a time,
/// calling `run(polled)` after each batch to run the executor until `polled`
/// tasks have been polled; measures live bytes once all have.
fn measure<H>(
    pattern: Pattern,
    mut spawn: impl FnMut() -> H,
    mut run: impl FnMut(usize),
) -> Sample {
    POLLED.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let before = live();
    reset_peak();
    let mut handles = Vec::with_capacity(TASKS);
    while handles.len() < TASKS {
        let batch = pattern.batch().min(TASKS - handles.len());
        handles.extend((0..batch).map(|_| spawn()));
        run(handles.len());
    }
    let after = live();
    let peak = peak();
    let elapsed = start.elapsed();
    assert_eq!(POLLED.load(Ordering::Relaxed), TASKS);
    let sample = Sample {
        total: after - before,
        vec: handles.capacity() * size_of::<H>(),
        peak: peak - before,
        handle: size_of::<H>(),
        elapsed,
    };
    drop(black_box(handles));
    sample
}

fn clockworker(pattern: Pattern) -> Sample {
    let rt = tokio_rt();
    let executor = clockworker::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    measure_idle!(pattern, |task| queue.spawn(task), |polled| rt
        .block_on(executor.run_until(all_polled(polled))))
}

fn clockworker_026(pattern: Pattern) -> Sample {
    let rt = tokio_rt();
    let executor = clockworker026::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    measure_idle!(pattern, |task| queue.spawn(task), |polled| rt
        .block_on(executor.run_until(all_polled(polled))))
}

fn tokio_localset(pattern: Pattern) -> Sample {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    measure_idle!(pattern, |task| local.spawn_local(task), |polled| rt
        .block_on(local.run_until(all_polled(polled))))
}

fn async_executor(pattern: Pattern) -> Sample {
    let executor = async_executor::LocalExecutor::new();
    measure_idle!(pattern, |task| executor.spawn(task), |polled| {
        smol::block_on(executor.run(all_polled(polled)))
    })
}

/// One implementation's measurement for a spawn pattern.
type MeasureFn = fn(Pattern) -> Sample;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // there is nothing to check beyond that this compiles.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let implementations: [(&str, MeasureFn); 4] = [
        ("clockworker", clockworker),
        ("tokio_localset", tokio_localset),
        ("async_executor", async_executor),
        ("clockworker_0_2_6", clockworker_026),
    ];
    println!(
        "memory per idle task: {TASKS} tasks per implementation and pattern \
         (task future: {} byte(s)); bytes requested from the allocator",
        size_of_val(&idle_task::<0>()),
    );
    for (pattern, title) in [
        (
            Pattern::Burst,
            "burst: all spawned, then run until all polled",
        ),
        (
            Pattern::Batched,
            "batched: spawned 1024 at a time, each batch run until polled",
        ),
        (
            Pattern::Holding,
            "holding: batched, each task holding 64 bytes across its await",
        ),
    ] {
        let samples: Vec<(&str, Sample)> = implementations
            .iter()
            .map(|&(name, run)| (name, run(pattern)))
            .collect();
        let tokio = samples
            .iter()
            .find(|(name, _)| *name == "tokio_localset")
            .map(|&(_, sample)| sample)
            .expect("tokio sample");
        println!();
        println!("{title}");
        println!(
            "{:<18} {:>6} {:>11} {:>9} {:>11} {:>9} {:>10} {:>8}",
            "implementation",
            "handle",
            "bytes/task",
            "vs Tokio",
            "excl. Vec",
            "vs Tokio",
            "peak/task",
            "time",
        );
        for (name, sample) in &samples {
            println!(
                "{:<18} {:>6} {:>11.1} {:>8.2}x {:>11.1} {:>8.2}x {:>10.1} {:>6.0}ms",
                name,
                sample.handle,
                sample.per_task(),
                sample.per_task() / tokio.per_task(),
                sample.per_task_excl_vec(),
                sample.per_task_excl_vec() / tokio.per_task_excl_vec(),
                sample.peak_per_task(),
                sample.elapsed.as_secs_f64() * 1e3,
            );
        }
    }
}
