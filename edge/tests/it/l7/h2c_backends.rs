//! HTTP/2 to backends (`protocol: h2c` pools): gRPC-style requests whose
//! answers end in trailers, one multiplexed connection per server, and
//! failures handled as for HTTP/1 pools; and trailers passed through on
//! HTTP/1.1 chunked responses.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::support::*;

fn h2c_spec(backend: &TestBackend, extra: &str) -> edge::l7::NodeSpec {
    spec(&format!(
        "routes: [{{ pool: grpc }}]
pools:
  grpc:
    protocol: h2c
    servers: {}
{extra}",
        servers(&[backend])
    ))
}

/// An HTTP/2 client connection to `addr` by prior knowledge.
async fn h2c_client(addr: std::net::SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// A gRPC-style call: the answer's one message and the trailers.
async fn call(mut sender: SendRequest<Full<Bytes>>, path: String) -> (Bytes, http::HeaderMap) {
    // One length-prefixed message, as gRPC frames them.
    let message = Bytes::from_static(b"\0\0\0\0\x02hi");
    let request = http::Request::post(format!("http://grpc.example.com{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(message))
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("response headers in time")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    let body = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("the body in time")
        .unwrap();
    let trailers = body.trailers().cloned().expect("trailers");
    let bytes = body.to_bytes();
    assert_eq!(bytes[0], 0, "an uncompressed message");
    let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 5 + len);
    (bytes.slice(5..), trailers)
}

/// What the demo backend saw: the JSON of its message.
fn seen(message: &[u8]) -> serde_json::Value {
    serde_json::from_slice(message).unwrap()
}

#[tokio::test]
async fn grpc_style_calls_reach_an_h2c_pool_over_http2_and_their_trailers_come_back() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(h2c_spec(&b, "")).await;
    let client = h2c_client(proxy.http).await;
    // Two calls at once, each held 300ms by the backend.
    let calls: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(call(
                client.clone(),
                format!("/demo.Echo/Say{i}?delay=300ms"),
            ))
        })
        .collect();
    // Both count as in flight on the server, as HTTP/1 requests do.
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 2 }).await;
    let mut peers = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        let (message, trailers) = call.await.unwrap();
        let seen = seen(&message);
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(seen["version"], "HTTP/2.0");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["path"], format!("/demo.Echo/Say{i}?delay=300ms"));
        assert_eq!(seen["body_bytes"], 7);
        assert_eq!(seen["headers"]["host"], "grpc.example.com");
        assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
        assert_eq!(seen["headers"]["x-forwarded-host"], "grpc.example.com");
        assert_eq!(seen["headers"]["x-request-id"].as_str().unwrap().len(), 32);
        peers.push(seen["peer"].clone());
    }
    // One backend connection carried both, and carries the next one.
    assert_eq!(peers[0], peers[1]);
    let (message, _) = call(client.clone(), "/demo.Echo/Again".into()).await;
    assert_eq!(seen(&message)["peer"], peers[0]);
    // A failed call's outcome is in its trailers, the HTTP status is 200.
    let (message, trailers) = call(client, "/status/503".into()).await;
    assert_eq!(&message[..], b"503 Service Unavailable\n");
    assert_eq!(trailers["grpc-status"], "2");
    assert_eq!(trailers["grpc-message"], "503");
    wait_until(|| async { proxy.handle.status().pools[0].servers[0].in_flight == 0 }).await;
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn an_h2c_pool_whose_backend_is_down_gets_502_and_its_server_ejected() {
    let b = TestBackend::start("b0").await;
    b.stop();
    let down = b.addr;
    wait_until(|| async move { TcpStream::connect(down).await.is_err() }).await;
    let proxy = Proxy::start(h2c_spec(
        &b,
        "    outlier: { failures: 1, ejection: 1h }\n    retries: { attempts: 0 }\n",
    ))
    .await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(proxy.handle.status().pools[0].servers[0].ejected);
    assert!(proxy.handle.metrics_text().contains(&format!(
        "edge_l7_server_ejections_total{{pool=\"grpc\",server=\"{down}\"}} 1"
    )));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_its_upload_to_an_h2c_pool_gets_408_and_the_server_stays_in() {
    let b = TestBackend::start("b0").await;
    let mut spec = h2c_spec(
        &b,
        "    outlier: { failures: 1, ejection: 1h }\n    fail_open: false\n",
    );
    spec.tier.timeouts.request_body = std::time::Duration::from_millis(300);
    let proxy = Proxy::start(spec).await;
    // HTTP/2 to the backend only resets the stream when the body stops:
    // the proxy must still know it was the client.
    let text = stalled_upload(proxy.http).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(!proxy.handle.status().pools[0].servers[0].ejected);
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_of_a_chunked_http1_response_reach_a_client_that_accepts_them() {
    // A backend answering with a chunked body and a trailer it announces.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
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
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n\
                          5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    servers: [{{ addr: \"{backend}\" }}]
    health: {{ kind: tcp }}
"
    )))
    .await;
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    let raw = exchange(
        &mut stream,
        &request("GET", "/", "www.example.com", &[("TE", "trailers")]),
    )
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\ntrailer: grpc-status\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n"),
        "{text}"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_grpc_health_check_of_the_demo_backend_follows_its_health_switch() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(h2c_spec(
        &b,
        "    health: { kind: grpc, service: demo.Echo, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }\n    fail_open: false\n",
    ))
    .await;
    proxy.wait_for(|| async { health_of(&proxy) == "up" }).await;
    // NOT_SERVING takes it out; SERVING brings it back.
    b.stats.set_healthy(false);
    proxy
        .wait_for(|| async { health_of(&proxy) == "down" })
        .await;
    b.stats.set_healthy(true);
    proxy.wait_for(|| async { health_of(&proxy) == "up" }).await;
    proxy.stop().await.unwrap();

    // A service it does not serve is NOT_FOUND: down.
    let proxy = Proxy::start(h2c_spec(
        &b,
        "    health: { kind: grpc, service: demo.Unknown, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }\n",
    ))
    .await;
    proxy
        .wait_for(|| async { health_of(&proxy) == "down" })
        .await;
    proxy.stop().await.unwrap();
}

/// The health of the proxy's only server.
fn health_of(proxy: &Proxy) -> String {
    proxy.handle.status().pools[0].servers[0].health.clone()
}
