//! What a topology runs on this machine: one [`Component`] per process, in
//! start order (backends, then L7 nodes, then L4 nodes, then the GSLB), with
//! the addresses it binds and how its readiness is checked. Pure: no I/O.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Serialize;
use topology::Topology;

/// What kind of process a component is; the order is the start order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A demo backend (`edge backend`).
    Backend,
    /// An L7 node (`edge l7`).
    L7,
    /// An L4 node on the VIP (`edge l4`).
    L4,
    /// A GSLB name server (`gslb`).
    Gslb,
}

impl Kind {
    /// Every kind, in start order.
    pub const START_ORDER: [Kind; 4] = [Kind::Backend, Kind::L7, Kind::L4, Kind::Gslb];

    /// The spelling used in pid files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backend => "backend",
            Kind::L7 => "l7",
            Kind::L4 => "l4",
            Kind::Gslb => "gslb",
        }
    }

    /// Parses [`Kind::as_str`].
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::START_ORDER.into_iter().find(|k| k.as_str() == text)
    }

    /// The tier's name in progress messages.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Backend => "backends",
            Kind::L7 => "L7 nodes",
            Kind::L4 => "L4 nodes",
            Kind::Gslb => "DNS nodes",
        }
    }

    /// The binary that runs it.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Gslb => "gslb",
            _ => "edge",
        }
    }
}

/// A transport protocol of a bound address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `TCP` / `UDP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

/// An address a component binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bind {
    /// Where.
    pub addr: SocketAddr,
    /// Over what.
    pub proto: Proto,
    /// What for: `DNS`, `HTTP`, `HTTPS`, `admin`.
    pub purpose: &'static str,
}

/// How to tell that a component serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Probe {
    /// A real DNS query (the zone's SOA) answered on every address.
    Dns {
        /// The addresses to ask.
        addrs: Vec<SocketAddr>,
        /// The zone apex asked for.
        zone: String,
    },
    /// `GET path` answered with 2xx.
    Http {
        /// Where.
        addr: SocketAddr,
        /// The path.
        path: String,
    },
}

/// One process of the deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Component {
    /// Its name in the topology (unique across every kind).
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The region it belongs to (a DNS node's declared region).
    pub region: Option<String>,
    /// The host it runs on (`None`: this machine).
    pub host: Option<String>,
    /// The arguments after the binary.
    pub args: Vec<String>,
    /// Every address it binds.
    pub binds: Vec<Bind>,
    /// Its readiness check.
    pub probe: Probe,
    /// Its admin API, if it has one.
    pub admin: Option<SocketAddr>,
}

