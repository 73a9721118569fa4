//! The queue picker: EEVDF over the runnable queues, by weight.
//!
//! Each queue is a scheduling entity with a weight `w` and a virtual runtime
//! `v` that grows by `elapsed / w` while the queue runs. Over the *runnable*
//! queues (the running one included) the picker keeps the weighted average
//! `V = Σ wᵢ·vᵢ / Σ wᵢ`.
//!
//! - A queue is **eligible** when `v ≤ V`: it has not received more than its
//!   share so far.
//! - Each waiting queue carries a **virtual deadline** `v + sched_latency / w`,
//!   set when it joins and renewed when it uses up a slice. Among the eligible
//!   queues, the earliest deadline runs next; equal deadlines go first come,
//!   first served. A heavier queue gets an earlier deadline, hence lower
//!   latency, on top of the larger share. The request behind the deadline is
//!   the same for every queue (`sched_latency`), so deadlines compare weights
//!   only: a queue of equal weight never preempts, a heavier one does.
//! - A queue that becomes runnable after idling **keeps what it was owed**:
//!   it is placed at `V − lag`, where `lag` is `V − v` as it went idle if
//!   positive (bounded by one `sched_latency` of its virtual time), else 0.
//!   Sleeping banks no credit (the lag does not grow while idle; a queue that
//!   never ran starts at `V`), a debt is forgiven (polls cannot be cut short,
//!   so a busy queue is always slightly ahead of a light one that waited),
//!   and service owed while runnable is not lost to a short idle.
//! - A picked queue runs a **timeslice** of `max(sched_latency · w / Σw,
//!   min_slice)` over the runnable queues: its weight's part of the period.
//!   The slice ends early when the queue empties or when the executor
//!   preempts it (see [`Picker::wake`]).
//!
//! # Representation
//!
//! Virtual time is fixed point: one nanosecond of CPU at weight `w` is
//! `2³² / w` units, kept in a `u128` that cannot overflow in any realistic
//! lifetime (2⁹⁶ ns is billions of years). Weights are turned into that
//! inverse once, so charging a poll is a multiplication, not a division.
//!
//! The weighted sum is kept relative to a `base` close to `V`
//! (`Σ wᵢ·(vᵢ − base)`, in `i128`), rebased at every pick, so it stays small.
//! Eligibility is tested without division: `(v − base)·Σw ≤ Σ wᵢ·(vᵢ − base)`.
//!
//! Only the running queue's virtual runtime moves. Waiting queues therefore
//! have fixed keys (with an arrival sequence number to break ties) and live in two binary heaps: `pending`, by virtual runtime,
//! for those not yet eligible, and `eligible`, by deadline. As `V` advances,
//! queues move from `pending` to `eligible`; if `V` falls back (a queue that had
//! run ahead goes idle), a queue popped from `eligible` is checked again and
//! returned to `pending`. Every operation is O(log n) in the number of
//! runnable queues, amortised.
//!
//! The running queue is charged lazily: the executor adds each poll's
//! nanoseconds to the slice (`charge`, an addition), and the virtual runtime
//! is brought up to date only when the picker needs it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Fixed-point scale of virtual time: one nanosecond at weight 1.
const VSCALE: u128 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No runnable task: not part of the average.
    Idle,
    /// Runnable, waiting in one of the heaps.
    Waiting,
    /// Running the current slice.
    Running,
}

#[derive(Debug)]
struct Entity {
    weight: u64,
    /// `VSCALE / weight`: virtual units per nanosecond.
    inv_weight: u128,
    vruntime: u128,
    deadline: u128,
    /// `V − v` when the queue last went idle, if positive: service it was
    /// owed while it was runnable.
    lag: i128,
    state: State,
}

impl Entity {
    fn new(weight: u32) -> Self {
        let mut entity = Entity {
            weight: 0,
            inv_weight: 0,
            vruntime: 0,
            deadline: 0,
            lag: 0,
            state: State::Idle,
        };
        entity.set_weight(weight);
        entity
    }

    fn set_weight(&mut self, weight: u32) {
        debug_assert!(weight > 0, "weights are validated by their callers");
        self.weight = u64::from(weight.max(1));
        self.inv_weight = VSCALE / u128::from(self.weight);
    }

