//! Helpers shared by the benchmarks: the host runtime and the self-waking
//! task every executor is measured with.

#![allow(dead_code)]

use std::future::{Future, poll_fn};
use std::task::Poll;

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
