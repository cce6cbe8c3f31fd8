//! `gtm up [FILE]`: validate, check that nothing else holds the addresses,
//! start what is not running yet (backends, L7, L4, then DNS), wait for
//! each to be ready, and print where to point `dig`, `curl` and a browser
//! (the status page).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{DEFAULT_TOPOLOGY, UpArgs};
use crate::clients::clients_for;
use crate::error::user;
use crate::printer::{Printer, Style, Table};
use crate::supervise::state::{Deployment, StateDir};
use crate::supervise::{self, Started};

use super::validate;
use crate::deployed::{Deployed, describe_answer, running};
use crate::drill::{geo_name_for, places};

/// The result of `gtm up`.
#[derive(Serialize)]
struct Summary {
    state_dir: String,
    topology: String,
    started: Vec<Started>,
    already_running: Vec<AlreadyRunning>,
    dns: Vec<DnsNode>,
    regions: Vec<RegionLine>,
    commands: Vec<Try>,
}

#[derive(Serialize)]
struct AlreadyRunning {
    name: String,
    pid: u32,
}

#[derive(Serialize)]
struct DnsNode {
    name: String,
    listen: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    /// The status page on its admin address.
    console: Option<String>,
}

#[derive(Serialize)]
struct RegionLine {
    name: String,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    http: Option<SocketAddr>,
    /// `up`/`down` from the GSLB, else `unknown`.
    state: String,
    detail: String,
}

/// A command to try, with what it shows (also printed by `gtm deploy`).
#[derive(Serialize)]
pub(super) struct Try {
    pub(super) command: String,
    pub(super) comment: String,
}

/// Runs `gtm up`.
pub fn run(args: &UpArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let file = match &args.file {
        Some(file) => resolve_file(file)?,
        None => match state.deployment().ok().flatten() {
            Some(deployed) => deployed.topology,
            None => resolve_file(Path::new(DEFAULT_TOPOLOGY))?,
        },
    };
    let topology = validate::load_valid(&file, printer, "nothing was started")?;
    if !topology.hosts.is_empty() {
        return Err(user(format!(
            "{} places its components on {} hosts (`hosts:`); deploy it there with `gtm deploy {}`, \
             or remove `hosts:` and each `host:` to run everything on this machine",
            file.display(),
            topology.hosts.len(),
            file.display()
        )));
    }
    let _lock = state.lock()?;

    let previous = Deployed::load(state).ok().flatten();
    let mut components = crate::plan::plan(&topology, &file);
    let mut already = Vec::new();
    if let Some(previous) = &previous {
        let live: Vec<String> = previous
            .components
            .iter()
            .filter(|c| running(state, &c.name).ok().flatten().is_some())
            .map(|c| c.name.clone())
            .collect();
        if previous.deployment.topology != file && !live.is_empty() {
            return Err(user(format!(
                "{} already runs a deployment of {} ({} component(s) up: {}); \
                 run `gtm down` first, or use another --state-dir",
                state.root().display(),
                previous.deployment.topology.display(),
                live.len(),
                live.join(", ")
            )));
        }
        let strays: Vec<&String> = live
            .iter()
            .filter(|name| !components.iter().any(|c| &c.name == *name))
            .collect();
        if !strays.is_empty() {
            printer.warn(format_args!(
                "{} run(s) but {} no longer describes it; `gtm down` stops it",
                strays
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                file.display()
            ));
        }
    }
    components.retain(|component| match running(state, &component.name) {
        Ok(Some(record)) => {
            already.push(AlreadyRunning {
                name: component.name.clone(),
                pid: record.pid,
            });
            false
        }
        _ => {
            let _ = state.remove_record(&component.name);
            true
        }
    });
    if !already.is_empty() {
        let names: Vec<String> = already
            .iter()
            .map(|a| format!("{} (pid {})", a.name, a.pid))
            .collect();
        printer.progress(format_args!("already running: {}", names.join(", ")));
    }
    state.write_deployment(&Deployment::new(
        file.clone(),
        previous.as_ref().map(|p| &p.deployment),
        None,
    ))?;
    let deployed = Deployed::require(state)?;
    let admin = deployed.admin()?;
    let interrupted = super::interrupt_flag();
    let started = match supervise::start(
        state,
        &components,
        &admin,
        printer,
        args.timeout,
        &interrupted,
    ) {
        Ok(started) => started,
        Err(error) => {
            if already.is_empty() {
                let _ = state.clear_deployment();
            } else {
                printer.progress(format_args!(
                    "{} component(s) from an earlier `gtm up` still run; `gtm down` stops them",
                    already.len()
                ));
            }
            return Err(error);
        }
    };
    let summary = summarize(&deployed, state, started, already, &admin);
    printer.result(&summary, |p| print_summary(&summary, p));
    Ok(())
}

