//! Drain at shutdown, reload under traffic, the admin endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

fn web(list: &str) -> String {
    format!(
        "timeouts: {{ drain: 5s }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ algorithm: round_robin, servers: {list} }}\n"
    )
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight_and_refuses_new_connections() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&web(&servers(&[&b])))).await;
    let http = proxy.http;
    let in_flight: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(http, "/?delay=700ms", &[]).await }))
        .collect();
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 4 }).await;
    let handle = proxy.handle.clone();
    let started = std::time::Instant::now();
    proxy.shutdown.cancel();
    // Draining: the health path says so at once (the GSLB and L4 move away).
    wait_until(|| async { handle.health().0 == 503 }).await;
    for request in in_flight {
        assert_eq!(
            request.await.unwrap().status,
            200,
            "a request in flight was cut"
        );
    }
    // Already draining: this waits for the node to finish.
    proxy.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(http).await.is_err(),
        "still accepting after the drain"
    );
}

#[tokio::test]
async fn a_draining_node_serves_new_connections_while_they_keep_coming_then_refuses_them() {
    // Until the L4 tier's checks see the 503, it keeps sending; closing
    // the listener then would reset connections it has already used.
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&web(&servers(&[&b])))).await;
    let http = proxy.http;
    assert_eq!(get(http, "/", &[]).await.status, 200);
    let handle = proxy.handle.clone();
    proxy.shutdown.cancel();
    wait_until(|| async { handle.health().0 == 503 }).await;
    let reply = get(http, "/", &[]).await;
    assert_eq!(reply.status, 200, "a connection arriving while draining");
    wait_until(|| async { !handle.status().accepting }).await;
    assert!(
        TcpStream::connect(http).await.is_err(),
        "still accepting once connections stopped coming"
    );
    // Already draining: this waits for the node to finish.
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_arriving_on_a_fresh_connection_as_the_drain_starts_is_answered() {
    // The L4 tier connects, and the client's request follows right behind;
    // a drain starting in between used to close the connection unanswered.
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&web(&servers(&[&b])))).await;
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let metrics = proxy.handle.clone();
    wait_until(|| async {
        metrics
            .metrics_text()
            .contains("edge_l7_open_connections{listener=\"http\"} 1")
    })
    .await;
    let handle = proxy.handle.clone();
    proxy.shutdown.cancel();
    // Past the drain's first stage: the listener is closed.
    wait_until(|| async { !handle.status().accepting }).await;
    let raw = exchange(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    )
    .await;
    let reply = parse(&raw).expect("an answer, not a closed connection");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    // Already draining: this waits for the node to finish.
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_next_request_on_an_idle_kept_alive_connection_is_answered_during_a_drain() {
    // Closing idle kept-alive connections at once races with the request
    // a client may be sending on one; the next request is answered with
    // `Connection: close` instead.
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&web(&servers(&[&b])))).await;
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let ask = b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
    stream.write_all(ask).await.unwrap();
    let mut first = Vec::new();
    loop {
        let mut chunk = [0; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after the first request");
        first.extend_from_slice(&chunk[..n]);
        if let Some(reply) = parse(&first)
            && reply.header("content-length").and_then(|l| l.parse().ok()) == Some(reply.body.len())
        {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("connection"), None, "kept alive");
            break;
        }
    }
    let handle = proxy.handle.clone();
    proxy.shutdown.cancel();
    // Past the drain's first stage: the listener is closed.
    wait_until(|| async { !handle.status().accepting }).await;
    let raw = exchange(&mut stream, ask).await;
    let reply = parse(&raw).expect("an answer, not a closed connection");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    // Already draining: this waits for the node to finish.
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_drain_deadline_closes_what_is_left() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "timeouts: {{ drain: 300ms }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b])
    )))
    .await;
    let http = proxy.http;
    let stuck = tokio::spawn(async move {
        let mut stream = TcpStream::connect(http).await.unwrap();
        exchange(
            &mut stream,
            &request("GET", "/?delay=5s", "www.example.com", &[]),
        )
        .await
    });
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 1 }).await;
    let started = std::time::Instant::now();
    proxy.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let _ = stuck.await;
}

