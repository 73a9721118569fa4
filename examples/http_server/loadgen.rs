//! The load generator: minimal HTTP/1.1 keep-alive over loopback, on one
//! thread that busy-polls its non-blocking sockets (no reactor, no timer, so
//! nothing of its own rounds a send time up to a timer tick).
//!
//! Open loop: requests are due at fixed-rate Poisson times, whatever the
//! server does; each is sent on an idle connection (a new one is opened when
//! none is idle, up to a limit; past it the request waits for one), and its
//! latency runs from the time it was *due* to the end of its response, so a
//! server that falls behind is charged for the wait (no coordinated
//! omission). Closed loop: each connection sends its next request as soon
//! as the previous response ends; latency runs from the send.
//!
//! Every response is parsed (status line, `Content-Length`) and its body
//! checked.

use crate::core_busy::core_busy;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// How long the generator waits, after the window, for the responses still
/// outstanding before it gives up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests due at `rate` per second, with exponential gaps.
    Open {
        rate: f64,
        max_conns: usize,
        seed: u64,
    },
    /// `conns` connections, each with one request outstanding at all times.
    Closed { conns: usize },
}

/// What the generator reads from the server at the two ends of the window.
#[derive(Clone)]
pub struct Probe {
    /// The server thread's CPU-time clock, where the OS has one.
    pub cpu_clock: Option<CpuClock>,
    /// Background chunks finished so far.
    pub bg_chunks: Arc<AtomicU64>,
    /// The core the server thread is pinned to, if it is.
    pub server_core: Option<usize>,
    /// The server thread's id (Linux), for its context-switch counts.
    pub server_tid: Option<i32>,
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    cpu: Option<Duration>,
    bg_chunks: u64,
    /// Busy time of the server's core, all processes.
    core_busy: Option<Duration>,
    /// Times the server thread was preempted.
    preemptions: Option<u64>,
    /// The generator thread's own CPU time.
    generator_cpu: Option<Duration>,
}

impl Probe {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            cpu: self.cpu_clock.map(CpuClock::read),
            bg_chunks: self.bg_chunks.load(Ordering::Relaxed),
            core_busy: self.server_core.and_then(core_busy),
            preemptions: self.server_tid.and_then(preemptions),
            generator_cpu: CpuClock::of_this_thread().map(CpuClock::read),
        }
    }
}

/// Involuntary context switches of thread `tid` of this process so far.
#[cfg(target_os = "linux")]
fn preemptions(tid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(not(target_os = "linux"))]
fn preemptions(_tid: i32) -> Option<u64> {
    None
}

/// The calling thread's id, where the OS has one readable in /proc.
#[cfg(target_os = "linux")]
pub fn thread_id() -> Option<i32> {
    // SAFETY: gettid has no preconditions.
    Some(unsafe { libc::gettid() })
}

#[cfg(not(target_os = "linux"))]
pub fn thread_id() -> Option<i32> {
    None
}

/// What one measurement saw over its window.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Latencies of the requests due (open loop) or sent (closed loop) in
    /// the window, sorted, in nanoseconds.
    pub latencies: Vec<u64>,
    /// The window's wall time, between the two snapshots.
    pub window: Duration,
    /// The server thread's CPU time over the window.
    pub server_cpu: Option<Duration>,
    /// Background chunks finished over the window.
    pub bg_chunks: u64,
    /// CPU time that other threads and processes took on the server's core
    /// over the window (to 10 ms or so).
    pub others_on_server_core: Option<Duration>,
    /// Times the server thread was preempted over the window.
    pub server_preemptions: Option<u64>,
    /// The generator thread's CPU time over the window: short of the window
    /// when something else took its core, delaying its sends.
    pub generator_cpu: Option<Duration>,
    /// The longest the generator went between two looks at its sockets and
    /// its schedule, in the window: its sends and its reading of responses
    /// were late by up to that much.
    pub generator_stall: Duration,
    /// Connections opened.
    pub connections: usize,
    /// Requests of the window whose response did not come within the drain
    /// limit (left out of `latencies`).
    pub lost: usize,
}

