//! The serving state: one immutable snapshot of routes, pools and limits,
//! published through an `ArcSwap` and replaced whole on reload. It names
//! no HTTP stack: hyper's backend client is the hyper adapter's own
//! ([`crate::l7::path::http::Hyper`]).

use std::sync::Arc;

use crate::l7::rules::limits::RateLimiter;
use crate::l7::rules::route::Router;
use crate::l7::shared::backend_tls::{PoolTls, PoolTlsError};
use crate::l7::shared::config::NodeSpec;
use crate::l7::shared::metrics::{Metrics, RouteMetrics};
use crate::l7::shared::pool::PoolState;

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
    /// Each pool's TLS client (same index), `None` for plain pools.
    pub backend_tls: Vec<Option<Arc<PoolTls>>>,
    /// The per-client rate limiter, if configured.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Metrics for requests no rule matched.
    pub unrouted: RouteMetrics,
}

impl Snapshot {
    /// Builds the state for `spec`, carrying over from `previous` what must
    /// survive a reload: servers' live state (same pool name and address),
    /// the rate limiter's buckets (same limit) and TLS session caches (same
    /// pool and TLS settings). Fails when a pool's TLS files cannot be
    /// loaded.
    pub fn build(
        spec: NodeSpec,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        seed: u64,
    ) -> Result<Self, PoolTlsError> {
        let tier = &spec.tier;
        let backend_tls: Vec<Option<Arc<PoolTls>>> = tier
            .pools
            .iter()
            .map(|pool| {
                let old = previous.and_then(|p| {
                    let index = p.spec.tier.pools.iter().position(|o| o.name == pool.name)?;
                    p.backend_tls[index].clone()
                });
                PoolTls::load(pool, old.as_deref())
            })
            .collect::<Result<_, _>>()?;
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
            .map(|rule| metrics.route(&rule.label, rule.pool_name(tier)))
            .collect();
        let rate_limiter = match (&tier.rate_limit, previous) {
            (None, _) => None,
            (Some(limit), Some(prev)) if prev.spec.tier.rate_limit.as_ref() == Some(limit) => {
                prev.rate_limiter.clone()
            }
            (Some(limit), _) => Some(Arc::new(RateLimiter::new(limit))),
        };
        Ok(Self {
            unrouted: metrics.route("none", "none"),
            spec,
            router,
            routes,
            pools,
            backend_tls,
            rate_limiter,
        })
    }

    /// Whether the region can serve, as the region health path reports it:
    /// some route exists and every critical pool a route uses has an
    /// available server (see [`critical_pools_serve`]).
    pub fn can_serve(&self, now_ms: u64) -> bool {
        !self.router.rules().is_empty()
            && critical_pools_serve(self.router.rules().iter().filter_map(|rule| {
                let pool = &self.pools[rule.pool()?];
                Some((pool.config.critical, pool.can_serve(now_ms)))
            }))
    }
}

/// The region health rule over the routed pools, each given as
/// `(critical, can_serve)`: only critical pools count, so a non-critical
/// pool without a server degrades its routes (503s) without taking the
/// whole region out of DNS; with no critical pool the region is healthy as
/// long as the node runs.
pub fn critical_pools_serve(routed: impl IntoIterator<Item = (bool, bool)>) -> bool {
    routed
        .into_iter()
        .all(|(critical, can_serve)| !critical || can_serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_critical_pools_decide_the_region_health() {
        // (routed pools as (critical, can_serve), health path status)
        let cases: [(&[(bool, bool)], u16); 8] = [
            (&[(true, true)], 200),
            (&[(true, false)], 503),
            (&[(false, false)], 200),
            (&[(false, true)], 200),
            (&[(true, true), (false, false)], 200),
            (&[(true, false), (false, true)], 503),
            (&[(true, true), (true, false)], 503),
            (&[(false, false), (false, false)], 200),
        ];
        for (pools, status) in cases {
            let got = if critical_pools_serve(pools.iter().copied()) {
                200
            } else {
                503
            };
            assert_eq!(got, status, "{pools:?}");
        }
    }
}
