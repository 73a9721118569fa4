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
//! The model drives the real [`Shared`] (`src/runtime/inbox.rs`): its `push`,
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
//! - **The task registry is the real [`Registry`]**
//!   (`src/runtime/registry/live.rs`), for the abort and drop models: the
//!   live-task index and its slots (`insert_local`, the take-in of a remote
//!   spawn `take_in`, `wake_slot`, `end`), the reap-or-queue choice of
//!   `accept` (`reap_if_aborted`), the reap list (`run_reaped`), and the
//!   registry's steps of cancellation (`cancel_live`, `append_reaped`,
//!   `cancel`); and the abort's half of the handshake, [`registry::abort`],
//!   which `JoinHandle::abort` calls too. `Registry` is generic over the
//!   task it holds ([`Entry`], with its slot and abort flag behind
//!   [`EntryMeta`]) for this; in production it holds `Runnable`s.
//! - **Tasks** (for the abort and drop models) are [`ModelTask`]s, held by
//!   the registry as [`ModelRunnable`]s and [`ModelWaker`]s: our abort flag
//!   (`TaskMeta::aborted`) and slot (`TaskMeta::slot`) on loom atomics, and
//!   the part of async-task's state machine the protocol relies on,
//!   re-implemented as a contract (a wake of an idle task schedules it,
//!   once; a wake of a scheduled, running or completed task does not hand
//!   out a runnable; a run that returns `Pending` reschedules the task if
//!   it was woken meanwhile). A run is `TaskFuture::poll`'s choice, reduced
//!   (read the flag: cancel, or complete or pend as the task says), and its
//!   end `Core::poll_done`'s call of [`Registry::end`]. `JoinHandle::abort`'s
//!   `is_finished` check is `ModelTask::abort`. The join state (task state,
//!   reference counts, output slot, the `JoinHandle`'s waker) is
//!   async-task's, an established crate (smol's, also under
//!   async-executor): we wrote none, so we do not model its internals.
//! - **The executor around the registry** is [`Exec`], a shim: one FIFO
//!   queue standing in for `Sched` (the queue half of `accept`, and
//!   `next_runnable`), the record of how each task ended, and the thin
//!   `Core` methods that call the registry (`admit`, `wake_slot`,
//!   `reap_aborted`, `poll_done`, `cancel_queued`'s collection of the
//!   batch, and `Core::drop`'s loop), each naming the function it mirrors.
//!   A loom thread-local stands in for `Core::with_current`: how a run, and
//!   a wake on the executor's thread (the fast path), find the executor.
//! - **`SeqCst` accesses**: loom treats them as `AcqRel`, which is too weak
//!   for the one place that relies on their total order (the handshake
//!   between `registry::abort` and `Registry::take_in`); the model's
//!   [`EntryMeta`] adds a `SeqCst` fence after each half's `SeqCst` store,
//!   which loom does model (see [`seq_cst_order`]).
//!
//! # What is not covered
//!
//! - The internals of async-task and atomic-waker (see above), and the
//!   real `Spawner`, the rest of `JoinHandle`, and the executor code around
//!   the registry (the shim above): queues and schedulers, clocks and
//!   counters.
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
//!   `Core::register_remote`'s unknown-queue path and its counters, and
//!   `Spawner::shutdown`
//!   closing the spawn queue from another thread (the models close it on
//!   the executor's thread; it is the same `close`).
//! - Slot reuse: the registry's slab would reuse a freed slot, but no model
//!   frees a slot before it takes in its last task, so an abort request
//!   that names a freed slot finds no task; in production it may find
//!   another task there, which gets a spurious wake.
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
use std::collections::{BTreeSet, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::sync::Notify;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::Shared;
use crate::runtime::registry::live::{Entry, EntryMeta};
use crate::runtime::registry::{self, Registry};
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
/// touches the inbox (`RunUntil::poll` in `src/run.rs`, `Core::polls` in
/// `src/runtime/turn.rs`): register the host waker
/// (`Core::register_runner` → `Shared::register_host`), then
/// loop: `Core::drain_wakes` (`src/runtime/sched.rs`: if `has_remote_wakes`,
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
#[ignore = "known limitation, see the module docs of src/runtime/inbox.rs (# Order)"]
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
/// rescheduling to the end of the run ([`ModelTask::pend`]); a run swaps
/// `SCHEDULED` for `RUNNING`, and completion clears both. Orderings are
/// async-task's: read-modify-writes `AcqRel`, `is_finished` an `Acquire`
/// load. `slot` and `aborted` are `TaskMeta::slot` and `TaskMeta::aborted`,
/// which the real registry code and [`registry::abort`] read and write
/// through [`EntryMeta`].
struct ModelTask {
    /// The task's index in the model's record of endings ([`Exec::endings`]).
    id: usize,
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
    /// A waker's `wake`: `Some(runnable)` for the caller to schedule, if
    /// this wake scheduled the task.
    fn wake(self: &Arc<Self>) -> Option<ModelRunnable> {
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
                Ok(_) => return Some(ModelRunnable(Arc::clone(self))),
                Err(actual) => state = actual,
            }
        }
    }

    /// A wake from another thread: `inbox::schedule` finds no executor
    /// running on this thread and pushes the runnable on the inbox.
    fn wake_remote(self: &Arc<Self>, shared: &Shared<ModelRunnable>) {
        if let Some(runnable) = self.wake() {
            shared.push(runnable);
        }
    }

    /// `JoinHandle::abort` (`src/join.rs`): unless finished, the real abort
    /// half of the handshake, [`registry::abort`].
    fn abort(&self, shared: &Shared<ModelRunnable>) {
        if self.is_finished() {
            return;
        }
        registry::abort(self, shared);
    }

    /// `JoinHandle::is_finished`.
    fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETED != 0
    }

    /// The end of a run whose future returned `Pending` (async-task's
    /// `RawTask::run`): clear `RUNNING`; if a wake came during the run
    /// (`SCHEDULED` is set), schedule the task again (on the executor's
    /// thread: the fast path, `accept`), else it is idle until its next wake.
    fn pend(self: Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let new = if state & SCHEDULED != 0 {
                state & !RUNNING
            } else {
                state & !(RUNNING | SCHEDULED)
            };
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if state & SCHEDULED != 0 {
                        Exec::current().accept(ModelRunnable(self));
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }
}