/// One keep-alive connection with at most one request outstanding.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When the outstanding request was due (open loop) or sent (closed).
    started: Option<Instant>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_nonblocking(true).expect("non-blocking socket");
        Conn {
            stream,
            buf: Vec::with_capacity(512),
            started: None,
        }
    }

    fn send(&mut self, started: Instant) {
        // A 27-byte write to an idle socket: the kernel takes it whole.
        let mut sent = 0;
        while sent < REQUEST.len() {
            match self.stream.write(&REQUEST[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => panic!("sending a request: {e}"),
            }
        }
        self.started = Some(started);
    }

    /// Reads what has arrived; returns the request's start once its whole
    /// response is in.
    fn poll(&mut self, body: &[u8]) -> Option<Instant> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed a connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("reading a response: {e}"),
            }
        }
        let (head, total) = response_len(&self.buf)?;
        assert!(
            self.buf.starts_with(b"HTTP/1.1 200"),
            "unexpected response: {:?}",
            String::from_utf8_lossy(&self.buf[..head])
        );
        assert_eq!(&self.buf[head..total], body, "unexpected body");
        assert_eq!(self.buf.len(), total, "bytes after the response");
        self.buf.clear();
        self.started.take()
    }
}

/// `(end of the head, end of the response)` once the head is complete.
fn response_len(buf: &[u8]) -> Option<(usize, usize)> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..head]).expect("ASCII response head");
    let length: usize = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().expect("Content-Length"))
        })
        .expect("a Content-Length header");
    (buf.len() >= head + length).then_some((head, head + length))
}

/// Runs `load` against `addr`: a warm-up, then the measured window. Call it
/// on the generator's own (pinned) thread; it spins that core throughout.
pub fn run(
    addr: SocketAddr,
    load: Load,
    warmup: Duration,
    duration: Duration,
    probe: &Probe,
    body: &[u8],
) -> Outcome {
    let mut generator = Generator {
        addr,
        body: body.to_vec(),
        conns: Vec::new(),
        busy: Vec::new(),
        idle: Vec::new(),
        latencies: Vec::new(),
        stall: Stall::default(),
    };
    let start = Instant::now();
    let window = (start + warmup, start + warmup + duration);
    let (first, last, lost) = match load {
        Load::Open {
            rate,
            max_conns,
            seed,
        } => generator.open_loop(rate, max_conns, seed, window, probe),
        Load::Closed { conns } => generator.closed_loop(conns, window, probe),
    };
    let mut latencies = generator.latencies;
    latencies.sort_unstable();
    let delta =
        |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
    let server_cpu = delta(first.cpu, last.cpu);
    let core_busy = delta(first.core_busy, last.core_busy);
    Outcome {
        latencies,
        window: last.at - first.at,
        server_cpu,
        bg_chunks: last.bg_chunks - first.bg_chunks,
        others_on_server_core: core_busy
            .zip(server_cpu)
            .map(|(core, server)| core.saturating_sub(server)),
        server_preemptions: first
            .preemptions
            .zip(last.preemptions)
            .map(|(a, b)| b.saturating_sub(a)),
        generator_cpu: delta(first.generator_cpu, last.generator_cpu),
        generator_stall: generator.stall.longest,
        connections: generator.conns.len(),
        lost,
    }
}

struct Generator {
    addr: SocketAddr,
    body: Vec<u8>,
    conns: Vec<Conn>,
    /// Connections with a request outstanding, and the idle ones.
    busy: Vec<usize>,
    idle: Vec<usize>,
    latencies: Vec<u64>,
    stall: Stall,
}

/// The longest gap between two iterations of the generator's loop, in the
/// window.
#[derive(Default)]
struct Stall {
    last: Option<Instant>,
    longest: Duration,
}

impl Stall {
    fn tick(&mut self, now: Instant, (from, to): (Instant, Instant)) {
        if let Some(last) = self.last {
            if now >= from && last < to {
                self.longest = self.longest.max(now - last);
            }
        }
        self.last = Some(now);
    }
}

/// The snapshots at both ends of the window, taken by whichever loop
/// iteration first sees each end pass.
#[derive(Default)]
struct Window {
    first: Option<Snapshot>,
    last: Option<Snapshot>,
}

impl Window {
    /// Takes the snapshots that are due; whether the window is over.
    fn advance(&mut self, now: Instant, (from, to): (Instant, Instant), probe: &Probe) -> bool {
        if self.first.is_none() && now >= from {
            self.first = Some(probe.snapshot());
        }
        if self.last.is_none() && now >= to {
            self.last = Some(probe.snapshot());
        }
        self.last.is_some()
    }

    fn ends(self) -> (Snapshot, Snapshot) {
        (self.first.unwrap(), self.last.unwrap())
    }
}

impl Generator {
    fn open_connection(&mut self) -> usize {
        self.conns.push(Conn::open(self.addr));
        self.conns.len() - 1
    }