#[tokio::test]
async fn reloads_under_traffic_fail_no_request_and_keep_health_state() {
    let b = backends(3).await;
    let health =
        "    health: { path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }\n";
    let config = |list: String| {
        format!(
            "routes: [{{ pool: web }}]\npools:\n  web:\n    algorithm: round_robin\n    servers: {list}\n{health}"
        )
    };
    let proxy = Proxy::start(spec(&config(servers(&[&b[0], &b[1]])))).await;
    // b1 goes down by its health check before the reloads.
    b[1].stats.set_healthy(false);
    wait_until(|| async { proxy.handle.status().pools[0].servers[1].health == "down" }).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("http://{}/", proxy.http);
        clients.push(tokio::spawn(async move {
            // Keep-alive connections that live across the reloads.
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            while !stop.load(Ordering::Relaxed) {
                let request = http::Request::get(&url)
                    .header("host", "www.example.com")
                    .body(Empty::new())
                    .unwrap();
                match client.request(request).await {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.into_body().collect().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => {
                        eprintln!("failed: {}", response.status());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let lists = [
        servers(&[&b[0], &b[1], &b[2]]),
        servers(&[&b[2], &b[1]]),
        servers(&[&b[0], &b[1]]),
        format!(
            "[{{ addr: \"{}\", weight: 2 }}, {{ addr: \"{}\" }}]",
            b[0].addr, b[1].addr
        ),
        servers(&[&b[1], &b[2]]),
    ];
    for list in lists {
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.handle.reload(spec(&config(list))).await.unwrap();
        // b1 is in every configuration: it stays down, with no probe of
        // the new generation needed.
        let status = proxy.handle.status();
        let b1 = status.pools[0]
            .servers
            .iter()
            .find(|s| s.addr == b[1].addr.to_string())
            .unwrap();
        assert_eq!(b1.health, "down", "{status:?}");
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "{}",
        ok.load(Ordering::Relaxed)
    );
    // The last configuration serves: b2 only (b1 is down).
    let counts = spread(proxy.http, 4, &[]).await;
    assert_eq!(counts.get("b2"), Some(&4), "{counts:?}");
    // A reload that changes the node's identity is refused, the old
    // configuration stays.
    let mut other = spec(&config(servers(&[&b[0]])));
    other.http_port += 1;
    assert!(proxy.handle.reload(other).await.is_err());
    assert_eq!(get(proxy.http, "/", &[]).await.backend(), "b2");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_endpoint_serves_metrics_and_status() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&web(&servers(&[&b])))).await;
    for _ in 0..3 {
        assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    }
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    let metrics = get(proxy.admin, "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    for expected in [
        "edge_l7_requests_total{route=\"*/\",pool=\"web\",class=\"2xx\"} 4",
        &format!(
            "edge_l7_server_responses_total{{pool=\"web\",server=\"{}\",class=\"2xx\"}}",
            b.addr
        ),
        "edge_l7_request_duration_seconds_bucket",
        &format!(
            "edge_l7_server_in_flight_requests{{pool=\"web\",server=\"{}\"}} 0",
            b.addr
        ),
        &format!("edge_l7_server_up{{pool=\"web\",server=\"{}\"}} 1", b.addr),
        // One observation per request the server answered.
        &format!(
            "edge_l7_server_response_duration_seconds_count{{pool=\"web\",server=\"{}\"}} 4",
            b.addr
        ),
        "edge_l7_connections_total{listener=\"http\"}",
    ] {
        assert!(
            metrics.body.contains(expected),
            "missing {expected}:\n{}",
            metrics.body
        );
    }
    let status = get(proxy.admin, "/v1/status", &[]).await.json();
    assert_eq!(status["node"], "l7t");
    assert_eq!(status["pools"][0]["name"], "web");
    assert_eq!(status["pools"][0]["servers"][0]["addr"], b.addr.to_string());
    proxy.stop().await.unwrap();
}

#[test]
fn relative_certificate_and_ticket_key_paths_are_resolved_against_the_topology() {
    let spec = spec_at(
        "tls:
  certs: [{ cert: certs/a.pem, key: /etc/gtm/a.key }]
  ticket_keys: certs/tickets.keys
routes: [{ pool: web }]
pools: { web: { servers: [{ addr: \"127.0.0.1:9000\" }] } }
",
        std::path::Path::new("/srv/gtm"),
    );
    let tls = spec.tier.tls.unwrap();
    let path = std::path::PathBuf::from;
    assert_eq!(tls.certs[0].cert, path("/srv/gtm/certs/a.pem"));
    assert_eq!(tls.certs[0].key, path("/etc/gtm/a.key"));
    assert_eq!(tls.ticket_keys, Some(path("/srv/gtm/certs/tickets.keys")));
}

#[tokio::test]
async fn every_l7_node_of_the_example_topology_builds() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
    let topology = topology::load(&path).unwrap();
    let base = path.parent().unwrap();
    let mut built = 0;
    for region in &topology.regions {
        for node in region.l7.iter().flat_map(|t| t.nodes.iter()) {
            let spec = edge::l7::NodeSpec::from_topology(&topology, &node.name, base).unwrap();
            assert!(spec.tier.proxy_protocol, "{}", node.name);
            // Certificates load (relative to the topology file).
            edge::l7::L7Node::new(spec).unwrap_or_else(|e| panic!("{}: {e}", node.name));
            built += 1;
        }
    }
    assert_eq!(built, 6);
    let error = edge::l7::NodeSpec::from_topology(&topology, "nope", base).unwrap_err();
    assert!(error.to_string().contains("us-east-l7a"), "{error}");
}