    fn virtual_len(&self, nanos: u64) -> u128 {
        u128::from(nanos) * self.inv_weight
    }
}

/// The running slice.
#[derive(Debug, Clone, Copy)]
struct Slice {
    queue: usize,
    /// Length of the slice, in nanoseconds of CPU.
    len: u64,
    /// CPU used so far in this slice.
    used: u64,
    /// The part of `used` already added to the queue's virtual runtime.
    charged: u64,
}

/// Why a slice ended, for statistics and for the deadline rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceEnd {
    /// The queue has no runnable task left.
    Empty,
    /// The slice's time is used up.
    Expired,
    /// A queue that would be picked first became runnable.
    Preempted,
}

/// EEVDF over queues. See the module documentation.
#[derive(Debug)]
pub(crate) struct Picker {
    queues: Vec<Entity>,
    pending: BinaryHeap<Reverse<(u128, u64, usize)>>,
    eligible: BinaryHeap<Reverse<(u128, u64, usize)>>,
    current: Option<Slice>,
    /// Arrival order of waiting queues: the tie-breaker of both heaps.
    seq: u64,
    /// Number of runnable queues, the running one included.
    runnable: usize,
    /// `Σ w` over runnable queues.
    load: u64,
    /// `Σ w·(v − base)` over runnable queues.
    weighted_offset: i128,
    base: u128,
    sched_latency: u64,
    min_slice: u64,
}

impl Picker {
    /// A picker for queues with the given weights (all idle), indexed in order.
    pub(crate) fn new(weights: &[u32], sched_latency: u64, min_slice: u64) -> Self {
        Picker {
            queues: weights.iter().map(|&w| Entity::new(w)).collect(),
            pending: BinaryHeap::with_capacity(weights.len()),
            eligible: BinaryHeap::with_capacity(weights.len()),
            current: None,
            seq: 0,
            runnable: 0,
            load: 0,
            weighted_offset: 0,
            base: 0,
            sched_latency,
            min_slice,
        }
    }

    /// The queue running the current slice, if any.
    #[inline]
    pub(crate) fn current(&self) -> Option<usize> {
        self.current.map(|slice| slice.queue)
    }

    /// The weight of `queue`.
    pub(crate) fn weight(&self, queue: usize) -> u32 {
        u32::try_from(self.queues[queue].weight).unwrap_or(u32::MAX)
    }

    /// Number of runnable queues (waiting or running).
    pub(crate) fn runnable(&self) -> usize {
        self.runnable
    }

    /// Adds a poll's CPU time to the current slice. O(1): the virtual runtime
    /// catches up lazily.
    #[inline]
    pub(crate) fn charge(&mut self, nanos: u64) {
        if let Some(slice) = &mut self.current {
            slice.used = slice.used.saturating_add(nanos);
        }
    }

    /// Whether the current slice would be used up after `extra` more nanoseconds.
    #[inline]
    pub(crate) fn slice_expired(&self, extra: u64) -> bool {
        self.current
            .is_some_and(|slice| slice.used.saturating_add(extra) >= slice.len)
    }

    /// The slice of `queue`: its weight's part of `sched_latency` among the
    /// runnable queues, at least `min_slice`. A light queue that is owed a
    /// little CPU gets a short turn, not the same turn as the heavy one, so
    /// it never holds the thread for long while heavier work waits.
    fn slice_len(&self, queue: usize) -> u64 {
        let load = u128::from(self.load.max(1));
        let weight = u128::from(self.queues[queue].weight);
        let share = u128::from(self.sched_latency) * weight / load;
        u64::try_from(share).unwrap_or(u64::MAX).max(self.min_slice)
    }

