//! The data path: accept a client, pick its L7 node, connect (retrying once
//! on the fallback), write the PROXY v2 header with the client's first
//! bytes, relay.
//!
//! The accept loop decides before spawning anything: it loads the
//! published snapshot (an `arc-swap` load, no lock), counts the connection
//! against `max_connections` with one atomic add, hashes the flow and looks
//! the Maglev table up. A refused client (over the limit, or no healthy L7
//! node) is reset at once, without a task. An accepted one gets one task,
//! owned by the node's `TaskTracker` for the drain; the header is built on
//! that task's stack and the relay splices.
//!
//! Whatever the client has sent by the time the upstream connection is up
//! (usually its whole request or TLS ClientHello: it had the connect's
//! round trip to send it) goes out with the PROXY header in one write —
//! one system call, one TCP segment and one wake-up of the L7 node instead
//! of two each. That read never waits (no system call at all unless tokio
//! has seen the client readable), so a client that waits for the server to
//! speak first gets the header alone, as before.
//!
//! Errors are classified where they happen: a failed connect or header
//! write is **upstream** and **retryable** (nothing of the client's has been
//! sent), so the fallback is tried; a relay error names its side and is
//! never retried (bytes may have been delivered).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::l4::header::MAX_HEADER_LEN;
use crate::l4::state::{Backend, Settings, Shared};
use crate::maglev::{FiveTuple, IpProtocol};
use crate::proxy_protocol::Transport;
use crate::relay::{Operation, RelayEnd, RelayError, Side, Transferred, relay};

/// The most client bytes sent along with the PROXY header; the rest of a
/// larger first flight goes through the relay.
const FIRST_BYTES: usize = 16 * 1024;

/// Accepts on `listener` (serving `vip`) until `stop` is cancelled, then
/// drops the listener so new connections are refused by the kernel.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    vip: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => dispatch(&shared, client, peer, vip),
            // The client gave up before we accepted: nothing to do.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                // Out of file descriptors or memory: the backlog holds the
                // clients meanwhile; pause instead of spinning.
                warn!(%vip, "accept failed: {e}; pausing 50 ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    debug!(%vip, "listener closed");
}

/// Decides a new connection's fate on the accept loop: refuse it, or spawn
/// its task.
fn dispatch(shared: &Arc<Shared>, client: TcpStream, peer: SocketAddr, vip: SocketAddr) {
    let snapshot = shared.snapshot.load();
    let settings = snapshot.settings;
    let Some(slot) = OpenSlot::acquire(shared, settings.max_connections) else {
        shared.metrics.refused_max_connections.inc();
        debug!(%peer, %vip, max = settings.max_connections, "refused: max_connections reached");
        reset(client);
        return;
    };
    let key = settings.hasher.key(&FiveTuple {
        source: peer,
        destination: vip,
        protocol: IpProtocol::TCP,
    });
    let Some((primary, fallback)) = snapshot.selection.pick(key) else {
        shared.metrics.refused_no_healthy.inc();
        debug!(%peer, %vip, "refused: no healthy L7 node");
        reset(client);
        return;
    };
    let primary = Arc::clone(primary);
    let fallback = fallback.cloned();
    drop(snapshot);
    shared
        .tracker
        .spawn(serve(slot, client, peer, vip, primary, fallback, settings));
}

/// One connection counted against `max_connections`; uncounted on drop.
struct OpenSlot {
    shared: Arc<Shared>,
}

impl OpenSlot {
    fn acquire(shared: &Arc<Shared>, max: usize) -> Option<Self> {
        let before = shared.open.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            shared.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        shared.metrics.open.inc();
        Some(Self {
            shared: Arc::clone(shared),
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.open.dec();
    }
}

/// Decrements a node's active-connections gauge on drop.
struct Active<'a>(&'a Backend);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.metrics.active.dec();
    }
}

