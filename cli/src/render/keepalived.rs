//! keepalived's configuration for a host with L4 nodes in VRRP regions:
//! one VRRPv3 instance per node, holding the region's VIP while the
//! node's `edge check` says it is ready.
//!
//! Every instance starts as BACKUP and the priority decides: the ready
//! node with the highest priority becomes master. After a failover the VIP
//! stays on the standby (`nopreempt`) unless `l4.ha.preempt` is on: the L4
//! nodes share no connection state, so taking the VIP back resets every
//! connection the standby carries (lab/e2e measures all of them reset) and
//! costs a second takeover gap.
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
            "\n# Region {}: L4 node {} (priority {priority}).\nvrrp_instance {} {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {}\n  priority {priority}\n  advert_int {}\n{}  unicast_src_ip {src}\n  unicast_peer {{\n",
            region.name,
            node.name,
            identifier(&region.name),
            vrrp.virtual_router_id,
            seconds(vrrp.advert_interval),
            if vrrp.preempt { "" } else { "  nopreempt\n" },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{example_path, example_with};

    #[test]
    fn each_node_backs_up_the_vip_with_its_priority_and_unicast_peers() {
        let topology = topology::load(&example_path()).unwrap();
        let conf = config(&topology, topology.host("use-l4b").unwrap())
            .unwrap()
            .expect("a VRRP host");
        for line in [
            "  vrrp_version 3",
            "  enable_script_security",
            "  script \"/var/lib/gtm/bin/edge check --admin 198.51.100.12:9100\"",
            "  interval 1",
            "  fall 1",
            "  rise 2",
            "  timeout 2",
            "vrrp_instance us_east {",
            "  state BACKUP",
            "  interface eth0",
            "  virtual_router_id 51",
            "  priority 100",
            "  advert_int 0.1",
            "  unicast_src_ip 198.51.100.12",
            "    198.51.100.11",
            "    203.0.113.1/32 dev eth0",
            "    ready_us_east_l4b",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line:?} in\n{conf}");
        }
        assert!(
            conf.lines().any(|l| l == "  nopreempt"),
            "by default the VIP stays on the node that took it over"
        );
        let preempting = topology::parse(
            &std::fs::read_to_string(example_path()).unwrap().replace(
                "advert_interval: 100ms }",
                "advert_interval: 100ms, preempt: true }",
            ),
            "preempt.yaml",
        )
        .unwrap();
        let conf = config(&preempting, preempting.host("use-l4b").unwrap())
            .unwrap()
            .unwrap();
        assert!(!conf.contains("nopreempt"), "preempt: true takes it back");
        assert!(!conf.contains("virtual_ipaddress_excluded"));
        let bgp_host = topology.host("euw-l4a").unwrap();
        assert_eq!(config(&topology, bgp_host).unwrap(), None);
    }

    #[test]
    fn an_ipv6_vip_moves_with_the_instance_without_being_advertised() {
        let topology = example_with(
            "vip: { ipv4: 203.0.113.1,",
            "vip: { ipv4: 203.0.113.1, ipv6: \"2001:db8:f::1\",",
        );
        let conf = config(&topology, topology.host("use-l4a").unwrap())
            .unwrap()
            .unwrap();
        assert!(
            conf.contains(
                "  virtual_ipaddress {\n    203.0.113.1/32 dev eth0\n  }\n  \
                 virtual_ipaddress_excluded {\n    2001:db8:f::1/128 dev eth0\n  }\n"
            ),
            "{conf}"
        );
    }

    #[test]
    fn advert_intervals_are_written_in_seconds_with_their_fraction() {
        use std::time::Duration;
        assert_eq!(seconds(Duration::from_millis(100)), "0.1");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25");
        assert_eq!(seconds(Duration::from_secs(1)), "1");
    }
}
