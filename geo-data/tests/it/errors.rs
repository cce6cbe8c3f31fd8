//! Opening things that are not usable location databases: each error names the
//! file and says what was expected.

use geo_data::{GeoDb, GeoError};

use crate::fixture;
use crate::mmdb_writer::{MmdbWriter, Value, map, s};

fn open_err(path: &std::path::Path) -> (GeoError, String) {
    let err = GeoDb::open(path).expect_err("should not open");
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {msg}"
    );
    (err, msg)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (err, msg) = open_err(&dir.path().join("nope.mmdb"));
    assert!(matches!(err, GeoError::Io { .. }), "{err:?}");
    assert!(msg.contains("cannot read geo database"), "{msg}");
}

#[test]
fn text_file_is_not_an_mmdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoLite2-City.mmdb");
    std::fs::write(&path, "<html>404 Not Found</html>\n").unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, GeoError::NotMmdb { .. }), "{err:?}");
    assert!(msg.contains("is not a readable MaxMind DB"), "{msg}");
    assert!(msg.contains("expected a GeoIP2/GeoLite2"), "{msg}");
}

#[test]
fn empty_file_is_not_an_mmdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mmdb");
    std::fs::write(&path, b"").unwrap();
    let (err, _) = open_err(&path);
    assert!(matches!(err, GeoError::NotMmdb { .. }), "{err:?}");
}

#[test]
fn asn_database_has_an_unknown_layout() {
    let path = fixture("GeoLite2-ASN-Test.mmdb");
    let (err, msg) = open_err(&path);
    assert!(matches!(err, GeoError::UnknownLayout { .. }), "{err:?}");
    assert!(msg.contains("(GeoLite2-ASN)"), "{msg}");
    assert!(msg.contains("autonomous_system_number"), "{msg}");
    assert!(
        msg.contains("country_code"),
        "says what was expected: {msg}"
    );
}

#[test]
fn database_with_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty-tree.mmdb");
    std::fs::write(&path, MmdbWriter::new("Nothing").finish()).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, GeoError::UnknownLayout { .. }), "{err:?}");
    assert!(msg.contains("no records"), "{msg}");
}

#[test]
fn malformed_values_name_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.mmdb");
    let mut w = MmdbWriter::new("flat");
    assert!(w.insert(
        "192.0.2.0".parse().unwrap(),
        24,
        &map([("country_code", s("FRANCE"))])
    ));
    std::fs::write(&path, w.finish()).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, GeoError::BadRecord { .. }), "{err:?}");
    assert!(msg.contains("192.0.2.0/24"), "{msg}");
    assert!(msg.contains("FRANCE"), "{msg}");

    let mut w = MmdbWriter::new("nested");
    let bad = map([("continent", map([("code", s("XX"))]))]);
    assert!(w.insert("192.0.2.0".parse().unwrap(), 24, &bad));
    std::fs::write(&path, w.finish()).unwrap();
    let (_, msg) = open_err(&path);
    assert!(
        msg.contains("continent.code") && msg.contains("XX"),
        "{msg}"
    );

    let mut w = MmdbWriter::new("flat");
    assert!(w.insert(
        "192.0.2.0".parse().unwrap(),
        24,
        &map([("country_code", Value::U32(7))])
    ));
    std::fs::write(&path, w.finish()).unwrap();
    let (err, _) = open_err(&path);
    assert!(matches!(err, GeoError::BadRecord { .. }), "{err:?}");
}

#[test]
fn broken_double_in_a_maxmind_fixture() {
    let path = fixture("GeoIP2-City-Test-Broken-Double-Format.mmdb");
    let (err, msg) = open_err(&path);
    assert!(
        matches!(err, GeoError::BadRecord { .. } | GeoError::NotMmdb { .. }),
        "{err:?}"
    );
    println!("{msg}");
}

#[test]
fn damaged_compiled_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.ranges");
    let mut bytes = Vec::new();
    GeoDb::open(&fixture("GeoLite2-Country-Test.mmdb"))
        .unwrap()
        .write_compiled(&mut bytes)
        .unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, GeoError::Compiled { .. }), "{err:?}");
    assert!(
        msg.contains("truncated") && msg.contains("regenerate"),
        "{msg}"
    );
}
