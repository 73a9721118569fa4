//! An HTTP server benchmark: request latency on a thread that also runs
//! CPU-heavy background work, Clockworker side by side with Tokio.
//!
//! ```sh
//! cargo run --release --example http_server
//! cargo run --release --example http_server -- --duration 2 --runs 3 --only a,c --json
//! ```
//!
//! # Setup
//!
//! The server is hyper's HTTP/1.1 server on one thread pinned to core 0, in
//! a Tokio current-thread runtime with IO enabled. Each request spins for
//! 50 µs on `Instant` (its CPU work) and answers a 12-byte body.
//!
//! The load generator, in `loadgen.rs`, runs on a thread pinned to core 1
//! and speaks HTTP/1.1 keep-alive over loopback itself (no `wrk` needed),
//! busy-polling its sockets:
//!
//! - **open loop**: requests due at a fixed rate with Poisson (exponential)
//!   gaps, one outstanding per connection, new connections opened as needed
//!   (up to `--max-conns`); latency runs from the time a request was *due*
//!   to the end of its response, so a server that falls behind is charged
//!   for it (no coordinated omission). Two rates, by default ~20 % and ~60 %
//!   of the core: a short calibration measures the server's CPU time per
//!   request (one connection, closed loop, Tokio without background) and
//!   divides.
//! - **closed loop**: 4 and 16 connections, each sending its next request
//!   as soon as the previous response ends; latency runs from the send.
//!
//! Each measurement starts a fresh server, warms up (`--warmup`), then
//! measures for `--duration`. A default run, 16 measurements of 6 s and the
//! calibration, takes about two minutes. The example needs no feature: the
//! server spawns its connections with `queue.spawn`. (`report.rs` formats
//! the results.)
//!
//! # Columns
//!
//! - **a. `Tokio, no background`** (the baseline): a `LocalSet`; the accept
//!   loop and each connection are `spawn_local`ed.
//! - **b. `Tokio + background`**: the same, plus 4 background loops that
//!   each spin 200 µs chunks and `tokio::task::yield_now().await` between.
//! - **c. `Clockworker + background, defaults`**:
//!   `ExecutorBuilder::new().with_queue(Fg, 99).with_queue(Bg, 1).build()`,
//!   every other setting at its default, run the way the README's quick
//!   start runs it: `rt.block_on(local.run_until(executor.run_until(..)))`.
//!   The accept loop and every connection are tasks of `Fg`
//!   (`queue.spawn` per connection: HTTP/1.1 spawns nothing else; for
//!   HTTP/2, hand hyper the `QueueHandle` as its executor, with the `hyper`
//!   feature); 4 background loops of 200 µs chunks with
//!   `clockworker::yield_maybe().await` between run in `Bg`.
//! - **d. `Clockworker, no background`**: column c without the background.
//!
//! # Reading the output
//!
//! One table row per mode and column: achieved requests/s; p50, p90 and p99
//! latency; `busy`, the server thread's CPU busy share over the window (its
//! CPU time, from `CLOCK_THREAD_CPUTIME_ID`, over wall time); background
//! chunks per second and `bg CPU`, the share of the thread they stand for
//! (chunks × 200 µs); `conns`, the connections the generator opened.
//!
//! Right of the bar, whether the machine was quiet (Linux): `others`, the
//! share of the server's core that other threads and processes took (from
//! /proc/stat, to about 10 ms); `preempt/s`, how often the server thread
//! was preempted; `gen stall`, the longest the generator went without
//! looking at its sockets (its sends and reads were late by that much,
//! which adds to the latency of whichever column was running). The
//! measurements where other processes took over 3 % of either core, or the
//! generator stalled for over 1 ms, are listed under the table: their
//! figures, p99 most, are skewed.
//!
//! Then the goals, for the background columns against column a in the same
//! mode (PASS/MISS for column c, for information for column b):
//! p50 ≤ 1.15×, p99 ≤ 1.30×, and in open loop a background share of at least
//! 0.90× the CPU the foreground leaves, where that is 1 − column a's busy
//! share at the same load. (In closed loop the foreground takes the whole
//! core, so nothing is left to compare with.) Figures are medians over
//! `--runs`. Last, the executor statistics (`ExecutorStats` and each queue's
//! `QueueStats`) of the Clockworker columns' last run of each mode, which
//! cover the warm-up and the window.
//!
//! The figures mean something only on an otherwise idle machine with two
//! cores to spare: the generator spins its core throughout.

