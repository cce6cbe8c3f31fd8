//! `gtm deploy FILE`: the topology onto its hosts over OpenSSH. Preflight
//! (every host surveyed in one session each, every problem reported before
//! anything starts), push (binaries, each host's bundle, the token file;
//! only what the host does not have already), then start stage by stage
//! across all hosts — backends, L7, L4, VIP high availability, DNS — each
//! stage ready, checked from this machine, before the next. A failure
//! part-way stops what this deploy started, newest first, and names what it
//! could not stop. Deploying the same file again is an update: changed
//! files are pushed and the services using them reloaded or restarted.
//!
//! OpenSSH directly rather than an Ansible playbook: nothing more to
//! install on the operator's machine, the steps are few but ordered across
//! hosts (a stage waits for the previous one everywhere), and `gtm render`
//! gives configuration-management users the same files.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest;
use topology::Topology;
use topology::hosts::{Host, Init};
use topology::tiers::l4::Ha;

use crate::admin::Admin;
use crate::cli::DeployArgs;
use crate::deployed::Deployed;
use crate::error::{Reported, user};
use crate::plan::{Component, plan};
use crate::printer::{Printer, Style};
use crate::remote::preflight::{self, Facts};
use crate::remote::{RemoteError, Ssh, each, quote, quote_all, services, tar};
use crate::render::{Bundle, Reload, Service, Stage, bundles};
use crate::supervise::state::{Deployment, Remote, RemoteHost, RemoteService, StateDir};
use crate::supervise::{find_binary, ready};
use crate::timeline::format_duration;

use super::up::{Try, try_lines};
use super::validate;

/// The stages in start order, with their names in `deployment.json`
/// and in progress lines.
pub(super) const STAGES: [(Stage, &str, &str); 5] = [
    (Stage::Backend, "backend", "backends"),
    (Stage::L7, "l7", "L7 nodes"),
    (Stage::L4, "l4", "L4 nodes"),
    (Stage::Ha, "ha", "VIP high availability"),
    (Stage::Gslb, "gslb", "DNS nodes"),
];

/// How long the survey of one host may take.
const SURVEY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a push (binaries included) may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long starting or stopping a host's services may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often readiness is checked.
const POLL: Duration = Duration::from_millis(250);
/// Log lines quoted for a component that failed.
const LOG_LINES: usize = 15;

/// A stage's name in `deployment.json`.
pub(super) fn stage_name(stage: Stage) -> &'static str {
    STAGES.iter().find(|s| s.0 == stage).map_or("?", |s| s.1)
}

/// The position of a recorded stage name in the start order (unknown
/// names last, so they are stopped first).
pub(super) fn stage_rank(name: &str) -> usize {
    STAGES
        .iter()
        .position(|s| s.1 == name)
        .unwrap_or(STAGES.len())
}

/// One file to push, with its hash.
struct Push {
    entry: tar::Entry,
    secret: bool,
    sha256: String,
}

/// One host's work.
struct HostWork<'a> {
    bundle: &'a Bundle,
    pushes: Vec<Push>,
    facts: Facts,
}

impl HostWork<'_> {
    fn host(&self) -> &Host {
        &self.bundle.host
    }

    /// Files whose hash on the host differs from ours.
    fn changed(&self) -> Vec<&Push> {
        self.pushes
            .iter()
            .filter(|p| self.facts.hashes.get(&path_text(&p.entry.path)) != Some(&p.sha256))
            .collect()
    }

    fn services(&self, stage: Stage) -> Vec<&Service> {
        self.bundle
            .services
            .iter()
            .filter(|s| s.stage == stage)
            .collect()
    }
}

/// A service this deploy started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct Started {
    /// Index of its host.
    #[serde(skip)]
    host: usize,
    /// The host's name.
    #[serde(rename = "host")]
    host_name: String,
    #[serde(skip)]
    stage: Stage,
    service: String,
}

