//! The L4 tier: TCP (and the UDP services of `l4.udp`) on the region's
//! VIP, spread over the L7 nodes by a Maglev table.

use std::net::{IpAddr, SocketAddr};
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
    /// How several L4 nodes share the VIP (needed for more than one node).
    #[serde(default)]
    pub ha: Option<RawHa>,
    /// UDP services on the VIP (default none).
    #[serde(default)]
    pub udp: Vec<RawUdpService>,
}

/// One `l4.udp[]` entry as written:
/// `{ port: 53, to_port: 5353, idle_timeout: 60s, max_flows: 10000, proxy_protocol: false }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdpService {
    /// The VIP's UDP port.
    pub port: u32,
    /// The port on each L7 node's address the datagrams go to (default
    /// `port`).
    #[serde(default)]
    pub to_port: Option<u32>,
    /// A flow with no datagram either way for this long ends (default
    /// `60s`).
    #[serde(default)]
    pub idle_timeout: Option<Scalar>,
    /// Most flows at once on each VIP address (default 10000); datagrams
    /// of new flows past it are dropped and counted.
    #[serde(default)]
    pub max_flows: Option<usize>,
    /// Prefix every datagram to a node with a PROXY v2 header (default
    /// `false`).
    #[serde(default)]
    pub proxy_protocol: Option<bool>,
}

/// `l4.ha:` as written: `{ mode: vrrp, virtual_router_id, advert_interval }`
/// or `{ mode: bgp, asn, peers, bfd }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHa {
    /// `vrrp` (active-passive, keepalived) or `bgp` (active-active, BIRD).
    pub mode: String,
    /// VRRP: the virtual router id, 1-255, unique on the LAN.
    #[serde(default)]
    pub virtual_router_id: Option<u32>,
    /// VRRP: advertisement interval (default `100ms`; VRRPv3 counts in
    /// centiseconds).
    #[serde(default)]
    pub advert_interval: Option<Scalar>,
    /// VRRP: whether a recovered higher-priority node takes the VIP back
    /// (default `false`: the VIP stays where it is).
    #[serde(default)]
    pub preempt: Option<bool>,
    /// BGP: the L4 nodes' AS number.
    #[serde(default)]
    pub asn: Option<u32>,
    /// BGP: the routers each L4 node peers with.
    #[serde(default)]
    pub peers: Vec<RawBgpPeer>,
    /// BGP: BFD towards the routers (default on, 100ms × 3); `false` turns
    /// it off.
    #[serde(default)]
    pub bfd: Option<RawBfd>,
}

/// One BGP neighbour as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgpPeer {
    /// The router's address.
    pub address: Scalar,
    /// The router's AS number.
    pub asn: u32,
}

/// `bfd:` — `false`, or `{ interval, multiplier }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBfd {
    /// `true` (defaults) or `false` (off).
    Switch(bool),
    /// Timers.
    Timers {
        /// Transmit interval (default `100ms`).
        #[serde(default)]
        interval: Option<Scalar>,
        /// Missed packets before the session is down (default 3).
        #[serde(default)]
        multiplier: Option<u8>,
    },
}

/// One L4 node as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL4Node {
    /// Unique name.
    pub name: String,
    /// Admin API address (metrics, status).
    pub admin: Scalar,
    /// The host it runs on (see `hosts:`).
    #[serde(default)]
    pub host: Option<String>,
    /// VRRP priority, 1-254, distinct per node: the highest holds the VIP.
    #[serde(default)]
    pub priority: Option<u8>,
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
    /// How the nodes share the VIP; `None` with a single node.
    pub ha: Option<Ha>,
    /// The UDP services on the VIP, in file order, each on its own port.
    pub udp: Vec<UdpService>,
}

/// A UDP service on the VIP.
///
/// Datagrams arriving on the VIP at `port` are grouped into flows by the
/// client's address and port (the VIP's side is fixed), and each flow goes
/// to one of the region's L7 nodes — the node's `address` at `to_port` —
/// picked by the same Maglev table as TCP connections: a flow sticks to its
/// node, only the flows of a node that leaves the table move (at their next
/// datagram), and a node the health checks have down gets no new flows.
/// Replies come back on the flow's own socket and leave from the VIP.
///
/// As Envoy's UDP proxy (and unlike nginx's `proxy_responses`), a flow is
/// not bounded by a count of replies: it ends after `idle_timeout` without a
/// datagram in either direction. HAProxy has no UDP; IPVS keeps UDP
/// "connections" the same way, with a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpService {
    /// The VIP's UDP port.
    pub port: u16,
    /// The port on the L7 nodes.
    pub to_port: u16,
    /// A flow idle this long in both directions ends.
    pub idle_timeout: Duration,
    /// Most flows at once per VIP address; new flows past it are dropped.
    pub max_flows: usize,
    /// Each datagram to a node starts with a PROXY v2 header (transport
    /// DGRAM) naming the client, the VIP and the L4 node.
    pub proxy_protocol: bool,
}

