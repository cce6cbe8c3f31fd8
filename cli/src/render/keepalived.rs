//! keepalived's configuration for a host with L4 nodes in VRRP regions:
//! one VRRPv3 instance per node, holding the region's VIP while the
//! node's `edge check` says it is ready.
//!
//! Every instance starts as BACKUP and the priority decides: the ready
//! node with the highest priority becomes master. `nopreempt` is not set,
//! so once the preferred node is ready again it takes the VIP back — the
//! priority is the operator's stated preference (the node nearer the
//! uplink, or with more capacity), and a VIP left on the standby after a
//! failover would leave the region with no hot standby that the operator
//! chose. The cost is a second, equally short, takeover on recovery.
//!
//! Adverts go unicast to the other nodes' host addresses (`unicast_peer`):
//! clouds and many switches filter the VRRP multicast group.
//!
//! keepalived 2.2 keeps one address family per instance: the VIP of the
//! instance's family goes in `virtual_ipaddress`, the other family's in
//! `virtual_ipaddress_excluded` (moved with the instance, not advertised).

use std::fmt::Write as _;
use std::net::IpAddr;

use topology::Topology;
use topology::hosts::Host;
use topology::tiers::l4::Ha;

use super::{invariant, l4_nodes_on};
use crate::error::user;

/// The file's path in a bundle.
pub const CONFIG: &str = "keepalived.conf";
/// Its service's name.
pub const SERVICE: &str = "gtm-keepalived";

/// The configuration for `host`, if it runs an L4 node of a VRRP region.
pub fn config(topology: &Topology, host: &Host) -> anyhow::Result<Option<String>> {
    let mut instances = String::new();
    for (region, l4, node) in l4_nodes_on(topology, host) {
        let Some(Ha::Vrrp(vrrp)) = &l4.ha else {
            continue;
        };
        let vips: Vec<IpAddr> = region.vip.addresses().collect();
        let Some(&family) = vips.first() else {
            return Err(invariant(format!("region {} has no VIP", region.name)));
        };
        let family_name = if family.is_ipv4() { "IPv4" } else { "IPv6" };
        let src = host.address_like(family).ok_or_else(|| {
            user(format!(
                "hosts.{}.addresses: VRRP for {}'s VIP {family} needs an {family_name} address on the host; add one",
                host.name, region.name
            ))
        })?;
        let mut peers = Vec::new();
        for other in l4.nodes.iter().filter(|n| n.name != node.name) {
            let peer = other
                .host
                .as_deref()
                .and_then(|name| topology.host(name))
                .and_then(|h| h.address_like(family))
                .ok_or_else(|| {
                    user(format!(
                        "regions.{}.l4.nodes: {}'s host has no {family_name} address for VRRP adverts from {}; add one to its hosts entry",
                        region.name, other.name, node.name
                    ))
                })?;
            peers.push(peer);
        }
        let priority = node
            .priority
            .ok_or_else(|| invariant(format!("VRRP node {} has no priority", node.name)))?;
        let script = script_name(&node.name);
        let edge = host.dir.join("bin/edge");
        let iface = &host.interface;
        // interval 1: keepalived's floor; `edge check` itself polls every
        // 100 ms for 800 ms, so a run fits in the interval and a failure is
        // seen within ~0.1 s of the run. fall 1: give the VIP up at the
        // first failure. rise 2: take it only when ready twice in a row.
        let _ = write!(
            instances,
            "\nvrrp_script {script} {{\n  script \"{} check --admin {}\"\n  interval 1\n  timeout 2\n  fall 1\n  rise 2\n}}\n",
            edge.display(),
            node.admin
        );
        let _ = write!(
            instances,
            "\n# Region {}: L4 node {} (priority {priority}).\nvrrp_instance {} {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {}\n  priority {priority}\n  advert_int {}\n  unicast_src_ip {src}\n  unicast_peer {{\n",
            region.name,
            node.name,
            identifier(&region.name),
            vrrp.virtual_router_id,
            seconds(vrrp.advert_interval),
        );
        for peer in &peers {
            let _ = writeln!(instances, "    {peer}");
        }
        instances.push_str("  }\n");
        let (same, other): (Vec<IpAddr>, Vec<IpAddr>) = vips
            .iter()
            .partition(|vip| vip.is_ipv4() == family.is_ipv4());
        for (block, addresses) in [
            ("virtual_ipaddress", same),
            ("virtual_ipaddress_excluded", other),
        ] {
            if addresses.is_empty() {
                continue;
            }
            let _ = writeln!(instances, "  {block} {{");
            for vip in addresses {
                let len = if vip.is_ipv4() { 32 } else { 128 };
                let _ = writeln!(instances, "    {vip}/{len} dev {iface}");
            }
            instances.push_str("  }\n");
        }
        let _ = write!(instances, "  track_script {{\n    {script}\n  }}\n}}\n");
    }
    if instances.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "# keepalived for host {}, rendered by `gtm render` from the topology; edits are overwritten.\n\
         global_defs {{\n  router_id {}\n  vrrp_version 3\n  # The track scripts run the L4 node's readiness check, owned by root.\n  script_user root\n  enable_script_security\n}}\n{instances}",
        host.name, host.name
    )))
}

/// keepalived's name for the track script of L4 node `node`.
fn script_name(node: &str) -> String {
    format!("ready_{}", identifier(node))
}

/// `name` with `-` and `.` as `_`, for keepalived's identifiers.
fn identifier(name: &str) -> String {
    name.replace(['-', '.'], "_")
}

/// A duration in seconds with its fraction (`0.1`, `1`, `0.25`), as
/// keepalived's `advert_int` takes it.
fn seconds(duration: std::time::Duration) -> String {
    duration.as_secs_f64().to_string()
}
