//! The machines a deployment runs on: the `hosts:` section as written and
//! validated on its own. The rules that tie components to hosts need the
//! whole model and live in the private `placement` module.
//!
//! A file without `hosts:` runs every component on this machine, as
//! `gtm up` does.

use std::net::IpAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::field::{Problems, Scalar};

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
