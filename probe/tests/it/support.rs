//! Test targets: a tiny HTTP/1.1 server (plain or TLS) on 127.0.0.1:0 with
//! switchable canned behaviour, recording what it saw.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// What the server does with each connection.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Answer with this status and body.
    Respond {
        status: u16,
        body: String,
        extra_headers: String,
    },
    /// Accept, read the request, never answer.
    Hang,
    /// Accept and close at once without answering.
    Close,
}

impl Mode {
    pub fn status(status: u16) -> Self {
        Mode::Respond {
            status,
            body: String::new(),
            extra_headers: String::new(),
        }
    }

    pub fn body(status: u16, body: &str) -> Self {
        Mode::Respond {
            status,
            body: body.to_owned(),
            extra_headers: String::new(),
        }
    }
}

/// What the server saw.
#[derive(Debug)]
pub struct Seen {
    pub mode: Mutex<Mode>,
    pub accepted: AtomicUsize,
    pub open: AtomicUsize,
    pub max_open: AtomicUsize,
    /// Request heads, lowercased.
    pub requests: Mutex<Vec<String>>,
    /// Accept instants on tokio's (virtual) clock.
    pub accept_times: Mutex<Vec<Instant>>,
    /// SNI of each completed TLS handshake (`None`: no SNI sent).
    pub sni: Mutex<Vec<Option<String>>>,
    /// TLS handshakes that failed on the server side.
    pub tls_failures: AtomicUsize,
}

impl Seen {
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }

    pub fn last_request(&self) -> String {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// Gaps between consecutive accepts.
    pub fn gaps(&self) -> Vec<Duration> {
        let t = self.accept_times.lock().unwrap();
        t.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Server {
    /// A plain HTTP server.
    pub async fn http(mode: Mode) -> Server {
        Self::start(mode, None).await
    }

    /// An HTTPS server presenting `tls`.
    pub async fn https(mode: Mode, tls: TlsAcceptor) -> Server {
        Self::start(mode, Some(tls)).await
    }

    async fn start(mode: Mode, tls: Option<TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen {
            mode: Mutex::new(mode),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            max_open: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            accept_times: Mutex::new(Vec::new()),
            sni: Mutex::new(Vec::new()),
            tls_failures: AtomicUsize::new(0),
        });
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                s.accepted.fetch_add(1, Ordering::SeqCst);
                s.accept_times.lock().unwrap().push(Instant::now());
                let open = s.open.fetch_add(1, Ordering::SeqCst) + 1;
                s.max_open.fetch_max(open, Ordering::SeqCst);
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    handle(stream, tls, &s).await;
                    s.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server { addr, seen }
    }
}

async fn handle(stream: TcpStream, tls: Option<TlsAcceptor>, seen: &Seen) {
    match tls {
        None => serve(stream, seen).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls_stream) => {
                let sni = tls_stream.get_ref().1.server_name().map(str::to_owned);
                seen.sni.lock().unwrap().push(sni);
                serve(tls_stream, seen).await;
            }
            Err(_) => {
                seen.tls_failures.fetch_add(1, Ordering::SeqCst);
            }
        },
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, seen: &Seen) {
    let mode = seen.mode.lock().unwrap().clone();
    if matches!(mode, Mode::Close) {
        return;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    seen.requests
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).to_lowercase());
    if let Mode::Respond {
        status,
        body,
        extra_headers,
    } = mode
    {
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
    }
    // Hold the connection until the client closes it, so `open` counts
    // connections as the client keeps them.
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// A port on 127.0.0.1 with nothing listening.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A test PKI: a CA and a leaf for `probe.test` signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "probe test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(vec!["probe.test".to_owned()]).unwrap();
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

/// The next event, failing the test instead of hanging if none comes within
/// a (virtual) minute.
pub async fn next_event(
    rx: &mut tokio::sync::mpsc::Receiver<probe::ProbeEvent>,
) -> probe::ProbeEvent {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("no probe event within 60s")
        .expect("event channel closed")
}

/// An HTTP check of `addr` with a fixed 1s interval, 500ms timeout, no jitter.
pub fn steady_http(addr: SocketAddr) -> probe::ProbeSpec {
    let mut spec = probe::ProbeSpec::new(probe::ProbeKind::Http(probe::HttpCheck::http(addr)));
    spec.interval = Duration::from_secs(1);
    spec.timeout = Duration::from_millis(500);
    spec.jitter = 0.0;
    spec
}