    /// Brings the running queue's virtual runtime up to date.
    fn update_current(&mut self) {
        let Some(slice) = &mut self.current else {
            return;
        };
        let delta = slice.used - slice.charged;
        if delta == 0 {
            return;
        }
        slice.charged = slice.used;
        let entity = &mut self.queues[slice.queue];
        let dv = entity.virtual_len(delta);
        entity.vruntime += dv;
        self.weighted_offset += (dv * u128::from(entity.weight)) as i128;
        if entity.vruntime >= entity.deadline {
            // The request is served: the next one starts here. Without this,
            // a queue preempted before its slices run out would keep a
            // deadline it has long passed, and nothing could preempt it.
            let queue = slice.queue;
            self.renew_deadline(queue);
        }
    }

    fn offset(&self, vruntime: u128) -> i128 {
        vruntime as i128 - self.base as i128
    }

    /// `v ≤ V`, without dividing.
    fn is_eligible(&self, queue: usize) -> bool {
        let offset = self.offset(self.queues[queue].vruntime);
        offset * i128::from(self.load) <= self.weighted_offset
    }

    /// The weighted average virtual runtime `V` of the runnable queues.
    fn average(&self) -> u128 {
        if self.load == 0 {
            return self.base;
        }
        let mean = self.weighted_offset.div_euclid(i128::from(self.load));
        (self.base as i128 + mean) as u128
    }

    fn join_load(&mut self, queue: usize) {
        let entity = &self.queues[queue];
        let term = self.offset(entity.vruntime) * i128::from(entity.weight);
        self.load += entity.weight;
        self.weighted_offset += term;
        self.runnable += 1;
    }

    fn leave_load(&mut self, queue: usize) {
        // Remember what the queue is still owed, bounded by one period of its
        // virtual time. A debt is forgiven: with polls that cannot be
        // interrupted, a queue that ran alone while a light one waited is
        // always slightly "ahead", and making it wait on its next burst would
        // hand the light queue whole polls it is owed microseconds of.
        let limit = self.queues[queue].virtual_len(self.sched_latency) as i128;
        let lag = self.average() as i128 - self.queues[queue].vruntime as i128;
        self.queues[queue].lag = lag.clamp(0, limit);
        let entity = &self.queues[queue];
        let term = self.offset(entity.vruntime) * i128::from(entity.weight);
        self.load -= entity.weight;
        self.weighted_offset -= term;
        self.runnable -= 1;
        if self.runnable == 0 {
            self.weighted_offset = 0;
            self.base = entity.vruntime;
        }
    }

    fn enqueue(&mut self, queue: usize) {
        self.seq += 1;
        let entity = &self.queues[queue];
        let (vruntime, deadline) = (entity.vruntime, entity.deadline);
        if self.is_eligible(queue) {
            self.eligible.push(Reverse((deadline, self.seq, queue)));
        } else {
            self.pending.push(Reverse((vruntime, self.seq, queue)));
        }
        self.queues[queue].state = State::Waiting;
    }

    fn renew_deadline(&mut self, queue: usize) {
        let request = self.sched_latency;
        let entity = &mut self.queues[queue];
        entity.deadline = entity.vruntime + entity.virtual_len(request);
    }

    /// An idle queue got a runnable task. It joins at the average virtual
    /// runtime with a fresh deadline.
    ///
    /// Returns whether it should preempt the running slice: it is eligible and
    /// would be picked ahead of the running queue (which is no longer eligible,
    /// or has a later deadline). The executor ends the slice at the next poll
    /// boundary.
    #[inline]
    pub(crate) fn wake(&mut self, queue: usize) -> bool {
        if self.queues[queue].state != State::Idle {
            return false;
        }
        self.join(queue)
    }

    fn join(&mut self, queue: usize) -> bool {
        self.update_current();
        if self.runnable == 0 {
            self.base = self.queues[queue].vruntime;
            self.weighted_offset = 0;
        } else {
            // Placed at the average, minus the lag it had when it went idle:
            // nothing accrues while idle, and nothing earned is lost.
            let placed = self.average() as i128 - self.queues[queue].lag;
            self.queues[queue].vruntime = placed.max(0) as u128;
        }
        self.queues[queue].lag = 0;
        self.join_load(queue);
        self.renew_deadline(queue);
        self.enqueue(queue);
        match self.current {
            Some(slice) => {
                self.is_eligible(queue)
                    && (!self.is_eligible(slice.queue)
                        || self.queues[queue].deadline < self.queues[slice.queue].deadline)
            }
            None => false,
        }
    }

