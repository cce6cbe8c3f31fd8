//! Accepting client connections: the PROXY protocol header, the
//! per-client connection cap, the TLS handshake and ALPN, then hand-off
//! to the HTTP layer. No hyper here: the connection is handed over as a
//! tokio stream.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::framing::{FramingGuard, Verdict};
use super::http::{ConnInfo, Protocol, serve_connection};
use super::node::{ListenerKind, Shared};
use crate::proxy_protocol::{self, DecodeError, Decoded, Limits};

/// Most bytes of a v2 PROXY header this listener reads: the address block
/// and a few TLVs (the L4 tier sends its node name).
const MAX_PROXY_V2: u16 = 1024;

/// Accepts connections on `listener` until `drain` is cancelled, then
/// drops the listener (new connections are refused).
///
/// Connections the kernel has already completed but not yet handed over
/// (the accept queue) are accepted and served before the listener closes:
/// closing a listening socket resets them, and the L4 tier, which saw its
/// connect succeed, cannot send their requests elsewhere.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    drain: CancellationToken,
    force: CancellationToken,
) {
    let spawn = |stream: TcpStream, peer| {
        // The drain keeps the listener open while connections arrive.
        shared
            .last_accept_ms
            .store(shared.now_ms(), Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            kind,
            shared.clone(),
            drain.clone(),
            force.clone(),
        ));
    };
    loop {
        tokio::select! {
            () = drain.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn(stream, peer),
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = kind.name(), "accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    // Ask the kernel itself what is queued: the reactor may not have seen
    // the latest connections yet.
    let Ok(listener) = listener.into_std() else {
        return;
    };
    let mut late = 0;
    while let Ok((stream, peer)) = listener.accept() {
        match stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        {
            Ok(stream) => {
                late += 1;
                spawn(stream, peer);
            }
            Err(error) => debug!(%peer, "cannot serve a queued connection: {error}"),
        }
    }
    if late > 0 {
        debug!(
            listener = kind.name(),
            late, "served the accept queue before closing"
        );
    }
}

/// Reads a PROXY protocol header, never past its end; the client's address
/// (`None` for LOCAL or UNKNOWN headers: use the peer's).
pub async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buf = Vec::with_capacity(64);
    loop {
        match proxy_protocol::decode_with_limits(
            &buf,
            Limits {
                max_v2_length: MAX_PROXY_V2,
            },
        )? {
            Decoded::Incomplete { needed } => {
                let start = buf.len();
                buf.resize(start + needed, 0);
                stream.read_exact(&mut buf[start..]).await?;
            }
            Decoded::Complete(header, _) => return Ok(header.source()),
        }
    }
}

/// Why a PROXY header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// The bytes are not a valid header.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The connection failed or closed first.
    #[error("connection closed before the PROXY header ended: {0}")]
    Io(#[from] io::Error),
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    shared: Arc<Shared>,
    drain: CancellationToken,
    force: CancellationToken,
) {
    let (accepted, open) = shared.metrics.listener(kind.name());
    accepted.inc();
    open.inc();
    struct Open(prometheus_client::metrics::gauge::Gauge);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _open = Open(open);
    let snapshot = shared.snapshot.load_full();
    let tier = &snapshot.spec.tier;
    let header_timeout = tier.timeouts.request_headers;
    let client = if tier.proxy_protocol {
        match tokio::time::timeout(header_timeout, read_proxy_header(&mut stream)).await {
            Ok(Ok(source)) => source.unwrap_or(peer),
            Ok(Err(error)) => {
                debug!(%peer, "closing: {error}");
                shared.metrics.connection_error(kind.name(), "proxy_header");
                return;
            }
            Err(_) => {
                debug!(%peer, "closing: no PROXY header within {header_timeout:?}");
                shared.metrics.connection_error(kind.name(), "proxy_header");
                return;
            }
        }
    } else {
        peer
    };
    let Some(_slot) = shared.conn_cap.acquire(client.ip()) else {
        debug!(%client, "closing: per-client connection cap reached");
        shared.metrics.connection_error(kind.name(), "client_cap");
        return;
    };
    let framing_conflict = Arc::new(AtomicBool::new(false));
    let info = Arc::new(ConnInfo {
        client,
        listener: kind,
        framing_conflict: framing_conflict.clone(),
    });
    let max_head = tier.limits.max_header_bytes as usize;
    let http2 = tier.http2;
    let next_request_grace = header_timeout.min(NEXT_REQUEST_GRACE);
    drop(snapshot);
    let reads = Arc::new(ReadSignal::default());
    let drain = hold_drain(drain, reads.clone(), next_request_grace);
    let serve = async move {
        match (kind, &shared.tls) {
            (ListenerKind::Https, Some(tls)) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.load_full());
                let stream =
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            debug!(%client, "TLS handshake failed: {error}");
                            shared
                                .metrics
                                .connection_error(kind.name(), "tls_handshake");
                            return;
                        }
                        Err(_) => {
                            debug!(%client, "TLS handshake timed out");
                            shared
                                .metrics
                                .connection_error(kind.name(), "tls_handshake");
                            return;
                        }
                    };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let stream = Tapped::new(stream, reads);
                if h2 {
                    serve_connection(stream, Protocol::Http2, info, shared, drain.token, force)
                        .await;
                } else {
                    let io = stream.with_framing_guard(framing_conflict, max_head);
                    serve_connection(io, Protocol::Http1, info, shared, drain.token, force).await;
                }
            }
            _ => {
                let protocol = if http2 {
                    Protocol::Auto
                } else {
                    Protocol::Http1
                };
                let io = Tapped::new(stream, reads).with_framing_guard(framing_conflict, max_head);
                serve_connection(io, protocol, info, shared, drain.token, force).await;
            }
        }
    };
    tokio::select! {
        () = serve => {}
        () = drain.relay => {}
    }
}

