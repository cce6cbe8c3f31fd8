//! The node's admin API (on the `admin` crate's server): status, peer
//! views, overrides, reload, explanations and metrics.
//!
//! Routes:
//! - `GET /v1/status`: regions with each vantage point's view, overrides,
//!   config version and reload outcome, start time, query rate.
//! - `GET /v1/view`: this node's own probe view, polled by its peers.
//! - `POST /v1/regions/{region}/fail` (body `{"mode": "fail"|"drain",
//!   "reason": "…"}`, both optional) and `POST /v1/regions/{region}/recover`.
//! - `POST /v1/reload`: re-read the topology file.
//! - `GET /v1/explain?name=&client=&type=`: the decision trace.
//! - `GET /metrics`, `GET /healthz`.

use std::net::IpAddr;
use std::sync::Arc;

use admin::{Request, Response, Router, StatusCode};
use serde::{Deserialize, Serialize};
use topology::RecordType;

use crate::client::Client;
use crate::monitor::RegionStatus;
use crate::node::{ConfigInfo, Node};
use crate::state_file::OverrideMode;

/// The routes of the admin API for `node`.
pub fn router(node: Arc<Node>) -> Router {
    let registry = node.metrics.registry();
    let status = node.clone();
    let view = node.clone();
    let fail = node.clone();
    let recover = node.clone();
    let reload = node.clone();
    let explain = node;
    Router::new()
        .get("/v1/status", move |_req: Request| {
            let node = status.clone();
            async move { Response::ok_json(&status_of(&node)) }
        })
        .get("/v1/view", move |_req: Request| {
            let node = view.clone();
            async move { Response::ok_json(&node.monitor.own_view()) }
        })
        .post("/v1/regions/{region}/fail", move |req: Request| {
            let node = fail.clone();
            async move { fail_region(&node, &req) }
        })
        .post("/v1/regions/{region}/recover", move |req: Request| {
            let node = recover.clone();
            async move { recover_region(&node, &req) }
        })
        .post("/v1/reload", move |_req: Request| {
            let node = reload.clone();
            async move {
                let outcome = node.reload().await;
                let status = if outcome.is_ok() {
                    StatusCode::OK
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                Response::json(
                    status,
                    &serde_json::json!({ "ok": outcome.is_ok(), "error": outcome.err() }),
                )
            }
        })
        .get("/v1/explain", move |req: Request| {
            let node = explain.clone();
            async move { explain_for(&node, &req) }
        })
        .metrics(registry)
}

#[derive(Serialize)]
struct Status {
    node: String,
    region: Option<String>,
    started_at_ms: u64,
    config: ConfigInfo,
    regions: Vec<RegionReport>,
    queries: Queries,
}

#[derive(Serialize)]
struct RegionReport {
    vip: Vip,
    #[serde(flatten)]
    health: RegionStatus,
}

#[derive(Serialize)]
struct Vip {
    ipv4: Option<String>,
    ipv6: Option<String>,
}

#[derive(Serialize)]
struct Queries {
    total: u64,
    per_second: f64,
}

fn status_of(node: &Node) -> Status {
    let topology = node.topology();
    let health = node.monitor.status();
    let regions = health
        .regions
        .iter()
        .map(|status| {
            let vip = topology
                .region_by_name(&status.name)
                .map(|id| topology.region(id).vip);
            RegionReport {
                vip: Vip {
                    ipv4: vip.and_then(|v| v.ipv4).map(|a| a.to_string()),
                    ipv6: vip.and_then(|v| v.ipv6).map(|a| a.to_string()),
                },
                health: status.clone(),
            }
        })
        .collect();
    let region = topology
        .dns
        .nodes
        .iter()
        .find(|n| n.name == node.options.node)
        .and_then(|n| n.region)
        .map(|id| topology.region(id).name.clone());
    Status {
        node: node.options.node.clone(),
        region,
        started_at_ms: node.started_at_ms,
        config: (**node.config.load()).clone(),
        regions,
        queries: Queries {
            total: node.metrics.queries_total(),
            per_second: node.queries_per_second(),
        },
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    #[serde(default)]
    mode: Option<OverrideMode>,
    #[serde(default)]
    reason: Option<String>,
}

/// The region named in the path, or the 404 to answer.
fn known_region(node: &Node, req: &Request) -> Result<String, Response> {
    let name = req.param("region").unwrap_or_default();
    let topology = node.topology();
    if topology.region_by_name(name).is_some() {
        Ok(name.to_owned())
    } else {
        let known: Vec<&str> = topology.regions.iter().map(|r| r.name.as_str()).collect();
        Err(Response::error(
            StatusCode::NOT_FOUND,
            &format!("unknown region {name:?}; regions: {}", known.join(", ")),
        ))
    }
}

fn fail_region(node: &Node, req: &Request) -> Response {
    let region = match known_region(node, req) {
        Ok(region) => region,
        Err(response) => return response,
    };
    let body: FailBody = if req.body().is_empty() {
        FailBody::default()
    } else {
        match req.json() {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
    let mode = body.mode.unwrap_or(OverrideMode::Fail);
    let persisted = node.monitor.set_override(&region, mode, body.reason);
    Response::ok_json(&serde_json::json!({
        "region": region,
        "override": mode.as_str(),
        "persisted": persisted.is_ok(),
        "warning": persisted.err().map(|e| e.to_string()),
    }))
}

fn recover_region(node: &Node, req: &Request) -> Response {
    let region = match known_region(node, req) {
        Ok(region) => region,
        Err(response) => return response,
    };
    let persisted = node.monitor.clear_override(&region);
    Response::ok_json(&serde_json::json!({
        "region": region,
        "override": null,
        "persisted": persisted.is_ok(),
        "warning": persisted.err().map(|e| e.to_string()),
    }))
}

fn explain_for(node: &Node, req: &Request) -> Response {
    let Some(name) = req.query("name") else {
        return Response::error(StatusCode::BAD_REQUEST, "missing ?name=www.example.com");
    };
    let client: IpAddr = match req.query("client").map(str::parse) {
        Some(Ok(ip)) => ip,
        _ => {
            return Response::error(
                StatusCode::BAD_REQUEST,
                "missing or bad ?client=IP (the client or resolver address)",
            );
        }
    };
    let rtype: RecordType = match req.query("type").unwrap_or("A").parse() {
        Ok(rtype) => rtype,
        Err(error) => return Response::error(StatusCode::BAD_REQUEST, &error),
    };
    let client = Client::new(client, None).expect("no ECS option to reject");
    let state = node.state.load();
    let health = node.monitor.view.load();
    match crate::explain::explain(&state, &health, name, rtype, client) {
        Ok(explanation) => Response::ok_json(&serde_json::json!({
            "text": explanation.to_string(),
            "answers": explanation.answers(),
            "rule": explanation.rule(),
            "scope": explanation.scope(),
        })),
        Err(error) => Response::error(StatusCode::BAD_REQUEST, &error),
    }
}
