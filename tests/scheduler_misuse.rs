//! What a `Scheduler` does is user code; whatever it does, a task runs, is
//! dropped and is counted only by its own executor, on its own thread.

mod common;
use common::panic_message;

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

/// Which of a scheduler's methods panic (each once), and whether its
/// `polled` spawns a task (re-entering the executor).
#[derive(Clone, Copy, Default)]
struct Faults {
    push: bool,
    pop: bool,
    polled: bool,
    task_gone: bool,
    group_gone: bool,
    spawn_in_polled: bool,
}

/// A FIFO with injected faults.
struct Faulty {
    tasks: VecDeque<ReadyTask>,
    faults: Faults,
}

impl Faulty {
    fn fault(flag: &mut bool, what: &str) {
        if std::mem::take(flag) {
            panic!("scheduler fault in {what}");
        }
    }
}

impl Scheduler for Faulty {
    fn push(&mut self, task: ReadyTask) {
        self.tasks.push_back(task);
        Self::fault(&mut self.faults.push, "push");
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        Self::fault(&mut self.faults.pop, "pop");
        self.tasks.pop_front()
    }
    fn len(&self) -> usize {
        self.tasks.len()
    }
    fn polled(&mut self, _: &clockworker::TaskInfo, _: u64, _: bool) {
        if std::mem::take(&mut self.faults.spawn_in_polled) {
            let _ = clockworker::spawn(async {});
        }
        Self::fault(&mut self.faults.polled, "polled");
    }
    fn task_gone(&mut self, _: clockworker::TaskId) {
        Self::fault(&mut self.faults.task_gone, "task_gone");
    }
    fn group_gone(&mut self, _: u64) {
        Self::fault(&mut self.faults.group_gone, "group_gone");
    }
}

/// Runs 3 tasks on an executor whose scheduler has `faults`, in both panic
/// policies: the scheduler's panic comes out of the run future with its own
/// message, and afterwards every handle resolves once, the executor runs
/// on, shuts down and drops with nothing left.
fn survives(faults: Faults, expected: &str) {
    for panic_on_task_panic in [true, false] {
        let executor = ExecutorBuilder::new()
            .with_queue_scheduler(
                0,
                1,
                Faulty {
                    tasks: VecDeque::new(),
                    faults,
                },
            )
            .with_panic_on_task_panic(panic_on_task_panic)
            .build()
            .unwrap();
        let queue = executor.queue(0).unwrap();
        let mut handles: Vec<_> = (0..3u32)
            .map(|i| {
                // One group per task, so that each task's end is its
                // group's end too.
                queue.group(i).spawn(async move {
                    common::yield_once().await;
                    i
                })
            })
            .collect();
        let mut raised = Vec::new();
        let mut outputs = Vec::new();
        for handle in &mut handles {
            for attempt in 0.. {
                // A wedged executor would stall (`drive` panics) each time.
                assert!(attempt < 5, "the executor is wedged: {raised:?}");
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    common::drive(executor.run_until(&mut *handle))
                }));
                match run {
                    Ok(output) => {
                        outputs.push(output);
                        break;
                    }
                    Err(payload) => raised.push(panic_message(payload.as_ref())),
                }
            }
        }
        assert_eq!(raised, [expected], "policy {panic_on_task_panic}");
        // Each handle resolved once: completed, or cancelled if the
        // scheduler dropped its task.
        assert_eq!(outputs.len(), 3);
        for output in outputs {
            assert!(matches!(
                output,
                Ok(_) | Err(clockworker::JoinError::Cancelled)
            ));
        }
        // Still usable, then shut down with nothing left.
        let later = queue.spawn(async { 9 });
        assert_eq!(common::drive(executor.run_until(later)).unwrap(), 9);
        executor.shutdown(clockworker::Shutdown::Cancel);
        common::drive(executor.run());
        assert_eq!(common::live_tasks(&executor), 0, "{}", executor.stats());
        let dropped = std::time::Instant::now();
        drop(executor);
        // Not a timing assertion on the work: a wedged drop gives up only
        // after a full second.
        assert!(dropped.elapsed() < std::time::Duration::from_millis(900));
    }
}

#[test]
fn a_panic_in_a_schedulers_push_leaves_the_executor_consistent() {
    survives(
        Faults {
            push: true,
            ..Faults::default()
        },
        "scheduler fault in push",
    );
}

#[test]
fn a_panic_in_a_schedulers_pop_leaves_the_executor_consistent() {
    survives(
        Faults {
            pop: true,
            ..Faults::default()
        },
        "scheduler fault in pop",
    );
}

#[test]
fn a_panic_in_a_schedulers_polled_leaves_the_executor_consistent() {
    survives(
        Faults {
            polled: true,
            ..Faults::default()
        },
        "scheduler fault in polled",
    );
}

#[test]
fn a_panic_in_a_schedulers_task_gone_leaves_the_executor_consistent() {
    survives(
        Faults {
            task_gone: true,
            ..Faults::default()
        },
        "scheduler fault in task_gone",
    );
}

#[test]
fn a_panic_in_a_schedulers_group_gone_leaves_the_executor_consistent() {
    survives(
        Faults {
            group_gone: true,
            ..Faults::default()
        },
        "scheduler fault in group_gone",
    );
}

#[test]
fn a_scheduler_that_spawns_from_its_methods_gets_a_clear_panic() {
    survives(
        Faults {
            spawn_in_polled: true,
            ..Faults::default()
        },
        "a Scheduler must not spawn tasks from its own methods",
    );
}
