//! The L4 node's admin API: `GET /v1/status` (shaped by
//! `admin::api::l4`), `GET /readyz`, `POST /v1/reload` and the `admin`
//! crate's `/healthz` (liveness) and `/metrics`.
//!
//! `GET /readyz` is the node's readiness for holding the VIP, what
//! `edge check` (keepalived's track script) and `edge announce` (BIRD)
//! poll: 200 and one line `ready: …` while at least one L7 node is healthy
//! in the published table and the node is not draining; 503 and one line
//! `not ready: …` saying which of the two is missing. An L7 node whose
//! first probe has not answered yet counts as its health check's initial
//! state (up by default).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use admin::{Request, Response, Router, StatusCode};
use probe::{Health, Prober};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::l4::control::ReloadRequest;
use crate::l4::state::Shared;

/// `GET /v1/status`, as `gtm` reads it.
pub use admin::api::l4::{L7Status, Status, TableStatus};

/// The status as it is now.
pub(crate) fn status(shared: &Shared, prober: &Prober) -> Status {
    let snapshot = shared.snapshot.load();
    let counts = snapshot.selection.slot_counts();
    let slots_of = |name: &str| {
        snapshot
            .selection
            .payloads()
            .iter()
            .position(|b| &*b.name == name)
            .and_then(|i| counts.get(i).copied())
    };
    let l7_nodes = snapshot
        .nodes
        .iter()
        .map(|view| {
            let b = &view.backend;
            let probe = prober.status(&b.name);
            let health = match probe.as_ref().map(|p| p.health) {
                Some(Health::Down) => "down",
                _ => "up",
            };
            let slots = slots_of(&b.name);
            L7Status {
                name: b.name.to_string(),
                address: b.address.to_string(),
                weight: b.weight,
                health: health.to_owned(),
                in_table: slots.is_some(),
                slots: slots.unwrap_or(0),
                active_connections: b.metrics.active.get(),
                udp_flows: b.metrics.udp.active.get(),
                last_probe: probe.and_then(|p| p.last.as_ref().map(ToString::to_string)),
            }
        })
        .collect();
    Status {
        node: shared.node.to_string(),
        region: snapshot.region.to_string(),
        listeners: shared.listeners.iter().map(ToString::to_string).collect(),
        open_connections: shared.open.load(Ordering::Relaxed),
        udp_flows: shared.metrics.udp_open.get(),
        table: TableStatus {
            generation: snapshot.generation,
            size: snapshot.selection.table_size(),
            backends: snapshot.selection.payloads().len(),
        },
        l7_nodes,
    }
}

/// Whether the node can serve the VIP now (`Ok`) or not (`Err`), with
/// the one-line reason `/readyz` answers. `draining`: shutdown has begun.
pub(crate) fn readiness(shared: &Shared, draining: bool) -> Result<String, String> {
    let snapshot = shared.snapshot.load();
    let healthy = snapshot.selection.payloads().len();
    let configured = snapshot.nodes.len();
    if draining {
        Err(format!(
            "not ready: draining (shutting down; {} connections open)",
            shared.open.load(Ordering::Relaxed)
        ))
    } else if healthy == 0 {
        Err(format!(
            "not ready: no L7 node is healthy (0 of {configured} in the table)"
        ))
    } else {
        Ok(format!(
            "ready: {healthy} of {configured} L7 nodes healthy in the table"
        ))
    }
}

/// The admin routes of an L4 node; `/readyz` says "draining" once
/// `shutdown` is cancelled.
pub(crate) fn router(
    shared: Arc<Shared>,
    prober: Arc<Prober>,
    reloads: mpsc::Sender<ReloadRequest>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Router {
    let ready_shared = Arc::clone(&shared);
    Router::new()
        .metrics(registry)
        .get("/v1/status", move |_req: Request| {
            let body = status(&shared, &prober);
            async move { Response::ok_json(&body) }
        })
        .get("/readyz", move |_req: Request| {
            let answer = match readiness(&ready_shared, shutdown.is_cancelled()) {
                Ok(reason) => Response::text(StatusCode::OK, reason + "\n"),
                Err(reason) => Response::text(StatusCode::SERVICE_UNAVAILABLE, reason + "\n"),
            };
            async move { answer }
        })
        .post("/v1/reload", move |_req: Request| {
            let reloads = reloads.clone();
            async move {
                let (reply, answer) = oneshot::channel();
                if reloads.send(reply).await.is_err() {
                    return Response::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the node is shutting down",
                    );
                }
                match answer.await {
                    Ok(Ok(summary)) => Response::ok_json(&summary),
                    Ok(Err(e)) => Response::error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!("reload refused, the previous configuration keeps running: {e}"),
                    ),
                    Err(_) => Response::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the node is shutting down",
                    ),
                }
            }
        })
}