/// The file, absolute; a user error if it is not there.
fn resolve_file(file: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(file).map_err(|e| {
        let hint = if file == Path::new(DEFAULT_TOPOLOGY) {
            " (run gtm from the repository root, or pass the topology file)"
        } else {
            ""
        };
        user(format!(
            "cannot read topology file {}: {e}{hint}",
            file.display()
        ))
    })
}

fn summarize(
    deployed: &Deployed,
    state: &StateDir,
    started: Vec<Started>,
    already: Vec<AlreadyRunning>,
    admin: &crate::admin::Admin,
) -> Summary {
    let topology = &deployed.topology;
    let views: Vec<crate::admin::GslbStatus> = deployed
        .gslb_admins()
        .iter()
        .filter_map(|(_, addr)| admin.gslb_status(*addr).ok())
        .collect();
    let regions = topology
        .regions
        .iter()
        .map(|region| {
            let view = views
                .iter()
                .find_map(|v| v.regions.iter().find(|r| r.name == region.name));
            let (state, detail) = match view {
                Some(view) => {
                    let state = if view.in_service { "up" } else { "down" };
                    let detail = match &view.override_mode {
                        Some(o) => format!("override {o}"),
                        None => format!("probes say {}", view.verdict),
                    };
                    (state.to_owned(), detail)
                }
                None if deployed.gslb_admins().is_empty() => (
                    "unknown".to_owned(),
                    "no GSLB admin API to ask (dns.nodes[].admin)".to_owned(),
                ),
                None => (
                    "unknown".to_owned(),
                    "the GSLB admin API did not answer".to_owned(),
                ),
            };
            RegionLine {
                name: region.name.clone(),
                ipv4: region.vip.ipv4.map(IpAddr::V4),
                ipv6: region.vip.ipv6.map(IpAddr::V6),
                http: region.l4.as_ref().and_then(|_| {
                    region
                        .vip
                        .ipv4
                        .map(|ip| SocketAddr::new(IpAddr::V4(ip), region.vip.http_port))
                }),
                state,
                detail,
            }
        })
        .collect();
    Summary {
        state_dir: state.root().display().to_string(),
        topology: deployed.file().display().to_string(),
        started,
        already_running: already,
        dns: topology
            .dns
            .nodes
            .iter()
            .map(|n| DnsNode {
                name: n.name.clone(),
                listen: n.listen.clone(),
                admin: n.admin,
                console: n.admin.map(|a| format!("http://{a}/")),
            })
            .collect(),
        regions,
        commands: try_lines(deployed),
    }
}

/// `dig` lines (one client per region, asked for real), `curl` lines
/// through each VIP, and the drill commands.
pub(super) fn try_lines(deployed: &Deployed) -> Vec<Try> {
    let topology = &deployed.topology;
    let mut lines = Vec::new();
    let Some(server) = deployed.dns_server() else {
        return lines;
    };
    let at = match server.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => ip.to_string(),
    };
    let port = if server.port() == 53 {
        String::new()
    } else {
        format!(" -p {}", server.port())
    };
    let places = places(topology);
    for (index, region) in topology.regions.iter().enumerate() {
        let Some(name) = geo_name_for(topology, region) else {
            continue;
        };
        let Some(network) = clients_for(index, &places, false).into_iter().next() else {
            continue;
        };
        let shown = name.trim_end_matches('.');
        let mut question = crate::dns::Question::new(server, &name, "A");
        question.client = Some(network.ip());
        let comment = match crate::dns::ask(&question) {
            Ok(reply) => format!(
                "{} → {}",
                network.place,
                describe_answer(topology, &reply.addresses())
            ),
            Err(e) => format!("{}: {e}", network.place),
        };
        lines.push(Try {
            command: format!(
                "dig @{at}{port} {shown} +subnet={}",
                crate::clients::subnet(&network)
            ),
            comment,
        });
    }
    for region in &topology.regions {
        if region.l4.is_none() {
            continue;
        }
        if let Some(ip) = region.vip.ipv4 {
            lines.push(Try {
                command: format!("curl http://{ip}:{}/", region.vip.http_port),
                comment: format!("{} through its VIP (L4 → L7 → backend)", region.name),
            });
        }
    }
    if let Some(line) = https_line(deployed) {
        lines.push(line);
    }
    lines.push(Try {
        command: "gtm status".into(),
        comment: "every region, its health and traffic".into(),
    });
    if let Some(first) = topology.regions.first() {
        let how = if first.l4.is_some() {
            "stop its L4 tier and time the failover"
        } else {
            "needs an L4 tier (or --mode drain)"
        };
        lines.push(Try {
            command: format!("gtm fail {}", first.name),
            comment: how.into(),
        });
        lines.push(Try {
            command: format!("gtm recover {}", first.name),
            comment: String::new(),
        });
    }
    lines.push(Try {
        command: "gtm down".into(),
        comment: "stop everything".into(),
    });
    lines
}

