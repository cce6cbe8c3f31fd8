//! `gslb`: an authoritative GeoDNS server. It serves the zones of a
//! topology file and answers each geo name with the VIP of a region.
//!
//! # Layout
//! A query goes through these stages, each its own module:
//! - [`listen`]: the bound UDP sockets and TCP listeners.
//! - [`serve`]: the serving layer — UDP workers (batched sockets, one per
//!   core) and the TCP server; asks [`fast`], else [`dns`], for the reply.
//! - [`fast`]: the UDP fast path's tables — replies copied from templates
//!   the [`dns`] slow path built.
//! - [`dns`]: the hickory adapter, bytes in and bytes out (wire format,
//!   EDNS, truncation); the only module that names hickory types.
//! - [`dnssec`]: online signing of signed zones' answers (RRSIGs, the
//!   signature cache, compact denial of existence), in wire bytes.
//! - [`rrl`]: response rate limiting of UDP replies.
//! - [`resolve`]: the authoritative lookup, a pure function over
//!   [`zone`] data.
//! - [`client`]: who the answer is for (EDNS Client Subnet or the
//!   resolver's address, truncated).
//! - [`geo`]: looks the client up and asks [`decide`], the pure geo
//!   decision (policies, overrides, health, ECS scope), for the regions.
//! - [`health`]: the view of which regions are in service, and their
//!   load.
//! - [`spill`]: capacity-aware spill-over — which clients of a region over
//!   its target go elsewhere, and the controller of that share.
//! - [`explain`]: the decision trace for one name and client.
//! - [`state`]: the immutable snapshot the query path reads.
//!
//! Around the query path, owned by [`node::Node`]:
//! - [`monitor`]: probes the regions (with the `probe` crate), gathers the
//!   peers' views, combines them by [`vantage`] quorum, applies the
//!   operator's overrides and publishes the [`health`] view; overrides and
//!   this node's verdicts persist in the [`state_file`].
//! - [`load`]: each region's load, read from its edge nodes' admin APIs,
//!   and the spill share's controller run on it; handed to [`monitor`].
//! - [`peer`]: the view nodes exchange, signed with `dns.peer_key`; the
//!   [`overrides`] slots it carries converge by last-writer-wins.
//! - [`admin_api`]: status, overrides, reload, explain, what-if
//!   ([`what_if`]), metrics ([`metrics`]).
//! - [`console`]: the status page on the admin address, and the edge
//!   nodes' figures it gathers.

pub mod admin_api;
pub mod client;
pub mod console;
pub mod decide;
pub mod dns;
pub mod dnssec;
pub mod explain;
pub mod fast;
pub mod geo;
pub mod health;
pub mod listen;
pub mod load;
pub mod metrics;
pub mod monitor;
pub mod node;
pub mod overrides;
pub mod peer;
pub mod resolve;
pub mod rrl;
pub mod scope_map;
pub mod serve;
pub mod spill;
pub mod state;
pub mod state_file;
pub mod vantage;
pub mod what_if;
pub mod zone;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use geo_data::{GeoDb, WatchedGeoDb};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use topology::{GeoIpSource, Topology};
use tracing::{debug, info, warn};

pub use listen::Listeners;
pub use node::Options;

use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::node::Node;
use crate::state_file::StateStore;
pub use state::ServingState;

/// How long queries in flight may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often cached DNSSEC signatures coming due are made anew.
pub const SIGNATURE_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

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

