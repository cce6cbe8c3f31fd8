//! `gtm validate FILE`: the topology crate's validation, in process, plus
//! what only the whole plan shows (two components binding one address).
//! Every problem is printed with its field path and line; exit 1 if any.

use std::path::Path;

use serde::Serialize;

use crate::cli::ValidateArgs;
use crate::error::Reported;
use crate::plan::{Kind, conflicts, plan};
use crate::printer::{Printer, Style};

/// One problem.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field path (`regions.us-east.vip.ipv4`), when known.
    pub path: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// The result.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The file.
    pub file: String,
    /// Whether it is valid.
    pub ok: bool,
    /// Every problem.
    pub problems: Vec<Problem>,
    /// What it would run, when valid.
    pub summary: Option<Summary>,
}

/// What a valid file deploys.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Zones.
    pub zones: usize,
    /// Regions.
    pub regions: usize,
    /// DNS nodes.
    pub dns_nodes: usize,
    /// L4 nodes.
    pub l4_nodes: usize,
    /// L7 nodes.
    pub l7_nodes: usize,
    /// Backends.
    pub backends: usize,
}

/// Checks `path` and returns the report (no printing).
pub fn check(path: &Path) -> Report {
    let file = path.display().to_string();
    let mut problems = Vec::new();
    let mut summary = None;
    match topology::load(path) {
        Ok(topology) => {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let components = plan(&topology, &absolute);
            for message in conflicts(&components) {
                problems.push(Problem {
                    line: None,
                    path: None,
                    message,
                });
            }
            let count = |kind| components.iter().filter(|c| c.kind == kind).count();
            summary = Some(Summary {
                zones: topology.dns.zones.len(),
                regions: topology.regions.len(),
                dns_nodes: count(Kind::Gslb),
                l4_nodes: count(Kind::L4),
                l7_nodes: count(Kind::L7),
                backends: count(Kind::Backend),
            });
        }
        Err(topology::LoadError::Invalid {
            problems: found, ..
        }) => {
            problems.extend(found.into_iter().map(|p| Problem {
                line: p.line,
                path: Some(p.problem.path),
                message: p.problem.message,
            }));
        }
        Err(topology::LoadError::Syntax { message, .. }) => problems.push(Problem {
            line: None,
            path: None,
            message,
        }),
        Err(error @ topology::LoadError::Read { .. }) => problems.push(Problem {
            line: None,
            path: None,
            message: error.to_string(),
        }),
    }
    Report {
        file,
        ok: problems.is_empty(),
        summary: summary.filter(|_| problems.is_empty()),
        problems,
    }
}

/// The topology in `file` when it is valid (as `gtm validate` judges it:
/// the file and the plan across kinds); otherwise every problem printed and
/// an error whose summary is `{file} is not valid; {consequence}`.
pub fn load_valid(
    file: &Path,
    printer: &Printer,
    consequence: &str,
) -> anyhow::Result<topology::Topology> {
    let report = check(file);
    if !report.ok {
        print_problems(&report, printer);
        return Err(anyhow::Error::new(Reported {
            user: true,
            summary: format!("{} is not valid; {consequence}", file.display()),
        }));
    }
    Ok(topology::load(file)?)
}

/// Prints `report`'s problems (text) on stderr, as errors.
pub fn print_problems(report: &Report, printer: &Printer) {
    let count = report.problems.len();
    printer.progress(format_args!(
        "{}: {count} problem{} found",
        report.file,
        if count == 1 { "" } else { "s" }
    ));
    for problem in &report.problems {
        let mut line = String::from("  ");
        if let Some(number) = problem.line {
            line.push_str(&format!("line {number}: "));
        }
        if let Some(path) = &problem.path {
            line.push_str(&printer.paint_err(Style::Bold, path));
            line.push_str(": ");
        }
        line.push_str(&problem.message);
        printer.progress(line);
    }
}

/// Runs `gtm validate`.
pub fn run(args: &ValidateArgs, printer: &Printer) -> anyhow::Result<()> {
    let report = check(&args.file);
    printer.result(&report, |p| {
        if let Some(s) = &report.summary {
            p.line(format_args!(
                "{}: {} — {} zone(s), {} region(s); runs {} DNS node(s), {} L4 node(s), {} L7 node(s), {} backend(s)",
                report.file,
                p.paint(Style::Good, "ok"),
                s.zones,
                s.regions,
                s.dns_nodes,
                s.l4_nodes,
                s.l7_nodes,
                s.backends
            ));
        } else {
            print_problems(&report, p);
        }
    });
    if report.ok {
        Ok(())
    } else {
        Err(anyhow::Error::new(Reported {
            user: true,
            summary: format!("{} is not valid", report.file),
        }))
    }
}