#[path = "../shared/core_busy.rs"]
mod core_busy;
mod loadgen;
mod report;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, ExecutorStats, QueueStats, yield_maybe};
use core_affinity::CoreId;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::LocalSet;

use loadgen::{CpuClock, Load, Outcome, Probe};
use report::{Figures, Row};

/// CPU work per request.
const REQUEST_CPU: Duration = Duration::from_micros(50);
/// CPU work per background chunk.
/// CPU of one background chunk, between two yields: `--chunk`, 200 µs by
/// default. A request that arrives during a chunk waits for its end, on
/// every cooperative executor: half a chunk on average.
static CHUNK_MICROS: AtomicU64 = AtomicU64::new(200);

/// The background chunk's CPU (see [`CHUNK_MICROS`]).
fn chunk_cpu() -> Duration {
    Duration::from_micros(CHUNK_MICROS.load(Ordering::Relaxed))
}
/// Background loops in the background columns.
const BACKGROUND_LOOPS: usize = 4;
/// The response body.
const BODY: &[u8] = b"hello world\n";

const USAGE: &str = "\
An HTTP server benchmark: request latency with CPU-heavy background work on
the same thread, Clockworker side by side with Tokio.

USAGE: cargo run --release --example http_server -- [OPTIONS]

OPTIONS:
  --duration SECS   measured window of each measurement [default: 5]
  --warmup SECS     warm-up before each window [default: 1]
  --runs N          repeat everything N times; report medians [default: 1]
  --rates A,B       open-loop rates in requests/s [default: ~20% and ~60% of
                    the core, from a calibration]
  --conns A,B       closed-loop connection counts [default: 4,16]
  --max-conns N     open loop: most connections to open [default: 64]
  --only LIST       columns to run, by letter (a-d) or number (1-4)
  --json            print all figures as JSON on stdout (the table goes to stderr)
  --no-stats        leave out the Clockworker columns' executor statistics
  --chunk US        CPU of one background chunk between yields [default: 200]
  --driver-yield US Clockworker columns: this driver_yield, in µs, instead of
                    the default (to measure the setting's trade-off)
";

#[derive(Debug, Clone)]
struct Config {
    duration: Duration,
    warmup: Duration,
    runs: usize,
    rates: Option<Vec<f64>>,
    conns: Vec<usize>,
    max_conns: usize,
    columns: Vec<Column>,
    json: bool,
    stats: bool,
    /// Clockworker columns: `driver_yield` instead of its default, to
    /// measure the setting's trade-off.
    driver_yield: Option<Duration>,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        runs: 1,
        rates: None,
        conns: vec![4, 16],
        max_conns: 64,
        columns: Column::ALL.to_vec(),
        json: false,
        stats: true,
        driver_yield: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let seconds = |v: String| {
            number::<f64>(&flag, &v).and_then(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| format!("{flag}: `{v}` seconds?"))
            })
        };
        match flag.as_str() {
            "--duration" => config.duration = seconds(value()?)?,
            "--warmup" => config.warmup = seconds(value()?)?,
            "--runs" => config.runs = number(&flag, &value()?)?,
            "--rates" => config.rates = Some(list(&flag, &value()?)?),
            "--conns" => config.conns = list(&flag, &value()?)?,
            "--max-conns" => config.max_conns = number(&flag, &value()?)?,
            "--only" => {
                config.columns = value()?
                    .split(',')
                    .map(|c| Column::parse(c.trim()).ok_or(format!("--only: no column `{c}`")))
                    .collect::<Result<_, _>>()?;
            }
            "--json" => config.json = true,
            "--no-stats" => config.stats = false,
            "--chunk" => {
                let micros: u64 = number(&flag, &value()?)?;
                CHUNK_MICROS.store(micros.max(1), Ordering::Relaxed);
            }
            "--driver-yield" => {
                let micros: u64 = number(&flag, &value()?)?;
                config.driver_yield = Some(Duration::from_micros(micros));
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    let positive_rates = config.rates.iter().flatten().all(|r| *r > 0.0);
    if config.runs == 0 || config.duration.is_zero() || config.max_conns == 0 || !positive_rates {
        return Err("--runs, --duration, --max-conns and rates must be greater than zero".into());
    }
    if config.conns.contains(&0) {
        return Err("--conns: a connection count must be greater than zero".into());
    }
    Ok(config)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: `{value}` is not a valid number"))
}

fn list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value.split(',').map(|v| number(flag, v.trim())).collect()
}

