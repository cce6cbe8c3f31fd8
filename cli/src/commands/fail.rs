//! `gtm fail REGION [--mode kill|drain]`: takes a region out for real and
//! measures how the GSLB reacts. `kill` SIGKILLs the region's L4 node(s)
//! (through their pid files, or on their hosts over ssh, where they are
//! then kept stopped until `gtm recover`), so its VIP stops answering and the GSLB's probes must notice; `drain`
//! sets the GSLB override through the admin API (planned maintenance).
//! Then it keeps asking DNS on behalf of a client of the region until the
//! answer moves, reads the GSLB's probe results and verdict meanwhile,
//! sends HTTP requests as that client would (through a caching resolver)
//! until they land elsewhere, and prints the timeline.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;
use topology::Region;

use crate::admin::{Admin, AdminError, OverrideMode};
use crate::cli::{FailArgs, FailMode};
use crate::clients::one_per_continent;
use crate::commands::what_if::{self, single};
use crate::deployed::{Deployed, region_of, running};
use crate::drill::traffic::Summary;
use crate::drill::watcher::Direction;
use crate::drill::{Drill, Watch, choose, warn_unsaved};
use crate::error::{Reported, user};
use crate::plan::Kind;
use crate::printer::{Printer, Style};
use crate::remote::services;
use crate::supervise::process;
use crate::supervise::state::{DrillRecord, PidRecord, StateDir};
use crate::timeline::{Event, format_duration, now_rfc3339, render};

/// The result of a drill.
#[derive(Serialize)]
pub struct Report {
    /// The region failed.
    pub region: String,
    /// `kill` or `drain`.
    pub mode: &'static str,
    /// The question watched.
    pub watch: Watch,
    /// The timeline.
    pub events: Vec<Event>,
    /// Milliseconds from the injection to the first answer elsewhere.
    pub moved_after_ms: Option<f64>,
    /// What the watched client gets now.
    pub now_answered: Vec<IpAddr>,
    /// The region that is, when known.
    pub now_region: Option<String>,
    /// The configured detection time (interval × fall + timeout), ms.
    pub detection_ms: f64,
    /// How it reads.
    pub detection_formula: String,
    /// Clients on each continent and what they get now.
    pub continents: Vec<ContinentAnswer>,
    /// The watched client's HTTP requests, when the region serves HTTP.
    pub traffic: Option<Summary>,
}

/// What a client on one continent gets.
#[derive(Serialize)]
pub struct ContinentAnswer {
    /// The country.
    pub place: String,
    /// Its network.
    pub subnet: String,
    /// The answer.
    pub answer: Vec<IpAddr>,
    /// The region it is.
    pub region: Option<String>,
}

/// Runs `gtm fail`.
pub fn run(args: &FailArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let deployed = Deployed::require(state)?;
    if args.what_if.dry_run {
        return what_if::run(
            &deployed,
            &args.regions,
            &[],
            &args.what_if.clients,
            printer,
        );
    }
    let region = deployed.region(single(&args.regions)?)?.clone();
    let _lock = state.lock()?;
    if let Some(drill) = state.drill(&region.name)? {
        return Err(user(format!(
            "{} is already failed (mode {}, since {}); run `gtm recover {}` first",
            region.name, drill.mode, drill.at, region.name
        )));
    }
    let admin = deployed.admin()?;
    let gslbs = deployed.gslb_admins();
    let victims = victims(args.mode, &deployed, &region, state, &gslbs)?;
    let watch = choose(&deployed, &region, args.from, args.name.as_deref(), true)?;
    if args.mode == FailMode::Kill {
        warn_if_no_other_region(&admin, &gslbs, &region.name, printer);
    }
    let (detection, formula) = detection(args.mode, &region);
    let timeout = args.timeout.unwrap_or(detection + Duration::from_secs(10));
    printer.progress(format_args!(
        "failing {} ({}): watching {} {} for {} at {} — answered {} now",
        printer.paint_err(Style::Bold, &region.name),
        mode_name(args.mode),
        watch.name,
        watch.rtype,
        watch.client_label(),
        watch.server,
        watch.vip
    ));
    let mut drill = Drill::begin(watch, &admin, &gslbs, super::interrupt_flag());
    if !args.dns_only {
        drill = drill.with_traffic(&deployed.topology, &region);
    }
    let injected = inject(args, &region, &victims, &deployed, &drill, state, printer)?;
    let kill = args.mode == FailMode::Kill;
    let watcher = drill.follow(Direction::Away, &region.name, kill, timeout);
    if drill.interrupted.load(Ordering::Relaxed) {
        printer.warn(format_args!(
            "interrupted; {} stays failed: `gtm recover {}` brings it back",
            region.name, region.name
        ));
    }
    let topology = &deployed.topology;
    let mut events = vec![injected];
    events.extend(watcher.events(topology, timeout));
    let traffic = drill.traffic(Direction::Away, &region.name);
    events.extend(traffic.as_ref().map(|t| t.event.clone()));
    let now_answered = watcher.last_answer().to_vec();
    let report = Report {
        region: region.name.clone(),
        mode: mode_name(args.mode),
        moved_after_ms: watcher.moved_after().map(|d| d.as_secs_f64() * 1000.0),
        now_region: now_answered
            .first()
            .and_then(|ip| region_of(topology, *ip))
            .map(str::to_owned),
        now_answered,
        detection_ms: detection.as_secs_f64() * 1000.0,
        detection_formula: formula,
        continents: continents(&drill.watch, topology),
        events,
        traffic,
        watch: drill.watch,
    };
    printer.result(&report, |p| print(&report, p));
    report.outcome(timeout)
}

