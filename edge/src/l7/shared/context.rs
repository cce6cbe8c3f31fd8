//! The per-node context every connection and request shares: the node's
//! identity, clock, serving snapshot, metrics, admission limits, TLS
//! state and drain. It sits below the layers that use it (listener, http,
//! admin, node) and imports none of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use http::{HeaderValue, StatusCode};
use rustls::ServerConfig;

use crate::l7::rules::balance::mix64;
use crate::l7::rules::forward::format_request_id;
use crate::l7::rules::limits::{ConnectionCap, Gate};
use crate::l7::shared::backend_tls::PoolTlsError;
use crate::l7::shared::clock::Clock;
use crate::l7::shared::config::NodeSpec;
use crate::l7::shared::drain::Drain;
use crate::l7::shared::metrics::Metrics;
use crate::l7::shared::state::Snapshot;
use crate::l7::shared::tls::CertStore;

/// The listeners of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP (and h2c).
    Http = 0,
    /// HTTPS.
    Https = 1,
}

impl ListenerKind {
    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Http => "http",
            ListenerKind::Https => "https",
        }
    }
}

/// TLS state kept for the node's life.
#[derive(Debug)]
pub(crate) struct TlsState {
    pub store: Arc<CertStore>,
    pub config: ArcSwap<ServerConfig>,
}

/// What every connection and request of a node shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub node: String,
    pub region: String,
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    pub clock: Clock,
    /// The concurrency gates, indexed by [`ListenerKind`].
    pub gates: [Arc<Gate>; 2],
    pub conn_cap: Arc<ConnectionCap>,
    pub tls: Option<TlsState>,
    pub via: HeaderValue,
    pub drain: Drain,
    /// Seeds the balancers' randomness and the request ids.
    pub seed: u64,
    ids: AtomicU64,
    /// Serializes reloads.
    pub reload: tokio::sync::Mutex<()>,
}

impl Shared {
    /// The context of node `spec`, serving `spec` from now on; fails when
    /// a pool's TLS files cannot be loaded.
    pub fn new(
        spec: NodeSpec,
        metrics: Metrics,
        tls: Option<TlsState>,
        seed: u64,
    ) -> Result<Self, PoolTlsError> {
        let node = spec.node.name.clone();
        let region = spec.region.clone();
        let limits = spec.tier.limits;
        let snapshot = Snapshot::build(spec, None, &metrics, seed)?;
        Ok(Self {
            via: HeaderValue::from_str(&format!("1.1 {node}"))
                .unwrap_or_else(|_| HeaderValue::from_static("1.1 gtm-l7")),
            node,
            region,
            metrics,
            clock: Clock::start(),
            gates: [
                Gate::new(limits.max_requests),
                Gate::new(limits.max_requests),
            ],
            conn_cap: ConnectionCap::new(limits.max_connections_per_client),
            tls,
            drain: Drain::default(),
            seed,
            ids: AtomicU64::new(0),
            reload: tokio::sync::Mutex::new(()),
            snapshot: ArcSwap::from_pointee(snapshot),
        })
    }

    /// Milliseconds since the node started (see [`Clock`]).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A fresh request id: 128 bits, unique per node and start.
    pub fn new_request_id(&self) -> HeaderValue {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format_request_id(mix64(self.seed ^ n), mix64(self.seed.rotate_left(17) ^ !n))
    }

    /// The region health answer for `snapshot`: 200 while every routed
    /// critical pool has an available server (see [`Snapshot::can_serve`])
    /// and the node is not draining, else 503; the JSON body says which
    /// pools can serve, critical or not.
    pub fn health(&self, snapshot: &Snapshot) -> (StatusCode, String) {
        let now = self.now_ms();
        let draining = self.drain.phase().health_fails();
        let healthy = !draining && snapshot.can_serve(now);
        let body = admin::api::l7::Health {
            node: self.node.clone(),
            region: self.region.clone(),
            healthy,
            draining,
            pools: snapshot
                .pools
                .iter()
                .map(|p| (p.config.name.clone(), p.can_serve(now)))
                .collect(),
        };
        let body = serde_json::to_string(&body).expect("plain strings and booleans serialize");
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, format!("{body}\n"))
    }
}
