//! The flat ip-location-db layout (`country_code`, `latitude`, `longitude`,
//! `city`), with small databases written by the test writer.

use geo_data::{Continent, Coordinates, GeoDb, Prefix, country};

use crate::ip;
use crate::mmdb_writer::{MmdbWriter, Value, map, s};

fn write(w: &MmdbWriter) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.mmdb");
    std::fs::write(&path, w.finish()).unwrap();
    (dir, path)
}

#[test]
fn flat_city_and_country_records() {
    let mut w = MmdbWriter::new("dbip-city ipvAll");
    let paris = map([
        ("country_code", s("FR")),
        ("city", s("Paris")),
        ("latitude", Value::F64(48.8566)),
        ("longitude", Value::F64(2.3522)),
    ]);
    // Two halves with the same record: compiled as one range.
    assert!(w.insert(ip("192.0.2.0"), 25, &paris));
    assert!(w.insert(ip("192.0.2.128"), 25, &paris));
    assert!(w.insert(ip("198.51.100.0"), 25, &map([("country_code", s("DE"))])));
    assert!(w.insert(ip("198.51.100.128"), 25, &map([("country_code", s("ZZ"))])));
    assert!(w.insert(ip("203.0.113.0"), 24, &map([("country_code", s("XK"))])));
    // Coordinates stored as strings, as CSV-derived files sometimes do.
    let tokyo = map([
        ("country_code", s("JP")),
        ("latitude", s("35.6895")),
        ("longitude", s("139.6917")),
        ("city", s("Tokyo")),
    ]);
    assert!(w.insert(ip("2001:db8::"), 32, &tokyo));
    assert!(w.insert(ip("2001:db9::"), 32, &map([("country_code", s("EU"))])));
    let (_dir, path) = write(&w);

    let db = GeoDb::open(&path).unwrap();
    assert!(
        db.description().ends_with("flat.mmdb (dbip-city ipvAll)"),
        "{}",
        db.description()
    );

    let answer = db.lookup(ip("192.0.2.200"));
    let loc = answer.location.unwrap().1;
    assert_eq!(answer.network, "192.0.2.0/24".parse::<Prefix>().unwrap());
    assert_eq!(loc.city.as_deref(), Some("Paris"));
    assert_eq!(
        loc.coordinates,
        Some(Coordinates {
            lat: 48.8566,
            lon: 2.3522
        })
    );
    assert_eq!(
        loc.continent,
        Some(Continent::Europe),
        "continent from the country table"
    );

    let de = db.lookup(ip("198.51.100.1"));
    let loc = de.location.unwrap().1;
    assert_eq!(
        loc.coordinates,
        country("DE".parse().unwrap()).unwrap().centroid
    );
    assert_eq!(de.network, "198.51.100.0/25".parse::<Prefix>().unwrap());

    // ZZ is "unknown": no location, and the gap is exact.
    let zz = db.lookup(ip("198.51.100.200"));
    assert!(zz.location.is_none());
    assert_eq!(zz.network, "198.51.100.128/25".parse::<Prefix>().unwrap());

    let xk = db.lookup(ip("203.0.113.9")).location.unwrap().1;
    assert_eq!(
        xk.coordinates,
        country("XK".parse().unwrap()).unwrap().centroid
    );
    assert!(xk.coordinates.is_some());

    let tokyo = db.lookup(ip("2001:db8::1")).location.unwrap().1;
    assert_eq!(
        tokyo.coordinates,
        Some(Coordinates {
            lat: 35.6895,
            lon: 139.6917
        })
    );
    assert_eq!(tokyo.continent, Some(Continent::Asia));

    // A region code without a centroid: continent only.
    let eu = db.lookup(ip("2001:db9::1")).location.unwrap().1;
    assert_eq!(
        (eu.continent, eu.coordinates),
        (Some(Continent::Europe), None)
    );
}

#[test]
fn records_without_location_fields_before_the_first_located_one_are_skipped() {
    let mut w = MmdbWriter::new("mixed");
    assert!(w.insert(
        ip("10.0.0.0"),
        8,
        &map([("traits", map([("is_anycast", Value::U16(1))]))])
    ));
    assert!(w.insert(ip("11.0.0.0"), 8, &map([("country_code", s("US"))])));
    let (_dir, path) = write(&w);
    let db = GeoDb::open(&path).unwrap();
    assert!(db.lookup(ip("10.1.1.1")).location.is_none());
    assert!(db.lookup(ip("11.1.1.1")).location.is_some());
    assert_eq!(db.locations().len(), 1);
}

#[test]
fn out_of_range_coordinates_fall_back_to_the_centroid() {
    let mut w = MmdbWriter::new("flat");
    let bad = map([
        ("country_code", s("FR")),
        ("latitude", Value::F64(123.0)),
        ("longitude", Value::F64(2.0)),
    ]);
    assert!(w.insert(ip("192.0.2.0"), 24, &bad));
    let (_dir, path) = write(&w);
    let db = GeoDb::open(&path).unwrap();
    let loc = db.lookup(ip("192.0.2.1")).location.unwrap().1;
    assert_eq!(
        loc.coordinates,
        country("FR".parse().unwrap()).unwrap().centroid
    );
}
