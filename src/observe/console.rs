//! Tasks as tokio-console sees them (feature `console`).
//!
//! tokio-console reads no runtime directly: console-subscriber's `tracing`
//! layer turns a runtime's spans and events into tasks. A task is a span
//! named `runtime.spawn`; the layer counts one poll, and the time between,
//! each time the span is entered and exited; it counts a wake for each
//! `runtime::waker` event that names the span. So a task here is one span,
//! entered by the executor around each poll and nowhere else, and a wake is
//! one event.
//!
//! What the layer reads, and why each choice below is made, in its terms:
//!
//! - The span's fields are read once, when the span is created: the layer
//!   has no `on_record`, so a field filled in later is never seen. Optional
//!   fields (`task.name`, `group`) are therefore given as `Option`s, which
//!   `tracing` records as absent when `None`, on one callsite.
//! - `task.name` gets the console's Name column. Some consoles show an empty
//!   name as a present, empty one, so an unnamed task has none.
//! - `task.id` gets the ID column only if it is a `u64`: it is our
//!   [`TaskId`]'s number.
//! - `loc.file`, `loc.line` and `loc.col`, all three, are the spawn location.
//! - Any other field (`kind`, `queue`, `group`) is listed as it is.
//! - The span's target starts with `runtime`: `ConsoleLayer::spawn`'s own
//!   filter lets any span named `runtime.*` through, but users who compose
//!   the layer themselves are told to enable `tokio=trace,runtime=trace`,
//!   which matches targets by prefix. Waker events must have the target
//!   `runtime::waker` exactly.
//! - A wake event's `task.id` is the span's id (not our task id): that is how
//!   the layer finds the task.
//! - The layer calls a wake a self-wake when the task's span is entered, on
//!   the thread that emits the event, at that moment.
//!
//! console-subscriber starts only if built with `--cfg tokio_unstable` or
//! `--cfg console_without_tokio_unstable`; nothing here depends on either.

use std::panic::Location;

use tracing::Span;

use crate::base::id::TaskId;

/// The target of the task spans: shown in the console's Target column, and
/// matched by the `runtime=trace` filter the console's users are told to add.
const SPAN_TARGET: &str = "runtime::clockworker";

/// A task's span for tokio-console: entered around each poll of the task only.
///
/// The span carries one notional waker: a `waker.clone` when it is made and a
/// `waker.drop` when it is dropped. The executor cannot count a task's real
/// wakers (async-task's waker hides its clones and drops from the schedule
/// function), and with none reported the console would take every idle task
/// for one that lost its waker and flag it. So the console shows one waker
/// while the task lives and none once it has ended.
///
/// Dropping it closes the span, which the console shows as the task's end:
/// drop it when the task ends, not when its allocation is freed (a waker or
/// a join handle may keep that alive much longer).
#[derive(Debug)]
pub(crate) struct TaskSpan {
    span: Span,
    /// The span's id as the layer knows it, for the waker events.
    id: u64,
}

impl TaskSpan {
    /// The span of a new task; `None` when no subscriber wants it (the task
    /// then carries nothing).
    ///
    /// `queue` is the queue's key as `Debug` prints it; `group` is only shown
    /// when there is one.
    pub(crate) fn new(
        id: TaskId,
        name: Option<&str>,
        queue: &str,
        group: Option<u64>,
        location: &'static Location<'static>,
    ) -> Option<TaskSpan> {
        let span = tracing::trace_span!(
            target: SPAN_TARGET,
            // A task spawned from inside another task's poll is not part of
            // it: with the running task as its contextual parent, the
            // registry would keep the parent's span open, and the parent
            // looking alive, for as long as the child lives.
            parent: None,
            "runtime.spawn",
            kind = "task",
            task.name = name,
            task.id = id.as_u64(),
            queue = queue,
            group = group,
            loc.file = location.file(),
            loc.line = location.line(),
            loc.col = location.column(),
        );
        // A span no subscriber enabled has no id.
        let span_id = span.id()?.into_u64();
        let task = TaskSpan { span, id: span_id };
        task.waker_op("waker.clone");
        Some(task)
    }

    /// Enters the span for one poll; exits on drop of the guard.
    ///
    /// Enter it around the whole run of the task's `Runnable`, not only the
    /// future's poll: a wake during the poll reaches the schedule function
    /// (and so [`TaskSpan::woke`]) only as the run ends, after the future
    /// returned, and only inside the span does it count as a self-wake.
    #[inline]
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// Records a wake of this task.
    ///
    /// The executor sees wakes only through its schedule function, which
    /// cannot tell `wake` from `wake_by_ref`. This is a `waker.wake_by_ref`
    /// for both: the console counts a `waker.wake` as a waker drop too (a
    /// wake by value consumes the waker), and this waker's drops are not ours
    /// to count. Called from the polling thread while the span is entered,
    /// it is a self-wake.
    #[inline]
    pub(crate) fn woke(&self) {
        self.waker_op("waker.wake_by_ref");
    }

    fn waker_op(&self, op: &'static str) {
        tracing::trace!(target: "runtime::waker", op = op, task.id = self.id);
    }
}

impl Drop for TaskSpan {
    fn drop(&mut self) {
        // The span is still open here: the layer finds it for the event, then
        // the span closes as the field drops.
        self.waker_op("waker.drop");
    }
}