    /// The running slice's time is up: keeps the queue running for another
    /// slice, and says so, if it is alone, or if it is less than half a
    /// `min_slice` of CPU ahead of its share and no eligible waiting queue has
    /// an earlier deadline than its renewed one.
    ///
    /// Plain EEVDF makes the running queue ineligible as soon as it is ahead
    /// at all, and a switch hands over whole polls. A heavy queue is "ahead"
    /// of a light one after any slice (by a hundredth of it, at 99:1), so the
    /// light queue would get a poll at the end of every heavy slice though it
    /// is owed a hundredth of one. The waiting queues are owed, together,
    /// exactly what the running one is ahead (weighted lags sum to zero): with
    /// this tolerance the light queue gets its poll once it is owed half a
    /// `min_slice`, and queues of equal weight still alternate slice by slice.
    pub(crate) fn renew_if_not_ahead(&mut self) -> bool {
        self.update_current();
        let Some(slice) = self.current else {
            return false;
        };
        if self.runnable > 1 {
            let entity = &self.queues[slice.queue];
            let ahead = entity.vruntime as i128 - self.average() as i128;
            let ahead_nanos = ahead.max(0) as u128 * u128::from(entity.weight) / VSCALE;
            if ahead_nanos >= u128::from(self.min_slice / 2) {
                return false;
            }
            self.renew_deadline(slice.queue);
            let deadline = self.queues[slice.queue].deadline;
            if self
                .best_waiting_deadline()
                .is_some_and(|best| best <= deadline)
            {
                return false;
            }
        }
        self.renew_slice()
    }

    /// The earliest deadline among eligible waiting queues, if any.
    fn best_waiting_deadline(&mut self) -> Option<u128> {
        self.rebase();
        self.promote_eligible();
        while let Some(&Reverse((deadline, seq, queue))) = self.eligible.peek() {
            if self.is_eligible(queue) {
                return Some(deadline);
            }
            self.eligible.pop();
            self.pending
                .push(Reverse((self.queues[queue].vruntime, seq, queue)));
        }
        None
    }

    /// Moves the waiting queues that became eligible to the deadline heap.
    fn promote_eligible(&mut self) {
        while let Some(&Reverse((_, seq, queue))) = self.pending.peek() {
            if !self.is_eligible(queue) {
                break;
            }
            self.pending.pop();
            self.eligible
                .push(Reverse((self.queues[queue].deadline, seq, queue)));
        }
    }

    fn renew_slice(&mut self) -> bool {
        let Some(queue) = self.current() else {
            return false;
        };
        self.renew_deadline(queue);
        let len = self.slice_len(queue);
        if let Some(slice) = &mut self.current {
            slice.used = 0;
            slice.charged = 0;
            slice.len = len;
        }
        true
    }

    /// Ends the running slice. Returns the queue that ran and the slice's CPU time.
    pub(crate) fn end_slice(&mut self, why: SliceEnd) -> Option<(usize, u64)> {
        self.update_current();
        let slice = self.current.take()?;
        match why {
            SliceEnd::Empty => {
                self.leave_load(slice.queue);
                self.queues[slice.queue].state = State::Idle;
            }
            SliceEnd::Expired | SliceEnd::Preempted => {
                // A queue that used its slice asks for a new one; a preempted
                // queue keeps its deadline, so it is not pushed back for having
                // been interrupted.
                if slice.used >= slice.len {
                    self.renew_deadline(slice.queue);
                }
                self.enqueue(slice.queue);
            }
        }
        Some((slice.queue, slice.used))
    }

