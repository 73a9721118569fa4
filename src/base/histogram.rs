//! A compact log-linear histogram of durations, cheap enough to record on every poll.
//!
//! The executor's statistics record, per queue, the queue delay and the duration of
//! each poll. That happens on the hot path, so [`Histogram::record`] is a clamp, a
//! `leading_zeros`, a shift and a few adds: no allocation, no floating point, no
//! branch.
//!
//! # Layout and error bound
//!
//! Values are nanoseconds. With S = 4 sub-bucket bits:
//!
//! - values below 32 ns each have an exact bucket (32 buckets);
//! - above, each power of two `[2^m, 2^(m+1))`, 5 <= m <= 39, is split into
//!   16 equal sub-buckets of width `2^(m-4)` (35 × 16 = 560 buckets);
//! - values at or above `2^40` ns (about 18 minutes) share one last bucket.
//!
//! That is 593 buckets. A bucket's width is at most 1/16 of its low bound, so below
//! `2^40` ns the bucket of a value `v` pins it down within `v / 16` (6.25 %), and
//! percentiles, which report a bucket's high bound, overstate by less than 6.25 %.
//! The exact minimum, maximum and sum are kept besides the buckets, so those and
//! the mean are exact whatever the value.

use std::fmt;
use std::time::Duration;

/// Sub-bucket bits: each power of two is split into `2^SUB_BITS` buckets.
const SUB_BITS: u32 = 4;
/// Values at or above `2^MAX_BITS` ns go to the last bucket.
const MAX_BITS: u32 = 40;
/// Number of buckets: the index of `2^MAX_BITS`, plus one.
const BUCKETS: usize = ((MAX_BITS - SUB_BITS) << SUB_BITS) as usize + (1 << SUB_BITS) + 1;

/// The bucket of a value: `shift` is how many low bits the bucket ignores, and the
/// value's top 5 bits (or all its bits, below 32) finish the index. Monotonic, so
/// clamping the index sends everything from `2^40` up to the last bucket; the
/// clamp also lets the compiler drop the bounds check: no branch at all.
#[inline]
fn index(nanos: u64) -> usize {
    // `| 16` makes every value below 32 take shift 0, where buckets are exact.
    let shift = 63 - SUB_BITS - (nanos | (1 << SUB_BITS)).leading_zeros();
    let i = ((shift << SUB_BITS) as usize) + (nanos >> shift) as usize;
    i.min(BUCKETS - 1)
}

/// The lowest and highest value (both inclusive) that land in bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    if i < 2 << SUB_BITS {
        return (i as u64, i as u64);
    }
    let shift = (i >> SUB_BITS) as u32 - 1;
    let low = ((i as u64 & 15) | 16) << shift;
    let high = if i == BUCKETS - 1 {
        u64::MAX
    } else {
        low + (1 << shift) - 1
    };
    (low, high)
}

/// A histogram of durations in nanoseconds, with 6.25 % resolution.
///
/// Exact buckets below 32 ns, then 16 buckets per power of two up to `2^40` ns
/// (about 18 minutes), and one bucket for everything above: 593 buckets, fixed,
/// so a snapshot is one clone. Minimum, maximum, sum and mean are exact.
///
/// ```
/// use clockworker::Histogram;
/// use std::time::Duration;
///
/// let mut h = Histogram::new();
/// for nanos in 1..=1000 {
///     h.record(nanos);
/// }
/// assert_eq!(h.count(), 1000);
/// assert_eq!(h.max(), Some(Duration::from_nanos(1000)));
/// let p50 = h.p50().unwrap().as_nanos();
/// assert!((500..=500 + 500 / 16).contains(&p50));
/// assert_eq!(
///     h.to_string(),
///     "n=1000 min=1ns p50=511ns p90=927ns p99=991ns p99.9=1.00µs max=1.00µs"
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    /// u128, so that the mean stays exact long after a u64 would have saturated.
    sum: u128,
    min: u64,
    max: u64,
}

