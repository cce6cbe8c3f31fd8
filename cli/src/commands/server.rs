//! `gtm server drain | undrain | weight REGION POOL SERVER`: an operator's
//! control of one backend server, applied through the admin API of every
//! L7 node of the region (a `gtm up` deployment or one on its hosts alike).

use serde::Serialize;

use crate::admin::{ServerControl, l7};
use crate::cli::{ServerArgs, ServerCommand, ServerTarget};
use crate::deployed::Deployed;
use crate::error::user;
use crate::plan::Kind;
use crate::printer::{Printer, Style};
use crate::supervise::state::StateDir;

/// What `gtm server` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The region.
    pub region: String,
    /// The pool.
    pub pool: String,
    /// The server.
    pub server: String,
    /// What was asked: `drain`, `undrain` or `weight`.
    pub action: &'static str,
    /// Each L7 node's answer.
    pub nodes: Vec<NodeResult>,
}

/// One L7 node's answer.
#[derive(Debug, Serialize)]
pub struct NodeResult {
    /// The node.
    pub node: String,
    /// The server as the node shows it after the change.
    pub server: Option<l7::Server>,
    /// Applied, but not saved in the node's state file: lost on restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Why the node did not apply it.
    pub error: Option<String>,
}

/// Runs `gtm server …`.
pub fn run(args: &ServerArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let (target, control, action) = match &args.command {
        ServerCommand::Drain(target) => (target, ServerControl::Drain, "drain"),
        ServerCommand::Undrain(target) => (target, ServerControl::Undrain, "undrain"),
        ServerCommand::Weight {
            target,
            weight,
            reset,
        } => (
            target,
            ServerControl::Weight(weight.filter(|_| !reset)),
            "weight",
        ),
    };
    let deployed = Deployed::require(state)?;
    check_target(&deployed, target)?;
    let admin = deployed.admin()?;
    let nodes: Vec<NodeResult> = deployed
        .in_region(&target.region, Kind::L7)
        .into_iter()
        .map(|node| {
            let answer = node
                .admin
                .ok_or_else(|| format!("{} has no admin address", node.name))
                .and_then(|addr| {
                    admin
                        .server_control(addr, &target.pool, &target.server, control)
                        .map_err(|e| e.to_string())
                });
            NodeResult {
                node: node.name.clone(),
                server: answer.as_ref().ok().map(|change| change.server.clone()),
                warning: answer
                    .as_ref()
                    .ok()
                    .and_then(|change| change.warning.clone()),
                error: answer.err(),
            }
        })
        .collect();
    let report = Report {
        region: target.region.clone(),
        pool: target.pool.clone(),
        server: target.server.clone(),
        action,
        nodes,
    };
    printer.result(&report, |p| print(&report, p));
    let failed = report.nodes.iter().filter(|n| n.error.is_some()).count();
    if failed > 0 {
        return Err(user(format!(
            "{failed} of {} L7 node(s) did not apply the change; run the command again once they answer",
            report.nodes.len()
        )));
    }
    Ok(())
}

/// Refuses a region without an L7 tier, or a pool or server it does not
/// have, naming what exists.
fn check_target(deployed: &Deployed, target: &ServerTarget) -> anyhow::Result<()> {
    let region = deployed.region(&target.region)?;
    let Some(l7) = &region.l7 else {
        return Err(user(format!(
            "region {} has no L7 tier: servers belong to L7 pools",
            target.region
        )));
    };
    let Some(pool) = l7.pools.iter().find(|p| p.name == target.pool) else {
        let names: Vec<&str> = l7.pools.iter().map(|p| p.name.as_str()).collect();
        return Err(user(format!(
            "region {} has no pool {:?}; pools: {}",
            target.region,
            target.pool,
            names.join(", ")
        )));
    };
    if !pool
        .servers
        .iter()
        .any(|s| s.addr.to_string() == target.server)
    {
        let addrs: Vec<String> = pool.servers.iter().map(|s| s.addr.to_string()).collect();
        return Err(user(format!(
            "pool {} has no server {}; servers: {}",
            target.pool,
            target.server,
            addrs.join(", ")
        )));
    }
    Ok(())
}

fn print(report: &Report, p: &Printer) {
    for node in &report.nodes {
        match (&node.server, &node.error) {
            (Some(s), _) => p.line(format!(
                "{}  {}/{}  {}  weight {}{}  in flight {}",
                node.node,
                report.pool,
                s.addr,
                if s.drained {
                    p.paint(Style::Warn, "drained")
                } else {
                    p.paint(Style::Good, "in service")
                },
                s.weight,
                if s.weight == s.configured_weight {
                    String::new()
                } else {
                    format!(" (configured {})", s.configured_weight)
                },
                s.in_flight,
            )),
            (None, error) => p.line(format!(
                "{}  {}",
                node.node,
                p.paint(Style::Bad, error.as_deref().unwrap_or("no answer"))
            )),
        }
        if let Some(warning) = &node.warning {
            p.line(format!("  {}", p.paint(Style::Warn, warning)));
        }
    }
}
