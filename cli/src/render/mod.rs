//! The topology → each host's bundle: the files (topology, units or
//! `gtmctl`, keepalived/BIRD configuration) and the services, in start
//! order, that run the host's components. Pure: no I/O beyond reading the
//! files the topology references.
//!
//! `gtm render` writes the bundles out for the operator's own
//! configuration management; `gtm deploy` pushes them over SSH.

use std::path::{Path, PathBuf};

use topology::Topology;
use topology::hosts::Host;

/// Everything one host needs, as files relative to the host's `dir`.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The host: name, ssh, addresses, interface, dir, init.
    pub host: Host,
    /// Every file to write under `host.dir`.
    pub files: Vec<BundleFile>,
    /// The host's services, in start order.
    pub services: Vec<Service>,
}

/// One file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFile {
    /// Relative to the host's `dir`.
    pub path: PathBuf,
    /// Its bytes.
    pub contents: Vec<u8>,
    /// Its permission bits (e.g. `0o644`, `0o755` for `gtmctl`).
    pub mode: u32,
    /// Owned by the service user and readable by it alone (0600): keys.
    pub secret: bool,
}

/// One long-running process on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The systemd unit name without `.service`, e.g. `gtm-l4-us-east-l4a`,
    /// `gtm-keepalived`, `gtm-bird`, `gtm-announce-us-east-l4a`.
    pub name: String,
    /// The topology component it runs (`None` for keepalived and BIRD).
    pub component: Option<String>,
    /// Its place in the cross-host start order (stop in reverse).
    pub stage: Stage,
    /// The absolute argv on the host (`{dir}/bin/gslb`, `{dir}/bin/edge`;
    /// keepalived and bird from `PATH`).
    pub argv: Vec<String>,
    /// How a configuration change reaches it.
    pub reload: Reload,
}

/// The cross-host start order: every host's backends before any L7 node,
/// and so on; stop in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Demo backends.
    Backend,
    /// L7 nodes.
    L7,
    /// L4 nodes.
    L4,
    /// keepalived, BIRD and `edge announce`: the VIP moves to a node only
    /// once its L4 node serves.
    Ha,
    /// GSLB name servers, last: they answer with VIPs that now work.
    Gslb,
}

/// How a service takes a new configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP: it re-reads its files in place.
    Sighup,
    /// Stop and start again.
    Restart,
}

/// One bundle per host that runs something, in `topology.hosts` order.
/// `topology_path` is the file `topology` was loaded from: its text and
/// the files it references (relative to it) go into every bundle.
pub fn bundles(topology: &Topology, topology_path: &Path) -> anyhow::Result<Vec<Bundle>> {
    let _ = (topology, topology_path);
    Ok(Vec::new())
}
