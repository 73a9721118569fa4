//! Property tests: random workloads on a manual clock (deterministic), and
//! random operation sequences checked against a model.
//!
//! - CPU shares of saturated queues follow their weights within a bound
//!   derived from the picker's rules, at every poll boundary.
//! - A queue that is always runnable never waits longer than a bound
//!   derived from the same rules.
//! - Every built-in scheduler hands out every task it is given exactly
//!   once: each task is polled exactly (its pending polls + 1) times.
//! - Spawn / abort / wake / drop-handle / run / drop-executor sequences:
//!   every handle resolves to the outcome a simple model predicts, every
//!   future is polled as often as the model says and dropped exactly once.
//!
//! 256 cases per property by default, so the file runs in about a second in a debug
//! build; `PROPTEST_CASES=n` runs more.

mod common;
use common::{DropLedger, live_tasks, yield_once};

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use clockworker::{
    ArrivalFifo, Clock, DEFAULT_MIN_SLICE, DEFAULT_SCHED_LATENCY, Edf, Executor, ExecutorBuilder,
    GroupFair, JoinError, JoinHandle, LAS, ManualClock, QueueHandle, RunnableFifo, Scheduler,
    Shutdown,
};
use futures::FutureExt;
use proptest::prelude::*;

/// 256 cases (well under a second per property in debug), or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

const US: u64 = 1_000;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap()
}

/// xorshift64*: the per-poll costs of a task, from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

// ================================================================ shares

/// A task of a saturated queue: every poll costs between `lo` and `hi`
/// nanoseconds (equal for a fixed cost), drawn from `seed`.
#[derive(Debug, Clone)]
struct Busy {
    lo: u64,
    hi: u64,
    seed: u64,
}

#[derive(Debug, Clone)]
struct SharesCase {
    sched_latency: u64,
    min_slice: u64,
    /// Weight and tasks of each queue.
    queues: Vec<(u32, Vec<Busy>)>,
}

fn shares_case() -> impl Strategy<Value = SharesCase> {
    let latency = prop_oneof![
        Just(nanos(DEFAULT_SCHED_LATENCY)),
        (500u64..=4_000).prop_map(|us| us * US),
    ];
    let min_slice = prop_oneof![
        Just(nanos(DEFAULT_MIN_SLICE)),
        (50u64..=1_000).prop_map(|us| us * US),
    ];
    // Short, medium and long polls alike (a uniform draw would make most
    // polls long, and runs short in polls).
    let lo = prop_oneof![10u64..100, 100u64..500, 500u64..=2_000];
    let task =
        (lo, 0u64..=2_000, any::<u64>(), any::<bool>()).prop_map(|(lo, extra, seed, fixed)| {
            let hi = if fixed { lo } else { (lo + extra).min(2_000) };
            Busy {
                lo: lo * US,
                hi: hi * US,
                seed,
            }
        });
    let queue = (1u32..=16, prop::collection::vec(task, 1..=3));
    (latency, min_slice, prop::collection::vec(queue, 2..=4)).prop_map(
        |(sched_latency, min_slice, queues)| SharesCase {
            sched_latency,
            min_slice,
            queues,
        },
    )
}

/// The bounds of a case, in nanoseconds of CPU. See [`shares_follow_weights`]
/// for where they come from.
#[derive(Debug)]
struct Bounds {
    total_weight: u64,
    /// `D_k = len_k + p_k + min_slice/2 + SLACK`: how far queue `k` can get
    /// ahead of its share.
    ahead: Vec<u64>,
}

/// Covers the picker's fixed-point rounding (nanoseconds over a whole run).
const SLACK: u64 = 1_000;

impl Bounds {
    fn of(case: &SharesCase) -> Self {
        let total_weight: u64 = case.queues.iter().map(|(w, _)| u64::from(*w)).sum();
        let ahead = case
            .queues
            .iter()
            .map(|(weight, tasks)| {
                let len =
                    (case.sched_latency * u64::from(*weight) / total_weight).max(case.min_slice);
                let longest_poll = tasks.iter().map(|t| t.hi).max().unwrap();
                len + longest_poll + case.min_slice / 2 + SLACK
            })
            .collect();
        Bounds {
            total_weight,
            ahead,
        }
    }

    /// How far queue `k` can fall behind its share: `Σ_{j≠k} D_j`.
    fn behind(&self, k: usize) -> u64 {
        self.ahead.iter().sum::<u64>() - self.ahead[k]
    }

