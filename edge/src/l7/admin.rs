//! The node's admin endpoint, served by the shared `admin` crate:
//! `GET /metrics`, `GET /v1/status` (pools and servers with their health,
//! as JSON) and the region health path (so the L4 tier can probe a node
//! through its admin address, which needs no PROXY header).

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use admin::api::l7 as api;
use admin::{AdminConfig, AdminServer, Response, Router};

use super::context::Shared;

/// The admin server of the node of `shared`, exporting `registry`.
pub(crate) fn server(
    listener: TcpListener,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
) -> anyhow::Result<AdminServer> {
    let health_path = shared.snapshot.load().spec.tier.health_path.clone();
    let health = shared.clone();
    let router = Router::new()
        .get("/v1/status", move |_request| {
            let shared = shared.clone();
            async move { Response::ok_json(&status(&shared)) }
        })
        .get(&health_path, move |_request| {
            let health = health.clone();
            async move {
                let (code, body) = health.health(&health.snapshot.load());
                Response::new(code, "application/json", body)
            }
        })
        .metrics(registry);
    let config = AdminConfig {
        token: admin::Token::from_env()?,
        ..AdminConfig::default()
    };
    Ok(AdminServer::new(listener, router, config)?)
}

/// The node's state (`GET /v1/status`): routes, pools, servers and their
/// health.
pub(crate) fn status(shared: &Shared) -> api::Status {
    let snapshot = shared.snapshot.load();
    let now = shared.now_ms();
    let (code, _) = shared.health(&snapshot);
    let pools = snapshot
        .pools
        .iter()
        .map(|pool| api::Pool {
            name: pool.config.name.clone(),
            algorithm: format!("{:?}", pool.config.algorithm),
            can_serve: pool.can_serve(now),
            servers: pool
                .servers()
                .map(|s| api::Server {
                    addr: s.addr.to_string(),
                    weight: s.weight,
                    backup: s.backup,
                    health: if s.probe_up() { "up" } else { "down" }.to_owned(),
                    ejected: s.ejected(now),
                    available: s.available(now),
                    in_flight: s.in_flight(),
                    latency_ms: s.latency_us() as f64 / 1000.0,
                })
                .collect(),
        })
        .collect();
    let routes = snapshot
        .router
        .rules()
        .iter()
        .map(|r| api::Route {
            rule: r.label.clone(),
            pool: r.pool_name(&snapshot.spec.tier).to_owned(),
        })
        .collect();
    let phase = shared.drain.phase();
    api::Status {
        node: shared.node.clone(),
        region: shared.region.clone(),
        healthy: code.is_success(),
        draining: phase.health_fails(),
        accepting: phase.accepting(),
        routes,
        pools,
    }
}
