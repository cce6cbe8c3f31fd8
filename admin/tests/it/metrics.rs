//! `GET /metrics`: the formats, and `promtool check metrics` when it is
//! installed.

use std::sync::Arc;

use admin::metrics::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use admin::{AdminConfig, Router};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::support::{Running, send};

fn registry() -> (Arc<Registry>, Counter) {
    let mut registry = Registry::with_prefix("test");
    let requests = Counter::default();
    registry.register("requests", "Requests served", requests.clone());
    let sent: Counter = Counter::default();
    registry.register_with_unit("sent", "Bytes sent", Unit::Bytes, sent);
    let open: Gauge = Gauge::default();
    registry.register("open_connections", "Connections open now", open);
    (Arc::new(registry), requests)
}

#[tokio::test]
async fn metrics_are_served_live_in_both_formats() {
    let (registry, requests) = registry();
    let server = Running::start(Router::new().metrics(registry), AdminConfig::default()).await;
    requests.inc_by(41);
    requests.inc();
    let reply = send(server.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    assert!(
        reply
            .text()
            .contains("# TYPE test_requests_total counter\ntest_requests_total 42\n"),
        "{}",
        reply.text()
    );

    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let reply = send(server.addr, "GET", "/metrics", &[("Accept", accept)], b"").await;
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(reply.text().ends_with("# EOF\n"));

    if let Some(verdict) =
        system_tests::promtool_check(&send(server.addr, "GET", "/metrics", &[], b"").await.body)
    {
        assert!(verdict.0, "promtool check metrics failed: {}", verdict.1);
    }
    server.stop().await;
}
