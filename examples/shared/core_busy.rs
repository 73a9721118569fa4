//! How busy a CPU core has been, whoever ran on it: the examples compare
//! it with their own thread's CPU time to tell when another process took
//! part of the core they measure on.

use std::time::Duration;

/// Busy time of core `core` so far, all processes (and time stolen by a
/// hypervisor), from /proc/stat, in clock ticks (10 ms, usually).
#[cfg(target_os = "linux")]
pub fn core_busy(core: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let label = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| Duration::from_secs_f64(busy as f64 / ticks as f64))
}

/// Not known off Linux.
#[cfg(not(target_os = "linux"))]
pub fn core_busy(_core: usize) -> Option<Duration> {
    None
}
