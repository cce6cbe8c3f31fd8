//! `WatchedGeoDb`: reload on change, keep serving the old database when the
//! new file is bad.

use std::path::Path;

use geo_data::{GeoDb, GeoError, Refresh, WatchedGeoDb};

use crate::{fixture, ip};

/// Replaces `path` atomically, as deployment tools do.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn city_of(db: &GeoDb, addr: &str) -> Option<String> {
    db.lookup(ip(addr))
        .location
        .and_then(|(_, l)| l.city.clone())
}

fn country_of(db: &GeoDb, addr: &str) -> Option<String> {
    db.lookup(ip(addr))
        .location
        .and_then(|(_, l)| l.country)
        .map(|c| c.to_string())
}

#[test]
fn garbage_keeps_the_old_database_and_a_valid_file_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geo.mmdb");
    std::fs::copy(fixture("GeoLite2-Country-Test.mmdb"), &path).unwrap();

    let watched = WatchedGeoDb::open(&path).unwrap();
    assert_eq!(watched.path(), Some(path.as_path()));
    assert_eq!(
        country_of(&watched.load(), "81.2.69.160").as_deref(),
        Some("GB")
    );
    assert_eq!(watched.refresh().unwrap(), Refresh::Unchanged);
    let before = watched.current();

    // Garbage: the error names the file, the old database keeps answering,
    // and every later refresh tries again (and fails again).
    replace(&path, b"this is not a database");
    for _ in 0..2 {
        let err = watched.refresh().unwrap_err();
        assert!(matches!(err, GeoError::NotMmdb { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(
            country_of(&watched.load(), "81.2.69.160").as_deref(),
            Some("GB")
        );
        assert!(std::sync::Arc::ptr_eq(&before, &watched.current()));
    }

    // A valid (city) database: swapped in.
    replace(
        &path,
        &std::fs::read(fixture("GeoIP2-City-Test.mmdb")).unwrap(),
    );
    assert_eq!(watched.refresh().unwrap(), Refresh::Reloaded);
    assert_eq!(
        city_of(&watched.load(), "81.2.69.160").as_deref(),
        Some("London")
    );
    assert_eq!(watched.refresh().unwrap(), Refresh::Unchanged);
    // Handles taken before the swap still see the old database.
    assert_eq!(city_of(&before, "81.2.69.160"), None);

    // In-place overwrite (not a rename) is noticed too.
    std::fs::write(
        &path,
        std::fs::read(fixture("GeoLite2-City-Test.mmdb")).unwrap(),
    )
    .unwrap();
    assert_eq!(watched.refresh().unwrap(), Refresh::Reloaded);
    assert!(watched.load().description().contains("GeoLite2-City"));
}

#[test]
fn deleted_file_keeps_the_old_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geo.mmdb");
    std::fs::copy(fixture("GeoIP2-Country-Test.mmdb"), &path).unwrap();
    let watched = WatchedGeoDb::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = watched.refresh().unwrap_err();
    assert!(matches!(err, GeoError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("geo.mmdb"), "{err}");
    assert_eq!(
        country_of(&watched.load(), "81.2.69.160").as_deref(),
        Some("GB")
    );
}

#[test]
fn fixed_database_never_reloads() {
    let watched = WatchedGeoDb::fixed(GeoDb::embedded());
    assert_eq!(watched.path(), None);
    assert_eq!(watched.refresh().unwrap(), Refresh::Unchanged);
    assert_eq!(
        country_of(&watched.load(), "8.8.8.8").as_deref(),
        Some("US")
    );
}

#[test]
fn open_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let err = WatchedGeoDb::open(dir.path().join("missing.mmdb")).unwrap_err();
    assert!(err.to_string().contains("missing.mmdb"), "{err}");
}
