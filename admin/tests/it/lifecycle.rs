//! Graceful shutdown: requests in flight finish, stuck ones are cut at the
//! grace deadline, and nothing is accepted afterwards.

use std::sync::Arc;
use std::time::Duration;

use admin::{AdminConfig, Request, Response, Router};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use crate::support::{Running, read_reply};

/// A route that reports when it starts and answers when released.
fn slow_router(started: mpsc::Sender<()>, release: Arc<Notify>) -> Router {
    Router::new().get("/slow", move |_req: Request| {
        let started = started.clone();
        let release = Arc::clone(&release);
        async move {
            let _ = started.send(()).await;
            release.notified().await;
            Response::ok_json(&"done")
        }
    })
}

async fn start_slow_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn requests_in_flight_finish_after_shutdown() {
    let (started_tx, mut started) = mpsc::channel(1);
    let release = Arc::new(Notify::new());
    let mut server = Running::start(
        slow_router(started_tx, Arc::clone(&release)),
        AdminConfig::default(),
    )
    .await;
    let mut client = start_slow_request(server.addr).await;
    started.recv().await.unwrap();

    server.shutdown.cancel();
    // New connections are refused once the listener is dropped; wait for
    // that rather than sleeping.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(server.addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::task::yield_now().await;
    }
    assert!(!server.task.as_ref().unwrap().is_finished());

    release.notify_one();
    let reply = read_reply(&mut client).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), "done");
    tokio::time::timeout(Duration::from_secs(10), server.task.take().unwrap())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn stuck_requests_are_cut_at_the_grace_deadline() {
    let (started_tx, mut started) = mpsc::channel(1);
    let release = Arc::new(Notify::new());
    let config = AdminConfig {
        shutdown_grace: Duration::from_millis(200),
        ..AdminConfig::default()
    };
    let mut server = Running::start(slow_router(started_tx, release), config).await;
    let mut client = start_slow_request(server.addr).await;
    started.recv().await.unwrap();
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.task.take().unwrap())
        .await
        .expect("returns after the grace period")
        .unwrap();
    // The connection was closed without a response.
    let mut raw = Vec::new();
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut raw))
        .await
        .unwrap();
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
}
