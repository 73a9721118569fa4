use clockworker::{ExecutorBuilder, JoinError, yield_maybe};
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn spawn_and_join() {
    let ex = ExecutorBuilder::new().with_queue(0, 1).build().unwrap();
    let q = ex.queue(0).unwrap();
    let out = futures::executor::block_on(ex.run_until(async move {
        let a = q.spawn(async { 1 });
        let b = q.spawn(async { 2 });
        a.await.unwrap() + b.await.unwrap()
    }));
    assert_eq!(out, 3);
}

#[test]
fn many_yields() {
    let ex = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_queue(1, 3)
        .build()
        .unwrap();
    let q0 = ex.queue(0).unwrap();
    let q1 = ex.queue(1).unwrap();
    let c = Rc::new(Cell::new(0u32));
    let c2 = c.clone();
    futures::executor::block_on(ex.run_until(async move {
        let mut hs = vec![];
        for i in 0..100 {
            let c = c2.clone();
            let q = if i % 2 == 0 { &q0 } else { &q1 };
            hs.push(q.spawn(async move {
                for _ in 0..100 {
                    c.set(c.get() + 1);
                    yield_once().await;
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
    }));
    let _ = yield_maybe;
    assert_eq!(c.get(), 10_000);
}

#[test]
fn panic_caught() {
    let ex = ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let q = ex.queue(0).unwrap();
    let r = futures::executor::block_on(
        ex.run_until(async move { q.spawn(async { panic!("boom") }).await }),
    );
    match r {
        Err(JoinError::Panic(p)) => assert_eq!(p.message(), "boom"),
        other => panic!("{other:?}"),
    }
}

async fn yield_once() {
    let mut done = false;
    std::future::poll_fn(|cx| {
        if done {
            std::task::Poll::Ready(())
        } else {
            done = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
