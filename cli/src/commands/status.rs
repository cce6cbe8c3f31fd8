//! `gtm status [--watch]`: per region its VIP, the GSLB's verdict and each
//! vantage point's view, the override, the L4 node(s), L7 nodes and
//! backends healthy/total, and requests per second; then the DNS nodes.
//! Everything is asked live (pid files, or each host over ssh for a
//! deployment on hosts; `/healthz`, admin `/v1/status`, a DNS query), in
//! parallel, with short timeouts. `--matrix` prints the health matrix
//! instead ([`matrix`]).

mod matrix;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::admin::{Admin, GslbStatus, RegionStatus, VantageStatus, l4, l7};
use crate::cli::StatusArgs;
use crate::dns::{Question, ask};
use crate::plan::{Component, Kind, Probe};
use crate::printer::{Printer, Style, Table};
use crate::supervise::state::StateDir;
use crate::timeline::now_rfc3339;
use ::admin::metrics::counter_sum;

use crate::deployed::{Deployed, running};
use matrix::Matrix;

/// How long one check may take.
const CHECK: Duration = Duration::from_millis(500);
/// The window over which request counters are turned into a rate.
const RATE_WINDOW: Duration = Duration::from_millis(500);

/// The whole status.
#[derive(Serialize)]
pub struct Status {
    /// When it was taken.
    pub at: String,
    /// The state directory.
    pub state_dir: String,
    /// The deployed topology file.
    pub topology: String,
    /// Every region.
    pub regions: Vec<RegionReport>,
    /// Every DNS node.
    pub dns: Vec<DnsReport>,
}

/// One region.
#[derive(Serialize)]
pub struct RegionReport {
    /// Its name.
    pub name: String,
    /// Its IPv4 VIP.
    pub ipv4: Option<IpAddr>,
    /// Its IPv6 VIP.
    pub ipv6: Option<IpAddr>,
    /// `up`/`down` from the probes (the GSLB's verdict).
    pub verdict: Option<String>,
    /// Whether the GSLB answers with it.
    pub in_service: Option<bool>,
    /// `fail`, `drain` or none.
    #[serde(rename = "override")]
    pub override_: Option<String>,
    /// Since when `in_service` holds.
    pub since: Option<String>,
    /// Each vantage point's view.
    pub vantage: Vec<VantageStatus>,
    /// Which GSLB node's view this is.
    pub gslb_view_from: Option<String>,
    /// Why there is no GSLB view.
    pub gslb_view_error: Option<String>,
    /// The L4 nodes.
    pub l4: Vec<NodeReport>,
    /// The L7 nodes.
    pub l7: Tier,
    /// The demo backends.
    pub backends: Tier,
    /// Requests per second through the L7 tier, when it says.
    pub requests_per_second: Option<f64>,
    /// Its load against its declared capacity and the share of its
    /// clients spilled elsewhere, as the GSLB measures it.
    pub load: Option<admin::api::gslb::Load>,
}

/// Nodes of one tier.
#[derive(Serialize)]
pub struct Tier {
    /// How many are healthy.
    pub healthy: usize,
    /// How many there are.
    pub total: usize,
    /// Each.
    pub nodes: Vec<NodeReport>,
}

/// One L4/L7 node or backend.
#[derive(Serialize)]
pub struct NodeReport {
    /// Its name.
    pub name: String,
    /// Its pid, when gtm runs it.
    pub pid: Option<u32>,
    /// Whether its process runs.
    pub running: bool,
    /// Whether its health check passes.
    pub healthy: bool,
    /// What the health check saw.
    pub detail: String,
    /// Its admin `/v1/status`, as it answered.
    pub status: Option<EdgeStatus>,
    /// Requests per second over a short window (L7 nodes).
    pub requests_per_second: Option<f64>,
}

/// An edge node's admin `/v1/status` (printed as the node wrote it).
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum EdgeStatus {
    /// An L4 node's.
    L4(l4::Status),
    /// An L7 node's.
    L7(l7::Status),
}

/// One DNS node.
#[derive(Serialize)]
pub struct DnsReport {
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: Option<String>,
    /// Its DNS addresses.
    pub listen: Vec<SocketAddr>,
    /// Its pid, when gtm runs it.
    pub pid: Option<u32>,
    /// Whether its process runs.
    pub running: bool,
    /// Whether it answered a query just now.
    pub answering: bool,
    /// Its answer time in milliseconds.
    pub answer_ms: Option<f64>,
    /// Why it did not answer.
    pub answer_error: Option<String>,
    /// Its admin API.
    pub admin: Option<SocketAddr>,
    /// Its admin `/v1/status`.
    pub gslb: Option<GslbStatus>,
    /// Why its admin API did not answer.
    pub admin_error: Option<String>,
}

