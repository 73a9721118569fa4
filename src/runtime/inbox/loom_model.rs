//! A loom model of the cross-thread protocol of the inbox.
//!
//! Run with (as `.ci/run` does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release --lib inbox::loom_model
//! ```
//!
//! (The models are unit tests of the library because `Shared` is private to
//! the crate; a test under `tests/` could not reach it.)
//!
//! # What runs for real, and what is a stand-in
//!
//! The model drives the real [`Shared`] (`src/inbox.rs`): its `push`,
//! `request_abort`, `notify`, `has_remote_wakes`, `drain`, `register_host`,
//! `is_empty`, and for remote spawns `push_spawn`, `close_spawns`,
//! `spawns_closed` and `drain_spawns`, run unchanged, on loom's
//! `AtomicBool` (imported by `inbox.rs` under `cfg(all(test, loom))`). We
//! chose this over re-implementing the protocol in a test file because a
//! copy can drift from the code it copies; the price is two `cfg`'d imports
//! in `inbox.rs` and `Shared` being generic over what it carries, which
//! compiles to the same code for `Runnable`.
//!
//! - **The queues are the real `concurrent-queue` code**, not a stand-in:
//!   concurrent-queue is loom-instrumented (under `cfg(loom)`, with its `loom`
//!   feature, which `Cargo.toml` turns on for this build), so loom explores
//!   the interleavings inside `push`, `pop` and `close` too: the bounded
//!   queue at capacity 1 (concurrent-queue's one-slot variant) and at
//!   capacity 2 or 4 (the ring production uses, with 1024 slots), and the
//!   unbounded one (the block list) for the overflow, the abort requests
//!   and the spawns.
//! - **The host waker** is `atomic-waker`'s `AtomicWaker` in production
//!   (futures' `AtomicWaker` in its own crate), which is not
//!   loom-instrumented. It is replaced by `loom::future::AtomicWaker`,
//!   loom's mock of tokio's `AtomicWaker`, which has the same contract:
//!   `wake` takes the registered waker and wakes it; a `register` racing a
//!   `wake` wakes the new waker. [`AtomicWaker`] below adapts its signature.
//! - **The host** is a loom thread: one run of [`turn`] is one poll of the
//!   executor's run future; the thread then waits until the waker it
//!   registered is woken. A lost wake-up therefore leaves the host waiting
//!   forever, which loom reports as a deadlock.
//! - **Spawners** (for the spawn models) are loom threads running
//!   [`spawn_all`], `Spawner::spawn_at`'s use of `Shared` (the
//!   `spawns_closed` fast path, then `push_spawn`) on plain values. The
//!   executor's side of a shutdown (`begin_shutdown` and `advance_shutdown`)
//!   and of its drop (`Core::drop`, `cancel_queued`) is re-implemented in
//!   [`host_spawns`], reduced to the spawn queue.
//! - **Tasks** (for the abort and drop models) are [`ModelTask`]s: our abort
//!   flag (`TaskMeta::aborted`) and slot (`TaskMeta::slot`) on loom atomics,
//!   and the part of async-task's state machine the protocol relies on,
//!   re-implemented as a contract (a wake of an idle task schedules it,
//!   once; a wake of a scheduled, running or completed task does not hand
//!   out a runnable; a run that returns `Pending` reschedules the task if
//!   it was woken meanwhile). `JoinHandle::abort` is re-implemented in
//!   `ModelTask::abort`. The executor's side (`register` and `admit`,
//!   `accept`, `wake_slot`, the reap list, the run that reads the flag,
//!   `Core::drop`'s loop) is re-implemented in [`Exec`], each step naming
//!   the function it mirrors. The join state (task state, reference counts,
//!   output slot, the `JoinHandle`'s waker) is async-task's, an established
//!   crate (smol's, also under async-executor): we wrote none, so we do not
//!   model its internals.
//! - **`SeqCst` accesses**: loom treats them as `AcqRel`, which is too weak
//!   for the one place that relies on their total order (the handshake
//!   between `JoinHandle::abort` and `Core::register`); the model adds a
//!   `SeqCst` fence there, which loom does model (see [`seq_cst_order`]).
//!
//! # What is not covered
//!
//! - The internals of async-task and atomic-waker (see above), and the
//!   real `Spawner`, `JoinHandle` and executor code (stand-ins above).
//! - The `SeqCst` accesses themselves, in the one place where their total
//!   order matters (see [`seq_cst_order`]): the model checks the protocol
//!   with a fence standing in for it.
//! - What a refused spawn becomes: `Spawner::spawn_at` sets the flag and
//!   runs the task on its own thread (the spawn models check only that it
//!   is refused, to its spawner); a spawn taken in by the drop is
//!   registered and cancelled by `cancel_queued` (the spawn models check
//!   that it is taken in). The spawn models carry values, not tasks.
//! - The command queue (`push_command`, `close_commands`,
//!   `apply_commands`), the `stopped` flag, the drain deadline's thread,
//!   `register_remote`'s unknown-queue path, and `Spawner::shutdown`
//!   closing the spawn queue from another thread (the models close it on
//!   the executor's thread; it is the same `close`).
//! - Slot reuse: the model never reuses a slot, so an abort request that
//!   names a freed slot finds no task; in production it may find another
//!   task there, which gets a spurious wake.
//! - The fast path (wakes on the executor's thread go straight into the
//!   queues: single-threaded code) and the schedulers.
//! - `Core::drop`'s give-up path (it stops waiting for a wake that never
//!   lands after a second, and leaks that task): loom has no clock. The drop
//!   model shows that a wake in flight always lands, so that path is only a
//!   safety net.
//! - Two producers spilling on the ring at capacity 2: beyond what loom can
//!   explore here (see `spill_into_overflow_capacity_2`).
//! - Bigger configurations than the ones below (more threads, more wakes
//!   or spawns each) and more preemptions than `LOOM_MAX_PREEMPTIONS` (3 by
//!   default, and in CI): loom explores every interleaving within that
//!   bound only.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::sync::Notify;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::Shared;
use crate::runtime::task::UNREGISTERED;

