//! `gtm recover REGION`: reverses `gtm fail` — restarts the region's
//! components that are not running (the L4 node(s) a kill stopped, or
//! anything else of the region that died) and clears any GSLB override on
//! it — then watches DNS until the region's clients get it again, and
//! prints the timeline.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::cli::RecoverArgs;
use crate::error::{Reported, user};
use crate::plan::{Component, Kind};
use crate::printer::{Printer, Style};
use crate::supervise;
use crate::supervise::state::StateDir;
use crate::timeline::{Event, format_duration, offset_ms, render};

use super::fail::WATCH_EVERY;
use crate::deployed::{Deployed, describe_answer, running};
use crate::drill::{Watch, choose, probe_after, region_views, warn_unsaved};

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
}

/// Runs `gtm recover`.
pub fn run(args: &RecoverArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let deployed = Deployed::require(state)?;
    let region = deployed.region(&args.region)?.clone();
    let _lock = state.lock()?;
    let admin = deployed.admin()?;
    let gslbs = deployed.gslb_admins();
    let drill = state.drill(&region.name)?;

    let mut to_start: Vec<Component> = Vec::new();
    for kind in [Kind::Backend, Kind::L7, Kind::L4] {
        for component in deployed.in_region(&region.name, kind) {
            if running(state, &component.name)?.is_none() {
                to_start.push(component.clone());
            }
        }
    }
    let mut to_clear: Vec<(String, std::net::SocketAddr)> = Vec::new();
    for (node, view) in region_views(&admin, &gslbs, &region.name) {
        let overridden = match &view {
            Ok(view) => view.override_.is_some(),
            // Unknown: clear anyway if gtm set it.
            Err(_) => drill.as_ref().is_some_and(|d| d.overridden.contains(&node)),
        };
        if overridden && let Some((_, addr)) = gslbs.iter().find(|(n, _)| *n == node) {
            to_clear.push((node, *addr));
        }
    }
    let was_failed = drill.is_some() || !to_start.is_empty() || !to_clear.is_empty();
    if !was_failed {
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
    let from = drill
        .as_ref()
        .and_then(|d| d.client.as_deref())
        .and_then(|c| c.parse().ok());
    let name = drill.as_ref().and_then(|d| d.name.clone());
    let watch = choose(&deployed, &region, from, name.as_deref(), false)?;
    let health = &region.health;
    let timeout = args
        .timeout
        .unwrap_or(health.interval * health.rise + health.timeout + Duration::from_secs(20));
    printer.progress(format_args!(
        "recovering {}: watching {} {} for {}",
        printer.paint_err(Style::Bold, &region.name),
        watch.name,
        watch.rtype,
        watch.client_label()
    ));

    let interrupted = super::interrupt_flag();
    let wall0 = SystemTime::now();
    let t0 = Instant::now();
    let mut events = vec![Event::at("recovery started", Duration::ZERO, "")];
    let mut restarted = Vec::new();
    if !to_start.is_empty() {
        let started = supervise::start(
            state,
            &to_start,
            &admin,
            printer,
            Duration::from_secs(30),
            &interrupted,
        )?;
        for s in &started {
            restarted.push(s.name.clone());
        }
        let names: Vec<String> = started
            .iter()
            .map(|s| format!("{} (pid {})", s.name, s.pid))
            .collect();
        events.push(Event::at(
            "restarted",
            t0.elapsed(),
            format!("{} ready", names.join(", ")),
        ));
    }
    let mut cleared = Vec::new();
    for (node, addr) in &to_clear {
        let change = admin
            .clear_override(*addr, &region.name)
            .map_err(|e| match e {
                crate::admin::AdminError::Unauthorized(_) => user(e.to_string()),
                other => anyhow::anyhow!("{node} ({addr}): cannot clear the override: {other}"),
            })?;
        warn_unsaved(printer, node, &change);
        cleared.push(node.clone());
    }
    if !cleared.is_empty() {
        events.push(Event::at(
            "override cleared",
            t0.elapsed(),
            format!("on {}", cleared.join(", ")),
        ));
    }

    let mut back: Option<Duration> = None;
    let mut probe_ok: Option<(f64, String, String)> = None;
    let mut in_service: Option<(f64, String)> = None;
    let mut last_answer = Vec::new();
    let mut last_error = None;
    loop {
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
        match watch.ask(Duration::from_millis(500)) {
            Ok(answer) => {
                if back.is_none() && answer.contains(&watch.vip) {
                    back = Some(t0.elapsed());
                }
                last_answer = answer;
            }
            Err(e) => last_error = Some(e),
        }
        if !gslbs.is_empty() && (probe_ok.is_none() || in_service.is_none()) {
            for (node, view) in region_views(&admin, &gslbs, &region.name) {
                let Ok(view) = view else { continue };
                if probe_ok.is_none() && !restarted.is_empty() {
                    probe_ok = probe_after(&view, true, wall0);
                }
                if in_service.is_none() && view.in_service == Some(true) {
                    let at = view
                        .since_time()
                        .map(|t| offset_ms(t, wall0))
                        .filter(|ms| *ms >= -50.0)
                        .unwrap_or(t0.elapsed().as_secs_f64() * 1000.0);
                    in_service = Some((at, node));
                }
            }
        }
        let gslb_seen = gslbs.is_empty()
            || (in_service.is_some() && (restarted.is_empty() || probe_ok.is_some()));
        // Without restarts only the override was in the way: once answered
        // again there is nothing more to wait for (a region whose probes
        // still fail is answered only while every region fails open).
        if back.is_some() && (gslb_seen || restarted.is_empty()) {
            break;
        }
        if t0.elapsed() > timeout {
            break;
        }
        std::thread::sleep(WATCH_EVERY);
    }
    if let Some((at, node, detail)) = &probe_ok {
        events.push(Event::at_ms(
            "first probe ok",
            *at,
            format!("{node} → {}: {detail}", region.name),
        ));
    }
    if let Some((at, node)) = &in_service {
        events.push(Event::at_ms(
            "region back in service",
            *at,
            format!("{node}: {} in service", region.name),
        ));
    }
    let topology = &deployed.topology;
    events.push(match back {
        Some(at) => Event::at(
            "answered again",
            at,
            format!(
                "{} gets {}",
                watch.client_label(),
                describe_answer(topology, &[watch.vip])
            ),
        ),
        None => Event::unseen(
            "answered again",
            format!(
                "still {} after {}{}",
                describe_answer(topology, &last_answer),
                format_duration(timeout),
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ),
        ),
    });
    if back.is_some() {
        state.remove_drill(&region.name)?;
    }
    let report = Report {
        region: region.name.clone(),
        was_failed,
        restarted,
        cleared,
        back_after_ms: back.map(|d| d.as_secs_f64() * 1000.0),
        now_answered: last_answer,
        events,
        watch,
    };
    printer.result(&report, |p| {
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
    });
    match back {
        Some(_) => Ok(()),
        None => Err(anyhow::Error::new(Reported {
            user: false,
            summary: format!(
                "{} was not answered again within {}; see `gtm status` and `gtm logs`",
                report.region,
                format_duration(timeout)
            ),
        })),
    }
}
