//! `gtm recover REGION`: reverses `gtm fail` — restarts the region's
//! components that are not running (the L4 node(s) a kill stopped, or
//! anything else of the region that died) and clears any GSLB override on
//! it — then watches DNS until the region's clients get it again (and their
//! HTTP requests land in it again), and prints the timeline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use topology::Region;

use crate::admin::{Admin, AdminError};
use crate::cli::RecoverArgs;
use crate::commands::what_if::{self, single};
use crate::deployed::{Deployed, running};
use crate::drill::traffic::Summary;
use crate::drill::watcher::Direction;
use crate::drill::{Drill, Watch, choose, region_views, warn_unsaved};
use crate::error::{Reported, user};
use crate::plan::{Component, Kind};
use crate::printer::{Printer, Style};
use crate::remote::services;
use crate::supervise;
use crate::supervise::state::{DrillRecord, StateDir};
use crate::timeline::{Event, format_duration, render};

/// The result of `gtm recover`.
#[derive(Serialize)]
pub struct Report {
    /// The region.
    pub region: String,
    /// Whether anything had to be done (always, in a report with a
    /// timeline).
    pub was_failed: bool,
    /// Components restarted.
    pub restarted: Vec<String>,
    /// GSLB nodes whose override was cleared.
    pub cleared: Vec<String>,
    /// The question watched.
    pub watch: Watch,
    /// The timeline.
    pub events: Vec<Event>,
    /// Milliseconds until the region was answered again.
    pub back_after_ms: Option<f64>,
    /// What the watched client gets now.
    pub now_answered: Vec<IpAddr>,
    /// The watched client's HTTP requests, when the region serves HTTP.
    pub traffic: Option<Summary>,
    /// How long the GSLB takes to see the region up again (interval ×
    /// rise + timeout), ms.
    pub detection_ms: f64,
}

/// Runs `gtm recover`.
pub fn run(args: &RecoverArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let deployed = Deployed::require(state)?;
    if args.what_if.dry_run {
        return what_if::run(
            &deployed,
            &[],
            &args.regions,
            &args.what_if.clients,
            printer,
        );
    }
    let region = deployed.region(single(&args.regions)?)?.clone();
    let _lock = state.lock()?;
    let admin = deployed.admin()?;
    let gslbs = deployed.gslb_admins();
    let record = state.drill(&region.name)?;
    let to_start = stopped(&deployed, &region, state)?;
    let to_clear = overridden(&admin, &gslbs, &region, record.as_ref());
    if record.is_none() && to_start.is_empty() && to_clear.is_empty() {
        let report = serde_json::json!({ "region": region.name, "was_failed": false });
        printer.result(&report, |p| {
            p.line(format_args!(
                "{} {} is not failed: its components run and no GSLB override is set",
                p.paint(Style::Good, "✓"),
                region.name
            ))
        });
        return Ok(());
    }
    let from = record
        .as_ref()
        .and_then(|d| d.client.as_deref())
        .and_then(|c| c.parse().ok());
    let name = record.as_ref().and_then(|d| d.name.clone());
    let watch = choose(&deployed, &region, from, name.as_deref(), false)?;
    let health = &region.health;
    let detection = health.interval * health.rise + health.timeout;
    let timeout = args.timeout.unwrap_or(detection + Duration::from_secs(20));
    printer.progress(format_args!(
        "recovering {}: watching {} {} for {}",
        printer.paint_err(Style::Bold, &region.name),
        watch.name,
        watch.rtype,
        watch.client_label()
    ));

    let mut drill = Drill::begin(watch, &admin, &gslbs, super::interrupt_flag());
    if !args.dns_only {
        drill = drill.with_traffic(&deployed.topology, &region);
    }
    let mut events = vec![Event::at("recovery started", Duration::ZERO, "")];
    let restarted = restart(&deployed, state, &to_start, &drill, printer, &mut events)?;
    let cleared = clear(&drill, &to_clear, &region.name, printer, &mut events)?;
    let restarts = !restarted.is_empty();
    let watcher = drill.follow(Direction::Back, &region.name, restarts, timeout);
    events.extend(watcher.events(&deployed.topology, timeout));
    let traffic = drill.traffic(Direction::Back, &region.name);
    events.extend(traffic.as_ref().map(|t| t.event.clone()));
    let back = watcher.moved_after();
    if back.is_some() {
        state.remove_drill(&region.name)?;
    }
    let report = Report {
        region: region.name.clone(),
        was_failed: true,
        restarted,
        cleared,
        back_after_ms: back.map(|d| d.as_secs_f64() * 1000.0),
        now_answered: watcher.last_answer().to_vec(),
        events,
        traffic,
        detection_ms: detection.as_secs_f64() * 1000.0,
        watch: drill.watch,
    };
    printer.result(&report, |p| print(&report, p));
    report.outcome(timeout)
}

impl Report {
    /// Success once the region is answered again; else the error that
    /// says so.
    fn outcome(&self, timeout: Duration) -> anyhow::Result<()> {
        if self.back_after_ms.is_some() {
            return Ok(());
        }
        Err(anyhow::Error::new(Reported {
            user: false,
            summary: format!(
                "{} was not answered again within {}; see `gtm status` and `gtm logs`",
                self.region,
                format_duration(timeout)
            ),
        }))
    }
}

