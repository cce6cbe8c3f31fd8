//! `gslb`: an authoritative GeoDNS server. It serves the zones of a
//! topology file and answers each geo name with the VIP of a region.
//!
//! # Layout
//! A query goes through these stages, each its own module:
//! - [`listen`]: the bound UDP sockets and TCP listeners.
//! - [`dns`]: the hickory adapter (wire format, EDNS, truncation); the only
//!   module that names hickory types.
//! - [`resolve`]: the authoritative lookup, a pure function over
//!   [`zone`] data.
//! - [`geo`]: the addresses chosen for geo names.
//! - [`state`]: the immutable snapshot the query path reads.

pub mod dns;
pub mod geo;
pub mod listen;
pub mod resolve;
pub mod state;
pub mod zone;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use topology::Topology;

pub use listen::Listeners;
pub use state::ServingState;

/// How long queries in flight may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `topology`'s zones on `listeners` until `shutdown` is cancelled.
pub async fn run(
    topology: Topology,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Arc::new(ArcSwap::from_pointee(ServingState::new(Arc::new(topology))));
    dns::serve(state, listeners, shutdown, SHUTDOWN_GRACE).await
}
