//! `hosts:` and VIP high availability: the multi-host example loads with
//! each component on its host, and every placement mistake is refused with
//! the host, the component and the fix.

use std::path::Path;

use topology::hosts::Init;
use topology::tiers::l4::Ha;

use super::problems;

fn multi_host_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/multi-host.yaml"),
    )
    .unwrap()
}

/// The multi-host example with `from` replaced by `to` (once, and it must
/// be there).
fn edited(from: &str, to: &str) -> String {
    let text = multi_host_text();
    assert!(
        text.contains(from),
        "the example no longer contains {from:?}"
    );
    text.replacen(from, to, 1)
}

fn refused(text: &str, expected: &[&str]) {
    let found = problems(text);
    for want in expected {
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{want:?} not among:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_multi_host_example_places_every_component() {
    let topology = topology::parse(&multi_host_text(), "multi-host.yaml").unwrap();
    assert_eq!(topology.hosts.len(), 21);
    assert_eq!(topology.dns.nodes.len(), 3, "one name server per region");
    let ns2 = &topology.dns.nodes[1];
    let host = topology.host(ns2.host.as_deref().unwrap()).unwrap();
    assert_eq!(host.name, "euw-ns");
    assert_eq!(host.ssh, "root@198.51.100.66");
    assert_eq!(host.init, Init::Process);
    assert_eq!(host.interface, "eth0");
    assert!(host.addresses.contains(&ns2.listen[0].ip()));
    let modes: Vec<&str> = topology
        .regions
        .iter()
        .map(|r| r.l4.as_ref().unwrap().ha.as_ref().unwrap().mode())
        .collect();
    assert_eq!(modes, ["vrrp", "bgp", "vrrp"]);
    let us_east = topology.regions[0].l4.as_ref().unwrap();
    let Some(Ha::Vrrp(vrrp)) = &us_east.ha else {
        panic!("us-east is VRRP")
    };
    assert_eq!(vrrp.advert_interval.as_millis(), 100);
    assert_eq!(us_east.nodes[0].priority, Some(150));
    let Some(Ha::Bgp(bgp)) = &topology.regions[1].l4.as_ref().unwrap().ha else {
        panic!("eu-west is BGP")
    };
    assert_eq!((bgp.asn, bgp.peers[0].asn), (65002, 64512));
    assert!(bgp.bfd.is_some(), "BFD is on by default");
}

#[test]
fn a_component_on_an_unknown_host_or_off_its_host_is_refused() {
    refused(
        &edited("host: use-l7a,", "host: use-l7z,"),
        &["regions.us-east.l7.nodes[0].host: unknown host \"use-l7z\""],
    );
    refused(
        &edited(
            "admin: \"198.51.100.21:9100\"",
            "admin: \"198.51.100.22:9100\"",
        ),
        &["regions.us-east.l7.nodes[0].admin: 198.51.100.22 is not an address of host \"use-l7a\""],
    );
    refused(
        &edited("{ name: ns1, host: use-ns, ", "{ name: ns1, "),
        &["dns.nodes[0].host: no host; with a `hosts:` section every component names the host"],
    );
}

#[test]
fn vrrp_mistakes_are_refused() {
    refused(
        &edited(" priority: 100,", " priority: 150,"),
        &[
            "regions.us-east.l4.nodes[1].priority: \"us-east-l4b\" has the same priority 150 as \"us-east-l4a\"",
        ],
    );
    refused(
        &edited(" priority: 100,", ""),
        &["regions.us-east.l4.nodes[1].priority: missing"],
    );
    refused(
        &edited("virtual_router_id: 53", "virtual_router_id: 51"),
        &["regions.ap-south.l4.ha.virtual_router_id: 51 is also the VRRP id of region \"us-east\""],
    );
    refused(
        &edited("advert_interval: 100ms", "advert_interval: 105ms"),
        &["regions.us-east.l4.ha.advert_interval: VRRPv3 counts in centiseconds"],
    );
    refused(
        &edited("host: use-l4b,", "host: use-l4a,"),
        &["regions.us-east.l4.nodes[1]"],
    );
}

#[test]
fn bgp_mistakes_are_refused() {
    refused(
        &edited(
            "asn: 65002, peers: [{ address: 198.51.100.65, asn: 64512 }]",
            "peers: []",
        ),
        &[
            "regions.eu-west.l4.ha.asn: missing",
            "regions.eu-west.l4.ha.peers: no BGP peers",
        ],
    );
    refused(
        &edited(
            "mode: bgp, asn: 65002,",
            "mode: bgp, virtual_router_id: 9, asn: 65002,",
        ),
        &["regions.eu-west.l4.ha.virtual_router_id: virtual_router_id does not apply to mode bgp"],
    );
    refused(
        &edited("mode: bgp", "mode: anycast"),
        &["regions.eu-west.l4.ha.mode: unknown mode \"anycast\""],
    );
}

#[test]
fn two_l4_nodes_need_ha_and_a_lone_node_must_hold_its_vip() {
    let text = edited(
        "      ha: { mode: vrrp, virtual_router_id: 51, advert_interval: 100ms }\n",
        "",
    )
    .replacen(" priority: 150,", "", 1)
    .replacen(" priority: 100,", "", 1);
    refused(
        &text,
        &["regions.us-east.l4.nodes: 2 L4 nodes share the VIP only with `ha:`"],
    );

    // One node, no ha: the VIP must be on its host.
    let lone = text.replacen(
        "        - { name: us-east-l4b, host: use-l4b, admin: \"198.51.100.12:9100\" }\n",
        "",
        1,
    );
    refused(
        &lone,
        &["regions.us-east.vip: the VIP 203.0.113.1 is on no interface"],
    );
    let held = lone.replacen(
        "addresses: [198.51.100.11,",
        "addresses: [198.51.100.11, 203.0.113.1,",
        1,
    );
    topology::parse(&held, "held.yaml").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn ha_without_hosts_is_refused() {
    let text = super::example_text().replacen(
        "      nodes: [{ name: us-east-l4, admin: \"127.0.1.1:9100\" }]\n",
        "      ha: { mode: bgp, asn: 65001, peers: [{ address: 127.0.0.1, asn: 64512 }] }\n      nodes: [{ name: us-east-l4, admin: \"127.0.1.1:9100\" }]\n",
        1,
    );
    refused(
        &text,
        &["regions.us-east.l4.ha: bgp HA needs each L4 node on a host of its own"],
    );
}

#[test]
fn bad_host_entries_are_refused() {
    refused(
        &edited(
            "\"2001:db8:1::2\"], init: process",
            "\"2001:db8:1::2\"], init: runit",
        ),
        &["hosts.use-ns.init: unknown init \"runit\"; use systemd or process"],
    );
    refused(
        &edited(
            "use-ns:   { ssh: root@198.51.100.2, ",
            "use-ns:    { ssh: \"-oProxyCommand=x\", interface: \"eth 0\", dir: relative, ",
        ),
        &[
            "hosts.use-ns.ssh: \"-oProxyCommand=x\" is not an SSH destination",
            "hosts.use-ns.interface: \"eth 0\" is not an interface name",
            "hosts.use-ns.dir: \"relative\" must be an absolute path",
        ],
    );
}