    /// Polls the busy connections once; calls `done(conn, started, now)` for
    /// each finished response, after moving the connection to `idle`.
    fn poll_busy(&mut self, mut done: impl FnMut(&mut Self, usize, Instant, Instant)) {
        let mut i = 0;
        while i < self.busy.len() {
            let conn = self.busy[i];
            match self.conns[conn].poll(&self.body) {
                Some(started) => {
                    let now = Instant::now();
                    self.busy.swap_remove(i);
                    self.idle.push(conn);
                    done(self, conn, started, now);
                }
                None => i += 1,
            }
        }
    }

    fn record(&mut self, started: Instant, finished: Instant, (from, to): (Instant, Instant)) {
        if started >= from && started < to {
            self.latencies.push((finished - started).as_nanos() as u64);
        }
    }

    fn send(&mut self, conn: usize, started: Instant) {
        self.conns[conn].send(started);
        self.busy.push(conn);
    }

    fn open_loop(
        &mut self,
        rate: f64,
        max_conns: usize,
        seed: u64,
        window: (Instant, Instant),
        probe: &Probe,
    ) -> (Snapshot, Snapshot, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut gap = || {
            let u: f64 = rng.r#gen();
            Duration::from_secs_f64(-(1.0 - u).ln() / rate)
        };
        // A few connections up front; more as bursts need them.
        for _ in 0..max_conns.min(8) {
            let conn = self.open_connection();
            self.idle.push(conn);
        }
        let mut ends = Window::default();
        let mut due = Instant::now();
        let mut waiting: VecDeque<Instant> = VecDeque::new();
        let mut drain_until = None;
        loop {
            let now = Instant::now();
            self.stall.tick(now, window);
            if ends.advance(now, window, probe) {
                let limit = *drain_until.get_or_insert(now + DRAIN_LIMIT);
                if (self.busy.is_empty() && waiting.is_empty()) || now >= limit {
                    break;
                }
            }
            while due <= now && due < window.1 {
                waiting.push_back(due);
                due += gap();
            }
            while let Some(&started) = waiting.front() {
                let conn = match self.idle.pop() {
                    Some(conn) => conn,
                    None if self.conns.len() < max_conns => self.open_connection(),
                    None => break,
                };
                waiting.pop_front();
                self.send(conn, started);
            }
            self.poll_busy(|this, _, started, finished| this.record(started, finished, window));
        }
        let lost = self.unfinished(window) + waiting.iter().filter(|t| **t >= window.0).count();
        let (first, last) = ends.ends();
        (first, last, lost)
    }

    fn closed_loop(
        &mut self,
        conns: usize,
        window: (Instant, Instant),
        probe: &Probe,
    ) -> (Snapshot, Snapshot, usize) {
        for _ in 0..conns {
            let conn = self.open_connection();
            self.send(conn, Instant::now());
        }
        let mut ends = Window::default();
        let mut drain_until = None;
        loop {
            let now = Instant::now();
            self.stall.tick(now, window);
            let over = ends.advance(now, window, probe);
            if over {
                let limit = *drain_until.get_or_insert(now + DRAIN_LIMIT);
                if self.busy.is_empty() || now >= limit {
                    break;
                }
            }
            self.poll_busy(|this, conn, started, finished| {
                this.record(started, finished, window);
                if finished < window.1 {
                    this.idle.pop();
                    this.send(conn, Instant::now());
                }
            });
        }
        let lost = self.unfinished(window);
        let (first, last) = ends.ends();
        (first, last, lost)
    }

    /// Requests of the window still outstanding.
    fn unfinished(&self, (from, to): (Instant, Instant)) -> usize {
        self.busy
            .iter()
            .filter_map(|&conn| self.conns[conn].started)
            .filter(|started| *started >= from && *started < to)
            .count()
    }
}

/// A thread's CPU-time clock, readable from any thread.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock(#[cfg(target_os = "linux")] libc::clockid_t);

impl CpuClock {
    /// The calling thread's CPU-time clock.
    #[cfg(target_os = "linux")]
    pub fn of_this_thread() -> Option<CpuClock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `pthread_self` is always valid; `clock` is writable.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        (rc == 0).then_some(CpuClock(clock))
    }

    #[cfg(not(target_os = "linux"))]
    pub fn of_this_thread() -> Option<CpuClock> {
        None
    }

    /// CPU time the thread has used so far.
    #[cfg(target_os = "linux")]
    pub fn read(self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id came from
        // `pthread_getcpuclockid` for a thread that outlives the reads.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime on a thread CPU clock failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn read(self) -> Duration {
        Duration::ZERO
    }
}
