//! Exporting the executor's statistics through the `metrics` facade (the
//! `metrics` feature).
//!
//! ```sh
//! cargo run --example metrics_export --features metrics
//! ```
//!
//! Here the recorder is `metrics_util`'s `DebuggingRecorder`, so that we can
//! print what was published, and we publish once, by hand, with
//! `executor.publish_metrics()`. In production, install a real exporter
//! instead (e.g. `metrics_exporter_prometheus::PrometheusBuilder::new().install()`)
//! and let the executor publish on its own with
//! `ExecutorBuilder::with_metrics(Duration::from_secs(1))`.

use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, yield_maybe};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Queue {
    Requests,
    Batch,
}

/// Spins for `duration`: CPU work.
fn burn(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn main() {
    // Every metric recorded from now on, on any thread, goes to this recorder.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("no other global recorder");

    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Requests, 4)
        .with_queue(Queue::Batch, 1)
        .build()
        .expect("valid configuration");
    let requests = executor.queue(Queue::Requests).unwrap();
    let batch = executor.queue(Queue::Batch).unwrap();

    // Some work: 20 short requests, and 2 batch jobs that share the thread
    // with them (each 10 x 1 ms of CPU, yielding in between).
    futures::executor::block_on(executor.run_until(async {
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                batch.spawn(async {
                    for _ in 0..10 {
                        burn(Duration::from_millis(1));
                        yield_maybe().await;
                    }
                })
            })
            .collect();
        let handled: Vec<_> = (0..20)
            .map(|_| requests.spawn(async { burn(Duration::from_micros(200)) }))
            .collect();
        for task in handled.into_iter().chain(jobs) {
            task.await.unwrap();
        }
    }));

    // Counters and gauges are set to the executor's totals; histograms get
    // the polls recorded since the previous publication.
    executor.publish_metrics();

    // Each metric as (name, labels, value), sorted by name then labels.
    let mut rows: Vec<(String, String, String)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => format!("counter    {n}"),
                DebugValue::Gauge(x) => format!("gauge      {}", x.into_inner()),
                DebugValue::Histogram(samples) => {
                    let max = samples.iter().map(|s| s.into_inner()).fold(0.0, f64::max);
                    format!("histogram  {} samples, max {max:.6}", samples.len())
                }
            };
            (key.key().name().to_string(), labels.join(","), value)
        })
        .collect();
    rows.sort();
    for (name, labels, value) in rows {
        println!("{name:<36} {labels:<16} {value}");
    }
}
