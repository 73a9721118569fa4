//! Spawning from inside a task without a handle: `clockworker::spawn` and
//! `QueueHandle::current`.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use clockworker::{ExecutorBuilder, NoCurrentTask, QueueHandle, ReadyTask, Scheduler};

/// FIFO that records the group of every task pushed to it.
struct GroupRecorder {
    tasks: std::collections::VecDeque<ReadyTask>,
    groups: Rc<RefCell<Vec<Option<u64>>>>,
}

impl Scheduler for GroupRecorder {
    fn push(&mut self, task: ReadyTask) {
        self.groups.borrow_mut().push(task.group());
        self.tasks.push_back(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.tasks.pop_front()
    }
    fn len(&self) -> usize {
        self.tasks.len()
    }
}

#[test]
fn spawn_inside_a_task_goes_to_the_spawning_tasks_queue() {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let bg = executor.queue("bg").unwrap();
    let done = common::drive(executor.run_until(bg.spawn(async {
        let children: Vec<_> = (0..5)
            .map(|i| clockworker::spawn(async move { i }).unwrap())
            .collect();
        let mut sum = 0;
        for child in children {
            sum += child.await.unwrap();
        }
        sum
    })));
    assert_eq!(done.unwrap(), 10);
    assert_eq!(executor.queue_stats("bg").unwrap().spawned, 6);
    assert_eq!(executor.queue_stats("fg").unwrap().spawned, 0);
}

#[test]
fn spawn_inside_a_grouped_task_keeps_the_group() {
    // A child inherits its parent's group, as with `QueueHandle::spawn`:
    // the scheduler sees the same group on both.
    let groups: Rc<RefCell<Vec<Option<u64>>>> = Rc::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            0,
            1,
            GroupRecorder {
                tasks: Default::default(),
                groups: groups.clone(),
            },
        )
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let parent = queue.group("tenant-7").spawn(async {
        clockworker::spawn(async {}).unwrap().await.unwrap();
    });
    common::drive(executor.run_until(parent)).unwrap();
    let groups = groups.borrow();
    // The parent's spawn, the child's spawn, the parent's wake by the child.
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert_eq!(groups[0], Some(clockworker::group_id(&"tenant-7")));
    assert!(groups.iter().all(|group| *group == groups[0]), "{groups:?}");
}

#[test]
fn outside_a_task_there_is_no_current_queue() {
    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    // On the host, outside any turn.
    assert_eq!(QueueHandle::current().unwrap_err(), NoCurrentTask);
    assert!(clockworker::spawn(async {}).is_err());
    // In the executor's own `run_until` future: in a turn, but in no queue.
    let in_run_until = common::drive(executor.run_until(async {
        (
            QueueHandle::current().is_err(),
            clockworker::spawn(async {}).is_err(),
        )
    }));
    assert_eq!(in_run_until, (true, true));
    // On another thread.
    let elsewhere = std::thread::spawn(|| clockworker::spawn(async {}).is_err());
    assert!(elsewhere.join().unwrap());
    assert_eq!(executor.stats().spawned, 0);
    assert!(
        NoCurrentTask
            .to_string()
            .contains("not inside a clockworker task")
    );
}

#[test]
fn no_task_stays_current_after_a_panic_unwinds_out_of_a_turn() {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0, 1, common::PanicsInPolledOnce::default())
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let task = queue.spawn(async {});
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::drive(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(
        unwound.is_err(),
        "the scheduler's panic unwinds out of run_until"
    );
    // In the next turn, the `run_until` future is in no queue.
    let current = common::drive(executor.run_until(async { QueueHandle::current().is_ok() }));
    assert!(!current);
    drop(task);
}

/// Wakes its task's awaiter by dropping the awaited handle (the task's last
/// reference, once the task has completed), then asks for the current task.
struct DropsTheHandle {
    handle: std::sync::Mutex<Option<clockworker::JoinHandle<u32>>>,
    asked: std::sync::Mutex<Option<bool>>,
}

impl std::task::Wake for DropsTheHandle {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        drop(self.handle.lock().unwrap().take());
        let current = QueueHandle::current().is_ok();
        *self.asked.lock().unwrap() = Some(current);
    }
}

/// Regression (found by review, confirmed under Miri): as a task
/// completes, async-task drops the run's reference to it *before* it wakes
/// the awaiter. An awaiter whose wake drops the last handle frees the task
/// there, inside the run. The executor's record of the task being polled
/// must be gone by then: asking for the current task (`spawn`,
/// `QueueHandle::current`) read freed memory. It answers "no task" now:
/// the waker is not the task.
#[test]
fn an_awaiter_that_frees_the_task_as_it_is_woken_sees_no_current_task() {
    use std::future::Future;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Waker};

    let executor = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    // A name gives the task a box of extras, freed with it too.
    let victim = queue.task().name("victim").spawn(async {
        common::yield_n(3).await;
        7u32
    });
    let awaiter = Arc::new(DropsTheHandle {
        handle: Mutex::new(None),
        asked: Mutex::new(None),
    });
    let registrar = queue.spawn({
        let awaiter = Arc::clone(&awaiter);
        async move {
            let mut handle = victim;
            let waker = Waker::from(Arc::clone(&awaiter));
            let mut cx = Context::from_waker(&waker);
            assert!(std::pin::Pin::new(&mut handle).poll(&mut cx).is_pending());
            *awaiter.handle.lock().unwrap() = Some(handle);
        }
    });
    common::drive(executor.run_until(async {
        registrar.await.unwrap();
        common::yield_n(10).await;
    }));
    assert_eq!(*awaiter.asked.lock().unwrap(), Some(false));
    assert!(awaiter.handle.lock().unwrap().is_none());
}
