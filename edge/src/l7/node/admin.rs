//! The node's admin endpoint, served by the shared `admin` crate:
//! `GET /metrics`, `GET /v1/status` (pools and servers with their health,
//! as JSON), the region health path (so the L4 tier can probe a node
//! through its admin address, which needs no PROXY header), and the
//! operator's server controls (token-protected): `POST
//! /v1/pools/POOL/servers/ADDR/drain` and `…/undrain`, `PUT …/weight`,
//! each saved to the node's state file when it has one.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::info;

use admin::api::l7 as api;

use admin::{Access, AdminConfig, AdminServer, Method, Request, Response, Router, StatusCode};

use crate::l7::node::state_file::ServerStateFile;
use crate::l7::shared::context::Shared;
use crate::l7::shared::pool::ServerState;

/// The admin server of the node of `shared`, exporting `registry`.
pub(crate) fn server(
    listener: TcpListener,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    state_file: Option<Arc<ServerStateFile>>,
) -> anyhow::Result<AdminServer> {
    let health_path = shared.snapshot.load().spec.tier.health_path.clone();
    let health = shared.clone();
    let operator = Operator {
        shared: shared.clone(),
        state_file,
    };
    let (drain, undrain, weight) = (operator.clone(), operator.clone(), operator);
    let router = Router::new()
        .post(SERVER_DRAIN, move |request| {
            let operator = drain.clone();
            async move { operator.control(&request, Control::Drain(true)).await }
        })
        .post(SERVER_UNDRAIN, move |request| {
            let operator = undrain.clone();
            async move { operator.control(&request, Control::Drain(false)).await }
        })
        .route(
            Method::PUT,
            SERVER_WEIGHT,
            Access::Mutate,
            move |request: Request| {
                let operator = weight.clone();
                async move {
                    match request.json::<api::WeightRequest>() {
                        Ok(api::WeightRequest { weight: Some(0) }) => Response::error(
                            StatusCode::BAD_REQUEST,
                            "weight 0 would starve the server; drain it instead (POST …/drain)",
                        ),
                        Ok(body) => {
                            operator
                                .control(&request, Control::Weight(body.weight))
                                .await
                        }
                        Err(response) => response,
                    }
                }
            },
        )
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

const SERVER_DRAIN: &str = "/v1/pools/{pool}/servers/{server}/drain";
const SERVER_UNDRAIN: &str = "/v1/pools/{pool}/servers/{server}/undrain";
const SERVER_WEIGHT: &str = "/v1/pools/{pool}/servers/{server}/weight";

/// An operator's change to one server.
#[derive(Debug, Clone, Copy)]
enum Control {
    /// Drain (`true`) or return to service.
    Drain(bool),
    /// Set the weight, or return to the configured one.
    Weight(Option<u32>),
}

/// What the operator's controls act on: the servers of the snapshot
/// serving now, and the state file that keeps their changes.
#[derive(Clone)]
struct Operator {
    shared: Arc<Shared>,
    state_file: Option<Arc<ServerStateFile>>,
}

impl Operator {
    /// Applies `control` to the server the request's path names, in the
    /// snapshot serving now (a reload carries the change over), and saves it
    /// to the state file.
    async fn control(&self, request: &Request, control: Control) -> Response {
        let shared = &self.shared;
        let (Some(pool_name), Some(server_name)) = (request.param("pool"), request.param("server"))
        else {
            return Response::error(StatusCode::NOT_FOUND, "no such route");
        };
        let snapshot = shared.snapshot.load_full();
        let Some(pool) = snapshot.pools.iter().find(|p| p.config.name == pool_name) else {
            let known: Vec<&str> = snapshot
                .pools
                .iter()
                .map(|p| p.config.name.as_str())
                .collect();
            return Response::error(
                StatusCode::NOT_FOUND,
                &format!("unknown pool {pool_name:?}; pools: {}", known.join(", ")),
            );
        };
        let Some(server) = server_name.parse().ok().and_then(|addr| pool.server(addr)) else {
            let known: Vec<String> = pool.servers().map(|s| s.addr.to_string()).collect();
            return Response::error(
                StatusCode::NOT_FOUND,
                &format!(
                    "pool {pool_name:?} has no server {server_name:?}; servers: {}",
                    known.join(", ")
                ),
            );
        };
        match control {
            Control::Drain(drained) => {
                if server.set_drained(drained) {
                    info!(pool = %pool_name, server = %server.addr, in_flight = server.in_flight(), drained, "server drain changed by the operator");
                }
            }
            Control::Weight(weight) => {
                server.set_weight(weight);
                info!(pool = %pool_name, server = %server.addr, weight = server.weight(), "server weight changed by the operator");
            }
        }
        let server = server_status(server, shared.now_ms());
        let warning = match &self.state_file {
            None => None,
            Some(file) => file.save_logged(snapshot.clone()).await.err(),
        };
        Response::ok_json(&api::ServerChange {
            node: shared.node.clone(),
            pool: pool_name.to_owned(),
            server,
            warning,
        })
    }
}

/// One server as `/v1/status` shows it at `now`.
fn server_status(s: &ServerState, now: u64) -> api::Server {
    api::Server {
        addr: s.addr.to_string(),
        weight: s.weight(),
        configured_weight: s.configured_weight,
        drained: s.drained(),
        connections: s.metrics.connections.get(),
        backup: s.backup,
        health: if s.probe_up() { "up" } else { "down" }.to_owned(),
        ejected: s.ejected(now),
        available: s.available(now),
        in_flight: s.in_flight(),
        latency_ms: s.latency_us() as f64 / 1000.0,
    }
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
            servers: pool.servers().map(|s| server_status(s, now)).collect(),
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