/// A `curl` over HTTPS through the first region whose L7 tier has
/// certificates, trusting a `ca.pem` found beside the first certificate
/// (the example's test CA), else with `-k`.
fn https_line(deployed: &Deployed) -> Option<Try> {
    let topology = &deployed.topology;
    let region = topology.regions.iter().find(|r| {
        r.l4.is_some() && r.vip.ipv4.is_some() && r.l7.as_ref().is_some_and(|l7| l7.tls.is_some())
    })?;
    let host = geo_name_for(topology, region)?;
    let host = host.trim_end_matches('.');
    let vip = region.vip.ipv4?;
    let port = region.vip.https_port;
    let cert = region
        .l7
        .as_ref()?
        .tls
        .as_ref()?
        .certs
        .first()?
        .cert
        .clone();
    let base = deployed.file().parent().unwrap_or(Path::new("/"));
    let ca = base.join(cert).with_file_name("ca.pem");
    let trust = if ca.is_file() {
        let shown = std::env::current_dir()
            .ok()
            .and_then(|cwd| ca.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or(ca);
        format!("--cacert {}", shown.display())
    } else {
        "-k".to_owned()
    };
    Some(Try {
        command: format!("curl {trust} --resolve {host}:{port}:{vip} https://{host}:{port}/"),
        comment: format!("{} over TLS, by name", region.name),
    })
}

fn print_summary(summary: &Summary, p: &Printer) {
    let started = summary.started.len();
    let already = summary.already_running.len();
    let headline = match (started, already) {
        (0, 0) => "nothing to start".to_owned(),
        (0, n) => format!("all {n} component(s) were already running"),
        (s, 0) => format!("{s} component(s) started"),
        (s, n) => format!("{s} component(s) started, {n} already running"),
    };
    p.line(format_args!(
        "{} {headline} — {}",
        p.paint(Style::Good, "✓"),
        summary.topology
    ));
    p.line(format_args!("  state and logs: {}", summary.state_dir));
    p.line("");
    for node in &summary.dns {
        let listen: Vec<String> = node.listen.iter().map(ToString::to_string).collect();
        let admin = node
            .admin
            .map_or_else(String::new, |a| format!("   admin http://{a}"));
        p.line(format_args!(
            "DNS {}  {} (UDP and TCP){admin}",
            p.paint(Style::Bold, &node.name),
            listen.join(", ")
        ));
    }
    for node in &summary.dns {
        if let Some(console) = &node.console {
            p.line(format_args!("console  {console}"));
        }
    }
    p.line("");
    let mut table = Table::new(&["REGION", "VIP", "STATE", ""]);
    for region in &summary.regions {
        let vip: Vec<String> = [region.ipv4, region.ipv6]
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        let style = match region.state.as_str() {
            "up" => Style::Good,
            "down" => Style::Bad,
            _ => Style::Warn,
        };
        table.styled_row(vec![
            (region.name.clone(), None),
            (vip.join(" "), None),
            (region.state.clone(), Some(style)),
            (region.detail.clone(), Some(Style::Dim)),
        ]);
    }
    for line in table.lines(p) {
        p.line(line);
    }
    p.line("");
    print_try(&summary.commands, p);
}

/// The "Try:" block: each command with its comment, comments aligned
/// except after a command too long to align with.
pub(super) fn print_try(commands: &[Try], p: &Printer) {
    p.line("Try:");
    let width = commands
        .iter()
        .map(|t| t.command.len())
        .filter(|len| *len <= 64)
        .max()
        .unwrap_or(0);
    for t in commands {
        if t.comment.is_empty() {
            p.line(format_args!("  {}", t.command));
        } else {
            p.line(format_args!(
                "  {:<width$}  {}",
                t.command,
                p.paint(Style::Dim, format_args!("# {}", t.comment))
            ));
        }
    }
}
