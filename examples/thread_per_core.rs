//! A thread-per-core key-value server: one clockworker executor per core,
//! connections sharded by tenant, a built-in client that checks every answer.
//!
//! ```sh
//! cargo run --release --features pool --example thread_per_core
//! cargo run --release --features pool --example thread_per_core -- --pin   # pin workers to cores
//! ```
//!
//! # The design, in four steps
//!
//! 1. **A pool of workers.** `Pool` starts one thread per core; each runs a
//!    Tokio current-thread runtime (its own IO and timers) and one
//!    clockworker `Executor` with two queues: `Requests` (weight 8) and
//!    `Maintenance` (weight 1). When a worker is busy, requests get 8/9 of
//!    its CPU and background sweeps 1/9, and a request that arrives during a
//!    sweep waits for the next poll boundary, not for the sweep. Each worker
//!    starts its sweeper itself, in `on_worker_start`.
//!
//! 2. **Shard by key.** Every tenant's data lives on exactly one worker,
//!    `pool.worker_for(tenant)`, in a plain thread-local `HashMap`: no
//!    `Mutex`, no atomics, no cache lines bouncing between cores, and a
//!    tenant's requests are served in order by one thread. The price: a
//!    tenant that is much busier than the others loads one core only.
//!
//! 3. **Route each connection once.** An acceptor thread reads the first
//!    line of a connection (`HELLO <tenant>`), picks the tenant's worker and
//!    hands the socket over. From then on the connection never leaves that
//!    worker.
//!
//! 4. **`spawn_with`, not `spawn`.** The connection's future holds an `Rc`
//!    to the worker's shard, so it is not `Send` and could not be built on
//!    the acceptor thread. `Spawner::spawn_with` sends only a `Send` closure
//!    (capturing the socket and the tenant's name) to the worker, which
//!    builds the future there.
//!
//! The protocol is one request per line: `SET <key> <value>` → `OK`,
//! `GET <key>` → `VALUE <value>` or `NONE`. Keys are per tenant.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{ExecutorBuilder, Pool, Shutdown, yield_maybe};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    /// Connections: latency matters.
    Requests,
    /// Background sweeps over the shard: they must not delay requests.
    Maintenance,
}

/// How many tenants the client plays, one connection each.
const TENANTS: usize = 32;
/// How many keys each tenant sets and reads back.
const KEYS: usize = 100;

// ------------------------------------------------------------------ the shard

/// One worker's part of the store, with its counters. Only ever touched by
/// its worker's thread, through an `Rc<RefCell<..>>`: no locks.
#[derive(Default)]
struct Shard {
    /// (tenant, key) → value.
    data: HashMap<(String, String), String>,
    /// Bytes of keys and values, as of the last maintenance sweep.
    bytes: usize,
    tenants: usize,
    requests: u64,
    sweeps: u64,
}

thread_local! {
    /// The shard of the worker this thread runs. Each worker thread gets its
    /// own; tasks reach it with `SHARD.with(Rc::clone)`.
    static SHARD: Rc<RefCell<Shard>> = Rc::new(RefCell::new(Shard::default()));
}

impl Shard {
    /// Runs one request line for `tenant` and returns the reply line.
    fn execute(&mut self, tenant: &str, line: &str) -> String {
        self.requests += 1;
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("SET"), Some(key), Some(value)) => {
                self.data
                    .insert((tenant.to_owned(), key.to_owned()), value.to_owned());
                "OK\n".to_owned()
            }
            (Some("GET"), Some(key), None) => {
                match self.data.get(&(tenant.to_owned(), key.to_owned())) {
                    Some(value) => format!("VALUE {value}\n"),
                    None => "NONE\n".to_owned(),
                }
            }
            _ => "ERROR unknown request\n".to_owned(),
        }
    }
}

// ------------------------------------------------------------------ the worker side