    /// The longest a queue of weight `w` can go without a poll:
    /// `(W / w) · Σ_j D_j`.
    fn gap(&self, weight: u32) -> u64 {
        self.total_weight * self.ahead.iter().sum::<u64>() / u64::from(weight)
    }
}

/// What a saturated run measured.
#[derive(Debug, Default)]
struct SharesRun {
    /// CPU of each queue's polls.
    cpu: Vec<u64>,
    /// CPU of all polls.
    total: u64,
    /// End of each queue's last poll (clock time = total CPU so far).
    last_end: Vec<u64>,
    /// Longest stretch without a poll, per queue.
    max_gap: Vec<u64>,
    /// The first poll boundary where a queue was outside its bounds.
    violation: Option<String>,
    polls: u64,
}

/// Runs saturated queues (their tasks never finish, and yield after every
/// poll) until `until` nanoseconds of CPU have been used, checking the share
/// bounds after every poll.
fn run_saturated(case: &SharesCase, bounds: &Bounds, until: u64) -> SharesRun {
    let (clock, hand) = Clock::manual();
    let mut builder = ExecutorBuilder::new()
        .with_sched_latency(Duration::from_nanos(case.sched_latency))
        .with_min_slice(Duration::from_nanos(case.min_slice))
        .with_clock(clock);
    for (k, (weight, _)) in case.queues.iter().enumerate() {
        builder = builder.with_queue(k, *weight);
    }
    let executor = builder.build().unwrap();
    let n = case.queues.len();
    let run = Rc::new(RefCell::new(SharesRun {
        cpu: vec![0; n],
        last_end: vec![0; n],
        max_gap: vec![0; n],
        ..SharesRun::default()
    }));
    let weights: Vec<u64> = case.queues.iter().map(|(w, _)| u64::from(*w)).collect();
    let limits: Rc<Vec<(i128, i128)>> = Rc::new(
        (0..n)
            .map(|k| {
                let w = i128::from(bounds.total_weight);
                (
                    -(i128::from(bounds.behind(k)) * w),
                    i128::from(bounds.ahead[k]) * w,
                )
            })
            .collect(),
    );
    let weights = Rc::new(weights);
    for (k, (_, tasks)) in case.queues.iter().enumerate() {
        let queue = executor.queue(k).unwrap();
        for task in tasks {
            let (run, hand, weights, limits) = (
                Rc::clone(&run),
                hand.clone(),
                Rc::clone(&weights),
                Rc::clone(&limits),
            );
            let total_weight = bounds.total_weight;
            let (lo, hi, mut rng) = (task.lo, task.hi, Rng::new(task.seed));
            drop(queue.spawn(async move {
                loop {
                    let cost = lo + rng.below(hi - lo + 1);
                    {
                        let mut run = run.borrow_mut();
                        let gap = run.total - run.last_end[k];
                        run.max_gap[k] = run.max_gap[k].max(gap);
                        hand.advance(Duration::from_nanos(cost));
                        run.total += cost;
                        run.cpu[k] += cost;
                        run.last_end[k] = run.total;
                        run.polls += 1;
                        if run.violation.is_none() {
                            // (cpu_j − T·w_j/W)·W, exact in integers.
                            for (j, &(low, high)) in limits.iter().enumerate() {
                                let off = i128::from(run.cpu[j]) * i128::from(total_weight)
                                    - i128::from(run.total) * i128::from(weights[j]);
                                if off < low || off > high {
                                    run.violation = Some(format!(
                                        "after {} polls, T = {} ns: queue {j} has {} ns, \
                                         share {:.0} ns, allowed [{:.0}, {:.0}] ns around it",
                                        run.polls,
                                        run.total,
                                        run.cpu[j],
                                        run.total as f64 * weights[j] as f64 / total_weight as f64,
                                        low as f64 / total_weight as f64,
                                        high as f64 / total_weight as f64,
                                    ));
                                }
                            }
                        }
                    }
                    yield_once().await;
                }
            }));
        }
    }
    let watched = Rc::clone(&run);
    futures::executor::block_on(executor.run_until(async move {
        while watched.borrow().total < until {
            yield_once().await;
        }
    }));
    drop(executor);
    Rc::try_unwrap(run).unwrap().into_inner()
}

/// How long each run lasts: long enough that the bounds are at most 1% of
/// it (the shares are then within 1% of the weights).
fn run_length(bounds: &Bounds) -> u64 {
    let widest = (0..bounds.ahead.len())
        .map(|k| bounds.ahead[k].max(bounds.behind(k)))
        .max()
        .unwrap();
    100 * widest
}

