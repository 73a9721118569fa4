//! The live tasks: the spawn of a task on the executor's thread, the take-in
//! of one spawned through a `Spawner` (and its handshake with
//! `JoinHandle::abort`), the end of every poll, and cancellation.
//!
//! The index of live tasks, the reap list and the steps of these that race
//! with other threads are [`Registry`] (in `live.rs`), generic so that the
//! loom model drives them; `Core`'s methods here add the executor's own
//! bookkeeping (queues, clocks, counters, schedulers) around its calls.

pub(crate) mod live;

pub(crate) use live::{Registry, abort};

use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::base::clock::nanos;
use crate::base::id::{TaskEnding, TaskName};
use crate::runtime::Core;
use crate::runtime::scheduler::TaskInfo;
use crate::runtime::site::{Site, TaskExtras};
use crate::runtime::task::{self, MAX_LIVE, Runnable, Task, TaskMeta};

/// Which group a new task joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum GroupChoice {
    /// The group of the task that spawns it, if any.
    #[default]
    Inherit,
    /// No group.
    Ungrouped,
    /// The group with this id.
    Group(u64),
}

/// Options of a spawn, gathered by [`TaskBuilder`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SpawnOptions {
    pub(crate) group: GroupChoice,
    pub(crate) deadline: Option<Duration>,
    pub(crate) name: Option<TaskName>,
}

