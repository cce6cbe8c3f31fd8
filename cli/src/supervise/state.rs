//! The state directory: what `gtm up` started and where its output goes.
//!
//! ```text
//! STATE/
//!   deployment.json     the resolved topology path, when, by which gtm;
//!                       for `gtm deploy`, the hosts and their services
//!   topology.yaml       a copy of the file as deployed (what gtm reads)
//!   pids/NAME.pid       one per running component (key=value lines)
//!   logs/NAME.log       one per component, appended to across restarts
//!   drills/REGION.json  what `gtm fail` did, for `gtm recover`
//!   lock                flock(2)ed while a command changes the deployment
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::user;
use crate::plan::Kind;

/// The state directory of one deployment.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// `deployment.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deployment {
    /// The topology file, absolute, as given to the components.
    pub topology: PathBuf,
    /// When `gtm up` first deployed it (RFC 3339).
    pub deployed_at: String,
    /// The gtm version that did.
    pub gtm_version: String,
    /// Set by `gtm deploy`: the components run on the topology's hosts,
    /// reached over ssh; absent for `gtm up` (this machine, pid files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
}

impl Deployment {
    /// The record of deploying `topology` now: it keeps the time of the
    /// deployment it replaces (`previous`), else is stamped now, and names
    /// this gtm's version.
    pub fn new(topology: PathBuf, previous: Option<&Deployment>, remote: Option<Remote>) -> Self {
        Deployment {
            topology,
            deployed_at: previous
                .map_or_else(crate::timeline::now_rfc3339, |p| p.deployed_at.clone()),
            gtm_version: env!("CARGO_PKG_VERSION").to_owned(),
            remote,
        }
    }
}

/// A deployment on hosts: how to reach them, and what runs where (so
/// `gtm down` and `gtm logs` need not render the bundles again).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Remote {
    /// The ssh config file deploy used (`ssh -F`), absolute.
    pub ssh_config: Option<PathBuf>,
    /// The `--bin-dir` deploy took the binaries from, absolute (`gtm
    /// reload` pushes from there too).
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// Each host deployed to, in the topology's order.
    pub hosts: Vec<RemoteHost>,
}

/// One host of a [`Remote`] deployment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RemoteHost {
    /// Its name in `hosts:`.
    pub name: String,
    /// Its services, in start order.
    pub services: Vec<RemoteService>,
}

/// One service on a host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RemoteService {
    /// Its unit name (without `.service`).
    pub name: String,
    /// The component it runs, if any.
    pub component: Option<String>,
    /// Its start stage: `backend`, `l7`, `l4`, `ha` or `gslb`.
    pub stage: String,
}

/// A pid file: which process runs a component, and how to recognise it
/// (its start time, so a recycled pid is never taken for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidRecord {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: Option<u64>,
    /// What it is.
    pub kind: Kind,
    /// Its region.
    pub region: Option<String>,
    /// When it was started (RFC 3339).
    pub started_at: String,
}

impl PidRecord {
    /// The file's text.
    pub fn format(&self) -> String {
        let mut text = format!("pid={}\n", self.pid);
        if let Some(ticks) = self.start_ticks {
            text.push_str(&format!("start_ticks={ticks}\n"));
        }
        text.push_str(&format!("kind={}\n", self.kind.as_str()));
        if let Some(region) = &self.region {
            text.push_str(&format!("region={region}\n"));
        }
        text.push_str(&format!("started_at={}\n", self.started_at));
        text
    }

    /// Parses [`PidRecord::format`]'s text; unknown keys are ignored (a
    /// newer gtm may write more), a missing or bad `pid` or `kind` is not.
    pub fn parse(text: &str) -> Result<PidRecord, String> {
        let mut pid = None;
        let mut start_ticks = None;
        let mut kind = None;
        let mut region = None;
        let mut started_at = String::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: expected key=value", number + 1));
            };
            let value = value.trim();
            match key.trim() {
                "pid" => {
                    pid = Some(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|p| *p > 1)
                            .ok_or_else(|| format!("bad pid {value:?}"))?,
                    )
                }
                "start_ticks" => {
                    start_ticks = Some(
                        value
                            .parse()
                            .map_err(|_| format!("bad start_ticks {value:?}"))?,
                    )
                }
                "kind" => {
                    kind = Some(Kind::parse(value).ok_or_else(|| format!("bad kind {value:?}"))?)
                }
                "region" => region = Some(value.to_owned()),
                "started_at" => started_at = value.to_owned(),
                _ => {}
            }
        }
        Ok(PidRecord {
            pid: pid.ok_or("no pid")?,
            start_ticks,
            kind: kind.ok_or("no kind")?,
            region,
            started_at,
        })
    }
}

