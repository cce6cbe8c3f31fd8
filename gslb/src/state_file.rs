//! What a GSLB node remembers across restarts, in its state file:
//!
//! - operator overrides: regions forced out of service (`fail` for a
//!   drill, `drain` for maintenance), kept apart from probe health, as the
//!   last-writer-wins slots of [`crate::overrides`] — tombstones included,
//!   so a clear survives a restart as surely as an override does;
//! - this node's probe verdict on each region, so that a restarted node
//!   keeps a region that was down out of its answers until `rise` probes
//!   pass again, instead of answering it optimistically for `fall` probes.
//!
//! The state file is JSON, written atomically (a temporary file beside it,
//! synced, then renamed over it), so a crash mid-write leaves either the
//! old file or the new one. If it cannot be written the change still
//! takes effect in memory and the error is reported to the caller. A file
//! written before overrides became slots (an `overrides` map) still loads:
//! each override becomes a slot written by this node when it was set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lifecycle::files::write_atomically;
use serde::{Deserialize, Serialize};

use crate::overrides::{Held, OverrideMode, Slot, merge};

/// An override as files written before slots held it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
struct LegacyOverride {
    mode: OverrideMode,
    #[serde(default)]
    reason: Option<String>,
    /// When it was set, seconds since the Unix epoch.
    since: u64,
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("cannot read state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not what we wrote.
    #[error(
        "state file {path} is not valid ({source}); fix or remove it (it holds only overrides and the last probe verdicts)"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Writing failed; the change holds in memory only.
    #[error(
        "cannot write state file {path}: {source}; the change holds in memory until restart only — fix the directory's permissions or free disk space"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// This node's probe verdict on one region, as last saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedHealth {
    /// Up after hysteresis.
    pub up: bool,
    /// When the verdict last changed, seconds since the Unix epoch.
    pub since: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    slots: BTreeMap<String, Slot>,
    /// Read from old files, turned into `slots`, never written.
    #[serde(default, skip_serializing)]
    overrides: BTreeMap<String, LegacyOverride>,
    #[serde(default)]
    health: BTreeMap<String, SavedHealth>,
}

/// Override slots and probe verdicts by region name, of node `node`,
/// mirrored to a state file when one is set.
#[derive(Debug, Default)]
pub struct StateStore {
    path: Option<PathBuf>,
    node: String,
    state: StateFile,
}

impl StateStore {
    /// A store of node `node` kept in memory only.
    pub fn in_memory(node: &str) -> StateStore {
        StateStore {
            node: node.to_owned(),
            ..StateStore::default()
        }
    }

    /// Loads what node `node` saved at `path`; a missing file is an empty
    /// store.
    pub fn load(path: &Path, node: &str) -> Result<StateStore, StateError> {
        let mut state = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<StateFile>(&bytes).map_err(|source| StateError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        for (region, old) in std::mem::take(&mut state.overrides) {
            let slot = Slot {
                held: Some(Held {
                    mode: old.mode,
                    reason: old.reason,
                }),
                at: old.since.saturating_mul(1000),
                node: node.to_owned(),
            };
            let mut current = state.slots.remove(&region);
            merge(&mut current, &slot);
            state.slots.extend(current.map(|c| (region, c)));
        }
        Ok(StateStore {
            path: Some(path.to_owned()),
            node: node.to_owned(),
            state,
        })
    }

    /// The override in force on `region`, if any.
    pub fn get(&self, region: &str) -> Option<&Held> {
        self.state.slots.get(region)?.held.as_ref()
    }

    /// Every override in force, by region.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &Held)> {
        self.state
            .slots
            .iter()
            .filter_map(|(region, slot)| Some((region.as_str(), slot.held.as_ref()?)))
    }

    /// Every slot, tombstones included: what this node tells its peers.
    pub fn slots(&self) -> &BTreeMap<String, Slot> {
        &self.state.slots
    }

