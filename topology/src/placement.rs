//! Where each component runs: the rules that need the whole validated
//! model. With `hosts:`, every component names a declared host and binds
//! only that host's addresses (or an unspecified one); several L4 nodes
//! share a VIP only through `l4.ha`, each on a host of its own; a lone L4
//! node must hold its VIP itself. Without `hosts:`, nothing names a host
//! and no region asks for VIP high availability.

use std::net::IpAddr;

use crate::field::Problems;
use crate::model::{Region, Topology};
use crate::tiers::l4::{Ha, L4Tier};

/// One address a component listens on, for the placement check.
struct Placed<'a> {
    /// The component's `host:`.
    host: Option<&'a str>,
    /// The field path of `host:`'s owner (e.g. `regions.us-east.l7.nodes[0]`).
    path: String,
    /// Addresses it binds, with the field each comes from.
    binds: Vec<(IpAddr, &'static str)>,
}

/// Checks the whole topology's placement: with `hosts:`, every component
/// names a declared host and binds only that host's addresses (or an
/// unspecified address); without it, no component names a host and no
/// region asks for VIP high availability.
pub(crate) fn check(topology: &Topology, problems: &mut Problems) {
    let mut placed = Vec::new();
    for (index, node) in topology.dns.nodes.iter().enumerate() {
        let mut binds: Vec<(IpAddr, &str)> =
            node.listen.iter().map(|a| (a.ip(), "listen")).collect();
        binds.extend(node.admin.map(|a| (a.ip(), "admin")));
        placed.push(Placed {
            host: node.host.as_deref(),
            path: format!("dns.nodes[{index}]"),
            binds,
        });
    }
    for region in &topology.regions {
        let path = format!("regions.{}", region.name);
        if let Some(l4) = &region.l4 {
            for (index, node) in l4.nodes.iter().enumerate() {
                placed.push(Placed {
                    host: node.host.as_deref(),
                    path: format!("{path}.l4.nodes[{index}]"),
                    binds: vec![(node.admin.ip(), "admin")],
                });
            }
        }
        if let Some(l7) = &region.l7 {
            for (index, node) in l7.nodes.iter().enumerate() {
                placed.push(Placed {
                    host: node.host.as_deref(),
                    path: format!("{path}.l7.nodes[{index}]"),
                    binds: vec![(node.address, "address"), (node.admin.ip(), "admin")],
                });
            }
        }
        for (index, backend) in region.backends.iter().enumerate() {
            placed.push(Placed {
                host: backend.host.as_deref(),
                path: format!("{path}.backends[{index}]"),
                binds: backend
                    .addresses()
                    .into_iter()
                    .map(|(addr, field)| (addr.ip(), field))
                    .collect(),
            });
        }
    }
    let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
    for component in &placed {
        match (component.host, topology.hosts.is_empty()) {
            (None, true) => {}
            (None, false) => problems.add(
                format!("{}.host", component.path),
                format!(
                    "no host; with a `hosts:` section every component names the host it runs on (one of: {})",
                    names.join(", ")
                ),
            ),
            (Some(name), _) => match topology.host(name) {
                None if topology.hosts.is_empty() => problems.add(
                    format!("{}.host", component.path),
                    format!("host {name:?} is not declared; add a `hosts:` section with {name}: {{ ssh: …, addresses: […] }}"),
                ),
                None => problems.add(
                    format!("{}.host", component.path),
                    format!("unknown host {name:?}; declared hosts: {}", names.join(", ")),
                ),
                Some(host) => {
                    for (addr, field) in &component.binds {
                        if !addr.is_unspecified() && !host.addresses.contains(addr) {
                            problems.add(
                                format!("{}.{field}", component.path),
                                format!(
                                    "{addr} is not an address of host {name:?} ({}); use one of its addresses or add {addr} to hosts.{name}.addresses",
                                    host.addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                                ),
                            );
                        }
                    }
                }
            },
        }
    }
    for region in &topology.regions {
        if let Some(l4) = &region.l4 {
            check_l4(l4, region, topology, problems);
        }
    }
}

/// The placement rules of an L4 tier that need the whole topology: more
/// than one node needs `ha`, `ha` needs each node on a host of its own,
/// and a single node without `ha` must hold the VIP itself.
fn check_l4(tier: &L4Tier, region: &Region, topology: &Topology, problems: &mut Problems) {
    let path = format!("regions.{}.l4", region.name);
    match &tier.ha {
        None if tier.nodes.len() > 1 => problems.add(
            format!("{path}.nodes"),
            format!(
                "{} L4 nodes share the VIP only with `ha:` (mode vrrp or bgp, each node on its own host); add ha: or keep one node",
                tier.nodes.len()
            ),
        ),
        None => {
            // One node holds the VIP itself: it must be one of its host's addresses.
            let Some(host) = tier.nodes.first().and_then(|n| n.host.as_deref()).and_then(|h| topology.host(h)) else {
                return;
            };
            for vip in region.vip.addresses() {
                if !host.addresses.contains(&vip) {
                    problems.add(
                        format!("regions.{}.vip", region.name),
                        format!(
                            "the VIP {vip} is on no interface: it is not an address of host {:?}, and no `l4.ha` moves it there; add it to hosts.{}.addresses or set l4.ha",
                            host.name, host.name
                        ),
                    );
                }
            }
        }
        Some(ha) => {
            if topology.hosts.is_empty() {
                problems.add(
                    format!("{path}.ha"),
                    format!("{} HA needs each L4 node on a host of its own; add a `hosts:` section and `host:` to each node", ha.mode()),
                );
                return;
            }
            let mut seen: Vec<(&str, &str)> = Vec::new();
            for (index, node) in tier.nodes.iter().enumerate() {
                let Some(host) = node.host.as_deref() else { continue };
                match seen.iter().find(|(h, _)| *h == host) {
                    Some((_, other)) => problems.add(
                        format!("{path}.nodes[{index}].host"),
                        format!("{:?} and {other:?} are both on host {host:?}; each L4 node sharing the VIP needs its own host", node.name),
                    ),
                    None => seen.push((host, &node.name)),
                }
            }
            if let Ha::Vrrp(vrrp) = ha {
                for other in &topology.regions {
                    if other.name != region.name
                        && let Some(Ha::Vrrp(theirs)) = other.l4.as_ref().and_then(|t| t.ha.as_ref())
                        && theirs.virtual_router_id == vrrp.virtual_router_id
                    {
                        problems.add(
                            format!("{path}.ha.virtual_router_id"),
                            format!("{} is also the VRRP id of region {:?}; give each region its own", vrrp.virtual_router_id, other.name),
                        );
                    }
                }
            }
        }
    }
}
