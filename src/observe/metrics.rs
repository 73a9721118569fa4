//! Export through the [`metrics`] facade (feature `metrics`): the executor's
//! statistics as counters, gauges and histograms labelled by queue, for any
//! Prometheus, StatsD or OpenTelemetry exporter installed as the recorder.
//!
//! Nothing is recorded per poll: the executor counts in its own statistics,
//! and [`Executor::publish_metrics`](crate::Executor::publish_metrics)
//! (called by you, or at the end of a turn every `interval` given to
//! [`ExecutorBuilder::with_metrics`](crate::ExecutorBuilder::with_metrics))
//! sets counters to their absolute values, gauges to their current values,
//! and replays into each histogram the polls recorded since the last
//! publication (each at its bucket's upper bound, within 1/16 of its value).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `clockworker_tasks_spawned_total`, `_completed_total`, `_cancelled_total`, `_panicked_total` | counter | `queue` |
//! | `clockworker_polls_total`, `clockworker_slow_polls_total` | counter | `queue` |
//! | `clockworker_cpu_seconds_total` | gauge (only grows) | `queue` |
//! | `clockworker_slices_total`, `clockworker_preemptions_total` | counter | `queue` |
//! | `clockworker_runnable_tasks` | gauge | `queue` |
//! | `clockworker_queue_delay_seconds`, `clockworker_poll_duration_seconds` | histogram | `queue` |
//! | `clockworker_turns_total`, `clockworker_driver_yields_total`, `clockworker_budget_yields_total` | counter | |
//! | `clockworker_turn_duration_seconds` | histogram | |
//! | `clockworker_wakes_total` | counter | `source` = `local` / `remote` |
//! | `clockworker_busy_seconds_total`, `clockworker_idle_seconds_total` | gauge (seconds) | |
//! | `clockworker_live_tasks` | gauge | |

use std::time::Duration;

use metrics::{Label, counter, gauge, histogram};

use crate::base::histogram::{Bucket, Histogram};
use crate::observe::stats::{ExecutorStats, QueueStats};

/// What was published last, so that histograms get only new samples.
#[derive(Debug)]
pub(crate) struct Publisher {
    /// Each queue's `queue` label.
    labels: Vec<Label>,
    /// Each queue's histograms as last published.
    published: Vec<(Histogram, Histogram)>,
    /// The turn-duration histogram as last published.
    turns: Histogram,
    /// Publish at the end of a turn when this much time has passed.
    pub(crate) interval: Option<u64>,
    /// Executor-clock nanoseconds of the last publication.
    pub(crate) last: u64,
}

impl Publisher {
    pub(crate) fn new(queue_names: Vec<String>, interval: Option<Duration>) -> Self {
        let published = queue_names.iter().map(|_| Default::default()).collect();
        Publisher {
            labels: queue_names
                .into_iter()
                .map(|name| Label::new("queue", name))
                .collect(),
            published,
            turns: Histogram::default(),
            interval: interval.map(crate::base::clock::nanos),
            last: 0,
        }
    }

    /// Adds a queue (added at run time) named `name`.
    pub(crate) fn add_queue(&mut self, name: String) {
        self.labels.push(Label::new("queue", name));
        self.published.push(Default::default());
    }

    /// Publishes a snapshot: the executor's figures and each queue's.
    pub(crate) fn publish(&mut self, executor: &ExecutorStats, queues: &[QueueStats]) {
        counter!("clockworker_turns_total").absolute(executor.turns);
        counter!("clockworker_driver_yields_total").absolute(executor.driver_yields);
        counter!("clockworker_budget_yields_total").absolute(executor.budget_yields);
        let turns = histogram!("clockworker_turn_duration_seconds");
        replay_new(&executor.turn_duration, &self.turns, |value, n| {
            turns.record_many(value, n)
        });
        self.turns = executor.turn_duration.clone();
        counter!("clockworker_wakes_total", "source" => "local").absolute(executor.local_wakes);
        counter!("clockworker_wakes_total", "source" => "remote").absolute(executor.remote_wakes);
        gauge!("clockworker_busy_seconds_total").set(executor.busy.as_secs_f64());
        gauge!("clockworker_idle_seconds_total").set(executor.idle.as_secs_f64());
        gauge!("clockworker_live_tasks").set(executor.live_tasks as f64);
        for ((stats, label), published) in queues.iter().zip(&self.labels).zip(&mut self.published)
        {
            let labels = [label.clone()];
            let count = |name: &'static str, value: u64| {
                counter!(name, labels.iter()).absolute(value);
            };
            count("clockworker_tasks_spawned_total", stats.spawned);
            count("clockworker_tasks_completed_total", stats.completed);
            count("clockworker_tasks_cancelled_total", stats.cancelled);
            count("clockworker_tasks_panicked_total", stats.panicked);
            count("clockworker_polls_total", stats.polls);
            count("clockworker_slow_polls_total", stats.slow_polls);
            count("clockworker_slices_total", stats.slices);
            count("clockworker_preemptions_total", stats.preemptions);
            gauge!("clockworker_cpu_seconds_total", labels.iter())
                .set(stats.cpu_time.as_secs_f64());
            gauge!("clockworker_runnable_tasks", labels.iter()).set(stats.runnable as f64);
            let delay = histogram!("clockworker_queue_delay_seconds", labels.iter());
            replay_new(&stats.queue_delay, &published.0, |value, n| {
                delay.record_many(value, n)
            });
            let duration = histogram!("clockworker_poll_duration_seconds", labels.iter());
            replay_new(&stats.poll_duration, &published.1, |value, n| {
                duration.record_many(value, n)
            });
            *published = (stats.queue_delay.clone(), stats.poll_duration.clone());
        }
    }
}

/// Calls `record(seconds, count)` for the samples in `now` that were not in
/// `before` (an earlier state of the same histogram), bucket by bucket.
fn replay_new(now: &Histogram, before: &Histogram, mut record: impl FnMut(f64, usize)) {
    let mut old = before.buckets().peekable();
    for Bucket { low, high, count } in now.buckets() {
        let mut seen = 0;
        while let Some(bucket) = old.next_if(|bucket| bucket.low <= low) {
            if bucket.low == low {
                seen = bucket.count;
            }
        }
        let new = count.saturating_sub(seen);
        if new > 0 {
            // The last bucket is open-ended: its samples are at most the max.
            let value = now.max().map_or(high, |max| high.min(max));
            record(
                value.as_secs_f64(),
                usize::try_from(new).unwrap_or(usize::MAX),
            );
        }
    }
}