impl Core {
    /// Spawns a task on the executor's thread and queues it. `None` if
    /// spawns are refused (the executor is shutting down, or holds
    /// [`MAX_LIVE`] tasks).
    pub(crate) fn spawn<F>(
        &self,
        queue: usize,
        future: F,
        options: SpawnOptions,
        location: &'static Location<'static>,
    ) -> Option<Task<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if !self.accepts_local_spawn() {
            return None;
        }
        // A task spawned here is reachable by no other thread until this
        // returns its handle: it is made with its slot, and registered at
        // that slot (nothing in between registers a task).
        let slot = self.registry.next_slot();
        if slot >= MAX_LIVE {
            return None;
        }
        let group = match options.group {
            GroupChoice::Inherit => self.polling().and_then(|polling| polling.group),
            GroupChoice::Ungrouped => None,
            GroupChoice::Group(group) => Some(group),
        };
        // Inside a turn, the executor's time as of its last reading (the
        // start of the spawning poll), like a wake's `runnable_since`: a
        // clock read costs as much as a third of a poll. A deadline counts
        // from the moment of the spawn, and outside a turn the last reading
        // may be old: then the clock is read.
        let arrival = if options.deadline.is_none() && self.turn.running.get() {
            self.time.now.get()
        } else {
            self.time.now_nanos()
        };
        let mut meta = TaskMeta::new(&self.shared, queue, location);
        meta.arrival = AtomicU64::new(arrival);
        let deadline = options
            .deadline
            .map(|within| arrival.saturating_add(nanos(within)));
        let group = {
            let Ok(mut sched) = self.sched.try_borrow_mut() else {
                // Only a scheduler's own method runs while the scheduling
                // state is borrowed; its panic is caught and re-raised from
                // the run future.
                panic!("a Scheduler must not spawn tasks from its own methods");
            };
            let run_queue = &mut sched.queues[queue];
            run_queue.counters.spawned();
            group.map(|group| {
                let state = run_queue.group(group);
                state.live.fetch_add(1, Ordering::Relaxed);
                state
            })
        };
        if group.is_some() || deadline.is_some() || options.name.is_some() {
            meta.site = Site::with(TaskExtras {
                location,
                group,
                name: options.name,
                deadline,
            });
        }
        meta.runnable_since = AtomicU64::new(arrival);
        let (runnable, task) = task::spawn(meta.in_slot(slot), future);
        self.registry.insert_local(&runnable);
        self.task_spawned(runnable.metadata());
        self.accept(runnable);
        if !self.turn.running.get() {
            // Spawned from outside a turn (e.g. by another task of the host):
            // the run future may be parked.
            self.shared.wake_host();
        }
        Some(task)
    }

    /// Takes in a task spawned through a `Spawner` and queues it.
    pub(super) fn admit(&self, runnable: Runnable) {
        if self.register_remote(&runnable) {
            self.task_spawned(runnable.metadata());
        }
        self.accept(runnable);
    }

    /// Takes in a task spawned through a `Spawner`: gives it a slot in the
    /// live-task index (the executor's drop reaches it through there), stamps
    /// its arrival, and counts it. Its queue may be one a spawner added after
    /// this drain looked at the commands: the command is visible now (it was
    /// queued before the key could be found), so apply it. A queue still
    /// unknown cannot happen; the task would be cancelled, as it is when
    /// the executor holds [`MAX_LIVE`] tasks already.
    /// Returns whether it took the task in.
    pub(super) fn register_remote(&self, runnable: &Runnable) -> bool {
        let meta = runnable.metadata();
        if meta.queue() >= self.queue_count() {
            self.apply_commands();
        }
        if meta.queue() >= self.queue_count() || self.registry.next_slot() >= MAX_LIVE {
            meta.aborted.store(true, Ordering::Relaxed);
            return false;
        }
        // The executor's half of the handshake with `JoinHandle::abort`:
        // either the abort finds the slot (and wakes it), or `accept`, after
        // this, finds the flag (and reaps the task).
        self.registry.take_in(runnable);
        let arrival = self.time.now.get();
        meta.arrival.store(arrival, Ordering::Relaxed);
        // Runnable from now on (as the spawn hook may see in a dump).
        meta.runnable_since.store(arrival, Ordering::Relaxed);
        self.sched.borrow_mut().queues[meta.queue()]
            .counters
            .spawned();
        true
    }

    /// Wakes the live task in `slot`, if any: a task whose abort was
    /// requested from another thread, or one a Tokio resource refused for
    /// want of budget. The slot's task may have ended since, and the slot
    /// may now hold another task: that task gets a spurious wake, which
    /// futures tolerate.
    #[inline]
    pub(crate) fn wake_slot(&self, slot: usize) {
        self.registry.wake_slot(slot);
    }

    /// Runs aborted tasks once more, which drops their futures. Returns
    /// whether there were any.
    #[inline]
    pub(crate) fn reap_aborted(&self) -> bool {
        let Some(reaped) = self
            .registry
            .run_reaped(|| self.time.poll_started.set(self.time.clock.raw()))
        else {
            return false;
        };
        // Reaping is nobody's poll.
        self.time.poll_ended.set(None);
        reaped
    }

    /// Called by a task's future at the end of every run: takes the poll's
    /// one clock reading, charges the poll to the task, its group and (for a
    /// poll the turn made) the running slice, counts it, and, if the task
    /// ended, frees what it held, under one borrow of the scheduling state.
    /// What is rare (a slow poll, a scheduler that asked to be told) is done
    /// out of line, by [`poll_reported`](Self::poll_reported).
    #[inline]
    pub(crate) fn poll_done(&self, meta: &TaskMeta, ending: Option<TaskEnding>) {
        // A run the turn made, not one that drops an aborted task's future
        // outside the loop (`reap_aborted`, a shutdown, the executor's
        // drop), which is nobody's poll. The task stops being the one
        // polled as this returns, or unwinds: once its future has returned,
        // async-task may drop the run's reference and wake the task's
        // awaiter, user code that may free the task (see
        // `TurnState::polling`).
        let (turn_poll, _end_poll) = self.end_poll();
        let now = self.time.clock.raw();
        let elapsed = self
            .time
            .clock
            .nanos_between(self.time.poll_started.get(), now);
        self.time.poll_ended.set(Some((now, elapsed)));
        // The executor's time as the poll started, and, for a poll the turn
        // made, as it ended from now on: a wake during the poll (a yield)
        // reaches `accept` as the run ends, and is stamped with the end,
        // so the task's next queue delay does not include this poll.
        let started = self.time.now.get();
        if turn_poll {
            self.time.now.set(started + elapsed);
        }
        meta.add_service(elapsed);
        let Ok(mut guard) = self.sched.try_borrow_mut() else {
            return;
        };
        let sched = &mut *guard;
        if turn_poll {
            // Before the next drain, so that queues woken meanwhile join at
            // an average that includes this poll.
            sched.picker.charge(elapsed);
        }
        let queue = &mut sched.queues[meta.queue()];
        // A run that cancels the task drops its future unpolled: no poll.
        let counted = turn_poll && ending != Some(TaskEnding::Cancelled);
        let slow = counted && elapsed >= self.observe.slow_poll;
        if counted {
            // A wake during the poll (a yield) reaches `accept` only after
            // this, as the run ends: `runnable_since` is still the wake that
            // queued it.
            let since = meta.runnable_since.load(Ordering::Relaxed);
            if self.config.statistics {
                queue
                    .counters
                    .polled(started.saturating_sub(since), elapsed, slow);
            }
            meta.polled(started);
        }
        let mut gone_group = None;
        if let Some(ending) = ending {
            queue.counters.ended(ending);
            gone_group = meta.group().filter(|group| {
                let last = group.live.fetch_sub(1, Ordering::Relaxed) == 1;
                if last {
                    queue.groups.remove(&group.id);
                }
                last
            });
        }
        let reports = queue.reports();
        let tell = reports.polled || (ending.is_some() && reports.gone);
        drop(guard);
        if slow || tell || self.tells_tasks() {
            let gone_group = gone_group.map(|group| group.id);
            self.poll_reported(meta, ending, gone_group, elapsed, slow, counted);
        }
        if ending.is_some() {
            // After the borrow: dropping the task's last waker may run user
            // code (its output's drop).
            self.registry.end(meta);
        }
    }

    /// Reports the poll that just ended to whoever asked: the slow-poll
    /// hook (through the loop), the queue's scheduler (`polled`, and
    /// `task_gone` and `group_gone` for a task that ended with `ending`,
    /// the last of group `gone_group`), and the task's watchers (hooks,
    /// console span).
    #[cold]
    #[inline(never)]
    fn poll_reported(
        &self,
        meta: &TaskMeta,
        ending: Option<TaskEnding>,
        gone_group: Option<u64>,
        elapsed: u64,
        slow: bool,
        counted: bool,
    ) {
        if slow {
            let report = meta.report(Duration::from_nanos(elapsed));
            self.observe.slow_report.set(Some(Box::new(report)));
        }
        self.tell_scheduler(meta, ending, gone_group, elapsed);
        if self.tells_tasks() {
            self.task_polled(meta, counted, ending);
        }
    }

    /// The scheduler's part of [`poll_reported`](Self::poll_reported), if
    /// it asked for reports.
    fn tell_scheduler(
        &self,
        meta: &TaskMeta,
        ending: Option<TaskEnding>,
        gone_group: Option<u64>,
        elapsed: u64,
    ) {
        let Ok(mut guard) = self.sched.try_borrow_mut() else {
            return;
        };
        let queue = &mut guard.queues[meta.queue()];
        let mut told = Ok(());
        if queue.reports().polled {
            let info = TaskInfo::of(meta);
            told = queue.tell(|scheduler| scheduler.polled(&info, elapsed, ending.is_some()));
        }
        if ending.is_some() && queue.reports().gone {
            told = told.and_then(|()| {
                queue.tell(|scheduler| {
                    scheduler.task_gone(meta.id);
                    if let Some(group) = gone_group {
                        scheduler.group_gone(group);
                    }
                })
            });
        }
        // Released before anything that may run user code (a panic
        // payload's drop).
        drop(guard);
        if let Err(panic) = told {
            self.stash_panic(panic);
        }
    }

    /// Cancels every live task: wakes them all (so that idle ones are
    /// queued), then runs each once with the abort flag set, which drops its
    /// future on this thread and resolves its handle to `Cancelled`. A task
    /// woken by another thread that has not reached the inbox yet is missed;
    /// it is cancelled when it lands. Returns whether it cancelled anything.
    pub(crate) fn cancel_live(&self) -> bool {
        self.registry.cancel_live(|| self.cancel_queued())
    }

    /// Runs every queued, woken, aborted and newly spawned task once with
    /// the abort flag set, which drops their futures. Returns whether it ran
    /// anything.
    fn cancel_queued(&self) -> bool {
        let mut batch: Vec<Runnable> = Vec::new();
        self.shared.drain(|runnable| batch.push(runnable), |_| {});
        self.shared.drain_spawns(|runnable| {
            // Announced, as every task whose end is.
            if self.register_remote(&runnable) {
                self.task_spawned(runnable.metadata());
            }
            batch.push(runnable);
        });
        batch.extend(self.wake_buf.borrow_mut().drain(..));
        self.registry.append_reaped(&mut batch);
        for queue in &mut self.sched.borrow_mut().queues {
            loop {
                match queue.pop(&self.shared) {
                    Ok(Some(runnable)) => batch.push(runnable),
                    Ok(None) => break,
                    Err(panic) => {
                        self.stash_panic(panic);
                        break;
                    }
                }
            }
        }
        self.registry.cancel(batch)
    }
}
