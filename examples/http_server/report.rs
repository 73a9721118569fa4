//! The report: figures of a measurement, medians, the table, the goals,
//! the interference warnings, the executor statistics and the JSON.

use std::time::Duration;

use serde_json::{Value, json};

use crate::loadgen::Outcome;
use crate::{BACKGROUND_LOOPS, Column, Config, CwStats, Mode, REQUEST_CPU};

/// One measurement's figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Figures {
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    /// The server thread's CPU time over wall time, 0–1.
    busy: Option<f64>,
    bg_chunks_per_sec: f64,
    /// The share of the thread the background chunks stand for, 0–1.
    bg_share: f64,
    /// Connections the generator opened.
    conns: f64,
    /// The share of the server's core that other threads and processes
    /// took, 0–1.
    others: Option<f64>,
    /// Times the server thread was preempted, per second.
    preemptions: Option<f64>,
    /// The share of the window the generator's thread did not get its core.
    generator_lost: Option<f64>,
    /// The generator's longest stall, in ms.
    generator_stall: f64,
}

impl Figures {
    pub(crate) fn of(outcome: &Outcome) -> Figures {
        let window = outcome.window.as_secs_f64();
        let chunks_per_sec = outcome.bg_chunks as f64 / window;
        Figures {
            rps: outcome.latencies.len() as f64 / window,
            p50: percentile(&outcome.latencies, 0.50),
            p90: percentile(&outcome.latencies, 0.90),
            p99: percentile(&outcome.latencies, 0.99),
            busy: outcome.server_cpu.map(|cpu| cpu.as_secs_f64() / window),
            bg_chunks_per_sec: chunks_per_sec,
            bg_share: chunks_per_sec * crate::chunk_cpu().as_secs_f64(),
            conns: outcome.connections as f64,
            others: outcome
                .others_on_server_core
                .map(|t| t.as_secs_f64() / window),
            generator_lost: outcome
                .generator_cpu
                .map(|t| (1.0 - t.as_secs_f64() / window).max(0.0)),
            preemptions: outcome.server_preemptions.map(|n| n as f64 / window),
            generator_stall: outcome.generator_stall.as_secs_f64() * 1e3,
        }
    }

    pub(crate) fn median(all: &[Figures]) -> Figures {
        let m = |f: fn(&Figures) -> f64| median(all.iter().map(f).collect());
        Figures {
            rps: m(|f| f.rps),
            p50: m(|f| f.p50),
            p90: m(|f| f.p90),
            p99: m(|f| f.p99),
            busy: all[0].busy.map(|_| m(|f| f.busy.unwrap_or(0.0))),
            bg_chunks_per_sec: m(|f| f.bg_chunks_per_sec),
            bg_share: m(|f| f.bg_share),
            conns: m(|f| f.conns),
            others: all[0].others.map(|_| m(|f| f.others.unwrap_or(0.0))),
            generator_lost: all[0]
                .generator_lost
                .map(|_| m(|f| f.generator_lost.unwrap_or(0.0))),
            preemptions: all[0]
                .preemptions
                .map(|_| m(|f| f.preemptions.unwrap_or(0.0))),
            generator_stall: m(|f| f.generator_stall),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "rps": self.rps, "p50_ms": self.p50, "p90_ms": self.p90, "p99_ms": self.p99,
            "server_busy": self.busy, "bg_chunks_per_sec": self.bg_chunks_per_sec,
            "bg_share": self.bg_share, "connections": self.conns,
            "others_on_server_core": self.others, "server_preemptions_per_sec": self.preemptions,
            "generator_lost": self.generator_lost, "generator_stall_ms": self.generator_stall,
        })
    }
}

/// The `p` quantile of sorted nanoseconds, in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1e6
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub(crate) struct Row {
    pub(crate) mode: Mode,
    pub(crate) column: Column,
    pub(crate) runs: Vec<Figures>,
    pub(crate) median: Figures,
    pub(crate) stats: Option<CwStats>,
}

/// The whole report but the JSON: the table, the warnings, the goals and
/// (unless `--no-stats`) the executor statistics.
pub(crate) fn text(config: &Config, rows: &[Row], goals: &[Goal]) -> String {
    let mut out = format!(
        "\nhyper HTTP/1.1, {} µs CPU per request; background: {BACKGROUND_LOOPS} loops of \
         {} µs chunks; {} s windows, medians of {} run(s)\n\n",
        REQUEST_CPU.as_micros(),
        crate::chunk_cpu().as_micros(),
        config.duration.as_secs_f64(),
        config.runs
    );
    if let Some(driver_yield) = config.driver_yield {
        // Then the Clockworker columns are not at their defaults.
        out += &format!(
            "Clockworker columns with driver_yield = {} µs (--driver-yield)\n\n",
            driver_yield.as_micros()
        );
    }
    out += &table(rows);
    out += "\n";
    out += &interference(rows);
    out += &goals_text(goals);
    if config.stats {
        out += &stats_text(rows);
    }
    out
}

fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<16} {:<38} {:>6} {:>7} {:>7} {:>7} {:>5} {:>8} {:>6} {:>5} | {:>6} {:>8} {:>9}\n",
        "mode",
        "column",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "busy",
        "bg ch/s",
        "bg CPU",
        "conns",
        "others",
        "preempt/s",
        "gen stall"
    );
    let percent = |share: Option<f64>| share.map_or("n/a".into(), |s| format!("{:.0}%", 100.0 * s));
    for row in rows {
        let f = row.median;
        out += &format!(
            "{:<16} {:<38} {:>6.0} {:>7.3} {:>7.3} {:>7.3} {:>5} {:>8.0} {:>6} {:>5.0} | {:>6} {:>8} {:>7.2}ms\n",
            row.mode.name(),
            row.column.name(),
            f.rps,
            f.p50,
            f.p90,
            f.p99,
            percent(f.busy),
            f.bg_chunks_per_sec,
            percent(Some(f.bg_share)),
            f.conns,
            percent(f.others),
            f.preemptions.map_or("n/a".into(), |p| format!("{p:.0}")),
            f.generator_stall,
        );
    }
    out
}