/// One non-empty bucket of a [`Histogram`], as yielded by [`Histogram::buckets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The smallest duration this bucket holds (inclusive).
    pub low: Duration,
    /// The largest duration this bucket holds (inclusive, so `low == high` for the
    /// exact buckets below 32 ns). The last bucket, which collects everything at or
    /// above `2^40` ns, reports `u64::MAX` ns.
    pub high: Duration,
    /// How many recorded values fell in `[low, high]`.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram. Allocates its buckets (under 5 KiB) once, here.
    #[must_use]
    pub fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value, in nanoseconds. Cheap enough for every poll.
    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(u128::from(nanos));
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Records the same value `n` times, as if by `n` calls to [`record`](Self::record).
    pub fn record_n(&mut self, nanos: u64, n: u64) {
        if n == 0 {
            return;
        }
        let bucket = &mut self.counts[index(nanos)];
        *bucket = bucket.saturating_add(n);
        self.count = self.count.saturating_add(n);
        let total = u128::from(nanos) * u128::from(n);
        self.sum = self.sum.saturating_add(total);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// How many values were recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded since creation or the last [`reset`](Self::reset).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The exact sum of the recorded values, saturating at [`Duration::MAX`].
    #[must_use]
    pub fn sum(&self) -> Duration {
        to_duration(self.sum)
    }

    /// The exact smallest recorded value, or `None` when empty.
    #[must_use]
    pub fn min(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_nanos(self.min))
    }

    /// The exact largest recorded value, or `None` when empty.
    #[must_use]
    pub fn max(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_nanos(self.max))
    }

    /// The mean of the recorded values (rounded down to the nanosecond), or `None`
    /// when empty. Exact, since the sum is kept apart from the buckets.
    #[must_use]
    pub fn mean(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| to_duration(self.sum / u128::from(self.count)))
    }

    /// The `p`-th percentile, `p` in `[0, 100]` (clamped; NaN counts as 0), or
    /// `None` when empty.
    ///
    /// The answer is the high bound of the bucket holding the value of rank
    /// `ceil(p / 100 · count)` (at least 1), clamped to `[min, max]`, so it errs
    /// high by less than 6.25 %. The lowest and highest ranks are exact: p0 is the
    /// minimum, p100 the maximum, and if every value is the same, every percentile
    /// is that value.
    #[must_use]
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.is_empty() {
            return None;
        }
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
        // `p * count / 100` rather than `p / 100 * count`: exact for whole p.
        let rank = ((p * self.count as f64 / 100.0).ceil() as u64).clamp(1, self.count);
        let nanos = if rank == 1 {
            self.min
        } else if rank == self.count {
            self.max
        } else {
            let mut seen = 0;
            let i = self.counts.iter().position(|&c| {
                seen += c;
                seen >= rank
            });
            // `count` is the sum of the buckets, so a bucket reaches `rank`.
            let high = i.map_or(self.max, |i| bounds(i).1);
            high.clamp(self.min, self.max)
        };
        Some(Duration::from_nanos(nanos))
    }

    /// The median; see [`percentile`](Self::percentile).
    #[must_use]
    pub fn p50(&self) -> Option<Duration> {
        self.percentile(50.0)
    }

    /// The 90th percentile; see [`percentile`](Self::percentile).
    #[must_use]
    pub fn p90(&self) -> Option<Duration> {
        self.percentile(90.0)
    }

    /// The 99th percentile; see [`percentile`](Self::percentile).
    #[must_use]
    pub fn p99(&self) -> Option<Duration> {
        self.percentile(99.0)
    }

    /// The 99.9th percentile; see [`percentile`](Self::percentile).
    #[must_use]
    pub fn p999(&self) -> Option<Duration> {
        self.percentile(99.9)
    }

    /// The non-empty buckets, lowest first.
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> {
        let counts = self.counts.iter().enumerate().filter(|&(_, &c)| c > 0);
        counts.map(|(i, &count)| {
            let (low, high) = bounds(i);
            let (low, high) = (Duration::from_nanos(low), Duration::from_nanos(high));
            Bucket { low, high, count }
        })
    }

    /// Adds `other`'s values to `self`, as if they had been recorded here too:
    /// combines per-queue histograms, or snapshots taken at different times.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Forgets every value, keeping the allocation: starts a new measuring window.
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.count = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// A [`Histogram`] as the executor fills it on every poll: its buckets,
/// sum, minimum and maximum, but not its count, which the caller keeps
/// once for all its recorders (a queue's poll count is the count of both
/// its queue-delay and its poll-duration samples). It records in batches
/// ([`record_pairs`](Self::record_pairs)): each value costs a bucket's
/// increment, the sum, minimum and maximum staying in registers.
///
/// It is a histogram whose own count stays zero; its sum (fewer than 2^64
/// values below 2^64 each) cannot overflow.
#[derive(Debug, Default)]
pub(crate) struct Recorder(Histogram);