/// Connects to the primary (else the fallback), then relays until the
/// connection ends or the drain deadline closes it.
async fn serve(
    slot: OpenSlot,
    client: TcpStream,
    peer: SocketAddr,
    vip: SocketAddr,
    primary: Arc<Backend>,
    fallback: Option<Arc<Backend>>,
    settings: Settings,
) {
    let shared = &*slot.shared;
    // Small request/response exchanges must not wait for Nagle.
    let _ = client.set_nodelay(true);
    let mut header = [0u8; MAX_HEADER_LEN];
    let header_len = shared
        .header
        .write(Transport::Stream, peer, vip, &mut header);
    let mut first = Vec::with_capacity(header_len + FIRST_BYTES);
    first.extend_from_slice(&header[..header_len]);

    let mut connected = None;
    for backend in std::iter::once(primary).chain(fallback) {
        let addr = SocketAddr::new(backend.address, vip.port());
        match open_upstream(
            addr,
            &client,
            &mut first,
            header_len,
            settings.connect_timeout,
        )
        .await
        {
            Ok((upstream, client_failed)) => {
                connected = Some((backend, upstream, client_failed));
                break;
            }
            Err(e) => {
                backend.metrics.connect_failures.inc();
                debug!(
                    %peer, l7_node = %backend.name, %addr, source = "upstream", retryable = true,
                    "connect failed: {e}"
                );
            }
        }
    }
    let Some((backend, upstream, client_failed)) = connected else {
        shared.metrics.refused_connect_failed.inc();
        debug!(%peer, %vip, "refused: no L7 node could be connected to");
        reset(client);
        return;
    };
    // Delivered with the header: counted with the relay's bytes.
    let early = (first.len() - header_len) as u64;
    drop(first);

    backend.metrics.connections.inc();
    backend.metrics.active.inc();
    let _active = Active(&backend);
    let outcome = match client_failed {
        // The client failed before the relay began: as the relay does, the
        // error names the client and the L7 node's connection is reset.
        Some(source) => {
            let _ = upstream.set_zero_linger();
            Some(Err(RelayError {
                side: Side::Downstream,
                op: Operation::Read,
                source,
                transferred: Transferred::default(),
            }))
        }
        None => tokio::select! {
            outcome = relay(client, upstream, &settings.relay) => Some(outcome),
            () = shared.force_close.cancelled() => None,
        },
    };
    match outcome {
        Some(Ok(stats)) => {
            count_bytes(&backend, early, stats.transferred);
            if stats.end == RelayEnd::IdleTimeout {
                shared.metrics.idle_timeouts.inc();
                debug!(%peer, l7_node = %backend.name, "closed: idle timeout");
            }
        }
        Some(Err(e)) => {
            count_bytes(&backend, early, e.transferred);
            match e.side {
                Side::Downstream => shared.metrics.relay_errors_client.inc(),
                Side::Upstream => shared.metrics.relay_errors_l7.inc(),
            };
            debug!(%peer, l7_node = %backend.name, side = %e.side, retryable = false, "relay ended: {e}");
        }
        None => {
            shared.metrics.drain_forced.inc();
        }
    }
}

/// Adds a connection's bytes to its node's counters: `early` client bytes
/// went with the PROXY header, the rest through the relay.
fn count_bytes(backend: &Backend, early: u64, transferred: Transferred) {
    backend
        .metrics
        .bytes_to_l7
        .inc_by(early + transferred.downstream_to_upstream);
    backend
        .metrics
        .bytes_to_client
        .inc_by(transferred.upstream_to_downstream);
}

