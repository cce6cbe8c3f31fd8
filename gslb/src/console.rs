//! The status page every GSLB node serves on its admin address: `GET /`
//! (HTML, CSS and JavaScript embedded in the binary: no CDN, no build step)
//! and `GET /v1/console`, what the page polls besides `/v1/status`.
//!
//! `/v1/console` gathers what the browser cannot fetch itself (other
//! origins, other processes): every edge node's status and metrics
//! ([`edges`]), what DNS answers now for a representative client on each
//! continent (the [`geo_data::samples`] networks, run through the same
//! [`crate::explain`] path as `/v1/explain`: the decision is never
//! restated here), and the recent region transitions ([`changes`]).
//!
//! The page changes state only through the existing token-protected
//! `POST /v1/regions/{region}/fail` and `/recover` routes; it asks for the
//! token in a password field and keeps it in a JavaScript variable, never
//! in the page or in storage.

pub mod changes;
pub mod edges;

use std::net::IpAddr;
use std::sync::Arc;

use admin::{Request, Response, Router, StatusCode};
use serde::Serialize;
use topology::{RecordType, Topology};

use crate::client::Client;
use crate::node::{Node, now_ms};

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_CSS: &str = include_str!("console/console.css");
const CONSOLE_JS: &str = include_str!("console/console.js");

/// `GET /v1/console`.
#[derive(Debug, Serialize)]
pub struct Console {
    /// The node answering.
    pub node: String,
    /// The gslb build's version.
    pub build: &'static str,
    /// Its clock (ms since the Unix epoch), so the page computes ages and
    /// rates against the server's time, not the browser's.
    pub now_ms: u64,
    /// The geo name the continents' answers are for (the first one of the
    /// topology), absolute.
    pub name: Option<String>,
    /// One representative client per continent and its answer.
    pub continents: Vec<ContinentAnswer>,
    /// Recent region transitions, newest first.
    pub changes: Vec<changes::Change>,
    /// Every L4 and L7 node.
    pub edges: Vec<edges::Edge>,
}

/// What a client on one continent is answered now.
#[derive(Debug, Serialize)]
pub struct ContinentAnswer {
    /// The continent code (`EU`, …).
    pub continent: &'static str,
    /// The client's country.
    pub place: &'static str,
    /// The client address asked about.
    pub client: &'static str,
    /// The answer records, as `/v1/explain` spells them.
    pub answers: Vec<String>,
    /// The regions whose VIPs are answered, in answer order.
    pub regions: Vec<String>,
    /// The rule that chose them.
    pub rule: Option<String>,
    /// Why there is no answer.
    pub error: Option<String>,
}

/// Adds the page's routes to `router`.
pub fn routes(router: Router, node: Arc<Node>) -> Router {
    // Built once: reqwest pools connections to the edge nodes across polls.
    // Without a client the page still works and shows every node
    // unreachable, with the reason.
    let client = probe::plain_http_client()
        .timeout(edges::TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"));
    if let Err(error) = &client {
        tracing::warn!("status page: {error}; edge nodes will show as unreachable");
    }
    let client = Arc::new(client);
    router
        .get("/", |_req: Request| async {
            asset("text/html; charset=utf-8", INDEX_HTML)
        })
        .get("/console.css", |_req: Request| async {
            asset("text/css; charset=utf-8", CONSOLE_CSS)
        })
        .get("/console.js", |_req: Request| async {
            asset("text/javascript; charset=utf-8", CONSOLE_JS)
        })
        .get("/v1/console", move |_req: Request| {
            let node = node.clone();
            let client = client.clone();
            async move { Response::ok_json(&console(&node, &client).await) }
        })
}

/// An embedded asset, with headers that keep the page to its own origin:
/// no inline script, no framing, no referrer leaking the admin address.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    Response::new(StatusCode::OK, content_type, body)
        .with_header(
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-cache")
}

async fn console(node: &Node, client: &Result<reqwest::Client, String>) -> Console {
    let topology = node.topology();
    let edges = edges::gather(client.as_ref().map_err(String::as_str), &topology, |_| true).await;
    let name = first_geo_name(&topology);
    Console {
        node: node.options.node.clone(),
        build: env!("CARGO_PKG_VERSION"),
        now_ms: now_ms(),
        continents: match &name {
            Some(name) => continents(node, &topology, name),
            None => Vec::new(),
        },
        name,
        changes: node.metrics.changes().newest_first(),
        edges,
    }
}

/// The first geo name of the first zone that has one.
fn first_geo_name(topology: &Topology) -> Option<String> {
    topology
        .dns
        .zones
        .iter()
        .find_map(|zone| zone.geo.first())
        .map(|geo| geo.name.to_string())
}

fn continents(node: &Node, topology: &Topology, name: &str) -> Vec<ContinentAnswer> {
    let state = node.state.load();
    let health = node.monitor.view.load();
    geo_data::samples::one_per_continent()
        .into_iter()
        .map(|network| {
            let client = Client::new(network.ip(), None).expect("no ECS option to reject");
            let explained = crate::explain::explain(&state, &health, name, RecordType::A, client);
            let (answers, rule, error) = match explained {
                Ok(e) => (e.answers().to_vec(), e.rule(), None),
                Err(error) => (Vec::new(), None, Some(error)),
            };
            ContinentAnswer {
                continent: network.continent,
                place: network.place,
                client: network.address,
                regions: answers
                    .iter()
                    .filter_map(|record| region_of(topology, record))
                    .collect(),
                answers,
                rule,
                error,
            }
        })
        .collect()
}

/// The region whose VIP an answer record (`www.example.com. 30 IN A
/// 127.0.1.1`) carries.
fn region_of(topology: &Topology, record: &str) -> Option<String> {
    let ip: IpAddr = record.split_whitespace().last()?.parse().ok()?;
    topology
        .regions
        .iter()
        .find(|r| r.vip.ipv4.map(IpAddr::V4) == Some(ip) || r.vip.ipv6.map(IpAddr::V6) == Some(ip))
        .map(|r| r.name.clone())
}
