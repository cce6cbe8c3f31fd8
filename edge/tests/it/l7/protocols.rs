//! TLS with several certificates and resumption across nodes, HTTP/2,
//! h2c, WebSocket, and malformed requests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

struct Certs {
    dir: PathBuf,
    a: rcgen::Certificate,
    b: rcgen::Certificate,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// When the test certificates expire (the metrics show it).
const A_NOT_AFTER: (i32, u8, u8) = (2031, 1, 1);
const B_NOT_AFTER: (i32, u8, u8) = (2030, 6, 15);

fn certs(tag: &str) -> Certs {
    let dir = std::env::temp_dir().join(format!("edge-l7-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let make = |stem: &str, name: &str, (year, month, day)| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
        cert
    };
    let a = make("a", "a.example.com", A_NOT_AFTER);
    let b = make("b", "b.example.com", B_NOT_AFTER);
    Certs { dir, a, b }
}

fn tls_spec(certs: &Certs, backend: &TestBackend) -> edge::l7::NodeSpec {
    tls_spec_with(certs, backend, "")
}

/// [`tls_spec`] with `extra` lines added to its `tls:` block.
fn tls_spec_with(certs: &Certs, backend: &TestBackend, extra: &str) -> edge::l7::NodeSpec {
    let d = certs.dir.display();
    spec(&format!(
        "tls:
  certs:
    - {{ cert: {d}/a.pem, key: {d}/a.key }}
    - {{ cert: {d}/b.pem, key: {d}/b.key }}
{extra}routes: [{{ pool: web }}]
pools:
  web: {{ servers: {} }}
",
        servers(&[backend])
    ))
}

fn client_config(certs: &Certs, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    client_config_with(certs, alpn, rustls::DEFAULT_VERSIONS)
}

/// [`client_config`] offering only `versions`.
fn client_config_with(
    certs: &Certs,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.a.der().clone()).unwrap();
    roots.add(certs.b.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_serves_the_certificate_for_each_sni_name_and_resumes_sessions() {
    let certs = certs("sni");
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(tls_spec(&certs, &b)).await;
    let https = proxy.https.unwrap();
    let config = client_config(&certs, &[b"http/1.1"]);
    for (name, cert) in [("a.example.com", &certs.a), ("b.example.com", &certs.b)] {
        let mut tls = tls_connect(https, config.clone(), name).await;
        let presented: &CertificateDer<'_> = &tls.get_ref().1.peer_certificates().unwrap()[0];
        assert_eq!(presented, cert.der(), "{name}");
        let reply = parse(&exchange(&mut tls, &request("GET", "/", name, &[])).await).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["headers"]["x-forwarded-proto"], "https");
    }
    // The client's session cache lets the second connection resume.
    let tls = tls_connect(https, config.clone(), "a.example.com").await;
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn each_served_certificate_s_expiry_is_in_the_metrics() {
    let certs = certs("expiry");
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(tls_spec(&certs, &b)).await;
    // Unix times of A_NOT_AFTER and B_NOT_AFTER at midnight UTC.
    for line in [
        "edge_l7_certificate_expiry_timestamp_seconds{name=\"a.example.com\"} 1924992000",
        "edge_l7_certificate_expiry_timestamp_seconds{name=\"b.example.com\"} 1907712000",
    ] {
        proxy
            .wait_for(|| async { get(proxy.admin, "/metrics", &[]).await.body.contains(line) })
            .await;
    }
    proxy.stop().await.unwrap();
}

/// Two nodes of one region (as the L4 tier spreads a returning client):
/// a session made on the first resumes on the second, over TLS 1.3 and
/// 1.2, only when both seal tickets with the region's shared key file.
#[tokio::test]
async fn a_session_made_on_one_node_resumes_on_another_with_shared_ticket_keys() {
    use std::os::unix::fs::PermissionsExt;
    let certs = certs("shared-tickets");
    let keys = certs.dir.join("tickets.keys");
    // TEST-ONLY keys (48 bytes each, as `openssl rand -base64 48` makes).
    std::fs::write(&keys, format!("{}\n{}\n", "A".repeat(64), "B".repeat(64))).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let b = TestBackend::start("b0").await;
    let shared = format!("  ticket_keys: {}\n", keys.display());
    for (extra, expected, version) in [
        (
            shared.as_str(),
            rustls::HandshakeKind::Resumed,
            &rustls::version::TLS13,
        ),
        (
            shared.as_str(),
            rustls::HandshakeKind::Resumed,
            &rustls::version::TLS12,
        ),
        ("", rustls::HandshakeKind::Full, &rustls::version::TLS13),
        ("", rustls::HandshakeKind::Full, &rustls::version::TLS12),
    ] {
        let node_a = Proxy::start(tls_spec_with(&certs, &b, extra)).await;
        let node_b = Proxy::start(tls_spec_with(&certs, &b, extra)).await;
        let config = client_config_with(&certs, &[b"http/1.1"], &[version]);
        // A request and its answer: TLS 1.3 tickets arrive after the
        // handshake, so the client has them once it has read a reply.
        let mut tls = tls_connect(node_a.https.unwrap(), config.clone(), "a.example.com").await;
        let reply = exchange(&mut tls, &request("GET", "/", "a.example.com", &[])).await;
        assert_eq!(parse(&reply).unwrap().status, 200);
        let mut tls = tls_connect(node_b.https.unwrap(), config.clone(), "a.example.com").await;
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(expected),
            "{version:?}, ticket_keys: {extra:?}"
        );
        let reply = exchange(&mut tls, &request("GET", "/", "a.example.com", &[])).await;
        assert_eq!(parse(&reply).unwrap().status, 200);
        node_a.stop().await.unwrap();
        node_b.stop().await.unwrap();
    }
}

#[tokio::test]
async fn http2_over_tls_and_h2c_by_prior_knowledge() {
    let certs = certs("h2");
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(tls_spec(&certs, &b)).await;
    let tls = tls_connect(
        proxy.https.unwrap(),
        client_config(&certs, &[b"h2"]),
        "a.example.com",
    )
    .await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let plain = TcpStream::connect(proxy.http).await.unwrap();
    for (io, scheme) in [
        (Box::new(tls) as Box<dyn IoStream>, "https"),
        (Box::new(plain) as Box<dyn IoStream>, "http"),
    ] {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .unwrap();
        tokio::spawn(connection);
        // Several streams on one connection.
        for i in 0..3 {
            let request = http::Request::get(format!("{scheme}://a.example.com/h2/{i}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), http::Version::HTTP_2);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["path"], format!("/h2/{i}"));
            assert_eq!(json["headers"]["host"], "a.example.com");
            assert_eq!(json["headers"]["x-forwarded-proto"], scheme);
        }
    }
    proxy.stop().await.unwrap();
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

#[tokio::test]
async fn websockets_are_proxied_both_ways() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b])
    )))
    .await;
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: www.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for message in ["hello", "second message"] {
        // A masked text frame.
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | message.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(message.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        stream.write_all(&frame).await.unwrap();
        let mut reply = vec![0u8; 2 + message.len()];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&reply[..2], &[0x81, message.len() as u8]);
        assert_eq!(&reply[2..], message.as_bytes());
    }
    // Open tunnels hold the drain until they close (or its deadline).
    drop(stream);
    proxy.stop().await.unwrap();
}

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, bytes).await
}

