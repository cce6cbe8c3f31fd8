//! An L7 node's admin API: `GET /v1/status`, the body of its region health
//! path, the operator's per-server controls (drain, weight), and the names
//! of the metrics `gtm` reads from its `/metrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The prefix of every metric an L7 node exports.
pub const METRICS_PREFIX: &str = "edge_l7";

/// The name (under [`METRICS_PREFIX`]) of the counter of requests
/// answered, labelled by route, pool and status class.
pub const REQUESTS: &str = "requests";

/// [`REQUESTS`] as it appears on the `/metrics` page: prefixed, and with the
/// `_total` suffix of a counter. `gtm status` sums its samples into the
/// region's request rate.
pub const REQUESTS_TOTAL: &str = "edge_l7_requests_total";

/// `GET /v1/status`: the node, its routes, and its pools with their
/// servers' health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Whether the region health path answers 200.
    pub healthy: bool,
    /// Whether the node is draining (shutting down).
    pub draining: bool,
    /// Whether it still accepts connections.
    pub accepting: bool,
    /// The routing rules, in match order.
    pub routes: Vec<Route>,
    /// Every pool, in file order.
    pub pools: Vec<Pool>,
}

/// One routing rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The rule as written (`*/api`, …).
    pub rule: String,
    /// The pool it sends to.
    pub pool: String,
}

/// One pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// The balancing algorithm, as the node spells it.
    pub algorithm: String,
    /// Whether a server is available to it now.
    pub can_serve: bool,
    /// Its servers, in file order.
    pub servers: Vec<Server>,
}

/// One server of a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Its address.
    pub addr: String,
    /// The weight it balances with: the operator's if set, else the
    /// configured one.
    pub weight: u32,
    /// Its weight in the topology.
    #[serde(default)]
    pub configured_weight: u32,
    /// Whether an operator drained it: it takes no new request.
    #[serde(default)]
    pub drained: bool,
    /// Open connections to it (idle or busy).
    #[serde(default)]
    pub connections: i64,
    /// Whether it serves only when no primary can.
    pub backup: bool,
    /// `up` or `down`, as the health checks say.
    pub health: String,
    /// Whether passive checks have ejected it for now.
    pub ejected: bool,
    /// Whether it can take a request now.
    pub available: bool,
    /// Requests to it in flight.
    pub in_flight: u32,
    /// Its smoothed response latency.
    pub latency_ms: f64,
}

/// The path of a server's drain control (`POST`; `…/undrain` undoes it):
/// `/v1/pools/POOL/servers/ADDR/drain`. `ADDR` is the server's address as
/// the topology writes it (percent-encoded: `[` `]` of IPv6 as `%5B` `%5D`).
pub fn server_path(pool: &str, server: &str, control: &str) -> String {
    format!(
        "/v1/pools/{}/servers/{}/{control}",
        encode(pool),
        encode(server)
    )
}

/// Percent-encodes what a path segment cannot hold as is.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `PUT /v1/pools/POOL/servers/ADDR/weight`: the weight the server
/// balances with from now on (at least 1), or `null` to return to the
/// configured one. Kept across reloads, and across restarts when the node
/// has a state file (`edge l7 --state-file`, which gtm always gives).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightRequest {
    /// The new weight, `None` for the configured one.
    pub weight: Option<u32>,
}

/// The answer of a server control: the server as it is now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerChange {
    /// The node that applied it.
    pub node: String,
    /// The pool.
    pub pool: String,
    /// The server after the change.
    pub server: Server,
    /// Set when the change could not be saved to the node's state file: it
    /// holds until the node restarts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The body of the region health path (200 while `healthy`, else 503).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Every routed critical pool can serve and the node is not draining.
    pub healthy: bool,
    /// Whether the node is draining.
    pub draining: bool,
    /// Whether each pool can serve, by name.
    pub pools: BTreeMap<String, bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_encode_what_a_segment_cannot_hold() {
        assert_eq!(
            server_path("web", "127.0.0.1:9000", "drain"),
            "/v1/pools/web/servers/127.0.0.1:9000/drain"
        );
        assert_eq!(
            server_path("a b", "[::1]:80", "weight"),
            "/v1/pools/a%20b/servers/%5B::1%5D:80/weight"
        );
    }

    #[test]
    fn the_request_counter_is_spelled_from_its_parts() {
        assert_eq!(REQUESTS_TOTAL, format!("{METRICS_PREFIX}_{REQUESTS}_total"));
    }
}
