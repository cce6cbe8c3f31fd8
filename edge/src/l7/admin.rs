//! The node's admin endpoint, served by the shared `admin` crate:
//! `GET /metrics`, `GET /v1/status` (pools and servers with their health,
//! as JSON) and the region health path (so the L4 tier can probe a node
//! through its admin address, which needs no PROXY header).

use tokio::net::TcpListener;

use admin::{AdminConfig, AdminServer, Response, Router, StatusCode};

use super::node::Handle;

/// The admin server of the node behind `handle`.
pub fn server(listener: TcpListener, handle: Handle) -> anyhow::Result<AdminServer> {
    let health_path = handle.health_path();
    let status = handle.clone();
    let health = handle.clone();
    let router = Router::new()
        .get("/v1/status", move |_request| {
            let status = status.clone();
            async move { Response::ok_json(&status.status()) }
        })
        .get(&health_path, move |_request| {
            let health = health.clone();
            async move {
                let (code, body) = health.health();
                Response::new(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    "application/json",
                    body,
                )
            }
        })
        .metrics(handle.registry());
    let config = AdminConfig {
        token: admin::Token::from_env()?,
        ..AdminConfig::default()
    };
    Ok(AdminServer::new(listener, router, config)?)
}