impl Report {
    /// Success once the answers moved, and the requests too when they
    /// were answered at all; else the error that says so.
    fn outcome(&self, timeout: Duration) -> anyhow::Result<()> {
        let failed = |summary: String| {
            Err(anyhow::Error::new(Reported {
                user: false,
                summary,
            }))
        };
        if self.moved_after_ms.is_none() {
            return failed(format!(
                "the answers for {} did not move away from {} within {}; it stays failed: `gtm recover {}`",
                self.watch.client_label(),
                self.region,
                format_duration(timeout),
                self.region
            ));
        }
        match &self.traffic {
            Some(t) if t.moved_after_ms.is_none() && t.now_region.is_some() => failed(format!(
                "DNS moved, but the requests of {} still land in {}: {}; it stays failed: `gtm recover {}`",
                self.watch.client_label(),
                self.region,
                t.event.detail,
                self.region
            )),
            _ => Ok(()),
        }
    }
}

fn mode_name(mode: FailMode) -> &'static str {
    match mode {
        FailMode::Kill => "kill",
        FailMode::Drain => "drain",
    }
}

/// What a kill stops: L4 nodes found by their pid files on this machine,
/// or the services running them on their hosts.
enum Victims {
    /// `gtm up`: (name, pid file).
    Local(Vec<(String, PidRecord)>),
    /// `gtm deploy`: component names, killed over ssh.
    Remote(Vec<String>),
}

/// The running L4 node(s) a kill stops (none for a drain), or the user
/// error that makes the drill impossible.
fn victims(
    mode: FailMode,
    deployed: &Deployed,
    region: &Region,
    state: &StateDir,
    gslbs: &[(String, SocketAddr)],
) -> anyhow::Result<Victims> {
    match mode {
        FailMode::Kill => {
            let l4 = deployed.in_region(&region.name, Kind::L4);
            if l4.is_empty() {
                return Err(user(format!(
                    "region {} has no L4 tier to stop; take it out through the GSLB instead: `gtm fail {} --mode drain`",
                    region.name, region.name
                )));
            }
            let victims = match deployed.remote_running(Some(&region.name)) {
                Some(running) => Victims::Remote(
                    l4.iter()
                        .filter(|c| running.contains(&c.name))
                        .map(|c| c.name.clone())
                        .collect(),
                ),
                None => {
                    let mut local = Vec::new();
                    for component in l4 {
                        if let Some(record) = running(state, &component.name)? {
                            local.push((component.name.clone(), record));
                        }
                    }
                    Victims::Local(local)
                }
            };
            let none = match &victims {
                Victims::Local(v) => v.is_empty(),
                Victims::Remote(v) => v.is_empty(),
            };
            if none {
                return Err(user(format!(
                    "the L4 node(s) of {} are not running; `gtm up` (or `gtm deploy`) starts them",
                    region.name
                )));
            }
            Ok(victims)
        }
        FailMode::Drain => {
            if gslbs.is_empty() {
                return Err(user(
                    "--mode drain sets the GSLB's override through its admin API, and no DNS node has one; \
                     add `admin: \"127.0.0.1:5380\"` to the node in dns.nodes, then `gtm down` and `gtm up`",
                ));
            }
            // A drain kills nothing.
            Ok(Victims::Remote(Vec::new()))
        }
    }
}