/// Serves one connection, on the tenant's worker. Built there by
/// `spawn_with`: it holds an `Rc` to the shard, so it is not `Send`.
async fn serve(stream: std::net::TcpStream, tenant: String, worker: usize) -> Result<()> {
    let shard = SHARD.with(Rc::clone);
    shard.borrow_mut().tenants += 1;
    // Registers the socket with this worker's own runtime (IO driver).
    let stream = TcpStream::from_std(stream)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(format!("WELCOME {worker}\n").as_bytes())
        .await?;
    while let Some(line) = lines.next_line().await? {
        // The borrow ends within the statement: never held across an await,
        // so the shard's other tasks (on this thread) never find it taken.
        let reply = shard.borrow_mut().execute(&tenant, &line);
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// The background job of each worker: every millisecond, sweeps the shard
/// (here it recounts the bytes stored, as a memory limit would). It runs in
/// the `Maintenance` queue, so when requests are waiting it gets 1/9 of the
/// thread, and `yield_maybe` lets a request in between chunks of a long
/// sweep. It never ends by itself: the shutdown's deadline cancels it.
async fn maintain() {
    let shard = SHARD.with(Rc::clone);
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let entries: Vec<usize> = shard
            .borrow()
            .data
            .iter()
            .map(|((tenant, key), value)| tenant.len() + key.len() + value.len())
            .collect();
        let mut bytes = 0;
        for chunk in entries.chunks(256) {
            bytes += chunk.iter().sum::<usize>();
            yield_maybe().await;
        }
        let mut shard = shard.borrow_mut();
        shard.bytes = bytes;
        shard.sweeps += 1;
    }
}

/// What a worker reports at the end.
#[derive(Debug)]
struct WorkerReport {
    tenants: usize,
    requests: u64,
    keys: usize,
    bytes: usize,
    sweeps: u64,
}

// ------------------------------------------------------------------ the acceptor

/// Accepts connections until `stop` fires, and hands each to its tenant's
/// worker. Runs on a thread of its own, with a small runtime of its own.
fn accept_loop(
    pool: &Pool<Queue>,
    listener: std::net::TcpListener,
    mut stop: oneshot::Receiver<()>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                accepted = listener.accept() => hand_off(pool, accepted?.0).await?,
            }
        }
    })
}

/// Reads the connection's `HELLO <tenant>` and moves the socket to the
/// tenant's worker.
async fn hand_off(pool: &Pool<Queue>, mut stream: TcpStream) -> Result<()> {
    // A client that never says hello must not hold up the acceptor.
    let hello = tokio::time::timeout(Duration::from_secs(1), read_line(&mut stream)).await;
    let tenant = match hello {
        Ok(Ok(line)) => match line.strip_prefix("HELLO ") {
            Some(tenant) if !tenant.is_empty() => tenant.to_owned(),
            _ => return Ok(()), // not our protocol: drop the connection
        },
        Ok(Err(_)) | Err(_) => return Ok(()),
    };
    // Shard by key: the same tenant always lands on the same worker.
    let worker = pool.worker_for(&tenant);
    // Detach the socket from this thread's runtime; the worker registers it
    // with its own. A `std::net::TcpStream` is `Send`: it can cross.
    let stream = stream.into_std()?;
    let spawner = pool.spawner(worker).expect("worker_for is in range");
    // `spawn_with`: only the closure crosses threads; the future (which
    // holds an `Rc`) is built on the worker. The handle is dropped: the
    // connection task runs detached and reports its own errors.
    let _connection = spawner.spawn_with(Queue::Requests, move || async move {
        if let Err(error) = serve(stream, tenant, worker).await {
            eprintln!("worker {worker}: connection failed: {error}");
        }
    })?;
    Ok(())
}

/// Reads one `\n`-terminated line, a byte at a time: no byte past the line
/// is read here, so none is stranded in a buffer on the wrong thread.
async fn read_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let byte = stream.read_u8().await?;
        if byte == b'\n' || line.len() > 256 {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(byte);
    }
}

// ------------------------------------------------------------------ the client

/// Plays one tenant: says hello, checks it reached the expected worker,
/// sets `KEYS` keys and reads each back. Returns the requests it made.
async fn tenant_session(address: SocketAddr, tenant: String, expected: usize) -> Result<u64> {
    let stream = TcpStream::connect(address).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut ask = async |request: String| -> Result<String> {
        write.write_all(format!("{request}\n").as_bytes()).await?;
        Ok(lines.next_line().await?.ok_or("connection closed")?)
    };
    let welcome = ask(format!("HELLO {tenant}")).await?;
    if welcome != format!("WELCOME {expected}") {
        return Err(format!("{tenant}: expected worker {expected}, got {welcome:?}").into());
    }
    let mut requests = 0;
    for key in 0..KEYS {
        let value = format!("{tenant}-value-{key}");
        let reply = ask(format!("SET key{key} {value}")).await?;
        let read_back = ask(format!("GET key{key}")).await?;
        if reply != "OK" || read_back != format!("VALUE {value}") {
            return Err(format!("{tenant}: key{key}: {reply:?}, {read_back:?}").into());
        }
        requests += 2;
    }
    // Keys are per tenant: another tenant's keys are not visible.
    if ask("GET key-of-nobody".to_owned()).await? != "NONE" {
        return Err(format!("{tenant}: a missing key was found").into());
    }
    Ok(requests + 1)
}