/// Once a drain begins, how long a connection with no request on its way
/// is kept open for its next one (at most `timeouts.request_headers`).
pub const NEXT_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// A connection's own drain signal and the future that fires it.
struct HeldDrain<F> {
    token: CancellationToken,
    relay: F,
}

/// Tells a connection's drain that bytes came in.
#[derive(Debug, Default)]
struct ReadSignal {
    /// Set when the drain begins; reads before it are not reported.
    armed: AtomicBool,
    read: Notify,
}

/// The node's `drain`, passed on to one connection only when the client's
/// next bytes have been read after the drain began (or `grace` has
/// passed).
///
/// hyper closes an HTTP/1 connection with no request in progress as soon
/// as it is asked to shut down gracefully. A request already on its way —
/// the first one of a connection the L4 tier has just opened, or the next
/// one on a kept-alive connection — would meet a closed connection and get
/// no answer. Held back, the drain reaches hyper once that request is
/// read; hyper answers it with `Connection: close` and closes, and the
/// client's next request opens a connection the L4 tier sends elsewhere.
fn hold_drain(
    drain: CancellationToken,
    reads: Arc<ReadSignal>,
    grace: Duration,
) -> HeldDrain<impl std::future::Future<Output = ()>> {
    let token = CancellationToken::new();
    let own = token.clone();
    let relay = async move {
        drain.cancelled().await;
        reads.armed.store(true, Ordering::SeqCst);
        tokio::select! {
            () = reads.read.notified() => {}
            () = tokio::time::sleep(grace) => {}
        }
        own.cancel();
        // The connection ends the select it runs in.
        std::future::pending::<()>().await;
    };
    HeldDrain { token, relay }
}

/// A client stream whose incoming bytes are watched on their way to hyper:
/// the first read after the drain began is reported to it
/// ([`hold_drain`]), and on HTTP/1 every byte also passes through a
/// [`FramingGuard`] that raises the connection's framing-conflict flag.
struct Tapped<IO> {
    inner: IO,
    reads: Arc<ReadSignal>,
    framing: Option<Framing>,
}

/// The request-smuggling guard of an HTTP/1 connection and its flag.
struct Framing {
    guard: FramingGuard,
    conflict: Arc<AtomicBool>,
}

impl<IO> Tapped<IO> {
    fn new(inner: IO, reads: Arc<ReadSignal>) -> Self {
        Self {
            inner,
            reads,
            framing: None,
        }
    }

    /// Also feeds the bytes to a [`FramingGuard`]; `conflict` is set on a
    /// framing conflict.
    fn with_framing_guard(mut self, conflict: Arc<AtomicBool>, max_head: usize) -> Self {
        self.framing = Some(Framing {
            guard: FramingGuard::new(max_head),
            conflict,
        });
        self
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tapped<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        let fresh = &buf.filled()[before..];
        if !fresh.is_empty() && this.reads.armed.load(Ordering::Relaxed) {
            // A stored permit: the waiter may come later.
            this.reads.read.notify_one();
        }
        if let Some(framing) = &mut this.framing
            && !framing.guard.is_off()
            && framing.guard.feed(fresh) == Verdict::Conflict
        {
            framing.conflict.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tapped<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
