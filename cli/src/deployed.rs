//! The deployment a state directory records: the topology as deployed (the
//! copy, so that editing the file does not change what `gtm` believes is
//! running), its components, and which of them run — from pid files for
//! `gtm up`, by asking each host over ssh for `gtm deploy`.

use std::net::SocketAddr;
use std::path::PathBuf;

use topology::{Region, Topology};

use crate::admin::{Admin, AdminError};
use crate::error::user;
use crate::plan::{Component, Kind, plan};
use crate::remote::{Ssh, each, services};
use crate::supervise::process;
use crate::supervise::state::{Deployment, PidRecord, RemoteService, StateDir};

/// How many hosts are asked at once.
pub const PARALLEL: usize = 16;
/// How long one host may take to say what runs.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A loaded deployment.
pub struct Deployed {
    /// What `deployment.json` says.
    pub deployment: Deployment,
    /// The topology as deployed.
    pub topology: Topology,
    /// Its components, in start order.
    pub components: Vec<Component>,
}

impl Deployed {
    /// The deployment in `state`, or `None` if nothing was deployed there.
    pub fn load(state: &StateDir) -> anyhow::Result<Option<Deployed>> {
        let Some(deployment) = state.deployment()? else {
            return Ok(None);
        };
        let copy = state.topology_copy();
        let text = std::fs::read_to_string(&copy).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} ({e}); run `gtm down` and `gtm up` again",
                copy.display()
            )
        })?;
        let topology = topology::parse(&text, &deployment.topology.display().to_string())?;
        let components = plan(&topology, &deployment.topology);
        Ok(Some(Deployed {
            deployment,
            topology,
            components,
        }))
    }

    /// The deployment in `state`; a user error if there is none.
    pub fn require(state: &StateDir) -> anyhow::Result<Deployed> {
        Deployed::load(state)?.ok_or_else(|| {
            user(format!(
                "nothing is deployed in {}; start with `gtm up [FILE]` (or pass the --state-dir `gtm up` used)",
                state.root().display()
            ))
        })
    }

    /// The region named `name`; a user error naming the regions otherwise.
    pub fn region(&self, name: &str) -> anyhow::Result<&Region> {
        region(&self.topology, name)
    }

    /// A client of the admin APIs with the deployment's token.
    pub fn admin(&self) -> anyhow::Result<Admin> {
        Admin::new(Admin::token_for(&self.topology))
    }

    /// The DNS nodes' admin addresses, by node name.
    pub fn gslb_admins(&self) -> Vec<(String, SocketAddr)> {
        self.topology
            .dns
            .nodes
            .iter()
            .filter_map(|n| n.admin.map(|a| (n.name.clone(), a)))
            .collect()
    }

    /// The first answer of the DNS nodes' admin APIs to `ask`, asked in
    /// turn; a user error naming each node's failure when none answers.
    /// `what` says what was asked for.
    pub fn ask_gslb<T>(
        &self,
        what: &str,
        ask: impl Fn(SocketAddr) -> Result<T, AdminError>,
    ) -> anyhow::Result<T> {
        let mut why = Vec::new();
        for (name, addr) in self.gslb_admins() {
            match ask(addr) {
                Ok(answer) => return Ok(answer),
                Err(e) => why.push(format!("{name} ({addr}): {e}")),
            }
        }
        if why.is_empty() {
            why.push(
                "no DNS node has an admin API; give one an `admin:` address in dns.nodes".into(),
            );
        }
        Err(user(format!(
            "no GSLB node answered for {what}: {}",
            why.join("; ")
        )))
    }

    /// The first DNS address of the first DNS node.
    pub fn dns_server(&self) -> Option<SocketAddr> {
        self.topology
            .dns
            .nodes
            .first()
            .and_then(|n| n.listen.first().copied())
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The components of `region` of `kind`.
    pub fn in_region(&self, region: &str, kind: Kind) -> Vec<&Component> {
        self.components
            .iter()
            .filter(|c| c.kind == kind && c.region.as_deref() == Some(region))
            .collect()
    }

    /// The topology file as deployed (the original path).
    pub fn file(&self) -> &PathBuf {
        &self.deployment.topology
    }

    /// The ssh client of a deployment on hosts (`gtm deploy`); `None` for
    /// one on this machine (`gtm up`).
    pub fn ssh(&self) -> Option<Ssh> {
        self.deployment
            .remote
            .as_ref()
            .map(|r| Ssh::new(r.ssh_config.clone()))
    }

    /// Every service of a deployment on hosts, with its host.
    pub fn remote_services(&self) -> Vec<(&topology::hosts::Host, &RemoteService)> {
        let Some(remote) = &self.deployment.remote else {
            return Vec::new();
        };
        remote
            .hosts
            .iter()
            .filter_map(|h| Some((self.topology.host(&h.name)?, &h.services)))
            .flat_map(|(host, services)| services.iter().map(move |s| (host, s)))
            .collect()
    }

    /// The components whose service runs, asked of every host at once
    /// (`gtmctl status` / `systemctl is-active`) — only the hosts of
    /// `region`'s components when one is given, as a drill needs no more;
    /// a host that does not answer counts as running nothing. `None` for a
    /// deployment on this machine (pid files say).
    pub fn remote_running(&self, region: Option<&str>) -> Option<Vec<String>> {
        let ssh = self.ssh()?;
        let remote = self.deployment.remote.as_ref()?;
        let in_region = |component: &Option<String>| {
            component
                .as_deref()
                .and_then(|name| self.component(name))
                .is_some_and(|c| c.region.as_deref() == region)
        };
        let hosts: Vec<_> = remote
            .hosts
            .iter()
            .filter(|h| region.is_none() || h.services.iter().any(|s| in_region(&s.component)))
            .collect();
        let asked = each(&hosts, PARALLEL, |h| {
            let host = self.topology.host(&h.name)?;
            let names: Vec<&str> = h.services.iter().map(|s| s.name.as_str()).collect();
            let output = ssh
                .run(&host.ssh, &services::status(host, &names), ASK_TIMEOUT)
                .ok()?;
            let running = services::parse_status(&output.stdout);
            Some(
                h.services
                    .iter()
                    .filter(|s| running.contains(&s.name))
                    .filter_map(|s| s.component.clone())
                    .collect::<Vec<_>>(),
            )
        });
        Some(asked.into_iter().flatten().flatten().collect())
    }

    /// Runs `command` (one of [`services`]' builders, e.g.
    /// [`services::kill`]) on the services that run `components`, every
    /// host at once; each host's result names it: `Ok` with what the host
    /// printed, or the error. A deployment on this machine has no hosts
    /// and gets an empty list.
    pub fn on_hosts(
        &self,
        components: &[String],
        command: fn(&topology::hosts::Host, &[&str]) -> String,
        timeout: std::time::Duration,
    ) -> Vec<(String, Result<String, String>)> {
        let Some(ssh) = self.ssh() else {
            return Vec::new();
        };
        let mut by_host: Vec<(&topology::hosts::Host, Vec<&str>)> = Vec::new();
        for (host, service) in self.remote_services() {
            if !service
                .component
                .as_ref()
                .is_some_and(|c| components.contains(c))
            {
                continue;
            }
            match by_host.iter_mut().find(|(h, _)| h.name == host.name) {
                Some((_, names)) => names.push(&service.name),
                None => by_host.push((host, vec![&service.name])),
            }
        }
        each(&by_host, PARALLEL, |(host, names)| {
            let result = match ssh.run(&host.ssh, &command(host, names), timeout) {
                Ok(output) if output.ok() => Ok(output.stdout.trim().to_owned()),
                Ok(output) => Err(output.last_error().to_owned()),
                Err(error) => Err(error.to_string()),
            };
            (host.name.clone(), result)
        })
    }
}