proptest! {
    #![proptest_config(config())]

    /// 2–4 queues of weights 1..=16, each saturated by 1–3 tasks whose polls
    /// cost 10 µs..2 ms (fixed, or random per poll), with the default
    /// `sched_latency` / `min_slice` or random ones (0.5–4 ms / 50 µs–1 ms).
    /// CPU is measured by summing the manual-clock time each queue's tasks
    /// advanced.
    ///
    /// **Bound.** Let `W = Σ w`, `len_k = max(sched_latency·w_k/W, min_slice)`
    /// (queue `k`'s slice), `p_k` its longest poll, and
    /// `D_k = len_k + p_k + min_slice/2`. With every queue always runnable,
    /// at every poll boundary
    ///
    /// ```text
    /// −Σ_{j≠k} D_j  ≤  cpu_k − T·w_k/W  ≤  D_k
    /// ```
    ///
    /// Why: `cpu_k − T·w_k/W` is minus queue `k`'s lag `w_k·(V − v_k)` (all
    /// queues start at the same virtual time). The picker starts a slice
    /// only for an eligible queue (lag ≥ 0), and renews an expired slice
    /// only for a queue less than `min_slice/2` ahead; a slice ends at the
    /// first poll boundary after `len_k`, so it runs less than `len_k + p_k`
    /// and the lag never goes below `−D_k`. Weighted lags sum to zero, so
    /// no lag exceeds `Σ_{j≠k} D_j`. Plus 1 µs for fixed-point rounding.
    /// For two queues the bound is at most `sched_latency + max poll +
    /// min_slice/2`: "(sched_latency + max poll) over the run's length".
    ///
    /// The run lasts 100× the widest bound, so at its end each share is
    /// within 1% of `w_k / W`; the check at every poll boundary is the
    /// stronger statement.
    #[test]
    fn shares_follow_weights(case in shares_case()) {
        let bounds = Bounds::of(&case);
        let run = run_saturated(&case, &bounds, run_length(&bounds));
        prop_assert!(run.violation.is_none(), "{}\n{bounds:?}", run.violation.unwrap());
        for (k, (weight, _)) in case.queues.iter().enumerate() {
            let share = run.cpu[k] as f64 / run.total as f64;
            let expected = f64::from(*weight) / bounds.total_weight as f64;
            let allowed = bounds.ahead[k].max(bounds.behind(k)) as f64 / run.total as f64;
            prop_assert!(
                (share - expected).abs() <= allowed && allowed <= 0.01,
                "queue {k}: share {share:.4}, expected {expected:.4} ± {allowed:.4}"
            );
        }
    }

    /// The same workloads: for each (always runnable) queue, the longest
    /// stretch of time during which none of its tasks was polled — from the
    /// start, or from the end of one of its polls to the start of the next.
    ///
    /// **Bound.** `gap_k ≤ (W / w_k) · Σ_j D_j` (notation of
    /// `shares_follow_weights`). Why: while queue `k` waits, its lag grows
    /// by `w_k / W` per nanosecond the others run, and it can only grow
    /// from `−D_k` (the least it has after a poll) to `Σ_{j≠k} D_j` (the
    /// most it can have). The factor `W / w_k` is not slack: a queue of
    /// weight 1 next to weight 48 whose poll just took 2 ms has had 48 × 2
    /// ms of the others' CPU coming to it, and must wait that long to keep
    /// the shares (for equal weights and two queues, the bound is
    /// `2·(D_1 + D_2)`).
    #[test]
    fn no_runnable_queue_waits_too_long(case in shares_case()) {
        let bounds = Bounds::of(&case);
        let run = run_saturated(&case, &bounds, run_length(&bounds) / 4);
        for (k, (weight, _)) in case.queues.iter().enumerate() {
            let bound = bounds.gap(*weight);
            prop_assert!(
                run.max_gap[k] <= bound,
                "queue {k} (weight {weight}) waited {} ns, bound {bound} ns\n{bounds:?}",
                run.max_gap[k]
            );
        }
    }
}

// ================================================================ schedulers