/// What `Shared::host` is under loom: `loom::future::AtomicWaker` with
/// atomic-waker's `register(&Waker)` signature.
pub(super) struct AtomicWaker(loom::future::AtomicWaker);

impl AtomicWaker {
    pub(super) fn new() -> Self {
        AtomicWaker(loom::future::AtomicWaker::new())
    }

    pub(super) fn register(&self, waker: &Waker) {
        self.0.register_by_ref(waker);
    }

    pub(super) fn wake(&self) {
        self.0.wake();
    }
}

/// The host task: its waker notifies it, and it waits between polls.
/// (`loom::sync::Notify` rather than thread park: loom lets an unpark wake a
/// thread blocked in `join`. A notification synchronizes, as the host
/// runtime's task state does between a wake and the poll it causes; loom also
/// explores spurious returns from `wait`, i.e. polls nobody asked for.)
struct Host(Notify);

impl Wake for Host {
    fn wake(self: Arc<Self>) {
        self.0.notify();
    }
}

impl Host {
    /// The host and the waker it registers.
    fn new() -> (Arc<Host>, Waker) {
        let host = Arc::new(Host(Notify::new()));
        let waker = Waker::from(Arc::clone(&host));
        (host, waker)
    }

    /// Waits until the waker is woken.
    fn park(&self) {
        self.0.wait();
    }
}

/// Runs `f` under loom, with at most 3 preemptions per execution unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os("LOOM_LOG").is_some() {
        // To debug a failure: `loom::model` installs loom's trace output
        // (`LOOM_LOG=trace`); the bounds then come from `LOOM_*` alone.
        return loom::model(f);
    }
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    // concurrent-queue spins (with a yield) while another thread is half-way
    // through a push or pop on the same slot; each spin is a branch.
    builder.max_branches = builder.max_branches.max(10_000);
    let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&executions);
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{} executions explored (at most {} preemptions each)",
        executions.load(std::sync::atomic::Ordering::Relaxed),
        builder.preemption_bound.unwrap_or(usize::MAX),
    );
}

/// One poll of the executor's run future by the host, reduced to what
/// touches the inbox (`RunUntil::poll` and `Core::polls` in `src/run.rs`):
/// register the host waker (`register` → `Shared::register_host`), then
/// loop: `Core::drain_wakes` (`src/executor.rs`: if `has_remote_wakes`,
/// drain the wakes and abort requests, then, after `apply_commands` (no
/// commands in these models), the remote spawns), run what is runnable
/// (`next`, returns `false` when nothing is), and with nothing to run, end
/// the turn unless `Core::has_pending_work` (`has_remote_wakes` again) says
/// otherwise.
fn turn<T>(
    shared: &Shared<T>,
    host: &Waker,
    mut each: impl FnMut(T),
    mut abort: impl FnMut(usize),
    mut spawn: impl FnMut(T),
    mut next: impl FnMut() -> bool,
) {
    shared.register_host(host);
    loop {
        if shared.has_remote_wakes() {
            shared.drain(&mut each, &mut abort);
            shared.drain_spawns(&mut spawn);
        }
        if next() {
            continue;
        }
        if !shared.has_remote_wakes() {
            return;
        }
    }
}

// ------------------------------------------------------------ remote wakes

/// A remote wake in the first models: which producer pushed it, and its
/// place in that producer's sequence.
type RemoteWake = (usize, usize);

/// The host side of the wake-only models: polls until `total` wakes have
/// arrived, parking between polls. Returns them in the order drained.
fn host_until(shared: &Shared<RemoteWake>, total: usize) -> Vec<RemoteWake> {
    let (host, waker) = Host::new();
    let mut got = Vec::new();
    loop {
        turn(
            shared,
            &waker,
            |wake| got.push(wake),
            |_| unreachable!("no aborts in this model"),
            |_| unreachable!("no spawns in this model"),
            || false,
        );
        if got.len() == total {
            return got;
        }
        // Parked until the waker is woken: a lost wake-up hangs here, and
        // loom reports the deadlock.
        host.park();
    }
}