/// Every component of `topology`, in start order, each started with
/// `--config config`.
pub fn plan(topology: &Topology, config: &Path) -> Vec<Component> {
    let config = config.display().to_string();
    let mut components = Vec::new();
    for region in &topology.regions {
        for backend in &region.backends {
            components.push(Component {
                name: backend.name.clone(),
                kind: Kind::Backend,
                region: Some(region.name.clone()),
                host: backend.host.clone(),
                args: vec![
                    "backend".into(),
                    "--config".into(),
                    config.clone(),
                    "--name".into(),
                    backend.name.clone(),
                ],
                binds: backend
                    .addresses()
                    .into_iter()
                    .map(|(addr, field)| match field {
                        "udp" => Bind {
                            addr,
                            proto: Proto::Udp,
                            purpose: "UDP echo",
                        },
                        "tls.listen" => Bind {
                            addr,
                            proto: Proto::Tcp,
                            purpose: "HTTPS",
                        },
                        _ => Bind {
                            addr,
                            proto: Proto::Tcp,
                            purpose: "HTTP",
                        },
                    })
                    .collect(),
                probe: Probe::Http {
                    addr: backend.listen,
                    path: "/healthz".into(),
                },
                admin: None,
            });
        }
    }
    for region in &topology.regions {
        let Some(l7) = &region.l7 else { continue };
        for node in &l7.nodes {
            let mut binds = vec![Bind {
                addr: SocketAddr::new(node.address, region.vip.http_port),
                proto: Proto::Tcp,
                purpose: "HTTP",
            }];
            if l7.tls.is_some() {
                binds.push(Bind {
                    addr: SocketAddr::new(node.address, region.vip.https_port),
                    proto: Proto::Tcp,
                    purpose: "HTTPS",
                });
            }
            binds.push(Bind {
                addr: node.admin,
                proto: Proto::Tcp,
                purpose: "admin",
            });
            components.push(Component {
                name: node.name.clone(),
                kind: Kind::L7,
                region: Some(region.name.clone()),
                host: node.host.clone(),
                args: vec![
                    "l7".into(),
                    "--config".into(),
                    config.clone(),
                    "--node".into(),
                    node.name.clone(),
                ],
                binds,
                probe: Probe::Http {
                    addr: node.admin,
                    path: "/healthz".into(),
                },
                admin: Some(node.admin),
            });
        }
    }
    for region in &topology.regions {
        let Some(l4) = &region.l4 else { continue };
        // On one machine only the IPv4 VIP is on loopback (fd00:… is not);
        // on real hosts the node listens on every VIP address.
        let vips: Vec<IpAddr> = if topology.hosts.is_empty() {
            region.vip.addresses().take(1).collect()
        } else {
            region.vip.addresses().collect()
        };
        for node in &l4.nodes {
            let mut binds = Vec::new();
            for &vip in &vips {
                binds.push(Bind {
                    addr: SocketAddr::new(vip, region.vip.http_port),
                    proto: Proto::Tcp,
                    purpose: "HTTP",
                });
                binds.push(Bind {
                    addr: SocketAddr::new(vip, region.vip.https_port),
                    proto: Proto::Tcp,
                    purpose: "HTTPS",
                });
                binds.extend(l4.udp.iter().map(|service| Bind {
                    addr: SocketAddr::new(vip, service.port),
                    proto: Proto::Udp,
                    purpose: "UDP service",
                }));
            }
            binds.push(Bind {
                addr: node.admin,
                proto: Proto::Tcp,
                purpose: "admin",
            });
            components.push(Component {
                name: node.name.clone(),
                kind: Kind::L4,
                region: Some(region.name.clone()),
                host: node.host.clone(),
                args: vec![
                    "l4".into(),
                    "--config".into(),
                    config.clone(),
                    "--node".into(),
                    node.name.clone(),
                ],
                binds,
                probe: Probe::Http {
                    addr: node.admin,
                    path: "/healthz".into(),
                },
                admin: Some(node.admin),
            });
        }
    }
    let zone = topology
        .dns
        .zones
        .first()
        .map_or_else(|| ".".to_owned(), |z| z.origin.to_string());
    for node in &topology.dns.nodes {
        let mut binds = Vec::new();
        for addr in &node.listen {
            binds.push(Bind {
                addr: *addr,
                proto: Proto::Udp,
                purpose: "DNS",
            });
            binds.push(Bind {
                addr: *addr,
                proto: Proto::Tcp,
                purpose: "DNS",
            });
        }
        if let Some(admin) = node.admin {
            binds.push(Bind {
                addr: admin,
                proto: Proto::Tcp,
                purpose: "admin",
            });
        }
        components.push(Component {
            name: node.name.clone(),
            kind: Kind::Gslb,
            region: node.region.map(|id| topology.region(id).name.clone()),
            host: node.host.clone(),
            args: vec![
                "--config".into(),
                config.clone(),
                "--node".into(),
                node.name.clone(),
            ],
            binds,
            probe: Probe::Dns {
                addrs: node.listen.clone(),
                zone: zone.clone(),
            },
            admin: node.admin,
        });
    }
    components
}