/// The accesses the registry and the abort make, on loom's atomics, with
/// the orderings they ask for; after a `SeqCst` store (the first access of
/// each half of the handshake, and the only `SeqCst` stores there are),
/// [`seq_cst_order`].
impl EntryMeta for ModelTask {
    fn slot(&self, order: Ordering) -> usize {
        self.slot.load(order)
    }

    fn set_slot(&self, slot: usize, order: Ordering) {
        self.slot.store(slot, order);
        if order == Ordering::SeqCst {
            seq_cst_order();
        }
    }

    fn aborted(&self, order: Ordering) -> bool {
        self.aborted.load(order)
    }

    fn set_aborted(&self, order: Ordering) {
        self.aborted.store(true, order);
        if order == Ordering::SeqCst {
            seq_cst_order();
        }
    }
}

/// Stands in for the single total order of `SeqCst` operations between a
/// `SeqCst` store and a `SeqCst` load of another atomic, where the code
/// relies on it (the abort / take-in handshake: [`registry::abort`] stores
/// `aborted` and loads `slot`, [`Registry::take_in`] stores `slot` and loads
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
/// production orderings and adds this fence on both sides, right after the
/// store (in `ModelTask`'s [`EntryMeta`]); production code has no fence.
fn seq_cst_order() {
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// A model task's runnable: exists while the task is scheduled, and is
/// consumed by its run (as a `Runnable` is).
struct ModelRunnable(TaskRef);

/// What the live-task index keeps of a model task: its waker.
#[derive(Clone)]
struct ModelWaker(TaskRef);

impl Entry for ModelRunnable {
    type Handle = ModelWaker;
    type Meta = ModelTask;

    fn meta(&self) -> &ModelTask {
        &self.0
    }

    fn handle(&self) -> ModelWaker {
        ModelWaker(Arc::clone(&self.0))
    }

    /// The registry wakes on the executor's thread only (an abort request,
    /// the drop): `inbox::schedule` takes the fast path, `Core::wake_local`,
    /// into `accept`.
    fn wake(handle: ModelWaker) {
        if let Some(runnable) = handle.0.wake() {
            Exec::current().accept(runnable);
        }
    }

    /// `Runnable::run`: `TaskFuture::poll` (`src/runtime/task.rs`) reads the
    /// abort flag, relaxed, and drops the future unpolled if it is set; else
    /// it polls the future, which completes or (if `!completes`) returns
    /// `Pending`. A task that ended frees its slot (`Core::poll_done`, which
    /// calls [`Registry::end`]) before async-task marks it completed.
    fn run(self) {
        let task = self.0;
        let exec = Exec::current();
        // Nobody else changes a scheduled task's state.
        let state = task.state.swap(RUNNING, Ordering::AcqRel);
        assert_eq!(state, SCHEDULED, "ran a task that was not scheduled");
        let aborted = task.aborted(Ordering::Relaxed);
        let slot = task.slot(Ordering::Relaxed);
        assert!(
            aborted || !exec.abort_taken.borrow().contains(&slot),
            "polled after the executor took the abort request"
        );
        let ending = if aborted {
            TaskEnding::Cancelled
        } else if task.completes {
            TaskEnding::Completed
        } else {
            task.pend();
            return;
        };
        exec.poll_done(&task, ending);
        // A wake during the run may have set `SCHEDULED`: dropped with
        // the completion, as async-task does.
        task.state.swap(COMPLETED, Ordering::AcqRel);
    }
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskEnding {
    /// Its future was polled and completed.
    Completed,
    /// Its future was dropped unpolled.
    Cancelled,
}

loom::thread_local! {
    /// The executor running on this (loom) thread, as `Core::with_current`
    /// finds it: how a task's run and a wake on the executor's thread reach
    /// it. Weak: the model holds the executor.
    static CURRENT: RefCell<Weak<Exec>> = RefCell::new(Weak::new());
}

/// The executor's single-threaded side: the real [`Registry`], and the
/// smallest shim around it: the queue (standing in for `Sched`: one queue,
/// FIFO) and the model's record of what happened.
struct Exec {
    /// `Core::registry`.
    registry: Registry<ModelRunnable>,
    /// The queue's scheduler.
    queue: RefCell<VecDeque<ModelRunnable>>,
    /// How each task ended, if it did, by task id.
    endings: RefCell<Vec<Option<TaskEnding>>>,
    /// The slots whose abort requests the executor has taken (no model
    /// reuses a slot: each takes in at most one task, after the others).
    abort_taken: RefCell<BTreeSet<usize>>,
}

impl Exec {
    /// An executor without tasks, the current one of this thread
    /// (`Core::enter`).
    fn new() -> Rc<Exec> {
        let exec = Rc::new(Exec {
            registry: Registry::new(),
            queue: RefCell::new(VecDeque::new()),
            endings: RefCell::new(Vec::new()),
            abort_taken: RefCell::new(BTreeSet::new()),
        });
        CURRENT.with(|current| *current.borrow_mut() = Rc::downgrade(&exec));
        exec
    }

    /// The executor of this thread; a task runs and the registry wakes only
    /// there.
    fn current() -> Rc<Exec> {
        CURRENT
            .with(|current| current.borrow().upgrade())
            .expect("the executor's own work ran off its thread")
    }

    /// A new task's id, with no ending yet.
    fn new_id(&self) -> usize {
        let mut endings = self.endings.borrow_mut();
        endings.push(None);
        endings.len() - 1
    }

    /// `count` idle tasks, spawned on the executor's thread (`Core::spawn`:
    /// [`Registry::insert_local`]) and since polled once, waiting for a wake
    /// (so their runnables are gone).
    fn spawn_idle(&self, count: usize) -> Vec<TaskRef> {
        (0..count)
            .map(|_| {
                let id = self.new_id();
                let task = Arc::new(ModelTask {
                    id,
                    slot: AtomicUsize::new(self.registry.next_slot()),
                    state: AtomicUsize::new(0),
                    aborted: AtomicBool::new(false),
                    completes: true,
                });
                // The runnable of its first run, since gone: the task is idle.
                let first_run = ModelRunnable(Arc::clone(&task));
                self.registry.insert_local(&first_run);
                task
            })
            .collect()
    }

    /// A task as `task::spawn` returns it to `Spawner::spawn_at`: scheduled
    /// (its one runnable, `ModelRunnable(task)`, is the caller's, to push on
    /// the spawn queue), not registered with the executor yet
    /// (`TaskMeta::new`: `UNREGISTERED`).
    fn spawned(&self, completes: bool) -> TaskRef {
        Arc::new(ModelTask {
            id: self.new_id(),
            slot: AtomicUsize::new(UNREGISTERED),
            state: AtomicUsize::new(SCHEDULED),
            aborted: AtomicBool::new(false),
            completes,
        })
    }

    fn live(&self) -> usize {
        self.registry.len()
    }

    fn ended(&self) -> usize {
        self.endings.borrow().iter().flatten().count()
    }

    fn endings(&self) -> Vec<Option<TaskEnding>> {
        self.endings.borrow().clone()
    }

    /// `Core::accept`: [`Registry::reap_if_aborted`], else into the queue.
    fn accept(&self, runnable: ModelRunnable) {
        if let Some(runnable) = self.registry.reap_if_aborted(runnable) {
            self.queue.borrow_mut().push_back(runnable);
        }
    }

    /// `Core::admit`: takes in a task drained from the spawn queue
    /// (`register_remote`: [`Registry::take_in`]) and accepts it.
    fn admit(&self, runnable: ModelRunnable) {
        self.registry.take_in(&runnable);
        self.accept(runnable);
    }

    /// `Core::wake_slot` ([`Registry::wake_slot`]), for an abort request,
    /// noted so that a later poll of the slot's task fails the model.
    fn wake_slot(&self, slot: usize) {
        self.abort_taken.borrow_mut().insert(slot);
        self.registry.wake_slot(slot);
    }

    /// `Core::poll_done` for a task that ended: its ending is recorded (once)
    /// and its slot freed ([`Registry::end`]).
    fn poll_done(&self, task: &ModelTask, ending: TaskEnding) {
        let mut endings = self.endings.borrow_mut();
        assert_eq!(endings[task.id], None, "a task ended twice");
        endings[task.id] = Some(ending);
        drop(endings);
        self.registry.end(task);
    }

    /// Runs what is runnable: first the aborted tasks (`Core::reap_aborted`:
    /// [`Registry::run_reaped`]), then the queue (`Core::next_runnable`).
    /// Whether it ran anything.
    fn next(&self) -> bool {
        if self.registry.run_reaped(|| {}) == Some(true) {
            return true;
        }
        let next = self.queue.borrow_mut().pop_front();
        match next {
            Some(runnable) => {
                runnable.run();
                true
            }
            None => false,
        }
    }

    /// The host: polls until `done`, parking between polls.
    fn run_until(&self, shared: &Shared<ModelRunnable>, done: impl Fn(&Exec) -> bool) {
        let (host, waker) = Host::new();
        loop {
            turn(
                shared,
                &waker,
                |runnable| self.accept(runnable),
                |slot| self.wake_slot(slot),
                |runnable| self.admit(runnable),
                || self.next(),
            );
            if done(self) {
                return;
            }
            // A task left runnable but unrun, or idle with an abort that
            // never reaches it, hangs here: deadlock.
            host.park();
        }
    }

    /// `Core::drop` (`src/runtime/mod.rs`), without its give-up path: close
    /// the spawn queue, then until no task is live and the inbox and the
    /// spawn queue are empty, `Core::cancel_live` ([`Registry::cancel_live`]:
    /// wake every live task, then [`Exec::cancel_queued`] until it finds
    /// nothing), and if no task ended, yield and retry.
    fn drop_executor(&self, shared: &Shared<ModelRunnable>) {
        shared.close_spawns();
        loop {
            let live = self.live();
            if live == 0 && shared.is_empty() {
                return;
            }
            self.registry.cancel_live(|| self.cancel_queued(shared));
            if self.live() < live {
                continue;
            }
            // A remote wake has marked a task scheduled (so the wake above
            // did nothing) and not pushed it yet.
            thread::yield_now();
        }
    }

    /// `Core::cancel_queued`: drain the inbox (ignoring abort requests) and
    /// the spawns (taking each in), take the reap list
    /// ([`Registry::append_reaped`]) and the queue, and run each with the
    /// abort flag set ([`Registry::cancel`]).
    fn cancel_queued(&self, shared: &Shared<ModelRunnable>) -> bool {
        let mut batch = Vec::new();
        shared.drain(|runnable| batch.push(runnable), |_| {});
        shared.drain_spawns(|runnable| {
            self.registry.take_in(&runnable);
            batch.push(runnable);
        });
        self.registry.append_reaped(&mut batch);
        batch.extend(self.queue.borrow_mut().drain(..));
        self.registry.cancel(batch)
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
        let shared = Arc::new(Shared::<ModelRunnable>::new_for_model());
        let exec = Exec::new();
        let tasks = exec.spawn_idle(1);
        let waker = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.wake_remote(&shared)
        });
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.abort(&shared)
        });
        // Completed if the remote wake's run came first, else cancelled:
        // both are right, `ModelRunnable::run` checks the rest.
        exec.run_until(&shared, |exec| exec.live() == 0);
        waker.join().unwrap();
        aborter.join().unwrap();
        assert_eq!(exec.ended(), 1);
        assert!(tasks[0].is_finished());
        assert!(shared.is_empty(), "a runnable was left in the inbox");
    });
}

