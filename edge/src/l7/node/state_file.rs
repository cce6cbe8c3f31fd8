//! What an L7 node remembers across restarts: the operator's drains and
//! weights (`gtm server`, the admin API), by pool and server — what
//! HAProxy keeps in its `server-state-file`. Without it, a node that
//! restarts (a crash, a deploy) would send traffic again to a server taken
//! out for maintenance.
//!
//! The file is JSON, written atomically after every change the operator
//! makes and after every reload (so servers that left the configuration
//! leave the file), and read once at start-up:
//!
//! ```json
//! { "pools": { "web": { "192.0.2.10:8080": { "drained": true },
//!                       "192.0.2.11:8080": { "weight": 5 } } } }
//! ```
//!
//! A server the file names that the configuration no longer has is
//! skipped with a warning. A file that is not ours to read is set aside as
//! `FILE.bad`, with an error naming it: the node starts with every server
//! as configured rather than not at all, and nothing is lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use lifecycle::files::write_atomically;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::l7::shared::state::Snapshot;

/// One server's operator state, as saved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// Drained: no new requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    drained: bool,
    /// The operator's weight, when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
}

/// Servers by address, by pool name.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Contents {
    #[serde(default)]
    pools: BTreeMap<String, BTreeMap<String, Saved>>,
}

/// An L7 node's state file.
#[derive(Debug)]
pub struct ServerStateFile {
    path: PathBuf,
    /// Held while the file is written, so the last write is the latest
    /// state.
    writing: Mutex<()>,
}

impl ServerStateFile {
    /// The state file at `path` (it need not exist yet).
    pub fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            writing: Mutex::new(()),
        })
    }

    /// Applies what the file saved to the servers of `snapshot`, saying
    /// in the log what it restored and what it skipped.
    pub fn restore(&self, snapshot: &Snapshot) {
        let contents = match self.read() {
            Ok(contents) => contents,
            Err(why) => {
                let aside = self.set_aside();
                error!(
                    path = %self.path.display(),
                    "{why}; starting with every server as configured ({aside})"
                );
                return;
            }
        };
        for (pool_name, servers) in &contents.pools {
            let pool = snapshot.pools.iter().find(|p| &p.config.name == pool_name);
            for (addr, saved) in servers {
                let server = pool.and_then(|p| p.server(addr.parse().ok()?));
                let Some(server) = server else {
                    warn!(pool = %pool_name, server = %addr, "the state file names a server the configuration no longer has; skipped");
                    continue;
                };
                if saved.weight == Some(0) {
                    warn!(pool = %pool_name, server = %addr, "the state file gives weight 0, which the admin API never sets; keeping the configured weight");
                } else if saved.weight.is_some() {
                    server.set_weight(saved.weight);
                }
                server.set_drained(saved.drained);
                info!(pool = %pool_name, server = %addr, drained = saved.drained, weight = server.weight(), "operator state restored from the state file");
            }
        }
    }

    /// Saves the operator's drains and weights of `snapshot`'s servers.
    /// `Err` says what failed; the state then holds in memory only.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), String> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut contents = Contents::default();
        for pool in &snapshot.pools {
            for server in pool.servers() {
                let saved = Saved {
                    drained: server.drained(),
                    weight: server.weight_overridden().then(|| server.weight()),
                };
                if saved != Saved::default() {
                    contents
                        .pools
                        .entry(pool.config.name.clone())
                        .or_default()
                        .insert(server.addr.to_string(), saved);
                }
            }
        }
        let bytes = serde_json::to_vec_pretty(&contents).expect("the state serializes");
        write_atomically(&self.path, &bytes).map_err(|e| {
            format!(
                "cannot write the state file {}: {e}; the change holds until the node restarts only — fix the directory's permissions or free disk space",
                self.path.display()
            )
        })
    }

    /// [`Self::save`] off the async threads (it syncs to disk), logging a
    /// failure; `Err` says what failed.
    pub async fn save_logged(self: &Arc<Self>, snapshot: Arc<Snapshot>) -> Result<(), String> {
        let file = self.clone();
        let saved = tokio::task::spawn_blocking(move || file.save(&snapshot))
            .await
            .unwrap_or_else(|e| Err(format!("saving the state file failed: {e}")));
        if let Err(why) = &saved {
            error!("{why}");
        }
        saved
    }

    fn read(&self) -> Result<Contents, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("the state file {} is not valid ({e})", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contents::default()),
            Err(e) => Err(format!(
                "cannot read the state file {}: {e}",
                self.path.display()
            )),
        }
    }

    /// Renames an unreadable file out of the way, so the next save does not
    /// overwrite what the operator may want to look at; says where it went.
    fn set_aside(&self) -> String {
        let mut aside = self.path.as_os_str().to_owned();
        aside.push(".bad");
        let aside = PathBuf::from(aside);
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => format!("it was moved to {}", aside.display()),
            Err(e) => format!("and could not be moved aside: {e}"),
        }
    }
}
