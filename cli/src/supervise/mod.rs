//! Process supervision: the state directory and its pid files, finding the
//! binaries, checking addresses before anything starts, spawning each
//! component with its log, waiting for readiness tier by tier, and tearing
//! down (SIGTERM, a grace period, SIGKILL).
//!
//! Components run detached (their own process group, stdin closed, output
//! to their log) so they outlive `gtm up` and ignore the terminal's Ctrl-C;
//! `gtm down` finds them again through their pid files.

pub mod process;
pub mod ready;
pub mod state;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Reported, user};
use crate::plan::{Component, Kind, Proto};
use crate::printer::{Printer, Style};
use crate::timeline::{format_duration, now_rfc3339};
use state::{PidRecord, StateDir};

/// How often readiness and exits are polled.
const POLL: Duration = Duration::from_millis(50);
/// How long SIGKILL may take to be reaped before a process counts as stuck.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Where `gslb` and `edge` are.
#[derive(Clone, Debug, Default)]
pub struct Binaries {
    found: BTreeMap<&'static str, PathBuf>,
}

impl Binaries {
    /// Finds the binaries `components` need: next to this executable, else
    /// on `PATH`. A missing one is a user error naming who needs it.
    pub fn find(components: &[Component]) -> anyhow::Result<Binaries> {
        let here = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let mut binaries = Binaries::default();
        let mut missing = Vec::new();
        for component in components {
            let name = component.kind.binary();
            if binaries.found.contains_key(name) || missing.iter().any(|(n, _)| *n == name) {
                continue;
            }
            match locate(name, here.as_deref(), std::env::var_os("PATH")) {
                Some(path) => {
                    binaries.found.insert(name, path);
                }
                None => missing.push((name, component.name.clone())),
            }
        }
        if missing.is_empty() {
            return Ok(binaries);
        }
        let lines: Vec<String> = missing
            .iter()
            .map(|(binary, first)| {
                let users: Vec<&str> = components
                    .iter()
                    .filter(|c| c.kind.binary() == *binary)
                    .map(|c| c.name.as_str())
                    .collect();
                format!(
                    "the `{binary}` binary is missing (needed by {first}{}): it is neither next to gtm ({}) nor on PATH; build it with `cargo build -p {binary}`",
                    if users.len() > 1 {
                        format!(" and {} other component(s)", users.len() - 1)
                    } else {
                        String::new()
                    },
                    here.as_deref().map_or("?".into(), |p| p.display().to_string()),
                )
            })
            .collect();
        Err(user(lines.join("\n")))
    }

    /// The path of `name`.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.found.get(name).map(PathBuf::as_path)
    }
}

/// The binary `name` (next to gtm, else on `PATH`), or why not.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    locate(name, here.as_deref(), std::env::var_os("PATH")).ok_or_else(|| {
        format!(
            "the `{name}` binary is neither next to gtm ({}) nor on PATH; build it with `cargo build -p {name}`",
            here.as_deref()
                .map_or("?".into(), |p| p.display().to_string())
        )
    })
}

/// `name` in `dir`, else in the first `PATH` entry that has it.
fn locate(name: &str, dir: Option<&Path>, path: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(dir) = dir {
        let candidate = dir.join(name);
        if executable(&candidate) {
            return Some(candidate);
        }
    }
    std::env::split_paths(&path?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

/// An address `component` needs that something else holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The component.
    pub component: String,
    /// What was tried and what the OS said.
    pub detail: String,
}

/// Tries to bind every address of `components`; the ones that cannot be.
pub fn check_addresses(components: &[Component]) -> Vec<Taken> {
    let mut taken = Vec::new();
    for component in components {
        for bind in &component.binds {
            let result = match bind.proto {
                Proto::Tcp => TcpListener::bind(bind.addr).map(drop),
                Proto::Udp => UdpSocket::bind(bind.addr).map(drop),
            };
            if let Err(error) = result {
                let why = match error.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "address in use: another program holds it".to_owned()
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        "address not available on this machine".to_owned()
                    }
                    _ => error.to_string(),
                };
                let port = bind.addr.port();
                let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
                    format!(" (see who with `ss -lntup 'sport = :{port}'`)")
                } else {
                    String::new()
                };
                taken.push(Taken {
                    component: component.name.clone(),
                    detail: format!(
                        "{} {} ({}): {why}{hint}",
                        bind.addr,
                        bind.proto.as_str(),
                        bind.purpose
                    ),
                });
            }
        }
    }
    taken
}