    /// Merges a peer's `slot` for `region` (see [`crate::overrides`]);
    /// saves and returns `true` when it won. It holds in memory even if
    /// saving fails.
    pub fn merge(&mut self, region: &str, slot: &Slot) -> Result<bool, StateError> {
        let mut current = self.state.slots.remove(region);
        let changed = merge(&mut current, slot);
        self.state
            .slots
            .extend(current.map(|c| (region.to_owned(), c)));
        if changed {
            self.save()?;
        }
        Ok(changed)
    }

    /// This node's last saved probe verdict on `region`, if any.
    pub fn health(&self, region: &str) -> Option<SavedHealth> {
        self.state.health.get(region).copied()
    }

    /// Every saved probe verdict.
    pub fn all_health(&self) -> &BTreeMap<String, SavedHealth> {
        &self.state.health
    }

    /// Records this node's probe verdict on `region`; saves only when it
    /// changed. It holds in memory even if saving fails.
    pub fn record_health(&mut self, region: &str, up: bool) -> Result<(), StateError> {
        if self.state.health.get(region).is_some_and(|h| h.up == up) {
            return Ok(());
        }
        self.state.health.insert(
            region.to_owned(),
            SavedHealth {
                up,
                since: unix_seconds(),
            },
        );
        self.save()
    }

    /// Forgets the verdicts on regions not in `regions` (removed by a
    /// reload); saves if any was dropped.
    pub fn retain_health(&mut self, regions: &[&str]) -> Result<(), StateError> {
        let before = self.state.health.len();
        self.state
            .health
            .retain(|name, _| regions.contains(&name.as_str()));
        if self.state.health.len() == before {
            return Ok(());
        }
        self.save()
    }

    /// Sets an override at `now_ms` (ms since the Unix epoch). It holds
    /// in memory even if saving fails.
    pub fn set(
        &mut self,
        region: &str,
        mode: OverrideMode,
        reason: Option<String>,
        now_ms: u64,
    ) -> Result<(), StateError> {
        self.write(region, Some(Held { mode, reason }), now_ms)
    }

    /// Clears the override on `region` at `now_ms` by writing a tombstone,
    /// so that peers clear it too; returns whether there was one.
    pub fn clear(&mut self, region: &str, now_ms: u64) -> Result<bool, StateError> {
        let had = self.get(region).is_some();
        self.write(region, None, now_ms)?;
        Ok(had)
    }