/// What `gtm deploy` did.
#[derive(Serialize)]
struct Summary {
    topology: String,
    hosts: usize,
    pushed_files: usize,
    started: Vec<Started>,
    refreshed: Vec<String>,
    stages: Vec<StageTime>,
    commands: Vec<Try>,
}

#[derive(Serialize)]
struct StageTime {
    stage: &'static str,
    ready_ms: f64,
}

/// Runs `gtm deploy`.
pub fn run(args: &DeployArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    let begun = Instant::now();
    let file = std::fs::canonicalize(&args.file).map_err(|e| {
        user(format!(
            "cannot read topology file {}: {e}",
            args.file.display()
        ))
    })?;
    let topology = validate::load_valid(&file, printer, "nothing was deployed")?;
    if topology.hosts.is_empty() {
        return Err(user(format!(
            "{} has no `hosts:` section: everything runs on this machine; start it with `gtm up {}`",
            file.display(),
            file.display()
        )));
    }
    let ssh_config = match &args.ssh_config {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .map_err(|e| user(format!("cannot read ssh config {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let _lock = state.lock()?;
    let previous = Deployed::load(state).ok().flatten();
    if let Some(previous) = &previous
        && previous.deployment.topology != file
    {
        return Err(user(format!(
            "{} records a deployment of {}; run `gtm down` first (or use another --state-dir)",
            state.root().display(),
            previous.deployment.topology.display()
        )));
    }
    let ssh = Ssh::new(ssh_config);
    let bundles = bundles(&topology, &file)?;
    let components = plan(&topology, &file);
    let token = Admin::token_for(&topology);

    // Preflight: everything local, then every host at once.
    let (binaries, mut problems) = local_binaries(&bundles, args.bin_dir.as_deref());
    problems.extend(token_problem(&components, token.is_some()));
    let mut works: Vec<HostWork> = bundles
        .iter()
        .map(|bundle| HostWork {
            bundle,
            pushes: pushes(bundle, &binaries, token.as_deref()),
            facts: Facts::default(),
        })
        .collect();
    printer.progress(format_args!(
        "checking {} host(s) over ssh{}",
        works.len(),
        ssh.config()
            .map_or_else(String::new, |c| format!(" (-F {})", c.display()))
    ));
    let surveys = each(&works, args.parallel, |work| {
        let files: Vec<String> = work
            .pushes
            .iter()
            .map(|p| path_text(&p.entry.path))
            .collect();
        let names: Vec<&str> = work
            .bundle
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        ssh.run(
            &work.host().ssh,
            &preflight::survey(work.host(), &files, &names),
            SURVEY_TIMEOUT,
        )
    });
    for (work, survey) in works.iter_mut().zip(surveys) {
        match survey {
            Ok(output) => {
                work.facts = preflight::parse(&output.stdout);
                let host = work.host();
                let needs = preflight::needs(&topology, &components, host);
                problems.extend(preflight::problems(host, &needs, &work.facts));
            }
            Err(error) => problems.push(format!(
                "{}: {error} (components: {}); check that `ssh{} {} true` works from here",
                work.host().name,
                components_of(work.bundle).join(", "),
                ssh.config()
                    .map_or_else(String::new, |c| format!(" -F {}", c.display())),
                work.host().ssh
            )),
        }
    }
    if !problems.is_empty() {
        for problem in &problems {
            printer.warn(problem);
        }
        return Err(anyhow::Error::new(Reported {
            user: true,
            summary: format!(
                "{} problem(s) found before deploying; nothing was changed on any host",
                problems.len()
            ),
        }));
    }
    printer.progress(format_args!(
        "  {} every host is reachable and has what its components need ({})",
        printer.paint_err(Style::Good, "✓"),
        format_duration(begun.elapsed())
    ));

    // Push.
    let pushed = each(&works, args.parallel, |work| push(&ssh, work));
    let mut pushed_files = 0;
    let mut failed = Vec::new();
    for (work, result) in works.iter().zip(pushed) {
        match result {
            Ok(count) => pushed_files += count,
            Err(error) => failed.push(format!("{}: {error}", work.host().name)),
        }
    }
    if !failed.is_empty() {
        return Err(user(format!(
            "could not copy the files to {} host(s); nothing was started{}:\n  {}",
            failed.len(),
            if previous.is_some() {
                " (the services already running keep their old files in memory)"
            } else {
                ""
            },
            failed.join("\n  ")
        )));
    }
    printer.progress(format_args!(
        "  {} pushed {pushed_files} changed file(s) ({})",
        printer.paint_err(Style::Good, "✓"),
        format_duration(begun.elapsed())
    ));

    state.write_deployment(&Deployment::new(
        file.clone(),
        previous.as_ref().map(|p| &p.deployment),
        Some(record(&bundles, ssh.config(), args.bin_dir.as_deref())),
    ))?;

    // Start, stage by stage across every host.
    let admin = Admin::new(token)?;
    let interrupted = super::interrupt_flag();
    let mut started: Vec<Started> = Vec::new();
    let mut refreshed = Vec::new();
    let mut stages = Vec::new();
    for (stage, _, label) in STAGES {
        let work: Vec<usize> = (0..works.len())
            .filter(|&i| !works[i].services(stage).is_empty())
            .collect();
        if work.is_empty() {
            continue;
        }
        let stage_begun = Instant::now();
        let works = &works;
        let names: Vec<String> = work
            .iter()
            .flat_map(|&i| {
                works[i].services(stage).into_iter().map(move |s| {
                    format!(
                        "{}@{}",
                        s.component.as_deref().unwrap_or(&s.name),
                        works[i].host().name
                    )
                })
            })
            .collect();
        printer.progress(format_args!("starting {label}: {}", names.join(", ")));
        let results = each(&work, args.parallel, |&i| {
            start_stage(&ssh, &works[i], stage)
        });
        let mut failures = Vec::new();
        for (&i, result) in work.iter().zip(results) {
            let work = &works[i];
            for service in work.services(stage) {
                if !work.facts.running.contains(&service.name) {
                    started.push(Started {
                        host: i,
                        host_name: work.host().name.clone(),
                        stage,
                        service: service.name.clone(),
                    });
                }
            }
            match result {
                Ok(mut names) => refreshed.append(&mut names),
                Err(error) => failures.push(format!("{}: {error}", work.host().name)),
            }
        }
        if !failures.is_empty() {
            let left = rollback(&ssh, works, &topology, &started, args.parallel, printer);
            return Err(failed_part_way(
                format!("starting the {label} failed:\n  {}", failures.join("\n  ")),
                &left,
                previous.is_none(),
                state,
            ));
        }
        let checks = checks(works, &work, stage, &components, &topology);
        if let Err(why) = wait_ready(&checks, &admin, printer, args, &interrupted) {
            let logs = why
                .check
                .and_then(|c| checks[c].service.as_ref())
                .map(|(i, service)| {
                    let host = works[*i].host();
                    let text = match ssh.run(
                        &host.ssh,
                        &services::logs(host, service, Some(LOG_LINES), false),
                        SURVEY_TIMEOUT,
                    ) {
                        Ok(o) => format!("{}{}", o.stdout, o.stderr),
                        Err(e) => e.to_string(),
                    };
                    let quoted: String = text
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| format!("\n    | {l}"))
                        .collect();
                    format!("\n  last log lines of {service} on {}:{quoted}", host.name)
                })
                .unwrap_or_default();
            let left = rollback(&ssh, works, &topology, &started, args.parallel, printer);
            return Err(failed_part_way(
                format!("{}{logs}", why.message),
                &left,
                previous.is_none(),
                state,
            ));
        }
        stages.push(StageTime {
            stage: stage_name(stage),
            ready_ms: stage_begun.elapsed().as_secs_f64() * 1000.0,
        });
    }

    let deployed = Deployed::require(state)?;
    let summary = Summary {
        topology: file.display().to_string(),
        hosts: works.len(),
        pushed_files,
        started,
        refreshed,
        stages,
        commands: try_lines(&deployed),
    };
    let took = begun.elapsed();
    printer.result(&summary, |p| print_summary(&summary, took, p));
    Ok(())
}

/// The binaries the bundles' services run (`{dir}/bin/NAME`), read from
/// `bin_dir` or found beside gtm / on `PATH`; the problems otherwise.
fn local_binaries(
    bundles: &[Bundle],
    bin_dir: Option<&Path>,
) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for bundle in bundles {
        for service in &bundle.services {
            let Some(name) = binary_of(bundle, service) else {
                continue;
            };
            let who = service.component.clone().unwrap_or(service.name.clone());
            match wanted.iter_mut().find(|(n, _)| *n == name) {
                Some((_, users)) => users.push(who),
                None => wanted.push((name, vec![who])),
            }
        }
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (name, users) in wanted {
        let path = match bin_dir {
            Some(dir) => {
                let path = dir.join(&name);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!(
                        "the `{name}` binary is not in --bin-dir {}",
                        dir.display()
                    ))
                }
            }
            None => find_binary(&name),
        };
        match path.and_then(|p| std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))) {
            Ok(bytes) => found.push((name, bytes)),
            Err(why) => problems.push(format!(
                "this machine: {why} (needed by {}); build it with `cargo build --release -p {name}` and pass --bin-dir target/release",
                users.join(", ")
            )),
        }
    }
    (found, problems)
}

