//! The executor's tasks in tokio-console (feature `console`), end to end: the
//! real console-subscriber layer and gRPC server run in this process on a
//! loopback port, the executor runs named tasks in two queues, and the test
//! reads back what the server publishes with the console's own client
//! (console-api), as tokio-console does.
//!
//! Tokio's own tasks appear only with `--cfg tokio_unstable`, which this
//! build does not set: every task the console shows is the executor's.

use std::collections::HashMap;
use std::time::Duration;

use clockworker::{ExecutorBuilder, yield_now};
use console_api as proto;
use futures::StreamExt;
use futures::channel::mpsc;
use proto::instrument::instrument_client::InstrumentClient;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[test]
fn tasks_show_in_the_console_with_names_queues_locations_polls_and_wakes() {
    let port = free_port();
    let layer = console_subscriber::ConsoleLayer::builder()
        .server_addr(([127, 0, 0, 1], port))
        .publish_interval(Duration::from_millis(20))
        .spawn();
    // The process's default, as in a program: a wake may come from any
    // thread. The only test in this binary, so it is set once.
    tracing_subscriber::registry().with(layer).init();

    let executor = ExecutorBuilder::new()
        .with_queue("foreground", 8)
        .with_queue("background", 1)
        .build()
        .unwrap();
    let fg = executor.queue("foreground").unwrap();
    let bg = executor.queue("background").unwrap();

    // Each spawn's line, for the locations the console shows.
    let accept = fg.task().name("accept-loop").spawn(accept_loop());
    let accept_line = line!() - 1;
    let yielder = bg.task().name("yielder").spawn(yielder());
    let yielder_line = line!() - 1;
    let (tx, rx) = mpsc::unbounded();
    let receiver = fg.group("tenant").name("receiver").spawn(receiver(rx));
    let receiver_line = line!() - 1;
    let sender = bg.task().name("sender").spawn(sender(tx));
    let sender_line = line!() - 1;
    let unnamed = bg.spawn(work());
    let unnamed_line = line!() - 1;

    // The executor's task ids, which the console shows as `task.id`.
    let id = |id: Option<clockworker::TaskId>| id.unwrap().as_u64();
    let ids = HashMap::from([
        ("accept-loop", id(accept.id())),
        ("yielder", id(yielder.id())),
        ("receiver", id(receiver.id())),
        ("sender", id(sender.id())),
        ("unnamed", id(unnamed.id())),
    ]);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(executor.run_until(async {
        accept.await.unwrap();
        yielder.await.unwrap();
        assert_eq!(receiver.await.unwrap(), 3);
        sender.await.unwrap();
        unnamed.await.unwrap();
    }));

    // Every task has ended (its span closed) by now; wait until the console
    // has said so for all of them.
    let seen = watch(port, |seen| {
        ids.values().all(|&id| {
            seen.task(id)
                .is_some_and(|(_, stats)| stats.dropped_at.is_some())
        })
    });

    let expected = [
        ("accept-loop", "foreground", accept_line),
        ("yielder", "background", yielder_line),
        ("receiver", "foreground", receiver_line),
        ("sender", "background", sender_line),
        ("unnamed", "background", unnamed_line),
    ];
    for (name, queue, line) in expected {
        let (task, stats) = seen.task(ids[name]).unwrap();
        let meta = &seen.metas[&task.metadata.unwrap().id];
        assert_eq!(meta.name, "runtime.spawn", "{name}");
        assert!(
            meta.target.starts_with("runtime"),
            "{name}: {}",
            meta.target
        );
        assert_eq!(field(task, "kind"), Some(str_value("task")), "{name}");
        let shown_name = (name != "unnamed").then(|| str_value(name));
        assert_eq!(field(task, "task.name"), shown_name, "{name}");
        // The queue's key as `Debug` prints it.
        let queue = str_value(&format!("{queue:?}"));
        assert_eq!(field(task, "queue"), Some(queue), "{name}");
        let location = task.location.as_ref().unwrap();
        let file = location.file.as_deref().unwrap();
        assert!(file.ends_with("tests/console.rs"), "{name}: {file}");
        assert_eq!(location.line, Some(line), "{name}");
        assert!(location.column.is_some_and(|col| col > 0), "{name}");

        let polls = stats.poll_stats.as_ref().unwrap();
        assert!(polls.polls >= 1, "{name}");
        let busy = polls.busy_time.unwrap();
        assert!(busy.seconds > 0 || busy.nanos > 0, "{name}: busy {busy:?}");
        // One notional waker while the task lived, none once it ended.
        assert_eq!((stats.waker_clones, stats.waker_drops), (1, 1), "{name}");
    }

    // Only the task spawned into a group shows one.
    let group = proto::field::Value::U64Val(clockworker::group_id("tenant"));
    assert_eq!(
        field(seen.task(ids["receiver"]).unwrap().0, "group"),
        Some(group)
    );
    assert_eq!(
        field(seen.task(ids["accept-loop"]).unwrap().0, "group"),
        None
    );

    let stats = |name: &str| seen.task(ids[name]).unwrap().1;
    let polls = |name: &str| stats(name).poll_stats.as_ref().unwrap().polls;
    // Three timer wakes, each from Tokio's driver, outside every task.
    assert!(polls("accept-loop") >= 4, "{}", polls("accept-loop"));
    assert!(stats("accept-loop").wakes >= 3);
    // Five yields: each a wake of the task by itself, then a poll.
    assert_eq!(polls("yielder"), 6);
    assert_eq!(
        (stats("yielder").wakes, stats("yielder").self_wakes),
        (5, 5)
    );
    assert_eq!(polls("sender"), 4);
    assert_eq!((stats("sender").wakes, stats("sender").self_wakes), (3, 3));
    // Woken only by the sender, from inside the sender's polls.
    assert!(polls("receiver") >= 2, "{}", polls("receiver"));
    assert!(stats("receiver").wakes >= 1);
    assert_eq!(stats("receiver").self_wakes, 0);
    // Done in one poll, never woken.
    assert_eq!(polls("unnamed"), 1);
    assert_eq!(stats("unnamed").wakes, 0);
}

