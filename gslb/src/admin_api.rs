//! The node's admin API (on the `admin` crate's server): status, peer
//! views, overrides, reload, explanations and metrics. The JSON shapes
//! are `admin::api::gslb`'s, which `gtm` reads.
//!
//! Routes:
//! - `GET /v1/status`: regions with each vantage point's view, overrides,
//!   config version and reload outcome, start time, query rate.
//! - `GET /v1/view`: this node's own probe view and override slots, polled
//!   by its peers; signed for the `x-gtm-nonce` they send when the node
//!   has a `dns.peer_key` (see [`crate::peer`]).
//! - `POST /v1/regions/{region}/fail` (body `{"mode": "fail"|"drain",
//!   "reason": "…"}`, both optional) and `POST /v1/regions/{region}/recover`.
//! - `POST /v1/reload`: re-read the topology file.
//! - `GET /v1/explain?name=&client=&type=`: the decision trace.
//! - `GET /v1/what-if?fail=R1,R2&recover=R3&client=IP1,IP2`: the answers
//!   that would change (see [`crate::what_if`]); nothing is changed.
//! - `GET /metrics`, `GET /healthz`.
//! - `GET /` and `GET /v1/console`: the status page ([`crate::console`]).

use std::net::IpAddr;
use std::sync::Arc;

use admin::api::gslb::{self as api, OverrideMode};
use admin::{Request, Response, Router, StatusCode};
use topology::{RecordType, RegionId, Topology};

use crate::client::Client;
use crate::monitor::RegionStatus;
use crate::node::Node;
use crate::peer::{NONCE_HEADER, SIGNATURE_HEADER};
use crate::what_if::{Scenario, what_if};

/// The routes of the admin API for `node`.
pub fn router(node: Arc<Node>) -> Router {
    let registry = node.metrics.registry();
    let status = node.clone();
    let view = node.clone();
    let fail = node.clone();
    let recover = node.clone();
    let reload = node.clone();
    let explain = node.clone();
    let what_if = node.clone();
    crate::console::routes(Router::new(), node)
        .get("/v1/status", move |_req: Request| {
            let node = status.clone();
            async move { Response::ok_json(&status_of(&node)) }
        })
        .get("/v1/view", move |req: Request| {
            let node = view.clone();
            async move {
                let (body, signature) = node.monitor.signed_view(req.header(NONCE_HEADER));
                let response = Response::new(StatusCode::OK, admin::response::JSON, body);
                match signature {
                    Some(signature) => response.with_header(SIGNATURE_HEADER, signature),
                    None => response,
                }
            }
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
                    &api::ReloadResult {
                        ok: outcome.is_ok(),
                        error: outcome.err().map(|e| e.to_string()),
                    },
                )
            }
        })
        .get("/v1/explain", move |req: Request| {
            let node = explain.clone();
            async move { explain_for(&node, &req) }
        })
        .get("/v1/what-if", move |req: Request| {
            let node = what_if.clone();
            async move { what_if_for(&node, &req).await }
        })
        .metrics(registry)
}

fn status_of(node: &Node) -> api::Status {
    let topology = node.topology();
    let health = node.monitor.status();
    let regions = health
        .regions
        .iter()
        .map(|status| {
            let vip = topology
                .region_by_name(&status.name)
                .map(|id| topology.region(id).vip);
            region_of(
                status,
                api::Vip {
                    ipv4: vip.and_then(|v| v.ipv4).map(|a| a.to_string()),
                    ipv6: vip.and_then(|v| v.ipv6).map(|a| a.to_string()),
                },
            )
        })
        .collect();
    let region = topology
        .dns
        .nodes
        .iter()
        .find(|n| n.name == node.options.node)
        .and_then(|n| n.region)
        .map(|id| topology.region(id).name.clone());
    let config = node.config.load();
    api::Status {
        node: node.options.node.clone(),
        region,
        started_at_ms: node.started_at_ms,
        config: api::Config {
            version: config.version.clone(),
            loaded_at_ms: config.loaded_at_ms,
            last_reload: config.last_reload.as_ref().map(|r| api::Reload {
                ok: r.ok,
                error: r.error.clone(),
                at_ms: r.at_ms,
            }),
        },
        regions,
        queries: api::Queries {
            total: node.metrics.queries_total(),
            per_second: node.queries_per_second(),
        },
    }
}