/// The region's components that do not run, in start order.
fn stopped(
    deployed: &Deployed,
    region: &Region,
    state: &StateDir,
) -> anyhow::Result<Vec<Component>> {
    let mut to_start = Vec::new();
    // On hosts, each host says what runs; here, the pid files.
    let remote = deployed.remote_running(Some(&region.name));
    for kind in [Kind::Backend, Kind::L7, Kind::L4] {
        for component in deployed.in_region(&region.name, kind) {
            let runs = match &remote {
                Some(running) => running.contains(&component.name),
                None => running(state, &component.name)?.is_some(),
            };
            if !runs {
                to_start.push(component.clone());
            }
        }
    }
    Ok(to_start)
}

/// The GSLB nodes holding an override on `region`.
fn overridden(
    admin: &Admin,
    gslbs: &[(String, SocketAddr)],
    region: &Region,
    drill: Option<&DrillRecord>,
) -> Vec<(String, SocketAddr)> {
    let mut to_clear = Vec::new();
    for (node, view) in region_views(admin, gslbs, &region.name) {
        let overridden = match &view {
            Ok(view) => view.override_mode.is_some(),
            // Unknown: clear anyway if gtm set it.
            Err(_) => drill.is_some_and(|d| d.overridden.contains(&node)),
        };
        if overridden && let Some((_, addr)) = gslbs.iter().find(|(n, _)| *n == node) {
            to_clear.push((node, *addr));
        }
    }
    to_clear
}

/// How long a host may take to start a region's services again.
const REMOTE_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `to_start` (here, or on their hosts over ssh) and records the
/// event; the names started.
fn restart(
    deployed: &Deployed,
    state: &StateDir,
    to_start: &[Component],
    drill: &Drill,
    printer: &Printer,
    events: &mut Vec<Event>,
) -> anyhow::Result<Vec<String>> {
    let (admin, interrupted) = (drill.admin, &drill.interrupted);
    if to_start.is_empty() {
        return Ok(Vec::new());
    }
    if deployed.ssh().is_some() {
        let names: Vec<String> = to_start.iter().map(|c| c.name.clone()).collect();
        let mut failed = Vec::new();
        for (host, result) in deployed.on_hosts(&names, services::start, REMOTE_START_TIMEOUT) {
            if let Err(error) = result {
                failed.push(format!("{host}: {error}"));
            }
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "could not start {} again: {}; see `gtm logs`",
                names.join(", "),
                failed.join("; ")
            );
        }
        events.push(Event::at(
            "restarted",
            drill.elapsed(),
            format!("{} started on their hosts", names.join(", ")),
        ));
        return Ok(names);
    }
    let started = supervise::start(
        state,
        to_start,
        admin,
        printer,
        Duration::from_secs(30),
        interrupted,
    )?;
    let names: Vec<String> = started
        .iter()
        .map(|s| format!("{} (pid {})", s.name, s.pid))
        .collect();
    events.push(Event::at(
        "restarted",
        drill.elapsed(),
        format!("{} ready", names.join(", ")),
    ));
    Ok(started.into_iter().map(|s| s.name).collect())
}

/// Clears the override on `to_clear` and records the event; the nodes
/// cleared.
fn clear(
    drill: &Drill,
    to_clear: &[(String, SocketAddr)],
    region: &str,
    printer: &Printer,
    events: &mut Vec<Event>,
) -> anyhow::Result<Vec<String>> {
    let mut cleared = Vec::new();
    for (node, addr) in to_clear {
        let change = drill
            .admin
            .clear_override(*addr, region)
            .map_err(|e| match e {
                AdminError::Unauthorized(_) => user(e.to_string()),
                other => anyhow::anyhow!("{node} ({addr}): cannot clear the override: {other}"),
            })?;
        warn_unsaved(printer, node, &change);
        cleared.push(node.clone());
    }
    if !cleared.is_empty() {
        events.push(Event::at(
            "override cleared",
            drill.elapsed(),
            format!("on {}", cleared.join(", ")),
        ));
    }
    Ok(cleared)
}

fn print(report: &Report, p: &Printer) {
    p.line(format_args!(
        "{} {}",
        p.paint(Style::Bold, "gtm recover"),
        p.paint(Style::Bold, &report.region)
    ));
    p.line("");
    for line in render(&report.events) {
        p.line(format_args!("  {line}"));
    }
    p.line("");
    if let Some(ms) = report.back_after_ms {
        p.line(format_args!(
            "{} {} is answered again for {} after {}",
            p.paint(Style::Good, "✓"),
            report.region,
            report.watch.client_label(),
            crate::timeline::format_offset(Some(ms)).trim_start_matches('+')
        ));
    }
    if let Some(traffic) = &report.traffic {
        p.line(format_args!(
            "  {}",
            traffic.describe(Duration::from_secs_f64(report.detection_ms / 1000.0))
        ));
    }
}
