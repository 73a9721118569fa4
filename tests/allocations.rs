//! The allocation budget: one heap allocation per spawn, none per poll, none
//! per wake (local or remote). Counted exactly with a counting allocator,
//! per thread, so other tests running in parallel do not interfere.

mod common;
use common::yield_once;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

use clockworker::ExecutorBuilder;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// An executor whose slow-poll threshold no poll reaches: a slow poll's
/// report is boxed (one allocation, by design), and on a loaded machine a
/// descheduled thread makes a poll "slow".
fn quiet_executor() -> std::rc::Rc<clockworker::Executor<i32>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .on_slow_poll(std::time::Duration::from_secs(3600), |_| {})
        .build()
        .unwrap()
}

#[test]
fn polls_and_local_wakes_do_not_allocate() {
    let executor = quiet_executor();
    let queue = executor.queue(0).unwrap();
    let counted = std::rc::Rc::new(Cell::new(0u64));
    let counted2 = counted.clone();
    futures::executor::block_on(executor.run_until(async move {
        let task = queue.spawn(async move {
            for _ in 0..1_000 {
                yield_once().await; // warm up queues' capacity
            }
            let before = allocations();
            for _ in 0..100_000 {
                yield_once().await;
            }
            counted2.set(allocations() - before);
        });
        task.await.unwrap();
    }));
    assert_eq!(counted.get(), 0, "allocations during 100k polls");
}

#[test]
fn a_spawn_allocates_once() {
    let executor = quiet_executor();
    let queue = executor.queue(0).unwrap();
    let spawn_batch = |n: usize| {
        let handles: Vec<_> = (0..n).map(|i| queue.spawn(async move { i })).collect();
        handles
    };
    futures::executor::block_on(executor.run_until(async {
        // Warm up: the task index and run queues reach their capacity.
        for handle in spawn_batch(1_000) {
            handle.await.unwrap();
        }
        let mut handles = Vec::with_capacity(1_000);
        let before = allocations();
        for i in 0..1_000 {
            handles.push(queue.spawn(async move { i }));
        }
        let spawned = allocations() - before;
        let before = allocations();
        for handle in handles {
            handle.await.unwrap();
        }
        let joined = allocations() - before;
        assert_eq!(spawned, 1_000, "one allocation per spawn");
        assert_eq!(joined, 0, "running and joining allocates nothing");
    }));
}

#[test]
fn remote_wakes_do_not_allocate() {
    let executor = quiet_executor();
    let queue = executor.queue(0).unwrap();
    const TASKS: usize = 100;
    const ROUNDS: usize = 50;
    // Each task parks its waker in a slot; a helper thread wakes them all.
    let slots: Arc<Vec<std::sync::Mutex<Option<Waker>>>> =
        Arc::new((0..TASKS).map(|_| std::sync::Mutex::new(None)).collect());
    let flags: Arc<Vec<AtomicBool>> =
        Arc::new((0..TASKS).map(|_| AtomicBool::new(false)).collect());
    let executor_thread_allocations = futures::executor::block_on(executor.run_until(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let (slots, flags) = (slots.clone(), flags.clone());
                queue.spawn(async move {
                    for _ in 0..ROUNDS {
                        std::future::poll_fn(|cx| {
                            if flags[i].swap(false, Ordering::AcqRel) {
                                Poll::Ready(())
                            } else {
                                *slots[i].lock().unwrap() = Some(cx.waker().clone());
                                Poll::Pending
                            }
                        })
                        .await;
                    }
                })
            })
            .collect();
        // Warm up: every task has run once (the run queue has grown to hold
        // them all) and parked its waker.
        while slots.iter().any(|slot| slot.lock().unwrap().is_none()) {
            yield_once().await;
        }
        let go = Arc::new(AtomicBool::new(false));
        let waker_thread = std::thread::spawn({
            let (slots, flags, go) = (slots.clone(), flags.clone(), go.clone());
            move || {
                while !go.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                let mut woken = 0;
                let mut allocations_here = 0;
                while woken < TASKS * ROUNDS {
                    for i in 0..TASKS {
                        let waker = slots[i].lock().unwrap().take();
                        if let Some(waker) = waker {
                            flags[i].store(true, Ordering::Release);
                            let before = allocations();
                            waker.wake();
                            allocations_here += allocations() - before;
                            woken += 1;
                        }
                    }
                    std::thread::yield_now();
                }
                allocations_here
            }
        });
        let before = allocations();
        go.store(true, Ordering::Release);
        for handle in handles {
            handle.await.unwrap();
        }
        let on_executor = allocations() - before;
        let on_waker_thread = waker_thread.join().unwrap();
        (on_executor, on_waker_thread)
    }));
    assert_eq!(
        executor_thread_allocations,
        (0, 0),
        "(executor thread, waking thread)"
    );
}