/// The monitor's picture of one region, as the API spells it.
fn region_of(status: &RegionStatus, vip: api::Vip) -> api::Region {
    api::Region {
        name: status.name.clone(),
        vip,
        verdict: status.verdict.to_owned(),
        override_mode: status.override_mode.map(str::to_owned),
        override_reason: status.override_reason.clone(),
        in_service: status.in_service,
        since_ms: status.since_ms,
        quorum: Some(api::Quorum {
            up_votes: status.up_votes,
            fresh_views: status.fresh_views,
        }),
        vantage: status
            .vantage
            .iter()
            .map(|v| api::Vantage {
                node: v.node.clone(),
                state: v.state.to_owned(),
                fresh: v.fresh,
                abstains: v.abstains,
                last: v.last.as_ref().map(|p| api::Probe {
                    ok: p.ok,
                    detail: p.detail.clone(),
                    latency_ms: p.latency_ms,
                    at_ms: p.at_ms,
                }),
                flaps_last_hour: v.flaps_last_hour,
            })
            .collect(),
        load: status.load.clone(),
    }
}

/// The region named in the path, or the 404 to answer.
fn known_region(node: &Node, req: &Request) -> Result<String, Response> {
    let name = req.param("region").unwrap_or_default();
    region_id(&node.topology(), name).map(|_| name.to_owned())
}

/// The region called `name`, or the 404 naming the regions there are.
fn region_id(topology: &Topology, name: &str) -> Result<RegionId, Response> {
    topology.region_by_name(name).ok_or_else(|| {
        let known: Vec<&str> = topology.regions.iter().map(|r| r.name.as_str()).collect();
        Response::error(
            StatusCode::NOT_FOUND,
            &format!("unknown region {name:?}; regions: {}", known.join(", ")),
        )
    })
}

/// The comma-separated items of query parameter `name`.
fn list<'r>(req: &'r Request, name: &str) -> impl Iterator<Item = &'r str> {
    req.query(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Parses the scenario and computes it off the runtime's threads: it
/// decides for every location of the GeoIP database, which for a city
/// database takes a while.
async fn what_if_for(node: &Node, req: &Request) -> Response {
    let topology = node.topology();
    let mut scenario = Scenario::default();
    for name in list(req, "fail") {
        match region_id(&topology, name) {
            Ok(id) => scenario.fail.push(id),
            Err(response) => return response,
        }
    }
    for name in list(req, "recover") {
        match region_id(&topology, name) {
            Ok(id) => scenario.recover.push(id),
            Err(response) => return response,
        }
    }
    let mut clients = Vec::new();
    for text in list(req, "client") {
        match text.parse::<IpAddr>() {
            Ok(ip) => clients.push(ip),
            Err(_) => {
                return Response::error(
                    StatusCode::BAD_REQUEST,
                    &format!("client {text:?} is not an IP address; write e.g. client=203.0.113.7"),
                );
            }
        }
    }
    let state = node.state.load_full();
    let health = node.monitor.view.load_full();
    let asked = scenario.clone();
    let computed = tokio::task::spawn_blocking(move || what_if(&state, &health, &asked, &clients));
    let prediction = match computed.await {
        Ok(answer) => answer,
        Err(error) => {
            return Response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the what-if computation failed: {error}"),
            );
        }
    };
    let name_of = |id: &RegionId| topology.region(*id).name.clone();
    Response::ok_json(&api::WhatIf {
        node: node.options.node.clone(),
        fail: scenario.fail.iter().map(name_of).collect(),
        recover: scenario.recover.iter().map(name_of).collect(),
        names: prediction.names,
        clients: prediction.clients,
        receivers: prediction.receivers,
    })
}

fn fail_region(node: &Node, req: &Request) -> Response {
    let region = match known_region(node, req) {
        Ok(region) => region,
        Err(response) => return response,
    };
    let body: api::OverrideRequest = if req.body().is_empty() {
        api::OverrideRequest::default()
    } else {
        match req.json() {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
    let mode = body.mode.unwrap_or(OverrideMode::Fail);
    let persisted = node.monitor.set_override(&region, mode, body.reason);
    Response::ok_json(&api::OverrideChange {
        region,
        override_mode: Some(mode),
        persisted: persisted.is_ok(),
        warning: persisted.err().map(|e| e.to_string()),
    })
}

fn recover_region(node: &Node, req: &Request) -> Response {
    let region = match known_region(node, req) {
        Ok(region) => region,
        Err(response) => return response,
    };
    let persisted = node.monitor.clear_override(&region);
    Response::ok_json(&api::OverrideChange {
        region,
        override_mode: None,
        persisted: persisted.is_ok(),
        warning: persisted.err().map(|e| e.to_string()),
    })
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
        Ok(explanation) => Response::ok_json(&api::Explanation {
            text: explanation.to_string(),
            answers: explanation.answers().to_vec(),
            rule: explanation.rule(),
            scope: explanation.scope(),
        }),
        Err(error) => Response::error(StatusCode::BAD_REQUEST, &error),
    }
}
