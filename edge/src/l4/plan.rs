//! What one L4 node runs, taken from the validated topology: its region's
//! VIP, the L7 nodes with their weights and probe specs, and the tier's
//! settings. Pure: no I/O.
//!
//! The topology has already checked every value (including that `weights`
//! name the region's L7 nodes); this adds the check that needs to know
//! which node runs: that it exists.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use probe::ProbeSpec;
use topology::Topology;
use topology::tiers::l4::{FlowHash, L4Tier, UdpService};

use crate::ConfigError;
use crate::maglev::Affinity;

/// Longest L4 node name: it travels in every PROXY header's TLV.
pub const MAX_NODE_NAME: usize = 255;

/// The plan of one L4 node.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// This L4 node's name.
    pub node: Arc<str>,
    /// Its region's name.
    pub region: String,
    /// Its admin API address.
    pub admin: std::net::SocketAddr,
    /// The region's VIP: the addresses and ports to listen on.
    pub vip: topology::Vip,
    /// The L7 nodes, in file order.
    pub l7: Vec<L7Target>,
    /// What a flow's hash covers.
    pub affinity: Affinity,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Close connections idle this long.
    pub idle_timeout: Duration,
    /// Time allowed to connect to an L7 node.
    pub connect_timeout: Duration,
    /// Grace period of open connections on shutdown.
    pub drain_timeout: Duration,
    /// The UDP services on the VIP.
    pub udp: Vec<UdpService>,
}

/// One L7 node as the L4 tier sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct L7Target {
    /// Unique name; seeds its Maglev permutation.
    pub name: Arc<str>,
    /// Its address; connections go to the port they arrived on.
    pub address: IpAddr,
    /// Share of the Maglev table (0: drained by the operator).
    pub weight: u32,
    /// How it is probed.
    pub probe: ProbeSpec,
}

/// The plan of the L4 node `node` of `topology`.
///
/// Errors name the node or the field path and say what to write.
pub fn plan(topology: &Topology, node: &str) -> Result<Plan, ConfigError> {
    let found = topology.regions.iter().find_map(|region| {
        let tier = region.l4.as_ref()?;
        let l4_node = tier.nodes.iter().find(|n| n.name == node)?;
        Some((region, tier, l4_node))
    });
    let Some((region, tier, l4_node)) = found else {
        let known: Vec<&str> = topology
            .regions
            .iter()
            .filter_map(|r| r.l4.as_ref())
            .flat_map(|t| t.nodes.iter().map(|n| n.name.as_str()))
            .collect();
        return Err(ConfigError(if known.is_empty() {
            format!(
                "no L4 node named {node:?}: the topology has no L4 tier; add `l4: {{ nodes: [...] }}` to a region"
            )
        } else {
            format!(
                "no L4 node named {node:?}; the topology's L4 nodes are: {}",
                known.join(", ")
            )
        }));
    };
    let path = format!("regions.{}.l4", region.name);
    if node.len() > MAX_NODE_NAME {
        return Err(ConfigError(format!(
            "{path}.nodes: the name {node:?} is {} bytes; use at most {MAX_NODE_NAME}",
            node.len()
        )));
    }
    let Some(l7) = region.l7.as_ref() else {
        // The topology refuses an L4 tier without an L7 tier; kept as an
        // error rather than a panic should that rule ever move.
        return Err(ConfigError(format!(
            "regions.{}: an L4 tier needs L7 nodes; add an `l7:` block",
            region.name
        )));
    };
    let targets = l7
        .nodes
        .iter()
        .map(|n| L7Target {
            name: Arc::from(n.name.as_str()),
            address: n.address,
            weight: tier.weight(&n.name),
            probe: probe_spec(tier, l7, n, &region.vip),
        })
        .collect();
    Ok(Plan {
        node: Arc::from(node),
        region: region.name.clone(),
        admin: l4_node.admin,
        vip: region.vip,
        l7: targets,
        affinity: match tier.hash {
            FlowHash::FiveTuple => Affinity::FiveTuple,
            FlowHash::ClientIp => Affinity::ClientIp,
        },
        max_connections: tier.max_connections,
        idle_timeout: tier.idle_timeout,
        connect_timeout: tier.connect_timeout,
        drain_timeout: tier.drain_timeout,
        udp: tier.udp.clone(),
    })
}

