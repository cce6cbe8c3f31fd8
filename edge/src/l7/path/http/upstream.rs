//! The backend side of the proxy: keep-alive HTTP/1.1 connections to the
//! backend servers, pooled per server address, each driven inside the task
//! of the client connection that is using it; and for HTTP/2 pools, one
//! multiplexed HTTP/2 connection per server. A TLS pool's connections
//! start with its handshake ([`PoolTls`]) and are pooled apart from plain
//! ones and from other TLS configurations.
//!
//! A hyper client connection is a future that must be polled for its
//! requests to progress. Spawning a task per backend connection (what
//! hyper-util's pooled client does) costs a cross-task wake-up for every
//! request, response head and body chunk. Here the request future polls the
//! connection itself ([`Upstream::send`]) and so does the response body
//! until its last byte ([`UpstreamBody`]), which then hands the connection
//! back to the pool: a request and its response stay in one task.
//!
//! Idle connections are not polled: one is checked for a close by the
//! backend when it is taken from the pool, and a background sweep closes
//! those idle longer than the `upstream_idle` timeout.
//!
//! An HTTP/2 connection carries every request to its server at once, so
//! it cannot live in one client connection's task: it runs in a task of
//! its own (hyper spawns one more per request body). The first request to
//! a server connects while the others wait for it; a connection that
//! closes or fails (a GOAWAY) is replaced by the next request, and a
//! request it refused unsent is sent once more on the new one.
//!
//! A response body that pauses longer than the `response` timeout between
//! two pieces is cut off ([`PacedBody`]): its HTTP/1.1 connection is
//! closed, its HTTP/2 stream reset.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper::client::conn::http2;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use topology::tiers::l7::{BackendProtocol, Timeouts};
use tracing::debug;

use crate::l7::path::http::paced_body::{BackendBodyError, Capped, ClientBodyError, PacedBody};
use crate::l7::shared::backend_tls::{PoolTls, TlsFailure};
use crate::l7::shared::connect::connect_tcp;
use crate::l7::shared::idle::Idle;
use crate::l7::shared::metrics::Held;

/// Body of requests sent upstream: the client's, or empty (replayable).
pub(crate) type UpBody = Either<PacedBody<Capped<Incoming>, ClientBodyError>, Empty<Bytes>>;

