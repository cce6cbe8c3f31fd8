//! `gtm down`: stops every component with a pid file, the reverse of the
//! start order (DNS first, so no client is sent to a region being taken
//! apart; backends last), SIGTERM then SIGKILL after the grace period; then
//! forgets the deployment. Logs are kept.
//!
//! A deployment on hosts (`gtm deploy`) is stopped over ssh, the same
//! order across every host: each stage's services on every host at once,
//! the VIPs a BGP host announced removed from its `lo`.

use serde::Serialize;

use crate::cli::DownArgs;
use crate::deployed::{Deployed, PARALLEL};
use crate::error::Reported;
use crate::plan::Kind;
use crate::printer::{Printer, Style};
use crate::remote::{Ssh, each, services};
use crate::supervise::state::StateDir;
use crate::supervise::{How, Stopped, Target, stop};
use crate::timeline::format_duration;

#[derive(Serialize)]
struct Report {
    state_dir: String,
    stopped: Vec<Stopped>,
}

/// Runs `gtm down`.
pub fn run(args: &DownArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let _lock = state.lock()?;
    if let Some(deployed) = Deployed::load(state)?
        && let Some(ssh) = deployed.ssh()
    {
        return remote(&deployed, &ssh, state, printer);
    }
    let records = state.records()?;
    let mut stopped = Vec::new();
    for kind in Kind::START_ORDER.into_iter().rev() {
        let targets: Vec<Target> = records
            .iter()
            .filter(|(_, r)| r.kind == kind)
            .map(|(name, record)| Target {
                name: name.clone(),
                record: record.clone(),
                child: None,
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let outcomes = stop(state, targets, args.grace);
        for outcome in &outcomes {
            let text = match outcome.how {
                How::AlreadyStopped => printer.paint_err(Style::Dim, "was not running"),
                How::Terminated => format!("stopped in {}", format_duration_ms(outcome.took_ms)),
                How::Killed => printer.paint_err(
                    Style::Warn,
                    format_args!(
                        "killed (SIGKILL) after the {} grace period",
                        format_duration(args.grace)
                    ),
                ),
                How::Stuck => printer.paint_err(Style::Bad, "survived SIGKILL"),
            };
            printer.progress(format_args!(
                "  {:<16} {:<8} pid {:<8} {text}",
                outcome.name,
                kind.as_str(),
                outcome.pid
            ));
        }
        stopped.extend(outcomes);
    }
    let stuck: Vec<String> = stopped
        .iter()
        .filter(|s| s.how == How::Stuck)
        .map(|s| format!("{} (pid {})", s.name, s.pid))
        .collect();
    if stuck.is_empty() {
        state.clear_deployment()?;
    }
    let report = Report {
        state_dir: state.root().display().to_string(),
        stopped,
    };
    printer.result(&report, |p| {
        let count = report
            .stopped
            .iter()
            .filter(|s| s.how != How::AlreadyStopped)
            .count();
        if report.stopped.is_empty() {
            p.line(format_args!(
                "nothing was running from {}",
                report.state_dir
            ));
        } else if stuck.is_empty() {
            p.line(format_args!(
                "{} stopped {count} component(s); nothing is left running",
                p.paint(Style::Good, "✓")
            ));
        }
    });
    if stuck.is_empty() {
        Ok(())
    } else {
        Err(anyhow::Error::new(Reported {
            user: false,
            summary: format!(
                "still running after SIGKILL: {}; their pid files are kept",
                stuck.join(", ")
            ),
        }))
    }
}

fn format_duration_ms(ms: f64) -> String {
    format_duration(std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

#[derive(Serialize)]
struct RemoteReport {
    stopped: Vec<HostStopped>,
    left_running: Vec<String>,
}

#[derive(Serialize)]
struct HostStopped {
    host: String,
    services: Vec<String>,
}

/// `gtm down` of a deployment on hosts.
fn remote(
    deployed: &Deployed,
    ssh: &Ssh,
    state: &StateDir,
    printer: &Printer,
) -> anyhow::Result<()> {
    let all = deployed.remote_services();
    let mut stages: Vec<&str> = all.iter().map(|(_, s)| s.stage.as_str()).collect();
    stages.sort_by_key(|s| std::cmp::Reverse(super::deploy::stage_rank(s)));
    stages.dedup();
    let mut report = RemoteReport {
        stopped: Vec::new(),
        left_running: Vec::new(),
    };
    for stage in stages {
        let mut hosts: Vec<(&topology::hosts::Host, Vec<&str>)> = Vec::new();
        for (host, service) in all.iter().filter(|(_, s)| s.stage == stage) {
            match hosts.iter_mut().find(|(h, _)| h.name == host.name) {
                Some((_, names)) => names.push(&service.name),
                None => hosts.push((host, vec![&service.name])),
            }
        }
        let results = each(&hosts, PARALLEL, |(host, names)| {
            let mut script = services::stop(host, names);
            if stage == super::deploy::stage_name(crate::render::Stage::Ha)
                && let Some(cleanup) = super::deploy::vip_cleanup(&deployed.topology, host)
            {
                script = format!("{script}; {cleanup}");
            }
            ssh.run(&host.ssh, &script, std::time::Duration::from_secs(60))
        });
        for ((host, names), result) in hosts.iter().zip(results) {
            let failed = match result {
                Ok(o) if o.ok() => None,
                Ok(o) => Some(o.last_error().to_owned()),
                Err(e) => Some(e.to_string()),
            };
            match failed {
                None => {
                    printer.progress(format_args!(
                        "  {:<10} stopped {}",
                        host.name,
                        names.join(", ")
                    ));
                    report.stopped.push(HostStopped {
                        host: host.name.clone(),
                        services: names.iter().map(|n| n.to_string()).collect(),
                    });
                }
                Some(why) => {
                    printer.warn(format_args!(
                        "{}: could not stop {}: {why}",
                        host.name,
                        names.join(", ")
                    ));
                    report.left_running.push(format!(
                        "{}: {} ({why})",
                        host.name,
                        names.join(", ")
                    ));
                }
            }
        }
    }
    if report.left_running.is_empty() {
        state.clear_deployment()?;
    }
    printer.result(&report, |p| {
        if report.left_running.is_empty() {
            p.line(format_args!(
                "{} stopped every service on {} host(s); nothing is left running",
                p.paint(Style::Good, "✓"),
                report
                    .stopped
                    .iter()
                    .map(|h| &h.host)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            ));
        }
    });
    if report.left_running.is_empty() {
        Ok(())
    } else {
        Err(anyhow::Error::new(Reported {
            user: false,
            summary: format!(
                "could not stop everything; still running:\n  {}\nthe deployment is kept: run `gtm down` again",
                report.left_running.join("\n  ")
            ),
        }))
    }
}
