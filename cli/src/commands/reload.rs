//! `gtm reload`: validates the deployed topology file again (as edited
//! since `gtm up`), and only if it is valid, records it and reloads every
//! running component — GSLB nodes through `POST /v1/reload`, edge nodes
//! with SIGHUP (only if they catch it: an edge build that does not would
//! die of it). Components the new file adds or removes are named, for
//! `gtm up` / `gtm down`.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;

use crate::cli::{DeployArgs, ReloadArgs};
use crate::error::Reported;
use crate::plan::{Kind, plan};
use crate::printer::{Printer, Style};
use crate::supervise::process;
use crate::supervise::state::{Deployment, StateDir};

use super::validate;
use crate::deployed::{Deployed, running};

#[derive(Serialize)]
struct Report {
    topology: String,
    components: Vec<Outcome>,
    added: Vec<String>,
    removed: Vec<String>,
}

#[derive(Serialize)]
struct Outcome {
    name: String,
    kind: Kind,
    /// `reloaded`, `skipped`, `not running`, `failed`, `unsupported`.
    result: &'static str,
    detail: String,
}

/// Runs `gtm reload`.
pub fn run(_args: &ReloadArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let old = Deployed::require(state)?;
    if let Some(remote) = &old.deployment.remote {
        // On hosts, a reload is a deploy of the same file: what changed is
        // pushed, and the services using it reloaded or restarted.
        return super::deploy::run(
            &DeployArgs {
                file: old.file().clone(),
                ssh_config: remote.ssh_config.clone(),
                bin_dir: remote.bin_dir.clone(),
                parallel: crate::deployed::PARALLEL,
                timeout: Duration::from_secs(60),
            },
            state,
            printer,
        );
    }
    let _lock = state.lock()?;
    let file = old.file().clone();
    let topology = validate::load_valid(
        &file,
        printer,
        "nothing was reloaded, the deployed configuration keeps serving",
    )?;
    let new_components = plan(&topology, &file);
    let added: Vec<String> = new_components
        .iter()
        .filter(|c| old.component(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    let removed: Vec<String> = old
        .components
        .iter()
        .filter(|c| !new_components.iter().any(|n| n.name == c.name))
        .map(|c| c.name.clone())
        .collect();
    state.write_deployment(&Deployment::new(file.clone(), Some(&old.deployment), None))?;
    let deployed = Deployed::require(state)?;
    let admin = deployed.admin()?;
    let mut outcomes = Vec::new();
    for component in deployed.components.iter().rev() {
        let record = running(state, &component.name)?;
        let outcome = |result, detail: String| Outcome {
            name: component.name.clone(),
            kind: component.kind,
            result,
            detail,
        };
        let Some(record) = record else {
            outcomes.push(outcome("not running", String::new()));
            continue;
        };
        outcomes.push(match component.kind {
            Kind::Gslb => match component.admin {
                Some(addr) => match admin.reload(addr) {
                    Ok(r) if r.ok => outcome("reloaded", format!("POST http://{addr}/v1/reload")),
                    Ok(r) => outcome("failed", r.error.unwrap_or_else(|| "refused".into())),
                    Err(e) => outcome("failed", e.to_string()),
                },
                None => outcome(
                    "unsupported",
                    "no admin API (dns.nodes[].admin) to reload through; restart it: `gtm down && gtm up`"
                        .into(),
                ),
            },
            // A demo backend's only settings are its name and address.
            Kind::Backend => outcome(
                "skipped",
                "a demo backend has nothing to reload (a new address needs a restart)".into(),
            ),
            Kind::L4 | Kind::L7 => match process::handles_sighup(record.pid) {
                Some(false) => outcome(
                    "unsupported",
                    "this edge build does not handle SIGHUP (it would die of it); restart it instead"
                        .into(),
                ),
                _ => match process::signal(record.pid, Signal::SIGHUP) {
                    Ok(()) => {
                        // Still serving after it? (It re-reads in the background.)
                        let ok = wait_alive(&record);
                        if ok {
                            outcome("reloaded", format!("SIGHUP to pid {}", record.pid))
                        } else {
                            outcome("failed", format!("pid {} exited after SIGHUP", record.pid))
                        }
                    }
                    Err(e) => outcome("failed", e),
                },
            },
        });
    }
    let failed = outcomes.iter().filter(|o| o.result == "failed").count();
    let report = Report {
        topology: file.display().to_string(),
        components: outcomes,
        added,
        removed,
    };
    printer.result(&report, |p| {
        p.line(format_args!("{}: valid; reloading", report.topology));
        for o in &report.components {
            let style = match o.result {
                "reloaded" => Style::Good,
                "failed" => Style::Bad,
                "unsupported" => Style::Warn,
                _ => Style::Dim,
            };
            p.line(format_args!(
                "  {:<16} {:<12} {}",
                o.name,
                p.paint(style, o.result),
                p.paint(Style::Dim, &o.detail)
            ));
        }
        if !report.added.is_empty() {
            p.line(format_args!(
                "new in the file (start them with `gtm up`): {}",
                report.added.join(", ")
            ));
        }
        if !report.removed.is_empty() {
            p.line(format_args!(
                "gone from the file (still running until `gtm down`): {}",
                report.removed.join(", ")
            ));
        }
    });
    if failed == 0 {
        Ok(())
    } else {
        Err(anyhow::Error::new(Reported {
            user: false,
            summary: format!("{failed} component(s) failed to reload"),
        }))
    }
}

/// Whether the process still runs a moment after the signal, checked a
/// few times over 300 ms (a process dying of SIGHUP goes at once).
fn wait_alive(record: &crate::supervise::state::PidRecord) -> bool {
    for _ in 0..6 {
        if !process::is_running(record) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    process::is_running(record)
}
