//! The L4 tier: TCP on the region's VIP, spread over the L7 nodes by a
//! Maglev table.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::health::{self, HealthCheck, RawHealthCheck};
use crate::raw::Scalar;
use crate::tiers::socket_addr;
use crate::validate::Problems;

/// `l4:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL4 {
    /// The L4 nodes; each listens on the VIP at the VIP's ports.
    pub nodes: Vec<RawL4Node>,
    /// `five_tuple` (default) or `client_ip` (client affinity).
    #[serde(default)]
    pub hash: Option<String>,
    /// Most concurrent connections per node (default 10000).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Close connections idle this long in both directions (default `5m`).
    #[serde(default)]
    pub idle_timeout: Option<Scalar>,
    /// Time allowed to connect to an L7 node (default `2s`).
    #[serde(default)]
    pub connect_timeout: Option<Scalar>,
    /// How the L7 nodes are checked (default HTTP GET on their health path).
    #[serde(default)]
    pub health: Option<RawHealthCheck>,
}

/// One L4 node as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL4Node {
    /// Unique name.
    pub name: String,
    /// Admin API address (metrics, status).
    pub admin: Scalar,
}

/// How connections are hashed onto L7 nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowHash {
    /// Source and destination address and port, and protocol.
    FiveTuple,
    /// The client address alone: a client sticks to one L7 node.
    ClientIp,
}

/// The validated L4 tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L4Tier {
    /// The nodes.
    pub nodes: Vec<L4Node>,
    /// Flow hashing.
    pub hash: FlowHash,
    /// Most concurrent connections per node.
    pub max_connections: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Connect timeout to an L7 node.
    pub connect_timeout: Duration,
    /// How L7 nodes are checked.
    pub health: HealthCheck,
}

/// One L4 node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L4Node {
    /// Unique name.
    pub name: String,
    /// Admin API address.
    pub admin: SocketAddr,
}

pub(crate) fn validate(
    raw: &RawL4,
    l7_health_path: &str,
    path: &str,
    problems: &mut Problems,
) -> L4Tier {
    if raw.nodes.is_empty() {
        problems.add(
            format!("{path}.nodes"),
            "no L4 nodes; add { name: l4a, admin: \"127.0.1.1:9100\" }",
        );
    }
    let nodes = raw
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let admin = socket_addr(
                &node.admin,
                &format!("{path}.nodes[{index}].admin"),
                problems,
            )?;
            Some(L4Node {
                name: node.name.clone(),
                admin,
            })
        })
        .collect();
    let hash = match raw.hash.as_deref() {
        None | Some("five_tuple") => FlowHash::FiveTuple,
        Some("client_ip") => FlowHash::ClientIp,
        Some(other) => {
            problems.add(
                format!("{path}.hash"),
                format!("unknown hash {other:?}; use five_tuple or client_ip"),
            );
            FlowHash::FiveTuple
        }
    };
    let mut duration = |field: &str, value: &Option<Scalar>, default: Duration| match value {
        None => default,
        Some(v) => problems
            .check(format!("{path}.{field}"), parse_duration(&v.text()))
            .unwrap_or(default),
    };
    let idle_timeout = duration("idle_timeout", &raw.idle_timeout, Duration::from_secs(300));
    let connect_timeout = duration(
        "connect_timeout",
        &raw.connect_timeout,
        Duration::from_secs(2),
    );
    let max_connections = raw.max_connections.unwrap_or(10_000);
    if max_connections == 0 {
        problems.add(format!("{path}.max_connections"), "must be at least 1");
    }
    L4Tier {
        nodes,
        hash,
        max_connections,
        idle_timeout,
        connect_timeout,
        health: health::validate(
            raw.health.as_ref(),
            l7_health_path,
            &format!("{path}.health"),
            problems,
        ),
    }
}