/// A component this gtm started, with its process.
pub struct Spawned {
    /// What it runs.
    pub component: Component,
    /// Its process (ours to reap).
    pub child: Child,
    /// Its pid file.
    pub record: PidRecord,
    /// Where its log of this run starts.
    log_offset: u64,
    /// When it was spawned.
    started: Instant,
}

/// One component that became ready.
#[derive(Clone, Debug, Serialize)]
pub struct Started {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Its pid.
    pub pid: u32,
    /// Time from spawn to ready, in milliseconds.
    pub ready_ms: f64,
}

/// Spawns `component` detached, its output appended to its log, and writes
/// its pid file.
pub fn spawn(state: &StateDir, component: &Component, binary: &Path) -> anyhow::Result<Spawned> {
    let begun = Instant::now();
    let mut args = component.args.clone();
    if matches!(component.kind, Kind::Gslb | Kind::L7) {
        let path = state.node_state_path(component.kind.as_str(), &component.name);
        args.extend(["--state-file".to_owned(), path.display().to_string()]);
    }
    let log_path = state.log_path(&component.name);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log_path.display()))?;
    let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = writeln!(
        log,
        "--- {} gtm: starting {} ({}): {} {}",
        now_rfc3339(),
        component.name,
        component.kind.as_str(),
        binary.display(),
        args.join(" ")
    );
    let stdout = log
        .try_clone()
        .map_err(|e| anyhow::anyhow!("cannot share {}: {e}", log_path.display()))?;
    let child = Command::new(binary)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        // Its own process group: the terminal's Ctrl-C (meant for gtm) and
        // job control never reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            user(format!(
                "{}: cannot run {}: {e}",
                component.name,
                binary.display()
            ))
        })?;
    let pid = child.id();
    let record = PidRecord {
        pid,
        start_ticks: process::start_ticks(pid),
        kind: component.kind,
        region: component.region.clone(),
        started_at: now_rfc3339(),
    };
    state.write_record(&component.name, &record)?;
    Ok(Spawned {
        component: component.clone(),
        child,
        record,
        log_offset,
        started: begun,
    })
}

