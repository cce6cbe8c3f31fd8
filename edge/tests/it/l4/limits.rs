//! `max_connections` and the idle timeout (on virtual time).

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::support::{Harness, Session, eventually, is_refused};

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_counted() {
    let h = Harness::start(1, "      max_connections: 2\n").await;
    let first = Session::open(h.http, "ECHO").await.unwrap();
    let mut second = Session::open(h.https, "ECHO").await.unwrap();
    assert!(is_refused(h.http).await, "a third connection was relayed");
    assert_eq!(
        h.metric("edge_l4_refused_connections_total{reason=\"max_connections\"}")
            .await,
        1.0
    );
    assert_eq!(h.metric("edge_l4_open_connections").await, 2.0);
    second.ping("unaffected").await.unwrap();

    first.finish().await;
    eventually("the finished connection to be released", async || {
        h.status().open_connections == 1
    })
    .await;
    let third = Session::open(h.http, "ECHO").await.unwrap();
    third.finish().await;
    second.finish().await;
    h.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout_on_virtual_time() {
    let h = Harness::start(1, "      idle_timeout: 5m\n").await;
    let mut session = Session::open(h.http, "ECHO").await.unwrap();
    session.ping("active").await.unwrap();

    // From here the clock only moves when every task waits: the relay's
    // idle deadline is the next timer.
    tokio::time::pause();
    let idle_since = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let n = session.reader.read_to_end(&mut rest).await.unwrap();
    let idle = idle_since.elapsed();
    tokio::time::resume();
    assert_eq!(n, 0);
    assert!(
        idle >= Duration::from_secs(299) && idle < Duration::from_secs(301),
        "closed after {idle:?} of virtual idleness"
    );
    assert_eq!(h.metric("edge_l4_idle_timeouts_total").await, 1.0);
    h.stop().await;
}
