//! The machines a deployment runs on: the `hosts:` section, and the rules
//! that tie each component to its host — every component names one when
//! the file has hosts, and listens only on that host's addresses (or on
//! its region's VIP, which keepalived or BIRD brings to the L4 nodes).
//!
//! A file without `hosts:` runs every component on this machine, as
//! `gtm up` does.

use std::net::IpAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::field::{Problems, Scalar};
use crate::model::Topology;

/// One `hosts:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// SSH destination (`user@address`, or a name from the operator's ssh
    /// config); default the host's name.
    #[serde(default)]
    pub ssh: Option<String>,
    /// The host's own addresses (IPv4 and/or IPv6).
    pub addresses: Vec<Scalar>,
    /// The network interface VRRP runs on and the VIP is added to (default
    /// `eth0`).
    #[serde(default)]
    pub interface: Option<String>,
    /// Where the deployment lives on the host (default `/var/lib/gtm`).
    #[serde(default)]
    pub dir: Option<String>,
    /// `systemd` (default): components run as systemd units; `process`:
    /// hosts without systemd (containers, the network lab), where `gtm`
    /// starts them as daemons with pid files over SSH.
    #[serde(default)]
    pub init: Option<String>,
}

/// How components are run on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// A systemd unit per component.
    Systemd,
    /// Daemons with pid files, started over SSH.
    Process,
}

impl Init {
    /// The spelling used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::Process => "process",
        }
    }
}

/// One validated host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Unique name, referred to by components' `host:`.
    pub name: String,
    /// SSH destination.
    pub ssh: String,
    /// Its addresses; at least one.
    pub addresses: Vec<IpAddr>,
    /// The interface for VRRP and the VIP.
    pub interface: String,
    /// The deployment directory (absolute).
    pub dir: PathBuf,
    /// How its components run.
    pub init: Init,
}

impl Host {
    /// The host's first address of the same family as `like` (for VRRP
    /// unicast peers and BGP router ids).
    pub fn address_like(&self, like: IpAddr) -> Option<IpAddr> {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == like.is_ipv4())
    }
}

/// Default of `interface`.
pub const DEFAULT_INTERFACE: &str = "eth0";
/// Default of `dir`.
pub const DEFAULT_DIR: &str = "/var/lib/gtm";

pub(crate) fn validate(raw: &IndexMap<String, RawHost>, problems: &mut Problems) -> Vec<Host> {
    raw.iter()
        .filter_map(|(name, host)| {
            let path = format!("hosts.{name}");
            let before = problems.0.len();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                problems.add(
                    &path,
                    format!("host name {name:?} must be letters, digits, '-', '_' or '.'"),
                );
            }
            if host.addresses.is_empty() {
                problems.add(
                    format!("{path}.addresses"),
                    "no addresses; list the host's own, e.g. [\"198.51.100.2\"]",
                );
            }
            let addresses: Vec<IpAddr> = host
                .addresses
                .iter()
                .enumerate()
                .filter_map(|(index, text)| {
                    let text = text.text();
                    problems.check(
                        format!("{path}.addresses[{index}]"),
                        text.parse::<IpAddr>().map_err(|_| {
                            format!("{text:?} is not an IP address; write e.g. \"198.51.100.2\"")
                        }),
                    )
                })
                .collect();
            let ssh = host.ssh.clone().unwrap_or_else(|| name.clone());
            if ssh.is_empty() || ssh.starts_with('-') || ssh.contains(char::is_whitespace) {
                problems.add(
                    format!("{path}.ssh"),
                    format!("{ssh:?} is not an SSH destination; write e.g. \"root@198.51.100.2\""),
                );
            }
            let interface = host
                .interface
                .clone()
                .unwrap_or_else(|| DEFAULT_INTERFACE.to_owned());
            if interface.is_empty()
                || interface.len() > 15
                || !interface
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
            {
                problems.add(
                    format!("{path}.interface"),
                    format!("{interface:?} is not an interface name; write e.g. \"eth0\""),
                );
            }
            let dir = PathBuf::from(host.dir.as_deref().unwrap_or(DEFAULT_DIR));
            if !dir.is_absolute() || dir.to_str().is_none_or(|d| d.contains(char::is_whitespace)) {
                problems.add(
                    format!("{path}.dir"),
                    format!(
                        "{:?} must be an absolute path without spaces, e.g. \"/var/lib/gtm\"",
                        dir.display()
                    ),
                );
            }
            let init = match host.init.as_deref() {
                None | Some("systemd") => Init::Systemd,
                Some("process") => Init::Process,
                Some(other) => {
                    problems.add(
                        format!("{path}.init"),
                        format!("unknown init {other:?}; use systemd or process"),
                    );
                    Init::Systemd
                }
            };
            (problems.0.len() == before).then(|| Host {
                name: name.clone(),
                ssh,
                addresses,
                interface,
                dir,
                init,
            })
        })
        .collect()
}

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
pub(crate) fn check_placement(topology: &Topology, problems: &mut Problems) {
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
                binds: vec![(backend.listen.ip(), "listen")],
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
            crate::tiers::l4::check_placement(l4, region, topology, problems);
        }
    }
}
