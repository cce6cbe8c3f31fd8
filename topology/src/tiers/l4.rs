//! The L4 tier: TCP on the region's VIP, spread over the L7 nodes by a
//! Maglev table.

use std::net::SocketAddr;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::duration::parse_duration;
use crate::field::{Problems, Scalar};
use crate::health::{self, HealthCheck, RawHealthCheck};
use crate::tiers::socket_addr;

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
    /// On SIGTERM, how long open connections may take to finish before they
    /// are closed (default `30s`).
    #[serde(default)]
    pub drain_timeout: Option<Scalar>,
    /// Relative share of new connections per L7 node name (default 1 each;
    /// 0 drains the node: no new connections, open ones finish).
    #[serde(default)]
    pub weights: IndexMap<String, u32>,
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
    /// Grace period for open connections on SIGTERM.
    pub drain_timeout: Duration,
    /// Weight per L7 node name, for the nodes the file gives one (the others
    /// weigh [`DEFAULT_WEIGHT`]). 0 means drained by the operator.
    pub weights: IndexMap<String, u32>,
}

impl L4Tier {
    /// The weight of the L7 node `name`: as configured, else
    /// [`DEFAULT_WEIGHT`].
    pub fn weight(&self, name: &str) -> u32 {
        self.weights.get(name).copied().unwrap_or(DEFAULT_WEIGHT)
    }
}

/// Weight of an L7 node that `weights` does not name.
pub const DEFAULT_WEIGHT: u32 = 1;

/// Largest accepted weight (as HAProxy's `weight`): ratios beyond 256:1
/// are better expressed by draining a node.
pub const MAX_WEIGHT: u32 = 256;

/// Default of `drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    l7_nodes: &[&str],
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
    let drain_timeout = duration("drain_timeout", &raw.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
    let max_connections = raw.max_connections.unwrap_or(10_000);
    if max_connections == 0 {
        problems.add(format!("{path}.max_connections"), "must be at least 1");
    }
    if idle_timeout.is_zero() {
        problems.add(
            format!("{path}.idle_timeout"),
            "must be longer than 0s; write e.g. \"5m\"",
        );
    }
    if connect_timeout.is_zero() {
        problems.add(
            format!("{path}.connect_timeout"),
            "must be longer than 0s; write e.g. \"2s\"",
        );
    }
    for (name, &weight) in &raw.weights {
        if !l7_nodes.contains(&name.as_str()) {
            problems.add(
                format!("{path}.weights.{name}"),
                format!(
                    "{name:?} is not an L7 node of this region; weigh one of: {}",
                    l7_nodes.join(", ")
                ),
            );
        }
        if weight > MAX_WEIGHT {
            problems.add(
                format!("{path}.weights.{name}"),
                format!("{weight} is above the maximum {MAX_WEIGHT}; use 0-{MAX_WEIGHT} (0 drains the node)"),
            );
        }
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
        drain_timeout,
        weights: raw.weights.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/three-regions.yaml");
    const L4_LINE: &str = "      nodes: [{ name: us-east-l4, admin: \"127.0.1.1:9100\" }]\n";

    /// The example with `extra` (indented under `l4:`) added to us-east's L4 tier.
    fn with_l4(extra: &str) -> Result<crate::Topology, crate::LoadError> {
        assert!(
            EXAMPLE.contains(L4_LINE),
            "the example's us-east l4 block changed"
        );
        let text = EXAMPLE.replacen(L4_LINE, &format!("{L4_LINE}{extra}"), 1);
        crate::parse(&text, "test.yaml")
    }

    fn l4(topology: &crate::Topology) -> &L4Tier {
        topology.regions[0].l4.as_ref().unwrap()
    }

    #[test]
    fn defaults() {
        let topology = with_l4("").unwrap();
        let tier = l4(&topology);
        assert_eq!(tier.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(tier.weight("us-east-l7a"), DEFAULT_WEIGHT);
        assert_eq!(tier.hash, FlowHash::FiveTuple);
        assert_eq!(tier.max_connections, 10_000);
    }

    #[test]
    fn drain_timeout_and_weights() {
        let topology =
            with_l4("      drain_timeout: 5s\n      weights: { us-east-l7a: 3, us-east-l7b: 0 }\n")
                .unwrap();
        let tier = l4(&topology);
        assert_eq!(tier.drain_timeout, Duration::from_secs(5));
        assert_eq!(tier.weight("us-east-l7a"), 3);
        assert_eq!(tier.weight("us-east-l7b"), 0);
    }

    #[test]
    fn bad_values_are_refused_with_their_paths() {
        let error = with_l4(
            "      drain_timeout: 30\n      weights: { us-east-l7a: 1000 }\n      idle_timeout: 0s\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "regions.us-east.l4.drain_timeout: \"30\" has no unit",
            "regions.us-east.l4.weights.us-east-l7a: 1000 is above the maximum 256",
            "regions.us-east.l4.idle_timeout: must be longer than 0s",
        ] {
            assert!(error.contains(expected), "{expected:?} not in:\n{error}");
        }
    }
}
