//! Stall detection while it happens: a thread that notices a poll running
//! longer than a threshold *while it is still running* (an infinite loop, a
//! blocking call), and reports which task it is.
//!
//! The executor publishes each poll in a [`Beacon`]: before the poll, the
//! task's identity (under a mutex no one else takes while the thread is
//! healthy) and the clock reading at its start; then a sequence number, odd
//! while a poll runs. The watchdog thread wakes a few times per threshold,
//! and if the same odd sequence number has stood for the threshold, reports
//! that poll once. Disabled, none of this exists: the executor's loop tests
//! one `Option`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::base::clock::Clock;
use crate::observe::slow::PollReport;

/// A stall report callback, with queue keys resolved; runs on the watchdog
/// thread.
pub(crate) type StallFn = Box<dyn Fn(&PollReport) + Send>;

/// What the executor tells the watchdog about the poll in progress.
#[derive(Debug, Default)]
struct Beacon {
    /// Incremented as each poll starts and as it ends: odd while one runs.
    seq: AtomicU64,
    /// Raw clock reading at the start of the running poll.
    started: AtomicU64,
    /// The running poll's task (its duration is filled in when reported).
    task: Mutex<Option<PollReport>>,
    stop: AtomicBool,
}

/// The watchdog thread and its beacon. Dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Watchdog {
    beacon: Arc<Beacon>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the thread: it reports each poll that runs for `threshold` or
    /// longer, once, to `report`.
    pub(crate) fn start(
        clock: Clock,
        threshold: Duration,
        report: StallFn,
    ) -> std::io::Result<Self> {
        let beacon = Arc::new(Beacon::default());
        let watched = Arc::clone(&beacon);
        let thread = std::thread::Builder::new()
            .name("clockworker-watchdog".into())
            .spawn(move || watch(&watched, &clock, threshold, &report))?;
        Ok(Watchdog {
            beacon,
            thread: Some(thread),
        })
    }

    /// A poll of `report`'s task starts, at raw clock reading `started`.
    #[inline]
    fn enter(&self, report: PollReport, started: u64) {
        *self
            .beacon
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(report);
        self.beacon.started.store(started, Ordering::Relaxed);
        // Release: the watchdog that sees the odd number sees the above.
        self.beacon.seq.fetch_add(1, Ordering::Release);
    }

    /// The poll ended.
    #[inline]
    fn exit(&self) {
        self.beacon.seq.fetch_add(1, Ordering::Release);
    }

    /// Publishes the poll of `report`'s task that starts at `started`, and its end
    /// when the returned guard is dropped, also when a panic unwinds out
    /// of the poll: otherwise the watchdog would see the executor as
    /// polling while it is idle, and as idle while it polls.
    pub(crate) fn watch(&self, report: PollReport, started: u64) -> Watched<'_> {
        self.enter(report, started);
        Watched(self)
    }
}

/// A poll in progress, for the watchdog; see [`Watchdog::watch`].
pub(crate) struct Watched<'a>(&'a Watchdog);

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.beacon.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // The user's callback's panics are caught on the thread; the
            // join cannot fail, and would change nothing if it did.
            let _ = thread.join();
        }
    }
}

/// How often the watchdog looks: a few times per threshold, so a stall is
/// reported within about 1.25 thresholds, but at most every millisecond and
/// at least every 50 ms.
fn interval(threshold: Duration) -> Duration {
    (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(50))
}

fn watch(beacon: &Beacon, clock: &Clock, threshold: Duration, report: &StallFn) {
    let threshold_nanos = crate::base::clock::nanos(threshold);
    let mut reported = None;
    while !beacon.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(interval(threshold));
        let seq = beacon.seq.load(Ordering::Acquire);
        if seq % 2 == 0 || reported == Some(seq) {
            continue;
        }
        let started = beacon.started.load(Ordering::Relaxed);
        let running = clock.nanos_between(started, clock.raw());
        if running < threshold_nanos {
            continue;
        }
        let task = beacon
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The poll may have ended (and another begun) while we looked.
        if beacon.seq.load(Ordering::Acquire) != seq {
            continue;
        }
        if let Some(mut task) = task {
            task.duration = Duration::from_nanos(running);
            // The user's callback may panic; the panic is printed by the
            // panic hook as usual, and the watchdog goes on watching (a
            // stall it failed to report is exactly when it is needed).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| report(&task)));
        }
        reported = Some(seq);
    }
}
