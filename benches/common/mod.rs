//! Helpers shared by the benchmarks: the host runtime and the self-waking
//! task every executor is measured with.

#![allow(dead_code)]

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::task::Poll;
use std::time::{Duration, Instant};

/// A Tokio current-thread runtime, the host of the clockworker cases.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Wakes the current task and returns `Pending` once, then `Ready`. The same
/// future for every executor, so only executor overhead differs.
pub fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// A self-waking task: `yields` self-wakes, so `yields + 1` polls.
pub async fn yielder(yields: u64) -> u64 {
    for _ in 0..yields {
        yield_once().await;
    }
    yields
}

/// Time for `iters` polls of one self-waking task in queue 0 of the
/// clockworker executor that `builder` builds, hosted by a Tokio
/// current-thread runtime (built outside the timed region).
pub fn time_self_waking(iters: u64, builder: clockworker::ExecutorBuilder<u8>) -> Duration {
    let rt = tokio_rt();
    let executor = builder.build().expect("executor");
    let queue = executor.queue(0).expect("queue");
    let start = Instant::now();
    let handle = queue.spawn(yielder(iters));
    let sum = rt
        .block_on(executor.run_until(handle))
        .expect("task failed");
    let elapsed = start.elapsed();
    assert_eq!(black_box(sum), iters);
    elapsed
}
