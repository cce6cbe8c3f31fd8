//! The HTTP/1.1 fast path against hyper's path: the cases of
//! [`http1_cases`] through a node with the fast path on and one with it
//! off, compared by [`differential`].

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::differential::{Message, Pair, Scripted, Settings};
use super::http1_cases::{CUT, TIMEOUTS, corpus, route_answer, script};
use super::support::{PATIENCE, exchange, get, request, wait_until};

/// The backend of [`http1_cases`] ([`script`] by the request's path) and
/// the two nodes in front of it, with the cases' timeouts.
async fn scripted_pair() -> (Scripted, Pair) {
    let backend = Scripted::start(Arc::new(|request: &Message| {
        script(
            request.path(),
            request.start.starts_with("HEAD "),
            &request.body,
        )
    }))
    .await;
    let settings = Settings {
        tier: TIMEOUTS,
        ..Settings::default()
    };
    let pair = Pair::start(&backend, settings).await;
    (backend, pair)
}

#[tokio::test]
async fn the_fast_path_answers_as_hyper_does() {
    let (backend, pair) = scripted_pair().await;
    for (name, bytes) in corpus() {
        let view = pair
            .compare(&backend, &bytes, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every case gets an answer but those the backend breaks off.
        assert_eq!(
            view.client.is_empty(),
            CUT.contains(&name),
            "{name}: {view:?}"
        );
        if let Some(want) = route_answer(name) {
            assert!(view.client[0].contains(want), "{name}: {view:?}");
        }
        if name == "route: header rules" {
            let seen = view.backend.join("\n");
            assert!(
                seen.contains("x-env: prod")
                    && !seen.contains("x-env: dev")
                    && !seen.contains("x-secret"),
                "{seen}"
            );
        }
    }
    // The fast path really served them: it passes the backend's fields as
    // they were written, where hyper lowercases them.
    for (proxy, original_case) in [(&pair.fast, true), (&pair.hyper, false)] {
        let mut stream = TcpStream::connect(proxy.http).await.unwrap();
        let raw = exchange(&mut stream, &request("GET", "/cl", "www.example.com", &[])).await;
        let raw = String::from_utf8_lossy(&raw);
        assert_eq!(
            raw.contains("\r\nContent-Type: text/plain\r\n"),
            original_case,
            "{raw}"
        );
    }
    pair.stop().await;
}

/// Idle backend connections, on both paths: one the server closed while
/// it was idle is not used (the request goes on a fresh one and does not
/// fail), and one idle past `upstream_idle` is closed by the node's sweep
/// and not reused.
#[tokio::test]
async fn stale_or_expired_idle_backend_connections_are_not_reused() {
    let backend = Scripted::start(Arc::new(|request: &Message| {
        // `/then-close`: the server closes after its answer, unannounced.
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        (answer, request.path() == "/then-close")
    }))
    .await;
    let settings = Settings {
        tier: "timeouts: { upstream_idle: 300ms }\n",
        ..Settings::default()
    };
    let pair = Pair::start(&backend, settings).await;
    for proxy in [&pair.fast, &pair.hyper] {
        let opened = backend.opened();
        for _ in 0..3 {
            assert_eq!(get(proxy.http, "/then-close", &[]).await.status, 200);
        }
        assert_eq!(backend.opened() - opened, 3);
        // A connection kept alive, then idle past `upstream_idle`.
        let closed = backend.closed_by_node();
        assert_eq!(get(proxy.http, "/kept", &[]).await.status, 200);
        wait_until(|| async { backend.closed_by_node() > closed }).await;
        let opened = backend.opened();
        assert_eq!(get(proxy.http, "/kept", &[]).await.status, 200);
        assert_eq!(backend.opened() - opened, 1, "a new connection");
    }
    pair.stop().await;
}

/// A request whose body the node streams (its head and first piece reach
/// the backend before the client sends the rest) followed by a pipelined
/// request in the same write as the end of that body: both are answered,
/// in order, on either path, with the body whole and the second request
/// intact (the fast path once lost what followed a streamed body).
#[tokio::test]
async fn a_streamed_body_then_a_pipelined_request() {
    let (backend, pair) = scripted_pair().await;
    let host = "Host: www.example.com\r\n";
    let cases = [
        (
            format!("POST /echo HTTP/1.1\r\n{host}Content-Length: 10\r\n\r\nhello"),
            "world",
        ),
        (
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            ),
            "5\r\nworld\r\n0\r\n\r\n",
        ),
    ];
    let next = format!("GET /cl HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    for (first, rest) in &cases {
        for proxy in [&pair.fast, &pair.hyper] {
            let mut stream = TcpStream::connect(proxy.http).await.unwrap();
            stream.write_all(first.as_bytes()).await.unwrap();
            // The node sent the head and the first piece on: the rest of
            // the body is streamed.
            backend.received_part(b"hello").await;
            let rest = format!("{rest}{next}");
            stream.write_all(rest.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
                .await
                .expect("answered and closed in time")
                .unwrap();
            let sent = format!("{first}{rest}");
            let view = backend.view(&raw, sent.as_bytes());
            assert_eq!(view.backend.len(), 2, "{first}: {view:#?}");
            assert!(view.backend[0].ends_with("\n\nhelloworld"), "{view:#?}");
            assert!(view.backend[1].starts_with("GET /cl "), "{view:#?}");
            assert_eq!(view.client.len(), 2, "{first}: {view:#?}");
            assert!(
                view.client[0].starts_with("HTTP/1.1 201 Created\n"),
                "{view:#?}"
            );
            assert!(view.client[0].ends_with("\n\nhelloworld"), "{view:#?}");
            assert!(view.client[1].ends_with("\n\nhello"), "{view:#?}");
        }
    }
    pair.stop().await;
}

/// A client that ends its side in the middle of a request head is treated
/// alike on both paths: the connection closes without an answer.
#[tokio::test]
async fn a_head_cut_short_by_the_client_is_answered_alike() {
    let (_backend, pair) = scripted_pair().await;
    let mut answers = Vec::new();
    for proxy in [&pair.fast, &pair.hyper] {
        let mut stream = TcpStream::connect(proxy.http).await.unwrap();
        stream
            .write_all(b"GET /cl HTTP/1.1\r\nHost: www.exa")
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
            .await
            .expect("answered and closed in time")
            .unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        answers.push(raw.lines().next().unwrap_or_default().to_owned());
    }
    assert_eq!(answers, ["", ""]);
    pair.stop().await;
}
