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

/// `TaskSpan` driven by hand through the real console-subscriber layer, read
/// back from its gRPC server as tokio-console reads it: the contract the
/// executor's wiring relies on, without the executor.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use console_api as proto;
    use proto::instrument::instrument_client::InstrumentClient;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// What the console has said so far: tasks and their latest stats by span
    /// id, and span metadata by id.
    #[derive(Default)]
    struct Seen {
        tasks: HashMap<u64, proto::tasks::Task>,
        stats: HashMap<u64, proto::tasks::Stats>,
        metas: HashMap<u64, proto::Metadata>,
    }

    impl Seen {
        fn apply(&mut self, update: proto::instrument::Update) {
            for meta in update.new_metadata.into_iter().flat_map(|m| m.metadata) {
                if let (Some(id), Some(meta)) = (meta.id, meta.metadata) {
                    self.metas.insert(id.id, meta);
                }
            }
            if let Some(tasks) = update.task_update {
                for task in tasks.new_tasks {
                    if let Some(id) = task.id {
                        self.tasks.insert(id.id, task);
                    }
                }
                self.stats.extend(tasks.stats_update);
            }
        }

        /// The task whose `task.id` field is `id`, with its stats.
        fn task(&self, id: u64) -> Option<(&proto::tasks::Task, &proto::tasks::Stats)> {
            let task = self
                .tasks
                .values()
                .find(|task| field(task, "task.id") == Some(&proto::field::Value::U64Val(id)))?;
            Some((task, self.stats.get(&task.id?.id)?))
        }
    }

    fn field<'a>(task: &'a proto::tasks::Task, name: &str) -> Option<&'a proto::field::Value> {
        task.fields
            .iter()
            .find(|f| matches!(&f.name, Some(proto::field::Name::StrName(n)) if n == name))
            .and_then(|f| f.value.as_ref())
    }

    fn str_value(value: &str) -> Option<proto::field::Value> {
        Some(proto::field::Value::StrVal(value.to_string()))
    }

    /// Reads the console's updates until `done`, or panics after a minute
    /// (a hang guard: the server publishes every few milliseconds).
    fn watch(port: u16, done: impl Fn(&Seen) -> bool) -> Seen {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let watch = async {
                let address = format!("http://127.0.0.1:{port}");
                let mut client = loop {
                    // The server starts on its own thread: it may not listen yet.
                    match InstrumentClient::connect(address.clone()).await {
                        Ok(client) => break client,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                };
                let request = proto::instrument::InstrumentRequest {};
                let mut updates = client.watch_updates(request).await.unwrap().into_inner();
                let mut seen = Seen::default();
                while let Some(update) = updates.message().await.unwrap() {
                    seen.apply(update);
                    if done(&seen) {
                        return seen;
                    }
                }
                panic!("the console ended its stream of updates");
            };
            tokio::time::timeout(Duration::from_secs(60), watch)
                .await
                .expect("the console never showed the expected tasks")
        })
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn the_console_sees_fields_polls_busy_time_and_wakes() {
        let port = free_port();
        let layer = console_subscriber::ConsoleLayer::builder()
            .server_addr(([127, 0, 0, 1], port))
            .publish_interval(Duration::from_millis(20))
            .spawn();
        let here = Location::caller();
        // The console's server stops when its layer is dropped: it stays alive
        // until the end, and is the default on this thread only while the
        // spans are made (the other tests of this binary see nothing).
        let console = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&console, || {
            let named = TaskSpan::new(TaskId(7), Some("worker"), "\"fg\"", Some(42), here).unwrap();
            let other = TaskSpan::new(TaskId(8), None, "\"bg\"", None, here).unwrap();
            for _ in 0..3 {
                let _poll = named.enter();
                // Woken from inside its own poll: a self-wake.
                named.woke();
                std::hint::black_box((0..1000u64).sum::<u64>());
            }
            // Woken from inside another task's poll, and from no poll.
            {
                let _poll = other.enter();
                named.woke();
            }
            named.woke();
            drop(other);
            drop(named);
        });
        let seen = watch(port, |seen| {
            [7, 8].iter().all(|&id| {
                seen.task(id)
                    .is_some_and(|(_, stats)| stats.dropped_at.is_some() && stats.waker_drops == 1)
            })
        });

        let (task, stats) = seen.task(7).unwrap();
        let meta = &seen.metas[&task.metadata.unwrap().id];
        assert_eq!(
            (meta.name.as_str(), meta.target.as_str()),
            ("runtime.spawn", SPAN_TARGET)
        );
        assert_eq!(field(task, "kind"), str_value("task").as_ref());
        assert_eq!(field(task, "task.name"), str_value("worker").as_ref());
        assert_eq!(field(task, "queue"), str_value("\"fg\"").as_ref());
        assert_eq!(field(task, "group"), Some(&proto::field::Value::U64Val(42)));
        let location = task.location.as_ref().unwrap();
        assert_eq!(location.file.as_deref(), Some(here.file()));
        assert_eq!(location.line, Some(here.line()));
        assert_eq!(location.column, Some(here.column()));
        let polls = stats.poll_stats.as_ref().unwrap();
        assert_eq!(polls.polls, 3);
        let busy = polls.busy_time.unwrap();
        assert!(busy.seconds > 0 || busy.nanos > 0, "busy time {busy:?}");
        assert_eq!((stats.wakes, stats.self_wakes), (5, 3));
        assert_eq!((stats.waker_clones, stats.waker_drops), (1, 1));

        // Unnamed, ungrouped: the fields are absent, not empty.
        let (task, stats) = seen.task(8).unwrap();
        assert_eq!(field(task, "task.name"), None);
        assert_eq!(field(task, "group"), None);
        assert_eq!(field(task, "queue"), str_value("\"bg\"").as_ref());
        assert_eq!(stats.poll_stats.as_ref().unwrap().polls, 1);
        assert_eq!((stats.wakes, stats.self_wakes), (0, 0));
    }
}