/// An abort alone, of an idle task: the request alone gets the task
/// reaped (the executor wakes it), and it is cancelled, never polled.
#[test]
fn abort_of_an_idle_task() {
    model(|| {
        let shared = Arc::new(Shared::<ModelRunnable>::new_for_model());
        let exec = Exec::new();
        let tasks = exec.spawn_idle(1);
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&tasks[0]));
            move || task.abort(&shared)
        });
        exec.run_until(&shared, |exec| exec.live() == 0);
        aborter.join().unwrap();
        assert_eq!(exec.endings(), vec![Some(TaskEnding::Cancelled)]);
    });
}

/// A task spawned through a `Spawner` is aborted at once through its handle
/// (`spawner.spawn(..).abort()`), racing the executor's take-in of the spawn:
/// [`registry::abort`] (store the flag, load the slot) against
/// [`Registry::take_in`] (store the slot, load the flag). The task's future
/// never completes: it returns `Pending`, and only the abort wakes it. So
/// the task ends only if the abort reaches it, through one side of the
/// handshake or both: the abort finds the slot and sends an abort request
/// (the executor wakes the idle task, or the run finds the flag), or the
/// take-in finds the flag and reaps the task. Checks: the task ends,
/// cancelled (if the abort were lost, the task would stay idle, live and
/// unwoken, the host parked forever: loom reports a deadlock); it is never
/// polled once the executor has taken the abort request.
///
/// Teeth, checked by hand (at 3 preemptions) by weakening the model's
/// accesses in `impl EntryMeta for ModelTask` (the orderings it is asked
/// for, and whether it adds [`seq_cst_order`] after the `SeqCst` store of
/// either half) and nothing else. Checked on the stand-ins this model had
/// before, and again, with the same results, on the real
/// `Registry::take_in` and `registry::abort` (the fence still sits between
/// each half's store and its load):
///
/// - `SeqCst` accesses without [`seq_cst_order`] (loom treats them as
///   `Release` stores and `Acquire` loads), `Release`/`Acquire`, or
///   `Relaxed`, each without the fences: loom reports a deadlock within a
///   few seconds. The abort loads `UNREGISTERED`, the take-in loads
///   `false`, the task is polled, goes idle and is never woken.
/// - The fence on the executor's side only: the same deadlock.
/// - `Relaxed` accesses with both fences: passes, as it should (two
///   `SeqCst` fences forbid the outcome).
/// - The fence on the abort's side only: passes, though the memory
///   model allows both loads of the handshake to read the old value (loom
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
        let shared = Arc::new(Shared::<ModelRunnable>::new_for_model());
        let exec = Exec::new();
        let task = exec.spawned(false);
        let spawner = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&task));
            move || {
                // `Spawner::spawn_at` (no shutdown in this model, so the
                // spawn is accepted), then `abort` on the handle it returns.
                assert!(!shared.spawns_closed());
                assert!(shared.push_spawn(ModelRunnable(Arc::clone(&task))).is_ok());
                task.abort(&shared);
            }
        });
        exec.run_until(&shared, |exec| exec.ended() == 1);
        spawner.join().unwrap();
        assert_eq!(exec.endings(), vec![Some(TaskEnding::Cancelled)]);
        assert_eq!(exec.live(), 0);
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
        let shared = Arc::new(Shared::<ModelRunnable>::new_for_model());
        let exec = Exec::new();
        let task = exec.spawned(true);
        // Spawned through a `Spawner` on the executor's thread, outside a
        // turn: the executor takes it in at its first drain.
        assert!(shared.push_spawn(ModelRunnable(Arc::clone(&task))).is_ok());
        let aborter = thread::spawn({
            let (shared, task) = (Arc::clone(&shared), Arc::clone(&task));
            move || task.abort(&shared)
        });
        exec.run_until(&shared, |exec| exec.ended() == 1);
        aborter.join().unwrap();
        assert_eq!(exec.live(), 0);
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
        let shared = Arc::new(Shared::<ModelRunnable>::new_for_model());
        let exec = Exec::new();
        let tasks = exec.spawn_idle(2);
        let waker = thread::spawn({
            let (shared, tasks) = (Arc::clone(&shared), tasks.clone());
            move || {
                for task in &tasks {
                    task.wake_remote(&shared);
                }
            }
        });
        exec.drop_executor(&shared);
        waker.join().unwrap();
        assert_eq!(exec.endings(), vec![Some(TaskEnding::Cancelled); 2]);
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