/// Runs a GSLB node until `shutdown` is cancelled: serves `topology`'s
/// zones on `listeners.dns`, probes the regions, exchanges views with its
/// peers, serves the admin API on `listeners.admin`, and reloads the
/// topology file when it changes.
pub async fn run(
    topology: Topology,
    listeners: Listeners,
    options: Options,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let admin_addr = listeners.admin_addr();
    let dns_addrs: Vec<String> = listeners
        .dns_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    let geoip = Arc::new(open_geoip(&topology)?);
    info!(
        database = geoip.current().description(),
        "GeoIP database loaded"
    );
    let peer_key = match &topology.dns.peer_key {
        Some(path) => Some(peer::PeerKey::load(path)?),
        None => None,
    };
    let persisted = match &options.state_file {
        Some(path) => StateStore::load(path, &options.node)?,
        None => StateStore::in_memory(&options.node),
    };
    for (region, held) in persisted.overrides() {
        info!(
            region,
            mode = held.mode.as_str(),
            "override restored from the state file"
        );
    }
    let version = match &options.config_path {
        Some(path) => node::version_of(&std::fs::read(path).unwrap_or_default(), &topology),
        None => node::version_of(b"", &topology),
    };
    let metrics = Metrics::new();
    let mut tasks = JoinSet::new();
    let monitor = Monitor::start(
        &topology,
        &options.node,
        persisted,
        peer_key,
        metrics.clone(),
        &mut tasks,
        shutdown.clone(),
    );
    monitor.configure(&topology).await;
    let state = Arc::new(ArcSwap::from_pointee(ServingState::new(
        Arc::new(topology),
        geoip.clone(),
        None,
    )?));
    warm_scopes(&state);
    let node = Arc::new(Node::new(
        options,
        state.clone(),
        monitor.clone(),
        geoip.clone(),
        metrics.clone(),
        version,
    ));
    if let Some(listener) = listeners.admin {
        let config = admin::AdminConfig {
            token: admin_token(&node.topology())?,
            token_help: "set `dns.admin_token` in the topology or GTM_ADMIN_TOKEN in gslb's environment to a secret of at least 16 characters".into(),
            ..admin::AdminConfig::default()
        };
        let server = admin::AdminServer::new(listener, admin_api::router(node.clone()), config)?;
        tasks.spawn(server.run(shutdown.clone()));
    }
    tasks.spawn(node.clone().watch_config(shutdown.clone()));
    tasks.spawn(node.clone().track_rate(shutdown.clone()));
    tasks.spawn(load::track(node.clone(), shutdown.clone()));
    if geoip.path().is_some() {
        tasks.spawn(refresh_geoip(geoip, state.clone(), shutdown.clone()));
    }
    tasks.spawn(refresh_signatures(state.clone(), shutdown.clone()));
    // Only now is everything that can refuse to start checked: these
    // lines are what supervisors wait for.
    if let Some(admin) = admin_addr {
        info!(admin = %admin, "admin API listening");
    }
    info!(
        listen = %dns_addrs.join(","),
        zones = state.load().topology.dns.zones.len(),
        "serving DNS over UDP and TCP"
    );
    let result = serve::serve(
        state,
        monitor.view.clone(),
        metrics,
        listeners.dns,
        shutdown.clone(),
        SHUTDOWN_GRACE,
    )
    .await;
    shutdown.cancel();
    tasks.join_all().await;
    result
}

/// Builds the current state's scope maps in the background, so the first
/// geo queries do not wait for them.
pub(crate) fn warm_scopes(state: &ArcSwap<ServingState>) {
    let current = state.load_full();
    tokio::task::spawn_blocking(move || current.scopes.warm());
}

/// The bearer token for the admin API's mutating routes: `GTM_ADMIN_TOKEN`
/// if set, else `dns.admin_token`.
fn admin_token(topology: &Topology) -> anyhow::Result<Option<admin::Token>> {
    if let Some(token) = admin::Token::from_env()? {
        return Ok(Some(token));
    }
    Ok(match &topology.dns.admin_token {
        Some(secret) => Some(admin::Token::new(secret, "dns.admin_token")?),
        None => None,
    })
}

/// Every [`SIGNATURE_REFRESH_INTERVAL`], re-makes the signatures a query
/// would find due before the next run, so signing stays off the query path.
async fn refresh_signatures(state: Arc<ArcSwap<ServingState>>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(SIGNATURE_REFRESH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Two intervals ahead: a run that starts late still covers the gap.
    let lead = 2 * SIGNATURE_REFRESH_INTERVAL.as_secs() as u32;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let current = state.load_full();
        let run = move || current.signers.refresh_due(dnssec::unix_now(), lead);
        match tokio::task::spawn_blocking(run).await {
            Ok(0) => {}
            Ok(count) => debug!(count, "signatures made anew before they came due"),
            Err(error) => warn!("signature refresh task failed: {error}"),
        }
    }
}

/// Reopens the GeoIP file whenever it changes; a file that fails to open
/// is logged and the previous database keeps serving.
async fn refresh_geoip(
    geoip: Arc<WatchedGeoDb>,
    state: Arc<ArcSwap<ServingState>>,
    shutdown: CancellationToken,
) {
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
                    // The scope maps are built per database.
                    let current = state.load_full();
                    let topology = current.topology.clone();
                    match ServingState::new(topology, geoip.clone(), Some(&current)) {
                        Ok(rebuilt) => {
                            state.store(Arc::new(rebuilt));
                            warm_scopes(&state);
                        }
                        Err(error) => {
                            warn!("GeoIP scopes not rebuilt, keeping the previous ones: {error}")
                        }
                    }
                }
            }
            Ok(Err(error)) => {
                warn!("GeoIP database not reloaded, keeping the previous one: {error}")
            }
            Err(error) => warn!("GeoIP reload task failed: {error}"),
        }
    }
}