/// A loop that waits on a timer between rounds of work.
async fn accept_loop() {
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        work().await;
    }
}

/// Work in slices, yielding between them.
async fn yielder() {
    for _ in 0..5 {
        work().await;
        yield_now().await;
    }
}

/// Sends three messages, yielding after each.
async fn sender(tx: mpsc::UnboundedSender<u32>) {
    for message in 0..3 {
        tx.unbounded_send(message).unwrap();
        yield_now().await;
    }
}

/// Handles messages until the sender is gone; returns how many.
async fn receiver(mut rx: mpsc::UnboundedReceiver<u32>) -> u32 {
    let mut received = 0;
    while rx.next().await.is_some() {
        work().await;
        received += 1;
    }
    received
}

/// Some CPU work, so that every poll takes measurable time.
async fn work() {
    std::hint::black_box((0..10_000u64).sum::<u64>());
}

/// What the console has published so far: tasks and their latest stats by
/// span id, and span metadata by id.
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
            // Only the stats that changed come in an update: merge.
            self.stats.extend(tasks.stats_update);
        }
    }

    /// The task whose `task.id` field (the executor's task id) is `id`, with
    /// its stats.
    fn task(&self, id: u64) -> Option<(&proto::tasks::Task, &proto::tasks::Stats)> {
        let id = proto::field::Value::U64Val(id);
        let task = self
            .tasks
            .values()
            .find(|task| field(task, "task.id").as_ref() == Some(&id))?;
        Some((task, self.stats.get(&task.id?.id)?))
    }
}

/// The value of a task's field, by name.
fn field(task: &proto::tasks::Task, name: &str) -> Option<proto::field::Value> {
    task.fields
        .iter()
        .find(|f| matches!(&f.name, Some(proto::field::Name::StrName(n)) if n == name))
        .and_then(|f| f.value.clone())
}

fn str_value(value: &str) -> proto::field::Value {
    proto::field::Value::StrVal(value.to_string())
}

/// Reads the console's updates until `done` holds. Panics after a minute: a
/// guard against a hang, as the server publishes every few milliseconds.
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
            .expect("the console never showed every task as ended")
    })
}

/// A free loopback port for the console's server.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}