/// `producers[p]` wakes pushed by producer `p`, all concurrently with the
/// host. Checks that every wake is drained exactly once, that the host is
/// never left parked with a wake in the inbox, and that nothing is left
/// behind. Returns the drain order.
fn wakes_arrive(capacity: usize, producers: &'static [usize]) -> Vec<RemoteWake> {
    let shared = Arc::new(Shared::<RemoteWake>::with_capacity(capacity));
    let threads: Vec<_> = producers
        .iter()
        .enumerate()
        .map(|(p, &count)| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                for seq in 0..count {
                    // What `schedule` does with a wake from another thread.
                    shared.push((p, seq));
                }
            })
        })
        .collect();
    let total = producers.iter().sum();
    let got = host_until(&shared, total);
    for thread in threads {
        thread.join().unwrap();
    }
    let mut sorted = got.clone();
    sorted.sort_unstable();
    let expected: Vec<RemoteWake> = producers
        .iter()
        .enumerate()
        .flat_map(|(p, &count)| (0..count).map(move |seq| (p, seq)))
        .collect();
    assert_eq!(sorted, expected, "a wake was lost or drained twice");
    assert!(shared.is_empty(), "a wake was left in the inbox");
    got
}

/// Two threads wake concurrently while the executor clears `notified` and
/// drains: every wake is drained exactly once, and the host is woken for
/// every wake it has not drained (else it would stay parked: deadlock).
#[test]
fn two_remote_wakers_and_a_draining_executor() {
    model(|| {
        wakes_arrive(4, &[1, 1]);
    });
}

/// The same with two wakes from one of the threads, so that a push can
/// find `notified` set by the other thread, or by its own previous push.
#[test]
fn two_remote_wakers_one_waking_twice() {
    model(|| {
        wakes_arrive(4, &[2, 1]);
    });
}

/// A one-slot preallocated inbox: the second and third wakes spill into the
/// overflow queue, possibly while the executor drains. Every wake still
/// arrives exactly once, and no wake-up is lost.
#[test]
fn spill_into_overflow_capacity_1() {
    model(|| {
        wakes_arrive(1, &[3]);
    });
}

/// Capacity 2: the ring buffer production uses (with 1024 slots), which
/// the third wake finds full unless the executor has popped the first, and
/// then wraps around.
///
/// One producer only: with two producers and the executor all on the ring,
/// two of them can wait on one slot (spinning, with a yield) for the third,
/// half-way through its push or pop; loom may then switch between the two
/// spinners without end, and stops at its branch limit (we saw executions
/// of 20,000 branches). That is a limit of the model, not a hang: the third
/// thread finishes as soon as it is scheduled.
#[test]
fn spill_into_overflow_capacity_2() {
    model(|| {
        wakes_arrive(2, &[3]);
    });
}

/// Wakes from one thread are drained in the order they were pushed, spill
/// or not.
///
/// Fails: the drain empties the bounded queue before the overflow, so a wake
/// that spilled while the bounded queue was full can be overtaken by a later
/// wake from the same thread that found room in it once the drain had
/// started: with capacity 1, wakes 0, 1, 2 from one thread drain as 0, 2, 1
/// (0 fills the slot, 1 spills, the executor pops 0, 2 takes the freed
/// slot, the executor pops 2 and only then 1 from the overflow). Nothing is
/// lost; the order within a queue (`RunnableFifo`: "in the order they became
/// runnable") is off for such wakes, and only under a burst of more than
/// `INBOX_CAPACITY` (1024) remote wakes racing a drain.
#[test]
#[ignore = "known limitation, see the module docs of src/inbox.rs (# Order)"]
fn spill_keeps_per_thread_order() {
    model(|| {
        let got = wakes_arrive(1, &[3]);
        let order: Vec<usize> = got.iter().map(|&(_, seq)| seq).collect();
        assert_eq!(order, vec![0, 1, 2], "drained out of push order");
    });
}

// ------------------------------------------------------------ remote spawns

/// A remote spawn in the spawn models: which spawner made it, and its place
/// in that spawner's sequence.
type RemoteSpawn = (usize, usize);

/// What `Spawner::spawn_at` did with a spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// `push_spawn` took it: the executor must drain it.
    Accepted,
    /// `spawns_closed` said closed: refused without a push (the fast path).
    RefusedUnpushed,
    /// `push_spawn` gave it back: refused (the spawner cancels the task on
    /// its own thread).
    RefusedByPush,
}

/// `count` spawns from spawner `p`, each as `Spawner::spawn_at` makes it:
/// refused at once if `spawns_closed`, else handed to `push_spawn`, which
/// takes it or gives it back.
fn spawn_all(shared: &Shared<RemoteSpawn>, p: usize, count: usize) -> Vec<Fate> {
    (0..count)
        .map(|seq| {
            if shared.spawns_closed() {
                return Fate::RefusedUnpushed;
            }
            match shared.push_spawn((p, seq)) {
                Ok(()) => Fate::Accepted,
                Err(back) => {
                    assert_eq!(back, (p, seq), "push_spawn gave back another spawn");
                    assert!(
                        shared.spawns_closed(),
                        "a spawn was refused while spawns_closed says open"
                    );
                    Fate::RefusedByPush
                }
            }
        })
        .collect()
}

