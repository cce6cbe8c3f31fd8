//! The data path: accept a client, pick its L7 node, connect (retrying once
//! on the fallback), write the PROXY v2 header, relay.
//!
//! The accept loop decides before spawning anything: it loads the
//! published snapshot (an `arc-swap` load, no lock), counts the connection
//! against `max_connections` with one atomic add, hashes the flow and looks
//! the Maglev table up. A refused client (over the limit, or no healthy L7
//! node) is reset at once, without a task. An accepted one gets one task,
//! owned by the node's `TaskTracker` for the drain; the header is built on
//! that task's stack and the relay splices.
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
use crate::relay::{RelayEnd, Side, relay};

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
    let header_len = shared.header.write(peer, vip, &mut header);
    let header = &header[..header_len];

    let mut connected = None;
    for backend in std::iter::once(primary).chain(fallback) {
        let addr = SocketAddr::new(backend.address, vip.port());
        match open_upstream(addr, header, settings.connect_timeout).await {
            Ok(upstream) => {
                connected = Some((backend, upstream));
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
    let Some((backend, upstream)) = connected else {
        shared.metrics.refused_connect_failed.inc();
        debug!(%peer, %vip, "refused: no L7 node could be connected to");
        reset(client);
        return;
    };

    backend.metrics.connections.inc();
    backend.metrics.active.inc();
    let _active = Active(&backend);
    let outcome = tokio::select! {
        outcome = relay(client, upstream, &settings.relay) => Some(outcome),
        () = shared.force_close.cancelled() => None,
    };
    match outcome {
        Some(Ok(stats)) => {
            count_bytes(&backend, stats.transferred);
            if stats.end == RelayEnd::IdleTimeout {
                shared.metrics.idle_timeouts.inc();
                debug!(%peer, l7_node = %backend.name, "closed: idle timeout");
            }
        }
        Some(Err(e)) => {
            count_bytes(&backend, e.transferred);
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

fn count_bytes(backend: &Backend, transferred: crate::relay::Transferred) {
    backend
        .metrics
        .bytes_to_l7
        .inc_by(transferred.downstream_to_upstream);
    backend
        .metrics
        .bytes_to_client
        .inc_by(transferred.upstream_to_downstream);
}

/// Connects to `addr` and writes `header`, within `timeout` in all.
async fn open_upstream(
    addr: SocketAddr,
    header: &[u8],
    timeout: Duration,
) -> io::Result<TcpStream> {
    let attempt = async {
        let mut upstream = TcpStream::connect(addr).await?;
        upstream.set_nodelay(true)?;
        upstream.write_all(header).await?;
        Ok(upstream)
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
