//! `gtm render TOPOLOGY DIR`: each host's bundle written to `DIR/HOST/`,
//! with a README saying how to install it, for operators who bring their
//! own configuration management (`gtm deploy` pushes the same files).

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use topology::hosts::Init;

use crate::cli::RenderArgs;
use crate::error::user;
use crate::plan::{conflicts, plan};
use crate::printer::{Printer, Style};
use crate::render::{Bundle, bundles};

/// The first line of every rendered README: marks a directory `render` may
/// replace.
const README_MARK: &str = "# gtm bundle for host ";

/// The result.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The output directory.
    pub out: String,
    /// Every host rendered, in the topology's order.
    pub hosts: Vec<HostReport>,
}

/// One host's bundle.
#[derive(Debug, Serialize)]
pub struct HostReport {
    /// Its name.
    pub host: String,
    /// Where its files were written.
    pub path: String,
    /// Where they belong on the host.
    pub dir: String,
    /// `systemd` or `process`.
    pub init: &'static str,
    /// Its services, in start order.
    pub services: Vec<ServiceReport>,
    /// The bundle's files, relative to `path`.
    pub files: Vec<String>,
}

/// One service.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// Unit name without `.service`.
    pub name: String,
    /// Its start stage.
    pub stage: &'static str,
    /// The component it runs.
    pub component: Option<String>,
    /// Its command line on the host.
    pub argv: Vec<String>,
}

/// Renders `args.file` into `args.out`.
pub fn run(args: &RenderArgs, printer: &Printer) -> anyhow::Result<()> {
    let topology = topology::load(&args.file)?;
    if topology.hosts.is_empty() {
        return Err(user(format!(
            "{} has no `hosts:` section, so there is no host to render for; \
             run it on this machine with `gtm up {0}`, or add hosts (docs/topology.md, examples/multi-host.yaml)",
            args.file.display()
        )));
    }
    let problems = conflicts(&plan(&topology, &args.file));
    if !problems.is_empty() {
        return Err(user(format!(
            "{}: {}",
            args.file.display(),
            problems.join("; ")
        )));
    }
    let bundles = bundles(&topology, &args.file)?;
    let mut report = Report {
        out: args.out.display().to_string(),
        hosts: Vec::new(),
    };
    for bundle in &bundles {
        let path = args.out.join(&bundle.host.name);
        write_bundle(bundle, &path, &args.file)?;
        report.hosts.push(HostReport {
            host: bundle.host.name.clone(),
            path: path.display().to_string(),
            dir: bundle.host.dir.display().to_string(),
            init: bundle.host.init.as_str(),
            services: bundle
                .services
                .iter()
                .map(|s| ServiceReport {
                    name: s.name.clone(),
                    stage: s.stage.as_str(),
                    component: s.component.clone(),
                    argv: s.argv.clone(),
                })
                .collect(),
            files: bundle
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect(),
        });
    }
    printer.result(&report, |p| {
        p.line(format!(
            "{} {} host bundle{} in {}",
            p.paint(Style::Good, "rendered"),
            report.hosts.len(),
            if report.hosts.len() == 1 { "" } else { "s" },
            report.out
        ));
        for host in &report.hosts {
            let services: Vec<&str> = host.services.iter().map(|s| s.name.as_str()).collect();
            p.line(format!(
                "  {} ({}, {}): {}",
                p.paint(Style::Bold, &host.host),
                host.init,
                host.dir,
                services.join(", ")
            ));
        }
        p.line("Each host's README says where its files go and how to start them.");
    });
    Ok(())
}