/// Runs `gtm status`.
pub fn run(args: &StatusArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let deployed = Deployed::require(state)?;
    let admin = deployed.admin()?;
    if args.matrix {
        return show(
            args,
            printer,
            || health_matrix(&deployed, &admin),
            Matrix::print,
        );
    }
    show(
        args,
        printer,
        || Ok(gather(&deployed, state, &admin)),
        print,
    )
}

/// Takes a report with `take` and prints it once, or again and again with
/// `--watch`.
fn show<T: Serialize>(
    args: &StatusArgs,
    printer: &Printer,
    mut take: impl FnMut() -> anyhow::Result<T>,
    human: impl Fn(&T, &Printer),
) -> anyhow::Result<()> {
    loop {
        let report = take()?;
        if !args.watch {
            printer.result(&report, |p| human(&report, p));
            return Ok(());
        }
        if printer.json() {
            printer.json_line(&report);
        } else {
            printer.clear_screen();
            human(&report, printer);
            printer.line(printer.paint(
                Style::Dim,
                format_args!(
                    "(every {}; Ctrl-C to stop)",
                    crate::timeline::format_duration(args.interval)
                ),
            ));
        }
        std::thread::sleep(args.interval);
    }
}

/// The health matrix as the first GSLB node that answers sees it.
fn health_matrix(deployed: &Deployed, admin: &Admin) -> anyhow::Result<Matrix> {
    deployed
        .ask_gslb("its health matrix", |addr| admin.gslb_status(addr))
        .map(|status| Matrix::of(&status))
}

/// Takes the status of every component, in parallel.
pub fn gather(deployed: &Deployed, state: &StateDir, admin: &Admin) -> Status {
    let topology = &deployed.topology;
    let remote = deployed.remote_running(None);
    let running = |name: &str| -> (bool, Option<u32>) {
        match &remote {
            Some(names) => (names.iter().any(|n| n == name), None),
            None => {
                let record = running(state, name).ok().flatten();
                (record.is_some(), record.map(|r| r.pid))
            }
        }
    };
    let running = &running;
    let (nodes, dns): (Vec<(String, NodeReport)>, Vec<DnsReport>) = std::thread::scope(|scope| {
        let node_jobs: Vec<_> = deployed
            .components
            .iter()
            .filter(|c| c.kind != Kind::Gslb)
            .map(|c| scope.spawn(move || (c.name.clone(), node_report(c, running(&c.name), admin))))
            .collect();
        let dns_jobs: Vec<_> = topology
            .dns
            .nodes
            .iter()
            .map(|n| scope.spawn(move || dns_report(n, topology, running(&n.name), admin)))
            .collect();
        (
            node_jobs
                .into_iter()
                .filter_map(|j| j.join().ok())
                .collect(),
            dns_jobs.into_iter().filter_map(|j| j.join().ok()).collect(),
        )
    });
    let take = |name: &str| nodes.iter().find(|(n, _)| n == name).map(|(_, r)| r);
    let regions = topology
        .regions
        .iter()
        .map(|region| {
            let (view, gslb_view) = region_view(&dns, &region.name);
            let reports = |kind| -> Vec<NodeReport> {
                deployed
                    .in_region(&region.name, kind)
                    .iter()
                    .filter_map(|c| take(&c.name).map(clone_report))
                    .collect()
            };
            let l7 = tier(reports(Kind::L7));
            let measured: Vec<f64> = l7
                .nodes
                .iter()
                .filter_map(|n| n.requests_per_second)
                .collect();
            let requests_per_second = (!measured.is_empty()).then(|| measured.iter().sum());
            RegionReport {
                name: region.name.clone(),
                ipv4: region.vip.ipv4.map(IpAddr::V4),
                ipv6: region.vip.ipv6.map(IpAddr::V6),
                verdict: view.map(|v| v.verdict.clone()),
                in_service: view.map(|v| v.in_service),
                override_: view.and_then(|v| v.override_mode.clone()),
                since: view
                    .map(|v| crate::timeline::rfc3339(crate::timeline::epoch_ms(v.since_ms))),
                vantage: view.map(|v| v.vantage.clone()).unwrap_or_default(),
                gslb_view_from: gslb_view.as_ref().ok().cloned(),
                gslb_view_error: gslb_view.err(),
                l4: reports(Kind::L4),
                l7,
                backends: tier(reports(Kind::Backend)),
                requests_per_second,
                load: view.and_then(|v| v.load.clone()),
            }
        })
        .collect();
    Status {
        at: now_rfc3339(),
        state_dir: state.root().display().to_string(),
        topology: deployed.file().display().to_string(),
        regions,
        dns,
    }
}