/// How the executor of a spawn model stops taking spawns in.
#[derive(Debug, Clone, Copy)]
enum Closing {
    /// A graceful shutdown, once `before` spawns have arrived (the host
    /// polls, parking between polls, until they have: a lost wake-up hangs
    /// there). `begin_shutdown` closes the spawn queue, then the run loop
    /// goes on, turn by turn, parking between turns, until
    /// `advance_shutdown` finds nothing in flight (`Shared::is_empty`):
    /// a spawn accepted before the close, and not drained yet, must wake
    /// the host (or be drained by a turn it is in).
    Shutdown { before: usize },
    /// The executor is dropped after one turn (which may find nothing):
    /// `Core::drop` closes the spawn queue, then, until `is_empty`,
    /// `cancel_queued` drains the spawns, yielding when it finds nothing
    /// (no wake involved).
    Drop,
}

/// One turn of the host of a spawn model: only spawns arrive.
fn spawn_turn(shared: &Shared<RemoteSpawn>, host: &Waker, got: &mut Vec<RemoteSpawn>) {
    turn(
        shared,
        host,
        |_| unreachable!("no wakes in this model"),
        |_| unreachable!("no aborts in this model"),
        |spawn| got.push(spawn),
        || false,
    );
}

/// The executor of a spawn model: takes spawns in, then stops as
/// `closing` says. Returns the spawns it took in, in order.
fn host_spawns(shared: &Shared<RemoteSpawn>, closing: Closing) -> Vec<RemoteSpawn> {
    let (host, waker) = Host::new();
    let mut got = Vec::new();
    match closing {
        Closing::Shutdown { before } => {
            loop {
                spawn_turn(shared, &waker, &mut got);
                if got.len() >= before {
                    break;
                }
                host.park();
            }
            // `begin_shutdown` (it wakes the host, which polls again).
            shared.close_spawns();
            loop {
                spawn_turn(shared, &waker, &mut got);
                // `advance_shutdown`: done once nothing is in flight.
                if shared.is_empty() {
                    break;
                }
                host.park();
            }
        }
        Closing::Drop => {
            spawn_turn(shared, &waker, &mut got);
            shared.close_spawns();
            while !shared.is_empty() {
                let before = got.len();
                shared.drain_spawns(|spawn| got.push(spawn));
                if got.len() == before {
                    thread::yield_now();
                }
            }
        }
    }
    got
}

/// `spawners[p]` spawns from spawner `p`, all concurrently with an
/// executor that stops as `closing` says. Checks that every spawn ends
/// exactly once, either taken in by the executor or refused to its
/// spawner: the executor took in exactly the spawns `push_spawn` accepted,
/// each once, in each spawner's order, and nothing is left in the spawn
/// queue once the executor is done; that a refusal is final (every later
/// spawn from that thread is refused); and, through the host's parking,
/// that no accepted spawn is left without a wake-up.
fn spawns_race_the_close(spawners: &'static [usize], closing: Closing) {
    let shared = Arc::new(Shared::<RemoteSpawn>::new_for_model());
    let threads: Vec<_> = spawners
        .iter()
        .enumerate()
        .map(|(p, &count)| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || spawn_all(&shared, p, count))
        })
        .collect();
    let got = host_spawns(&shared, closing);
    let fates: Vec<Vec<Fate>> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    for (p, fates) in fates.iter().enumerate() {
        let from_p: Vec<usize> = got
            .iter()
            .filter(|&&(q, _)| q == p)
            .map(|&(_, seq)| seq)
            .collect();
        let accepted: Vec<usize> = (0..fates.len())
            .filter(|&seq| fates[seq] == Fate::Accepted)
            .collect();
        assert_eq!(
            from_p, accepted,
            "spawner {p}: taken in {from_p:?}, accepted {accepted:?} ({fates:?})"
        );
        if let Some(first) = fates.iter().position(|&fate| fate != Fate::Accepted) {
            assert!(
                fates[first..].iter().all(|&fate| fate != Fate::Accepted),
                "spawner {p}: a spawn was accepted after one was refused ({fates:?})"
            );
        }
    }
    assert!(shared.spawns_closed());
    assert!(shared.is_empty(), "an accepted spawn was left behind");
}

/// Two threads spawn once each; the executor takes the first spawn in (it
/// waits for it, parked: the spawn must wake it), then shuts down while the
/// other spawn may be in flight: accepted before the close (taken in by a
/// later turn, woken by that spawn) or refused (by `push_spawn`, or by the
/// `spawns_closed` fast path), never lost, never both.
#[test]
fn remote_spawns_racing_a_shutdown() {
    model(|| spawns_race_the_close(&[1, 1], Closing::Shutdown { before: 1 }));
}

