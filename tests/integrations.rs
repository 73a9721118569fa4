//! The optional integrations: slow polls as `tracing` warnings (feature
//! `tracing`), statistics through the `metrics` facade (feature `metrics`).
//! Run with `cargo test --all-features`.

#![cfg(any(feature = "tracing", feature = "metrics"))]

mod common;
use common::yield_once;
use std::time::Duration;

use clockworker::{Clock, ExecutorBuilder, ManualClock};
use futures::executor::block_on;

const MS: Duration = Duration::from_millis(1);

type Builder = ExecutorBuilder<&'static str>;
type Executor = std::rc::Rc<clockworker::Executor<&'static str>>;

/// Runs one task named "worker" in queue "q" of an executor that
/// `configure` may add settings to: each poll advances the manual clock by
/// the next of `costs`, then yields.
fn run_polls(costs: &'static [Duration], configure: impl FnOnce(Builder) -> Builder) -> Executor {
    let (clock, hand) = Clock::manual();
    let builder = ExecutorBuilder::new().with_queue("q", 2).with_clock(clock);
    let executor = configure(builder).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let task = queue.task().name("worker").spawn(polls(hand, costs));
    block_on(executor.run_until(task)).unwrap();
    executor
}

async fn polls(hand: ManualClock, costs: &'static [Duration]) {
    for cost in costs {
        hand.advance(*cost);
        yield_once().await;
    }
}

#[cfg(feature = "tracing")]
mod tracing_feature {
    use super::*;
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    /// A subscriber that keeps every warning the crate logs as
    /// `LEVEL field=value …` (not the console's task spans and wake events,
    /// which the `console` feature emits at trace level).
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            *meta.level() <= Level::WARN
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(event.metadata().level().to_string());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn slow_polls_are_tracing_warnings_even_without_a_callback() {
        let capture = Capture::default();
        const COSTS: &[Duration] = &[MS, Duration::from_millis(12), MS];
        let executor = tracing::subscriber::with_default(capture.clone(), || {
            // The default threshold: 10 ms. One poll of three reaches it.
            run_polls(COSTS, |builder| builder)
        });
        let events = capture.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert!(event.starts_with(Level::WARN.as_str()), "{event}");
        assert!(event.contains("slow poll"), "{event}");
        assert!(event.contains("name=\"worker\""), "{event}");
        assert!(event.contains("queue=\"q\""), "{event}");
        assert!(event.contains("duration=12ms"), "{event}");
        assert!(event.contains("integrations.rs"), "{event}");
        assert_eq!(executor.queue_stats("q").unwrap().slow_polls, 1);
    }
}

#[cfg(feature = "metrics")]
mod metrics_feature {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};

    type Snapshot = Vec<(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )>;

    /// The value of metric `name` with label `queue = "q"` (or no label).
    fn find<'a>(snapshot: &'a Snapshot, kind: MetricKind, name: &str) -> &'a DebugValue {
        snapshot
            .iter()
            .find(|(key, ..)| key.kind() == kind && key.key().name() == name)
            .map(|(.., value)| value)
            .unwrap_or_else(|| panic!("no {kind:?} {name} in {snapshot:#?}"))
    }

    fn counter(snapshot: &Snapshot, name: &str) -> u64 {
        match find(snapshot, MetricKind::Counter, name) {
            DebugValue::Counter(value) => *value,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn samples(snapshot: &Snapshot, name: &str) -> Vec<f64> {
        match find(snapshot, MetricKind::Histogram, name) {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn statistics_are_published_labelled_by_queue_and_histograms_only_once() {
        const COSTS: &[Duration] = &[MS, MS, Duration::from_millis(3)];
        let executor = run_polls(COSTS, |builder| builder);
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || executor.publish_metrics());
        let snapshot = snapshotter.snapshot().into_vec();
        let (key, ..) = snapshot
            .iter()
            .find(|(key, ..)| key.key().name() == "clockworker_polls_total")
            .unwrap();
        let labels: Vec<_> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("queue", "\"q\"")]);
        // 3 polls of the task, plus the one that returns.
        assert_eq!(counter(&snapshot, "clockworker_polls_total"), 4);
        assert_eq!(counter(&snapshot, "clockworker_tasks_spawned_total"), 1);
        assert_eq!(counter(&snapshot, "clockworker_tasks_completed_total"), 1);
        assert_eq!(counter(&snapshot, "clockworker_slices_total"), 1);
        let mut durations = samples(&snapshot, "clockworker_poll_duration_seconds");
        durations.sort_by(f64::total_cmp);
        assert_eq!(durations.len(), 4);
        // Each at its bucket's upper bound: within 1/16 above the true value.
        for (got, want) in durations.iter().zip([0.0, 0.001, 0.001, 0.003]) {
            assert!(
                *got >= want && *got <= want * 17.0 / 16.0,
                "{got} vs {want}"
            );
        }
        // Every turn, the longest being the 3 ms poll's: how long the host
        // waited for the thread.
        let turns = samples(&snapshot, "clockworker_turn_duration_seconds");
        assert_eq!(
            turns.len() as u64,
            counter(&snapshot, "clockworker_turns_total")
        );
        let longest = turns.iter().copied().fold(0.0, f64::max);
        assert!(
            (0.003..=0.003 * 17.0 / 16.0).contains(&longest),
            "{turns:?}"
        );
        assert_eq!(counter(&snapshot, "clockworker_budget_yields_total"), 0);
        // Published again with nothing new: the histograms get no samples.
        metrics::with_local_recorder(&recorder, || executor.publish_metrics());
        let snapshot = snapshotter.snapshot().into_vec();
        assert!(samples(&snapshot, "clockworker_poll_duration_seconds").is_empty());
        assert!(samples(&snapshot, "clockworker_turn_duration_seconds").is_empty());
        assert_eq!(counter(&snapshot, "clockworker_polls_total"), 4);
    }

    #[test]
    fn with_metrics_publishes_at_the_end_of_a_turn() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        const COSTS: &[Duration] = &[MS, MS];
        metrics::with_local_recorder(&recorder, || {
            run_polls(COSTS, |builder| builder.with_metrics(MS))
        });
        let snapshot = snapshotter.snapshot().into_vec();
        assert!(counter(&snapshot, "clockworker_turns_total") >= 1);
        assert!(counter(&snapshot, "clockworker_polls_total") >= 1);
    }
}
