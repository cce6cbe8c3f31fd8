//! [`WatchedGeoDb`]: the current database behind an `ArcSwap`, reopened by
//! [`refresh`](WatchedGeoDb::refresh) when its file changes. The caller owns the
//! timer; nothing here spawns threads or tasks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};

use crate::db::GeoDb;
use crate::error::GeoError;

/// What [`WatchedGeoDb::refresh`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refresh {
    /// The file looks the same as when it was last loaded; nothing was read.
    Unchanged,
    /// The file changed and the new database is now current.
    Reloaded,
}

/// Identity of a file version: if any part differs the file is reread.
/// The inode catches a same-size replacement by rename within one mtime tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Result<FileStamp, GeoError> {
        let meta = std::fs::metadata(path).map_err(|error| GeoError::Io {
            path: path.to_owned(),
            error,
        })?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        })
    }
}

/// A database that can be swapped for a newer version of its file while
/// lookups continue. Readers never block: [`load`](Self::load) is a lock-free
/// `ArcSwap` read.
pub struct WatchedGeoDb {
    current: ArcSwap<GeoDb>,
    /// `None` for a database that has no file to watch.
    path: Option<PathBuf>,
    /// Stamp of the file version now in service; the lock also keeps two
    /// refreshes from racing each other.
    loaded: Mutex<Option<FileStamp>>,
}

impl WatchedGeoDb {
    /// Opens `path` (see [`GeoDb::open`]) and remembers its version.
    pub fn open(path: impl Into<PathBuf>) -> Result<WatchedGeoDb, GeoError> {
        let path = path.into();
        let stamp = FileStamp::of(&path)?;
        let db = GeoDb::open(&path)?;
        Ok(WatchedGeoDb {
            current: ArcSwap::from_pointee(db),
            path: Some(path),
            loaded: Mutex::new(Some(stamp)),
        })
    }

    /// A database with no file behind it (e.g. [`GeoDb::embedded`]); refreshing
    /// it does nothing.
    pub fn fixed(db: GeoDb) -> WatchedGeoDb {
        WatchedGeoDb {
            current: ArcSwap::from_pointee(db),
            path: None,
            loaded: Mutex::new(None),
        }
    }

    /// The watched file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The current database, for the hot path (no reference-count traffic).
    /// Do not hold the guard for long; use [`current`](Self::current) for that.
    pub fn load(&self) -> Guard<Arc<GeoDb>> {
        self.current.load()
    }

    /// The current database as an owned handle.
    pub fn current(&self) -> Arc<GeoDb> {
        self.current.load_full()
    }

    /// Reopens the file if its modification time, size or inode changed since
    /// the version in service was loaded, and swaps the new database in.
    ///
    /// On failure the database in service is kept, the error (naming the file)
    /// is returned, and the next call tries again, so a file caught half-written
    /// is picked up once complete. Opening compiles the whole database, so call
    /// this from a background task, not the query path.
    pub fn refresh(&self) -> Result<Refresh, GeoError> {
        let Some(path) = &self.path else {
            return Ok(Refresh::Unchanged);
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = FileStamp::of(path)?;
        if *loaded == Some(stamp) {
            return Ok(Refresh::Unchanged);
        }
        // Stamp taken before reading: if the file changes while we read it, the
        // next refresh sees a newer stamp and reads it again.
        let db = GeoDb::open(path)?;
        self.current.store(Arc::new(db));
        *loaded = Some(stamp);
        Ok(Refresh::Reloaded)
    }
}

impl std::fmt::Debug for WatchedGeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedGeoDb")
            .field("path", &self.path)
            .field("current", &self.current.load().description())
            .finish()
    }
}