/// Writes `bundle` to `path` (replacing an earlier rendering there), with
/// each file's mode, and the README.
fn write_bundle(bundle: &Bundle, path: &Path, topology_path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        let earlier = fs::read_to_string(path.join("README")).unwrap_or_default();
        if !earlier.starts_with(README_MARK) {
            return Err(user(format!(
                "{} exists and is not a bundle gtm rendered; remove it or render into another directory",
                path.display()
            )));
        }
        // A whole new rendering: files the topology no longer needs go.
        fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    let mut files: Vec<(PathBuf, &[u8], u32)> = bundle
        .files
        .iter()
        .map(|f| (f.path.clone(), f.contents.as_slice(), f.mode))
        .collect();
    let readme = readme(bundle, topology_path);
    files.push((PathBuf::from("README"), readme.as_bytes(), 0o644));
    for (relative, contents, mode) in files {
        let target = path.join(&relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        file.write_all(contents)
            .with_context(|| format!("cannot write {}", target.display()))?;
        // The umask may have narrowed the mode `open` was given.
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", target.display()))?;
    }
    Ok(())
}

/// The README of `bundle`: its services in start order and how to install
/// them.
fn readme(bundle: &Bundle, topology_path: &Path) -> String {
    let host = &bundle.host;
    let dir = host.dir.display();
    let mut text = format!(
        "{README_MARK}{}, rendered by `gtm render` from {}\n\n\
         Copy these files (all but this README) to {dir} on {} (ssh {}), keeping their modes.\n",
        host.name,
        topology_path.display(),
        host.name,
        host.ssh
    );
    let secrets: Vec<String> = bundle
        .files
        .iter()
        .filter(|f| f.secret)
        .map(|f| f.path.display().to_string())
        .collect();
    if !secrets.is_empty() {
        let owner = match host.init {
            Init::Systemd => "the `gtm` user",
            Init::Process => "root",
        };
        let _ = writeln!(
            text,
            "Secrets, mode 0600 and owned by {owner}: {}.",
            secrets.join(", ")
        );
    }
    let mut binaries: Vec<&str> = bundle
        .services
        .iter()
        .filter_map(|s| s.argv.first())
        .filter_map(|bin| Path::new(bin).strip_prefix(&host.dir).ok())
        .filter_map(|bin| bin.to_str())
        .collect();
    binaries.sort_unstable();
    binaries.dedup();
    let _ = write!(
        text,
        "Add the binaries of the same build as gtm: {}.\n\
         Optionally {dir}/env (mode 0600) with GTM_ADMIN_TOKEN=… for admin APIs off loopback.\n\
         Files the topology names by absolute path are not bundled: they must exist at that path.\n\n\
         Services, in start order. Across hosts, start every host's backends, then\n\
         L7 nodes, L4 nodes, HA (keepalived/BIRD) and DNS nodes; stop in reverse.\n\n",
        binaries
            .iter()
            .map(|b| format!("{dir}/{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for service in &bundle.services {
        let _ = writeln!(
            text,
            "  {:<32} {:<8} {}",
            service.name,
            service.stage.as_str(),
            service.argv.join(" ")
        );
    }
    let names: Vec<&str> = bundle.services.iter().map(|s| s.name.as_str()).collect();
    match host.init {
        Init::Systemd => {
            let _ = write!(
                text,
                "\nInstall (systemd), as root:\n\n  \
                 id gtm >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin gtm\n  \
                 ln -sf {dir}/units/*.service /etc/systemd/system/ && systemctl daemon-reload && \\\n    \
                 systemctl enable --now {}\n\n\
                 Reload after a new topology: systemctl reload (SIGHUP) or restart, per service.\n",
                names.join(" ")
            );
        }
        Init::Process => {
            let _ = write!(
                text,
                "\nNo systemd on this host: {dir}/gtmctl runs the services as daemons.\n\n  \
                 {dir}/gtmctl start            # all, in start order\n  \
                 {dir}/gtmctl status\n  \
                 {dir}/gtmctl reload           # SIGHUP, or restart where a service has no reload\n  \
                 {dir}/gtmctl logs SERVICE [N]\n  \
                 {dir}/gtmctl stop             # all, in reverse order\n"
            );
        }
    }
    text
}
