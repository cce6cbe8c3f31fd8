//! The serving layer: the UDP workers ([`udp`]) and the TCP server
//! ([`tcp`]) on the bound listeners, and [`serve`], which starts both and
//! shuts them down.
//!
//! A UDP datagram is answered from the fast path's tables
//! ([`crate::fast`]) when they hold its answer, else by the DNS adapter
//! ([`crate::dns::answer_bytes`]); the reply then passes response rate
//! limiting ([`crate::rrl`]). A TCP message always goes to the DNS adapter
//! ([`crate::dns::answer_tcp_bytes`]).
//!
//! # Layout
//! - [`udp`]: `SO_REUSEPORT` sockets, one OS thread each, batched with
//!   `recvmmsg`/`sendmmsg`.
//! - `tables`: keeps the fast path's tables current for the UDP workers,
//!   with the rate limiter, and replays their query counts into the
//!   metrics.
//! - [`tcp`]: connection caps, idle timeout, pipelining.

mod tables;
pub mod tcp;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use tcp::TcpOptions;
pub use udp::UdpOptions;

use self::tables::TableKeeper;
use self::udp::UdpServer;
use crate::health::RegionHealth;
use crate::listen::DnsListeners;
use crate::metrics::Metrics;
use crate::state::ServingState;

/// How long a TCP client may stay silent before its connection is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable overriding the number of UDP workers per listen
/// address (default: one per core).
pub const UDP_THREADS_ENV: &str = "GSLB_UDP_THREADS";

/// How DNS is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeOptions {
    /// UDP workers and reply size.
    pub udp: UdpOptions,
    /// TCP limits.
    pub tcp: TcpOptions,
}

/// Options from the environment ([`UDP_THREADS_ENV`]), else defaults.
pub fn options_from_env() -> anyhow::Result<ServeOptions> {
    let mut options = ServeOptions::default();
    if let Ok(text) = std::env::var(UDP_THREADS_ENV) {
        options.udp.threads = text
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| {
                format!("{UDP_THREADS_ENV}={text:?} is not a positive number; write e.g. {UDP_THREADS_ENV}=2")
            })?;
    }
    Ok(options)
}

/// Serves DNS on `listeners` from whatever `state` and `health` hold, until `shutdown`
/// is cancelled; then stops accepting, lets queries in flight finish for up
/// to `grace`, and returns. Options: [`options_from_env`].
pub async fn serve(
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    listeners: DnsListeners,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let options = options_from_env()?;
    serve_with(state, health, metrics, listeners, shutdown, grace, options).await
}

/// [`serve`] with explicit options.
pub async fn serve_with(
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    listeners: DnsListeners,
    shutdown: CancellationToken,
    grace: Duration,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let tables = TableKeeper::new(state.clone(), health.clone(), metrics.clone());
    let sockets = listeners
        .udp
        .into_iter()
        .map(|socket| socket.into_std())
        .collect::<Result<Vec<_>, _>>()
        .context("cannot take over the UDP sockets")?;
    let udp =
        UdpServer::start(tables, sockets, options.udp).context("cannot start the UDP workers")?;
    let connections = TaskTracker::new();
    let tcp_shutdown = CancellationToken::new();
    tcp::spawn(
        listeners.tcp,
        state,
        health,
        metrics,
        options.tcp,
        tcp_shutdown.clone(),
        &connections,
    );
    connections.close();
    shutdown.cancelled().await;
    info!("shutting down: no new queries accepted");
    let udp = tokio::task::spawn_blocking(move || udp.shutdown());
    // TCP: stop accepting and reading new queries; replies being written
    // finish within the grace period.
    tcp_shutdown.cancel();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "queries still in flight at the end of the grace period; closing"
        );
    }
    udp.await.context("the UDP workers did not stop cleanly")?;
    Ok(())
}
