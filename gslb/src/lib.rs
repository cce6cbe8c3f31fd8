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
//! - [`client`]: who the answer is for (EDNS Client Subnet or the
//!   resolver's address, truncated).
//! - [`geo`]: looks the client up and asks [`decide`], the pure geo
//!   decision (policies, overrides, health, ECS scope), for the regions.
//! - [`health`]: the view of which regions are in service.
//! - [`explain`]: the decision trace for one name and client.
//! - [`state`]: the immutable snapshot the query path reads.

pub mod client;
pub mod decide;
pub mod dns;
pub mod explain;
pub mod geo;
pub mod health;
pub mod listen;
pub mod resolve;
pub mod state;
pub mod zone;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use geo_data::{GeoDb, WatchedGeoDb};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use topology::{GeoIpSource, Topology};
use tracing::{info, warn};

pub use listen::Listeners;
pub use state::ServingState;

/// How long queries in flight may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a GeoIP database file is checked for changes.
pub const GEOIP_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Opens the GeoIP database the topology names (the embedded one by
/// default).
pub fn open_geoip(topology: &Topology) -> anyhow::Result<WatchedGeoDb> {
    Ok(match &topology.dns.geoip {
        GeoIpSource::Embedded => WatchedGeoDb::fixed(GeoDb::embedded()),
        GeoIpSource::File(path) => WatchedGeoDb::open(path).with_context(|| {
            format!(
                "dns.geoip: cannot open {}; fix the path or write `geoip: embedded`",
                path.display()
            )
        })?,
    })
}

/// Serves `topology`'s zones on `listeners` until `shutdown` is cancelled.
pub async fn run(
    topology: Topology,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let geoip = Arc::new(open_geoip(&topology)?);
    info!(
        database = geoip.current().description(),
        "GeoIP database loaded"
    );
    let state = Arc::new(ArcSwap::from_pointee(ServingState::new(
        Arc::new(topology),
        geoip.clone(),
    )));
    let mut tasks = JoinSet::new();
    if geoip.path().is_some() {
        tasks.spawn(refresh_geoip(geoip, shutdown.clone()));
    }
    let result = dns::serve(state, listeners, shutdown.clone(), SHUTDOWN_GRACE).await;
    shutdown.cancel();
    tasks.join_all().await;
    result
}

/// Reopens the GeoIP file whenever it changes; a file that fails to open
/// is logged and the previous database keeps serving.
async fn refresh_geoip(geoip: Arc<WatchedGeoDb>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(GEOIP_CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let watched = geoip.clone();
        match tokio::task::spawn_blocking(move || watched.refresh()).await {
            Ok(Ok(refresh)) => {
                if matches!(refresh, geo_data::Refresh::Reloaded) {
                    info!(
                        database = geoip.current().description(),
                        "GeoIP database reloaded"
                    );
                }
            }
            Ok(Err(error)) => {
                warn!("GeoIP database not reloaded, keeping the previous one: {error}")
            }
            Err(error) => warn!("GeoIP reload task failed: {error}"),
        }
    }
}
