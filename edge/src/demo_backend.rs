//! The demo backend: a small HTTP server (HTTP/1.1, and HTTP/2 by prior
//! knowledge: h2c) naming itself and its region, so the whole topology runs
//! on one machine with nothing else installed, and end-to-end tests can see
//! what reached a backend.
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` (503 while [`Stats::set_healthy`] says so) |
//! | `GET /ws` with a WebSocket upgrade | an echo of every text/binary message |
//! | `GET /status/NNN` | status NNN with the usual body |
//! | anything else | 200 with JSON: the backend's name and region, the method, path, HTTP version, whether it came over TLS, the address the request came from, body size and the forwarding headers it saw (`Host`, `X-Forwarded-For/-Proto/-Host`, `X-Request-ID`, `Via`, `traceparent`, `tracestate`); `Accept: text/plain` gets one readable line instead |
//!
//! A request with `Content-Type: application/grpc…` is a gRPC call
//! ([`grpc`]): `grpc.health.v1.Health/Check` reports the health switch,
//! any other method gets the answer above as its one message, the outcome
//! in trailers.
//!
//! A `delay=250ms` query parameter (any path) waits that long before
//! answering. Every response carries `X-Backend: NAME`. SIGTERM (the
//! shutdown token) stops accepting and lets requests in flight finish for
//! up to [`SHUTDOWN_GRACE`].
//!
//! A backend of the topology may also serve the same over TLS on a second
//! address (its certificate loaded as the L7 tier loads its own, ALPN `h2`
//! and `http/1.1`), and answer UDP datagrams ([`udp`]).
//!
//! The server is hyper's, like the L7 tier's: a second adapter, kept to
//! this module.

pub mod grpc;
pub mod udp;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::ConfigError;
use crate::l7::shared::tls::CertStore;

/// How long requests in flight may take to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Largest WebSocket message echoed.
const MAX_WS_PAYLOAD: u64 = 1 << 20;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a backend counts, and its health switch.
#[derive(Debug)]
pub struct Stats {
    requests: AtomicU64,
    healthy: AtomicBool,
    delay_ms: AtomicU64,
}

impl Stats {
    /// Requests answered so far, health probes (`User-Agent: gtm-probe/…`)
    /// not included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Makes `/healthz` answer 200 (`true`) or 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Makes every answer but `/healthz` wait `delay` first: a slow
    /// server, for tests and drills.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

/// A demo backend's identity.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Its name (`regions.R.backends[].name`).
    pub name: String,
    /// Its region.
    pub region: String,
    stats: Arc<Stats>,
}

impl Backend {
    /// A backend called `name` in `region`.
    pub fn new(name: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: region.into(),
            stats: Arc::new(Stats {
                requests: AtomicU64::new(0),
                healthy: AtomicBool::new(true),
                delay_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Its counters and health switch.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves `listener` until `shutdown`, then drains.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        self.serve(listener, None, shutdown).await;
    }

    /// As [`Backend::run`], over TLS: each connection's handshake with
    /// `acceptor` first.
    pub async fn run_tls(
        self,
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) {
        self.serve(listener, Some(acceptor), shutdown).await;
    }

    async fn serve(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: CancellationToken,
    ) {
        let this = Arc::new(self);
        let tracker = TaskTracker::new();
        let force = CancellationToken::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let conn = Conn { peer, backend: this.clone(), shutdown: shutdown.clone(), force: force.clone() };
                        tracker.spawn(accepted_connection(stream, tls.clone(), conn));
                    }
                    Err(e) => {
                        warn!(backend = %this.name, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        drop(listener);
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            warn!(backend = %this.name, "shutdown grace over: closing {} connections", tracker.len());
            force.cancel();
            tracker.wait().await;
        }
    }
}

/// One accepted connection's context.
struct Conn {
    peer: SocketAddr,
    backend: Arc<Backend>,
    shutdown: CancellationToken,
    force: CancellationToken,
}

/// Serves `stream`, after a TLS handshake when `tls` is set.
async fn accepted_connection(stream: tokio::net::TcpStream, tls: Option<TlsAcceptor>, conn: Conn) {
    let Some(acceptor) = tls else {
        return connection(stream, false, conn).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(backend = %conn.backend.name, peer = %conn.peer, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                debug!(backend = %conn.backend.name, peer = %conn.peer, "TLS handshake timed out");
                return;
            }
        },
        () = conn.shutdown.cancelled() => return,
    };
    connection(stream, true, conn).await;
}

async fn connection<S>(stream: S, tls: bool, conn: Conn)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Conn {
        peer,
        backend,
        shutdown,
        force,
    } = conn;
    let service = service_fn(move |request| {
        let backend = backend.clone();
        async move { Ok::<_, Infallible>(serve(request, &backend, peer, tls).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    debug!("backend connection ended: {e}");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = force.cancelled() => return,
        }
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
    backend: &Backend,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(name) = HeaderValue::from_str(&backend.name) {
        response.headers_mut().insert("x-backend", name);
    }
    response
}

fn query_delay(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("delay="))
        .and_then(|text| topology::duration::parse_duration(text).ok())
        .map(|d| d.min(Duration::from_secs(60)))
}

/// A response body: whole, or a gRPC answer's messages and trailers.
type DemoBody = Either<Full<Bytes>, grpc::GrpcBody>;

async fn serve(
    request: Request<Incoming>,
    backend: &Backend,
    peer: SocketAddr,
    tls: bool,
) -> Response<DemoBody> {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc && request.uri().path() == grpc::HEALTH_CHECK {
        let healthy = backend.stats.healthy.load(Ordering::Relaxed);
        let (parts, _) = response(StatusCode::OK, "application/grpc", "", backend).into_parts();
        let response = grpc::health_check(request.into_body(), healthy, parts).await;
        return response.map(Either::Right);
    }
    let response = answer(request, backend, peer, tls).await;
    if grpc {
        grpc::framed(response).await.map(Either::Right)
    } else {
        response.map(Either::Left)
    }
}

async fn answer(
    mut request: Request<Incoming>,
    backend: &Backend,
    peer: SocketAddr,
    tls: bool,
) -> Response<Full<Bytes>> {
    let probe = request
        .headers()
        .get(header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"gtm-probe/"));
    if !probe {
        backend.stats.requests.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(delay) = query_delay(request.uri().query()) {
        tokio::time::sleep(delay).await;
    }
    let path = request.uri().path().to_owned();
    let slow = backend.stats.delay_ms.load(Ordering::Relaxed);
    if slow > 0 && path != "/healthz" {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    if path == "/healthz" {
        return if backend.stats.healthy.load(Ordering::Relaxed) {
            response(StatusCode::OK, "text/plain", "ok\n", backend)
        } else {
            response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "unhealthy\n",
                backend,
            )
        };
    }
    if path == "/ws" && request.headers().contains_key(header::UPGRADE) {
        return websocket(&mut request, backend);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        return response(status, "text/plain", format!("{status}\n"), backend);
    }
    let header = |name: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Over HTTP/2 the host is the URI's authority.
    let host = match request.uri().authority() {
        Some(authority) if !request.headers().contains_key(header::HOST) => {
            authority.as_str().to_owned()
        }
        _ => header("host"),
    };
    let seen = serde_json::json!({
        "host": host,
        "x-forwarded-for": header("x-forwarded-for"),
        "x-forwarded-proto": header("x-forwarded-proto"),
        "x-forwarded-host": header("x-forwarded-host"),
        "x-request-id": header("x-request-id"),
        "via": header("via"),
        "traceparent": header("traceparent"),
        "tracestate": header("tracestate"),
    });
    let text_wanted = header("accept").contains("text/plain");
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let forwarded_for = header("x-forwarded-for");
    let request_id = header("x-request-id");
    let body_bytes = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(e) => {
            debug!("request body failed: {e}");
            0
        }
    };
    if text_wanted {
        let line = format!(
            "{} ({}) answered {method} {path_and_query} for {} (request {})\n",
            backend.name,
            backend.region,
            if forwarded_for.is_empty() {
                "-"
            } else {
                &forwarded_for
            },
            if request_id.is_empty() {
                "-"
            } else {
                &request_id
            },
        );
        return response(StatusCode::OK, "text/plain; charset=utf-8", line, backend);
    }
    let body = serde_json::json!({
        "backend": backend.name,
        "region": backend.region,
        "method": method,
        "path": path_and_query,
        "version": version,
        "tls": tls,
        "peer": peer.to_string(),
        "body_bytes": body_bytes,
        "headers": seen,
    });
    response(
        StatusCode::OK,
        "application/json",
        format!("{body}\n"),
        backend,
    )
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn websocket_accept(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    base64(ctx.finish().as_ref())
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn websocket(request: &mut Request<Incoming>, backend: &Backend) -> Response<Full<Bytes>> {
    let Some(key) = request.headers().get("sec-websocket-key").cloned() else {
        return response(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "missing Sec-WebSocket-Key\n",
            backend,
        );
    };
    let on_upgrade = hyper::upgrade::on(request);
    let name = backend.name.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                if let Err(e) = echo(TokioIo::new(upgraded)).await {
                    debug!(backend = %name, "websocket ended: {e}");
                }
            }
            Err(e) => debug!(backend = %name, "websocket upgrade failed: {e}"),
        }
    });
    let mut response = response(
        StatusCode::SWITCHING_PROTOCOLS,
        "text/plain",
        Bytes::new(),
        backend,
    );
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&websocket_accept(key.as_bytes())) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

/// Echoes WebSocket frames: text and binary back as sent, pings answered,
/// a close answered with a close.
async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).await?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).await?;
            len = u64::from_be_bytes(b);
        }
        if len > MAX_WS_PAYLOAD {
            return Err(std::io::Error::other("websocket message too large"));
        }
        let mut mask = [0u8; 4];
        if masked {
            stream.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        let reply = match opcode {
            0x0..=0x2 => head[0],
            0x9 => 0x8A, // ping → pong
            0x8 => 0x88,
            _ => continue,
        };
        let mut frame = Vec::with_capacity(payload.len() + 10);
        frame.push(reply);
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        stream.write_all(&frame).await?;
        if opcode == 0x8 {
            stream.shutdown().await?;
            return Ok(());
        }
    }
}

/// Runs the demo backend `name` of the topology at `config` until
/// `shutdown`: HTTP, and HTTPS and the UDP echo when the topology gives
/// them an address.
pub async fn run_named(
    config: &Path,
    name: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topology = topology::load(config).map_err(|e| ConfigError(e.to_string()))?;
    let found = topology.regions.iter().find_map(|region| {
        region
            .backends
            .iter()
            .find(|b| b.name == name)
            .map(|b| (region.name.clone(), b.clone()))
    });
    let Some((region, spec)) = found else {
        let known: Vec<&str> = topology
            .regions
            .iter()
            .flat_map(|r| r.backends.iter().map(|b| b.name.as_str()))
            .collect();
        return Err(ConfigError(format!(
            "no backend named {name:?} in the topology; backends: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    let backend = Backend::new(name, region.as_str());
    let listener = bind(spec.listen).await?;
    let tls = match &spec.tls {
        Some(tls) => {
            let base = config.parent().unwrap_or(Path::new(""));
            let acceptor = acceptor(&tls.cert, base).map_err(|e| {
                ConfigError(format!(
                    "backend {name}'s `tls` in {}: {e}; fix `cert`/`key` (relative paths are relative to the topology file)",
                    config.display()
                ))
            })?;
            Some((bind(tls.listen).await?, acceptor))
        }
        None => None,
    };
    let udp = match spec.udp {
        Some(addr) => Some(UdpSocket::bind(addr).await.with_context(|| {
            format!("cannot listen on UDP {addr}; is another process using it?")
        })?),
        None => None,
    };
    let tasks = TaskTracker::new();
    tasks.spawn(backend.clone().run(listener, shutdown.clone()));
    if let Some((listener, (acceptor, store))) = tls {
        tasks.spawn(
            backend
                .clone()
                .run_tls(listener, acceptor, shutdown.clone()),
        );
        tasks.spawn(reload_certificates(
            store,
            name.to_owned(),
            shutdown.clone(),
        ));
    }
    if let Some(socket) = udp {
        let shutdown = shutdown.clone();
        let (name, region) = (name.to_owned(), region.clone());
        tasks.spawn(async move { udp::echo(socket, &name, &region, shutdown).await });
    }
    tasks.close();
    info!(
        backend = name,
        %region,
        addr = %spec.listen,
        tls = %spec.tls.as_ref().map_or("-".to_owned(), |t| t.listen.to_string()),
        udp = %spec.udp.map_or("-".to_owned(), |a| a.to_string()),
        "demo backend listening"
    );
    tasks.wait().await;
    Ok(())
}

/// A TLS acceptor serving `cert` (relative paths against `base`, the
/// topology file's folder), loaded as the L7 tier loads its own, and the
/// store it reads the certificate from.
fn acceptor(
    cert: &topology::tiers::l7::Cert,
    base: &Path,
) -> Result<(TlsAcceptor, Arc<CertStore>), crate::l7::shared::tls::TlsError> {
    let tls = topology::tiers::l7::Tls {
        certs: vec![topology::tiers::l7::Cert {
            cert: base.join(&cert.cert),
            key: base.join(&cert.key),
        }],
        min_version: topology::tiers::l7::TlsVersion::Tls12,
        session_tickets: true,
        ticket_keys: None,
    };
    let store = CertStore::new(&tls)?;
    let acceptor = TlsAcceptor::from(store.server_config(&tls, true)?);
    Ok((acceptor, store))
}

/// Serves a renewed certificate from the next handshake on, as the L7
/// tier does: the files are checked as often as the topology file.
async fn reload_certificates(store: Arc<CertStore>, name: String, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(lifecycle::watch::POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        store.reload_and_log(&name);
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another process using it?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_accept_key_matches_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn delays_are_read_from_the_query() {
        assert_eq!(
            query_delay(Some("a=1&delay=250ms")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(query_delay(Some("delay=5")), None);
        assert_eq!(query_delay(None), None);
    }
}
