//! The `hyper` feature end to end: a hyper-util `auto::Builder` server whose
//! executor is a `QueueHandle`, on a Tokio current-thread runtime, serving
//! HTTP/1.1 and HTTP/2 (prior knowledge) over loopback TCP to hyper clients.
//!
//! The service holds an `Rc`, so neither its futures nor the HTTP/2 stream
//! tasks that hyper spawns for it are `Send`: they could not go through
//! `tokio::spawn`. The queue statistics show that the connection tasks and
//! the stream tasks were spawned into the server's queue.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use clockworker::{Executor, ExecutorBuilder, QueueHandle, SpawnerExecutor};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Q {
    /// The accept loop, the connections and hyper's HTTP/2 stream tasks.
    Server,
    /// The clients' connection tasks.
    Client,
}

fn executor() -> Rc<Executor<Q>> {
    ExecutorBuilder::new()
        .with_queue(Q::Server, 4)
        .with_queue(Q::Client, 1)
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Binds 127.0.0.1:0 and spawns the accept loop into `queue`: every
/// connection becomes a task of `queue`, served by an `auto::Builder` that
/// spawns its HTTP/2 streams into `queue` too. Responses read
/// `"<path> #<n>"`, `n` counting requests server-wide in an `Rc<Cell>`.
async fn start_server(queue: QueueHandle) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let builder = Rc::new(auto::Builder::new(queue.clone()));
    let served = Rc::new(Cell::new(0u64)); // !Send: the service is !Send
    let connections = queue.clone();
    queue.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let builder = Rc::clone(&builder);
            let served = Rc::clone(&served);
            connections.spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let served = Rc::clone(&served);
                    async move {
                        served.set(served.get() + 1);
                        let body = format!("{} #{}", request.uri().path(), served.get());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                    .unwrap();
            });
        }
    });
    addr
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header(hyper::header::HOST, "localhost")
        .body(Empty::new())
        .unwrap()
}

async fn body_of(response: Response<Incoming>) -> String {
    assert!(response.status().is_success());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn http1_connections_run_on_the_queue() {
    let executor = executor();
    let server = executor.queue(Q::Server).unwrap();
    let client = executor.queue(Q::Client).unwrap();
    runtime().block_on(executor.run_until(async {
        let addr = start_server(server).await;
        let mut n = 0;
        for connection in 0..3 {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            client.spawn(conn);
            for request in 0..4 {
                let path = format!("/c{connection}/r{request}");
                sender.ready().await.unwrap();
                let response = sender.send_request(get(&path)).await.unwrap();
                n += 1;
                assert_eq!(body_of(response).await, format!("{path} #{n}"));
            }
        }
    }));
    let server = executor.queue_stats(Q::Server).unwrap();
    // The accept loop and one task per connection.
    assert_eq!(server.spawned, 1 + 3, "{server:?}");
    assert_eq!(executor.queue_stats(Q::Client).unwrap().spawned, 3);
}

#[test]
fn http2_streams_are_spawned_by_hyper_into_the_queue() {
    let executor = executor();
    let server = executor.queue(Q::Server).unwrap();
    // The HTTP/2 client's futures are `Send`: spawn them through the
    // `Send + Sync` spawner, which works from any thread.
    let client = SpawnerExecutor::new(executor.spawner(), Q::Client);
    runtime().block_on(executor.run_until(async {
        let addr = start_server(server).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http2::handshake(client, TokioIo::new(stream))
            .await
            .unwrap();
        executor.queue(Q::Client).unwrap().spawn(conn);

        // Wait for the server to have accepted and spawned the connection,
        // so that what the server queue spawns from here on is hyper's.
        let mut first = sender.clone();
        first.ready().await.unwrap();
        let response = first.send_request(get("/first")).await.unwrap();
        assert_eq!(body_of(response).await, "/first #1");
        let before = executor.queue_stats(Q::Server).unwrap().spawned;

        // Eight concurrent requests on the one connection: eight streams.
        let requests: Vec<_> = (0..8)
            .map(|i| {
                let mut sender = sender.clone();
                async move {
                    sender.ready().await.unwrap();
                    let response = sender.send_request(get(&format!("/s{i}"))).await.unwrap();
                    body_of(response).await
                }
            })
            .collect();
        let bodies = futures::future::join_all(requests).await;
        let mut numbers: Vec<u64> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let (path, n) = body.split_once(" #").unwrap();
                assert_eq!(path, format!("/s{i}"));
                n.parse().unwrap()
            })
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (2..=9).collect::<Vec<_>>());

        let after = executor.queue_stats(Q::Server).unwrap().spawned;
        // Only hyper spawns into the server queue after the connection
        // started: at least one task per stream, through `QueueHandle`.
        assert!(after - before >= 8, "{before} -> {after}");
    }));
    let server = executor.queue_stats(Q::Server).unwrap();
    // The accept loop, the connection, and one task per stream at least.
    assert!(server.spawned >= 1 + 1 + 9, "{server:?}");
    // The client connection, spawned by hand, and the tasks hyper's client
    // spawned through the `SpawnerExecutor`.
    assert!(
        executor.queue_stats(Q::Client).unwrap().spawned >= 2,
        "{:?}",
        executor.queue_stats(Q::Client)
    );
}

#[test]
fn http1_and_http2_share_one_server() {
    let executor = executor();
    let server = executor.queue(Q::Server).unwrap();
    let client = executor.queue(Q::Client).unwrap();
    runtime().block_on(executor.run_until(async {
        let addr = start_server(server).await;

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        client.spawn(conn);

        // The client's HTTP/2 tasks on a queue too, through `QueueHandle`.
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(client.clone(), TokioIo::new(stream))
                .await
                .unwrap();
        client.spawn(conn);

        for i in 1..=6u64 {
            let (sender_version, response) = if i % 2 == 0 {
                h1.ready().await.unwrap();
                (hyper::Version::HTTP_11, h1.send_request(get("/h1")).await)
            } else {
                h2.ready().await.unwrap();
                (hyper::Version::HTTP_2, h2.send_request(get("/h2")).await)
            };
            let response = response.unwrap();
            assert_eq!(response.version(), sender_version);
            let expected = if i % 2 == 0 { "/h1" } else { "/h2" };
            assert_eq!(body_of(response).await, format!("{expected} #{i}"));
        }
    }));
    let server = executor.queue_stats(Q::Server).unwrap();
    // Accept loop, two connections, three HTTP/2 streams at least.
    assert!(server.spawned >= 1 + 2 + 3, "{server:?}");
    assert!(server.completed >= 3, "{server:?}");
}
