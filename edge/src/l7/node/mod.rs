//! One L7 node's lifecycle: building its state, serving its listeners,
//! reloading, and draining at shutdown; beside the request path, its
//! active health checks ([`health`], with the gRPC kind in
//! [`grpc_health`]), its admin endpoint ([`admin`]) and the state file
//! keeping the operator's drains and weights across restarts
//! ([`state_file`]).

pub mod admin;
pub mod grpc_health;
pub mod health;
pub mod state_file;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ::admin::api::l7 as api;
use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::l7::node::health::Checks;
use crate::l7::node::state_file::ServerStateFile;
use crate::l7::path::fast::IdlePool;
use crate::l7::path::http::Hyper;
use crate::l7::rules::balance::mix64;
use crate::l7::shared::backend_tls::PoolTlsError;
use crate::l7::shared::config::NodeSpec;
use crate::l7::shared::context::{ListenerKind, Shared, TlsState};
use crate::l7::shared::metrics::Metrics;
use crate::l7::shared::state::Snapshot;
use crate::l7::shared::tls::{CertStore, TlsError};

/// How often certificate files are checked for changes and gauges
/// refreshed.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

/// Why a node could not be built or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum L7Error {
    /// Certificates could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A pool's backend TLS files could not be loaded.
    #[error("{0}")]
    BackendTls(#[from] PoolTlsError),
    /// The new configuration changes what only a restart can.
    #[error("{0}; restart the node to apply it")]
    NeedsRestart(String),
    /// Health checks refused the new configuration.
    #[error("{0}")]
    Checks(#[from] probe::ReloadError),
}

/// The listeners a node serves; bound by the caller.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Plain HTTP (the VIP's HTTP port on the node's address).
    pub http: Option<TcpListener>,
    /// HTTPS; needs `tls:` in the tier.
    pub https: Option<TcpListener>,
    /// The admin endpoint (`/metrics`, `/v1/status`, the health path).
    pub admin: Option<TcpListener>,
}

/// An L7 node, built and ready to [`run`](L7Node::run).
pub struct L7Node {
    shared: Arc<Shared>,
    hyper: Arc<Hyper>,
    checks: Arc<Checks>,
    events: tokio::sync::mpsc::Receiver<probe::ProbeEvent>,
    registry: Arc<Registry>,
    probes_stop: CancellationToken,
    state_file: Option<Arc<ServerStateFile>>,
}

/// Controls a running node: reload, status, metrics. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    hyper: Arc<Hyper>,
    checks: Arc<Checks>,
    registry: Arc<Registry>,
    state_file: Option<Arc<ServerStateFile>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("node", &self.shared.node)
            .finish()
    }
}

fn seed_for(name: &str) -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::l7::rules::balance::request_key(name.as_bytes()) ^ mix64(clock)
}

impl L7Node {
    /// Builds the node's state for `spec`: certificates are loaded here,
    /// so a bad one fails start-up rather than the first handshake.
    pub fn new(spec: NodeSpec) -> Result<Self, L7Error> {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let seed = seed_for(&spec.node.name);
        let tls = match &spec.tier.tls {
            None => None,
            Some(tls) => {
                let store = CertStore::new(tls)?;
                let config = store.server_config(tls, spec.tier.http2)?;
                Some(TlsState {
                    store,
                    config: ArcSwap::new(config),
                })
            }
        };
        let probes_stop = CancellationToken::new();
        let (checks, events) = Checks::new(probes_stop.clone(), seed);
        let shared = Arc::new(Shared::new(spec, metrics, tls, seed)?);
        let hyper = Arc::new(Hyper::new(&shared.snapshot.load()));
        Ok(Self {
            shared,
            hyper,
            checks,
            events,
            registry: Arc::new(registry),
            probes_stop,
            state_file: None,
        })
    }

    /// Keeps the operator's drains and weights in the state file at
    /// `path`: restores what it saved now, saves every later change.
    pub fn with_state_file(mut self, path: &Path) -> Self {
        let file = ServerStateFile::new(path);
        file.restore(&self.shared.snapshot.load());
        self.state_file = Some(file);
        self
    }

    /// A handle on the node.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
            hyper: self.hyper.clone(),
            checks: self.checks.clone(),
            registry: self.registry.clone(),
            state_file: self.state_file.clone(),
        }
    }

    /// Serves `listeners` until `shutdown` is cancelled, then drains: the
    /// health path answers 503, new connections are still served while
    /// they keep arriving (see [`crate::l7::shared::drain`]), then the node stops
    /// accepting, lets requests in flight finish within the tier's `drain`
    /// timeout, closes what is left and returns.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let L7Node {
            shared,
            hyper,
            checks,
            events,
            registry,
            probes_stop,
            state_file,
        } = self;
        let background = TaskTracker::new();
        {
            let shared = shared.clone();
            background.spawn(checks.clone().apply(
                events,
                move || shared.clock.now_ms(),
                probes_stop.clone(),
            ));
        }
        let snapshot = shared.snapshot.load_full();
        if let Err(e) = checks.sync(&snapshot).await {
            probes_stop.cancel();
            return Err(anyhow::anyhow!(
                "L7 node {}: health checks: {e}",
                shared.node
            ));
        }
        drop(snapshot);
        let admin_stop = CancellationToken::new();
        if let Some(listener) = listeners.admin {
            let server = crate::l7::node::admin::server(
                listener,
                shared.clone(),
                registry.clone(),
                state_file,
            )?;
            background.spawn(server.run(admin_stop.clone()));
        }
        let connections = TaskTracker::new();
        let idle = Arc::new(IdlePool::default());
        for (listener, kind) in [
            (listeners.http, ListenerKind::Http),
            (listeners.https, ListenerKind::Https),
        ] {
            let Some(listener) = listener else { continue };
            if kind == ListenerKind::Https && shared.tls.is_none() {
                anyhow::bail!(
                    "L7 node {}: an HTTPS listener needs `tls:` in the tier",
                    shared.node
                );
            }
            if let Ok(addr) = listener.local_addr() {
                info!(node = %shared.node, listener = kind.name(), %addr, "listening");
            }
            connections.spawn(crate::l7::path::accept::accept_loop(
                listener,
                kind,
                shared.clone(),
                hyper.clone(),
                idle.clone(),
                connections.clone(),
            ));
        }
        background.spawn(maintenance(shared.clone(), idle));

        shutdown.cancelled().await;
        let grace = shared.snapshot.load().spec.tier.timeouts.drain;
        shared
            .drain
            .run(&shared.clock, grace, &connections, &shared.node)
            .await;
        admin_stop.cancel();
        probes_stop.cancel();
        checks.stop().await;
        background.close();
        background.wait().await;
        info!(node = %shared.node, "drained");
        Ok(())
    }
}