/// The built-in schedulers, and settings of them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    RunnableFifo,
    ArrivalFifo,
    Las,
    LasExact,
    GroupFair,
    GroupFairExact,
    GroupFairWeighted,
    Edf,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::RunnableFifo,
        Kind::ArrivalFifo,
        Kind::Las,
        Kind::LasExact,
        Kind::GroupFair,
        Kind::GroupFairExact,
        Kind::GroupFairWeighted,
        Kind::Edf,
    ];

    fn build(self, builder: ExecutorBuilder<usize>, key: usize) -> ExecutorBuilder<usize> {
        fn with(
            builder: ExecutorBuilder<usize>,
            key: usize,
            scheduler: impl Scheduler,
        ) -> ExecutorBuilder<usize> {
            builder.with_queue_scheduler(key, 1 + key as u32 % 3, scheduler)
        }
        match self {
            Kind::RunnableFifo => with(builder, key, RunnableFifo::new()),
            Kind::ArrivalFifo => with(builder, key, ArrivalFifo::new()),
            Kind::Las => with(builder, key, LAS::new()),
            Kind::LasExact => with(builder, key, LAS::new().with_granularity(Duration::ZERO)),
            Kind::GroupFair => with(builder, key, GroupFair::new()),
            Kind::GroupFairExact => with(
                builder,
                key,
                GroupFair::new().with_granularity(Duration::ZERO),
            ),
            Kind::GroupFairWeighted => with(
                builder,
                key,
                // Weight 0 counts as 1.
                GroupFair::with_weights(|group| (group % 5) as u32),
            ),
            Kind::Edf => with(builder, key, Edf::new()),
        }
    }
}

/// Which group a task joins.
#[derive(Debug, Clone, Copy)]
enum GroupPick {
    /// Its parent's, if any (`spawn`).
    Inherit,
    /// None, even under a grouped parent (`no_group`).
    Ungrouped,
    /// One of a few groups (`group(g)`).
    Group(u8),
}

/// A task: its options, and what each of its polls does.
#[derive(Debug, Clone)]
struct TaskSpec {
    group: GroupPick,
    deadline_us: Option<u32>,
    /// One entry per poll that returns `Pending`: its cost in µs, and
    /// whether it parks (woken later by the driver) or yields (wakes
    /// itself during the poll).
    steps: Vec<(u16, bool)>,
    /// Cost of the last poll, which completes.
    last_cost: u16,
    /// Driver turn at which a top-level task is spawned.
    spawn_turn: u8,
    /// Children: the poll in which each is spawned, and the child.
    children: Vec<(u8, TaskSpec)>,
}

fn leaf_spec() -> impl Strategy<Value = TaskSpec> {
    let group = prop_oneof![
        2 => Just(GroupPick::Inherit),
        1 => Just(GroupPick::Ungrouped),
        3 => (0u8..4).prop_map(GroupPick::Group),
    ];
    (
        group,
        prop::option::of(0u32..2_000),
        prop::collection::vec((0u16..300, any::<bool>()), 0..6),
        0u16..300,
        0u8..12,
    )
        .prop_map(
            |(group, deadline_us, steps, last_cost, spawn_turn)| TaskSpec {
                group,
                deadline_us,
                steps,
                last_cost,
                spawn_turn,
                children: Vec::new(),
            },
        )
}

fn task_spec() -> impl Strategy<Value = TaskSpec> {
    (
        leaf_spec(),
        prop::collection::vec((any::<u8>(), leaf_spec()), 0..3),
    )
        .prop_map(|(mut spec, children)| {
            spec.children = children;
            spec
        })
}

/// A flattened task: the spec, and the children to spawn in each poll.
struct Flat {
    spec: TaskSpec,
    children_at: Vec<Vec<usize>>,
}

fn flatten(specs: &[TaskSpec]) -> (Vec<Flat>, Vec<usize>) {
    let mut flat = Vec::new();
    let mut top = Vec::new();
    fn push(flat: &mut Vec<Flat>, spec: &TaskSpec) -> usize {
        let index = flat.len();
        let polls = spec.steps.len() + 1;
        flat.push(Flat {
            spec: TaskSpec {
                children: Vec::new(),
                ..spec.clone()
            },
            children_at: vec![Vec::new(); polls],
        });
        for (at, child) in &spec.children {
            let child_index = push(flat, child);
            flat[index].children_at[usize::from(*at) % polls].push(child_index);
        }
        index
    }
    for spec in specs {
        top.push(push(&mut flat, spec));
    }
    (flat, top)
}

/// Where parked tasks wait: the driver bumps the epoch and wakes them.
#[derive(Default)]
struct ParkingLot {
    epoch: u64,
    wakers: Vec<Waker>,
}

