//! `gtm dig NAME [--from IP] [--type T] [--server ADDR]`: a real DNS query
//! on behalf of a client (EDNS Client Subnet), the answer with its TTL and
//! ECS scope, and the GSLB's explanation for that client: from its admin
//! API (`/v1/explain`, with live health) when the server is a known node
//! with one, else from `gslb explain` on the topology file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;
use topology::Topology;

use crate::admin::Admin;
use crate::cli::DigArgs;
use crate::dns::{Question, Reply, ask, client_subnet, valid_type};
use crate::error::user;
use crate::printer::{Printer, Style};
use crate::supervise::state::StateDir;

use crate::deployed::{Deployed, region_of};
use crate::drill::absolute;

#[derive(Serialize)]
struct Report {
    server: SocketAddr,
    name: String,
    rtype: String,
    client: Option<IpAddr>,
    subnet: Option<String>,
    reply: Reply,
    /// The region of each address answered.
    regions: Vec<Option<String>>,
    explanation: Option<Explanation>,
    explanation_error: Option<String>,
}

#[derive(Serialize)]
struct Explanation {
    /// `admin http://…/v1/explain` or `gslb explain`.
    source: String,
    /// Whether it reflects live health.
    live: bool,
    text: String,
}

/// Runs `gtm dig`.
pub fn run(args: &DigArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    if !valid_type(&args.rtype) {
        return Err(user(format!(
            "unknown record type {:?}; use A, AAAA, TXT, MX, …",
            args.rtype
        )));
    }
    let rtype = args.rtype.to_ascii_uppercase();
    let deployed = Deployed::load(state)?;
    let (topology, file): (Option<Topology>, Option<PathBuf>) = match (&args.config, deployed) {
        (Some(file), _) => (Some(topology::load(file)?), Some(file.clone())),
        (None, Some(d)) => {
            let file = d.file().clone();
            (Some(d.topology), Some(file))
        }
        (None, None) => (None, None),
    };
    let server = match (args.server, &topology) {
        (Some(server), _) => server,
        (None, Some(t)) => t
            .dns
            .nodes
            .first()
            .and_then(|n| n.listen.first().copied())
            .ok_or_else(|| user("the topology has no DNS node; pass --server ADDR"))?,
        (None, None) => {
            return Err(user(format!(
                "nothing is deployed in {} to ask; pass --server ADDR:PORT (and --config FILE for the explanation)",
                state.root().display()
            )));
        }
    };
    let name = complete_name(&args.name, topology.as_ref());
    let mut question = Question::new(server, &name, &rtype);
    question.client = args.from;
    question.tcp = args.tcp;
    let reply = ask(&question).map_err(|e| {
        anyhow::anyhow!("no answer from {server}: {e} (is it running? `gtm status`)")
    })?;
    let regions = reply
        .answers
        .iter()
        .map(|a| {
            let ip: Option<IpAddr> = a.data.parse().ok();
            ip.zip(topology.as_ref())
                .and_then(|(ip, t)| region_of(t, ip).map(str::to_owned))
        })
        .collect();
    let (explanation, explanation_error) = if args.no_explain {
        (None, None)
    } else {
        match explain(&name, &rtype, args.from, server, topology.as_ref(), file) {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(e)),
        }
    };
    let report = Report {
        server,
        name,
        rtype,
        client: args.from,
        subnet: args.from.map(|ip| {
            let (network, prefix) = client_subnet(ip);
            format!("{network}/{prefix}")
        }),
        reply,
        regions,
        explanation,
        explanation_error,
    };
    printer.result(&report, |p| print(&report, p));
    Ok(())
}

/// `www` → `www.example.com.` when a topology says which zone; any name
/// with a dot is taken as absolute, as dig does.
fn complete_name(name: &str, topology: Option<&Topology>) -> String {
    if !name.contains('.')
        && let Some(zone) = topology.and_then(|t| t.dns.zones.first())
    {
        return format!("{name}.{}", zone.origin);
    }
    absolute(name)
}

fn explain(
    name: &str,
    rtype: &str,
    from: Option<IpAddr>,
    server: SocketAddr,
    topology: Option<&Topology>,
    file: Option<PathBuf>,
) -> Result<Explanation, String> {
    // Without ECS the GSLB decides for the resolver's address: ours.
    let client = from.unwrap_or(match server {
        SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        SocketAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    });
    let topology = topology.ok_or("no topology known (pass --config FILE)")?;
    let node = topology.dns.nodes.iter().find(|n| {
        n.listen
            .iter()
            .any(|l| *l == server || (l.port() == server.port() && l.ip().is_unspecified()))
    });
    if let Some(addr) = node.and_then(|n| n.admin) {
        let admin = Admin::new(Admin::token_for(topology)).map_err(|e| e.to_string())?;
        match admin.explain(addr, name, client, rtype) {
            Ok(e) => {
                return Ok(Explanation {
                    source: format!("admin http://{addr}/v1/explain"),
                    live: true,
                    text: e.text,
                });
            }
            Err(error) => {
                // Fall through to the offline explanation, saying why.
                let offline = offline(name, rtype, client, file)?;
                return Ok(Explanation {
                    source: format!("{} (the admin API failed: {error})", offline.source),
                    ..offline
                });
            }
        }
    }
    offline(name, rtype, client, file)
}