// ============================================================================
// Columns and modes
// ============================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    TokioAlone,
    TokioBackground,
    ClockworkerBackground,
    ClockworkerAlone,
}

impl Column {
    const ALL: [Column; 4] = [
        Column::TokioAlone,
        Column::TokioBackground,
        Column::ClockworkerBackground,
        Column::ClockworkerAlone,
    ];

    fn parse(text: &str) -> Option<Column> {
        let index = match text {
            "a" | "1" => 0,
            "b" | "2" => 1,
            "c" | "3" => 2,
            "d" | "4" => 3,
            _ => return None,
        };
        Some(Column::ALL[index])
    }

    fn name(self) -> &'static str {
        match self {
            Column::TokioAlone => "a. Tokio, no background",
            Column::TokioBackground => "b. Tokio + background",
            Column::ClockworkerBackground => "c. Clockworker + background, defaults",
            Column::ClockworkerAlone => "d. Clockworker, no background",
        }
    }

    fn has_background(self) -> bool {
        matches!(
            self,
            Column::TokioBackground | Column::ClockworkerBackground
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Open(f64),
    Closed(usize),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Open(rate) => format!("open {rate:.0}/s"),
            Mode::Closed(conns) => format!("closed {conns} conns"),
        }
    }

    fn load(self, config: &Config, run: usize) -> Load {
        match self {
            Mode::Open(rate) => Load::Open {
                rate,
                max_conns: config.max_conns,
                // The same arrival times in every column of a run.
                seed: 1000 + run as u64,
            },
            Mode::Closed(conns) => Load::Closed { conns },
        }
    }
}

// ============================================================================
// The server
// ============================================================================

/// Where the threads run: the server on core 0, the generator on core 1.
#[derive(Debug, Clone, Copy)]
struct Cores {
    server: Option<CoreId>,
    generator: Option<CoreId>,
}

impl Cores {
    fn detect() -> Cores {
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        if ids.len() < 2 {
            eprintln!("warning: fewer than 2 cores; running unpinned, expect noisy figures");
            return Cores {
                server: None,
                generator: None,
            };
        }
        Cores {
            server: Some(ids[0]),
            generator: Some(ids[1]),
        }
    }
}

fn pin(core: Option<CoreId>) {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            eprintln!("warning: could not pin a thread to core {}", core.id);
        }
    }
}