/// Runs every tenant's session at once; returns the requests made.
async fn run_clients(pool: &Pool<Queue>, address: SocketAddr) -> Result<u64> {
    let mut sessions = tokio::task::JoinSet::new();
    for tenant in 0..TENANTS {
        let tenant = format!("tenant-{tenant}");
        let expected = pool.worker_for(&tenant);
        sessions.spawn(tenant_session(address, tenant, expected));
    }
    let mut requests = 0;
    while let Some(session) = sessions.join_next().await {
        requests += session??;
    }
    Ok(requests)
}

// ------------------------------------------------------------------ main

fn main() -> Result<()> {
    let pin = std::env::args().any(|arg| arg == "--pin");
    // The same queues on every worker; the closure runs on each worker's
    // thread, where its executor will live.
    let pool = Pool::builder(|_worker| {
        ExecutorBuilder::new()
            .with_queue(Queue::Requests, 8)
            .with_queue(Queue::Maintenance, 1)
    })
    // Each worker starts its own sweeper, on its own thread, through its
    // executor's queue handle: a local spawn, no `Send` needed.
    .on_worker_start(|_worker, executor| {
        let maintenance = executor.queue(Queue::Maintenance).expect("configured");
        // Detached: it runs until the shutdown's deadline cancels it.
        let _sweeper = maintenance.spawn(maintain());
    })
    .thread_name("kv-worker")
    .pin_to_cores(pin)
    .build()?;

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?; // as Tokio's `from_std` requires
    let address = listener.local_addr()?;
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let started = Instant::now();
    let (stop, stopped) = oneshot::channel();
    let requests = thread::scope(|scope| -> Result<u64> {
        let acceptor = scope.spawn(|| accept_loop(&pool, listener, stopped));
        // A bound on the whole run, so that a bug cannot hang the example.
        let requests = client.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), run_clients(&pool, address)).await
        });
        let _ = stop.send(());
        let accepted = acceptor.join().map_err(|_| "the acceptor panicked")?;
        accepted?;
        requests.map_err(|_| "the clients timed out")?
    })?;
    let elapsed = started.elapsed();

    // Every worker reports from its own thread-local shard.
    let reports = (0..pool.workers())
        .map(|worker| {
            let report = pool.spawner(worker).expect("in range").spawn_with(
                Queue::Maintenance,
                || async {
                    let shard = SHARD.with(Rc::clone);
                    let shard = shard.borrow();
                    WorkerReport {
                        tenants: shard.tenants,
                        requests: shard.requests,
                        keys: shard.data.len(),
                        bytes: shard.bytes,
                        sweeps: shard.sweeps,
                    }
                },
            )?;
            Ok(client.block_on(report)?)
        })
        .collect::<Result<Vec<WorkerReport>>>()?;

    let mut mapped = vec![0; pool.workers()];
    for tenant in 0..TENANTS {
        mapped[pool.worker_for(&format!("tenant-{tenant}"))] += 1;
    }

    // The clients have closed their connections, whose tasks end as they
    // read the end of the stream; the sweepers never end. A drain with a
    // deadline lets the first finish, then cancels what is left, and joins
    // every worker thread.
    pool.shutdown(Shutdown::Drain {
        deadline: Some(Duration::from_millis(20)),
    })?;

    let served: u64 = reports.iter().map(|report| report.requests).sum();
    assert_eq!(served, requests, "the workers served what the clients sent");
    // Each worker served exactly the tenants that map to it.
    for (worker, report) in reports.iter().enumerate() {
        assert_eq!(report.tenants, mapped[worker], "worker {worker}");
    }
    println!(
        "{} worker{}{}, {TENANTS} tenants (one connection each), {requests} requests \
         answered and checked in {:.1} ms ({:.0} requests/s)",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        if pin { " pinned to cores" } else { "" },
        elapsed.as_secs_f64() * 1e3,
        requests as f64 / elapsed.as_secs_f64(),
    );
    for (worker, report) in reports.iter().enumerate() {
        println!(
            "  worker {worker}: {:>2} tenants, {:>5} requests, {:>5} keys ({} bytes at the last of {} sweeps)",
            report.tenants, report.requests, report.keys, report.bytes, report.sweeps
        );
    }
    Ok(())
}