/// Starts `components` tier by tier (each tier in parallel, the next once
/// every one of it is ready), printing progress. On any failure — an
/// address taken, a component exiting, the timeout, Ctrl-C — everything
/// this call started is stopped again and its pid files removed; the error
/// names the component and the cause.
pub fn start(
    state: &StateDir,
    components: &[Component],
    admin: &Admin,
    printer: &Printer,
    timeout: Duration,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<Started>> {
    if components.is_empty() {
        return Ok(Vec::new());
    }
    let binaries = Binaries::find(components)?;
    let taken = check_addresses(components);
    if !taken.is_empty() {
        let lines: Vec<String> = taken
            .iter()
            .map(|t| format!("\n  {}: {}", t.component, t.detail))
            .collect();
        return Err(user(format!(
            "cannot start {}: an address it needs is taken (nothing was started){}",
            taken[0].component,
            lines.concat()
        )));
    }
    let mut running: Vec<Spawned> = Vec::new();
    let mut started = Vec::new();
    for kind in Kind::START_ORDER {
        let tier: Vec<&Component> = components.iter().filter(|c| c.kind == kind).collect();
        if tier.is_empty() {
            continue;
        }
        let names: Vec<&str> = tier.iter().map(|c| c.name.as_str()).collect();
        printer.progress(format_args!(
            "starting {}: {}",
            kind.plural(),
            names.join(", ")
        ));
        let first = running.len();
        for component in tier {
            let binary = binaries
                .path(component.kind.binary())
                .expect("found above for every component");
            match spawn(state, component, binary) {
                Ok(spawned) => running.push(spawned),
                Err(error) => {
                    teardown(state, running, printer);
                    return Err(error);
                }
            }
        }
        match wait_ready(
            state,
            &mut running[first..],
            admin,
            printer,
            timeout,
            interrupted,
        ) {
            Ok(mut ready) => started.append(&mut ready),
            Err(error) => {
                teardown(state, running, printer);
                return Err(error);
            }
        }
    }
    Ok(started)
}

/// Waits until every one of `tier` is ready; the first to exit, the
/// timeout or an interrupt ends the wait with an error.
fn wait_ready(
    state: &StateDir,
    tier: &mut [Spawned],
    admin: &Admin,
    printer: &Printer,
    timeout: Duration,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<Started>> {
    let begun = Instant::now();
    let mut pending: Vec<usize> = (0..tier.len()).collect();
    let mut last_seen: Vec<String> = vec!["not checked yet".into(); tier.len()];
    let mut ready = Vec::new();
    let mut next_report = begun + Duration::from_secs(2);
    while !pending.is_empty() {
        if interrupted.load(Ordering::Relaxed) {
            return Err(user("interrupted: stopping what was started"));
        }
        let mut still = Vec::new();
        for &index in &pending {
            let spawned = &mut tier[index];
            if let Ok(Some(status)) = spawned.child.try_wait() {
                return Err(exited(state, spawned, status));
            }
            match ready::check(&spawned.component.probe, admin) {
                Ok(()) => {
                    let took = spawned.started.elapsed();
                    printer.progress(format_args!(
                        "  {} {:<16} ready in {} (pid {})",
                        printer.paint_err(Style::Good, "✓"),
                        spawned.component.name,
                        format_duration(took),
                        spawned.record.pid
                    ));
                    ready.push(Started {
                        name: spawned.component.name.clone(),
                        kind: spawned.component.kind,
                        pid: spawned.record.pid,
                        ready_ms: took.as_secs_f64() * 1000.0,
                    });
                }
                Err(seen) => {
                    last_seen[index] = seen;
                    still.push(index);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        let now = Instant::now();
        if now.duration_since(begun) > timeout {
            let index = pending[0];
            let spawned = &tier[index];
            return Err(user_or_not(
                false,
                format!(
                    "{} ({}) was not ready after {}: {}\n  log: {}{}",
                    spawned.component.name,
                    describe(&spawned.component),
                    format_duration(timeout),
                    last_seen[index],
                    state.log_path(&spawned.component.name).display(),
                    tail(state, spawned),
                ),
            ));
        }
        if now >= next_report {
            for &index in &pending {
                printer.progress(format_args!(
                    "  … {:<16} waiting ({}): {}",
                    tier[index].component.name,
                    format_duration(now.duration_since(begun)),
                    last_seen[index]
                ));
            }
            next_report = now + Duration::from_secs(3);
        }
        std::thread::sleep(POLL);
    }
    Ok(ready)
}

fn describe(component: &Component) -> String {
    match &component.region {
        Some(region) => format!("{}, region {region}", component.kind.as_str()),
        None => component.kind.as_str().to_owned(),
    }
}

fn user_or_not(user: bool, summary: String) -> anyhow::Error {
    anyhow::Error::new(Reported { user, summary })
}

/// The error for a component that exited before it was ready.
fn exited(state: &StateDir, spawned: &Spawned, status: std::process::ExitStatus) -> anyhow::Error {
    let log = read_from(&state.log_path(&spawned.component.name), spawned.log_offset);
    let (cause, line) = ready::classify(status.code(), status.signal(), &log);
    user_or_not(
        cause.is_user(),
        format!(
            "{} ({}) failed to start: {line}\n  log: {}{}",
            spawned.component.name,
            describe(&spawned.component),
            state.log_path(&spawned.component.name).display(),
            tail(state, spawned)
        ),
    )
}

/// The last lines this run of `spawned` logged, indented for quoting.
fn tail(state: &StateDir, spawned: &Spawned) -> String {
    let log = read_from(&state.log_path(&spawned.component.name), spawned.log_offset);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(6);
    lines[start..]
        .iter()
        .map(|l| format!("\n    | {l}"))
        .collect()
}

fn read_from(path: &Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

/// Stops what a failed start had started, newest first, and says so.
fn teardown(state: &StateDir, running: Vec<Spawned>, printer: &Printer) {
    if running.is_empty() {
        return;
    }
    let count = running.len();
    let targets = running
        .into_iter()
        .rev()
        .map(|s| Target {
            name: s.component.name,
            record: s.record,
            child: Some(s.child),
        })
        .collect();
    let outcomes = stop(state, targets, Duration::from_secs(5));
    let stuck: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.how == How::Stuck)
        .map(|o| o.name.as_str())
        .collect();
    if stuck.is_empty() {
        printer.progress(format_args!(
            "stopped the {count} component(s) this command had started; nothing is left running from it"
        ));
    } else {
        printer.warn(format_args!(
            "could not stop {}: kill them by hand",
            stuck.join(", ")
        ));
    }
}

/// A process to stop.
pub struct Target {
    /// The component.
    pub name: String,
    /// Its pid file.
    pub record: PidRecord,
    /// Its process, when this gtm started it (to reap it).
    pub child: Option<Child>,
}

impl Target {
    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => process::is_running(&self.record),
        }
    }
}

/// How a component stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// It was not running.
    AlreadyStopped,
    /// It exited after SIGTERM within the grace period.
    Terminated,
    /// It needed SIGKILL.
    Killed,
    /// It survived SIGKILL (its pid file is kept).
    Stuck,
}

/// How one component stopped.
#[derive(Clone, Debug, Serialize)]
pub struct Stopped {
    /// The component.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// How.
    pub how: How,
    /// From the signal to its exit, in milliseconds.
    pub took_ms: f64,
}

/// Stops `targets` together: SIGTERM to each one running, up to `grace`
/// for them to exit, SIGKILL to the rest. Pid files are removed for every
/// process that is gone.
pub fn stop(state: &StateDir, mut targets: Vec<Target>, grace: Duration) -> Vec<Stopped> {
    let begun = Instant::now();
    let mut outcomes: Vec<Option<Stopped>> = Vec::new();
    for target in &mut targets {
        if target.running() {
            signal_group(&target.record, Signal::SIGTERM);
            outcomes.push(None);
        } else {
            outcomes.push(Some(Stopped {
                name: target.name.clone(),
                pid: target.record.pid,
                how: How::AlreadyStopped,
                took_ms: 0.0,
            }));
        }
    }
    let poll = |targets: &mut [Target], outcomes: &mut [Option<Stopped>], how: How| {
        let mut left = 0;
        for (target, outcome) in targets.iter_mut().zip(outcomes.iter_mut()) {
            if outcome.is_some() {
                continue;
            }
            if target.running() {
                left += 1;
            } else {
                *outcome = Some(Stopped {
                    name: target.name.clone(),
                    pid: target.record.pid,
                    how,
                    took_ms: begun.elapsed().as_secs_f64() * 1000.0,
                });
            }
        }
        left
    };
    while poll(&mut targets, &mut outcomes, How::Terminated) > 0 && begun.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killing = Instant::now();
    let mut any_killed = false;
    for (target, outcome) in targets.iter_mut().zip(outcomes.iter()) {
        if outcome.is_none() {
            signal_group(&target.record, Signal::SIGKILL);
            any_killed = true;
        }
    }
    if any_killed {
        while poll(&mut targets, &mut outcomes, How::Killed) > 0 && killing.elapsed() < KILL_WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    targets
        .iter()
        .zip(outcomes)
        .map(|(target, outcome)| {
            let outcome = outcome.unwrap_or_else(|| Stopped {
                name: target.name.clone(),
                pid: target.record.pid,
                how: How::Stuck,
                took_ms: begun.elapsed().as_secs_f64() * 1000.0,
            });
            if outcome.how != How::Stuck {
                let _ = state.remove_record(&target.name);
            }
            outcome
        })
        .collect()
}

/// Signals the process group a component leads (it was started as its
/// own group), so anything it spawned goes too; its pid alone if that
/// fails.
fn signal_group(record: &PidRecord, signal: Signal) {
    let group = nix::unistd::Pid::from_raw(-(i32::try_from(record.pid).unwrap_or(i32::MAX)));
    if nix::sys::signal::kill(group, signal).is_err() {
        let _ = process::signal(record.pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_found_beside_gtm_then_on_path() {
        let dir = std::env::temp_dir().join(format!("gtm-locate-{}", std::process::id()));
        let (beside, on_path) = (dir.join("beside"), dir.join("on-path"));
        std::fs::create_dir_all(&beside).unwrap();
        std::fs::create_dir_all(&on_path).unwrap();
        let make = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        make(&on_path.join("edge"));
        make(&beside.join("gslb"));
        std::fs::write(beside.join("edge"), "not executable").unwrap();
        let path = Some(std::env::join_paths([&on_path]).unwrap());
        assert_eq!(
            locate("gslb", Some(&beside), path.clone()),
            Some(beside.join("gslb"))
        );
        assert_eq!(
            locate("edge", Some(&beside), path.clone()),
            Some(on_path.join("edge"))
        );
        assert_eq!(locate("nope", Some(&beside), path), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_held_address_is_reported_with_its_component() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let component = Component {
            name: "web1".into(),
            kind: Kind::Backend,
            region: None,
            host: None,
            args: vec![],
            binds: vec![crate::plan::Bind {
                addr,
                proto: Proto::Tcp,
                purpose: "HTTP",
            }],
            probe: crate::plan::Probe::Http {
                addr,
                path: "/".into(),
            },
            admin: None,
        };
        let taken = check_addresses(std::slice::from_ref(&component));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].component, "web1");
        assert!(taken[0].detail.contains("address in use"), "{:?}", taken[0]);
        drop(held);
        assert!(check_addresses(&[component]).is_empty());
    }
}