/// Periodic upkeep: certificate files and their expiry gauges, ejection
/// gauges, the fast path's idle backend connections past `upstream_idle`
/// (so they live at most one interval longer).
/// Stops when the node closes.
async fn maintenance(shared: Arc<Shared>, idle: Arc<IdlePool>) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.drain.closing().cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(tls) = &shared.tls {
            tls.store.reload_and_log(&shared.node);
            // Also after a reload through the topology, which swaps the set.
            shared.metrics.set_certificates(&tls.store.expiries());
        }
        let snapshot = shared.snapshot.load();
        idle.sweep(
            tokio::time::Instant::now(),
            snapshot.spec.tier.timeouts.upstream_idle,
        );
        let now = shared.now_ms();
        for pool in &snapshot.pools {
            for server in pool.servers() {
                server.refresh_gauges(now);
            }
        }
    }
}

impl Handle {
    /// The node's name.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Whether the node terminates TLS: it needs an HTTPS listener.
    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// The region health path the node answers.
    pub fn health_path(&self) -> String {
        self.shared.snapshot.load().spec.tier.health_path.clone()
    }

    /// Swaps in `spec`'s routes, pools and limits without dropping a
    /// connection or a request: requests in flight finish on the old
    /// snapshot, servers unchanged by the reload keep their health, load
    /// and ejection state. Listener addresses, TLS on/off and the node's
    /// identity need a restart and are refused.
    pub async fn reload(&self, spec: NodeSpec) -> Result<(), L7Error> {
        let _serial = self.shared.reload.lock().await;
        let result = self.reload_locked(spec).await;
        self.shared.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => info!(node = %self.shared.node, "configuration reloaded"),
            Err(e) => {
                error!(node = %self.shared.node, "reload refused, still serving the old configuration: {e}")
            }
        }
        result
    }

    async fn reload_locked(&self, spec: NodeSpec) -> Result<(), L7Error> {
        let shared = &self.shared;
        let old = shared.snapshot.load_full();
        if spec.node != old.spec.node
            || spec.http_port != old.spec.http_port
            || spec.https_port != old.spec.https_port
        {
            return Err(L7Error::NeedsRestart(
                "the node's address, admin address or ports changed".into(),
            ));
        }
        if spec.tier.tls.is_some() != shared.tls.is_some() {
            return Err(L7Error::NeedsRestart("TLS was turned on or off".into()));
        }
        if let (Some(tls), Some(state)) = (&spec.tier.tls, &shared.tls) {
            let old_tls = old.spec.tier.tls.as_ref();
            if old_tls.map(|t| (&t.certs, &t.ticket_keys)) != Some((&tls.certs, &tls.ticket_keys)) {
                state.store.replace(tls)?;
            }
            if old_tls.map(|t| (t.min_version, t.session_tickets, t.ticket_keys.is_some()))
                != Some((
                    tls.min_version,
                    tls.session_tickets,
                    tls.ticket_keys.is_some(),
                ))
                || old.spec.tier.http2 != spec.tier.http2
            {
                state
                    .config
                    .store(state.store.server_config(tls, spec.tier.http2)?);
            }
        }
        let new = Arc::new(Snapshot::build(
            spec,
            Some(&old),
            &shared.metrics,
            shared.seed,
        )?);
        self.checks.sync(&new).await?;
        let tier = &new.spec.tier;
        for gate in &shared.gates {
            gate.set_max(tier.limits.max_requests);
        }
        shared
            .conn_cap
            .set_max(tier.limits.max_connections_per_client);
        self.hyper.reload(&old, &new);
        // Forget the series of servers that left.
        for pool in &old.pools {
            for server in pool.servers() {
                let kept = new
                    .pools
                    .iter()
                    .any(|p| p.config.name == pool.config.name && p.server(server.addr).is_some());
                if !kept {
                    shared
                        .metrics
                        .remove_server(&pool.config.name, &server.addr.to_string());
                }
            }
        }
        shared.snapshot.store(new.clone());
        // Servers that left the configuration leave the state file.
        if let Some(file) = &self.state_file {
            let _ = file.save_logged(new).await;
        }
        Ok(())
    }

    /// The node's state (`GET /v1/status`): routes, pools, servers and
    /// their health.
    pub fn status(&self) -> api::Status {
        crate::l7::node::admin::status(&self.shared)
    }

    /// The region health answer (status code and JSON body), as served on
    /// the health path.
    pub fn health(&self) -> (u16, String) {
        let snapshot = self.shared.snapshot.load();
        let (code, body) = self.shared.health(&snapshot);
        (code.as_u16(), body)
    }

    /// The metrics registry (for the admin endpoint).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
