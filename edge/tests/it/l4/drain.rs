//! Shutdown: listeners close at once, open connections finish within the
//! drain timeout, the rest are closed at the deadline (virtual time).

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::support::{Harness, PATIENCE, Session, eventually};

#[tokio::test]
async fn shutdown_lets_open_connections_finish() {
    let mut h = Harness::start(2, "").await;
    let mut session = Session::open(h.http, "ECHO").await.unwrap();
    h.shutdown.cancel();
    let node = h.node.take().unwrap();
    let drain = tokio::spawn(node.wait());
    let (http, https) = (h.http, h.https);
    eventually("the listeners to close", async || {
        TcpStream::connect(http).await.is_err() && TcpStream::connect(https).await.is_err()
    })
    .await;
    session.ping("still relayed while draining").await.unwrap();
    assert!(!drain.is_finished());
    session.finish().await;
    let report = tokio::time::timeout(PATIENCE, drain)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.open_at_shutdown, 1);
    assert_eq!(report.forced, 0);
    assert!(report.took < Duration::from_secs(30));
}

#[tokio::test]
async fn connections_left_at_the_drain_deadline_are_closed() {
    let mut h = Harness::start(1, "      drain_timeout: 45s\n").await;
    let mut session = Session::open(h.http, "ECHO").await.unwrap();
    session.ping("open").await.unwrap();
    let node = h.node.take().unwrap();
    let drain = tokio::spawn(node.wait());
    tokio::time::pause();
    h.shutdown.cancel();
    let report = drain.await.unwrap();
    tokio::time::resume();
    assert_eq!(report.open_at_shutdown, 1);
    assert_eq!(report.forced, 1);
    assert!(
        report.took >= Duration::from_secs(45) && report.took < Duration::from_secs(46),
        "{:?}",
        report.took
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, session.reader.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}