/// The same, with the shutdown right after the executor's first turn (which
/// may take in one spawn, both or none): both spawns race the close.
#[test]
fn remote_spawns_racing_an_early_shutdown() {
    model(|| spawns_race_the_close(&[1, 1], Closing::Shutdown { before: 0 }));
}

/// One thread spawns twice and another once while the executor runs a turn
/// (before, between or after the spawns) and is dropped: the drop's drain
/// after the close finds every accepted spawn, even one whose push is half
/// done (the pop waits for it); a refusal is final, and the second spawn of
/// the first thread may be refused by either path.
#[test]
fn remote_spawns_racing_the_executor_drop() {
    model(|| spawns_race_the_close(&[2, 1], Closing::Drop));
}

// ------------------------------------------------------------ aborts

/// async-task's task state, as far as the protocol relies on it.
const SCHEDULED: usize = 1;
const RUNNING: usize = 2;
const COMPLETED: usize = 4;

/// One task: what a `Runnable` points to.
///
/// `state` stands in for async-task's state word (`async_task::raw`),
/// reduced to its contract: a wake of an idle task sets `SCHEDULED` and
/// hands over the one runnable; a wake of a scheduled or completed task does
/// nothing; a wake of a running task sets `SCHEDULED` and leaves the
/// rescheduling to the end of the run ([`Exec::pend`]); a run swaps
/// `SCHEDULED` for `RUNNING`, and completion clears both. Orderings are
/// async-task's: read-modify-writes `AcqRel`, `is_finished` an `Acquire`
/// load. `slot` and `aborted` are `TaskMeta::slot` and `TaskMeta::aborted`.
struct ModelTask {
    slot: AtomicUsize,
    state: AtomicUsize,
    aborted: AtomicBool,
    /// Whether the task's future completes when polled. If not, it returns
    /// `Pending` and nothing but an abort wakes it again: the task ends only
    /// if the abort reaches it.
    completes: bool,
}

type TaskRef = Arc<ModelTask>;

impl ModelTask {
    /// `count` idle tasks (spawned on the executor's thread, polled once,
    /// waiting for a wake), in slots `0..count`.
    fn idle(count: usize) -> Vec<TaskRef> {
        (0..count)
            .map(|slot| {
                Arc::new(ModelTask {
                    slot: AtomicUsize::new(slot),
                    state: AtomicUsize::new(0),
                    aborted: AtomicBool::new(false),
                    completes: true,
                })
            })
            .collect()
    }

    /// A task as `task::spawn` returns it to `Spawner::spawn_at`: scheduled
    /// (its one runnable is the caller's, to push on the spawn queue), not
    /// registered with the executor yet (`TaskMeta::new`: `UNREGISTERED`).
    fn spawned(completes: bool) -> TaskRef {
        Arc::new(ModelTask {
            slot: AtomicUsize::new(UNREGISTERED),
            state: AtomicUsize::new(SCHEDULED),
            aborted: AtomicBool::new(false),
            completes,
        })
    }

    /// A waker's `wake`: `Some(runnable)` for the caller to schedule, if
    /// this wake scheduled the task.
    fn wake(self: &Arc<Self>) -> Option<TaskRef> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & (SCHEDULED | COMPLETED) != 0 {
                return None;
            }
            match self.state.compare_exchange_weak(
                state,
                state | SCHEDULED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if state & RUNNING != 0 => return None,
                Ok(_) => return Some(Arc::clone(self)),
                Err(actual) => state = actual,
            }
        }
    }

    /// A wake from another thread: `inbox::schedule` finds no executor
    /// running on this thread and pushes the runnable on the inbox.
    fn wake_remote(self: &Arc<Self>, shared: &Shared<TaskRef>) {
        if let Some(runnable) = self.wake() {
            shared.push(runnable);
        }
    }

    /// `JoinHandle::abort` (`src/join.rs`): unless finished, set the flag,
    /// then, if the task has a slot already, ask the executor to wake it.
    /// Both `SeqCst`, with [`seq_cst_order`] between them: the abort's half
    /// of the handshake with `Core::register` ([`Exec::register`]).
    fn abort(&self, shared: &Shared<TaskRef>) {
        if self.is_finished() {
            return;
        }
        self.aborted.store(true, Ordering::SeqCst);
        seq_cst_order();
        let slot = self.slot.load(Ordering::SeqCst);
        if slot != UNREGISTERED {
            shared.request_abort(slot);
        }
    }

    /// `JoinHandle::is_finished`.
    fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETED != 0
    }
}