/// Warnings for the measurements that something else on the machine
/// disturbed: other processes on the server's core, or on the generator's
/// (which delays its sends and its reads, and so adds to the latency).
fn interference(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for (run, f) in row.runs.iter().enumerate() {
            let which = format!(
                "{} / {} / run {}",
                row.mode.name(),
                row.column.name(),
                run + 1
            );
            // /proc/stat counts in 10 ms ticks: a few percent is noise.
            if let Some(others) = f.others.filter(|o| *o > 0.03) {
                out += &format!(
                    "warning: {which}: other processes took {:.0}% of the server's core\n",
                    100.0 * others
                );
            }
            if let Some(lost) = f.generator_lost.filter(|l| *l > 0.03) {
                out += &format!(
                    "warning: {which}: the generator lacked its core {:.0}% of the window\n",
                    100.0 * lost
                );
            }
            if f.generator_stall > 1.0 {
                out += &format!(
                    "warning: {which}: the generator stalled for {:.1} ms once\n",
                    f.generator_stall
                );
            }
        }
    }
    if !out.is_empty() {
        out += "These measurements' figures are skewed (their p99 most): rerun on an idle machine.\n\n";
    }
    out
}

/// One goal line: a figure, its limit, and whether it is met.
pub(crate) struct Goal {
    mode: Mode,
    column: Column,
    what: &'static str,
    value: f64,
    limit: f64,
    at_most: bool,
}

impl Goal {
    fn pass(&self) -> bool {
        if self.at_most {
            self.value <= self.limit
        } else {
            self.value >= self.limit
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "mode": self.mode.name(), "column": self.column.name(), "goal": self.what,
            "value": self.value, "limit": self.limit, "pass": self.pass(),
        })
    }
}

pub(crate) fn goals(rows: &[Row]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for row in rows.iter().filter(|r| r.column.has_background()) {
        let Some(base) = rows
            .iter()
            .find(|b| b.mode == row.mode && b.column == Column::TokioAlone)
        else {
            continue;
        };
        let (f, b) = (row.median, base.median);
        let goal = |what, value, limit, at_most| Goal {
            mode: row.mode,
            column: row.column,
            what,
            value,
            limit,
            at_most,
        };
        goals.push(goal("p50 / baseline p50", f.p50 / b.p50, 1.15, true));
        goals.push(goal("p99 / baseline p99", f.p99 / b.p99, 1.30, true));
        if let (Mode::Open(_), Some(busy)) = (row.mode, b.busy) {
            let left = (1.0 - busy).max(0.0);
            goals.push(goal(
                "background / CPU left",
                f.bg_share / left,
                0.90,
                false,
            ));
        }
    }
    goals
}

fn goals_text(goals: &[Goal]) -> String {
    let mut out = String::from(
        "Against `a. Tokio, no background` in the same mode (PASS/MISS for column c; \
         column b for comparison):\n",
    );
    for goal in goals {
        let verdict = match (goal.column, goal.pass()) {
            (Column::ClockworkerBackground, true) => "PASS",
            (Column::ClockworkerBackground, false) => "MISS",
            _ => "",
        };
        out += &format!(
            "  {:<16} {:<38} {:<22} {:>6.2}  ({} {:.2})  {}\n",
            goal.mode.name(),
            goal.column.name(),
            goal.what,
            goal.value,
            if goal.at_most { "≤" } else { "≥" },
            goal.limit,
            verdict,
        );
    }
    out
}

fn stats_text(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        let Some(stats) = &row.stats else { continue };
        out += &format!(
            "\n{} — {} (last run, warm-up included)\n",
            row.column.name(),
            row.mode.name()
        );
        out += &indent(&stats.executor.to_string(), "  ");
        for (queue, queue_stats) in &stats.queues {
            out += &format!("  queue {queue:?}\n");
            out += &indent(&queue_stats.to_string(), "    ");
        }
    }
    out
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

pub(crate) fn to_json(
    config: &Config,
    cost: Option<Duration>,
    rows: &[Row],
    goals: &[Goal],
) -> Value {
    json!({
        "config": {
            "duration_s": config.duration.as_secs_f64(),
            "warmup_s": config.warmup.as_secs_f64(),
            "runs": config.runs,
            "max_conns": config.max_conns,
            "request_cpu_us": REQUEST_CPU.as_micros() as u64,
            "chunk_cpu_us": crate::chunk_cpu().as_micros() as u64,
            "background_loops": BACKGROUND_LOOPS,
        },
        "calibrated_cpu_per_request_us": cost.map(|c| c.as_secs_f64() * 1e6),
        "results": rows.iter().map(|row| json!({
            "mode": row.mode.name(),
            "column": row.column.name(),
            "median": row.median.to_json(),
            "runs": row.runs.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
            "executor": row.stats.as_ref().map(|s| json!({
                "turns": s.executor.turns,
                "driver_yields": s.executor.driver_yields,
                "polls": s.executor.polls,
                "busy_s": s.executor.busy.as_secs_f64(),
                "uptime_s": s.executor.uptime.as_secs_f64(),
            })),
        })).collect::<Vec<_>>(),
        "goals": goals.iter().map(Goal::to_json).collect::<Vec<_>>(),
    })
}