impl Recorder {
    /// Records pairs of values, the first of each into `first`, the
    /// second into `second`, keeping the sums, minima and maxima in
    /// registers until the end: only the buckets are written per value.
    /// Both in one loop: when values repeat (a task that polls alike),
    /// each recorder's bucket increments form a chain through memory, and
    /// the two chains then overlap.
    pub(crate) fn record_pairs(first: &mut Recorder, second: &mut Recorder, pairs: &[(u64, u64)]) {
        let (first, second) = (&mut first.0, &mut second.0);
        let mut a = (first.sum, first.min, first.max);
        let mut b = (second.sum, second.min, second.max);
        for &(x, y) in pairs {
            first.counts[index(x)] += 1;
            second.counts[index(y)] += 1;
            a = (a.0 + u128::from(x), a.1.min(x), a.2.max(x));
            b = (b.0 + u128::from(y), b.1.min(y), b.2.max(y));
        }
        (first.sum, first.min, first.max) = a;
        (second.sum, second.min, second.max) = b;
    }

    /// The histogram of what was recorded, `count` values in all.
    pub(crate) fn snapshot(&self, count: u64) -> Histogram {
        Histogram {
            count,
            ..self.0.clone()
        }
    }
}

/// Nanoseconds to a Duration, saturating at [`Duration::MAX`].
fn to_duration(nanos: u128) -> Duration {
    match u64::try_from(nanos / 1_000_000_000) {
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

/// The summary, not the 593 buckets.
impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("p50", &self.p50())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

/// One line: `n=1000 min=1ns p50=511ns p90=927ns p99=991ns p99.9=1.00µs max=1.00µs`,
/// or `n=0` when empty.
impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n={}", self.count)?;
        let stats = [
            ("min", self.min()),
            ("p50", self.p50()),
            ("p90", self.p90()),
            ("p99", self.p99()),
            ("p99.9", self.p999()),
            ("max", self.max()),
        ];
        for (name, value) in stats {
            if let Some(d) = value {
                write!(f, " {name}={}", Compact(d))?;
            }
        }
        Ok(())
    }
}

/// A duration shown with 3 significant digits and a unit (ns, µs, ms, s), e.g.
/// `950ns`, `1.23µs`, `45.6ms`, `789s`; whole nanoseconds below 1 µs. Honours the
/// formatter's width and alignment, for tables.
pub(crate) struct Compact(pub(crate) Duration);

