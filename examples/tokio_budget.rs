//! Tasks that use Tokio resources, under Clockworker and under Tokio: what
//! Tokio's cooperative budget does to them.
//!
//! ```sh
//! cargo run --release --example tokio_budget
//! cargo run --release --example tokio_budget -- --runs 3 --json
//! ```
//!
//! # Background
//!
//! Tokio grants each poll of one of its tasks a budget of 128 operations on
//! Tokio resources (`tokio::task::coop`): once the budget is spent, a channel
//! `recv`, a socket read or a timer returns `Pending` and wakes the task, even
//! with data ready, so that the task hands the thread back. A Clockworker
//! executor is a single Tokio task, so every task it polls in one turn shares
//! the budget Tokio granted to that turn. Once it is spent, each later poll of
//! the turn finds its resource "not ready", returns at once and is queued
//! again: more polls for the same work, and CPU shares that follow the number
//! of polls rather than the queues' weights. This benchmark measures both.
//!
//! # Setup
//!
//! Everything runs on a Tokio current-thread runtime, built fresh for each run.
//!
//! Case A, "100 channels": 100 tasks each drain their own unbounded
//! `tokio::sync::mpsc` channel of 10,000 items. The channels are filled, and
//! their senders dropped, before the clock starts; the clock stops when every
//! task has seen its channel close. Columns:
//!
//! 1. `LocalSet`: the baseline; `spawn_local` per task, one budget per task poll.
//! 2. `CW run_until`: Clockworker, one queue, defaults, driven by
//!    `rt.block_on(executor.run_until(..))`: Tokio grants a budget per poll of
//!    the `block_on` future.
//! 3. `CW spawn_local(run)`: the same executor run as a task of a `LocalSet`,
//!    `local.spawn_local(executor.run())`: a budget per poll of that task.
//! 4. `CW unconstrained`: column 2 inside `tokio::task::unconstrained`, no
//!    budget at all (each task drains its channel in one poll): a reference,
//!    not a goal.
//!
//! Task polls are counted by a wrapper future around each task in every
//! column; the Clockworker columns report `executor.stats().polls` (the two
//! counts agree).
//!
//! Case B, "weights 99:1": two tasks, one in queue `Fg` (weight 99), one in
//! `Bg` (weight 1). Each loops on its own always-ready unbounded channel: it
//! receives an item, spins about 1 µs, and sends the item back. The executor
//! runs for a window (`--window-ms`, default 300) of a host
//! `tokio::time::sleep`, in the shapes of columns 2 and 3 (unconstrained, a
//! task whose channel is always ready would never return). Reported: each
//! queue's CPU time (`QueueStats::cpu_time`) and items processed, and Fg/Bg
//! shares of both. Both shares count: a poll told "not ready" is CPU time
//! charged to its queue with no work done, so a queue can get its CPU share
//! and still process nothing.
//!
//! # Reading the output
//!
//! Figures are medians over `--runs` (default 5). The goals, each marked PASS
//! or MISS, for the two Clockworker shapes with Tokio's budget in force:
//!
//! - Case A: task polls at most 2× `LocalSet`'s, wall time at most 1.3×;
//! - Case B: the Fg/Bg shares of CPU time and of items within 2 points of
//!   99/1, and Bg's share of items at least 0.5 % (half its due): a starved
//!   Bg, 0 %, would otherwise pass, being within 2 points of 1 %.
//!
//! A MISS on polls means tasks are polled only to be told their ready channel
//! is not ready. `--json` prints every figure as JSON on stdout (the tables go
//! to stderr). Timings only mean something on an otherwise idle machine.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, Shutdown};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::LocalSet;

const USAGE: &str = "\
Tokio's cooperative budget under Clockworker and under Tokio.

USAGE: cargo run --release --example tokio_budget -- [OPTIONS]

OPTIONS:
  --runs N        runs per column; report medians [default: 5]
  --window-ms N   Case B: how long each run lasts [default: 300]
  --json          print every figure as JSON on stdout (the tables go to stderr)
";