    /// Starts a slice for the eligible queue with the earliest deadline.
    /// `None` when no queue is runnable. Must not be called during a slice.
    pub(crate) fn pick(&mut self) -> Option<usize> {
        debug_assert!(self.current.is_none(), "pick during a slice");
        if self.runnable == 0 {
            return None;
        }
        self.rebase();
        self.promote_eligible();
        let queue = loop {
            match self.eligible.pop() {
                Some(Reverse((_, _, queue))) if self.is_eligible(queue) => break queue,
                Some(Reverse((_, seq, queue))) => {
                    // `V` fell back since this queue was found eligible.
                    self.pending
                        .push(Reverse((self.queues[queue].vruntime, seq, queue)));
                }
                // The queue with the least virtual runtime is always eligible
                // (the minimum is never above the mean), so this only guards
                // against a broken invariant.
                None => break self.pending.pop()?.0.2,
            }
        };
        self.queues[queue].state = State::Running;
        self.current = Some(Slice {
            queue,
            len: self.slice_len(queue),
            used: 0,
            charged: 0,
        });
        Some(queue)
    }

    /// Adds an idle queue with `weight`, at the next index. It joins like
    /// any queue that wakes: at the average virtual runtime (no lag).
    pub(crate) fn add_queue(&mut self, weight: u32) {
        self.queues.push(Entity::new(weight));
    }

    /// Gives `queue` a new weight. What the queue is owed or owes (its lag,
    /// `V − v`) is kept in CPU time: scaled by `old / new` in virtual time,
    /// as Linux's EEVDF does when it reweights, so a change neither rewards
    /// nor punishes the queue. A waiting queue gets a fresh deadline for the
    /// new weight. The running slice keeps its length; the next one follows
    /// the new weight.
    pub(crate) fn set_weight(&mut self, queue: usize, weight: u32) {
        self.update_current();
        let old = self.queues[queue].weight;
        let new = u64::from(weight.max(1));
        if old == new {
            return;
        }
        let state = self.queues[queue].state;
        if state == State::Idle {
            let lag = self.queues[queue].lag;
            self.queues[queue].lag = lag * i128::from(old) / i128::from(new);
            self.queues[queue].set_weight(weight);
            return;
        }
        // Out of the load at the old weight, back in at the new one. (The
        // `lag` that `leave_load` records is only read by `join`, after an
        // idle spell: overwriting it here changes nothing.)
        let average = self.average() as i128;
        let lag = average - self.queues[queue].vruntime as i128;
        self.leave_load(queue);
        self.queues[queue].set_weight(weight);
        let placed = average - lag * i128::from(old) / i128::from(new);
        self.queues[queue].vruntime = placed.max(0) as u128;
        self.join_load(queue);
        self.renew_deadline(queue);
        if state == State::Waiting {
            // Its heap entries carry the old keys: take it out and put it
            // back. O(waiting queues), for a rare call.
            self.pending.retain(|Reverse((_, _, q))| *q != queue);
            self.eligible.retain(|Reverse((_, _, q))| *q != queue);
            self.enqueue(queue);
        }
    }

    /// Moves `base` to the current average, keeping the sum exact.
    fn rebase(&mut self) {
        let average = self.average();
        let shift = average as i128 - self.base as i128;
        self.weighted_offset -= shift * i128::from(self.load);
        self.base = average;
    }

