//! The edge nodes as the status page shows them: every L4 and L7 node of
//! the topology asked for its admin `/v1/status` and `/metrics`, all at
//! once, each within a short timeout; a node that does not answer is shown
//! "unreachable", never waited for.
//!
//! Counters are passed through as cumulative totals: the page turns two
//! successive samples into rates and latency percentiles over the interval
//! between them, so the GSLB keeps no per-viewer state.

use std::net::SocketAddr;
use std::time::Duration;

use admin::metrics::{Sample, samples};
use serde::Serialize;
use tokio::task::JoinSet;
use topology::{Region, Topology};

/// How long a node has to answer both requests.
pub const TIMEOUT: Duration = Duration::from_millis(800);

/// Which tier a node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An L4 node (the VIP's connection balancer).
    L4,
    /// An L7 node (the HTTP proxy).
    L7,
}

impl Kind {
    /// `L4` or `L7`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::L4 => "L4",
            Kind::L7 => "L7",
        }
    }
}

/// One edge node, as last asked.
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// Its tier.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its admin address.
    pub admin: SocketAddr,
    /// Why it could not be asked; `None` when it answered.
    pub unreachable: Option<String>,
    /// Its `/v1/status` as it answered (the page reads the fields it knows).
    pub status: Option<serde_json::Value>,
    /// Figures read from its `/metrics`.
    pub metrics: Option<Figures>,
}

/// What the page needs from a node's `/metrics`: cumulative counters, the
/// latency histogram and gauges.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Client connections open now.
    pub open_connections: f64,
    /// Client connections accepted (L7) or relayed (L4) so far.
    pub connections_total: f64,
    /// Requests answered so far (L7).
    pub requests_total: f64,
    /// Of those, answered 5xx.
    pub requests_5xx_total: f64,
    /// Request latency histogram, summed over routes: `(le, count)`,
    /// cumulative, in bucket order (L7).
    pub latency_buckets: Vec<(f64, f64)>,
    /// Responses per backend server (L7).
    pub servers: Vec<ServerFigures>,
    /// Served certificates' expiry (L7).
    pub certificates: Vec<Certificate>,
}

/// One backend server's counters on one L7 node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerFigures {
    /// Its pool.
    pub pool: String,
    /// Its address.
    pub server: String,
    /// Responses so far (connect failures count as 5xx).
    pub responses_total: f64,
    /// Of those, 5xx.
    pub responses_5xx_total: f64,
    /// Its response-time histogram: `(le, count)`, cumulative, in bucket
    /// order.
    pub latency_buckets: Vec<(f64, f64)>,
}

/// The histogram `name`'s buckets in one pass over `text`, summed per key
/// that `key` gives a series (series without one are skipped): each
/// `(le, count)` list cumulative, in bucket order.
fn histograms<K: PartialEq>(
    text: &str,
    name: &str,
    key: impl Fn(&Sample) -> Option<K>,
) -> Vec<(K, Vec<(f64, f64)>)> {
    let mut histograms: Vec<(K, Vec<(f64, f64)>)> = Vec::new();
    for sample in samples(text, name) {
        let (Some(key), Some(le)) = (
            key(&sample),
            sample.label("le").and_then(|le| le.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let buckets = match histograms.iter().position(|(k, _)| *k == key) {
            Some(at) => &mut histograms[at].1,
            None => {
                histograms.push((key, Vec::new()));
                &mut histograms.last_mut().expect("just pushed").1
            }
        };
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, count)) => *count += sample.value,
            None => buckets.push((le, sample.value)),
        }
    }
    for (_, buckets) in &mut histograms {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    histograms
}

/// A served certificate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Certificate {
    /// Its first DNS name.
    pub name: String,
    /// Its notAfter (s since the Unix epoch).
    pub expires_at: f64,
}

/// Every edge node of the regions of `topology` that `wanted` picks, in
/// topology order, each asked concurrently; all unreachable, saying why,
/// without a `client`.
pub async fn gather(
    client: Result<&reqwest::Client, &str>,
    topology: &Topology,
    wanted: impl Fn(&Region) -> bool,
) -> Vec<Edge> {
    let mut nodes = Vec::new();
    for region in topology.regions.iter().filter(|r| wanted(r)) {
        for node in region.l4.iter().flat_map(|t| &t.nodes) {
            nodes.push((Kind::L4, node.name.clone(), region.name.clone(), node.admin));
        }
        for node in region.l7.iter().flat_map(|t| &t.nodes) {
            nodes.push((Kind::L7, node.name.clone(), region.name.clone(), node.admin));
        }
    }
    let mut asks = JoinSet::new();
    for (index, (kind, name, region, admin)) in nodes.into_iter().enumerate() {
        let client = client.cloned().map_err(str::to_owned);
        asks.spawn(async move {
            let answer = match &client {
                Ok(client) => tokio::time::timeout(TIMEOUT, ask(client, kind, admin)).await,
                Err(error) => Ok(Err(error.clone())),
            };
            let (unreachable, status, metrics) = match answer {
                Ok(Ok((status, metrics))) => (None, Some(status), Some(metrics)),
                Ok(Err(error)) => (Some(error), None, None),
                Err(_) => (
                    Some(format!("no answer within {} ms", TIMEOUT.as_millis())),
                    None,
                    None,
                ),
            };
            let edge = Edge {
                kind,
                name,
                region,
                admin,
                unreachable,
                status,
                metrics,
            };
            (index, edge)
        });
    }
    let mut edges: Vec<(usize, Edge)> = asks.join_all().await;
    edges.sort_by_key(|(index, _)| *index);
    edges.into_iter().map(|(_, edge)| edge).collect()
}