fn clone_report(r: &NodeReport) -> NodeReport {
    NodeReport {
        name: r.name.clone(),
        pid: r.pid,
        running: r.running,
        healthy: r.healthy,
        detail: r.detail.clone(),
        status: r.status.clone(),
        requests_per_second: r.requests_per_second,
    }
}

fn tier(nodes: Vec<NodeReport>) -> Tier {
    Tier {
        healthy: nodes.iter().filter(|n| n.healthy).count(),
        total: nodes.len(),
        nodes,
    }
}

/// The first GSLB node's view of `region` that answered.
fn region_view<'a>(
    dns: &'a [DnsReport],
    region: &str,
) -> (Option<&'a RegionStatus>, Result<String, String>) {
    let mut why = Vec::new();
    for node in dns {
        if let Some(status) = &node.gslb {
            if let Some(view) = status.regions.iter().find(|r| r.name == region) {
                return (Some(view), Ok(node.name.clone()));
            }
            why.push(format!("{}: no such region in its status", node.name));
        } else if let Some(e) = &node.admin_error {
            why.push(format!("{}: {e}", node.name));
        }
    }
    if why.is_empty() {
        why.push("no DNS node has an admin API (dns.nodes[].admin)".into());
    }
    (None, Err(why.join("; ")))
}

/// `process`: whether the component runs, and its pid when gtm runs it
/// on this machine.
fn node_report(component: &Component, process: (bool, Option<u32>), admin: &Admin) -> NodeReport {
    let check = crate::supervise::ready::check(&component.probe, admin);
    let status = match (component.admin, component.kind) {
        (Some(addr), Kind::L4) if check.is_ok() => admin.l4_status(addr).ok().map(EdgeStatus::L4),
        (Some(addr), Kind::L7) if check.is_ok() => admin.l7_status(addr).ok().map(EdgeStatus::L7),
        _ => None,
    };
    let requests_per_second = match (component.admin, component.kind) {
        (Some(addr), Kind::L7) if check.is_ok() => request_rate(admin, addr),
        _ => None,
    };
    let detail = match (&check, &component.probe) {
        (Ok(()), Probe::Http { path, .. }) => format!("{path} ok"),
        (Ok(()), Probe::Dns { .. }) => "answers".into(),
        (Err(e), _) => e.clone(),
    };
    NodeReport {
        name: component.name.clone(),
        pid: process.1,
        running: process.0,
        healthy: check.is_ok(),
        detail: if !process.0 && check.is_err() {
            "not running".into()
        } else {
            detail
        },
        status,
        requests_per_second,
    }
}

/// Requests per second through an L7 node: its request counter read twice,
/// [`RATE_WINDOW`] apart.
fn request_rate(admin: &Admin, addr: SocketAddr) -> Option<f64> {
    // No sample yet means no request yet.
    let first = counter_sum(&admin.metrics(addr).ok()?, l7::REQUESTS_TOTAL).unwrap_or(0.0);
    let begun = std::time::Instant::now();
    std::thread::sleep(RATE_WINDOW);
    let second = counter_sum(&admin.metrics(addr).ok()?, l7::REQUESTS_TOTAL).unwrap_or(0.0);
    Some(((second - first).max(0.0)) / begun.elapsed().as_secs_f64())
}

fn dns_report(
    node: &topology::DnsNode,
    topology: &topology::Topology,
    process: (bool, Option<u32>),
    admin: &Admin,
) -> DnsReport {
    let zone = topology
        .dns
        .zones
        .first()
        .map_or_else(|| ".".to_owned(), |z| z.origin.to_string());
    let answer = match node.listen.first() {
        Some(addr) => {
            let mut question = Question::new(*addr, &zone, "SOA");
            question.timeout = CHECK;
            ask(&question).map(|r| r.elapsed_ms)
        }
        None => Err("no listen address".into()),
    };
    let gslb = node
        .admin
        .map(|addr| admin.gslb_status(addr).map_err(|e| e.to_string()));
    DnsReport {
        name: node.name.clone(),
        region: node.region.map(|id| topology.region(id).name.clone()),
        listen: node.listen.clone(),
        pid: process.1,
        running: process.0,
        answering: answer.is_ok(),
        answer_ms: answer.as_ref().ok().copied(),
        answer_error: answer.err(),
        admin: node.admin,
        admin_error: gslb.as_ref().and_then(|g| g.as_ref().err().cloned()),
        gslb: gslb.and_then(Result::ok),
    }
}