    #[cfg(test)]
    fn vruntime(&self, queue: usize) -> u128 {
        self.queues[queue].vruntime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Runs saturated queues for `total` ns in polls of `poll` ns, returning CPU per queue.
    fn run_saturated(picker: &mut Picker, queues: &[usize], poll: u64, total: u64) -> Vec<u64> {
        for &q in queues {
            picker.wake(q);
        }
        let mut cpu = vec![0; picker.queues.len()];
        let mut t = 0;
        while t < total {
            if picker.current().is_none() {
                picker.pick();
            }
            let q = picker.current().unwrap();
            picker.charge(poll);
            cpu[q] += poll;
            t += poll;
            if picker.slice_expired(0) {
                picker.end_slice(SliceEnd::Expired);
            }
        }
        cpu
    }

    #[test]
    fn shares_follow_weights() {
        let mut picker = Picker::new(&[3, 1], 4 * MS, MS / 4);
        let cpu = run_saturated(&mut picker, &[0, 1], 10_000, 1_000 * MS);
        let share = cpu[0] as f64 / (cpu[0] + cpu[1]) as f64;
        assert!((share - 0.75).abs() < 0.01, "share {share}");
    }

    #[test]
    fn shares_follow_weights_with_many_queues() {
        let weights: Vec<u32> = (1..=16).collect();
        let mut picker = Picker::new(&weights, 4 * MS, MS / 4);
        let all: Vec<usize> = (0..16).collect();
        let cpu = run_saturated(&mut picker, &all, 50_000, 20_000 * MS);
        let total: u64 = cpu.iter().sum();
        let weight_sum: u32 = weights.iter().sum();
        for (q, &w) in weights.iter().enumerate() {
            let expected = f64::from(w) / f64::from(weight_sum);
            let got = cpu[q] as f64 / total as f64;
            assert!(
                (got - expected).abs() < 0.01,
                "queue {q}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn idle_queue_banks_no_credit() {
        let mut picker = Picker::new(&[1, 1], 4 * MS, MS / 4);
        run_saturated(&mut picker, &[0], 10_000, 100 * MS);
        // Queue 1 was idle for 100ms; it joins at the average, not 100ms behind.
        picker.wake(1);
        assert_eq!(picker.vruntime(1), picker.vruntime(0));
        picker.end_slice(SliceEnd::Expired);
        let cpu = run_saturated(&mut picker, &[], 10_000, 100 * MS);
        let share = cpu[1] as f64 / (cpu[0] + cpu[1]) as f64;
        assert!((share - 0.5).abs() < 0.03, "share {share}");
    }

    #[test]
    fn heavier_queue_preempts_lighter_one() {
        let mut picker = Picker::new(&[8, 1], 4 * MS, MS / 4);
        picker.wake(1);
        assert_eq!(picker.pick(), Some(1));
        picker.charge(MS / 10);
        assert!(picker.wake(0), "earlier deadline must preempt");
        picker.end_slice(SliceEnd::Preempted);
        assert_eq!(picker.pick(), Some(0));
    }

    #[test]
    fn a_queue_preempted_again_and_again_stays_preemptible() {
        // The light queue is preempted long before its slices end, so its
        // virtual runtime passes its deadline; the deadline must move on, or
        // the heavy queue (joining at the average, as after an idle with
        // nothing owed) would stop preempting it.
        let mut picker = Picker::new(&[99, 1], 2 * MS, MS / 4);
        picker.wake(1);
        assert_eq!(picker.pick(), Some(1));
        for round in 0..200 {
            picker.charge(MS / 10);
            assert!(picker.wake(0), "no preemption in round {round}");
            picker.end_slice(SliceEnd::Preempted);
            assert_eq!(picker.pick(), Some(0));
            picker.charge(1_000);
            picker.end_slice(SliceEnd::Empty);
            assert_eq!(picker.pick(), Some(1));
        }
    }

    #[test]
    fn equal_queue_does_not_preempt() {
        let mut picker = Picker::new(&[1, 1], 4 * MS, MS / 4);
        picker.wake(1);
        assert_eq!(picker.pick(), Some(1));
        picker.charge(MS / 10);
        assert!(!picker.wake(0), "same weight waits for the slice to end");
    }

    #[test]
    fn empty_queue_leaves_and_rejoins() {
        let mut picker = Picker::new(&[1, 1], 4 * MS, MS / 4);
        picker.wake(0);
        assert_eq!(picker.pick(), Some(0));
        picker.charge(MS);
        assert_eq!(picker.end_slice(SliceEnd::Empty), Some((0, MS)));
        assert_eq!(picker.runnable(), 0);
        assert_eq!(picker.pick(), None);
        picker.wake(1);
        assert_eq!(picker.pick(), Some(1));
    }

    #[test]
    fn slices_divide_latency_with_a_floor() {
        let mut picker = Picker::new(&[1; 8], 4 * MS, MS);
        picker.wake(0);
        picker.wake(1);
        picker.pick();
        assert!(!picker.slice_expired(2 * MS - 1));
        assert!(picker.slice_expired(2 * MS));
        picker.end_slice(SliceEnd::Preempted);
        for q in 2..8 {
            picker.wake(q);
        }
        picker.pick();
        // 4ms / 8 = 0.5ms, below the 1ms floor.
        assert!(!picker.slice_expired(MS - 1));
        assert!(picker.slice_expired(MS));
    }
}