fn park(lot: Rc<RefCell<ParkingLot>>) -> impl Future<Output = ()> {
    let mut parked_at = None;
    std::future::poll_fn(move |cx| {
        let mut lot = lot.borrow_mut();
        match parked_at {
            Some(epoch) if lot.epoch > epoch => Poll::Ready(()),
            _ => {
                parked_at.get_or_insert(lot.epoch);
                lot.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}

/// Bumps the epoch and wakes every parked task.
fn unpark(lot: &RefCell<ParkingLot>) {
    let wakers = {
        let mut lot = lot.borrow_mut();
        lot.epoch += 1;
        std::mem::take(&mut lot.wakers)
    };
    wakers.into_iter().for_each(Waker::wake);
}

/// What the tasks of a scheduler case share.
struct SchedCtx {
    queue: QueueHandle,
    hand: ManualClock,
    tasks: Vec<Flat>,
    polls: Vec<Cell<u32>>,
    handles: RefCell<Vec<Option<JoinHandle<usize>>>>,
    lot: Rc<RefCell<ParkingLot>>,
    ledger: DropLedger,
}

fn spawn_spec(ctx: &Rc<SchedCtx>, index: usize) {
    let spec = &ctx.tasks[index].spec;
    let mut builder = ctx.queue.task();
    builder = match spec.group {
        GroupPick::Inherit => builder,
        GroupPick::Ungrouped => builder.no_group(),
        GroupPick::Group(group) => builder.group(group),
    };
    if let Some(us) = spec.deadline_us {
        builder = builder.deadline(Duration::from_micros(u64::from(us)));
    }
    let handle = builder.spawn(spec_future(Rc::clone(ctx), index));
    ctx.handles.borrow_mut()[index] = Some(handle);
}

/// The task `index`: counts every poll it gets (a spurious one too).
fn spec_future(ctx: Rc<SchedCtx>, index: usize) -> impl Future<Output = usize> {
    let token = ctx.ledger.token(index);
    let counter = Rc::clone(&ctx);
    let mut body = Box::pin(async move {
        let _token = token;
        let flat = &ctx.tasks[index];
        for poll in 0..=flat.spec.steps.len() {
            let cost = flat
                .spec
                .steps
                .get(poll)
                .map_or(flat.spec.last_cost, |step| step.0);
            ctx.hand.advance(Duration::from_micros(u64::from(cost)));
            for &child in &flat.children_at[poll] {
                spawn_spec(&ctx, child);
            }
            match flat.spec.steps.get(poll) {
                Some((_, true)) => park(Rc::clone(&ctx.lot)).await,
                Some((_, false)) => yield_once().await,
                None => {}
            }
        }
        index
    });
    std::future::poll_fn(move |cx| {
        let polls = &counter.polls[index];
        polls.set(polls.get() + 1);
        body.as_mut().poll(cx)
    })
}

/// Runs `specs` on one queue with `kind`'s scheduler, on a manual clock.
/// The driver spawns top-level tasks at their turn and wakes parked tasks,
/// alternately from inside the run (a local wake) and from outside it,
/// between two runs (through the inbox). Returns an error message, if any.
fn run_scheduler_case(kind: Kind, specs: &[TaskSpec]) -> Result<(), String> {
    let (flat, top) = flatten(specs);
    let n = flat.len();
    let (clock, hand) = Clock::manual();
    let executor = kind
        .build(ExecutorBuilder::new().with_clock(clock), 0)
        .build()
        .unwrap();
    let ctx = Rc::new(SchedCtx {
        queue: executor.queue(0).unwrap(),
        hand,
        tasks: flat,
        polls: (0..n).map(|_| Cell::new(0)).collect(),
        handles: RefCell::new((0..n).map(|_| None).collect()),
        lot: Rc::default(),
        ledger: DropLedger::new(n),
    });
    let all_done = || {
        ctx.handles
            .borrow()
            .iter()
            .all(|handle| handle.as_ref().is_some_and(JoinHandle::is_finished))
    };
    let turn = Cell::new(0u32);
    let mut runs = 0;
    while !all_done() {
        runs += 1;
        if runs > 10_000 {
            let stuck: Vec<_> = (0..n)
                .filter(|&i| {
                    !ctx.handles.borrow()[i]
                        .as_ref()
                        .is_some_and(JoinHandle::is_finished)
                })
                .collect();
            return Err(format!("tasks never finished: {stuck:?}"));
        }
        futures::executor::block_on(executor.run_until(async {
            for _ in 0..20 {
                let now = turn.get();
                turn.set(now + 1);
                for &index in &top {
                    if u32::from(ctx.tasks[index].spec.spawn_turn) == now {
                        spawn_spec(&ctx, index);
                    }
                }
                if now % 2 == 0 {
                    unpark(&ctx.lot);
                }
                if all_done() {
                    break;
                }
                yield_once().await;
            }
        }));
        unpark(&ctx.lot);
    }
    for index in 0..n {
        let handle = ctx.handles.borrow_mut()[index].take().unwrap();
        match handle.now_or_never() {
            Some(Ok(value)) if value == index => {}
            other => return Err(format!("task {index}: {other:?}")),
        }
        let expected = ctx.tasks[index].spec.steps.len() as u32 + 1;
        let polls = ctx.polls[index].get();
        if polls != expected {
            return Err(format!("task {index}: {polls} polls, expected {expected}"));
        }
    }
    let not_once = ctx.ledger.not_once();
    if !not_once.is_empty() {
        return Err(format!("futures not dropped exactly once: {not_once:?}"));
    }
    if live_tasks(&executor) != 0 {
        return Err(format!(
            "{} tasks left in the executor",
            live_tasks(&executor)
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// For each built-in scheduler (LAS and GroupFair with the default and
    /// zero granularity, GroupFair also with per-group weights): random
    /// tasks (random groups among four, or none, or inherited from a parent;
    /// random deadlines or none; 0–5 pending polls each, parking or
    /// self-yielding; random CPU per poll; spawned at random turns, and
    /// children spawned from inside tasks), on one queue.
    ///
    /// Proves: every task is polled exactly (pending polls + 1) times, so
    /// the scheduler handed it out once per push, never lost or duplicated
    /// it; its handle gives its own output once; its future is dropped once;
    /// and no task is left in the executor.
    #[test]
    fn schedulers_hand_out_every_task_exactly_once(
        specs in prop::collection::vec(task_spec(), 1..24),
    ) {
        for kind in Kind::ALL {
            if let Err(message) = run_scheduler_case(kind, &specs) {
                prop_assert!(false, "{kind:?}: {message}");
            }
        }
    }
}

// ================================================================ model

/// An operation on the executor and its tasks. Task operands are indices
/// into the tasks spawned so far (modulo their number).
#[derive(Debug, Clone)]
enum Op {
    /// Spawns a task into queue `queue % 5` (one queue per scheduler) that
    /// completes once its gate is open; the gate starts open if `open`.
    Spawn {
        queue: u8,
        group: Option<u8>,
        deadline_us: Option<u16>,
        open: bool,
    },
    /// Opens the task's gate (a wake from outside the executor); the wake
    /// comes from another thread if `remote`.
    Open(u16, bool),
    /// `JoinHandle::abort`.
    Abort(u16),
    /// Drops the task's `JoinHandle` (detaches the task).
    DropHandle(u16),
    /// Runs the executor until it parks (nothing left to run).
    Run,
    /// Drops the executor.
    DropExecutor,
    /// `Executor::shutdown`: `Cancel` if `true`, else a drain without
    /// deadline. Takes effect at the next run; spawns from here on (all made
    /// from outside the executor's turns) are refused.
    Shutdown(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), prop::option::of(0u8..3), prop::option::of(0u16..500), any::<bool>())
            .prop_map(|(queue, group, deadline_us, open)| Op::Spawn { queue, group, deadline_us, open }),
        3 => (any::<u16>(), any::<bool>()).prop_map(|(task, remote)| Op::Open(task, remote)),
        2 => any::<u16>().prop_map(Op::Abort),
        1 => any::<u16>().prop_map(Op::DropHandle),
        3 => Just(Op::Run),
        1 => Just(Op::DropExecutor),
        1 => any::<bool>().prop_map(Op::Shutdown),
    ]
}

/// A gate a task waits on, opened by the test.
#[derive(Default)]
struct Gate {
    open: bool,
    waker: Option<Waker>,
}

/// The model of one task.
#[derive(Debug, Default, Clone)]
struct Model {
    gate_open: bool,
    polls: u32,
    /// Parked: polled, returned `Pending`, waiting for its gate.
    parked: bool,
    completed: bool,
    /// Aborted before it completed.
    aborted: bool,
    /// Its future is gone (completed, cancelled, or never spawned).
    ended: bool,
    detached: bool,
}

/// Polls `executor.run()` until it returns `Pending` without having arranged
/// to be polled again: the executor has nothing left to run.
fn run_until_parked(executor: &Executor<usize>) {
    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let mut run = pin!(executor.run());
    for _ in 0..100_000 {
        flag.0.store(false, Ordering::SeqCst);
        if run.as_mut().poll(&mut cx).is_ready() {
            // Shut down: nothing is left to run, ever.
            assert!(executor.is_shut_down());
            return;
        }
        if !flag.0.load(Ordering::SeqCst) {
            return;
        }
    }
    panic!("the executor never parked");
}

fn five_queue_executor() -> Rc<Executor<usize>> {
    let mut builder = ExecutorBuilder::new();
    for (key, kind) in [
        Kind::RunnableFifo,
        Kind::ArrivalFifo,
        Kind::Las,
        Kind::GroupFair,
        Kind::Edf,
    ]
    .into_iter()
    .enumerate()
    {
        builder = kind.build(builder, key);
    }
    builder.build().unwrap()
}

fn check_model(ops: &[Op]) -> Result<(), String> {
    let mut executor = Some(five_queue_executor());
    let mut stale_queue: Option<QueueHandle> = None;
    // `Some(cancel)` once `Executor::shutdown` was called.
    let mut shutdown: Option<bool> = None;
    let ledger = DropLedger::new(ops.len());
    let mut models: Vec<Model> = Vec::new();
    let mut handles: Vec<Option<JoinHandle<usize>>> = Vec::new();
    let mut gates: Vec<Rc<RefCell<Gate>>> = Vec::new();
    let polls: Rc<RefCell<Vec<u32>>> = Rc::default();
    let pick = |operand: u16, n: usize| (n > 0).then(|| usize::from(operand) % n);
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Spawn {
                queue,
                group,
                deadline_us,
                open,
            } => {
                let index = models.len();
                let gate = Rc::new(RefCell::new(Gate { open, waker: None }));
                polls.borrow_mut().push(0);
                let token = ledger.token(index);
                let future = {
                    let (gate, polls) = (Rc::clone(&gate), Rc::clone(&polls));
                    std::future::poll_fn(move |cx| {
                        let _token = &token;
                        polls.borrow_mut()[index] += 1;
                        let mut gate = gate.borrow_mut();
                        if gate.open {
                            Poll::Ready(index)
                        } else {
                            gate.waker = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    })
                };
                let mut model = Model {
                    gate_open: open,
                    ..Model::default()
                };
                let handle = match &executor {
                    Some(executor) if shutdown.is_some() => {
                        // Refused: a spawn from outside a turn, after a
                        // shutdown. Dropped at once, never polled.
                        model.ended = true;
                        executor
                            .queue(usize::from(queue) % 5)
                            .unwrap()
                            .spawn(future)
                    }
                    Some(executor) => {
                        let queue = executor.queue(usize::from(queue) % 5).unwrap();
                        let mut builder = queue.task();
                        if let Some(group) = group {
                            builder = builder.group(group);
                        }
                        if let Some(us) = deadline_us {
                            builder = builder.deadline(Duration::from_micros(u64::from(us)));
                        }
                        builder.spawn(future)
                    }
                    None => {
                        // Through a queue handle kept from before the drop:
                        // the future is dropped at once, never polled.
                        model.ended = true;
                        stale_queue
                            .as_ref()
                            .expect("kept when the executor was dropped")
                            .spawn(future)
                    }
                };
                models.push(model);
                handles.push(Some(handle));
                gates.push(gate);
            }
            Op::Open(operand, remote) => {
                let Some(i) = pick(operand, models.len()) else {
                    continue;
                };
                let waker = {
                    let mut gate = gates[i].borrow_mut();
                    gate.open = true;
                    gate.waker.take()
                };
                if let Some(waker) = waker {
                    if remote {
                        std::thread::scope(|scope| {
                            scope.spawn(move || waker.wake());
                        });
                    } else {
                        waker.wake();
                    }
                }
                models[i].gate_open = true;
            }
            Op::Abort(operand) => {
                let Some(i) = pick(operand, models.len()) else {
                    continue;
                };
                if let Some(handle) = &handles[i] {
                    handle.abort();
                    if !models[i].completed {
                        models[i].aborted = true;
                    }
                }
            }
            Op::DropHandle(operand) => {
                let Some(i) = pick(operand, models.len()) else {
                    continue;
                };
                drop(handles[i].take());
                models[i].detached = true;
            }
            Op::Run => {
                let Some(executor) = &executor else {
                    continue;
                };
                run_until_parked(executor);
                if shutdown == Some(true) {
                    // Cancelled before any further poll.
                    for model in models.iter_mut().filter(|m| !m.ended) {
                        model.ended = true;
                        model.aborted |= !model.completed;
                    }
                }
                for model in models.iter_mut().filter(|m| !m.ended) {
                    if model.aborted {
                        model.ended = true;
                    } else if model.polls == 0 || (model.parked && model.gate_open) {
                        model.polls += 1;
                        if model.gate_open {
                            model.completed = true;
                            model.ended = true;
                            model.parked = false;
                        } else {
                            model.parked = true;
                        }
                    }
                }
                check_state(step, &models, &handles, &polls.borrow(), &ledger)?;
                // Shut down exactly when a shutdown was asked for and no
                // task is left (a drain waits for parked tasks).
                let done = shutdown.is_some() && models.iter().all(|m| m.ended);
                if executor.is_shut_down() != done {
                    return Err(format!(
                        "after op {step}: is_shut_down {}, expected {done}",
                        executor.is_shut_down()
                    ));
                }
            }
            Op::Shutdown(cancel) => {
                let Some(executor) = &executor else {
                    continue;
                };
                executor.shutdown(if cancel {
                    Shutdown::Cancel
                } else {
                    Shutdown::Drain { deadline: None }
                });
                shutdown = Some(shutdown.unwrap_or(false) || cancel);
            }
            Op::DropExecutor => {
                let Some(dropped) = executor.take() else {
                    continue;
                };
                stale_queue = Some(dropped.queue(0).unwrap());
                drop(dropped);
                for model in &mut models {
                    model.ended = true;
                    if !model.completed {
                        model.aborted = true;
                    }
                }
                check_state(step, &models, &handles, &polls.borrow(), &ledger)?;
            }
        }
    }
    // The end: drop the executor (if still there), then every handle must
    // have resolved as the model says.
    drop(executor.take());
    for model in &mut models {
        model.ended = true;
    }
    check_state(ops.len(), &models, &handles, &polls.borrow(), &ledger)?;
    for (i, handle) in handles.into_iter().enumerate() {
        let Some(handle) = handle else { continue };
        let result = handle
            .now_or_never()
            .ok_or_else(|| format!("task {i}: unresolved after the executor's drop"))?;
        match (&result, models[i].completed) {
            (Ok(value), true) if *value == i => {}
            (Err(JoinError::Cancelled), false) => {}
            _ => {
                return Err(format!("task {i}: {result:?}, model {:?}", models[i]));
            }
        }
    }
    Ok(())
}

/// Compares what can be observed now with the model: poll counts, drops,
/// and which handles have finished.
fn check_state(
    step: usize,
    models: &[Model],
    handles: &[Option<JoinHandle<usize>>],
    polls: &[u32],
    ledger: &DropLedger,
) -> Result<(), String> {
    for (i, model) in models.iter().enumerate() {
        if polls[i] != model.polls {
            return Err(format!(
                "after op {step}: task {i} polled {} times, model {model:?}",
                polls[i]
            ));
        }
        let drops = ledger.drops(i);
        if drops != usize::from(model.ended) {
            return Err(format!(
                "after op {step}: task {i} dropped {drops} times, model {model:?}"
            ));
        }
        if let Some(handle) = &handles[i] {
            if handle.is_finished() != model.ended {
                return Err(format!(
                    "after op {step}: task {i} is_finished {}, model {model:?}",
                    handle.is_finished()
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Random sequences of up to 60 operations — spawn (into one of five
    /// queues, one per built-in scheduler, with random groups and
    /// deadlines), open a task's gate (a wake from outside the executor, on
    /// this thread or another), abort, drop a handle, run the executor until
    /// it parks, drop the executor (later spawns go through a stale queue
    /// handle), shut it down (drain or cancel; later spawns are refused) —
    /// checked
    /// against a model of each task: never polled / parked / completed /
    /// aborted / cancelled with the executor.
    ///
    /// After every run and drop, and at the end (after the executor is
    /// dropped): each task was polled exactly as often as the model says
    /// (once per run in which it was runnable: never after an abort), its
    /// future dropped once if the model says it ended and not at all
    /// otherwise, `is_finished` agrees; at the end every kept handle
    /// resolves to `Ok(its output)` if the model completed it, else
    /// `Cancelled` (aborted before completing, dropped with the executor,
    /// cancelled by a shutdown, or spawned after either). After every run
    /// following a shutdown, the executor reports itself shut down exactly
    /// when the model has no live task.
    #[test]
    fn operation_sequences_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        if let Err(message) = check_model(&ops) {
            prop_assert!(false, "{message}");
        }
    }
}
