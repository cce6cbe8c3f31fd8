//! The serving state: one immutable snapshot of routes, pools and limits,
//! published through an `ArcSwap` and replaced whole on reload.

use std::sync::Arc;

use super::config::NodeSpec;
use super::http::upstream::Upstream;
use super::limits::RateLimiter;
use super::metrics::{Metrics, RouteMetrics};
use super::pool::PoolState;
use super::route::Router;

/// What requests are served with. Requests in flight keep the snapshot
/// they started with; new requests see the new one at once.
#[derive(Debug)]
pub struct Snapshot {
    /// The node's configuration.
    pub spec: NodeSpec,
    /// The routing rules.
    pub router: Router,
    /// Metric handles per rule, parallel to `router.rules()`.
    pub routes: Vec<RouteMetrics>,
    /// The pools, indexed as in the configuration.
    pub pools: Vec<Arc<PoolState>>,
    /// The per-client rate limiter, if configured.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// The backend client (connection pools).
    pub upstream: Arc<Upstream>,
    /// Metrics for requests no rule matched.
    pub unrouted: RouteMetrics,
}

impl Snapshot {
    /// Builds the state for `spec`, carrying over from `previous` what must
    /// survive a reload: servers' live state (same pool name and address),
    /// the rate limiter's buckets (same limit) and the backend connection
    /// pools (same timeouts).
    pub fn build(
        spec: NodeSpec,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        seed: u64,
    ) -> Self {
        let tier = &spec.tier;
        let pools: Vec<Arc<PoolState>> = tier
            .pools
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let old =
                    previous.and_then(|p| p.pools.iter().find(|o| o.config.name == config.name));
                Arc::new(PoolState::new(
                    config,
                    old.map(Arc::as_ref),
                    metrics,
                    seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ))
            })
            .collect();
        let router = Router::new(&tier.routes);
        let routes = router
            .rules()
            .iter()
            .map(|rule| metrics.route(&rule.label, &tier.pools[rule.pool].name))
            .collect();
        let rate_limiter = match (&tier.rate_limit, previous) {
            (None, _) => None,
            (Some(limit), Some(prev)) if prev.spec.tier.rate_limit.as_ref() == Some(limit) => {
                prev.rate_limiter.clone()
            }
            (Some(limit), _) => Some(Arc::new(RateLimiter::new(limit))),
        };
        let upstream = match previous {
            Some(prev) if prev.upstream.fits(&tier.timeouts) => prev.upstream.clone(),
            _ => Upstream::new(&tier.timeouts),
        };
        Self {
            unrouted: metrics.route("none", "none"),
            spec,
            router,
            routes,
            pools,
            rate_limiter,
            upstream,
        }
    }

    /// Whether every pool a route uses has an available server: what the
    /// region health endpoint reports.
    pub fn can_serve(&self, now_ms: u64) -> bool {
        !self.router.rules().is_empty()
            && self
                .router
                .rules()
                .iter()
                .all(|rule| self.pools[rule.pool].can_serve(now_ms))
    }
}
