//! The L7 tier: TLS-terminating HTTP proxies routing to backend pools.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::health::{self, HealthCheck, RawHealthCheck};
use crate::raw::Scalar;
use crate::tiers::socket_addr;
use crate::validate::Problems;

/// The path the L7 proxies answer themselves with the region's health.
pub const DEFAULT_HEALTH_PATH: &str = "/.well-known/gtm/health";

/// `l7:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL7 {
    /// The L7 nodes.
    pub nodes: Vec<RawL7Node>,
    /// Path answered by the proxy itself: 200 while its pools can serve.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Certificates for the HTTPS port.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// Ordered routing rules; the first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Backend pools by name.
    #[serde(default)]
    pub pools: IndexMap<String, RawPool>,
}

/// One L7 node as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL7Node {
    /// Unique name.
    pub name: String,
    /// Address it listens on, at the VIP's ports.
    pub address: Scalar,
    /// Admin API address (metrics, status).
    pub admin: Scalar,
}

/// `tls:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Certificate chains and keys; chosen by SNI from their names.
    pub certs: Vec<RawCert>,
}

/// One certificate as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// One route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Host to match: exact or `*.example.com`.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix to match (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The pool to send matching requests to.
    pub pool: String,
}

/// One pool as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// `p2c` (default), `round_robin`, `least_conn`, `hash`, `random`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The servers.
    pub servers: Vec<RawServer>,
    /// Active health check of each server (default HTTP GET /).
    #[serde(default)]
    pub health: Option<RawHealthCheck>,
}

/// One server as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Its address.
    pub addr: Scalar,
    /// Relative weight (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Used only when no primary server is healthy.
    #[serde(default)]
    pub backup: bool,
}

/// The validated L7 tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L7Tier {
    /// The nodes.
    pub nodes: Vec<L7Node>,
    /// Path answered with the region's health.
    pub health_path: String,
    /// Certificates, when the HTTPS port is served.
    pub tls: Option<Vec<Cert>>,
    /// Routes in order.
    pub routes: Vec<Route>,
    /// Pools; routes refer to them by index.
    pub pools: Vec<Pool>,
}

/// One L7 node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L7Node {
    /// Unique name.
    pub name: String,
    /// Listen address (at the VIP's ports).
    pub address: IpAddr,
    /// Admin API address.
    pub admin: SocketAddr,
}

/// A certificate chain and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    /// PEM chain.
    pub cert: PathBuf,
    /// PEM key.
    pub key: PathBuf,
}

/// A routing rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Host match, lowercase: exact, or `*.suffix`.
    pub host: Option<String>,
    /// Path prefix.
    pub path: String,
    /// Index into [`L7Tier::pools`].
    pub pool: usize,
}

/// Load-balancing algorithm of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Power of two choices on in-flight requests × latency.
    P2c,
    /// Smooth weighted round robin.
    RoundRobin,
    /// Weighted least connections.
    LeastConn,
    /// Consistent hashing.
    Hash,
    /// Uniform random.
    Random,
}

/// A backend pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Servers.
    pub servers: Vec<Server>,
    /// Active health check.
    pub health: HealthCheck,
}

/// A pool member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Address.
    pub addr: SocketAddr,
    /// Weight, at least 1.
    pub weight: u32,
    /// Backup server.
    pub backup: bool,
}

pub(crate) fn validate(raw: &RawL7, path: &str, problems: &mut Problems) -> L7Tier {
    if raw.nodes.is_empty() {
        problems.add(
            format!("{path}.nodes"),
            "no L7 nodes; add { name: l7a, address: 127.0.1.11, admin: \"127.0.1.11:9100\" }",
        );
    }
    let nodes = raw
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let npath = format!("{path}.nodes[{index}]");
            let text = node.address.text();
            let address = problems.check(
                format!("{npath}.address"),
                text.parse::<IpAddr>()
                    .map_err(|_| format!("{text:?} is not an IP address; write e.g. 127.0.1.11")),
            );
            let admin = socket_addr(&node.admin, &format!("{npath}.admin"), problems);
            Some(L7Node {
                name: node.name.clone(),
                address: address?,
                admin: admin?,
            })
        })
        .collect();
    let health_path = raw
        .health_path
        .clone()
        .unwrap_or_else(|| DEFAULT_HEALTH_PATH.to_owned());
    if !health_path.starts_with('/') {
        problems.add(format!("{path}.health_path"), "must start with '/'");
    }
    let tls = raw.tls.as_ref().map(|tls| {
        if tls.certs.is_empty() {
            problems.add(
                format!("{path}.tls.certs"),
                "no certificates; add { cert: FILE, key: FILE }",
            );
        }
        tls.certs
            .iter()
            .map(|c| Cert {
                cert: c.cert.clone(),
                key: c.key.clone(),
            })
            .collect()
    });
    let mut pools = Vec::new();
    for (name, pool) in &raw.pools {
        let ppath = format!("{path}.pools.{name}");
        let algorithm = match pool.algorithm.as_deref() {
            None | Some("p2c") => Algorithm::P2c,
            Some("round_robin") => Algorithm::RoundRobin,
            Some("least_conn") => Algorithm::LeastConn,
            Some("hash") => Algorithm::Hash,
            Some("random") => Algorithm::Random,
            Some(other) => {
                problems.add(
                    format!("{ppath}.algorithm"),
                    format!("unknown algorithm {other:?}; use p2c, round_robin, least_conn, hash or random"),
                );
                Algorithm::P2c
            }
        };
        if pool.servers.is_empty() {
            problems.add(
                format!("{ppath}.servers"),
                "no servers; add { addr: \"127.0.1.101:9000\" }",
            );
        }
        let servers = pool
            .servers
            .iter()
            .enumerate()
            .filter_map(|(index, server)| {
                let spath = format!("{ppath}.servers[{index}]");
                let weight = server.weight.unwrap_or(1);
                if weight == 0 {
                    problems.add(
                        format!("{spath}.weight"),
                        "must be at least 1 (remove the server to take it out)",
                    );
                }
                Some(Server {
                    addr: socket_addr(&server.addr, &format!("{spath}.addr"), problems)?,
                    weight,
                    backup: server.backup,
                })
            })
            .collect();
        pools.push(Pool {
            name: name.clone(),
            algorithm,
            servers,
            health: health::validate(
                pool.health.as_ref(),
                "/",
                &format!("{ppath}.health"),
                problems,
            ),
        });
    }
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(index, route)| {
            let rpath = format!("{path}.routes[{index}]");
            let pool = raw.pools.get_index_of(&route.pool);
            if pool.is_none() {
                let known: Vec<&str> = raw.pools.keys().map(String::as_str).collect();
                problems.add(
                    format!("{rpath}.pool"),
                    format!("unknown pool {:?}; pools: {}", route.pool, known.join(", ")),
                );
            }
            let prefix = route.path.clone().unwrap_or_else(|| "/".to_owned());
            if !prefix.starts_with('/') {
                problems.add(
                    format!("{rpath}.path"),
                    format!("{prefix:?} must start with '/'"),
                );
            }
            Some(Route {
                host: route.host.as_ref().map(|h| h.to_ascii_lowercase()),
                path: prefix,
                pool: pool?,
            })
        })
        .collect();
    L7Tier {
        nodes,
        health_path,
        tls,
        routes,
        pools,
    }
}
