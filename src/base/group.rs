//! Task groups: tasks that a scheduler treats as one, such as one tenant's
//! requests, one gRPC stream's, or a task and the children it spawns.
//!
//! A group is named by any `Hash` key, reduced to a `u64` id by [`group_id`].
//! Per queue, the executor keeps a [`GroupState`] for each group with live
//! tasks: the group's attained service, read by schedulers through each
//! task's metadata. The state is freed when the group's last task ends, so
//! memory follows the groups alive now, not every tenant ever seen.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The id of the group named `key`: what [`ReadyTask::group`](crate::ReadyTask::group)
/// and [`GroupFair::with_weights`](crate::GroupFair::with_weights) see.
///
/// Stable for a given key and build of this crate (a fixed-key SipHash).
///
/// ```
/// assert_eq!(clockworker::group_id("tenant-7"), clockworker::group_id(&"tenant-7"));
/// assert_ne!(clockworker::group_id("tenant-7"), clockworker::group_id("tenant-8"));
/// ```
pub fn group_id<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// A live group of one queue. Shared by the group's tasks' metadata; written
/// on the executor's thread only (atomics only because metadata is `Sync`).
#[derive(Debug)]
pub(crate) struct GroupState {
    pub(crate) id: u64,
    /// CPU time of the group's tasks, in nanoseconds.
    pub(crate) service: AtomicU64,
    /// Live tasks of the group.
    pub(crate) live: AtomicUsize,
    /// Where the queue's scheduler keeps the group's runnable tasks, if it
    /// has any (`usize::MAX` when not), so that it finds them without a map.
    pub(crate) slot: AtomicUsize,
    /// `1 / weight` for `GroupFair`, as `f64` bits (0 until first looked up).
    pub(crate) inverse_weight: AtomicU64,
    /// The group's virtual time for `GroupFair`.
    pub(crate) fair: FairClock,
}

impl GroupState {
    pub(crate) fn new(id: u64) -> Self {
        GroupState {
            id,
            service: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            slot: AtomicUsize::new(usize::MAX),
            inverse_weight: AtomicU64::new(0),
            fair: FairClock::default(),
        }
    }

    pub(crate) fn add_service(&self, nanos: u64) {
        let service = self.service.load(Ordering::Relaxed);
        self.service
            .store(service.saturating_add(nanos), Ordering::Relaxed);
    }
}

/// A virtual time: service divided by weight, kept by the task or group it
/// belongs to so that a scheduler needs no map to find it. `f64`
/// nanoseconds (stored as bits): no overflow, sub-microsecond precision for
/// years of CPU, and non-negative values order like their bits.
#[derive(Debug, Default)]
pub(crate) struct FairClock {
    vtime: AtomicU64,
    /// The service already turned into virtual time.
    seen: AtomicU64,
}

impl FairClock {
    /// Brings the virtual time up to `service` at weight `1 / inverse_weight`,
    /// raised to at least `floor` (an idle sharer banks no credit). Returns
    /// it as an order-preserving `u64`.
    pub(crate) fn catch_up(&self, service: u64, inverse_weight: f64, floor: u64) -> u64 {
        // Written on the executor's thread only: a plain load and store, no
        // read-modify-write.
        let seen = self.seen.load(Ordering::Relaxed);
        let mut vtime = self.vtime.load(Ordering::Relaxed);
        if service != seen {
            self.seen.store(service, Ordering::Relaxed);
            // Service only grows, and one poll's worth fits an `i64`, whose
            // conversion to `f64` is one instruction (a `u64`'s is several).
            let delta = service.wrapping_sub(seen) as i64 as f64 * inverse_weight;
            vtime = (f64::from_bits(vtime) + delta).to_bits();
        }
        let vtime = vtime.max(floor);
        self.vtime.store(vtime, Ordering::Relaxed);
        vtime
    }

    /// Whether the virtual time already counts `service`: nothing was charged
    /// since it was last brought up to date.
    pub(crate) fn counts(&self, service: u64) -> bool {
        self.seen.load(Ordering::Relaxed) == service
    }
}

/// The virtual time of a task that shares alone (it has no group) at
/// weight 1, in one word of the task's metadata rather than a
/// [`FairClock`]'s two: at weight 1 the virtual time is the task's service
/// plus the floors it was raised to, so only that lift needs keeping.
#[derive(Debug, Default)]
pub(crate) struct SoloClock {
    /// Nanoseconds the virtual time is ahead of the task's service.
    lift: AtomicU64,
}

impl SoloClock {
    /// The virtual time at `service`, raised to at least `floor` (an idle
    /// task banks no credit), as an order-preserving `u64` (`f64` bits,
    /// as [`FairClock::catch_up`] returns).
    pub(crate) fn catch_up(&self, service: u64, floor: u64) -> u64 {
        let vtime = self.at(service);
        if vtime >= floor {
            return vtime;
        }
        // `floor` is a whole number of nanoseconds at most one rounding
        // away: the task's virtual time becomes the first whole nanosecond
        // at or past it (a `u64` at least an `f64` rounds to one at least
        // it). `as` saturates.
        let floor_nanos = f64::from_bits(floor).ceil() as u64;
        // Written on the executor's thread only: a plain store.
        self.lift
            .store(floor_nanos.saturating_sub(service), Ordering::Relaxed);
        self.at(service)
    }

    /// The virtual time at `service`, as [`catch_up`](Self::catch_up)
    /// returns it, without the floor: equal to a key it returned as long as
    /// no service was charged since.
    pub(crate) fn at(&self, service: u64) -> u64 {
        let lift = self.lift.load(Ordering::Relaxed);
        (service.saturating_add(lift) as f64).to_bits()
    }
}

/// Hashes ids that are already hashes (group ids, task ids): one multiply,
/// instead of SipHash on every scheduler operation.
#[derive(Default)]
pub(crate) struct IdHash(u64);

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
}

/// `BuildHasher` for maps keyed by ids.
pub(crate) type IdHasher = BuildHasherDefault<IdHash>;

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(bits: u64) -> f64 {
        f64::from_bits(bits)
    }

    /// A lone task's virtual time is its service, raised to the floor when
    /// it falls behind it, and then keeps the lift: the same ordering a
    /// `FairClock` at weight 1 gives.
    #[test]
    fn a_solo_clock_follows_service_and_keeps_the_floors_it_was_raised_to() {
        let solo = SoloClock::default();
        let fair = FairClock::default();
        let mut service = 0;
        let mut floor = 0u64;
        for (ran, raised) in [
            (0, 0.0),
            (500, 0.0),
            (0, 2_000.5),
            (250, 0.0),
            (0, 1e12),
            (7, 0.0),
        ] {
            service += ran;
            if raised > 0.0 {
                floor = f64::to_bits(raised);
            }
            let key = solo.catch_up(service, floor);
            let reference = fair.catch_up(service, 1.0, floor);
            assert!(key >= floor, "below the floor at {service} ns");
            assert!(
                nanos(key) - nanos(reference) < 1.0,
                "{} vs {}",
                nanos(key),
                nanos(reference)
            );
            // The key stays current until service is charged.
            assert_eq!(solo.at(service), key);
            assert_ne!(solo.at(service + 1), key);
        }
    }

    /// Far past 2^53 ns the conversion rounds, but never below the floor.
    #[test]
    fn a_solo_clock_never_falls_below_the_floor_even_where_f64_rounds() {
        let solo = SoloClock::default();
        let floor = (2f64.powi(60) + 4096.0).to_bits();
        assert!(solo.catch_up(3, floor) >= floor);
        assert!(solo.catch_up(u64::MAX, floor) >= floor);
    }
}