/// Busy CPU work for `duration` of wall time (the thread has its core).
fn spin(duration: Duration) {
    let start = Instant::now();
    let mut acc = 0u64;
    while start.elapsed() < duration {
        for _ in 0..32 {
            acc = acc
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        std::hint::black_box(acc);
    }
}

/// Serves one connection: every request spins `REQUEST_CPU` and answers `BODY`.
async fn serve_connection(stream: TcpStream) {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let service = service_fn(|_request: Request<Incoming>| async {
        spin(REQUEST_CPU);
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
    });
    // Errors are the generator closing its connections at the end.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Queue {
    Fg,
    Bg,
}

/// A Clockworker column's statistics at the end of a measurement.
#[derive(Debug, Clone)]
struct CwStats {
    executor: ExecutorStats,
    queues: Vec<(Queue, QueueStats)>,
}

/// A running server: where it listens, what the generator reads from it,
/// how to stop it.
struct Server {
    addr: SocketAddr,
    probe: Probe,
    stop: oneshot::Sender<()>,
    thread: thread::JoinHandle<Option<CwStats>>,
}

/// Starts `column`'s server on its own thread, pinned to `core`.
fn start_server(column: Column, core: Option<CoreId>, driver_yield: Option<Duration>) -> Server {
    let bg_chunks = Arc::new(AtomicU64::new(0));
    let chunks = Arc::clone(&bg_chunks);
    let (stop, stopped) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            pin(core);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let listener = rt
                .block_on(TcpListener::bind("127.0.0.1:0"))
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("local address");
            ready_tx
                .send((addr, CpuClock::of_this_thread(), loadgen::thread_id()))
                .expect("main thread");
            match column {
                Column::TokioAlone | Column::TokioBackground => {
                    run_tokio(&rt, listener, column.has_background(), chunks, stopped);
                    None
                }
                Column::ClockworkerBackground | Column::ClockworkerAlone => Some(run_clockworker(
                    &rt,
                    listener,
                    column.has_background(),
                    driver_yield,
                    chunks,
                    stopped,
                )),
            }
        })
        .expect("server thread");
    let (addr, cpu_clock, server_tid) = ready_rx.recv().expect("server start");
    Server {
        addr,
        probe: Probe {
            cpu_clock,
            bg_chunks,
            server_core: core.map(|c| c.id),
            server_tid,
        },
        stop,
        thread,
    }
}

/// Columns a and b: everything `spawn_local`ed on a `LocalSet`.
fn run_tokio(
    rt: &tokio::runtime::Runtime,
    listener: TcpListener,
    background: bool,
    chunks: Arc<AtomicU64>,
    stopped: oneshot::Receiver<()>,
) {
    LocalSet::new().block_on(rt, async move {
        if background {
            for _ in 0..BACKGROUND_LOOPS {
                let chunks = Arc::clone(&chunks);
                tokio::task::spawn_local(async move {
                    loop {
                        spin(chunk_cpu());
                        chunks.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                });
            }
        }
        tokio::task::spawn_local(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                tokio::task::spawn_local(serve_connection(stream));
            }
        });
        let _ = stopped.await;
    });
}

/// Columns c and d: an executor with every setting at its default but the
/// two queues; connections in `Fg`, background loops in `Bg`.
fn run_clockworker(
    rt: &tokio::runtime::Runtime,
    listener: TcpListener,
    background: bool,
    driver_yield: Option<Duration>,
    chunks: Arc<AtomicU64>,
    stopped: oneshot::Receiver<()>,
) -> CwStats {
    let mut builder = ExecutorBuilder::new()
        .with_queue(Queue::Fg, 99)
        .with_queue(Queue::Bg, 1);
    if let Some(driver_yield) = driver_yield {
        builder = builder.with_driver_yield(driver_yield);
    }
    let executor = builder.build().expect("executor");
    let fg = executor.queue(Queue::Fg).expect("Fg queue");
    let bg = executor.queue(Queue::Bg).expect("Bg queue");
    let local = LocalSet::new();
    rt.block_on(local.run_until(executor.run_until(async move {
        if background {
            for _ in 0..BACKGROUND_LOOPS {
                let chunks = Arc::clone(&chunks);
                bg.spawn(async move {
                    loop {
                        spin(chunk_cpu());
                        chunks.fetch_add(1, Ordering::Relaxed);
                        yield_maybe().await;
                    }
                });
            }
        }
        let connections = fg.clone();
        fg.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                connections.spawn(serve_connection(stream));
            }
        });
        let _ = stopped.await;
    })));
    // Before the executor is dropped, which cancels the tasks.
    CwStats {
        executor: executor.stats(),
        queues: executor.all_queue_stats(),
    }
}

// ============================================================================
// Measurements
// ============================================================================

