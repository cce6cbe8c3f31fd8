//! Which node this process is, picked out of the topology, with file paths
//! resolved.

use std::net::SocketAddr;
use std::path::Path;

use topology::Topology;
use topology::tiers::l7::{BackendTrust, L7Node, L7Tier};

use crate::ConfigError;

/// Everything one L7 node serves from: its region's tier, its own entry
/// and the VIP's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The region's name.
    pub region: String,
    /// This node.
    pub node: L7Node,
    /// The region's L7 tier, certificate, ticket-key and backend TLS paths
    /// made absolute.
    pub tier: L7Tier,
    /// Plain HTTP port (the VIP's).
    pub http_port: u16,
    /// HTTPS port (the VIP's).
    pub https_port: u16,
}

impl NodeSpec {
    /// The node called `name` in `topology`; relative certificate,
    /// ticket-key and backend TLS paths are resolved against `base_dir`
    /// (the topology file's directory).
    pub fn from_topology(
        topology: &Topology,
        name: &str,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let mut known = Vec::new();
        for region in &topology.regions {
            let Some(tier) = &region.l7 else { continue };
            for node in &tier.nodes {
                if node.name == name {
                    let mut tier = tier.clone();
                    if let Some(tls) = &mut tier.tls {
                        for cert in &mut tls.certs {
                            if cert.cert.is_relative() {
                                cert.cert = base_dir.join(&cert.cert);
                            }
                            if cert.key.is_relative() {
                                cert.key = base_dir.join(&cert.key);
                            }
                        }
                        if let Some(keys) = &mut tls.ticket_keys
                            && keys.is_relative()
                        {
                            *keys = base_dir.join(&*keys);
                        }
                    }
                    for tls in tier.pools.iter_mut().filter_map(|p| p.tls.as_mut()) {
                        let absolute = |path: &mut std::path::PathBuf| {
                            if path.is_relative() {
                                *path = base_dir.join(&*path);
                            }
                        };
                        if let BackendTrust::CaFile(ca) = &mut tls.trust {
                            absolute(ca);
                        }
                        if let Some(client) = &mut tls.client_cert {
                            absolute(&mut client.cert);
                            absolute(&mut client.key);
                        }
                    }
                    return Ok(Self {
                        region: region.name.clone(),
                        node: node.clone(),
                        tier,
                        http_port: region.vip.http_port,
                        https_port: region.vip.https_port,
                    });
                }
                known.push(node.name.clone());
            }
        }
        Err(ConfigError(format!(
            "no L7 node named {name:?} in the topology; L7 nodes: {}",
            if known.is_empty() {
                "none (add an `l7:` block to a region)".to_owned()
            } else {
                known.join(", ")
            }
        )))
    }

    /// The plain HTTP listen address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.node.address, self.http_port)
    }

    /// The HTTPS listen address, when TLS is configured.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.tier
            .tls
            .as_ref()
            .map(|_| SocketAddr::new(self.node.address, self.https_port))
    }
}