/// How the L7 node `node` is probed.
///
/// By default the check goes to the node's `address` at the VIP's port, as
/// traffic does. When the L7 tier expects a PROXY header on every
/// connection (`l7.proxy_protocol`), its traffic ports close a probe that
/// sends none; an HTTP or TCP check that names no `port` then goes to the
/// node's admin address instead, which answers the same health path.
fn probe_spec(
    tier: &L4Tier,
    l7: &topology::tiers::l7::L7Tier,
    node: &topology::tiers::l7::L7Node,
    vip: &topology::Vip,
) -> ProbeSpec {
    use topology::health::CheckKind;
    let via_admin = l7.proxy_protocol
        && tier.health.port.is_none()
        && matches!(tier.health.kind, CheckKind::Http | CheckKind::Tcp);
    if via_admin {
        probe::topology::spec_for(
            &tier.health,
            node.admin.ip(),
            node.admin.port(),
            node.admin.port(),
        )
    } else {
        probe::topology::spec_for(&tier.health, node.address, vip.http_port, vip.https_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/three-regions.yaml");

    fn example() -> Topology {
        topology::parse(EXAMPLE, "three-regions.yaml").unwrap()
    }

    #[test]
    fn plans_the_example_node() {
        let mut topology = example();
        // Without PROXY headers on the L7 side, probes go where traffic goes.
        topology.regions[1].l7.as_mut().unwrap().proxy_protocol = false;
        let plan = plan(&topology, "eu-west-l4").unwrap();
        assert_eq!(&*plan.node, "eu-west-l4");
        assert_eq!(plan.region, "eu-west");
        assert_eq!(plan.vip.ipv4, Some("127.0.2.1".parse().unwrap()));
        let names: Vec<&str> = plan.l7.iter().map(|t| &*t.name).collect();
        assert_eq!(names, ["eu-west-l7a", "eu-west-l7b"]);
        assert!(plan.l7.iter().all(|t| t.weight == 1));
        // HTTP on the L7 node's address at the VIP's HTTP port.
        let probe::ProbeKind::Http(http) = &plan.l7[0].probe.kind else {
            panic!("expected an HTTP probe");
        };
        assert_eq!(http.addr, "127.0.2.11:8080".parse().unwrap());
        assert_eq!(http.path, topology::tiers::l7::DEFAULT_HEALTH_PATH);
        assert_eq!(plan.drain_timeout, Duration::from_secs(30));
    }

    #[test]
    fn behind_proxy_protocol_l7_nodes_are_probed_on_their_admin_address() {
        let mut topology = example();
        let l7 = topology.regions[0].l7.as_mut().unwrap();
        l7.proxy_protocol = true;
        let plan = plan(&topology, "us-east-l4").unwrap();
        let probe::ProbeKind::Http(http) = &plan.l7[1].probe.kind else {
            panic!("expected an HTTP probe");
        };
        assert_eq!(http.addr, "127.0.1.12:9100".parse().unwrap());
        assert_eq!(http.path, topology::tiers::l7::DEFAULT_HEALTH_PATH);
        // Traffic still goes to the node's address.
        assert_eq!(plan.l7[1].address, "127.0.1.12".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn unknown_nodes_are_named() {
        let error = plan(&example(), "nope").unwrap_err().to_string();
        assert!(error.contains("\"nope\""), "{error}");
        assert!(
            error.contains("us-east-l4, eu-west-l4, ap-south-l4"),
            "{error}"
        );
    }
}
