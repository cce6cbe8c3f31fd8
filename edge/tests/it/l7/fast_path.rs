//! The HTTP/1.1 fast path against hyper's path: the cases of
//! [`http1_cases`] through a node with the fast path on and one with it
//! off, compared by [`differential`].

use std::sync::Arc;

use tokio::net::TcpStream;

use super::differential::{Message, Pair, Scripted, Settings};
use super::http1_cases::{CUT, TIMEOUTS, corpus, script};
use super::support::{PATIENCE, exchange, get, request, wait_until};

/// The backend of [`http1_cases`]: [`script`] by the request's path.
async fn backend() -> Scripted {
    Scripted::start(Arc::new(|request: &Message| {
        script(
            request.path(),
            request.start.starts_with("HEAD "),
            &request.body,
        )
    }))
    .await
}

#[tokio::test]
async fn the_fast_path_answers_as_hyper_does() {
    let backend = backend().await;
    let settings = Settings {
        tier: TIMEOUTS,
        ..Settings::default()
    };
    let pair = Pair::start(&backend, settings).await;
    for (name, bytes) in corpus() {
        let view = pair
            .compare(&backend, &bytes, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every case gets an answer but the one the backend breaks off.
        assert_eq!(view.client.is_empty(), name == CUT, "{name}: {view:?}");
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