    fn write(&mut self, region: &str, held: Option<Held>, now_ms: u64) -> Result<(), StateError> {
        let slot = Slot::write(held, &self.node, now_ms, self.state.slots.get(region));
        self.state.slots.insert(region.to_owned(), slot);
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        write_atomically(path, &bytes).map_err(|source| StateError::Write {
            path: path.clone(),
            source,
        })
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gslb-overrides-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn overrides_survive_a_reload_of_the_file() {
        let dir = temp_dir("survive");
        let path = dir.join("state.json");
        let mut store = StateStore::load(&path, "ns1").unwrap();
        store
            .set(
                "us-east",
                OverrideMode::Drain,
                Some("kernel upgrade".into()),
                1_000,
            )
            .unwrap();
        store
            .set("eu-west", OverrideMode::Fail, None, 1_000)
            .unwrap();
        assert!(store.clear("eu-west", 2_000).unwrap());
        let again = StateStore::load(&path, "ns1").unwrap();
        assert_eq!(again.get("us-east").unwrap().mode, OverrideMode::Drain);
        assert_eq!(
            again.get("us-east").unwrap().reason.as_deref(),
            Some("kernel upgrade")
        );
        assert!(again.get("eu-west").is_none());
        // The clear is kept as a tombstone, to tell the peers.
        let tombstone = &again.slots()["eu-west"];
        assert_eq!((tombstone.held.as_ref(), tombstone.at), (None, 2_000));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_file_keeps_the_override_in_memory_and_says_why() {
        let dir = temp_dir("unwritable");
        // A directory where the file should be: rename onto it fails.
        let path = dir.join("state.json");
        std::fs::create_dir_all(path.join("occupied")).unwrap();
        let mut store = StateStore {
            path: Some(path.clone()),
            node: "ns1".into(),
            state: StateFile::default(),
        };
        let error = store
            .set("us-east", OverrideMode::Fail, None, 1_000)
            .unwrap_err();
        assert!(error.to_string().contains("until restart only"), "{error}");
        assert_eq!(store.get("us-east").unwrap().mode, OverrideMode::Fail);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn probe_verdicts_survive_a_restart_and_are_saved_only_on_change() {
        let dir = temp_dir("health");
        let path = dir.join("state.json");
        let mut store = StateStore::load(&path, "ns1").unwrap();
        store.record_health("us-east", false).unwrap();
        store.record_health("eu-west", true).unwrap();
        let since = store.health("us-east").unwrap().since;
        // The same verdict again keeps the time it changed.
        std::fs::remove_file(&path).unwrap();
        store.record_health("us-east", false).unwrap();
        assert!(!path.exists(), "an unchanged verdict was saved");
        store.record_health("eu-west", false).unwrap();
        store.retain_health(&["us-east", "eu-west"]).unwrap();
        let again = StateStore::load(&path, "ns1").unwrap();
        assert_eq!(
            again.health("us-east"),
            Some(SavedHealth { up: false, since })
        );
        assert!(!again.health("eu-west").unwrap().up);
        store.retain_health(&["eu-west"]).unwrap();
        assert!(
            StateStore::load(&path, "ns1")
                .unwrap()
                .health("us-east")
                .is_none()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_state_file_from_before_health_was_saved_still_loads() {
        let dir = temp_dir("old-format");
        let path = dir.join("state.json");
        std::fs::write(
            &path,
            br#"{"overrides":{"us-east":{"mode":"fail","since":1}}}"#,
        )
        .unwrap();
        let store = StateStore::load(&path, "ns1").unwrap();
        assert_eq!(store.get("us-east").unwrap().mode, OverrideMode::Fail);
        assert!(store.all_health().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn overrides_saved_before_slots_are_kept_as_slots_of_this_node() {
        let dir = temp_dir("pre-slots");
        let path = dir.join("state.json");
        std::fs::write(
            &path,
            br#"{"overrides":{"eu-west":{"mode":"drain","reason":"disk","since":1700000000}},"health":{}}"#,
        )
        .unwrap();
        let mut store = StateStore::load(&path, "ns2").unwrap();
        assert_eq!(
            store.slots()["eu-west"],
            Slot {
                held: Some(Held {
                    mode: OverrideMode::Drain,
                    reason: Some("disk".into())
                }),
                at: 1_700_000_000_000,
                node: "ns2".into(),
            }
        );
        // The next save writes slots only; the override is still there.
        store.record_health("eu-west", true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"overrides\""), "{text}");
        let again = StateStore::load(&path, "ns2").unwrap();
        assert_eq!(again.get("eu-west").unwrap().mode, OverrideMode::Drain);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_peers_newer_slot_is_merged_and_saved_an_older_one_is_not() {
        let dir = temp_dir("merge");
        let path = dir.join("state.json");
        let mut store = StateStore::load(&path, "ns1").unwrap();
        store
            .set("eu-west", OverrideMode::Fail, None, 5_000)
            .unwrap();
        let stale = Slot {
            held: None,
            at: 4_000,
            node: "ns2".into(),
        };
        assert!(!store.merge("eu-west", &stale).unwrap());
        let newer = Slot { at: 6_000, ..stale };
        assert!(store.merge("eu-west", &newer).unwrap());
        let again = StateStore::load(&path, "ns1").unwrap();
        assert!(again.get("eu-west").is_none());
        assert_eq!(again.slots()["eu-west"], newer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_refused_with_the_fix() {
        let dir = temp_dir("corrupt");
        let path = dir.join("state.json");
        std::fs::write(&path, b"{not json").unwrap();
        let error = StateStore::load(&path, "ns1").unwrap_err();
        assert!(error.to_string().contains("fix or remove it"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