/// Stands in for the single total order of `SeqCst` operations between a
/// `SeqCst` store and a `SeqCst` load of another atomic, where the code
/// relies on it (the abort / take-in handshake: `JoinHandle::abort` stores
/// `aborted` and loads `slot`, `Core::register` stores `slot` and loads
/// `aborted`; the total order forbids both loads reading the old value, the
/// store-buffering outcome).
///
/// loom does not model `SeqCst` *accesses*: it treats them as `AcqRel`
/// (loom's README, "Unsupported features"), under which both loads may read
/// the old value, so the handshake as written fails under loom: a false
/// alarm (we checked: without this fence, `abort_racing_the_take_in_of_a_remote_spawn`
/// fails). loom does model `fence(SeqCst)`, and a `SeqCst` fence between
/// each store and load forbids the same outcome, in the C++20 memory model
/// that Rust uses, as the `SeqCst` accesses do. So the model keeps the
/// production orderings and adds this fence on both sides; production code
/// has no fence.
fn seq_cst_order() {
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its future was polled and completed.
    Completed,
    /// Its future was dropped unpolled.
    Cancelled,
}

/// The executor's single-threaded side.
struct Exec {
    /// `Core::tasks`: the executor's waker of every live task, by slot
    /// (slots are never reused here).
    tasks: Vec<Option<TaskRef>>,
    /// The queue's scheduler (`Sched`), and `Core::reap`.
    queue: VecDeque<TaskRef>,
    reap: Vec<TaskRef>,
    /// How each task ended, if it did, by slot.
    endings: Vec<Option<Ending>>,
    /// Whether the executor has taken an abort request for each slot.
    abort_taken: Vec<bool>,
}

impl Exec {
    /// An executor whose live tasks are `tasks`, in slots `0..`.
    fn new(tasks: &[TaskRef]) -> Self {
        Exec {
            tasks: tasks.iter().map(|task| Some(Arc::clone(task))).collect(),
            queue: VecDeque::new(),
            reap: Vec::new(),
            endings: vec![None; tasks.len()],
            abort_taken: vec![false; tasks.len()],
        }
    }

    fn live(&self) -> usize {
        self.tasks.iter().flatten().count()
    }

    fn ended(&self) -> usize {
        self.endings.iter().flatten().count()
    }

    /// `Core::register`, for a task spawned through a `Spawner`
    /// (`register_remote`): a slot in the live-task index, then the
    /// executor's half of the handshake with `JoinHandle::abort`: store the
    /// slot, load the flag, both `SeqCst` (with [`seq_cst_order`] between
    /// them). The flag is read again, relaxed, by `accept`, right after.
    fn register(&mut self, task: &TaskRef) {
        let slot = self.tasks.len();
        self.tasks.push(Some(Arc::clone(task)));
        self.endings.push(None);
        self.abort_taken.push(false);
        task.slot.store(slot, Ordering::SeqCst);
        seq_cst_order();
        let _ = task.aborted.load(Ordering::SeqCst);
    }

    /// `Core::admit`: takes in a task drained from the spawn queue.
    fn admit(&mut self, runnable: TaskRef) {
        self.register(&runnable);
        self.accept(runnable);
    }

    /// `Core::accept`: into the reap list if aborted, else into the queue.
    fn accept(&mut self, runnable: TaskRef) {
        if runnable.aborted.load(Ordering::Relaxed) {
            self.reap.push(runnable);
        } else {
            self.queue.push_back(runnable);
        }
    }

    /// A wake on the executor's thread during a turn (or the drop): the
    /// fast path, straight to `accept`.
    fn wake_local(&mut self, slot: usize) {
        if let Some(task) = self.tasks[slot].clone() {
            if let Some(runnable) = task.wake() {
                self.accept(runnable);
            }
        }
    }

    /// `Core::wake_slot`, for an abort request.
    fn wake_slot(&mut self, slot: usize) {
        self.abort_taken[slot] = true;
        self.wake_local(slot);
    }

    /// `Runnable::run`: `TaskFuture::poll` (`src/task.rs`) reads the abort
    /// flag, relaxed, and drops the future unpolled if it is set; else it
    /// polls the future, which completes or (if `!completes`) returns
    /// `Pending`. A task that ended frees its slot (`Core::poll_done`).
    fn run(&mut self, runnable: TaskRef) {
        let slot = runnable.slot.load(Ordering::Relaxed);
        // Nobody else changes a scheduled task's state.
        let state = runnable.state.swap(RUNNING, Ordering::AcqRel);
        assert_eq!(state, SCHEDULED, "ran a task that was not scheduled");
        let aborted = runnable.aborted.load(Ordering::Relaxed);
        assert!(
            aborted || !self.abort_taken[slot],
            "polled after the executor took the abort request"
        );
        let ending = if aborted {
            Ending::Cancelled
        } else if runnable.completes {
            Ending::Completed
        } else {
            self.pend(runnable);
            return;
        };
        assert_eq!(self.endings[slot], None, "a task ended twice");
        self.endings[slot] = Some(ending);
        // A wake during the run may have set `SCHEDULED`: dropped with
        // the completion, as async-task does.
        runnable.state.swap(COMPLETED, Ordering::AcqRel);
        self.tasks[slot] = None;
    }