/// Every backend server as each L7 node sees it: health, the operator's
/// drain and weight (`gtm server`), load, connections and latency.
fn servers_table(status: &Status) -> Option<Table> {
    let mut table = Table::new(&[
        "L7 NODE",
        "POOL",
        "SERVER",
        "STATE",
        "WEIGHT",
        "IN FLIGHT",
        "CONN",
        "LATENCY",
    ]);
    let mut rows = 0;
    for node in status.regions.iter().flat_map(|r| &r.l7.nodes) {
        let Some(EdgeStatus::L7(l7)) = &node.status else {
            continue;
        };
        for pool in &l7.pools {
            for s in &pool.servers {
                let state = match (s.drained, s.health.as_str(), s.ejected) {
                    (true, "up", _) => ("drained".to_owned(), Style::Warn),
                    (true, health, _) => (format!("drained, {health}"), Style::Warn),
                    (false, "up", true) => ("ejected".to_owned(), Style::Bad),
                    (false, "up", false) => ("up".to_owned(), Style::Good),
                    (false, health, _) => (health.to_owned(), Style::Bad),
                };
                let weight = if s.weight == s.configured_weight {
                    s.weight.to_string()
                } else {
                    format!("{} (configured {})", s.weight, s.configured_weight)
                };
                table.styled_row(vec![
                    (node.name.clone(), Some(Style::Bold)),
                    (pool.name.clone(), None),
                    (s.addr.clone(), None),
                    (state.0, Some(state.1)),
                    (weight, None),
                    (s.in_flight.to_string(), None),
                    (s.connections.to_string(), None),
                    (format!("{:.1} ms", s.latency_ms), Some(Style::Dim)),
                ]);
                rows += 1;
            }
        }
    }
    (rows > 0).then_some(table)
}