/// What `gtm fail` did to a region.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DrillRecord {
    /// The region.
    pub region: String,
    /// `kill` or `drain`.
    pub mode: String,
    /// Components it stopped (kill).
    #[serde(default)]
    pub stopped: Vec<String>,
    /// GSLB nodes it set the override on (drain).
    #[serde(default)]
    pub overridden: Vec<String>,
    /// The client it watched.
    pub client: Option<String>,
    /// The name it watched.
    pub name: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

impl StateDir {
    /// `flag` (from `--state-dir` or `GTM_STATE_DIR`), else
    /// `$XDG_STATE_HOME/gtm`, else `~/.local/state/gtm`.
    pub fn resolve(flag: Option<PathBuf>) -> anyhow::Result<StateDir> {
        let root = match flag {
            Some(dir) => dir,
            None => default_root(
                std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
                std::env::var_os("HOME").map(PathBuf::from),
            )
            .ok_or_else(|| user("neither XDG_STATE_HOME nor HOME is set; pass --state-dir DIR"))?,
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(root)
        };
        Ok(StateDir { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory and its subdirectories.
    pub fn create(&self) -> anyhow::Result<()> {
        for sub in ["pids", "logs", "drills"] {
            let dir = self.root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        }
        Ok(())
    }

    /// Takes the directory's lock for a command that changes the
    /// deployment; another gtm holding it is a user error.
    pub fn lock(&self) -> anyhow::Result<nix::fcntl::Flock<File>> {
        self.create()?;
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
            |(_, errno)| match errno {
                nix::errno::Errno::EWOULDBLOCK => user(format!(
                    "another gtm command is changing the deployment in {}; wait for it to finish",
                    self.root.display()
                )),
                other => anyhow::anyhow!("cannot lock {}: {other}", path.display()),
            },
        )
    }

    /// `pids/NAME.pid`.
    pub fn pid_path(&self, name: &str) -> PathBuf {
        self.root.join("pids").join(format!("{name}.pid"))
    }

    /// `logs/NAME.log`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// `KIND/NODE.json`: what a node keeps across restarts (a name
    /// server's overrides and probe verdicts, an L7 node's server drains
    /// and weights), kept with the deployment rather than in the user's
    /// shared default (two deployments with a node of the same name would
    /// share it).
    pub fn node_state_path(&self, kind: &str, node: &str) -> PathBuf {
        self.root.join(kind).join(format!("{node}.json"))
    }

    /// `drills/REGION.json`.
    pub fn drill_path(&self, region: &str) -> PathBuf {
        self.root.join("drills").join(format!("{region}.json"))
    }

    /// `topology.yaml`.
    pub fn topology_copy(&self) -> PathBuf {
        self.root.join("topology.yaml")
    }

    fn deployment_path(&self) -> PathBuf {
        self.root.join("deployment.json")
    }

    /// The recorded deployment, if any.
    pub fn deployment(&self) -> anyhow::Result<Option<Deployment>> {
        let path = self.deployment_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is damaged; remove it", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Records `deployment` and copies its topology file.
    pub fn write_deployment(&self, deployment: &Deployment) -> anyhow::Result<()> {
        self.create()?;
        let copy = self.topology_copy();
        std::fs::copy(&deployment.topology, &copy).with_context(|| {
            format!(
                "cannot copy {} to {}",
                deployment.topology.display(),
                copy.display()
            )
        })?;
        let text = serde_json::to_string_pretty(deployment).context("encoding deployment.json")?;
        write_atomic(&self.deployment_path(), text.as_bytes())
    }

    /// Forgets the deployment (after `gtm down`); logs are kept.
    pub fn clear_deployment(&self) -> anyhow::Result<()> {
        for path in [self.deployment_path(), self.topology_copy()] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        let drills = self.root.join("drills");
        if let Ok(entries) = std::fs::read_dir(&drills) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Every pid file, by component name, sorted by name. A file that does
    /// not parse is reported with its path.
    pub fn records(&self) -> anyhow::Result<Vec<(String, PidRecord)>> {
        let dir = self.root.join("pids");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pid"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let record = PidRecord::parse(&text).map_err(|e| {
                anyhow::anyhow!("{}: {e}; remove it if no such process runs", path.display())
            })?;
            records.push((name.to_owned(), record));
        }
        records.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(records)
    }

    /// The pid file of `name`, if any.
    pub fn record(&self, name: &str) -> anyhow::Result<Option<PidRecord>> {
        let path = self.pid_path(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => PidRecord::parse(&text)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the pid file of `name`.
    pub fn write_record(&self, name: &str, record: &PidRecord) -> anyhow::Result<()> {
        write_atomic(&self.pid_path(name), record.format().as_bytes())
    }

    /// Removes the pid file of `name` (no error if it is gone).
    pub fn remove_record(&self, name: &str) -> anyhow::Result<()> {
        let path = self.pid_path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// The drill record of `region`, if any.
    pub fn drill(&self, region: &str) -> anyhow::Result<Option<DrillRecord>> {
        let path = self.drill_path(region);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is damaged; remove it", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Records a drill.
    pub fn write_drill(&self, drill: &DrillRecord) -> anyhow::Result<()> {
        self.create()?;
        let text = serde_json::to_string_pretty(drill).context("encoding the drill record")?;
        write_atomic(&self.drill_path(&drill.region), text.as_bytes())
    }

    /// Forgets the drill of `region`.
    pub fn remove_drill(&self, region: &str) -> anyhow::Result<()> {
        match std::fs::remove_file(self.drill_path(region)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("cannot remove the drill record"),
        }
    }
}

/// The default root, given `XDG_STATE_HOME` and `HOME`.
fn default_root(xdg_state_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    // The XDG spec says relative values are to be ignored.
    match xdg_state_home.filter(|p| p.is_absolute()) {
        Some(dir) => Some(dir.join("gtm")),
        None => home
            .filter(|h| !h.as_os_str().is_empty())
            .map(|h| h.join(".local/state/gtm")),
    }
}

/// Writes through a temporary file and a rename, so a reader never sees
/// half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_records_round_trip() {
        let record = PidRecord {
            pid: 4242,
            start_ticks: Some(987_654),
            kind: Kind::L4,
            region: Some("us-east".into()),
            started_at: "2026-11-22T20:00:00Z".into(),
        };
        let text = record.format();
        assert_eq!(
            text,
            "pid=4242\nstart_ticks=987654\nkind=l4\nregion=us-east\nstarted_at=2026-11-22T20:00:00Z\n"
        );
        assert_eq!(PidRecord::parse(&text).unwrap(), record);
    }

    #[test]
    fn pid_records_tolerate_new_keys_but_not_missing_ones() {
        let parsed = PidRecord::parse("# written by gtm\npid=77\nkind=gslb\nfuture=1\n").unwrap();
        assert_eq!(parsed.pid, 77);
        assert_eq!(parsed.kind, Kind::Gslb);
        assert_eq!(parsed.start_ticks, None);
        assert_eq!(PidRecord::parse("kind=l7\n").unwrap_err(), "no pid");
        assert!(
            PidRecord::parse("pid=abc\nkind=l7")
                .unwrap_err()
                .contains("bad pid")
        );
        assert!(PidRecord::parse("pid=1\nkind=l7").is_err(), "never pid 1");
        assert!(
            PidRecord::parse("pid=9\nkind=dns")
                .unwrap_err()
                .contains("bad kind")
        );
        assert!(PidRecord::parse("garbage").is_err());
    }

    #[test]
    fn the_default_state_dir_follows_xdg() {
        let home = Some(PathBuf::from("/home/op"));
        assert_eq!(
            default_root(Some("/xdg/state".into()), home.clone()),
            Some(PathBuf::from("/xdg/state/gtm"))
        );
        assert_eq!(
            default_root(Some("relative".into()), home.clone()),
            Some(PathBuf::from("/home/op/.local/state/gtm"))
        );
        assert_eq!(default_root(None, None), None);
    }

    #[test]
    fn drill_records_round_trip_through_the_directory() {
        let dir = std::env::temp_dir().join(format!("gtm-state-test-{}", std::process::id()));
        let state = StateDir { root: dir.clone() };
        let drill = DrillRecord {
            region: "us-east".into(),
            mode: "kill".into(),
            stopped: vec!["us-east-l4".into()],
            overridden: vec![],
            client: Some("8.8.8.8".into()),
            name: Some("www.example.com.".into()),
            at: "2026-11-22T20:00:00Z".into(),
        };
        state.write_drill(&drill).unwrap();
        assert_eq!(state.drill("us-east").unwrap(), Some(drill));
        state.remove_drill("us-east").unwrap();
        assert_eq!(state.drill("us-east").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
