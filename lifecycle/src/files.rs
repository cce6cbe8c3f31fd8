//! Files a daemon keeps for itself (state files), written so that a crash
//! mid-write leaves either the old file or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that readers see the old or the new file,
/// never a mix: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("cannot create its directory {}: {error}", dir.display()),
            )
        })?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp.{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        if let Some(dir) = dir {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Where daemon `program` keeps node `node`'s state file when told nothing:
/// `$XDG_STATE_HOME/PROGRAM/NODE.json`, else
/// `~/.local/state/PROGRAM/NODE.json`; `None` without either variable.
pub fn default_state_file(program: &str, node: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(base.join(program).join(format!("{node}.json")))
}
