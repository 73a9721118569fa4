//! [`hyper::rt::Executor`] for [`QueueHandle`] and [`SpawnerExecutor`]
//! (feature `hyper`).
//!
//! hyper spawns some tasks itself, through the executor it is given: its
//! HTTP/2 server spawns one task per stream, its HTTP/2 client one for the
//! connection and one or two per request, and hyper-util's legacy `Client`
//! one per pooled connection. hyper-util's `server::conn::auto::Builder` passes
//! its executor on to the HTTP/2 side of every connection it serves. With a
//! [`QueueHandle`] as that executor, those tasks run on one of the
//! executor's queues, weighted against the others like any task spawned by
//! hand, and need not be `Send`: a service that holds an `Rc` to the
//! thread's state works over HTTP/2 as well as HTTP/1.1.
//!
//! Spawned this way, a task is detached: hyper drops the
//! [`JoinHandle`](crate::JoinHandle) at once, and the task runs on to its
//! end. A task spawned from inside a grouped task (a stream of a connection
//! that runs in a group) joins its parent's group, as with
//! [`QueueHandle::spawn`].
//!
//! # What stays outside the executor
//!
//! Only what is spawned into a queue runs under the executor's scheduling.
//! `tokio::spawn` and `tokio::task::spawn_local`, called from inside a
//! clockworker task, put their future on Tokio's own scheduler, next to the
//! executor rather than under it: those tasks have no queue, no weight and
//! no share, and Tokio polls them whenever it polls its tasks. Frameworks do
//! this on their own: `axum::serve`, for one, spawns every connection with
//! `tokio::spawn`. To keep connections on a queue, run the accept loop
//! yourself (as below) and serve each connection with hyper or hyper-util
//! directly, handing them a [`QueueHandle`] as executor.
//!
//! # Example
//!
//! An HTTP/2 server and client over an in-memory pipe, both on one queue
//! of an executor that runs inside a Tokio current-thread runtime. The
//! service holds an `Rc`, which `tokio::spawn` would refuse.
//!
//! ```
//! use std::rc::Rc;
//!
//! use clockworker::ExecutorBuilder;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::service::service_fn;
//! use hyper::{Request, Response};
//! use hyper_util::rt::TokioIo;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_all()
//!     .build()
//!     .unwrap();
//! let executor = ExecutorBuilder::new().with_queue("http", 1).build().unwrap();
//! let queue = executor.queue("http").unwrap();
//!
//! let body = runtime.block_on(executor.run_until(async move {
//!     let (client_io, server_io) = tokio::io::duplex(64 * 1024);
//!
//!     // The server: one task for the connection, and one per stream,
//!     // which hyper spawns into `queue`.
//!     let greeting = Rc::new(String::from("hello from a queue")); // !Send
//!     let service = service_fn(move |_request: Request<Incoming>| {
//!         let greeting = Rc::clone(&greeting);
//!         async move {
//!             Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(greeting.to_string()))))
//!         }
//!     });
//!     let connection = hyper::server::conn::http2::Builder::new(queue.clone())
//!         .serve_connection(TokioIo::new(server_io), service);
//!     queue.spawn(connection);
//!
//!     // The client: its connection task goes into the same queue.
//!     let (mut sender, connection) =
//!         hyper::client::conn::http2::handshake(queue.clone(), TokioIo::new(client_io))
//!             .await
//!             .unwrap();
//!     queue.spawn(connection);
//!     let response = sender
//!         .send_request(Request::new(Empty::<Bytes>::new()))
//!         .await
//!         .unwrap();
//!     response.into_body().collect().await.unwrap().to_bytes()
//! }));
//! assert_eq!(body, "hello from a queue");
//! // The server's stream task, among others, was spawned into the queue.
//! assert!(executor.queue_stats("http").unwrap().spawned >= 3);
//! ```

use std::future::Future;

use crate::base::key::QueueKey;
use crate::queue::QueueHandle;
use crate::spawner::Spawner;

/// Spawns hyper's tasks into this queue, detached. The future need not be
/// `Send`.
///
/// If the executor is gone, the future is dropped unpolled (see
/// [`QueueHandle::spawn`]); hyper sees that as a task that ended, as it
/// does with any executor that refuses work.
impl<F> hyper::rt::Executor<F> for QueueHandle
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        // Dropping the handle detaches the task: it runs to its end.
        drop(self.spawn(future));
    }
}

/// A [`Spawner`] bound to one queue, as a `Send + Sync`
/// [`hyper::rt::Executor`].
///
/// For hyper types that want a `Send + Sync` executor, such as hyper-util's
/// legacy `Client`, or a server whose connections are accepted on another
/// thread: their tasks are spawned from any thread into the queue named by
/// the key, and run on the executor's thread. The futures must be `Send`,
/// as with [`Spawner::spawn`]. On the executor's own thread, prefer a
/// [`QueueHandle`]: it spawns without crossing threads and takes `!Send`
/// futures.
///
/// A future the executor refuses is dropped unpolled, and nothing else
/// tells of it: when the key names no queue (checked at each spawn, since
/// queues can be added after this is made) or when the executor has shut
/// down or is gone.
///
/// ```
/// use clockworker::{ExecutorBuilder, SpawnerExecutor};
/// use hyper::rt::Executor as _;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let executor = ExecutorBuilder::new().with_queue("conns", 1).build().unwrap();
/// let hyper_executor = SpawnerExecutor::new(executor.spawner(), "conns");
/// let ran = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&ran);
/// std::thread::spawn(move || {
///     hyper_executor.execute(async move { flag.store(true, Ordering::Relaxed) });
/// })
/// .join()
/// .unwrap();
/// futures::executor::block_on(executor.run_until(async {
///     while !ran.load(Ordering::Relaxed) {
///         clockworker::yield_now().await;
///     }
/// }));
/// ```
#[derive(Clone, Debug)]
pub struct SpawnerExecutor<K> {
    spawner: Spawner<K>,
    key: K,
}

impl<K: QueueKey> SpawnerExecutor<K> {
    /// An executor for hyper that spawns into the queue named `key`, through
    /// `spawner`.
    pub fn new(spawner: Spawner<K>, key: K) -> Self {
        SpawnerExecutor { spawner, key }
    }

    /// The key of the queue that tasks are spawned into.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The spawner that tasks are spawned through.
    pub fn spawner(&self) -> &Spawner<K> {
        &self.spawner
    }
}

/// Spawns hyper's tasks into the queue, detached, from any thread. A
/// refused future is dropped: see [`SpawnerExecutor`].
impl<F, K> hyper::rt::Executor<F> for SpawnerExecutor<K>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    K: QueueKey,
{
    fn execute(&self, future: F) {
        // `Err` means no queue has this key: the future was dropped with it.
        // `Ok` holds a handle that detaches the task when dropped (or that
        // is already cancelled, if the executor has shut down).
        drop(self.spawner.spawn(self.key.clone(), future));
    }
}
