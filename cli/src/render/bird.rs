//! BIRD 2's configuration for a host with an L4 node in a BGP region: a
//! session to each of the region's routers announcing the VIP's /32 —
//! only while the static protocol `vip` is enabled, which `edge announce`
//! does when the node is ready and undoes when it is not or stops. BFD
//! towards the routers withdraws a dead host in a fraction of a second.
//!
//! Only the IPv4 VIP is announced (sessions carry the `ipv4` channel); an
//! IPv6 VIP of a BGP region is not routed to the host.

use std::fmt::Write as _;
use std::net::IpAddr;

use topology::Topology;
use topology::hosts::Host;
use topology::tiers::l4::Ha;

use super::l4_nodes_on;
use crate::error::user;

/// The file's path in a bundle.
pub const CONFIG: &str = "bird.conf";
/// Its service's name.
pub const SERVICE: &str = "gtm-bird";
/// BIRD's control socket, under `{dir}/run`.
pub const SOCKET: &str = "bird.ctl";
/// The static protocol `edge announce` enables and disables.
pub const PROTOCOL: &str = "vip";

/// The configuration for `host`, if it runs an L4 node of a BGP region.
pub fn config(topology: &Topology, host: &Host) -> anyhow::Result<Option<String>> {
    let nodes: Vec<_> = l4_nodes_on(topology, host)
        .into_iter()
        .filter_map(|(region, l4, node)| match &l4.ha {
            Some(Ha::Bgp(bgp)) => Some((region, bgp, node)),
            _ => None,
        })
        .collect();
    let Some(&(region, bgp, node)) = nodes.first() else {
        return Ok(None);
    };
    if let Some((other, _, other_node)) = nodes.iter().find(|(r, _, _)| r.name != region.name) {
        return Err(user(format!(
            "hosts.{}: L4 nodes {} ({}) and {} ({}) are both in BGP mode on this host; \
             one BIRD announces one region's VIP — put them on separate hosts",
            host.name, node.name, region.name, other_node.name, other.name
        )));
    }
    let vip = region.vip.ipv4.ok_or_else(|| {
        user(format!(
            "regions.{}.vip: BGP mode announces an IPv4 VIP; add vip.ipv4",
            region.name
        ))
    })?;
    let router_id = host.addresses.iter().find(|a| a.is_ipv4()).ok_or_else(|| {
        user(format!(
            "hosts.{}.addresses: BIRD's router id is the host's IPv4 address; add one",
            host.name
        ))
    })?;
    let mut conf = format!(
        "# BIRD for host {host}, rendered by `gtm render` from the topology; edits are overwritten.\n\
         # L4 node {node} announces {region}'s VIP {vip} while `edge announce` enables `{PROTOCOL}`.\n\
         log stderr all;\n\
         router id {router_id};\n\
         protocol device {{}}\n\
         # Disabled until the L4 node is ready: nothing is announced before.\n\
         protocol static {PROTOCOL} {{ ipv4; disabled; route {vip}/32 via \"lo\"; }}\n",
        host = host.name,
        node = node.name,
        region = region.name,
    );
    if let Some(bfd) = &bgp.bfd {
        let _ = writeln!(
            conf,
            "protocol bfd {{ interface \"{}\" {{ interval {} ms; multiplier {}; }}; }}",
            host.interface,
            bfd.interval.as_millis(),
            bfd.multiplier
        );
    }
    for (index, peer) in bgp.peers.iter().enumerate() {
        let source = match peer.address {
            IpAddr::V4(_) => "",
            // An IPv6 session still carries the IPv4 route; BIRD needs
            // extended next hops for that.
            IpAddr::V6(_) => "    extended next hop on;\n",
        };
        let _ = write!(
            conf,
            "protocol bgp uplink{index} {{\n  local as {asn};\n  neighbor {addr} as {peer_asn};\n{bfd}  \
             # Quick (re)connection after a restart of either side.\n  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 10;\n  \
             ipv4 {{\n    import none;\n    export where net = {vip}/32;\n{source}  }};\n}}\n",
            asn = bgp.asn,
            addr = peer.address,
            peer_asn = peer.asn,
            bfd = if bgp.bfd.is_some() { "  bfd on;\n" } else { "" },
        );
    }
    Ok(Some(conf))
}