/// Case A's tasks (one channel each) and items per channel.
const TASKS: usize = 100;
const ITEMS: u64 = 10_000;

struct Config {
    runs: usize,
    window: Duration,
    json: bool,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        runs: 5,
        window: Duration::from_millis(300),
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut number = || -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag}: `{value}` is not a positive number")),
            }
        };
        match flag.as_str() {
            "--runs" => config.runs = number()? as usize,
            "--window-ms" => config.window = Duration::from_millis(number()?),
            "--json" => config.json = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    Ok(config)
}

/// How the tasks are run: on Tokio alone, or in a Clockworker executor on Tokio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    LocalSet,
    RunUntil,
    SpawnLocalRun,
    Unconstrained,
}

impl Shape {
    const ALL: [Shape; 4] = [
        Shape::LocalSet,
        Shape::RunUntil,
        Shape::SpawnLocalRun,
        Shape::Unconstrained,
    ];

    fn name(self) -> &'static str {
        match self {
            Shape::LocalSet => "LocalSet",
            Shape::RunUntil => "CW run_until",
            Shape::SpawnLocalRun => "CW spawn_local(run)",
            Shape::Unconstrained => "CW unconstrained",
        }
    }

    /// Whether the goals apply: Clockworker with Tokio's budget in force.
    fn has_goals(self) -> bool {
        matches!(self, Shape::RunUntil | Shape::SpawnLocalRun)
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `executor` in `shape` on `rt` until `until` completes.
fn run_executor<K: clockworker::QueueKey, T>(
    shape: Shape,
    rt: &Runtime,
    executor: &Rc<Executor<K>>,
    until: impl Future<Output = T>,
) -> T {
    match shape {
        Shape::RunUntil => rt.block_on(executor.run_until(until)),
        Shape::Unconstrained => rt.block_on(tokio::task::unconstrained(executor.run_until(until))),
        Shape::SpawnLocalRun => {
            let local = LocalSet::new();
            let runner = Rc::clone(executor);
            let run = local.spawn_local(async move { runner.run().await });
            local.block_on(rt, async {
                let output = until.await;
                executor.shutdown(Shutdown::Cancel);
                run.await.expect("executor run task");
                output
            })
        }
        Shape::LocalSet => unreachable!("LocalSet runs no executor"),
    }
}

/// `future`, counting its polls in `polls`.
async fn counted<F: Future>(future: F, polls: Rc<Cell<u64>>) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        polls.set(polls.get() + 1);
        future.as_mut().poll(cx)
    })
    .await
}

// --- Case A: 100 channels ---

/// One run of Case A: wall time in milliseconds, and task polls.
type DrainRun = (f64, u64);

/// Receives until the channel closes.
async fn drain(mut rx: mpsc::UnboundedReceiver<u64>) -> u64 {
    let mut sum = 0u64;
    while let Some(item) = rx.recv().await {
        sum = sum.wrapping_add(std::hint::black_box(item));
    }
    sum
}

/// `TASKS` channels, each holding `ITEMS` items, their senders dropped.
fn filled_channels() -> Vec<mpsc::UnboundedReceiver<u64>> {
    (0..TASKS)
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            for item in 0..ITEMS {
                tx.send(item).expect("receiver alive");
            }
            rx
        })
        .collect()
}

fn drain_run(shape: Shape) -> DrainRun {
    let rt = runtime();
    let channels = filled_channels();
    let polls = Rc::new(Cell::new(0));
    let tasks = channels
        .into_iter()
        .map(|rx| counted(drain(rx), Rc::clone(&polls)));
    let start = Instant::now();
    if shape == Shape::LocalSet {
        let local = LocalSet::new();
        let handles: Vec<_> = tasks.map(|task| local.spawn_local(task)).collect();
        local
            .block_on(&rt, futures::future::try_join_all(handles))
            .expect("drain task");
        return (start.elapsed().as_secs_f64() * 1e3, polls.get());
    }
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let handles: Vec<_> = tasks.map(|task| queue.spawn(task)).collect();
    run_executor(
        shape,
        &rt,
        &executor,
        futures::future::try_join_all(handles),
    )
    .expect("drain task");
    let wall = start.elapsed().as_secs_f64() * 1e3;
    let stats = executor.stats();
    assert_eq!(stats.polls, polls.get(), "executor and wrapper poll counts");
    (wall, stats.polls)
}

