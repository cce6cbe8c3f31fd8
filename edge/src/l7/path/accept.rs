//! Accepting client connections: the PROXY protocol header, the
//! per-client connection cap, the TLS handshake and ALPN, then hand-off
//! to the HTTP layer. No hyper here: the connection is handed over as a
//! tokio stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::l7::path::fast::{self, IdlePool};
use crate::l7::path::http::{ConnInfo, Hyper, Protocol, serve_connection};
use crate::l7::path::tap::Tapped;
use crate::l7::shared::context::{ListenerKind, Shared};
use crate::l7::shared::drain::{NEXT_REQUEST_GRACE, ReadSignal};
use crate::proxy_protocol::{self, DecodeError, Decoded, Limits};

/// Most bytes of a v2 PROXY header this listener reads: the address block
/// and a few TLVs (the L4 tier sends its node name).
const MAX_PROXY_V2: u16 = 1024;

/// Accepts connections on `listener` until the node closes (see
/// [`crate::l7::shared::drain`]), then drops the listener (new connections are
/// refused); each is served with `hyper`'s current builders, HTTP/1.1 ones by
/// the fast path (with the node's `idle` backend connections) unless the
/// tier turns it off.
///
/// Connections the kernel has already completed but not yet handed over
/// (the accept queue) are accepted and served before the listener closes:
/// closing a listening socket resets them, and the L4 tier, which saw its
/// connect succeed, cannot send their requests elsewhere.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    shared: Arc<Shared>,
    hyper: Arc<Hyper>,
    idle: Arc<IdlePool>,
    tracker: TaskTracker,
) {
    // The address every connection reaches, unless the listener is bound
    // to a wildcard (then each connection's own, asked of its socket).
    let bound = listener
        .local_addr()
        .ok()
        .filter(|addr| !addr.ip().is_unspecified());
    let spawn = |stream: TcpStream, peer| {
        // The drain keeps the listener open while connections arrive.
        shared.drain.accepted(shared.now_ms());
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            bound,
            kind,
            shared.clone(),
            hyper.clone(),
            idle.clone(),
        ));
    };
    let closing = shared.drain.closing().clone();
    loop {
        tokio::select! {
            () = closing.cancelled() => break,
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
/// and the one it connected to (`None` for LOCAL or UNKNOWN headers: use
/// the connection's own).
pub async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<Option<(SocketAddr, SocketAddr)>, ProxyHeaderError> {
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
            Decoded::Complete(header, _) => {
                return Ok(header.source().zip(header.destination()));
            }
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
    bound: Option<SocketAddr>,
    kind: ListenerKind,
    shared: Arc<Shared>,
    hyper: Arc<Hyper>,
    idle: Arc<IdlePool>,
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
    let announced = if tier.proxy_protocol {
        match tokio::time::timeout(header_timeout, read_proxy_header(&mut stream)).await {
            Ok(Ok(addresses)) => addresses,
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
        None
    };
    // Without a header (or with a LOCAL one) the connection's own addresses.
    let (client, local) = match (announced, bound) {
        (Some(addresses), _) => addresses,
        (None, Some(local)) => (peer, local),
        (None, None) => match stream.local_addr() {
            Ok(local) => (peer, local),
            Err(error) => {
                debug!(%peer, "closing: {error}");
                return;
            }
        },
    };
    let Some(_slot) = shared.conn_cap.acquire(client.ip()) else {
        debug!(%client, "closing: per-client connection cap reached");
        shared.metrics.connection_error(kind.name(), "client_cap");
        return;
    };
    let framing_conflict = Arc::new(AtomicBool::new(false));
    let info = Arc::new(ConnInfo {
        client,
        local,
        listener: kind,
        framing_conflict: framing_conflict.clone(),
    });
    let max_head = tier.limits.max_header_bytes as usize;
    let http2 = tier.http2;
    let fast_path = tier.http1_fast_path;
    let next_request_grace = header_timeout.min(NEXT_REQUEST_GRACE);
    drop(snapshot);
    let reads = Arc::new(ReadSignal::default());
    let drain = shared.drain.hold(reads.clone(), next_request_grace);
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
                    serve_connection(stream, Protocol::Http2, info, shared, &hyper, drain.token)
                        .await;
                } else {
                    let io = stream.with_framing_guard(framing_conflict, max_head);
                    let protocol = Protocol::Http1;
                    if fast_path {
                        fast::serve(io, protocol, info, shared, &hyper, idle, drain.token).await;
                    } else {
                        serve_connection(io, protocol, info, shared, &hyper, drain.token).await;
                    }
                }
            }
            _ => {
                let protocol = if http2 {
                    Protocol::Auto
                } else {
                    Protocol::Http1
                };
                let io = Tapped::new(stream, reads).with_framing_guard(framing_conflict, max_head);
                if fast_path {
                    fast::serve(io, protocol, info, shared, &hyper, idle, drain.token).await;
                } else {
                    serve_connection(io, protocol, info, shared, &hyper, drain.token).await;
                }
            }
        }
    };
    tokio::select! {
        () = serve => {}
        () = drain.relay => {}
    }
}