#[tokio::test]
async fn malformed_requests_get_the_right_error_and_never_reach_a_backend() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "timeouts: {{ request_headers: 300ms }}
limits: {{ max_header_bytes: 8192, max_header_count: 20 }}
routes: [{{ pool: web }}]
pools:
  web: {{ servers: {} }}
",
        servers(&[&b])
    )))
    .await;
    let big = "x".repeat(9000);
    let many: String = (0..30).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "CL then TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "TE then CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        ("two Content-Lengths", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n".to_vec(), 400),
        ("oversized header", format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").into_bytes(), 431),
        ("too many headers", format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").into_bytes(), 431),
        ("no Host", b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_vec(), 400),
    ];
    for (what, bytes, status) in cases {
        let before = b.stats.requests();
        let reply = raw(proxy.http, &bytes).await;
        let text = String::from_utf8_lossy(&reply).to_string();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {text}"
        );
        assert_eq!(b.stats.requests(), before, "{what} reached the backend");
    }
    // A smuggling attempt later on a keep-alive connection: the first
    // request is served, the second refused and the connection closed.
    let before = b.stats.requests();
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut first = Vec::new();
    while !String::from_utf8_lossy(&first).contains("\"headers\"") || !first.ends_with(b"\n") {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early");
        first.extend_from_slice(&chunk[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200"));
    let second = exchange(
        &mut stream,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(
        second.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&second)
    );
    assert_eq!(b.stats.requests(), before + 1);
    // Slow headers: the connection is closed when the timeout passes.
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!String::from_utf8_lossy(&buf).contains("200"));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn idle_client_connections_are_closed() {
    let b = TestBackend::start("b0").await;
    let proxy = Proxy::start(spec(&format!(
        "timeouts: {{ idle: 300ms }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
        servers(&[&b])
    )))
    .await;
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    // One request on a kept-alive connection, then silence.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    proxy.stop().await.unwrap();
}