/// `gslb` for a service running `{dir}/bin/gslb …`.
fn binary_of(bundle: &Bundle, service: &Service) -> Option<String> {
    let program = Path::new(service.argv.first()?);
    (program.parent()? == bundle.host.dir.join("bin"))
        .then(|| program.file_name()?.to_str().map(str::to_owned))
        .flatten()
}

/// An admin API off loopback without a token: anyone who reaches it could
/// change the deployment.
fn token_problem(components: &[Component], have_token: bool) -> Option<String> {
    if have_token {
        return None;
    }
    let exposed: Vec<String> = components
        .iter()
        .filter_map(|c| {
            c.admin
                .filter(|a| !a.ip().is_loopback())
                .map(|a| format!("{} ({a})", c.name))
        })
        .collect();
    (!exposed.is_empty()).then(|| {
        format!(
            "this machine: the admin APIs of {} listen off loopback but no token is set; set GTM_ADMIN_TOKEN (e.g. `export GTM_ADMIN_TOKEN=$(openssl rand -hex 16)`) or dns.admin_token",
            exposed.join(", ")
        )
    })
}

/// Every file a host gets: its bundle, the binaries its services run, and
/// `env` with the admin token.
fn pushes(bundle: &Bundle, binaries: &[(String, Vec<u8>)], token: Option<&str>) -> Vec<Push> {
    let mut pushes: Vec<Push> = bundle
        .files
        .iter()
        .map(|f| push_of(f.path.clone(), f.contents.clone(), f.mode, f.secret))
        .collect();
    let needed: BTreeSet<String> = bundle
        .services
        .iter()
        .filter_map(|s| binary_of(bundle, s))
        .collect();
    for (name, bytes) in binaries.iter().filter(|(n, _)| needed.contains(n)) {
        pushes.push(push_of(
            Path::new("bin").join(name),
            bytes.clone(),
            0o755,
            false,
        ));
    }
    let env = token.map_or_else(String::new, |t| format!("GTM_ADMIN_TOKEN={t}\n"));
    pushes.push(push_of("env".into(), env.into_bytes(), 0o600, true));
    pushes
}

