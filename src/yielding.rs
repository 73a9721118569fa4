//! Cooperative yielding: [`yield_maybe`], which costs nothing when nobody is
//! waiting, and [`yield_now`], which always gives the thread up once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::Core;

/// Yields to the executor only if the running task should give up the thread:
/// its queue's timeslice is over, a task became runnable in a queue that
/// should run first (preemption), or the host runtime is due (the executor
/// has held the thread for `driver_yield`, and only the host's reactor can
/// tell it that a socket became ready). Otherwise it completes at once.
///
/// Put it in long CPU-bound loops: the loop runs at full speed, and still
/// gives the thread up within a slice when another queue deserves it.
///
/// Outside a clockworker executor it always yields once, like a plain
/// `yield_now`, so a loop that relies on it never monopolises its runtime.
///
/// ```
/// use clockworker::{ExecutorBuilder, yield_maybe};
///
/// let executor = ExecutorBuilder::new().with_queue((), 1).build().unwrap();
/// let queue = executor.queue(()).unwrap();
/// let sum = futures::executor::block_on(executor.run_until(async move {
///     queue.spawn(async {
///         let mut sum = 0u64;
///         for i in 0..100_000 {
///             sum += i;
///             yield_maybe().await;
///         }
///         sum
///     }).await
/// }));
/// assert_eq!(sum.unwrap(), 4_999_950_000);
/// ```
pub fn yield_maybe() -> YieldMaybe {
    YieldMaybe { yielded: false }
}

/// Future returned by [`yield_maybe`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldMaybe {
    yielded: bool,
}

impl Future for YieldMaybe {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        let should_yield = Core::with_current(Core::should_yield).unwrap_or(true);
        if !should_yield {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Yields to the executor once, always: the task becomes runnable again, as
/// if it had just been woken (at the back of its queue, with the default
/// FIFO scheduler), and the executor polls whatever should run before it
/// (another task, another queue) and hands control to the host runtime if
/// its `driver_yield` is due.
///
/// Prefer [`yield_maybe`] in CPU-bound loops: it yields only when that
/// changes what runs next. `yield_now` is for code that must let the others
/// in regardless, such as a loop written for a runtime without
/// `yield_maybe`, or a test that steps tasks by hand. Outside a clockworker
/// executor it behaves the same way for whatever runtime polls it: one
/// `Pending`, with the task woken at once.
///
/// ```
/// use clockworker::{ExecutorBuilder, yield_now};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let executor = ExecutorBuilder::new().with_queue((), 1).build().unwrap();
/// let queue = executor.queue(()).unwrap();
/// let order = Rc::new(RefCell::new(Vec::new()));
/// let tasks: Vec<_> = ["a", "b"]
///     .into_iter()
///     .map(|name| {
///         let order = Rc::clone(&order);
///         queue.spawn(async move {
///             for step in 0..2 {
///                 order.borrow_mut().push((name, step));
///                 yield_now().await;
///             }
///         })
///     })
///     .collect();
/// futures::executor::block_on(executor.run_until(futures::future::join_all(tasks)));
/// assert_eq!(*order.borrow(), [("a", 0), ("b", 0), ("a", 1), ("b", 1)]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