fn vantage_text(vantage: &[VantageStatus]) -> String {
    if vantage.is_empty() {
        return "-".into();
    }
    vantage
        .iter()
        .map(|v| {
            let state = &v.state;
            let stale = match (v.fresh, v.abstains) {
                (false, _) => " stale",
                (true, true) => " set aside",
                (true, false) => "",
            };
            match &v.last {
                Some(last) => format!("{} {state}{stale} ({})", v.node, last.detail),
                None => format!("{} {state}{stale}", v.node),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `load 1200/s, target 800/s of 1000/s: 25 % of its clients spilled`.
fn load_text(load: &admin::api::gslb::Load) -> String {
    let unit = if load.unit == "connections" {
        " connections"
    } else {
        "/s"
    };
    let Some(current) = load.current else {
        return format!(
            "load telemetry {} ({}): neither spills nor receives spilled clients",
            load.telemetry,
            load.error.as_deref().unwrap_or("no figures yet")
        );
    };
    let spill = if load.share > 0.0 {
        format!("{:.0} % of its clients spilled", load.share * 100.0)
    } else {
        "no spill".to_owned()
    };
    format!(
        "load {current:.0}{unit}, target {:.0}{unit} of {:.0}{unit}: {spill}",
        load.target, load.capacity
    )
}

fn print(status: &Status, p: &Printer) {
    p.line(format_args!(
        "{} {}  {}",
        p.paint(Style::Bold, "gtm status"),
        status.topology,
        p.paint(Style::Dim, format_args!("(state {})", status.state_dir))
    ));
    p.line("");
    let mut table = Table::new(&[
        "REGION", "VIP", "GSLB", "VANTAGE", "OVERRIDE", "L4", "L7", "BACKENDS", "REQ/S",
    ]);
    let ratio = |t: &Tier| {
        let style = if t.total == 0 {
            Style::Dim
        } else if t.healthy == t.total {
            Style::Good
        } else if t.healthy == 0 {
            Style::Bad
        } else {
            Style::Warn
        };
        let text = if t.total == 0 {
            "-".to_owned()
        } else {
            format!("{}/{}", t.healthy, t.total)
        };
        (text, Some(style))
    };
    let mut notes = Vec::new();
    for region in &status.regions {
        let vip: Vec<String> = [region.ipv4, region.ipv6]
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        let gslb = match (region.in_service, &region.verdict) {
            (Some(true), _) => ("up".to_owned(), Style::Good),
            (Some(false), _) => ("down".to_owned(), Style::Bad),
            (None, Some(v)) => (v.clone(), Style::Warn),
            (None, None) => ("?".to_owned(), Style::Dim),
        };
        if let Some(why) = &region.gslb_view_error {
            notes.push(format!("{}: GSLB view unknown: {why}", region.name));
        }
        if let Some(load) = &region.load {
            notes.push(format!("{}: {}", region.name, load_text(load)));
        }
        let l4 = if region.l4.is_empty() {
            ("-".to_owned(), Some(Style::Dim))
        } else {
            let up = region.l4.iter().filter(|n| n.healthy).count();
            let names: Vec<String> = region
                .l4
                .iter()
                .map(|n| {
                    let connections = match &n.status {
                        Some(EdgeStatus::L4(s)) if s.udp_flows > 0 => {
                            format!(" ({} conn, {} udp flows)", s.open_connections, s.udp_flows)
                        }
                        Some(EdgeStatus::L4(s)) => format!(" ({} conn)", s.open_connections),
                        _ => String::new(),
                    };
                    format!(
                        "{} {}{connections}",
                        n.name,
                        if n.healthy { "up" } else { "down" }
                    )
                })
                .collect();
            let style = if up == region.l4.len() {
                Style::Good
            } else {
                Style::Bad
            };
            (names.join(", "), Some(style))
        };
        for node in region
            .l4
            .iter()
            .chain(&region.l7.nodes)
            .chain(&region.backends.nodes)
            .filter(|n| !n.healthy)
        {
            notes.push(format!("{}: {}", node.name, node.detail));
        }
        table.styled_row(vec![
            (region.name.clone(), Some(Style::Bold)),
            (vip.join(" "), None),
            (gslb.0, Some(gslb.1)),
            (vantage_text(&region.vantage), None),
            (
                region.override_.clone().unwrap_or_else(|| "-".into()),
                region.override_.as_ref().map(|_| Style::Warn),
            ),
            l4,
            ratio(&region.l7),
            ratio(&region.backends),
            (
                region
                    .requests_per_second
                    .map_or_else(|| "-".into(), |r| format!("{r:.1}")),
                None,
            ),
        ]);
    }
    for line in table.lines(p) {
        p.line(line);
    }
    if let Some(servers) = servers_table(status) {
        p.line("");
        for line in servers.lines(p) {
            p.line(line);
        }
    }
    p.line("");
    let mut table = Table::new(&[
        "DNS NODE", "LISTEN", "PROCESS", "ANSWERS", "ADMIN", "Q/S", "CONFIG",
    ]);
    for node in &status.dns {
        let listen: Vec<String> = node.listen.iter().map(ToString::to_string).collect();
        let process = match (node.pid, node.running) {
            (Some(pid), _) => (format!("pid {pid}"), Some(Style::Good)),
            // On a host: its service runs, no local pid to show.
            (None, true) => ("running".to_owned(), Some(Style::Good)),
            (None, false) => ("not running".to_owned(), Some(Style::Bad)),
        };
        let answers = match (node.answer_ms, &node.answer_error) {
            (Some(ms), _) => (format!("yes ({ms:.1} ms)"), Some(Style::Good)),
            (None, e) => {
                notes.push(format!(
                    "{}: {}",
                    node.name,
                    e.as_deref().unwrap_or("no answer")
                ));
                ("no".to_owned(), Some(Style::Bad))
            }
        };
        let (qps, config) = match (&node.gslb, &node.admin_error) {
            (Some(s), _) => (format!("{:.1}", s.queries.per_second), {
                let version = &s.config.version[..s.config.version.len().min(12)];
                match &s.config.last_reload {
                    Some(r) if !r.ok => format!(
                        "{version} (last reload failed: {})",
                        r.error.as_deref().unwrap_or("?")
                    ),
                    _ => version.to_owned(),
                }
            }),
            (None, Some(e)) => {
                notes.push(format!("{} admin: {e}", node.name));
                ("?".into(), "?".into())
            }
            (None, None) => ("-".into(), "-".into()),
        };
        table.styled_row(vec![
            (node.name.clone(), Some(Style::Bold)),
            (listen.join(", "), None),
            process,
            answers,
            (
                node.admin.map_or_else(|| "-".into(), |a| a.to_string()),
                None,
            ),
            (qps, None),
            (config, None),
        ]);
    }
    for line in table.lines(p) {
        p.line(line);
    }
    if !notes.is_empty() {
        p.line("");
        for note in notes {
            p.line(p.paint(Style::Dim, note));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vantage_column_says_which_views_do_not_vote() {
        let view = |node: &str, fresh: bool, abstains: bool| VantageStatus {
            node: node.into(),
            state: "down".into(),
            fresh,
            abstains,
            last: None,
            flaps_last_hour: 0,
        };
        assert_eq!(
            vantage_text(&[
                view("ns1", true, false),
                view("ns2", false, false),
                view("ns3", true, true)
            ]),
            "ns1 down, ns2 down stale, ns3 down set aside"
        );
    }
}