fn push_of(path: PathBuf, contents: Vec<u8>, mode: u32, secret: bool) -> Push {
    let sha256 = sha2::Sha256::digest(&contents)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Push {
        entry: tar::Entry {
            path,
            contents,
            mode: if secret { 0o600 } else { mode },
        },
        secret,
        sha256,
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// The components a bundle runs, for messages.
fn components_of(bundle: &Bundle) -> Vec<String> {
    bundle
        .services
        .iter()
        .filter_map(|s| s.component.clone())
        .collect()
}

/// Copies a host's changed files, then prepares it: the service user and
/// secrets' owner, units linked (systemd), binding a VIP not yet held (L4
/// hosts). The number of files copied.
fn push(ssh: &Ssh, work: &HostWork) -> Result<usize, RemoteError> {
    let host = work.host();
    let changed = work.changed();
    let entries: Vec<tar::Entry> = changed.iter().map(|p| p.entry.clone()).collect();
    let mut then = Vec::new();
    if host.init == Init::Systemd {
        then.push(
            "(id -u gtm >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin gtm)"
                .to_owned(),
        );
        let secrets: Vec<String> = work
            .pushes
            .iter()
            .filter(|p| p.secret)
            .map(|p| host.dir.join(&p.entry.path).display().to_string())
            .collect();
        if !secrets.is_empty() {
            then.push(format!("chown gtm:gtm {}", quote_all(&secrets)));
        }
        for service in &work.bundle.services {
            let unit = format!("{}.service", service.name);
            then.push(format!(
                "ln -sfn {} {}",
                quote(&host.dir.join("units").join(&unit).display().to_string()),
                quote(&format!("/etc/systemd/system/{unit}"))
            ));
        }
        then.push("systemctl daemon-reload".to_owned());
    }
    let output = ssh.push(
        &host.ssh,
        &host.dir,
        &entries,
        &then.join(" && "),
        PUSH_TIMEOUT,
    )?;
    if output.ok() {
        Ok(entries.len())
    } else {
        Err(RemoteError::Unreachable(format!(
            "preparing {} failed: {}",
            host.dir.display(),
            output.last_error()
        )))
    }
}

/// Starts `stage`'s services on one host; services that ran before and
/// whose files changed are reloaded or restarted. Names those.
fn start_stage(ssh: &Ssh, work: &HostWork, stage: Stage) -> Result<Vec<String>, String> {
    let host = work.host();
    let services = work.services(stage);
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let changed = work.changed();
    let (mut reload, mut restart) = (Vec::new(), Vec::new());
    for service in services
        .iter()
        .filter(|s| work.facts.running.contains(&s.name))
    {
        let binary = binary_of(work.bundle, service).map(|b| format!("bin/{b}"));
        let unit = format!("units/{}.service", service.name);
        let touched = |path: &str| changed.iter().any(|p| path_text(&p.entry.path) == path);
        if binary.as_deref().is_some_and(touched) || touched(&unit) {
            restart.push(service.name.as_str());
        } else if changed
            .iter()
            .any(|p| !p.entry.path.starts_with("bin") && !p.entry.path.starts_with("units"))
        {
            match service.reload {
                Reload::Sighup => reload.push(service.name.as_str()),
                Reload::Restart => restart.push(service.name.as_str()),
            }
        }
    }
    let mut script = services::start(host, &names);
    if !reload.is_empty() {
        script = format!("{script} && {}", services::reload(host, &reload, false));
    }
    if !restart.is_empty() {
        script = format!("{script} && {}", services::reload(host, &restart, true));
    }
    match ssh.run(&host.ssh, &script, CONTROL_TIMEOUT) {
        Ok(output) if output.ok() => Ok(reload
            .iter()
            .chain(&restart)
            .map(|s| format!("{s}@{}", host.name))
            .collect()),
        Ok(output) => {
            let quoted: String = format!("{}{}", output.stdout, output.stderr)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("\n    | {l}"))
                .collect();
            Err(format!(
                "`{script}` failed (exit {:?}){quoted}",
                output.code
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// One readiness check of a stage.
struct Check {
    /// What is checked (a component, or a region's VIP).
    label: String,
    /// The host and service behind it, for its logs.
    service: Option<(usize, String)>,
    what: What,
}

enum What {
    /// The component's own probe (`/healthz`, a DNS SOA).
    Probe(crate::plan::Probe),
    /// A VIP answers HTTP (any status).
    Vip(SocketAddr),
}

/// The checks of `stage` on the hosts `work`: each component's probe; for
/// the HA stage, every HA region's VIP.
fn checks(
    works: &[HostWork],
    work: &[usize],
    stage: Stage,
    components: &[Component],
    topology: &Topology,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for &i in work {
        for service in works[i].services(stage) {
            let Some(component) = service
                .component
                .as_ref()
                .and_then(|name| components.iter().find(|c| &c.name == name))
            else {
                continue;
            };
            checks.push(Check {
                label: format!("{} on {}", component.name, works[i].host().name),
                service: Some((i, service.name.clone())),
                what: What::Probe(component.probe.clone()),
            });
        }
    }
    if stage == Stage::Ha {
        for region in &topology.regions {
            if region.l4.as_ref().and_then(|l4| l4.ha.as_ref()).is_none() {
                continue;
            }
            let keeper = works.iter().position(|w| {
                w.services(Stage::Ha).iter().any(|_| {
                    region.l4.as_ref().is_some_and(|l4| {
                        l4.nodes
                            .iter()
                            .any(|n| n.host.as_deref() == Some(w.host().name.as_str()))
                    })
                })
            });
            for vip in region.vip.addresses() {
                checks.push(Check {
                    label: format!("{} VIP {vip}", region.name),
                    service: keeper.and_then(|i| {
                        works[i]
                            .services(Stage::Ha)
                            .first()
                            .map(|s| (i, s.name.clone()))
                    }),
                    what: What::Vip(SocketAddr::new(vip, region.vip.http_port)),
                });
            }
        }
    }
    checks
}

/// Why a stage did not become ready.
struct NotReady {
    /// The check that did not pass (`None`: interrupted).
    check: Option<usize>,
    message: String,
}

/// Waits until every check passes, polling them all at once.
fn wait_ready(
    checks: &[Check],
    admin: &Admin,
    printer: &Printer,
    args: &DeployArgs,
    interrupted: &std::sync::atomic::AtomicBool,
) -> Result<(), NotReady> {
    let begun = Instant::now();
    let mut pending: Vec<usize> = (0..checks.len()).collect();
    let mut seen: Vec<String> = vec!["not checked yet".into(); checks.len()];
    let mut next_report = begun + Duration::from_secs(3);
    while !pending.is_empty() {
        if interrupted.load(Ordering::Relaxed) {
            return Err(NotReady {
                check: None,
                message: "interrupted".into(),
            });
        }
        let results = each(&pending, args.parallel, |&c| match &checks[c].what {
            What::Probe(probe) => ready::check(probe, admin),
            What::Vip(addr) => admin
                .probe(*addr, "/", ready::CHECK_TIMEOUT)
                .map(drop)
                .map_err(|e| format!("GET http://{addr}/: {e}")),
        });
        let mut still = Vec::new();
        for (&c, result) in pending.iter().zip(results) {
            match result {
                Ok(()) => printer.progress(format_args!(
                    "  {} {:<28} ready in {}",
                    printer.paint_err(Style::Good, "✓"),
                    checks[c].label,
                    format_duration(begun.elapsed())
                )),
                Err(why) => {
                    seen[c] = why;
                    still.push(c);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if begun.elapsed() > args.timeout {
            let c = pending[0];
            return Err(NotReady {
                check: Some(c),
                message: format!(
                    "{} was not ready after {}: {}",
                    checks[c].label,
                    format_duration(args.timeout),
                    seen[c]
                ),
            });
        }
        if Instant::now() >= next_report {
            for &c in &pending {
                printer.progress(format_args!(
                    "  … {:<28} waiting ({}): {}",
                    checks[c].label,
                    format_duration(begun.elapsed()),
                    seen[c]
                ));
            }
            next_report = Instant::now() + Duration::from_secs(3);
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The services to stop on each host (by index) in one stage.
type StopBatch = Vec<(usize, Vec<String>)>;

/// What to stop after a failure: `started`, latest stage first, grouped by
/// host (`services::stop` stops a host's list in reverse).
fn rollback_plan(started: &[Started]) -> Vec<(Stage, StopBatch)> {
    let mut plan: Vec<(Stage, StopBatch)> = Vec::new();
    for (stage, _, _) in STAGES.iter().rev() {
        let mut hosts: StopBatch = Vec::new();
        for s in started.iter().filter(|s| s.stage == *stage) {
            match hosts.iter_mut().find(|(h, _)| *h == s.host) {
                Some((_, names)) => names.push(s.service.clone()),
                None => hosts.push((s.host, vec![s.service.clone()])),
            }
        }
        if !hosts.is_empty() {
            plan.push((*stage, hosts));
        }
    }
    plan
}

/// Stops what this deploy started, newest stage first; what could not be
/// stopped, one line per host.
fn rollback(
    ssh: &Ssh,
    works: &[HostWork],
    topology: &Topology,
    started: &[Started],
    parallel: usize,
    printer: &Printer,
) -> Vec<String> {
    let plan = rollback_plan(started);
    if plan.is_empty() {
        return Vec::new();
    }
    printer.progress(format_args!(
        "stopping the {} service(s) this deploy started",
        started.len()
    ));
    let mut left = Vec::new();
    for (stage, hosts) in plan {
        let results = each(&hosts, parallel, |(i, names)| {
            let host = works[*i].host();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut script = services::stop(host, &names);
            if stage == Stage::Ha
                && let Some(cleanup) = vip_cleanup(topology, host)
            {
                script = format!("{script}; {cleanup}");
            }
            ssh.run(&host.ssh, &script, CONTROL_TIMEOUT)
        });
        for ((i, names), result) in hosts.iter().zip(results) {
            let why = match result {
                Ok(o) if o.ok() => continue,
                Ok(o) => o.last_error().to_owned(),
                Err(e) => e.to_string(),
            };
            left.push(format!(
                "{}: {} ({why})",
                works[*i].host().name,
                names.join(", ")
            ));
        }
    }
    left
}

/// On a BGP L4 host, removes the VIPs the announcement put on `lo`
/// (keepalived removes its own when it stops).
pub(super) fn vip_cleanup(topology: &Topology, host: &Host) -> Option<String> {
    let vips: Vec<String> = topology
        .regions
        .iter()
        .filter(|r| {
            r.l4.as_ref().is_some_and(|l4| {
                matches!(l4.ha, Some(Ha::Bgp(_)))
                    && l4
                        .nodes
                        .iter()
                        .any(|n| n.host.as_deref() == Some(host.name.as_str()))
            })
        })
        .flat_map(|r| r.vip.addresses())
        .map(|vip| {
            let len = if vip.is_ipv4() { 32 } else { 128 };
            format!("ip addr del {vip}/{len} dev lo 2>/dev/null")
        })
        .collect();
    (!vips.is_empty()).then(|| format!("{}; true", vips.join("; ")))
}

/// The error of a deploy that failed after starting something.
fn failed_part_way(cause: String, left: &[String], fresh: bool, state: &StateDir) -> anyhow::Error {
    let after = if left.is_empty() {
        if fresh {
            let _ = state.clear_deployment();
        }
        "everything this deploy started was stopped again".to_owned()
    } else {
        format!(
            "could not stop everything this deploy started; still running:\n  {}\n`gtm down` tries again",
            left.join("\n  ")
        )
    };
    anyhow::Error::new(Reported {
        user: false,
        summary: format!("{cause}\n{after}"),
    })
}

/// The deployment record: where each service runs.
fn record(bundles: &[Bundle], ssh_config: Option<&Path>, bin_dir: Option<&Path>) -> Remote {
    Remote {
        ssh_config: ssh_config.map(Path::to_path_buf),
        bin_dir: bin_dir.and_then(|d| std::fs::canonicalize(d).ok()),
        hosts: bundles
            .iter()
            .map(|b| RemoteHost {
                name: b.host.name.clone(),
                services: b
                    .services
                    .iter()
                    .map(|s| RemoteService {
                        name: s.name.clone(),
                        component: s.component.clone(),
                        stage: stage_name(s.stage).to_owned(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn print_summary(summary: &Summary, took: Duration, p: &Printer) {
    let refreshed = if summary.refreshed.is_empty() {
        String::new()
    } else {
        format!(", {} reloaded or restarted", summary.refreshed.len())
    };
    p.line(format_args!(
        "{} deployed {} on {} host(s) in {}: {} service(s) started{refreshed}, {} file(s) pushed",
        p.paint(Style::Good, "✓"),
        summary.topology,
        summary.hosts,
        format_duration(took),
        summary.started.len(),
        summary.pushed_files
    ));
    let stages: Vec<String> = summary
        .stages
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.stage,
                format_duration(Duration::from_secs_f64(s.ready_ms / 1000.0))
            )
        })
        .collect();
    p.line(format_args!("  stages ready: {}", stages.join(", ")));
    p.line("");
    super::up::print_try(&summary.commands, p);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(host: usize, stage: Stage, service: &str) -> Started {
        Started {
            host,
            host_name: format!("h{host}"),
            stage,
            service: service.into(),
        }
    }

    #[test]
    fn stages_are_named_and_ranked_in_start_order() {
        let names: Vec<&str> = STAGES.iter().map(|s| s.1).collect();
        assert_eq!(names, ["backend", "l7", "l4", "ha", "gslb"]);
        assert!(STAGES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(stage_rank("gslb"), 4);
        assert_eq!(stage_rank(stage_name(Stage::L7)), 1);
        assert_eq!(stage_rank("future"), 5);
    }

    #[test]
    fn rollback_stops_the_latest_stage_first_grouped_by_host() {
        let plan = rollback_plan(&[
            started(0, Stage::Backend, "web1"),
            started(1, Stage::Backend, "web2"),
            started(2, Stage::L7, "l7a"),
            started(3, Stage::L4, "l4a"),
            started(3, Stage::Ha, "keepalived"),
            started(3, Stage::Ha, "announce"),
        ]);
        assert_eq!(
            plan,
            [
                (
                    Stage::Ha,
                    vec![(3, vec!["keepalived".into(), "announce".into()])]
                ),
                (Stage::L4, vec![(3, vec!["l4a".into()])]),
                (Stage::L7, vec![(2, vec!["l7a".into()])]),
                (
                    Stage::Backend,
                    vec![(0, vec!["web1".into()]), (1, vec!["web2".into()])]
                ),
            ]
        );
        assert!(rollback_plan(&[]).is_empty());
    }

    #[test]
    fn an_exposed_admin_api_needs_a_token() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/multi-host.yaml"
        ));
        let topology = topology::load(path).unwrap();
        let components = plan(&topology, path);
        let problem = token_problem(&components, false).unwrap();
        assert!(problem.contains("set GTM_ADMIN_TOKEN"), "{problem}");
        assert!(problem.contains("ns1 (198.51.100.2:9053)"), "{problem}");
        assert_eq!(token_problem(&components, true), None);
    }

    #[test]
    fn only_bgp_hosts_get_their_vip_removed_from_lo() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/multi-host.yaml"
        ));
        let topology = topology::load(path).unwrap();
        assert_eq!(
            vip_cleanup(&topology, topology.host("euw-l4a").unwrap()).as_deref(),
            Some("ip addr del 203.0.113.2/32 dev lo 2>/dev/null; true")
        );
        assert_eq!(
            vip_cleanup(&topology, topology.host("use-l4a").unwrap()),
            None
        );
        assert_eq!(
            vip_cleanup(&topology, topology.host("euw-ns").unwrap()),
            None
        );
    }
}
