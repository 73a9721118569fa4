//! The run futures: [`RunUntil`], which a host polls to run the executor
//! (the turn loop itself is in `runtime/turn.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use crate::runtime::Core;

pin_project! {
    /// The future returned by [`Executor::run_until`](crate::Executor::run_until)
    /// and [`Executor::run`](crate::Executor::run): polling it runs the executor.
    ///
    /// It is not `Send`: polling it polls the executor's tasks, which must
    /// stay on the executor's thread.
    ///
    /// ```compile_fail,E0277
    /// fn send<T: Send>(_: T) {}
    /// let executor = clockworker::ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    /// send(executor.run_until(async {}));
    /// ```
    #[must_use = "the executor only runs while this future is polled"]
    pub struct RunUntil<'a, F> {
        core: &'a Core,
        until: Arc<UntilWake>,
        until_waker: Waker,
        // Slot in the core's runner list while this future is polling it.
        runner: Option<usize>,
        #[pin]
        future: F,
    }

    impl<'a, F> PinnedDrop for RunUntil<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(slot) = this.runner.take() {
                this.core.leave_runner(slot);
            }
        }
    }
}

/// The waker given to the `run_until` future: it marks the future for polling
/// and wakes the host task that runs this particular run future.
struct UntilWake {
    woken: AtomicBool,
    runner: AtomicWaker,
}

impl Wake for UntilWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // Woken from inside the turn that this run future is making (a task
        // it awaits has just finished): the loop polls the future again
        // before the turn can end, so the host needs no wake (an atomic
        // swap and the host's own wake, once per task the future awaits).
        if Core::in_turn_of(Arc::as_ptr(self).cast()) {
            return;
        }
        self.runner.wake();
    }
}

impl<'a, F: Future> RunUntil<'a, F> {
    pub(crate) fn new(core: &'a Core, future: F) -> Self {
        let until = Arc::new(UntilWake {
            woken: AtomicBool::new(true),
            runner: AtomicWaker::new(),
        });
        RunUntil {
            core,
            until_waker: Waker::from(Arc::clone(&until)),
            until,
            runner: None,
            future,
        }
    }
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let core = *this.core;
        if core.is_running() {
            // Polled inside one of this executor's own tasks: the loop up the
            // stack is running the tasks already.
            let output = this.future.poll(cx);
            if output.is_pending() && !core.polls_with(cx.waker()) {
                // Not awaited but blocked on (a foreign `block_on`): the
                // thread would park inside the turn, and the tasks that
                // could finish `future` would never run again.
                panic!("{NESTED_BLOCK_ON}");
            }
            return output;
        }
        core.register_runner(this.runner, cx.waker());
        this.until.runner.register(cx.waker());

        let mut future = this.future;
        let until_waker = &*this.until_waker;
        let mut output = None;
        let finished = core.run_turn(cx, &this.until.woken, until_waker, &mut || {
            let mut until_cx = Context::from_waker(until_waker);
            match future.as_mut().poll(&mut until_cx) {
                Poll::Ready(value) => {
                    output = Some(value);
                    true
                }
                Poll::Pending => false,
            }
        });
        match (finished, output) {
            (true, Some(value)) => {
                if let Some(slot) = this.runner.take() {
                    core.leave_runner(slot);
                }
                Poll::Ready(value)
            }
            _ => Poll::Pending,
        }
    }
}

/// The panic of a `run_until` blocked on inside its executor's own turn.
const NESTED_BLOCK_ON: &str = "an executor's `run_until` or `run` was blocked on \
     (a `block_on` or another foreign executor) from inside one of its own tasks, \
     or from the future its `run_until` runs: the thread would block inside the executor, \
     whose other tasks could then never run. Await it instead, or spawn the work as a task";