    /// The end of a run whose future returned `Pending` (async-task's
    /// `RawTask::run`): clear `RUNNING`; if a wake came during the run
    /// (`SCHEDULED` is set), schedule the task again (on the executor's
    /// thread: the fast path), else it is idle until its next wake.
    fn pend(&mut self, runnable: TaskRef) {
        let mut state = runnable.state.load(Ordering::Acquire);
        loop {
            let new = if state & SCHEDULED != 0 {
                state & !RUNNING
            } else {
                state & !(RUNNING | SCHEDULED)
            };
            match runnable.state.compare_exchange_weak(
                state,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if state & SCHEDULED != 0 {
                        self.accept(runnable);
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Runs what is runnable: first the aborted tasks (`Core::reap_aborted`),
    /// then the queue (`Core::next_runnable`). Whether it ran anything.
    fn next(&mut self) -> bool {
        if let Some(runnable) = self.reap.pop().or_else(|| self.queue.pop_front()) {
            self.run(runnable);
            return true;
        }
        false
    }

    /// The host: polls until `done`, parking between polls.
    fn run_until(&mut self, shared: &Shared<TaskRef>, done: impl Fn(&Exec) -> bool) {
        let (host, waker) = Host::new();
        loop {
            {
                // The callbacks share the executor, one at a time.
                let this = RefCell::new(&mut *self);
                turn(
                    shared,
                    &waker,
                    |runnable| this.borrow_mut().accept(runnable),
                    |slot| this.borrow_mut().wake_slot(slot),
                    |runnable| this.borrow_mut().admit(runnable),
                    || this.borrow_mut().next(),
                );
            }
            if done(self) {
                return;
            }
            // A task left runnable but unrun, or idle with an abort that
            // never reaches it, hangs here: deadlock.
            host.park();
        }
    }

    /// `Core::drop` (`src/executor.rs`), without its give-up path: close
    /// the spawn queue, then until no task is live and the inbox and the
    /// spawn queue are empty, wake every live task (the fast path), then
    /// `cancel_queued` until it finds nothing (drain the inbox, ignoring
    /// abort requests; drain the spawns, registering each; take the reap
    /// list and the queue; run each runnable with the abort flag set), and
    /// if no task ended, yield and retry.
    fn drop_executor(&mut self, shared: &Shared<TaskRef>) {
        shared.close_spawns();
        loop {
            let live = self.live();
            if live == 0 && shared.is_empty() {
                return;
            }
            for slot in 0..self.tasks.len() {
                self.wake_local(slot);
            }
            loop {
                let mut batch = Vec::new();
                shared.drain(|runnable| batch.push(runnable), |_| {});
                shared.drain_spawns(|runnable| {
                    self.register(&runnable);
                    batch.push(runnable);
                });
                batch.append(&mut self.reap);
                batch.extend(self.queue.drain(..));
                if batch.is_empty() {
                    break;
                }
                for runnable in batch {
                    runnable.aborted.store(true, Ordering::Relaxed);
                    self.run(runnable);
                }
            }
            if self.live() < live {
                continue;
            }
            // A remote wake has marked a task scheduled (so the wake above
            // did nothing) and not pushed it yet.
            thread::yield_now();
        }
    }
}

/// An idle task is woken from one thread and aborted from another, while
/// the executor runs. The task ends exactly once; the executor never polls
/// it once it has taken the abort request (the flag's relaxed read is
/// ordered by the aborts queue); the host is never left parked while the
/// task is runnable; the handle's view (`is_finished`) agrees.
#[test]
fn abort_racing_a_remote_wake() {
    model(|| {
        let shared = Arc::new(Shared::<TaskRef>::new_for_model());
        let tasks = ModelTask::idle(1);
        let waker = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.wake_remote(&shared)
        });
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.abort(&shared)
        });
        let mut exec = Exec::new(&tasks);
        // Completed if the remote wake's run came first, else cancelled:
        // both are right, `Exec::run` checks the rest.
        exec.run_until(&shared, |exec| exec.live() == 0);
        waker.join().unwrap();
        aborter.join().unwrap();
        assert!(tasks[0].is_finished());
        assert!(shared.is_empty(), "a runnable was left in the inbox");
    });
}

/// An abort alone, of an idle task: the request alone gets the task
/// reaped (the executor wakes it), and it is cancelled, never polled.
#[test]
fn abort_of_an_idle_task() {
    model(|| {
        let shared = Arc::new(Shared::<TaskRef>::new_for_model());
        let tasks = ModelTask::idle(1);
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.abort(&shared)
        });
        let mut exec = Exec::new(&tasks);
        exec.run_until(&shared, |exec| exec.live() == 0);
        aborter.join().unwrap();
        assert_eq!(exec.endings[0], Some(Ending::Cancelled));
    });
}

