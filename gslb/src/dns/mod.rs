//! The DNS adapter: the only module that names hickory types.
//!
//! hickory-server owns the sockets' read/write loops (UDP, TCP with
//! pipelining and idle timeouts); this module turns its requests into
//! lookups ([`crate::resolve`]) and the results back into wire records.
//! An upgrade of hickory touches this module and nothing else.

mod handler;
mod records;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_server::Server;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use handler::MAX_UDP_PAYLOAD;
pub use records::WireRecords;

use crate::health::RegionHealth;
use crate::listen::DnsListeners;
use crate::metrics::Metrics;
use crate::state::ServingState;

/// How long a TCP client may stay silent before its connection is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies queued per TCP connection (pipelined queries awaiting writes).
const TCP_RESPONSE_QUEUE: usize = 32;

/// Serves DNS on `listeners` from whatever `state` and `health` hold, until `shutdown`
/// is cancelled; then stops accepting, lets queries in flight finish for up
/// to `grace`, and returns.
pub async fn serve(
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    listeners: DnsListeners,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut server = Server::new(handler::Handler::new(state, health, metrics));
    for socket in listeners.udp {
        server.register_socket(socket);
    }
    for listener in listeners.tcp {
        server.register_listener(listener, TCP_IDLE_TIMEOUT, TCP_RESPONSE_QUEUE);
    }
    tokio::select! {
        result = server.block_until_done() => {
            result?;
            anyhow::bail!("DNS server stopped on its own");
        }
        () = shutdown.cancelled() => {}
    }
    info!("shutting down: no new queries accepted");
    match tokio::time::timeout(grace, server.shutdown_gracefully()).await {
        Ok(result) => result?,
        Err(_) => warn!(
            ?grace,
            "queries still in flight at the end of the grace period; closing"
        ),
    }
    Ok(())
}
