//! Routes, forwarding headers, the PROXY header and the region health path.

use edge::proxy_protocol::ProxyHeader;
use tokio::net::TcpStream;

use super::support::*;

#[tokio::test]
async fn the_routing_table_sends_each_request_to_its_pool() {
    let b = backends(5).await;
    let proxy = Proxy::start(spec(&format!(
        "
routes:
  - {{ host: www.example.com, path: /, header: {{ name: X-Canary, value: \"1\" }}, pool: canary }}
  - {{ host: www.example.com, path: /api, rewrite: /v2, pool: api }}
  - {{ host: \"*.apps.example.com\", pool: apps }}
  - {{ host: www.example.com, pool: web }}
  - {{ path: /static/, pool: static }}
pools:
  web: {{ servers: {} }}
  api: {{ servers: {} }}
  apps: {{ servers: {} }}
  canary: {{ servers: {} }}
  static: {{ servers: {} }}
",
        servers(&[&b[0]]),
        servers(&[&b[1]]),
        servers(&[&b[2]]),
        servers(&[&b[3]]),
        servers(&[&b[4]]),
    )))
    .await;
    // (host, path, extra header) → (status, backend, path the backend saw)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<(&'a str, &'a str)>,
        u16,
        &'a str,
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        ("www.example.com", "/", None, 200, "b0", "/"),
        ("WWW.EXAMPLE.COM:8080", "/x?y=1", None, 200, "b0", "/x?y=1"),
        (
            "www.example.com",
            "/api/users?id=7",
            None,
            200,
            "b1",
            "/v2/users?id=7",
        ),
        ("www.example.com", "/apix", None, 200, "b0", "/apix"),
        ("shop.apps.example.com", "/cart", None, 200, "b2", "/cart"),
        (
            "www.example.com",
            "/",
            Some(("X-Canary", "1")),
            200,
            "b3",
            "/",
        ),
        (
            "www.example.com",
            "/",
            Some(("X-Canary", "0")),
            200,
            "b0",
            "/",
        ),
        (
            "other.example.org",
            "/static/a.css",
            None,
            200,
            "b4",
            "/static/a.css",
        ),
        ("other.example.org", "/", None, 404, "-", ""),
    ];
    for &(host, path, header, status, backend, seen) in cases {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let reply = get_host(proxy.http, host, path, &headers).await;
        assert_eq!(
            (reply.status, reply.backend()),
            (status, backend),
            "{host}{path}: {reply:?}"
        );
        if status == 200 {
            assert_eq!(reply.json()["path"], seen, "{host}{path}");
        }
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn forwarding_headers_and_request_ids_reach_the_backend() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "via: true\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b])
    )))
    .await;
    let reply = get(
        proxy.http,
        "/",
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("Connection", "close, X-Drop"),
            ("X-Drop", "1"),
        ],
    )
    .await;
    let seen = &reply.json()["headers"];
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "www.example.com");
    assert_eq!(seen["host"], "www.example.com");
    assert_eq!(seen["via"], "1.1 l7t");
    let id = seen["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(reply.header("x-request-id"), Some(id));
    assert_eq!(reply.header("via"), Some("1.1 l7t"));
    // A client's own id is passed on.
    let reply = get(proxy.http, "/", &[("X-Request-ID", "client-id-1")]).await;
    assert_eq!(reply.json()["headers"]["x-request-id"], "client-id-1");
    // An HTTP/1.0 request that names no host is for the address it reached
    // (backends such as nginx refuse an HTTP/1.1 request with an empty Host).
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(
        &mut stream,
        b"GET / HTTP/1.0\r\nX-Forwarded-Host: forged\r\n\r\n",
    )
    .await;
    let reply = parse(&raw).unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = &reply.json()["headers"];
    assert_eq!(seen["host"], proxy.http.to_string());
    assert_eq!(seen["x-forwarded-host"], proxy.http.to_string());
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_proxy_header_client_address_reaches_x_forwarded_for() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "proxy_protocol: true\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b])
    )))
    .await;
    let client = "198.51.100.23:41000".parse().unwrap();
    let vip = "192.0.2.1:80".parse().unwrap();
    let mut bytes = ProxyHeader::from_l4(client, vip, "l4a").encode().unwrap();
    bytes.extend_from_slice(&request("GET", "/", "www.example.com", &[]));
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let reply = parse(&exchange(&mut stream, &bytes).await).unwrap();
    assert_eq!(reply.json()["headers"]["x-forwarded-for"], "198.51.100.23");
    // v1 works too.
    let mut bytes = b"PROXY TCP4 198.51.100.24 192.0.2.1 41001 80\r\n".to_vec();
    bytes.extend_from_slice(&request("GET", "/", "www.example.com", &[]));
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let reply = parse(&exchange(&mut stream, &bytes).await).unwrap();
    assert_eq!(reply.json()["headers"]["x-forwarded-for"], "198.51.100.24");
    // A request that names no host is for the VIP the client reached.
    let mut bytes = b"PROXY TCP4 198.51.100.25 192.0.2.1 41002 80\r\n".to_vec();
    bytes.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let reply = parse(&exchange(&mut stream, &bytes).await).unwrap();
    assert_eq!(reply.json()["headers"]["host"], "192.0.2.1:80");
    // Without a header the connection is closed, and nothing reaches a backend.
    let before = b.stats.requests();
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(&mut stream, &request("GET", "/", "www.example.com", &[])).await;
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
    assert_eq!(b.stats.requests(), before);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_region_health_path_reports_whether_pools_can_serve() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    servers: {}
    health: {{ path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }}
",
        servers(&[&b])
    )))
    .await;
    let reply = get(proxy.http, "/.well-known/gtm/health", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["pools"]["web"], true);
    // The admin address answers it too (the L4 tier probes there).
    assert_eq!(
        get(proxy.admin, "/.well-known/gtm/health", &[])
            .await
            .status,
        200
    );
    b.stats.set_healthy(false);
    let http = proxy.http;
    wait_until(|| async move { get(http, "/.well-known/gtm/health", &[]).await.status == 503 })
        .await;
    let status = get(proxy.admin, "/v1/status", &[]).await.json();
    assert_eq!(status["healthy"], false);
    assert_eq!(status["pools"][0]["servers"][0]["health"], "down");
    b.stats.set_healthy(true);
    wait_until(|| async move { get(http, "/.well-known/gtm/health", &[]).await.status == 200 })
        .await;
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn only_critical_pools_take_the_region_health_path_down() {
    let web = TestBackend::start("web").await;
    let extras = TestBackend::start("extras").await;
    let check = "{ path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }";
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ path: /extras, pool: extras }}, {{ pool: web }}]
pools:
  web:
    servers: {}
    health: {check}
  extras:
    servers: {}
    health: {check}
    critical: false
",
        servers(&[&web]),
        servers(&[&extras])
    )))
    .await;
    let http = proxy.http;
    let health = move || async move { get(http, "/.well-known/gtm/health", &[]).await };
    assert_eq!(health().await.status, 200);
    // The non-critical pool losing every server leaves the region up.
    extras.stats.set_healthy(false);
    wait_until(|| async move { health().await.json()["pools"]["extras"] == false }).await;
    let reply = health().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["healthy"], true);
    // The critical one losing its server takes it down.
    web.stats.set_healthy(false);
    wait_until(|| async move { health().await.status == 503 }).await;
    web.stats.set_healthy(true);
    wait_until(|| async move { health().await.status == 200 }).await;
    proxy.stop().await.unwrap();
}