async fn ask(
    client: &reqwest::Client,
    kind: Kind,
    admin: SocketAddr,
) -> Result<(serde_json::Value, Figures), String> {
    let get = |path: &str| {
        let url = format!("http://{admin}{path}");
        async move {
            let response = client
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("{url}: {}", probe::request_error(&e)))?;
            response
                .text()
                .await
                .map_err(|e| format!("{url}: {}", probe::request_error(&e)))
        }
    };
    let (status, metrics) = tokio::join!(get("/v1/status"), get("/metrics"));
    let status = serde_json::from_str(&status?)
        .map_err(|e| format!("http://{admin}/v1/status is not JSON: {e}"))?;
    Ok((status, figures(kind, &metrics?)))
}

/// Reads the figures of a node of `kind` from its exposition `text`.
pub fn figures(kind: Kind, text: &str) -> Figures {
    let sum = |name: &str| samples(text, name).map(|s| s.value).sum::<f64>();
    match kind {
        Kind::L4 => Figures {
            open_connections: sum("edge_l4_open_connections"),
            connections_total: sum("edge_l4_connections_total"),
            ..Figures::default()
        },
        Kind::L7 => {
            let mut servers: Vec<ServerFigures> = Vec::new();
            for sample in samples(text, "edge_l7_server_responses_total") {
                let (Some(pool), Some(server)) = (sample.label("pool"), sample.label("server"))
                else {
                    continue;
                };
                let five = if sample.label("class") == Some("5xx") {
                    sample.value
                } else {
                    0.0
                };
                match servers
                    .iter_mut()
                    .find(|s| s.pool == pool && s.server == server)
                {
                    Some(s) => {
                        s.responses_total += sample.value;
                        s.responses_5xx_total += five;
                    }
                    None => servers.push(ServerFigures {
                        pool: pool.to_owned(),
                        server: server.to_owned(),
                        responses_total: sample.value,
                        responses_5xx_total: five,
                        latency_buckets: Vec::new(),
                    }),
                }
            }
            let by_server = histograms(
                text,
                "edge_l7_server_response_duration_seconds_bucket",
                |x| Some((x.label("pool")?.to_owned(), x.label("server")?.to_owned())),
            );
            for ((pool, server), buckets) in by_server {
                if let Some(s) = servers
                    .iter_mut()
                    .find(|s| s.pool == pool && s.server == server)
                {
                    s.latency_buckets = buckets;
                }
            }
            Figures {
                open_connections: sum("edge_l7_open_connections"),
                connections_total: sum("edge_l7_connections_total"),
                requests_total: sum(admin::api::l7::REQUESTS_TOTAL),
                requests_5xx_total: samples(text, admin::api::l7::REQUESTS_TOTAL)
                    .filter(|s| s.label("class") == Some("5xx"))
                    .map(|s| s.value)
                    .sum(),
                latency_buckets: histograms(
                    text,
                    "edge_l7_request_duration_seconds_bucket",
                    |_| Some(()),
                )
                .pop()
                .map(|(_, buckets)| buckets)
                .unwrap_or_default(),
                servers,
                certificates: samples(text, "edge_l7_certificate_expiry_timestamp_seconds")
                    .filter_map(|s| {
                        Some(Certificate {
                            name: s.label("name")?.to_owned(),
                            expires_at: s.value,
                        })
                    })
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l7_figures_sum_routes_and_split_servers() {
        let text = "\
edge_l7_requests_total{route=\"a\",pool=\"web\",class=\"2xx\"} 10
edge_l7_requests_total{route=\"b\",pool=\"web\",class=\"5xx\"} 2
edge_l7_request_duration_seconds_bucket{route=\"a\",pool=\"web\",le=\"0.1\"} 3
edge_l7_request_duration_seconds_bucket{route=\"b\",pool=\"web\",le=\"0.1\"} 1
edge_l7_request_duration_seconds_bucket{route=\"a\",pool=\"web\",le=\"+Inf\"} 10
edge_l7_request_duration_seconds_bucket{route=\"b\",pool=\"web\",le=\"+Inf\"} 2
edge_l7_server_responses_total{pool=\"web\",server=\"10.0.0.1:80\",class=\"2xx\"} 7
edge_l7_server_responses_total{pool=\"web\",server=\"10.0.0.1:80\",class=\"5xx\"} 1
edge_l7_server_response_duration_seconds_bucket{pool=\"web\",server=\"10.0.0.1:80\",le=\"0.01\"} 6
edge_l7_server_response_duration_seconds_bucket{pool=\"web\",server=\"10.0.0.1:80\",le=\"+Inf\"} 8
edge_l7_server_response_duration_seconds_bucket{pool=\"web\",server=\"10.0.0.2:80\",le=\"+Inf\"} 5
edge_l7_open_connections{listener=\"http\"} 4
edge_l7_certificate_expiry_timestamp_seconds{name=\"example.com\"} 1900000000
";
        let f = figures(Kind::L7, text);
        assert_eq!((f.requests_total, f.requests_5xx_total), (12.0, 2.0));
        assert_eq!(f.latency_buckets, [(0.1, 4.0), (f64::INFINITY, 12.0)]);
        assert_eq!(f.servers.len(), 1);
        assert_eq!(
            (
                f.servers[0].responses_total,
                f.servers[0].responses_5xx_total
            ),
            (8.0, 1.0)
        );
        // Each server's own histogram, not another server's.
        assert_eq!(
            f.servers[0].latency_buckets,
            [(0.01, 6.0), (f64::INFINITY, 8.0)]
        );
        assert_eq!(f.open_connections, 4.0);
        assert_eq!(f.certificates[0].name, "example.com");
    }
}