/// The region named `name` in `topology`; a user error naming the regions
/// otherwise.
pub fn region<'t>(topology: &'t Topology, name: &str) -> anyhow::Result<&'t Region> {
    topology
        .regions
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = topology.regions.iter().map(|r| r.name.as_str()).collect();
            user(format!(
                "unknown region {name:?}; the topology has: {}",
                if names.is_empty() {
                    "no regions".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// Whether the component `name` runs, with its pid file.
pub fn running(state: &StateDir, name: &str) -> anyhow::Result<Option<PidRecord>> {
    Ok(state.record(name)?.filter(process::is_running))
}

/// The region whose VIP is `ip`.
pub fn region_of(topology: &Topology, ip: std::net::IpAddr) -> Option<&str> {
    topology
        .regions
        .iter()
        .find(|r| {
            r.vip.ipv4.map(std::net::IpAddr::V4) == Some(ip)
                || r.vip.ipv6.map(std::net::IpAddr::V6) == Some(ip)
        })
        .map(|r| r.name.as_str())
}

/// `127.0.1.1 (us-east)`, or just the address when no region has it.
pub fn describe_answer(topology: &Topology, ips: &[std::net::IpAddr]) -> String {
    if ips.is_empty() {
        return "no address".to_owned();
    }
    ips.iter()
        .map(|ip| match region_of(topology, *ip) {
            Some(region) => format!("{ip} ({region})"),
            None => ip.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
