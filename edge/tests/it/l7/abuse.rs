//! Hostile clients: a request body that stops arriving, and the HTTP/2
//! floods that took down proxies in 2023–2024 (rapid reset, CVE-2023-44487;
//! CONTINUATION flood, CVE-2024-27316 and friends), spoken frame by frame
//! over h2c so nothing in a client library smooths them over.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// `GET http://a/` in HPACK: static-table :method GET, :scheme http,
/// :path /, and :authority `a` as a literal that is not indexed.
const GET_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x01, 0x01, b'a'];

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An h2c connection by prior knowledge, past the preface and SETTINGS.
async fn h2c(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    frame(&mut hello, SETTINGS, 0, 0, &[]);
    stream.write_all(&hello).await.unwrap();
    stream
}

/// Writes `bytes` in pieces until done or the server stops reading;
/// returns how many bytes went out.
async fn write_until_refused(stream: &mut TcpStream, bytes: &[u8]) -> usize {
    let mut sent = 0;
    for piece in bytes.chunks(16 * 1024) {
        match tokio::time::timeout(PATIENCE, stream.write_all(piece)).await {
            Ok(Ok(())) => sent += piece.len(),
            Ok(Err(_)) => break,
            Err(_) => panic!("the server neither read nor closed for {PATIENCE:?}"),
        }
    }
    sent
}

/// Reads frames until the server closes the connection (bounded); returns
/// the GOAWAY error code if one came.
async fn goaway_then_close(stream: &mut TcpStream) -> Option<u32> {
    let mut bytes = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut chunk = [0u8; 16 * 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("the server kept the connection open for {PATIENCE:?}"),
        }
    }
    let mut at = 0;
    let mut code = None;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let payload = &bytes[at + 9..(at + 9 + len).min(bytes.len())];
        if bytes[at + 3] == GOAWAY && payload.len() >= 8 {
            code = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        at += 9 + len;
    }
    code
}

async fn proxy_in_front_of(backend: &TestBackend) -> Proxy {
    Proxy::start(spec(&format!(
        "timeouts: {{ request_body: 300ms }}
limits: {{ max_header_bytes: 8192 }}
routes: [{{ pool: web }}]
pools:
  web: {{ servers: {}, fail_open: false, outlier: {{ failures: 1, ejection: 30s }} }}
",
        servers(&[backend])
    )))
    .await
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_gets_408_and_does_not_blame_the_backend() {
    let b = TestBackend::start("b0").await;
    let proxy = proxy_in_front_of(&b).await;
    let started = Instant::now();
    let text = stalled_upload(proxy.http).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off only after {:?}",
        started.elapsed()
    );
    // One upstream failure would eject the only server (failures: 1,
    // fail_open: false) — the client's pause must not count as one.
    let after = get(proxy.http, "/", &[]).await;
    assert_eq!(after.status, 200, "{after:?}");
    // A body that keeps coming, in pieces closer than the timeout, is fine.
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    for piece in [&b"ab"[..], b"cd", b"ef"] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(piece).await.unwrap();
    }
    let reply = exchange(&mut stream, b"").await;
    let reply = parse(&reply).expect("a response");
    assert_eq!(reply.status, 200, "{reply:?}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn an_http2_rapid_reset_flood_is_cut_off_and_spares_the_backend() {
    let b = TestBackend::start("b0").await;
    let proxy = proxy_in_front_of(&b).await;
    let mut stream = h2c(proxy.http).await;
    const STREAMS: u32 = 20_000;
    let mut flood = Vec::new();
    for n in 0..STREAMS {
        let id = 2 * n + 1;
        frame(&mut flood, HEADERS, END_STREAM | END_HEADERS, id, GET_BLOCK);
        frame(&mut flood, RST_STREAM, 0, id, &8u32.to_be_bytes()); // CANCEL
    }
    let sent = write_until_refused(&mut stream, &flood).await;
    let code = goaway_then_close(&mut stream).await;
    assert_eq!(
        code,
        Some(0xb),
        "expected GOAWAY ENHANCE_YOUR_CALM after {sent} of {} bytes",
        flood.len()
    );
    let reached = b.stats.requests();
    assert!(
        reached < u64::from(STREAMS) / 20,
        "{reached} of {STREAMS} reset streams reached the backend"
    );
    // Everyone else is still served.
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn an_http2_continuation_flood_is_cut_off_at_the_header_limit() {
    let b = TestBackend::start("b0").await;
    let proxy = proxy_in_front_of(&b).await;
    let mut stream = h2c(proxy.http).await;
    // One header block that never ends: HEADERS without END_HEADERS, then
    // CONTINUATION frames of 100-byte literal fields, 16 MiB in all.
    let mut fields = Vec::new();
    while fields.len() < 16_000 {
        fields.extend_from_slice(&[0x00, 0x03, b'x', b'-', b'a', 100]);
        fields.extend_from_slice(&[b'v'; 100]);
    }
    let mut flood = Vec::new();
    frame(&mut flood, HEADERS, END_STREAM, 1, GET_BLOCK);
    while flood.len() < 16 << 20 {
        frame(&mut flood, CONTINUATION, 0, 1, &fields);
    }
    let sent = write_until_refused(&mut stream, &flood).await;
    let code = goaway_then_close(&mut stream).await;
    assert!(
        sent < flood.len(),
        "the server read all {sent} bytes of one header block (limit 8192)"
    );
    assert!(code.is_some(), "closed without GOAWAY after {sent} bytes");
    assert_eq!(
        b.stats.requests(),
        0,
        "the endless request reached the backend"
    );
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}