/// Default of `l4.udp[].idle_timeout` (Envoy's UDP proxy default).
pub const DEFAULT_UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default of `l4.udp[].max_flows`: each flow holds a socket.
pub const DEFAULT_MAX_FLOWS: usize = 10_000;

/// Largest accepted `l4.udp[].max_flows`: each flow holds a file
/// descriptor.
pub const MAX_MAX_FLOWS: usize = 1_000_000;

/// How several L4 nodes share a region's VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ha {
    /// Active-passive: keepalived moves the VIP to the healthy node with
    /// the highest priority.
    Vrrp(Vrrp),
    /// Active-active: every healthy node announces the VIP by BGP and the
    /// routers spread flows over them (ECMP).
    Bgp(Bgp),
}

impl Ha {
    /// The spelling used in the file.
    pub fn mode(&self) -> &'static str {
        match self {
            Ha::Vrrp(_) => "vrrp",
            Ha::Bgp(_) => "bgp",
        }
    }
}

/// VRRP (version 3) settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vrrp {
    /// Virtual router id, 1-255.
    pub virtual_router_id: u8,
    /// Advertisement interval, a multiple of 10ms.
    pub advert_interval: Duration,
    /// A recovered node with a higher priority takes the VIP back. Off by
    /// default: the L4 nodes keep no shared connection state, so taking
    /// the VIP back resets every connection opened on the standby
    /// meanwhile (measured by lab/e2e: all of them).
    pub preempt: bool,
}

/// BGP settings shared by the region's L4 nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp {
    /// The L4 nodes' AS number.
    pub asn: u32,
    /// The routers every node peers with.
    pub peers: Vec<BgpPeer>,
    /// BFD timers, when on.
    pub bfd: Option<Bfd>,
}

/// One BGP neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgpPeer {
    /// Its address.
    pub address: IpAddr,
    /// Its AS number.
    pub asn: u32,
}

/// BFD timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bfd {
    /// Transmit and receive interval.
    pub interval: Duration,
    /// Missed packets before the session goes down.
    pub multiplier: u8,
}

/// Default VRRP advertisement interval: takeover in about 0.35 s.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_millis(100);
/// Default BFD timers: a dead node is withdrawn in about 0.3 s.
pub const DEFAULT_BFD: Bfd = Bfd {
    interval: Duration::from_millis(100),
    multiplier: 3,
};

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
    /// The host it runs on.
    pub host: Option<String>,
    /// VRRP priority.
    pub priority: Option<u8>,
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
                host: node.host.clone(),
                priority: node.priority,
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
            Some(health::GRPC_CHECKS_POOLS_ONLY),
            &format!("{path}.health"),
            problems,
        ),
        drain_timeout,
        weights: raw.weights.clone(),
        ha: raw
            .ha
            .as_ref()
            .and_then(|ha| validate_ha(ha, &raw.nodes, path, problems)),
        udp: validate_udp(&raw.udp, path, problems),
    }
}

/// `l4.udp`; `tier` is the path of `l4`.
fn validate_udp(raw: &[RawUdpService], tier: &str, problems: &mut Problems) -> Vec<UdpService> {
    let mut services: Vec<UdpService> = Vec::new();
    for (index, service) in raw.iter().enumerate() {
        let path = format!("{tier}.udp[{index}]");
        let mut port = |field: &str, value: u32| match u16::try_from(value) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                problems.add(
                    format!("{path}.{field}"),
                    format!("{value} is not a port; use 1-65535"),
                );
                None
            }
        };
        let listen = port("port", service.port);
        let to_port = match service.to_port {
            None => listen,
            Some(value) => port("to_port", value),
        };
        let idle_timeout = match &service.idle_timeout {
            None => DEFAULT_UDP_IDLE_TIMEOUT,
            Some(text) => problems
                .check(format!("{path}.idle_timeout"), parse_duration(&text.text()))
                .unwrap_or(DEFAULT_UDP_IDLE_TIMEOUT),
        };
        if idle_timeout.is_zero() {
            problems.add(
                format!("{path}.idle_timeout"),
                "must be longer than 0s; write e.g. \"60s\"",
            );
        }
        let max_flows = service.max_flows.unwrap_or(DEFAULT_MAX_FLOWS);
        if !(1..=MAX_MAX_FLOWS).contains(&max_flows) {
            problems.add(
                format!("{path}.max_flows"),
                format!(
                    "{max_flows} is out of range; use 1-{MAX_MAX_FLOWS} (each flow holds a socket)"
                ),
            );
        }
        let (Some(port), Some(to_port)) = (listen, to_port) else {
            continue;
        };
        if let Some(other) = raw.iter().position(|s| s.port == service.port)
            && other < index
        {
            problems.add(
                format!("{path}.port"),
                format!("UDP port {port} is already served by {tier}.udp[{other}]; give each UDP service its own port"),
            );
            continue;
        }
        services.push(UdpService {
            port,
            to_port,
            idle_timeout,
            max_flows,
            proxy_protocol: service.proxy_protocol.unwrap_or(false),
        });
    }
    services
}