/// A drain holds even while failing open; a kill only moves clients if
/// another region can take them.
fn warn_if_no_other_region(
    admin: &Admin,
    gslbs: &[(String, SocketAddr)],
    region: &str,
    printer: &Printer,
) {
    let Some(Ok(status)) = gslbs.first().map(|(_, addr)| admin.gslb_status(*addr)) else {
        return;
    };
    if !status
        .regions
        .iter()
        .any(|r| r.name != region && r.in_service)
    {
        printer.warn(format_args!(
            "no other region is in service: with every candidate down the GSLB fails open \
             and may keep answering {region} (see `gtm status`)"
        ));
    }
}

/// The configured detection time and how it reads.
fn detection(mode: FailMode, region: &Region) -> (Duration, String) {
    let health = &region.health;
    match mode {
        FailMode::Kill => (
            health.interval * health.fall + health.timeout,
            format!(
                "interval {} × fall {} + timeout {}",
                format_duration(health.interval),
                health.fall,
                format_duration(health.timeout)
            ),
        ),
        FailMode::Drain => (
            Duration::ZERO,
            "an override takes effect at once".to_owned(),
        ),
    }
}

/// Takes the region out — SIGKILL to `victims`, or the drain override on
/// every GSLB node — records the drill, and returns its first event.
/// SIGKILLs local L4 nodes and waits until they are gone; (name, `pid N`).
fn kill_local(
    victims: &[(String, PidRecord)],
    state: &StateDir,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut killed = Vec::new();
    for (name, record) in victims {
        process::signal(record.pid, Signal::SIGKILL).map_err(anyhow::Error::msg)?;
        killed.push((name.clone(), format!("pid {}", record.pid)));
    }
    // Gone before the pid files are: a drill never leaves a pid file
    // naming a dead process.
    let deadline = Instant::now() + Duration::from_secs(5);
    while victims.iter().any(|(_, r)| process::is_running(r)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for (name, _) in victims {
        state.remove_record(name)?;
    }
    Ok(killed)
}

/// How long a host may take to kill its L4 node.
const REMOTE_KILL_TIMEOUT: Duration = Duration::from_secs(15);

/// SIGKILLs L4 nodes on their hosts, every host at once; (name, `on HOST`).
fn kill_remote(names: &[String], deployed: &Deployed) -> anyhow::Result<Vec<(String, String)>> {
    let mut killed = Vec::new();
    let mut failed = Vec::new();
    for (host, result) in deployed.on_hosts(names, services::kill, REMOTE_KILL_TIMEOUT) {
        match result {
            Ok(_) => killed.extend(
                deployed
                    .components
                    .iter()
                    .filter(|c| names.contains(&c.name) && c.host.as_deref() == Some(&host))
                    .map(|c| (c.name.clone(), format!("on {host}"))),
            ),
            Err(error) => failed.push(format!("{host}: {error}")),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "could not kill the L4 node(s) on {}; check the hosts (`gtm status`)",
            failed.join("; ")
        );
    }
    Ok(killed)
}

fn inject(
    args: &FailArgs,
    region: &Region,
    victims: &Victims,
    deployed: &Deployed,
    drill: &Drill,
    state: &StateDir,
    printer: &Printer,
) -> anyhow::Result<Event> {
    let watch = &drill.watch;
    let mut recorded = DrillRecord {
        region: region.name.clone(),
        mode: mode_name(args.mode).into(),
        stopped: Vec::new(),
        overridden: Vec::new(),
        client: Some(watch.client.to_string()),
        name: Some(watch.name.clone()),
        at: now_rfc3339(),
    };
    let event = match args.mode {
        FailMode::Kill => {
            let killed = match victims {
                Victims::Local(victims) => kill_local(victims, state)?,
                Victims::Remote(names) => kill_remote(names, deployed)?,
            };
            recorded.stopped = killed.iter().map(|(name, _)| name.clone()).collect();
            let vip = region
                .vip
                .ipv4
                .map(|ip| format!(" — {ip}:{} stops answering", region.vip.http_port))
                .unwrap_or_default();
            let killed: Vec<String> = killed
                .into_iter()
                .map(|(name, place)| format!("{name} ({place})"))
                .collect();
            Event::at(
                "failure injected",
                drill.elapsed(),
                format!("SIGKILL to {}{vip}", killed.join(", ")),
            )
        }
        FailMode::Drain => {
            for (node, addr) in drill.gslbs {
                let set = drill.admin.set_override(
                    *addr,
                    &region.name,
                    OverrideMode::Drain,
                    &args.reason,
                );
                if set.is_err() && !recorded.overridden.is_empty() {
                    // Some nodes took it: `gtm recover` must find them.
                    state.write_drill(&recorded)?;
                }
                let change = set.map_err(|e| match e {
                    AdminError::NotFound(body) => user(format!(
                        "{node} does not know region {}: {body}",
                        region.name
                    )),
                    AdminError::Unauthorized(_) => user(e.to_string()),
                    other => anyhow::anyhow!("{node} ({addr}): cannot set the override: {other}"),
                })?;
                warn_unsaved(printer, node, &change);
                recorded.overridden.push(node.clone());
            }
            Event::at(
                "failure injected",
                drill.elapsed(),
                format!("override drain set on {}", recorded.overridden.join(", ")),
            )
        }
    };
    state.write_drill(&recorded)?;
    Ok(event)
}

/// What a client on each continent is answered now.
fn continents(watch: &Watch, topology: &topology::Topology) -> Vec<ContinentAnswer> {
    one_per_continent()
        .into_iter()
        .map(|network| {
            let mut question = crate::dns::Question::new(watch.server, &watch.name, watch.rtype);
            question.client = Some(network.ip());
            question.timeout = Duration::from_secs(1);
            let answer = crate::dns::ask(&question)
                .map(|r| r.addresses())
                .unwrap_or_default();
            ContinentAnswer {
                place: network.place.to_owned(),
                subnet: crate::clients::subnet(&network),
                region: answer
                    .first()
                    .and_then(|ip| region_of(topology, *ip))
                    .map(str::to_owned),
                answer,
            }
        })
        .collect()
}

fn print(report: &Report, p: &Printer) {
    p.line(format_args!(
        "{} {} ({}) — {} {} asked for {} at {}",
        p.paint(Style::Bold, "gtm fail"),
        p.paint(Style::Bold, &report.region),
        report.mode,
        report.watch.name,
        report.watch.rtype,
        report.watch.client_label(),
        report.watch.server
    ));
    p.line("");
    for line in render(&report.events) {
        p.line(format_args!("  {line}"));
    }
    p.line("");
    if let Some(ms) = report.moved_after_ms {
        let within = if report.detection_ms > 0.0 {
            let verdict = if ms <= report.detection_ms + 1000.0 {
                p.paint(Style::Good, "within")
            } else {
                p.paint(Style::Warn, "beyond")
            };
            format!(
                " — {verdict} the configured detection time of {} ({})",
                crate::timeline::format_offset(Some(report.detection_ms)).trim_start_matches('+'),
                report.detection_formula
            )
        } else {
            String::new()
        };
        p.line(format_args!(
            "{} clients near {} moved after {}{within}",
            p.paint(Style::Good, "✓"),
            report.watch.client_label(),
            crate::timeline::format_offset(Some(ms)).trim_start_matches('+'),
        ));
        let answer: Vec<String> = report
            .now_answered
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Some(traffic) = &report.traffic {
            p.line(format_args!(
                "  {}",
                traffic.describe(Duration::from_secs_f64(report.detection_ms / 1000.0))
            ));
        }
        p.line(format_args!(
            "  that traffic now goes to {} ({})",
            p.paint(
                Style::Bold,
                report
                    .now_region
                    .as_deref()
                    .unwrap_or("an address outside the topology")
            ),
            answer.join(", ")
        ));
    }
    p.line("");
    p.line("Now answered:");
    for c in &report.continents {
        let answer: Vec<String> = c.answer.iter().map(ToString::to_string).collect();
        p.line(format_args!(
            "  {:<16} {:<18} → {} {}",
            c.place,
            c.subnet,
            c.region.as_deref().unwrap_or("?"),
            p.paint(Style::Dim, answer.join(", "))
        ));
    }
    p.line("");
    p.line(format_args!("Undo with: gtm recover {}", report.region));
}
