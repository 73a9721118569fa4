//! Watching the executor's tasks live in tokio-console (feature `console`).
//!
//! ```sh
//! cargo run --example console --features console            # runs 30 s
//! cargo run --example console --features console -- --secs 120
//! ```
//!
//! and, in another terminal (`cargo install --locked tokio-console`):
//!
//! ```sh
//! tokio-console http://127.0.0.1:6669
//! ```
//!
//! With the `console` feature, every task is a `tracing` span that
//! console-subscriber's layer turns into a row of the console's task list:
//! its name, its queue (and group, if it has one) among the fields, where it
//! was spawned, its polls, busy, scheduled and idle time, and its wakes and
//! self-wakes. Here a "foreground" queue (weight 8) serves request-like
//! tasks: an accept loop spawns a short-lived handler per request, each in
//! its client's group. A "background" queue (weight 1) runs CPU-bound
//! compactions that yield often, so the console shows them polled many times
//! and woken mostly by themselves.
//!
//! console-subscriber refuses to start unless it is built with
//! `--cfg console_without_tokio_unstable` (or `--cfg tokio_unstable`, which
//! also shows Tokio's own tasks). This repository sets the first in
//! `.cargo/config.toml`; an application of yours sets it itself, e.g.
//! `RUSTFLAGS="--cfg console_without_tokio_unstable" cargo run`.
//! `TOKIO_CONSOLE_BIND` (such as `127.0.0.1:7000`) changes the address.

use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, QueueHandle, yield_maybe};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const USAGE: &str = "usage: console [--secs N]   (default 30)";

fn main() {
    let secs = parse_secs();

    // The console's layer, with its gRPC server on a thread of its own
    // (127.0.0.1:6669 unless TOKIO_CONSOLE_BIND says otherwise).
    let console = console_subscriber::ConsoleLayer::builder()
        .with_default_env()
        .spawn();
    tracing_subscriber::registry().with(console).init();
    let address = std::env::var("TOKIO_CONSOLE_BIND").unwrap_or("127.0.0.1:6669".into());
    println!("Serving the console for {secs} s. To connect: tokio-console http://{address}");

    let executor = ExecutorBuilder::new()
        .with_queue("foreground", 8)
        .with_queue("background", 1)
        .build()
        .unwrap();
    let foreground = executor.queue("foreground").unwrap();
    let background = executor.queue("background").unwrap();
    let end = Instant::now() + Duration::from_secs(secs);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let served = runtime.block_on(executor.run_until(async move {
        for level in 0..2 {
            let name = format!("compaction L{level}->L{}", level + 1);
            background.task().name(name).spawn(compaction(end));
        }
        let accept = foreground.task().name("accept-loop");
        accept.spawn(accept_loop(foreground.clone(), end)).await
    }));
    println!("Served {} requests.", served.unwrap());
}

/// Takes a "request" every 20 ms until `end`, each handled by a task of its
/// own in its client's group. Returns how many it took.
async fn accept_loop(queue: QueueHandle, end: Instant) -> u64 {
    let mut requests = 0;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
        requests += 1;
        let client = requests % 4;
        queue
            .group(client)
            .name(format!("request {requests} (client {client})"))
            .spawn(handle(requests));
    }
    requests
}

/// A request: a little parsing, a wait on "storage", a little rendering.
async fn handle(request: u64) {
    cpu(20_000 + request % 7 * 5_000);
    tokio::time::sleep(Duration::from_millis(5 + request % 20)).await;
    cpu(10_000);
}

/// CPU-bound work in slices until `end`: `yield_maybe` gives the thread up
/// when the foreground queue has work or the slice is over.
async fn compaction(end: Instant) {
    while Instant::now() < end {
        cpu(50_000);
        yield_maybe().await;
    }
}

fn cpu(iterations: u64) {
    std::hint::black_box((0..iterations).fold(0u64, |acc, i| acc ^ i.wrapping_mul(31)));
}

fn parse_secs() -> u64 {
    let mut args = std::env::args().skip(1);
    let mut secs = 30;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => secs = n,
                None => exit_with_usage(),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => exit_with_usage(),
        }
    }
    secs
}

fn exit_with_usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2);
}
