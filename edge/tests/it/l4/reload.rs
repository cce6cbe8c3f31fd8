//! Reloads: under traffic (explicit, like SIGHUP), refused when the new file
//! is wrong, and picked up when the file changes.

use std::net::IpAddr;
use std::time::Duration;

use edge::l4::Options;

use super::support::{FakeL7, Harness, Session, http_request, l7_ip, l7_name, topology_yaml};

fn yaml(h: &Harness, nodes: usize, l4_extra: &str) -> String {
    let names: Vec<(String, IpAddr)> = (0..nodes).map(|i| (l7_name(i), l7_ip(i))).collect();
    let pairs: Vec<(&str, IpAddr)> = names.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
    topology_yaml(h.ports, &pairs, l4_extra)
}

#[tokio::test]
async fn a_reload_under_traffic_keeps_established_connections() {
    let h = Harness::start(2, "").await;
    let third = FakeL7::start(&l7_name(2), l7_ip(2), &h.ports.all())
        .await
        .expect("127.0.0.4 at the VIP's ports");
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(Session::open(h.http, "ECHO").await.unwrap());
    }
    let generation = h.status().table.generation;

    std::fs::write(&h.config, yaml(&h, 3, "      weights: { l7a: 2 }\n")).unwrap();
    let summary = h.node().reloader().reload().await.unwrap();
    assert_eq!(summary.l7_nodes, ["l7a", "l7b", "l7c"]);
    assert_eq!(summary.checks_added, ["l7c"]);
    assert!(summary.generation > generation);
    let status = h.status();
    assert_eq!(status.table.backends, 3);
    assert_eq!(status.l7_nodes[0].weight, 2);

    for session in &mut sessions {
        session.ping("after the reload").await.unwrap();
    }
    let mut reached_third = false;
    for _ in 0..100 {
        let session = Session::open(h.http, "ECHO").await.unwrap();
        reached_third |= session.node == third.name();
        session.finish().await;
        if reached_third {
            break;
        }
    }
    assert!(reached_third, "the added node gets no connection");
    for session in sessions {
        session.finish().await;
    }
    assert_eq!(h.metric("edge_l4_reloads_total{result=\"ok\"}").await, 1.0);
    h.stop().await;
}

#[tokio::test]
async fn a_bad_reload_keeps_the_running_configuration() {
    let h = Harness::start(2, "").await;
    let mut session = Session::open(h.http, "ECHO").await.unwrap();
    // What a reload could change: the status less the probes' latest
    // answers, which the health checks update meanwhile.
    let configured = || {
        let mut status = h.status();
        for node in &mut status.l7_nodes {
            node.last_probe = None;
        }
        status
    };
    let before = configured();
    for (bad, expected) in [
        (
            yaml(&h, 2, "      drain_timeout: 30\n"),
            "regions.test.l4.drain_timeout",
        ),
        (
            yaml(&h, 2, "      weights: { nope: 1 }\n"),
            "regions.test.l4.weights.nope",
        ),
        ("regions: [".to_owned(), "line 1"),
    ] {
        std::fs::write(&h.config, bad).unwrap();
        let error = h.node().reloader().reload().await.unwrap_err().to_string();
        assert!(error.contains(expected), "{expected:?} not in {error}");
        assert_eq!(configured(), before, "a refused reload changed something");
    }
    // The same through the admin API.
    let (code, body) = http_request(h.admin, "POST", "/v1/reload").await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("the previous configuration keeps running"),
        "{body}"
    );
    session.ping("unaffected").await.unwrap();
    session.finish().await;
    assert_eq!(
        h.metric("edge_l4_reloads_total{result=\"error\"}").await,
        4.0
    );
    h.stop().await;
}

#[tokio::test]
async fn a_changed_file_is_reloaded() {
    let options = Options {
        reload_poll: Duration::from_millis(20),
        ..Options::default()
    };
    let h = Harness::start_with(2, "", options).await;
    let mut session = Session::open(h.http, "ECHO").await.unwrap();
    std::fs::write(&h.config, yaml(&h, 1, "")).unwrap();
    h.wait_for("l7b to be removed", |s| s.l7_nodes.len() == 1)
        .await;
    // Its connection, if it had one, is left alone.
    session.ping("still relayed").await.unwrap();
    session.finish().await;
    h.stop().await;
}
