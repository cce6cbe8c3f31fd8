//! TLS to backends (pools with `tls:`): real TLS servers on loopback with
//! certificates made by rcgen, served over HTTP/1.1 and HTTP/2 by ALPN;
//! what they saw (SNI, protocol, client certificate, resumed handshakes)
//! counted on their side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{HandshakeKind, RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::support::*;

/// A directory of certificates for one test, removed when dropped.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("edge-tls-backends-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// A new CA: its certificate at `STEM.pem`; returns it to sign with.
    fn ca(&self, stem: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Its own name: CAs that share one look like the same issuer.
        params.distinguished_name.push(DnType::CommonName, stem);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(self.dir.join(format!("{stem}.pem")), ca.pem()).unwrap();
        ca
    }

    /// A leaf for `names` (DNS names or IP addresses) signed by `ca`, at
    /// `STEM.pem` and `STEM.key` (mode 600).
    fn leaf(&self, stem: &str, names: &[&str], ca: &CertifiedIssuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        std::fs::write(self.dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        let key_path = self.dir.join(format!("{stem}.key"));
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a TLS backend saw.
#[derive(Default)]
struct Seen {
    handshakes: AtomicU64,
    resumed: AtomicU64,
    with_client_cert: AtomicU64,
}

/// A TLS backend on 127.0.0.1:0 answering every request with 200 and
/// `x-backend`, `x-sni`, `x-version` and `x-scheme` headers.
struct TlsBackend {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: CancellationToken,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How a [`TlsBackend`] serves.
struct Serving<'a> {
    /// Its certificate and key: `STEM.pem`, `STEM.key` in the PKI.
    stem: &'a str,
    /// Require a client certificate from this CA file.
    client_ca: Option<&'a str>,
    /// Close each connection after one response.
    one_request_per_connection: bool,
    /// Speak no ALPN, as servers that only know HTTP/1.1 may (else `h2`
    /// and `http/1.1`).
    no_alpn: bool,
}

impl<'a> Serving<'a> {
    fn cert(stem: &'a str) -> Self {
        Self {
            stem,
            client_ca: None,
            one_request_per_connection: false,
            no_alpn: false,
        }
    }
}

impl TlsBackend {
    async fn start(name: &'static str, pki: &Pki, serving: Serving<'_>) -> Self {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pki.path(&format!("{}.pem", serving.stem)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{}.key", serving.stem))).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match serving.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(pki.path(ca)).unwrap() {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if serving.no_alpn {
            config.alpn_protocols.clear();
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        let (counts, stopped) = (seen.clone(), stop.clone());
        let keep_alive = !serving.one_request_per_connection;
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap().0,
                };
                let acceptor = acceptor.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let connection = tls.get_ref().1;
                    counts.handshakes.fetch_add(1, Ordering::SeqCst);
                    if connection.handshake_kind() == Some(HandshakeKind::Resumed) {
                        counts.resumed.fetch_add(1, Ordering::SeqCst);
                    }
                    if connection.peer_certificates().is_some() {
                        counts.with_client_cert.fetch_add(1, Ordering::SeqCst);
                    }
                    let sni = connection.server_name().unwrap_or("-").to_owned();
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let response = http::Response::builder()
                                .header("x-backend", name)
                                .header("x-sni", sni.clone())
                                .header("x-version", format!("{:?}", request.version()))
                                .header("x-scheme", request.uri().scheme_str().unwrap_or("-"))
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .unwrap();
                            async move { Ok::<_, Infallible>(response) }
                        });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http1().keep_alive(keep_alive);
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self { addr, seen, stop }
    }
}

