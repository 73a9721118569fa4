//! Helpers shared by the integration suites.

#![allow(dead_code)]

use std::task::Poll;

/// Wakes the current task and returns `Pending` once: a plain yield, the
/// same for every executor.
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Yields `n` times.
pub async fn yield_n(n: usize) {
    for _ in 0..n {
        yield_once().await;
    }
}