/// HTTP/2 PINGs on a backend connection with requests in flight, and how
/// long the answer may take before the connection is given up.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection to the server (retryable: nothing was sent).
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed: the server's certificate did not verify,
    /// it refused ours, … (retryable: nothing was sent).
    #[error("TLS handshake: {0}")]
    Tls(#[source] TlsFailure),
    /// The connection failed after the request was handed to it.
    #[error(transparent)]
    Failed(#[from] hyper::Error),
}

/// The driver of one connection: hyper's connection future (with upgrade
/// support, which makes it unnameable, hence the box).
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One keep-alive connection to a backend server.
struct Link {
    sender: SendRequest<UpBody>,
    driver: Driver,
    /// The driver has finished: the connection is closed or upgraded.
    done: bool,
    /// Counts it in its server's connection gauge while it lives (an
    /// upgraded connection's tunnel is no longer counted).
    _held: Held,
}

impl Link {
    /// Lets the connection make progress (read, write, notice a close);
    /// registers `cx` for its readiness.
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if self.done {
            return;
        }
        if let Poll::Ready(result) = self.driver.as_mut().poll(cx) {
            self.done = true;
            if let Err(error) = result {
                debug!("backend connection closed: {error}");
            }
        }
    }

    /// Drives the connection until it finishes: after a `101 Switching
    /// Protocols`, this hands its socket over to the upgrade.
    async fn finish(mut self) {
        poll_fn(|cx| {
            self.poll_driver(cx);
            if self.done {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether it can take another request now.
    fn reusable(&mut self) -> bool {
        // Without a waker: only what the socket already says counts.
        self.poll_driver(&mut Context::from_waker(Waker::noop()));
        !self.done && self.sender.is_ready()
    }
}

/// One h2c server's HTTP/2 connection, `None` until the first request.
/// The lock is held while connecting, so concurrent requests share it.
#[derive(Default)]
struct Multiplexed(tokio::sync::Mutex<Option<H2Link>>);

/// An HTTP/2 connection (its task runs it) and its number, which tells a
/// replaced connection from its successor.
struct H2Link {
    sender: http2::SendRequest<UpBody>,
    generation: u64,
}

/// What connections are pooled by: the server's address and the number of
/// the TLS configuration they were made with (0: plain TCP).
type Key = (SocketAddr, u64);

/// The pool key of connections to `addr` made with `tls`.
fn key(addr: SocketAddr, tls: Option<&PoolTls>) -> Key {
    (addr, tls.map_or(0, PoolTls::id))
}

/// The backend client: connection pools by server address (and TLS
/// configuration).
pub struct Upstream {
    idle: Idle<Link, Key>,
    /// The HTTP/2 connection of each HTTP/2 server used so far.
    multiplexed: Mutex<HashMap<Key, Arc<Multiplexed>>>,
    builder: Builder,
    h2_builder: http2::Builder<TokioExecutor>,
    connect: Duration,
    idle_timeout: Duration,
    /// The longest pause in a response body.
    body_pause: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("connect", &self.connect)
            .field("idle_timeout", &self.idle_timeout)
            .field("body_pause", &self.body_pause)
            .finish()
    }
}

impl Upstream {
    /// A client with `timeouts`' connect, pooled-idle and response (the
    /// longest pause in a response body) timeouts. Inside a
    /// tokio runtime, it starts the sweep of idle connections, which ends
    /// when the client is dropped.
    pub fn new(timeouts: &Timeouts) -> Arc<Self> {
        let mut h2_builder = http2::Builder::new(TokioExecutor::new());
        h2_builder
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT);
        let upstream = Arc::new(Self {
            idle: Idle::default(),
            multiplexed: Mutex::new(HashMap::new()),
            builder: Builder::new(),
            h2_builder,
            connect: timeouts.connect,
            idle_timeout: timeouts.upstream_idle,
            body_pause: timeouts.response,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&upstream)));
        }
        upstream
    }

    /// Whether this client was built for `timeouts` (else a reload builds a
    /// new one).
    pub fn fits(&self, timeouts: &Timeouts) -> bool {
        self.connect == timeouts.connect
            && self.idle_timeout == timeouts.upstream_idle
            && self.body_pause == timeouts.response
    }

    /// Forgets the connections made with TLS configurations other than
    /// `live` (by [`PoolTls::id`]; plain ones stay): after a reload changed
    /// a pool's TLS settings, its old HTTP/2 connections close once their
    /// requests in flight are done, and its idle ones at once.
    pub fn retain_tls(&self, live: &[u64]) {
        let keep = |(_, id): &Key| *id == 0 || live.contains(id);
        self.idle.retain(keep);
        self.multiplexed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| keep(key));
    }

    /// Sends `request` to the server at `addr` in `protocol`, over TLS when
    /// `tls` is given: over HTTP/1.1 (its URI in origin form, its `Host`
    /// set) on a pooled connection or a new one, or over HTTP/2 (its URI
    /// absolute, for `:authority`) on the server's multiplexed connection.
    /// A connection it opens counts in `connections` while open.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        connections: &Gauge,
        protocol: BackendProtocol,
        tls: Option<&PoolTls>,
        request: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        match protocol {
            BackendProtocol::Http1 => self.send_http1(addr, connections, tls, request).await,
            BackendProtocol::Http2 => self.send_http2(addr, connections, tls, request).await,
        }
    }

    async fn send_http1(
        self: &Arc<Self>,
        addr: SocketAddr,
        connections: &Gauge,
        tls: Option<&PoolTls>,
        mut request: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let key = key(addr, tls);
        while let Some(mut link) = self.checkout(key) {
            let sent = link.sender.try_send_request(request);
            match drive(&mut link, sent).await {
                Ok(response) => return Ok(self.body(response, Some(link), key)),
                // The backend closed it before the request went out:
                // nothing was sent, try the next connection.
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut link = self.connect(addr, connections, tls).await?;
        let sent = link.sender.try_send_request(request);
        match drive(&mut link, sent).await {
            Ok(response) => Ok(self.body(response, Some(link), key)),
            Err(error) => Err(error.into_error().into()),
        }
    }

    async fn send_http2(
        self: &Arc<Self>,
        addr: SocketAddr,
        connections: &Gauge,
        tls: Option<&PoolTls>,
        mut request: Request<UpBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let key = key(addr, tls);
        let server = {
            let mut all = self
                .multiplexed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            all.entry(key).or_default().clone()
        };
        let mut refused = None;
        loop {
            let (mut sender, generation) = self
                .h2_sender(&server, addr, connections, tls, refused)
                .await?;
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.body(response, None, key)),
                // The connection closed before the request went out:
                // nothing was sent, try once more on a new connection.
                Err(mut error) => match error.take_message() {
                    Some(unsent) if refused.is_none() => {
                        request = unsent;
                        refused = Some(generation);
                    }
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }

    /// The open HTTP/2 connection to `addr`, or a new one in place of the
    /// closed one or the one numbered `refused` (which refused a request).
    async fn h2_sender(
        &self,
        server: &Multiplexed,
        addr: SocketAddr,
        connections: &Gauge,
        tls: Option<&PoolTls>,
        refused: Option<u64>,
    ) -> Result<(http2::SendRequest<UpBody>, u64), UpstreamError> {
        let mut current = server.0.lock().await;
        if let Some(link) = &*current
            && !link.sender.is_closed()
            && refused != Some(link.generation)
        {
            return Ok((link.sender.clone(), link.generation));
        }
        let stream = self.connect_tcp(addr).await?;
        let sender = match tls {
            None => self.h2_handshake(stream, addr, connections).await?,
            Some(tls) => {
                let stream = self.tls_handshake(tls, stream, addr).await?;
                self.h2_handshake(stream, addr, connections).await?
            }
        };
        let generation = current.as_ref().map_or(0, |link| link.generation + 1);
        *current = Some(H2Link {
            sender: sender.clone(),
            generation,
        });
        Ok((sender, generation))
    }

    /// Starts an HTTP/2 connection to `addr` over `io`, run by a task of
    /// its own.
    async fn h2_handshake<T>(
        &self,
        io: T,
        addr: SocketAddr,
        connections: &Gauge,
    ) -> Result<http2::SendRequest<UpBody>, UpstreamError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = self.h2_builder.handshake(TokioIo::new(io)).await?;
        let held = Held::new(connections);
        tokio::spawn(async move {
            let _held = held;
            if let Err(error) = connection.await {
                debug!(%addr, "HTTP/2 backend connection closed: {error}");
            }
        });
        Ok(sender)
    }

    /// `tls`'s handshake over `stream` to `addr`, bounded by the connect
    /// timeout.
    async fn tls_handshake(
        &self,
        tls: &PoolTls,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, UpstreamError> {
        tls.handshake(stream, addr, self.connect)
            .await
            .map_err(UpstreamError::Tls)
    }

    /// `response`'s body, over `link` for HTTP/1.1 (`None` for HTTP/2).
    fn body(
        self: &Arc<Self>,
        mut response: Response<Incoming>,
        link: Option<Link>,
        server: Key,
    ) -> Response<UpstreamBody> {
        let on_upgrade = link.is_some().then(|| hyper::upgrade::on(&mut response));
        response.map(|inner| UpstreamBody {
            inner: PacedBody::new(inner, self.body_pause),
            link,
            upstream: self.clone(),
            server,
            finished: false,
            on_upgrade,
        })
    }

    /// Takes back a connection whose response has been read to its end
    /// (`complete`); anything else is closed.
    fn release(&self, key: Key, mut link: Link, complete: bool) {
        if !complete || !link.reusable() {
            return;
        }
        self.idle.put(key, link);
    }

    /// The most recently used idle connection under `key` that is still
    /// open.
    fn checkout(&self, key: Key) -> Option<Link> {
        self.idle.take(key, self.idle_timeout, Link::reusable)
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        connections: &Gauge,
        tls: Option<&PoolTls>,
    ) -> Result<Link, UpstreamError> {
        let stream = self.connect_tcp(addr).await?;
        let held = Held::new(connections);
        match tls {
            None => self.http1_handshake(stream, held).await,
            Some(tls) => {
                let stream = self.tls_handshake(tls, stream, addr).await?;
                self.http1_handshake(stream, held).await
            }
        }
    }

    /// Starts an HTTP/1.1 connection over `io`, counted by `held` while open.
    async fn http1_handshake<T>(&self, io: T, held: Held) -> Result<Link, UpstreamError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = self.builder.handshake(TokioIo::new(io)).await?;
        Ok(Link {
            sender,
            driver: Box::pin(connection.with_upgrades()),
            done: false,
            _held: held,
        })
    }

    async fn connect_tcp(&self, addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
        connect_tcp(addr, self.connect)
            .await
            .map_err(UpstreamError::Connect)
    }
}

/// A backend's response body. It drives its connection while it streams,
/// and hands the connection back to the pool once read to its end (when
/// dropped before that, or cut off by a stall, the connection is closed).
pub struct UpstreamBody {
    inner: PacedBody<Incoming, BackendBodyError>,
    /// The HTTP/1.1 connection; `None` once taken by an upgrade, and for
    /// HTTP/2.
    link: Option<Link>,
    upstream: Arc<Upstream>,
    /// Where its connection goes back to.
    server: Key,
    /// The body has ended (a chunked one never says so by its length).
    finished: bool,
    /// Taken by [`UpstreamBody::upgrade`].
    on_upgrade: Option<OnUpgrade>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("server", &self.server)
            .field("finished", &self.finished)
            .finish()
    }
}