/// Addresses two components on one host would both bind, as problems in
/// the style of the topology's validation (`a and b both bind …`). The
/// topology checks each kind on its own; only the whole plan sees the
/// collisions across kinds (an L7 admin port on a backend's address, say).
/// Components on different hosts never collide: L4 nodes sharing a VIP
/// each listen on it on their own host.
pub fn conflicts(components: &[Component]) -> Vec<String> {
    type Owners<'a> = BTreeMap<(Option<&'a str>, SocketAddr, Proto), Vec<(&'a str, &'a str)>>;
    let mut owners: Owners = BTreeMap::new();
    for component in components {
        for bind in &component.binds {
            let key = (component.host.as_deref(), bind.addr, bind.proto);
            let entry = owners.entry(key).or_default();
            if !entry.iter().any(|(name, _)| *name == component.name) {
                entry.push((&component.name, bind.purpose));
            }
        }
    }
    owners
        .into_iter()
        .filter(|(_, users)| users.len() > 1)
        .map(|((_, addr, proto), users)| {
            let who: Vec<String> = users
                .iter()
                .map(|(name, purpose)| format!("{name} ({purpose})"))
                .collect();
            format!(
                "{addr} {} is bound by {}; give each its own address or port",
                proto.as_str(),
                who.join(" and ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
        topology::load(&path).expect("the example loads")
    }

    #[test]
    fn the_example_starts_backends_then_l7_then_l4_then_dns() {
        let components = plan(&example(), Path::new("/t.yaml"));
        let kinds: Vec<Kind> = components.iter().map(|c| c.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted, "start order");
        let count = |kind| kinds.iter().filter(|k| **k == kind).count();
        assert_eq!(
            (
                count(Kind::Backend),
                count(Kind::L7),
                count(Kind::L4),
                count(Kind::Gslb)
            ),
            (6, 6, 3, 1)
        );
        let l4 = components.iter().find(|c| c.name == "us-east-l4").unwrap();
        assert_eq!(
            l4.args,
            ["l4", "--config", "/t.yaml", "--node", "us-east-l4"]
        );
        assert!(
            l4.binds
                .iter()
                .any(|b| b.addr == "127.0.1.1:8080".parse().unwrap())
        );
        let ns1 = components.last().unwrap();
        assert_eq!(ns1.name, "ns1");
        assert_eq!(ns1.region.as_deref(), Some("us-east"));
        assert_eq!(
            ns1.probe,
            Probe::Dns {
                addrs: vec!["127.0.0.1:5353".parse().unwrap()],
                zone: "example.com.".into()
            }
        );
        assert!(conflicts(&components).is_empty());
    }

    #[test]
    fn an_l4_node_binds_its_udp_services_on_the_vip() {
        let components = plan(&example(), Path::new("/t.yaml"));
        let l4 = components.iter().find(|c| c.name == "us-east-l4").unwrap();
        let udp: Vec<(SocketAddr, &str)> = l4
            .binds
            .iter()
            .filter(|b| b.proto == Proto::Udp)
            .map(|b| (b.addr, b.purpose))
            .collect();
        assert_eq!(udp, [("127.0.1.1:7007".parse().unwrap(), "UDP service")]);
    }

    #[test]
    fn a_backend_binds_http_https_and_its_udp_echo() {
        let components = plan(&example(), Path::new("/t.yaml"));
        let web1 = components
            .iter()
            .find(|c| c.name == "us-east-web1")
            .unwrap();
        let binds: Vec<(String, Proto, &str)> = web1
            .binds
            .iter()
            .map(|b| (b.addr.to_string(), b.proto, b.purpose))
            .collect();
        assert_eq!(
            binds,
            [
                ("127.0.1.101:9000".into(), Proto::Tcp, "HTTP"),
                ("127.0.1.101:9443".into(), Proto::Tcp, "HTTPS"),
                ("127.0.1.11:7007".into(), Proto::Udp, "UDP echo"),
            ]
        );
    }

    #[test]
    fn an_address_bound_twice_across_kinds_is_a_conflict() {
        let mut components = plan(&example(), Path::new("/t.yaml"));
        let backend_addr = components[0].binds[0].addr;
        let l7 = components.iter_mut().find(|c| c.kind == Kind::L7).unwrap();
        l7.binds.push(Bind {
            addr: backend_addr,
            proto: Proto::Tcp,
            purpose: "admin",
        });
        let problems = conflicts(&components);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("us-east-web1 (HTTP) and us-east-l7a (admin)"),
            "{problems:?}"
        );
    }
}
