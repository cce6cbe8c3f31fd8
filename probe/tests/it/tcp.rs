//! TCP connect probes.

use std::time::Duration;

use probe::{Checker, ProbeKind, ProbeSpec};
use tokio::net::TcpListener;

use crate::support::closed_port;

#[tokio::test(start_paused = true)]
async fn open_listener_is_ok() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let checker = Checker::new(&ProbeSpec::new(ProbeKind::Tcp { addr })).unwrap();
    let r = checker.probe(Duration::from_secs(1)).await;
    assert!(r.ok, "{r}");
    assert_eq!(r.detail, "connected");
}

#[tokio::test(start_paused = true)]
async fn closed_port_is_connection_refused() {
    let addr = closed_port().await;
    let checker = Checker::for_kind(&ProbeKind::Tcp { addr }).unwrap();
    let r = checker.probe(Duration::from_secs(1)).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "connection refused");
    assert!(r.latency < Duration::from_secs(1));
}