impl UpstreamBody {
    /// After `101 Switching Protocols`: the backend's side of the tunnel,
    /// once its connection has handed the socket over; `None` if the
    /// upgrade failed (logged).
    pub async fn upgrade(mut self) -> Option<Upgraded> {
        let on_upgrade = self.on_upgrade.take()?;
        let upgraded = match self.link.take() {
            Some(link) => tokio::join!(on_upgrade, link.finish()).0,
            None => on_upgrade.await,
        };
        upgraded
            .map_err(|error| debug!("the backend's side of an upgrade failed: {error}"))
            .ok()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BackendBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BackendBodyError>>> {
        let this = &mut *self;
        if let Some(link) = &mut this.link {
            link.poll_driver(cx);
        }
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        this.finished |= frame.is_none();
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let complete = self.finished || self.inner.is_end_stream();
            self.upstream.release(self.server, link, complete);
        }
    }
}

/// Awaits `response` while driving `link`, whose progress it waits on.
async fn drive<F, T>(link: &mut Link, response: F) -> T
where
    F: Future<Output = T>,
{
    let mut response = std::pin::pin!(response);
    poll_fn(|cx| {
        link.poll_driver(cx);
        response.as_mut().poll(cx)
    })
    .await
}

/// Closes idle connections past their timeout, every `idle_timeout` (at
/// least a second), until the client is dropped.
async fn sweep(upstream: Weak<Upstream>) {
    let period = match upstream.upgrade() {
        Some(upstream) => upstream.idle_timeout.max(Duration::from_secs(1)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = tick.tick().await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        upstream.idle.sweep(now, upstream.idle_timeout);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A backend answering every request on a connection with `reply`,
    /// closing the connection after `per_connection` replies; counts the
    /// connections it accepts.
    async fn backend(
        reply: &'static [u8],
        per_connection: usize,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0; 1024];
                    for _ in 0..per_connection {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        stream.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get() -> Request<UpBody> {
        Request::builder()
            .uri("/")
            .header("host", "example.com")
            .body(Either::Right(Empty::new()))
            .unwrap()
    }

    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

    #[tokio::test]
    async fn a_connection_goes_back_to_the_pool_once_its_body_is_read() {
        let (addr, accepted) = backend(CHUNKED, usize::MAX).await;
        let upstream = Upstream::new(&Timeouts::default());
        let open = Gauge::default();
        for _ in 0..3 {
            let response = upstream
                .send(addr, &open, BackendProtocol::Http1, None, get())
                .await
                .unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"abc");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(open.get(), 1, "the pooled connection is still open");
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (addr, accepted) = backend(CHUNKED, usize::MAX).await;
        let upstream = Upstream::new(&Timeouts::default());
        let open = Gauge::default();
        drop(
            upstream
                .send(addr, &open, BackendProtocol::Http1, None, get())
                .await
                .unwrap(),
        );
        assert_eq!(open.get(), 0, "the closed connection is not counted");
        let response = upstream
            .send(addr, &Gauge::default(), BackendProtocol::Http1, None, get())
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_while_idle_is_not_used() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (addr, accepted) = backend(reply, 1).await;
        let upstream = Upstream::new(&Timeouts::default());
        for _ in 0..2 {
            let response = upstream
                .send(addr, &Gauge::default(), BackendProtocol::Http1, None, get())
                .await
                .unwrap();
            response.into_body().collect().await.unwrap();
            // Let the backend's close arrive.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let upstream = Upstream::new(&Timeouts::default());
        let error = upstream
            .send(addr, &Gauge::default(), BackendProtocol::Http1, None, get())
            .await
            .unwrap_err();
        assert!(matches!(error, UpstreamError::Connect(_)), "{error}");
    }
}