/// `gslb --config FILE explain NAME --client IP --type T`: the decision
/// from the file alone, every region taken as healthy.
fn offline(
    name: &str,
    rtype: &str,
    client: IpAddr,
    file: Option<PathBuf>,
) -> Result<Explanation, String> {
    let file = file.ok_or("no topology file known (pass --config FILE)")?;
    let binary = crate::supervise::find_binary("gslb")?;
    let binary = binary.as_path();
    let output = Command::new(binary)
        .arg("--config")
        .arg(&file)
        .arg("explain")
        .arg(name)
        .arg("--client")
        .arg(client.to_string())
        .arg("--type")
        .arg(rtype)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "gslb explain failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(Explanation {
        source: "gslb explain (from the file: health not known, every region taken as up)".into(),
        live: false,
        text: String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned(),
    })
}

fn print(report: &Report, p: &Printer) {
    let client = report
        .subnet
        .as_ref()
        .map_or_else(|| "no client subnet".to_owned(), |s| format!("for {s}"));
    p.line(format_args!(
        "{}",
        p.paint(
            Style::Dim,
            format_args!(
                ";; {} {} {client} via {} ({}, {:.1} ms)",
                report.name,
                report.rtype,
                report.server,
                report.reply.transport,
                report.reply.elapsed_ms
            )
        )
    ));
    let rcode_style = if report.reply.rcode == "NOERROR" {
        Style::Good
    } else {
        Style::Bad
    };
    p.line(format_args!(
        "status {}{}",
        p.paint(rcode_style, &report.reply.rcode),
        if report.reply.authoritative {
            ", authoritative (aa)"
        } else {
            ""
        }
    ));
    let width = report
        .reply
        .answers
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(0);
    for (answer, region) in report.reply.answers.iter().zip(&report.regions) {
        let region = region
            .as_ref()
            .map_or_else(String::new, |r| format!("  ({})", p.paint(Style::Bold, r)));
        p.line(format_args!(
            "{:<width$}  {:>6}  {:<5} {}{region}",
            answer.name, answer.ttl, answer.rtype, answer.data
        ));
    }
    if report.reply.answers.is_empty() {
        p.line(p.paint(Style::Dim, "(no answer records)"));
        for a in &report.reply.authority {
            p.line(format_args!(
                "{}",
                p.paint(
                    Style::Dim,
                    format_args!("authority: {} {} {} {}", a.name, a.ttl, a.rtype, a.data)
                )
            ));
        }
    }
    match (&report.reply.subnet, report.client) {
        (Some(s), Some(client)) => {
            let (scoped, _) = if s.scope == 0 {
                (String::new(), 0)
            } else {
                let network = scope_network(client, s.scope);
                (network, s.scope)
            };
            let holds = if s.scope == 0 {
                "the answer does not depend on the client".to_owned()
            } else {
                format!("the answer holds for {scoped}")
            };
            p.line(format_args!(
                "ECS {}/{} scope /{}: {holds}",
                s.address, s.source, s.scope
            ));
        }
        (None, Some(_)) => p.line("ECS: the server did not echo the client subnet"),
        _ => {}
    }
    match (&report.explanation, &report.explanation_error) {
        (Some(e), _) => {
            p.line("");
            p.line(format_args!(
                "{} {}",
                p.paint(Style::Bold, "Explanation"),
                p.paint(Style::Dim, format_args!("({})", e.source))
            ));
            for line in e.text.lines() {
                p.line(format_args!("  {line}"));
            }
        }
        (None, Some(why)) => {
            p.line("");
            p.line(p.paint(Style::Dim, format_args!("no explanation: {why}")));
        }
        (None, None) => {}
    }
}

/// `client` truncated to `/scope`, as `a.b.c.d/n`.
fn scope_network(client: IpAddr, scope: u8) -> String {
    let network = match client {
        IpAddr::V4(v4) => {
            let scope = scope.min(32);
            let mask = if scope == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(scope))
            };
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let scope = scope.min(128);
            let mask = if scope == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(scope))
            };
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    };
    format!("{network}/{scope}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_shown_as_networks() {
        assert_eq!(scope_network("8.8.8.8".parse().unwrap(), 17), "8.8.0.0/17");
        assert_eq!(scope_network("8.8.8.8".parse().unwrap(), 0), "0.0.0.0/0");
        assert_eq!(
            scope_network("2a02:8800::1".parse().unwrap(), 24),
            "2a02:8800::/24"
        );
    }

    #[test]
    fn short_names_are_completed_only_with_a_zone() {
        assert_eq!(complete_name("www.example.com", None), "www.example.com.");
        assert_eq!(complete_name("www", None), "www.");
    }
}
