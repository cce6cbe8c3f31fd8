//! The L4 node's admin API: `GET /v1/status` (shaped by
//! `admin::api::l4`), `POST /v1/reload` and the `admin` crate's `/healthz`
//! and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use admin::{Request, Response, Router, StatusCode};
use probe::{Health, Prober};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

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
                last_probe: probe.and_then(|p| p.last.as_ref().map(ToString::to_string)),
            }
        })
        .collect();
    Status {
        node: shared.node.to_string(),
        region: snapshot.region.to_string(),
        listeners: shared.listeners.iter().map(ToString::to_string).collect(),
        open_connections: shared.open.load(Ordering::Relaxed),
        table: TableStatus {
            generation: snapshot.generation,
            size: snapshot.selection.table_size(),
            backends: snapshot.selection.payloads().len(),
        },
        l7_nodes,
    }
}

/// The admin routes of an L4 node.
pub(crate) fn router(
    shared: Arc<Shared>,
    prober: Arc<Prober>,
    reloads: mpsc::Sender<ReloadRequest>,
    registry: Arc<Registry>,
) -> Router {
    Router::new()
        .metrics(registry)
        .get("/v1/status", move |_req: Request| {
            let body = status(&shared, &prober);
            async move { Response::ok_json(&body) }
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
