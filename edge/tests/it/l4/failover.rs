//! Health and failover: an unhealthy or killed L7 node leaves the table
//! while the others keep their connections; a failed connect retries on the
//! next node; with every node down, connections are refused and the region
//! fails its health check through the VIP.

use std::collections::BTreeSet;
use std::time::Duration;

use probe::{Checker, HttpCheck, ProbeKind, ProbeSpec};

use super::support::{FAST_HEALTH, Harness, Session, eventually, http_get, is_refused, l7_name};

/// Opens ECHO sessions until every node has one (bounded).
async fn sessions_on_every_node(h: &Harness) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut nodes = BTreeSet::new();
    for _ in 0..200 {
        let session = Session::open(h.http, "ECHO").await.unwrap();
        nodes.insert(session.node.clone());
        sessions.push(session);
        if nodes.len() == h.l7.len() {
            return sessions;
        }
    }
    panic!("200 connections reached only {nodes:?}");
}

async fn new_sessions_avoid(h: &Harness, avoided: &str, count: usize) {
    for _ in 0..count {
        let mut session = Session::open(h.http, "ECHO").await.unwrap();
        assert_ne!(session.node, avoided, "a new connection went to {avoided}");
        session.ping("x").await.unwrap();
        session.finish().await;
    }
}

#[tokio::test]
async fn an_unhealthy_node_leaves_the_table_and_keeps_its_connections() {
    let h = Harness::start(3, FAST_HEALTH).await;
    let mut sessions = sessions_on_every_node(&h).await;
    let b = l7_name(1);
    // The L4 node probes its L7 nodes directly, without a PROXY header.
    let probed = &h.l7[1];
    eventually("a direct health probe of l7b", async || {
        probed.health_checks() > 0
    })
    .await;
    h.l7[1].set_healthy(false);
    h.wait_health(&b, "down").await;
    let status = h.status();
    assert_eq!(status.table.backends, 2);
    // Drain, not cut: the sessions on b still work.
    for session in &mut sessions {
        session.ping("still here").await.unwrap();
    }
    new_sessions_avoid(&h, &b, 30).await;

    h.l7[1].set_healthy(true);
    h.wait_health(&b, "up").await;
    let mut back = false;
    for _ in 0..100 {
        let session = Session::open(h.http, "ECHO").await.unwrap();
        back |= session.node == b;
        session.finish().await;
        if back {
            break;
        }
    }
    assert!(back, "{b} came back but got no new connection");
    for session in sessions {
        session.finish().await;
    }
    h.stop().await;
}

#[tokio::test]
async fn a_killed_node_takes_only_its_own_connections() {
    let h = Harness::start(3, FAST_HEALTH).await;
    let sessions = sessions_on_every_node(&h).await;
    let b = l7_name(1);
    h.l7[1].kill().await;
    for mut session in sessions {
        if session.node == b {
            assert!(
                session.ping("gone?").await.is_err(),
                "a connection to the killed node survived"
            );
        } else {
            session.ping("untouched").await.unwrap();
            session.finish().await;
        }
    }
    h.wait_health(&b, "down").await;
    new_sessions_avoid(&h, &b, 30).await;
    assert!(h.metric("edge_l4_l7_up{l7_node=\"l7b\"}").await == 0.0);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_connect_retries_on_the_next_node() {
    // Probes so slow that the dead node stays in the table: only the retry
    // saves its connections.
    let h = Harness::start(2, "      health: { interval: 1h, timeout: 1s }\n").await;
    h.l7[1].kill().await;
    for _ in 0..20 {
        let mut session = Session::open(h.http, "ECHO").await.unwrap();
        assert_eq!(session.node, l7_name(0));
        session.ping("retried").await.unwrap();
        session.finish().await;
    }
    assert_eq!(
        h.status().table.backends,
        2,
        "the dead node is still in the table"
    );
    let failures = h
        .metric("edge_l4_connect_failures_total{l7_node=\"l7b\"}")
        .await;
    assert!(failures >= 1.0, "no connect failure counted for l7b");
    assert_eq!(
        h.metric("edge_l4_refused_connections_total{reason=\"connect_failed\"}")
            .await,
        0.0
    );
    h.stop().await;
}

#[tokio::test]
async fn with_every_node_down_connections_are_refused_and_the_region_check_fails() {
    let h = Harness::start(2, FAST_HEALTH).await;
    let mut gslb_check = HttpCheck::http(h.http);
    gslb_check.path = topology::tiers::l7::DEFAULT_HEALTH_PATH.to_owned();
    let gslb = Checker::new(&ProbeSpec::new(ProbeKind::Http(gslb_check))).unwrap();
    let before = gslb.probe(Duration::from_secs(5)).await;
    assert!(
        before.ok,
        "the region's check fails while its L7 nodes are up: {before}"
    );

    for fake in &h.l7 {
        fake.kill().await;
    }
    h.wait_for("an empty table", |s| s.table.backends == 0)
        .await;
    assert!(is_refused(h.http).await);
    assert!(is_refused(h.https).await);
    let refused = h
        .metric("edge_l4_refused_connections_total{reason=\"no_healthy_l7\"}")
        .await;
    assert!(refused >= 2.0, "{refused}");

    let after = gslb.probe(Duration::from_secs(5)).await;
    assert!(!after.ok, "the region still passes its check: {after}");
    // The admin endpoint itself is still up, and says why.
    let (code, body) = http_get(h.admin, "/v1/status").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"health\":\"down\""), "{body}");
    h.stop().await;
}