// --- Case B: weights 99:1 ---

/// One run of Case B: per queue (Fg, Bg) CPU time and items processed, and
/// Fg's share of each.
#[derive(Debug, Clone, Copy)]
struct WeightRun {
    cpu_ms: [f64; 2],
    items: [u64; 2],
    cpu_share: f64,
    item_share: f64,
}

/// Loops forever on an always-ready channel: receive, spin ~1 µs, send back.
async fn always_ready(processed: Rc<Cell<u64>>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for item in 0..16u64 {
        tx.send(item).expect("receiver alive");
    }
    while let Some(item) = rx.recv().await {
        let start = Instant::now();
        while start.elapsed() < Duration::from_micros(1) {
            std::hint::spin_loop();
        }
        processed.set(processed.get() + 1);
        tx.send(item).expect("receiver alive");
    }
}

fn weight_run(shape: Shape, config: &Config) -> WeightRun {
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("Fg", 99)
        .with_queue("Bg", 1)
        .build()
        .unwrap();
    let items = [Rc::new(Cell::new(0)), Rc::new(Cell::new(0))];
    for (key, processed) in ["Fg", "Bg"].into_iter().zip(&items) {
        let queue = executor.queue(key).unwrap();
        queue.spawn(always_ready(Rc::clone(processed)));
    }
    // The sleep is created at its first poll, inside the runtime.
    run_executor(shape, &rt, &executor, async {
        tokio::time::sleep(config.window).await
    });
    let cpu_ms = |key| executor.queue_stats(key).unwrap().cpu_time.as_secs_f64() * 1e3;
    let (cpu_ms, items) = ([cpu_ms("Fg"), cpu_ms("Bg")], items.map(|i| i.get()));
    let share = |a: f64, b: f64| a / (a + b).max(1e-12);
    WeightRun {
        cpu_ms,
        items,
        cpu_share: share(cpu_ms[0], cpu_ms[1]),
        item_share: share(items[0] as f64, items[1] as f64),
    }
}

// --- Report ---

