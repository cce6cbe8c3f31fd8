//! Retries, passive ejection, shedding, rate limits and timeouts.

use super::support::*;

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_another_server() {
    let b = backends(2).await;
    b[0].stop();
    let down = b[0].addr;
    wait_until(|| async move { tokio::net::TcpStream::connect(down).await.is_err() }).await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    algorithm: round_robin
    servers: {}
    outlier: {{ failures: 0 }}
    retries: {{ attempts: 1, min_per_second: 100 }}
",
        servers(&[&b[0], &b[1]])
    )))
    .await;
    for _ in 0..6 {
        let reply = get(proxy.http, "/", &[]).await;
        assert_eq!((reply.status, reply.backend()), (200, "b1"), "{reply:?}");
    }
    let text = proxy.handle.metrics_text();
    assert_eq!(
        metric(&text, "edge_l7_retries_total{pool=\"web\"}"),
        3.0,
        "{text}"
    );
    // A 503 from the backend is retried once, elsewhere, then returned.
    let reply = get(proxy.http, "/status/503", &[]).await;
    assert_eq!(reply.status, 503);
    // A POST with a body is never replayed.
    let mut stream = tokio::net::TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(
        &mut stream,
        b"POST /status/503 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    let reply = parse(&raw).unwrap();
    assert!(reply.status == 503 || reply.status == 502, "{reply:?}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn consecutive_failures_eject_a_server_until_its_period_ends() {
    let b = backends(2).await;
    b[0].stop();
    let down = b[0].addr;
    wait_until(|| async move { tokio::net::TcpStream::connect(down).await.is_err() }).await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    algorithm: round_robin
    servers: {}
    outlier: {{ failures: 2, ejection: 1h }}
    retries: {{ attempts: 0 }}
",
        servers(&[&b[0], &b[1]])
    )))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get(proxy.http, "/", &[]).await.status);
    }
    // b0 fails twice (502), then is ejected: everything goes to b1.
    assert_eq!(statuses, [502, 200, 502, 200, 200, 200, 200, 200]);
    let text = proxy.handle.metrics_text();
    assert!(
        text.contains(&format!(
            "edge_l7_server_ejections_total{{pool=\"web\",server=\"{down}\"}} 1"
        )),
        "{text}"
    );
    assert!(proxy.handle.status().pools[0].servers[0].ejected);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn full_servers_and_listeners_shed_with_503_and_retry_after() {
    let b = backends(1).await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    servers: {}
    max_requests_per_server: 1
",
        servers(&[&b[0]])
    )))
    .await;
    let http = proxy.http;
    let slow = tokio::spawn(async move { get(http, "/?delay=1s", &[]).await });
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 1 }).await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (503, Some("1")),
        "{reply:?}"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    assert!(
        proxy
            .handle
            .metrics_text()
            .contains("edge_l7_shed_requests_total{listener=\"http\",reason=\"server_limit\"} 1")
    );
    proxy.stop().await.unwrap();

    let proxy = Proxy::start(spec(&format!(
        "limits: {{ max_requests: 1 }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b[0]])
    )))
    .await;
    let http = proxy.http;
    let slow = tokio::spawn(async move { get(http, "/?delay=1s", &[]).await });
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 1 }).await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (503, Some("1")),
        "{reply:?}"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn clients_over_their_rate_get_429() {
    let b = backends(1).await;
    let proxy = Proxy::start(spec(&format!(
        "rate_limit: {{ requests: 3, per: 1m }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b[0]])
    )))
    .await;
    for _ in 0..3 {
        assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    }
    let before = b[0].stats.requests();
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("20"));
    assert_eq!(
        b[0].stats.requests(),
        before,
        "a limited request never reaches a backend"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_slow_backend_times_out_with_504() {
    let b = backends(1).await;
    let proxy = Proxy::start(spec(&format!(
        "timeouts: {{ response: 300ms }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b[0]])
    )))
    .await;
    let started = std::time::Instant::now();
    let reply = get(proxy.http, "/?delay=3s", &[]).await;
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_over_its_connection_cap_is_closed_at_once() {
    let b = backends(1).await;
    let proxy = Proxy::start(spec(&format!(
        "limits: {{ max_connections_per_client: 2 }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b[0]])
    )))
    .await;
    // Two idle keep-alive connections hold the client's slots.
    let held = [
        tokio::net::TcpStream::connect(proxy.http).await.unwrap(),
        tokio::net::TcpStream::connect(proxy.http).await.unwrap(),
    ];
    wait_until(|| async {
        proxy
            .handle
            .metrics_text()
            .contains("edge_l7_open_connections{listener=\"http\"} 2")
    })
    .await;
    let mut third = tokio::net::TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(&mut third, &request("GET", "/", "www.example.com", &[])).await;
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    assert!(
        proxy
            .handle
            .metrics_text()
            .contains("edge_l7_connection_errors_total{listener=\"http\",kind=\"client_cap\"} 1")
    );
    drop(held);
    let http = proxy.http;
    wait_until(|| async move {
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        parse(&exchange(&mut s, &request("GET", "/", "www.example.com", &[])).await)
            .is_some_and(|r| r.status == 200)
    })
    .await;
    proxy.stop().await.unwrap();
}

/// A backend that answers every request with `Content-Length: 100` and 5
/// bytes of body, then stalls; it reports each connection the proxy closes.
async fn stalling_backend() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
                    .await;
                // Nothing more; wait for the proxy to give up.
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = closed.send(());
            });
        }
    });
    (addr, closes)
}

#[tokio::test]
async fn a_backend_that_stalls_mid_body_is_cut_off_and_ejected() {
    let (backend, mut closes) = stalling_backend().await;
    let proxy = Proxy::start(spec(&format!(
        "timeouts: {{ response: 300ms }}
routes: [{{ pool: web }}]
pools:
  web:
    servers: [{{ addr: \"{backend}\" }}]
    health: {{ kind: tcp }}
    outlier: {{ failures: 1, ejection: 1h }}
    retries: {{ attempts: 0 }}
"
    )))
    .await;
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(&mut stream, &request("GET", "/", "www.example.com", &[])).await;
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&raw);
    // The head and the 5 bytes came through, then the connection ended
    // short of the 100 bytes announced.
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(3),
        "{waited:?}"
    );
    // The backend connection is closed, not pooled.
    tokio::time::timeout(PATIENCE, closes.recv())
        .await
        .expect("the proxy closed the backend connection")
        .unwrap();
    // The stall counts as the server's failure: with `failures: 1`, ejected.
    assert!(proxy.handle.status().pools[0].servers[0].ejected);
    let text = proxy.handle.metrics_text();
    assert!(
        text.contains(&format!(
            "edge_l7_server_ejections_total{{pool=\"web\",server=\"{backend}\"}} 1"
        )),
        "{text}"
    );
    proxy.stop().await.unwrap();
}