impl fmt::Display for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_nanos();
        if n < 1000 {
            return f.pad(&format!("{n}ns"));
        }
        // Round to 3 significant digits, `r` in [100, 999], as `r * 10^(digits - 3)`.
        let mut digits = n.ilog10() + 1;
        let q = 10u128.pow(digits - 3);
        let mut r = (n + q / 2) / q;
        if r == 1000 {
            (r, digits) = (100, digits + 1);
        }
        let (exp, unit): (u32, _) = match digits {
            ..=6 => (3, "µs"),
            7..=9 => (6, "ms"),
            _ => (9, "s"),
        };
        let s = match (exp + 3).checked_sub(digits) {
            Some(0) | None => format!("{}{unit}", r * 10u128.pow(digits - 3 - exp)),
            Some(dec) => {
                let div = 10u128.pow(dec);
                format!("{}.{:0w$}{unit}", r / div, r % div, w = dec as usize)
            }
        };
        f.pad(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(d: Option<Duration>) -> u64 {
        d.expect("non-empty").as_nanos() as u64
    }

    fn of(values: impl IntoIterator<Item = u64>) -> Histogram {
        let mut h = Histogram::new();
        values.into_iter().for_each(|v| h.record(v));
        h
    }

    /// A recorder's snapshot is the histogram of the same values, empty
    /// or not, down to the buckets.
    #[test]
    fn a_recorder_snapshot_is_the_histogram_of_its_values() {
        assert_eq!(Recorder::default().snapshot(0), Histogram::new());
        let values = [0, 3, 31, 32, 1_000, 1_000, 77_777, u64::MAX, 5];
        let pairs: Vec<(u64, u64)> = values.iter().map(|&v| (v, v / 3)).collect();
        let (mut first, mut second) = (Recorder::default(), Recorder::default());
        Recorder::record_pairs(&mut first, &mut second, &pairs[..4]);
        Recorder::record_pairs(&mut first, &mut second, &pairs[4..]);
        let count = values.len() as u64;
        assert_eq!(first.snapshot(count), of(values));
        assert_eq!(second.snapshot(count), of(values.map(|v| v / 3)));
    }

    /// The bounds of the one bucket holding `v`, through the public API.
    fn bucket_of(v: u64) -> (u64, u64) {
        let b: Vec<Bucket> = of([v]).buckets().collect();
        assert_eq!(b.len(), 1, "{v}");
        (b[0].low.as_nanos() as u64, b[0].high.as_nanos() as u64)
    }

    #[test]
    fn small_values_are_exact() {
        for v in 0..32 {
            assert_eq!(bucket_of(v), (v, v));
        }
        let h = of([3, 3, 7]);
        assert_eq!((h.count(), ns(h.min()), ns(h.max())), (3, 3, 7));
        assert_eq!((ns(h.p50()), ns(h.percentile(66.0))), (3, 3));
        assert_eq!(ns(h.percentile(67.0)), 7);
        assert_eq!(h.sum(), Duration::from_nanos(13));
        assert_eq!(h.mean(), Some(Duration::from_nanos(4)));
    }

    #[test]
    fn bucket_boundaries() {
        for v in [15, 16, 17, 31] {
            assert_eq!(bucket_of(v), (v, v));
        }
        let wide = [bucket_of(32), bucket_of(33), bucket_of(34)];
        assert_eq!(wide, [(32, 33), (32, 33), (34, 35)]);
        for k in 6..40 {
            let width = 1 << (k - 5);
            assert_eq!(bucket_of((1 << k) - 1), ((1 << k) - width, (1 << k) - 1));
            assert_eq!(bucket_of(1 << k), (1 << k, (1 << k) + 2 * width - 1));
        }
        assert_eq!(
            bucket_of((1 << 40) - 1),
            ((1 << 40) - (1 << 35), (1 << 40) - 1)
        );
        assert_eq!(bucket_of(1 << 40), (1 << 40, u64::MAX));
        assert_eq!(bucket_of(u64::MAX), (1 << 40, u64::MAX));
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(ns(of([u64::MAX]).max()), u64::MAX);
    }

    #[test]
    fn every_value_lies_in_its_bucket_within_the_error_bound() {
        let mut geometric = vec![];
        let mut v = 10_000u64;
        while v < 1 << 45 {
            geometric.extend([v - 1, v, v + 1]);
            v += v / 7;
        }
        let mut last = 0;
        for v in (0..=10_000).chain(geometric) {
            let i = index(v);
            assert!(i >= last, "index not monotonic at {v}");
            last = i;
            let (low, high) = bounds(i);
            assert!(low <= v && v <= high, "{v} not in [{low}, {high}]");
            if v < 1 << 40 {
                assert!(
                    (high - v) * 16 < v.max(1),
                    "{v}: bucket high {high} off by >= 1/16"
                );
            }
        }
    }

    #[test]
    fn percentiles_of_uniform_1_to_1000() {
        let h = of(1..=1000);
        let within = |got: u64, want: u64| got >= want && (got - want) * 16 <= want;
        assert!(within(ns(h.p50()), 500), "{:?}", h.p50());
        assert!(within(ns(h.p90()), 900), "{:?}", h.p90());
        assert!(within(ns(h.p99()), 990), "{:?}", h.p99());
        assert_eq!(ns(h.percentile(100.0)), 1000);
        assert_eq!(ns(h.percentile(0.0)), 1);
        assert_eq!(h.mean(), Some(Duration::from_nanos(500)));
        let all: Vec<u64> = (0..=1000)
            .map(|p| ns(h.percentile(f64::from(p) / 10.0)))
            .collect();
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "not monotonic");
        // p0 is the exact minimum even where buckets are wide.
        let h = of(5000..=6000);
        assert_eq!(
            (ns(h.percentile(0.0)), ns(h.percentile(100.0))),
            (5000, 6000)
        );
    }

    #[test]
    fn one_repeated_value_is_exact_at_every_percentile() {
        for v in [0, 1, 1234, 987_654_321, 1 << 40, u64::MAX] {
            let mut h = of([v; 10]);
            h.record_n(v, 90);
            for p in [0.0, 0.1, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
                assert_eq!(ns(h.percentile(p)), v, "p{p} of {v}");
            }
            assert_eq!(h.count(), 100);
        }
    }

    #[test]
    fn merge_equals_recording_both() {
        let (a, b) = (0..3000u64)
            .map(|i| i * i * 37 % 1_000_003)
            .partition::<Vec<_>, _>(|v| v % 3 == 0);
        let mut merged = of(a.iter().copied());
        merged.merge(&of(b.iter().copied()));
        assert_eq!(merged, of(a.into_iter().chain(b)));
        let before = merged.clone();
        merged.merge(&Histogram::new());
        assert_eq!(merged, before);
        let mut empty = Histogram::new();
        empty.merge(&before);
        assert_eq!(empty, before);
        merged.reset();
        assert_eq!(merged, Histogram::new());
    }

    #[test]
    fn empty_is_none_everywhere() {
        let h = Histogram::default();
        assert!(h.is_empty() && h.count() == 0 && h.sum() == Duration::ZERO);
        let all = [h.min(), h.max(), h.mean(), h.p50(), h.percentile(100.0)];
        assert_eq!(all, [None; 5]);
        assert_eq!(h.buckets().count(), 0);
        assert_eq!(h.to_string(), "n=0");
        let mut h = of([5]);
        h.record_n(7, 0);
        assert_eq!(ns(h.max()), 5);
    }

    #[test]
    fn out_of_range_percentiles_clamp() {
        let h = of(1..=100);
        assert_eq!(h.percentile(-1.0), h.percentile(0.0));
        assert_eq!(h.percentile(f64::NEG_INFINITY), h.percentile(0.0));
        assert_eq!(h.percentile(f64::NAN), h.percentile(0.0));
        assert_eq!(h.percentile(150.0), h.percentile(100.0));
        assert_eq!(h.percentile(f64::INFINITY), Some(Duration::from_nanos(100)));
    }

    #[test]
    fn sum_is_wide_then_saturates() {
        let h = of([u64::MAX; 3]);
        assert_eq!(h.sum().as_nanos(), 3 * u128::from(u64::MAX));
        assert_eq!(ns(h.mean()), u64::MAX);
        let mut h = Histogram::new();
        h.record_n(u64::MAX, u64::MAX);
        h.record_n(u64::MAX, u64::MAX);
        assert_eq!(h.sum(), Duration::MAX);
        assert_eq!(h.count(), u64::MAX);
    }

    #[test]
    fn display_and_compact() {
        let nanos = [0, 999, 1000, 1234, 12_345, 999_499, 999_500, 45_650_000];
        let secs = [789, 12_345].map(Duration::from_secs);
        let all = nanos.map(Duration::from_nanos).into_iter().chain(secs);
        let shown: Vec<String> = all.map(|d| Compact(d).to_string()).collect();
        let want = "0ns 999ns 1.00µs 1.23µs 12.3µs 999µs 1.00ms 45.7ms 789s 12300s";
        assert_eq!(shown.join(" "), want);
        let padded = format!("{:>7}|", Compact(Duration::from_nanos(1234)));
        assert_eq!(padded, " 1.23µs|");
        let want = "n=1000 min=1ns p50=511ns p90=927ns p99=991ns p99.9=1.00µs max=1.00µs";
        assert_eq!(of(1..=1000).to_string(), want);
        let debug = format!("{:?}", of([42]));
        assert!(debug.starts_with("Histogram { count: 1, min: Some(42ns), p50: Some(42ns)"));
        assert!(debug.len() < 120, "{debug}");
    }
}