/// Connects to `addr` and writes `first` — the PROXY header (its first
/// `header_len` bytes), followed by what the client has sent so far, read
/// here without waiting unless an earlier attempt already did — within
/// `timeout` in all.
///
/// An error is the upstream's (the fallback may be tried; `first` still
/// holds the client's bytes for it). A failed read of the client is
/// returned beside the connection, with nothing written.
async fn open_upstream(
    addr: SocketAddr,
    client: &TcpStream,
    first: &mut Vec<u8>,
    header_len: usize,
    timeout: Duration,
) -> io::Result<(TcpStream, Option<io::Error>)> {
    let attempt = async {
        let mut upstream = TcpStream::connect(addr).await?;
        upstream.set_nodelay(true)?;
        if first.len() == header_len {
            match client.try_read_buf(first) {
                // Zero bytes: the client is already done sending; the relay
                // reads that end again and forwards it.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Ok((upstream, Some(e))),
            }
        }
        upstream.write_all(first).await?;
        Ok((upstream, None))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within the connect timeout ({timeout:?})"),
        )),
    }
}

/// Closes a client we will not serve with a reset, so it learns at once
/// (and no TIME_WAIT is left behind).
fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    const HEADER: &[u8] = b"HEADER";

    /// A connected (client, accepted) pair on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    /// `open_upstream` to a fresh L7 listener: the upstream connection, the
    /// client's failure if any, and the L7 node's end.
    async fn open_at_l7(
        client: &TcpStream,
        first: &mut Vec<u8>,
    ) -> (TcpStream, Option<io::Error>, TcpStream) {
        let l7 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l7.local_addr().unwrap();
        let (opened, accepted) = tokio::join!(
            open_upstream(addr, client, first, HEADER.len(), Duration::from_secs(5)),
            l7.accept()
        );
        let (upstream, failed) = opened.unwrap();
        (upstream, failed, accepted.unwrap().0)
    }

    /// What `open_upstream` sends to a fresh L7 listener, read until `len`
    /// bytes came, and its outcome.
    async fn open_and_receive(
        client: &TcpStream,
        first: &mut Vec<u8>,
        len: usize,
    ) -> (Vec<u8>, Option<io::Error>) {
        let (_upstream, failed, mut at_l7) = open_at_l7(client, first).await;
        let mut received = vec![0u8; len];
        at_l7.read_exact(&mut received).await.unwrap();
        (received, failed)
    }

    #[tokio::test]
    async fn what_the_client_sent_goes_with_the_header() {
        let (mut client, downstream) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        downstream.readable().await.unwrap();
        let mut first = HEADER.to_vec();
        let (received, failed) = open_and_receive(&downstream, &mut first, 24).await;
        assert!(failed.is_none());
        assert_eq!(received, b"HEADERGET / HTTP/1.1\r\n\r\n");
        assert_eq!(first, received, "kept for a fallback");
    }

    #[tokio::test]
    async fn a_client_that_has_sent_nothing_gets_the_header_alone() {
        let (_client, downstream) = pair().await;
        let mut first = HEADER.to_vec();
        let (received, failed) = open_and_receive(&downstream, &mut first, HEADER.len()).await;
        assert!(failed.is_none());
        assert_eq!(received, HEADER);
    }

    #[tokio::test]
    async fn the_fallback_gets_the_bytes_the_first_attempt_read() {
        let (mut client, downstream) = pair().await;
        client.write_all(b"hello").await.unwrap();
        downstream.readable().await.unwrap();
        let mut first = HEADER.to_vec();
        // A port nothing listens on: refused.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let timeout = Duration::from_secs(5);
        assert!(
            open_upstream(refused, &downstream, &mut first, HEADER.len(), timeout)
                .await
                .is_err()
        );
        let (received, _) = open_and_receive(&downstream, &mut first, 11).await;
        assert_eq!(received, b"HEADERhello");
    }

    #[tokio::test]
    async fn a_client_that_failed_is_reported_with_nothing_written() {
        let (client, downstream) = pair().await;
        client.set_zero_linger().unwrap();
        drop(client); // RST
        downstream.readable().await.unwrap();
        let mut first = HEADER.to_vec();
        let (upstream, failed, mut at_l7) = open_at_l7(&downstream, &mut first).await;
        assert_eq!(
            failed.map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionReset)
        );
        drop(upstream);
        let mut rest = Vec::new();
        at_l7.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "no header was sent: {rest:?}");
    }
}
