//! Routes through a real node: the matchers beyond host and path (method,
//! path regex, query parameter, cookie, header absence), header rules seen
//! at the backend and the client, redirects, fixed responses and the
//! request body limit (413), on both request paths.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

#[tokio::test]
async fn each_matcher_sends_its_requests_to_its_pool() {
    let b = backends(6).await;
    let proxy = Proxy::start(spec(&format!(
        "
routes:
  - {{ path: /m, methods: [POST, PUT], pool: methods }}
  - {{ path_regex: \"^/items/[0-9]+$\", pool: regex }}
  - {{ path: /q, query: {{ name: v, value: \"a b\" }}, pool: query }}
  - {{ path: /c, cookie: {{ name: beta, value: \"1\" }}, pool: cookie }}
  - {{ path: /h, header: {{ name: X-Legacy, absent: true }}, pool: absent }}
  - {{ pool: web }}
pools:
  web: {{ servers: {} }}
  methods: {{ servers: {} }}
  regex: {{ servers: {} }}
  query: {{ servers: {} }}
  cookie: {{ servers: {} }}
  absent: {{ servers: {} }}
",
        servers(&[&b[0]]),
        servers(&[&b[1]]),
        servers(&[&b[2]]),
        servers(&[&b[3]]),
        servers(&[&b[4]]),
        servers(&[&b[5]]),
    )))
    .await;
    // (method, path, header) → backend.
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, &'a str);
    let cases: &[Case<'_>] = &[
        ("POST", "/m", None, "b1"),
        ("PUT", "/m/x", None, "b1"),
        ("GET", "/m", None, "b0"),
        ("GET", "/items/42", None, "b2"),
        ("GET", "/items/42/x", None, "b0"),
        ("GET", "/q?v=a+b", None, "b3"),
        ("GET", "/q?x=1&v=a%20b", None, "b3"),
        ("GET", "/q?v=ab", None, "b0"),
        ("GET", "/c", Some(("Cookie", "a=1; beta=1")), "b4"),
        ("GET", "/c", Some(("Cookie", "beta=2")), "b0"),
        ("GET", "/h", None, "b5"),
        ("GET", "/h", Some(("X-Legacy", "1")), "b0"),
    ];
    for &(method, path, header, backend) in cases {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let mut stream = TcpStream::connect(proxy.http).await.unwrap();
        let raw = exchange(
            &mut stream,
            &request(method, path, "www.example.com", &headers),
        )
        .await;
        let reply = parse(&raw).unwrap();
        assert_eq!(
            (reply.status, reply.backend()),
            (200, backend),
            "{method} {path} {header:?}: {reply:?}"
        );
        assert_eq!(reply.json()["path"], path);
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn header_rules_are_seen_at_the_backend_and_the_client() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "
routes:
  - pool: web
    request_headers:
      set: {{ X-Forwarded-Proto: https }}
      add: {{ Via: 1.1 rules }}
      remove: [X-Forwarded-For]
    response_headers:
      set: {{ Cache-Control: no-store }}
      add: {{ X-Served-By: edge }}
      remove: [X-Backend]
pools:
  web: {{ servers: {} }}
",
        servers(&[&b])
    )))
    .await;
    let reply = get(proxy.http, "/", &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = &reply.json()["headers"];
    // The rules come after the proxy's own fields, so they win.
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert_eq!(seen["x-forwarded-for"], "");
    assert_eq!(seen["via"], "1.1 rules");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-served-by"), Some("edge"));
    assert_eq!(reply.header("x-backend"), None);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn redirects_and_fixed_responses_are_answered_by_the_node() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "
routes:
  - {{ path: /ping, respond: {{ status: 200, body: \"pong\\n\", content_type: text/plain }} }}
  - {{ path: /gone, respond: {{ status: 410 }} }}
  - {{ path: /old, redirect: {{ status: 302, location: \"/new{{query}}\" }} }}
  - {{ host: www.example.com, redirect: {{ location: \"https://{{host}}{{path}}{{query}}\" }} }}
  - {{ pool: web }}
pools:
  web: {{ servers: {} }}
",
        servers(&[&b])
    )))
    .await;
    let reply = get_host(proxy.http, "www.example.com:8080", "/a/b?x=1", &[]).await;
    assert_eq!(reply.status, 301, "{reply:?}");
    assert_eq!(
        reply.header("location"),
        Some("https://www.example.com/a/b?x=1")
    );
    assert_eq!(reply.header("content-length"), Some("0"));
    let reply = get_host(proxy.http, "other.example", "/old?q=2", &[]).await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (302, Some("/new?q=2"))
    );
    let reply = get_host(proxy.http, "other.example", "/ping", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "pong\n");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    let reply = get_host(proxy.http, "other.example", "/gone", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (410, ""));
    // None of them reached the backend; the default route still does.
    assert_eq!(b.stats.requests(), 0);
    let reply = get_host(proxy.http, "other.example", "/", &[]).await;
    assert_eq!(reply.backend(), "b0");
    proxy.stop().await.unwrap();
}

/// The response to `bytes` sent on a fresh connection, read until the
/// node closes it.
async fn send(proxy: &Proxy, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(&mut stream, bytes).await;
    parse(&raw).unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&raw)))
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_declared_or_streamed() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "
limits: {{ max_body: 1KB }}
routes:
  - {{ path: /small, max_body: 10, pool: web }}
  - {{ pool: web }}
pools:
  web: {{ servers: {} }}
",
        servers(&[&b])
    )))
    .await;
    let host = "Host: www.example.com\r\n";
    // Declared: refused from the head alone, the body never read, the
    // connection closed.
    let reply = send(
        &proxy,
        format!("POST /small HTTP/1.1\r\n{host}Content-Length: 11\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.header("connection"), Some("close"));
    // The listener's limit where the route sets none.
    let reply = send(
        &proxy,
        format!("PUT /other HTTP/1.1\r\n{host}Content-Length: 1001\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(b.stats.requests(), 0);
    // Streamed: cut off once past the limit. The chunks stop there (no
    // last chunk), so the answer cannot wait for the body's end.
    let reply = send(
        &proxy,
        format!(
            "POST /small HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.header("connection"), Some("close"));
    // At the limit, declared or streamed, bodies pass, and a connection
    // serves the next request after them.
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let keep_alive = format!(
        "POST /small HTTP/1.1\r\n{host}Content-Length: 10\r\n\r\n0123456789\
         POST /small HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n\
         GET / HTTP/1.1\r\n{host}Connection: close\r\n\r\n"
    );
    stream.write_all(keep_alive.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("answered and closed in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert_eq!(text.matches("\"body_bytes\":10").count(), 2, "{text}");
    // Refused requests were not held against the server.
    let status = get(proxy.admin, "/v1/status", &[]).await.json();
    assert_eq!(status["pools"][0]["servers"][0]["health"], "up", "{status}");
    proxy.stop().await.unwrap();
}

/// A request body sent in pieces without a declared length (HTTP/2 DATA
/// frames with no `content-length`).
struct Pieces(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for Pieces {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|piece| Ok(http_body::Frame::data(piece))),
        )
    }
}

#[tokio::test]
async fn over_http2_a_refused_stream_leaves_the_connection_serving() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "
routes:
  - {{ path: /small, max_body: 10, pool: web }}
  - {{ path: /old, redirect: {{ status: 307, location: \"{{scheme}}://{{host}}/new{{path}}\" }} }}
  - {{ pool: web }}
pools:
  web: {{ servers: {} }}
",
        servers(&[&b])
    )))
    .await;
    let stream = TcpStream::connect(proxy.http).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let post = |pieces: &[&'static str]| {
        http::Request::post("http://www.example.com/small")
            .body(Pieces(
                pieces
                    .iter()
                    .map(|p| bytes::Bytes::from_static(p.as_bytes()))
                    .collect(),
            ))
            .unwrap()
    };
    let response = sender
        .send_request(post(&["hello ", "world!"]))
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = sender
        .send_request(post(&["hello", "world"]))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["body_bytes"], 10);
    let get = http::Request::get("http://www.example.com/old/x")
        .body(Pieces(Default::default()))
        .unwrap();
    let response = sender.send_request(get).await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        response.headers()["location"],
        "http://www.example.com/new/old/x"
    );
    proxy.stop().await.unwrap();
}
