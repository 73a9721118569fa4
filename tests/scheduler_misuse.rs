//! What a `Scheduler` does is user code; whatever it does, a task runs, is
//! dropped and is counted only by its own executor, on its own thread.

mod common;

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use clockworker::{ExecutorBuilder, ReadyTask, Scheduler};

/// A scheduler that shares one queue with every other scheduler made from
/// the same `Arc`, in other executors on other threads: what one executor
/// pushes, another may pop. `ReadyTask` is `Send`, so this is safe code.
struct Smuggler(Arc<Mutex<VecDeque<ReadyTask>>>);

impl Scheduler for Smuggler {
    fn push(&mut self, task: ReadyTask) {
        self.0.lock().unwrap().push_back(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.0.lock().unwrap().pop_front()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[test]
fn a_task_another_executors_scheduler_hands_out_goes_back_to_its_own_executor() {
    const TASKS: usize = 200;
    let smuggled = Arc::new(Mutex::new(VecDeque::new()));
    let wrong_thread = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (smuggled, wrong_thread, start) =
                (smuggled.clone(), wrong_thread.clone(), start.clone());
            std::thread::spawn(move || {
                let executor = ExecutorBuilder::new()
                    .with_queue_scheduler(0, 1, Smuggler(smuggled))
                    .build()
                    .unwrap();
                let queue = executor.queue(0).unwrap();
                let home = std::thread::current().id();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let wrong_thread = wrong_thread.clone();
                        // `!Send`: polling or dropping it on another thread
                        // would be undefined behaviour.
                        let local = Rc::new(i);
                        queue.spawn(async move {
                            for _ in 0..3 {
                                if std::thread::current().id() != home {
                                    wrong_thread.fetch_add(1, Ordering::SeqCst);
                                }
                                common::yield_once().await;
                            }
                            *local
                        })
                    })
                    .collect();
                start.wait();
                let outputs = futures::executor::block_on(
                    executor.run_until(futures::future::join_all(tasks)),
                );
                let outputs: Vec<usize> = outputs.into_iter().map(Result::unwrap).collect();
                assert_eq!(outputs, (0..TASKS).collect::<Vec<_>>());
                let stats = executor.stats();
                assert_eq!(common::live_tasks(&executor), 0, "{stats}");
                assert_eq!(
                    (stats.spawned, stats.completed),
                    (TASKS as u64, TASKS as u64)
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(wrong_thread.load(Ordering::SeqCst), 0);
    assert!(smuggled.lock().unwrap().is_empty());
}