/// A task spawned through a `Spawner` is aborted at once through its handle
/// (`spawner.spawn(..).abort()`), racing the executor's take-in of the spawn:
/// `JoinHandle::abort` (store the flag, load the slot) against
/// `Core::register` (store the slot, load the flag). The task's future
/// never completes: it returns `Pending`, and only the abort wakes it. So
/// the task ends only if the abort reaches it, through one side of the
/// handshake or both: the abort finds the slot and sends an abort request
/// (the executor wakes the idle task, or the run finds the flag), or the
/// take-in finds the flag and reaps the task. Checks: the task ends,
/// cancelled (if the abort were lost, the task would stay idle, live and
/// unwoken, the host parked forever: loom reports a deadlock); it is never
/// polled once the executor has taken the abort request.
///
/// Teeth, checked by hand (at 3 preemptions) by weakening the two halves
/// in this model (`ModelTask::abort` and `Exec::register`) and nothing
/// else:
///
/// - `SeqCst` accesses without [`seq_cst_order`] (loom treats them as
///   `Release` stores and `Acquire` loads), `Release`/`Acquire`, or
///   `Relaxed`, each without the fences: loom reports a deadlock within a
///   few seconds. The abort loads `UNREGISTERED`, the take-in loads
///   `false`, the task is polled, goes idle and is never woken.
/// - The fence on the executor's side only: the same deadlock.
/// - `Relaxed` accesses with both fences: passes, as it should (two
///   `SeqCst` fences forbid the outcome).
/// - The fence on the abort's side only: passes, though the memory model
///   allows both loads of the handshake to read the old value (loom
///   explores such executions). What saves the task is concurrent-queue:
///   `drain_spawns` pops again after each take-in, and that pop begins
///   with a `SeqCst` fence (`full_fence`), which under the C++20 fence rule
///   makes the run's relaxed read of the flag see the abort. The task is
///   then cancelled at its first run. That is a property of the queue's
///   internals (on x86 `full_fence` is a locked instruction, not a
///   language-level fence), not of the protocol, and production does not
///   rely on it.
#[test]
fn abort_racing_the_take_in_of_a_remote_spawn() {
    model(|| {
        let shared = Arc::new(Shared::<TaskRef>::new_for_model());
        let task = ModelTask::spawned(false);
        let spawner = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&task));
            move || {
                // `Spawner::spawn_at` (no shutdown in this model, so the
                // spawn is accepted), then `abort` on the handle it returns.
                assert!(!shared.spawns_closed());
                assert!(shared.push_spawn(Arc::clone(&task)).is_ok());
                task.abort(&shared);
            }
        });
        let mut exec = Exec::new(&[]);
        exec.run_until(&shared, |exec| exec.ended() == 1);
        spawner.join().unwrap();
        assert_eq!(exec.endings, vec![Some(Ending::Cancelled)]);
        assert!(task.is_finished());
        assert!(shared.is_empty(), "a runnable was left in the inbox");
    });
}

/// The handshake again, with the abort on another thread (the handle was
/// sent there after the spawn) and a task that completes when polled: it
/// ends exactly once, completed if its run came before the abort reached
/// it, else cancelled; an abort request that arrives after the task ended
/// (its slot is free) wakes nothing.
#[test]
fn abort_from_another_thread_racing_the_take_in() {
    model(|| {
        let shared = Arc::new(Shared::<TaskRef>::new_for_model());
        let task = ModelTask::spawned(true);
        // Spawned through a `Spawner` on the executor's thread, outside a
        // turn: the executor takes it in at its first drain.
        assert!(shared.push_spawn(Arc::clone(&task)).is_ok());
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&task));
            move || task.abort(&shared)
        });
        let mut exec = Exec::new(&[]);
        exec.run_until(&shared, |exec| exec.ended() == 1);
        aborter.join().unwrap();
        assert!(task.is_finished());
        assert!(shared.is_empty(), "a runnable was left in the inbox");
    });
}

// ------------------------------------------------------------ executor drop

/// The executor is dropped while another thread wakes its two idle tasks:
/// the drop's own wake of a task can find it already scheduled by the
/// remote wake, whose runnable is not in the inbox yet; or one task ends in
/// a round and the other does not.
///
/// Checks: the drop ends (it does not spin forever: loom would stop at its
/// branch limit), every task ends exactly once, cancelled, and the inbox is
/// empty afterwards (no runnable is stranded there, keeping its task and
/// the inbox alive in a cycle).
#[test]
fn executor_dropped_during_remote_wakes() {
    model(|| {
        let shared = Arc::new(Shared::<TaskRef>::new_for_model());
        let tasks = ModelTask::idle(2);
        let waker = thread::spawn({
            let (shared, tasks) = (Arc::clone(&shared), tasks.clone());
            move || {
                for task in &tasks {
                    task.wake_remote(&shared);
                }
            }
        });
        let mut exec = Exec::new(&tasks);
        exec.drop_executor(&shared);
        waker.join().unwrap();
        assert_eq!(exec.endings, vec![Some(Ending::Cancelled); 2]);
        assert!(shared.is_empty(), "a runnable was left in the inbox");
    });
}

impl<T> Shared<T> {
    /// The production inbox shape with a small preallocated part (1024 loom
    /// atomics per execution would only slow the model down).
    fn new_for_model() -> Self {
        Shared::with_capacity(2)
    }
}
