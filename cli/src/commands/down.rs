//! `gtm down`: stops every component with a pid file, the reverse of the
//! start order (DNS first, so no client is sent to a region being taken
//! apart; backends last), SIGTERM then SIGKILL after the grace period; then
//! forgets the deployment. Logs are kept.

use serde::Serialize;

use crate::cli::DownArgs;
use crate::error::Reported;
use crate::plan::Kind;
use crate::printer::{Printer, Style};
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
