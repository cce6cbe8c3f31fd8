//! The L4 node's admin API: `GET /v1/status`, `POST /v1/reload` and the
//! `admin` crate's `/healthz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use admin::{Request, Response, Router, StatusCode};
use probe::{Health, Prober};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::l4::control::ReloadRequest;
use crate::l4::state::Shared;

/// `GET /v1/status`: the node, its table and its L7 nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This L4 node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// The VIP addresses listened on.
    pub listeners: Vec<String>,
    /// Client connections open now.
    pub open_connections: usize,
    /// The Maglev table.
    pub table: TableStatus,
    /// Every configured L7 node, in file order.
    pub l7_nodes: Vec<L7Status>,
}

/// The published Maglev table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStatus {
    /// Grows by one per rebuild.
    pub generation: u64,
    /// Slots (`M`).
    pub size: u32,
    /// L7 nodes in the table (healthy, weight above 0).
    pub backends: usize,
}

/// One L7 node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7Status {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Configured weight (0: drained).
    pub weight: u32,
    /// `up` or `down`, as the health checks say.
    pub health: String,
    /// Whether new connections can go to it.
    pub in_table: bool,
    /// Its share of the table, in slots.
    pub slots: u32,
    /// Connections to it open now.
    pub active_connections: i64,
    /// The latest probe, e.g. `ok in 1ms: HTTP 200`.
    pub last_probe: Option<String>,
}

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