/// Starts a server for `column`, runs `load` against it from the generator
/// core, stops the server.
fn measure(
    column: Column,
    load: Load,
    warmup: Duration,
    duration: Duration,
    cores: Cores,
    driver_yield: Option<Duration>,
) -> (Outcome, Option<CwStats>) {
    let server = start_server(column, cores.server, driver_yield);
    let (addr, probe) = (server.addr, server.probe.clone());
    let outcome = thread::Builder::new()
        .name("loadgen".into())
        .spawn(move || {
            pin(cores.generator);
            loadgen::run(addr, load, warmup, duration, &probe, BODY)
        })
        .expect("generator thread")
        .join()
        .expect("the load generator panicked");
    let _ = server.stop.send(());
    let stats = server.thread.join().expect("the server panicked");
    if outcome.lost > 0 {
        eprintln!(
            "warning: {} requests of the window got no response",
            outcome.lost
        );
    }
    (outcome, stats)
}

/// Open-loop rates at ~20 % and ~60 % of the core, from the server's CPU
/// time per request with one connection (no batching of requests).
fn calibrate(cores: Cores) -> (Vec<f64>, Option<Duration>) {
    let load = Load::Closed { conns: 1 };
    let (outcome, _) = measure(
        Column::TokioAlone,
        load,
        Duration::from_millis(500),
        Duration::from_millis(1500),
        cores,
        None,
    );
    let requests = outcome.latencies.len().max(1) as f64;
    // Without a thread CPU clock, assume the closed loop kept the core busy.
    let cost = match outcome.server_cpu {
        Some(cpu) => cpu.as_secs_f64() / requests,
        None => outcome.window.as_secs_f64() / requests,
    };
    let rates = [0.2, 0.6].map(|share| (share / cost / 100.0).round() * 100.0);
    (rates.to_vec(), Some(Duration::from_secs_f64(cost)))
}

// ============================================================================
// Main
// ============================================================================

fn main() {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let cores = Cores::detect();
    let (rates, cost) = match &config.rates {
        Some(rates) => (rates.clone(), None),
        None => {
            eprintln!("calibrating: CPU time per request, one connection, column a ...");
            let (rates, cost) = calibrate(cores);
            if let Some(cost) = cost {
                eprintln!(
                    "  {:.1} µs of server CPU per request (of which {} µs of spin): \
                     open-loop rates {rates:?} req/s",
                    cost.as_secs_f64() * 1e6,
                    REQUEST_CPU.as_micros()
                );
            }
            (rates, cost)
        }
    };
    let modes: Vec<Mode> = (rates.iter().map(|&r| Mode::Open(r)))
        .chain(config.conns.iter().map(|&c| Mode::Closed(c)))
        .collect();

    let mut rows: Vec<Row> = modes
        .iter()
        .flat_map(|&mode| {
            config.columns.iter().map(move |&column| Row {
                mode,
                column,
                runs: Vec::new(),
                median: Figures::default(),
                stats: None,
            })
        })
        .collect();
    let total = rows.len() * config.runs;
    let mut done = 0;
    for run in 0..config.runs {
        for row in rows.iter_mut() {
            done += 1;
            eprintln!(
                "[{done}/{total}] run {} {:<16} {}",
                run + 1,
                row.mode.name(),
                row.column.name()
            );
            let load = row.mode.load(&config, run);
            let (outcome, stats) = measure(
                row.column,
                load,
                config.warmup,
                config.duration,
                cores,
                config.driver_yield,
            );
            row.runs.push(Figures::of(&outcome));
            row.stats = stats;
        }
    }
    for row in rows.iter_mut() {
        row.median = Figures::median(&row.runs);
    }

    let goals = report::goals(&rows);
    let text = report::text(&config, &rows, &goals);
    if config.json {
        eprint!("{text}");
        let json = report::to_json(&config, cost, &rows, &goals);
        println!("{}", serde_json::to_string_pretty(&json).unwrap());
    } else {
        print!("{text}");
    }
}