/// `l4.ha` and the nodes' priorities; `tier` is the path of `l4`.
fn validate_ha(
    raw: &RawHa,
    nodes: &[RawL4Node],
    tier: &str,
    problems: &mut Problems,
) -> Option<Ha> {
    let path = format!("{tier}.ha");
    let vrrp_only = [
        ("virtual_router_id", raw.virtual_router_id.is_some()),
        ("advert_interval", raw.advert_interval.is_some()),
        ("preempt", raw.preempt.is_some()),
    ];
    let bgp_only = [
        ("asn", raw.asn.is_some()),
        ("peers", !raw.peers.is_empty()),
        ("bfd", raw.bfd.is_some()),
    ];
    let mut refuse = |fields: &[(&str, bool)], mode: &str| {
        for (field, _) in fields.iter().filter(|(_, set)| *set) {
            problems.add(
                format!("{path}.{field}"),
                format!("{field} does not apply to mode {mode}; remove it"),
            );
        }
    };
    match raw.mode.as_str() {
        "vrrp" => {
            refuse(&bgp_only, "vrrp");
            let virtual_router_id = match raw.virtual_router_id {
                Some(id @ 1..=255) => id as u8,
                Some(id) => {
                    problems.add(
                        format!("{path}.virtual_router_id"),
                        format!("{id} is outside 1-255"),
                    );
                    1
                }
                None => {
                    problems.add(
                        format!("{path}.virtual_router_id"),
                        "missing; give the region's VRRP group an id 1-255 that no other group on its LAN uses",
                    );
                    1
                }
            };
            let advert_interval = match &raw.advert_interval {
                None => DEFAULT_ADVERT_INTERVAL,
                Some(text) => problems
                    .check(
                        format!("{path}.advert_interval"),
                        parse_duration(&text.text()),
                    )
                    .unwrap_or(DEFAULT_ADVERT_INTERVAL),
            };
            let centis = advert_interval.as_millis();
            if centis % 10 != 0 || !(10..=40_950).contains(&centis) {
                problems.add(
                    format!("{path}.advert_interval"),
                    "VRRPv3 counts in centiseconds: use 10ms to 40950ms in steps of 10ms, e.g. \"100ms\"",
                );
            }
            let mut seen: Vec<(u8, &str)> = Vec::new();
            for (index, node) in nodes.iter().enumerate() {
                let field = format!("{tier}.nodes[{index}].priority");
                match node.priority {
                    None => problems.add(
                        field,
                        "missing; in VRRP mode each L4 node needs a priority 1-254 (the highest holds the VIP)",
                    ),
                    Some(p @ (0 | 255)) => problems.add(field, format!("{p} is reserved by VRRP; use 1-254")),
                    Some(p) => match seen.iter().find(|(q, _)| *q == p) {
                        Some((_, other)) => problems.add(
                            field,
                            format!("{:?} has the same priority {p} as {other:?}; give each node its own so one is clearly the master", node.name),
                        ),
                        None => seen.push((p, &node.name)),
                    },
                }
            }
            Some(Ha::Vrrp(Vrrp {
                virtual_router_id,
                advert_interval,
                preempt: raw.preempt.unwrap_or(false),
            }))
        }
        "bgp" => {
            refuse(&vrrp_only, "bgp");
            for (index, node) in nodes.iter().enumerate() {
                if node.priority.is_some() {
                    let field = format!("{tier}.nodes[{index}].priority");
                    problems.add(field, "priority applies to VRRP only; in BGP mode every healthy node carries traffic");
                }
            }
            let asn = raw.asn.unwrap_or_else(|| {
                problems.add(
                    format!("{path}.asn"),
                    "missing; the L4 nodes' AS number, e.g. 65001 (a private AS)",
                );
                0
            });
            if raw.peers.is_empty() {
                problems.add(
                    format!("{path}.peers"),
                    "no BGP peers; add the router(s), e.g. [{ address: 198.51.100.1, asn: 64512 }]",
                );
            }
            let peers = raw
                .peers
                .iter()
                .enumerate()
                .filter_map(|(index, peer)| {
                    let text = peer.address.text();
                    let address = problems.check(
                        format!("{path}.peers[{index}].address"),
                        text.parse::<IpAddr>()
                            .map_err(|_| format!("{text:?} is not an IP address")),
                    )?;
                    Some(BgpPeer {
                        address,
                        asn: peer.asn,
                    })
                })
                .collect();
            let bfd = match &raw.bfd {
                None | Some(RawBfd::Switch(true)) => Some(DEFAULT_BFD),
                Some(RawBfd::Switch(false)) => None,
                Some(RawBfd::Timers {
                    interval,
                    multiplier,
                }) => {
                    let interval = match interval {
                        None => DEFAULT_BFD.interval,
                        Some(text) => problems
                            .check(format!("{path}.bfd.interval"), parse_duration(&text.text()))
                            .unwrap_or(DEFAULT_BFD.interval),
                    };
                    if interval < Duration::from_millis(10) {
                        problems.add(format!("{path}.bfd.interval"), "must be at least 10ms");
                    }
                    let multiplier = multiplier.unwrap_or(DEFAULT_BFD.multiplier);
                    if multiplier == 0 {
                        problems.add(format!("{path}.bfd.multiplier"), "must be at least 1");
                    }
                    Some(Bfd {
                        interval,
                        multiplier,
                    })
                }
            };
            Some(Ha::Bgp(Bgp { asn, peers, bfd }))
        }
        other => {
            problems.add(
                format!("{path}.mode"),
                format!("unknown mode {other:?}; use vrrp (active-passive, keepalived) or bgp (active-active, BIRD)"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/three-regions.yaml");
    const L4_LINE: &str = "      nodes: [{ name: us-east-l4, admin: \"127.0.1.1:9100\" }]\n";

    /// The example's UDP service, in each region.
    const UDP_LINE: &str = "      udp: [{ port: 7007 }]\n";

    /// The example with `extra` (indented under `l4:`) added to us-east's
    /// L4 tier, in place of its UDP service.
    fn with_l4(extra: &str) -> Result<crate::Topology, crate::LoadError> {
        assert!(
            EXAMPLE.contains(L4_LINE) && EXAMPLE.contains(UDP_LINE),
            "the example's us-east l4 block changed"
        );
        let text =
            EXAMPLE
                .replacen(UDP_LINE, "", 1)
                .replacen(L4_LINE, &format!("{L4_LINE}{extra}"), 1);
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
        assert!(tier.udp.is_empty());
    }

    #[test]
    fn udp_services_with_their_defaults() {
        let topology = with_l4(
            "      udp:\n        - { port: 53, to_port: 5353, idle_timeout: 30s, max_flows: 100, proxy_protocol: true }\n        - { port: 443 }\n",
        )
        .unwrap();
        let udp = &l4(&topology).udp;
        assert_eq!(
            udp[0],
            UdpService {
                port: 53,
                to_port: 5353,
                idle_timeout: Duration::from_secs(30),
                max_flows: 100,
                proxy_protocol: true,
            }
        );
        assert_eq!(
            udp[1],
            UdpService {
                port: 443,
                to_port: 443,
                idle_timeout: DEFAULT_UDP_IDLE_TIMEOUT,
                max_flows: DEFAULT_MAX_FLOWS,
                proxy_protocol: false,
            }
        );
    }

    #[test]
    fn bad_udp_services_are_refused_with_their_paths() {
        let error = with_l4(
            "      udp:\n        - { port: 0 }\n        - { port: 53, to_port: 70000, max_flows: 0 }\n        - { port: 123, idle_timeout: 0s }\n        - { port: 123 }\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "regions.us-east.l4.udp[0].port: 0 is not a port; use 1-65535",
            "regions.us-east.l4.udp[1].to_port: 70000 is not a port",
            "regions.us-east.l4.udp[1].max_flows: 0 is out of range; use 1-1000000",
            "regions.us-east.l4.udp[2].idle_timeout: must be longer than 0s",
            "regions.us-east.l4.udp[3].port: UDP port 123 is already served by regions.us-east.l4.udp[2]",
        ] {
            assert!(error.contains(expected), "{expected:?} not in:\n{error}");
        }
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