fn median<T: Copy + PartialOrd>(values: impl Iterator<Item = T>) -> T {
    let mut values: Vec<T> = values.collect();
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

/// The text output (stdout, or stderr under `--json`) and the goals' tally.
struct Report {
    json: bool,
    goals: usize,
    passed: usize,
}

impl Report {
    fn say(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Counts a goal; its verdict.
    fn check(&mut self, pass: bool) -> &'static str {
        self.goals += 1;
        self.passed += usize::from(pass);
        if pass { "PASS" } else { "MISS" }
    }
}

/// Runs Case A in every shape; prints each column's medians, returns them as JSON.
fn report_channels(config: &Config, report: &mut Report) -> Value {
    report.say(&format!(
        "Case A, {TASKS} channels: each task drains a pre-filled tokio mpsc channel of {ITEMS} \
         items (medians of {} runs)\n\n\
         column                 wall ms  vs LocalSet  task polls  vs LocalSet",
        config.runs,
    ));
    let mut baseline = None;
    let columns = Shape::ALL.map(|shape| {
        let runs: Vec<DrainRun> = (0..config.runs).map(|_| drain_run(shape)).collect();
        let wall = median(runs.iter().map(|r| r.0));
        let polls = median(runs.iter().map(|r| r.1));
        let (base_wall, base_polls) = *baseline.get_or_insert((wall, polls as f64));
        let ratios = [wall / base_wall, polls as f64 / base_polls];
        let goals = shape
            .has_goals()
            .then_some([ratios[0] <= 1.3, ratios[1] <= 2.0]);
        let [wall_goal, polls_goal] = goals.map_or(["", ""], |g| g.map(|p| report.check(p)));
        report.say(&format!(
            "{:<20} {wall:>9.1}  {:<12} {polls:>10}  {:.2}x {polls_goal}",
            shape.name(),
            format!("{:.2}x {wall_goal}", ratios[0]),
            ratios[1],
        ));
        json!({
            "column": shape.name(),
            "wall_ms": wall,
            "task_polls": polls,
            "wall_and_polls_vs_localset": ratios,
            "goals_wall_and_polls_met": goals,
            "runs_wall_ms_and_polls": runs,
        })
    });
    report.say(
        "Goals: wall <= 1.3x and polls <= 2x LocalSet's, for the two CW shapes with Tokio's \
         budget in force (unconstrained: a reference without any budget)\n",
    );
    json!(columns)
}

/// Runs Case B in the two budgeted Clockworker shapes; prints each one's
/// medians, returns them as JSON.
fn report_weights(config: &Config, report: &mut Report) -> Value {
    report.say(&format!(
        "Case B, weights 99:1: an always-ready channel loop (recv, ~1us spin, send back) in \
         Fg (99) and in Bg (1), {} ms windows (medians of {} runs)\n\n\
         column               Fg cpu ms Bg cpu ms   cpu Fg/Bg   Fg items   Bg items items Fg/Bg",
        config.window.as_millis(),
        config.runs,
    ));
    let columns = [Shape::RunUntil, Shape::SpawnLocalRun].map(|shape| {
        let runs: Vec<WeightRun> = (0..config.runs)
            .map(|_| weight_run(shape, config))
            .collect();
        let cpu_share = median(runs.iter().map(|r| r.cpu_share));
        let item_share = median(runs.iter().map(|r| r.item_share));
        let cpu_ms = [0, 1].map(|i| median(runs.iter().map(|r| r.cpu_ms[i])));
        let items = [0, 1].map(|i| median(runs.iter().map(|r| r.items[i])));
        // Within 2 points, and Bg not starved: 0 % would be within 2 points of 1 %.
        let near = |share: f64| (share - 0.99).abs() <= 0.02;
        let pass = near(cpu_share) && near(item_share) && item_share <= 0.995;
        let verdict = report.check(pass);
        let split = |share: f64| format!("{:.1}/{:.1}", share * 100.0, (1.0 - share) * 100.0);
        report.say(&format!(
            "{:<20} {:>9.1} {:>9.1} {:>11} {:>10} {:>10} {:>11}  {verdict}",
            shape.name(),
            cpu_ms[0],
            cpu_ms[1],
            split(cpu_share),
            items[0],
            items[1],
            split(item_share),
        ));
        json!({
            "column": shape.name(),
            "fg_and_bg_cpu_ms": cpu_ms,
            "fg_and_bg_items": items,
            "fg_cpu_share": cpu_share,
            "fg_item_share": item_share,
            "goal_shares_met": pass,
            "runs_fg_cpu_share": runs.iter().map(|r| r.cpu_share).collect::<Vec<_>>(),
            "runs_fg_item_share": runs.iter().map(|r| r.item_share).collect::<Vec<_>>(),
        })
    });
    report.say(
        "Goal: Fg/Bg shares of CPU time and of items processed within 2 points of 99/1, and \
         Bg's share of items at least 0.5% (not starved)\n",
    );
    json!(columns)
}

fn main() {
    let config = parse_args().unwrap_or_else(|message| {
        eprintln!("error: {message}\n\n{USAGE}");
        std::process::exit(2);
    });
    let mut report = Report {
        json: config.json,
        goals: 0,
        passed: 0,
    };
    let channels = report_channels(&config, &mut report);
    let weights = report_weights(&config, &mut report);
    report.say(&format!("Goals met: {} of {}", report.passed, report.goals));
    if config.json {
        let value = json!({
            "config": {
                "runs": config.runs,
                "tasks": TASKS,
                "items": ITEMS,
                "window_ms": config.window.as_millis() as u64,
            },
            "case_a_100_channels": channels,
            "case_b_weights_99_1": weights,
            "goals_met": report.passed,
            "goals": report.goals,
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    }
}