/// A node spec with one pool `web` over `backend`, its `lines` added to
/// the pool (indented four spaces), paths relative to the PKI.
fn tls_spec(pki: &Pki, backend: &TlsBackend, lines: &str) -> edge::l7::NodeSpec {
    let lines: String = lines.lines().map(|l| format!("    {l}\n")).collect();
    spec_at(
        &format!(
            "routes: [{{ pool: web }}]
pools:
  web:
    servers: [{{ addr: \"{}\" }}]
{lines}",
            backend.addr
        ),
        &pki.dir,
    )
}

/// A node in front of `backend`: [`tls_spec`], started.
async fn start_proxy(pki: &Pki, backend: &TlsBackend, lines: &str) -> Proxy {
    Proxy::start(tls_spec(pki, backend, lines)).await
}

fn tls_errors(proxy: &Proxy, server: SocketAddr, reason: &str) -> u64 {
    let metric = format!(
        "edge_l7_backend_tls_errors_total{{pool=\"web\",server=\"{server}\",reason=\"{reason}\"}} "
    );
    proxy
        .handle
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(&metric))
        .map_or(0, |v| v.parse().unwrap())
}

/// An HTTP/2 client connection to `addr` by prior knowledge; one GET.
async fn h2c_get(addr: SocketAddr) -> http::Response<hyper::body::Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("http://www.example.com/")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("a response in time")
        .unwrap()
}

#[tokio::test]
async fn a_tls_pool_is_verified_against_its_ca_over_http1_and_http2() {
    let pki = Pki::new("ok");
    let ca = pki.ca("ca");
    // No `sni:`: the certificate must name the server's IP address.
    pki.leaf("ip", &["127.0.0.1"], &ca);
    let b = TlsBackend::start("t0", &pki, Serving::cert("ip")).await;
    let proxy = start_proxy(&pki, &b, "tls: { ca: ca.pem }").await;
    // A plain HTTP/1.1 client: the fast path hands the TLS pool to hyper.
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.backend(), "t0");
    assert_eq!(reply.header("x-version"), Some("HTTP/1.1"));
    assert_eq!(reply.header("x-sni"), Some("-"), "no SNI for an IP");
    proxy.stop().await.unwrap();

    // HTTP/2 to the backend (ALPN h2), here from an h2c client.
    let proxy = start_proxy(&pki, &b, "protocol: h2\ntls: { ca: ca.pem }").await;
    let response = h2c_get(proxy.http).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-version"], "HTTP/2.0");
    assert_eq!(response.headers()["x-scheme"], "https");
    proxy.stop().await.unwrap();

    // A server that does not choose h2 is not sent HTTP/2.
    let h1 = TlsBackend::start(
        "t1",
        &pki,
        Serving {
            no_alpn: true,
            ..Serving::cert("ip")
        },
    )
    .await;
    let proxy = start_proxy(
        &pki,
        &h1,
        "protocol: h2\ntls: { ca: ca.pem }\nretries: { attempts: 0 }",
    )
    .await;
    assert_eq!(h2c_get(proxy.http).await.status(), 502);
    assert_eq!(tls_errors(&proxy, h1.addr, "no_h2"), 1);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_502_counted_against_the_server() {
    let pki = Pki::new("wrong-ca");
    pki.ca("ca");
    let theirs = pki.ca("other-ca");
    pki.leaf("ip", &["127.0.0.1"], &theirs);
    let b = TlsBackend::start("t0", &pki, Serving::cert("ip")).await;
    let proxy = start_proxy(
        &pki,
        &b,
        "tls: { ca: ca.pem }\noutlier: { failures: 2, ejection: 1h }\nretries: { attempts: 0 }",
    )
    .await;
    for _ in 0..2 {
        let reply = tokio::time::timeout(PATIENCE, get(proxy.http, "/", &[]))
            .await
            .expect("an answer, not a hang");
        assert_eq!(reply.status, 502, "{reply:?}");
    }
    assert_eq!(tls_errors(&proxy, b.addr, "unknown_issuer"), 2);
    // Two consecutive failures eject it, as connect failures do.
    assert!(proxy.handle.status().pools[0].servers[0].ejected);
    proxy.stop().await.unwrap();

    // The escape hatch accepts it.
    let proxy = start_proxy(&pki, &b, "tls: { insecure: true }").await;
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn the_sni_name_is_sent_and_a_certificate_for_another_name_is_refused() {
    let pki = Pki::new("sni");
    let ca = pki.ca("ca");
    pki.leaf("api", &["api.internal.test"], &ca);
    let b = TlsBackend::start("t0", &pki, Serving::cert("api")).await;
    let proxy = start_proxy(&pki, &b, "tls: { ca: ca.pem, sni: api.internal.test }").await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-sni"), Some("api.internal.test"));
    proxy.stop().await.unwrap();

    for lines in [
        "tls: { ca: ca.pem, sni: www.internal.test }",
        // No name: the certificate must carry 127.0.0.1, and does not.
        "tls: { ca: ca.pem }",
    ] {
        let proxy = start_proxy(&pki, &b, &format!("{lines}\nretries: {{ attempts: 0 }}")).await;
        let reply = get(proxy.http, "/", &[]).await;
        assert_eq!(reply.status, 502, "{lines}: {reply:?}");
        assert_eq!(tls_errors(&proxy, b.addr, "name_mismatch"), 1, "{lines}");
        proxy.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_backend_requiring_a_client_certificate_accepts_ours_and_refuses_without() {
    let pki = Pki::new("mtls");
    let ca = pki.ca("ca");
    pki.leaf("ip", &["127.0.0.1"], &ca);
    let clients = pki.ca("client-ca");
    pki.leaf("client", &["l7.internal.test"], &clients);
    let b = TlsBackend::start(
        "t0",
        &pki,
        Serving {
            client_ca: Some("client-ca.pem"),
            ..Serving::cert("ip")
        },
    )
    .await;
    let proxy = start_proxy(
        &pki,
        &b,
        "tls: { ca: ca.pem, cert: client.pem, key: client.key }",
    )
    .await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // The request's connection, and the health checks' (which present it
    // too).
    assert!(b.seen.with_client_cert.load(Ordering::SeqCst) >= 1);
    proxy.stop().await.unwrap();

    let proxy = start_proxy(&pki, &b, "tls: { ca: ca.pem }\nretries: { attempts: 0 }").await;
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.status, 502, "{reply:?}");
    proxy.stop().await.unwrap();

    // A key others may read is refused at load, naming the file and the fix.
    std::fs::set_permissions(
        pki.path("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let error = edge::l7::L7Node::new(tls_spec(
        &pki,
        &b,
        "tls: { ca: ca.pem, cert: client.pem, key: client.key }",
    ))
    .err()
    .expect("refused")
    .to_string();
    assert!(
        error.contains("pool web") && error.contains("client.key") && error.contains("chmod 600"),
        "{error}"
    );
}

#[tokio::test]
async fn the_second_connection_to_a_backend_resumes_the_session() {
    let pki = Pki::new("resume");
    let ca = pki.ca("ca");
    pki.leaf("ip", &["127.0.0.1"], &ca);
    let b = TlsBackend::start(
        "t0",
        &pki,
        Serving {
            one_request_per_connection: true,
            ..Serving::cert("ip")
        },
    )
    .await;
    // A TCP check: no handshakes but the requests'.
    let proxy = start_proxy(&pki, &b, "tls: { ca: ca.pem }\nhealth: { kind: tcp }").await;
    for _ in 0..3 {
        assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    }
    assert_eq!(b.seen.handshakes.load(Ordering::SeqCst), 3);
    assert_eq!(b.seen.resumed.load(Ordering::SeqCst), 2);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn health_checks_of_a_tls_pool_verify_and_mark_a_broken_server_down() {
    let pki = Pki::new("health");
    let ca = pki.ca("ca");
    let other = pki.ca("other-ca");
    pki.leaf("good", &["127.0.0.1"], &ca);
    pki.leaf("bad", &["127.0.0.1"], &other);
    let good = TlsBackend::start("good", &pki, Serving::cert("good")).await;
    let bad = TlsBackend::start("bad", &pki, Serving::cert("bad")).await;
    let spec = spec_at(
        &format!(
            "routes: [{{ pool: web }}]
pools:
  web:
    servers: [{{ addr: \"{}\" }}, {{ addr: \"{}\" }}]
    tls: {{ ca: ca.pem }}
    health: {{ interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }}
",
            good.addr, bad.addr
        ),
        &pki.dir,
    );
    let proxy = Proxy::start(spec).await;
    wait_until(|| async {
        let status = proxy.handle.status();
        let servers = &status.pools[0].servers;
        servers[1].health == "down" && good.seen.handshakes.load(Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(proxy.handle.status().pools[0].servers[0].health, "up");
    // Only the good server is used now.
    for _ in 0..4 {
        assert_eq!(get(proxy.http, "/", &[]).await.backend(), "good");
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_ca_file_that_does_not_parse_is_refused_at_load_and_reload_naming_it() {
    let pki = Pki::new("bad-ca");
    let ca = pki.ca("real-ca");
    pki.leaf("ip", &["127.0.0.1"], &ca);
    std::fs::write(pki.path("ca.pem"), "not a certificate\n").unwrap();
    let b = TlsBackend::start("t0", &pki, Serving::cert("ip")).await;
    let refused = |error: String| {
        assert!(
            error.contains("pool web") && error.contains(&pki.path("ca.pem").display().to_string()),
            "{error}"
        );
    };
    let error = edge::l7::L7Node::new(tls_spec(&pki, &b, "tls: { ca: ca.pem }"))
        .err()
        .expect("refused");
    refused(error.to_string());
    // A reload to it is refused and the node keeps serving.
    let proxy = start_proxy(&pki, &b, "tls: { ca: real-ca.pem }").await;
    let error = proxy
        .handle
        .reload(tls_spec(&pki, &b, "tls: { ca: ca.pem }"))
        .await
        .expect_err("refused");
    refused(error.to_string());
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_reload_keeps_a_pools_tls_connections_unless_its_tls_settings_change() {
    let pki = Pki::new("reload");
    let ca = pki.ca("ca");
    pki.leaf("ip", &["127.0.0.1"], &ca);
    let b = TlsBackend::start("t0", &pki, Serving::cert("ip")).await;
    let lines = "tls: { ca: ca.pem }\nhealth: { kind: tcp }";
    let proxy = start_proxy(&pki, &b, lines).await;
    let handshakes = || b.seen.handshakes.load(Ordering::SeqCst);
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    assert_eq!(handshakes(), 1);
    // Same settings: the open connection goes on serving.
    proxy
        .handle
        .reload(tls_spec(&pki, &b, lines))
        .await
        .unwrap();
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    assert_eq!(handshakes(), 1);
    // Other settings: a connection verified under the old ones is not used.
    let other = "tls: { ca: ca.pem, sni: www.internal.test }\nhealth: { kind: tcp }\nretries: { attempts: 0 }";
    proxy
        .handle
        .reload(tls_spec(&pki, &b, other))
        .await
        .unwrap();
    assert_eq!(get(proxy.http, "/", &[]).await.status, 502);
    assert_eq!(tls_errors(&proxy, b.addr, "name_mismatch"), 1);
    proxy.stop().await.unwrap();
}

/// The certificate the TLS server at `addr` presents to a client trusting
/// the CA at `ca`, or `None` when the handshake fails.
async fn presented(addr: SocketAddr, ca: &std::path::Path) -> Option<Vec<u8>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    Some(tls.get_ref().1.peer_certificates()?.first()?.to_vec())
}

#[tokio::test]
async fn the_demo_backend_serves_a_renewed_certificate_without_a_restart() {
    let pki = Pki::new("renew");
    let ca = pki.ca("ca");
    pki.leaf("web", &["127.0.0.1"], &ca);
    let plain = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let tls = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let text = topology_text(
        &format!(
            "routes: [{{ pool: web }}]\npools:\n  web: {{ servers: [{{ addr: \"{plain}\" }}] }}"
        ),
        "",
        "127.0.0.1:9100",
    ) + &format!(
        "    backends:\n      - name: web1\n        listen: \"{plain}\"\n        tls: {{ listen: \"{tls}\", cert: web.pem, key: web.key }}\n"
    );
    let config = pki.path("topology.yaml");
    std::fs::write(&config, text).unwrap();
    let shutdown = CancellationToken::new();
    let backend = tokio::spawn({
        let (config, shutdown) = (config.clone(), shutdown.clone());
        async move { edge::demo_backend::run_named(&config, "web1", shutdown).await }
    });
    let ca_pem = pki.path("ca.pem");
    wait_until(|| async { presented(tls, &ca_pem).await.is_some() }).await;
    let first = presented(tls, &ca_pem).await.unwrap();

    // Renewed in place (a new key and certificate, as certbot does).
    pki.leaf("web", &["127.0.0.1"], &ca);
    let renewed = std::fs::read(pki.path("web.pem")).unwrap();
    let renewed = CertificateDer::from_pem_slice(&renewed).unwrap().to_vec();
    assert_ne!(first, renewed);
    wait_until(|| async { presented(tls, &ca_pem).await.as_deref() == Some(renewed.as_slice()) })
        .await;
    shutdown.cancel();
    backend.await.unwrap().unwrap();
}
