//! MaxMind's fake GeoIP2/GeoLite2 test databases (see tests/fixtures/README.md).
//! Expected values come from their source JSON (`source-data/*.json` in the
//! maxminddb 3.2.0 sdist).

use geo_data::{Continent, Coordinates, GeoDb, Location, Prefix, country};
use maxminddb::Reader;

use crate::oracle::{RangeIndex, agrees_with_source};
use crate::{fixture, ip};

fn open(name: &str) -> GeoDb {
    GeoDb::open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn located(db: &GeoDb, addr: &str) -> Location {
    db.lookup(ip(addr))
        .location
        .unwrap_or_else(|| panic!("{addr} has no location"))
        .1
        .clone()
}

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[test]
fn city_database_gives_city_coordinates() {
    let db = open("GeoIP2-City-Test.mmdb");
    assert!(
        db.description()
            .ends_with("GeoIP2-City-Test.mmdb (GeoIP2-City)"),
        "{}",
        db.description()
    );
    assert_eq!(db.database_type(), "GeoIP2-City");

    let london = located(&db, "81.2.69.160");
    assert_eq!(london.country.unwrap().to_string(), "GB");
    assert_eq!(london.continent, Some(Continent::Europe));
    assert_eq!(london.city.as_deref(), Some("London"));
    assert_eq!(
        london.coordinates,
        Some(Coordinates {
            lat: 51.5142,
            lon: -0.0931
        })
    );

    let linkoping = located(&db, "89.160.20.130");
    assert_eq!(linkoping.city.as_deref(), Some("Linköping"));
    assert_eq!(
        linkoping.coordinates,
        Some(Coordinates {
            lat: 58.4167,
            lon: 15.6167
        })
    );

    let tokyo = located(&db, "2001:218::1");
    assert_eq!(tokyo.country.unwrap().to_string(), "JP");
    assert_eq!(
        tokyo.coordinates,
        Some(Coordinates {
            lat: 35.68536,
            lon: 139.75309
        })
    );
    assert_eq!(tokyo.city, None);
}

#[test]
fn city_database_merges_identical_neighbours_into_exact_scopes() {
    let db = open("GeoIP2-City-Test.mmdb");
    // Source networks ::81.2.69.142/127, .144/124, .160/123 and .192/124 are all
    // London, so they form one range 81.2.69.142-81.2.69.207.
    let id = |a: &str| db.lookup(ip(a)).location.unwrap().0;
    assert_eq!(id("81.2.69.142"), id("81.2.69.207"));
    assert_eq!(
        db.lookup(ip("81.2.69.160")).network,
        prefix("81.2.69.160/27")
    );
    assert_eq!(
        db.lookup(ip("81.2.69.200")).network,
        prefix("81.2.69.192/28")
    );
    assert_eq!(
        db.lookup(ip("81.2.69.142")).network,
        prefix("81.2.69.142/31")
    );
    assert_eq!(
        db.lookup(ip("::ffff:81.2.69.160")).network,
        prefix("81.2.69.160/27")
    );
    // 89.160.20.112/28 and 89.160.20.128/25 are both Linköping.
    assert_eq!(
        db.lookup(ip("89.160.20.200")).network,
        prefix("89.160.20.128/25")
    );
    assert_eq!(
        db.lookup(ip("89.160.20.113")).network,
        prefix("89.160.20.112/28")
    );
    assert!(db.lookup(ip("89.160.20.111")).location.is_none());
}

#[test]
fn records_without_a_country() {
    let db = open("GeoIP2-City-Test.mmdb");
    // 214.1.1.0/24 carries only `traits`: no location at all.
    let answer = db.lookup(ip("214.1.1.1"));
    assert!(answer.location.is_none());
    assert!(
        answer.network.contains(ip("214.1.1.255")),
        "{}",
        answer.network
    );
    // ::2.3.3.0/120 carries only `continent`.
    let eu = located(&db, "2.3.3.3");
    assert_eq!(
        (eu.country, eu.continent, eu.coordinates),
        (None, Some(Continent::Europe), None)
    );
    // 2a02:d500::/29 has a continent and a location but no country.
    let eu = located(&db, "2a02:d500::1");
    assert_eq!(eu.country, None);
    assert_eq!(eu.continent, Some(Continent::Europe));
    assert_eq!(
        eu.coordinates,
        Some(Coordinates {
            lat: 48.69096,
            lon: 9.14062
        })
    );
}

#[test]
fn geolite_city_database() {
    let db = open("GeoLite2-City-Test.mmdb");
    let boxford = located(&db, "2.125.160.216");
    assert_eq!(boxford.city.as_deref(), Some("Boxford"));
    assert_eq!(
        boxford.coordinates,
        Some(Coordinates {
            lat: 51.75,
            lon: -1.25
        })
    );
    assert_eq!(
        db.lookup(ip("2.125.160.220")).network,
        prefix("2.125.160.216/29")
    );
}

#[test]
fn country_databases_fall_back_to_the_country_centroid() {
    for name in ["GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb"] {
        let db = open(name);
        for (addr, code, continent) in [
            ("81.2.69.160", "GB", Continent::Europe),
            ("202.196.224.1", "PH", Continent::Asia),
            ("216.160.83.57", "US", Continent::NorthAmerica),
        ] {
            let loc = located(&db, addr);
            let code = code.parse().unwrap();
            assert_eq!(loc.country, Some(code), "{name} {addr}");
            assert_eq!(loc.continent, Some(continent), "{name} {addr}");
            assert_eq!(
                loc.coordinates,
                country(code).unwrap().centroid,
                "{name} {addr}"
            );
            assert_eq!(loc.city, None);
        }
    }
}

#[test]
fn fixtures_agree_with_the_maxminddb_reader_and_keep_the_range_invariants() {
    for name in [
        "GeoIP2-City-Test.mmdb",
        "GeoIP2-Country-Test.mmdb",
        "GeoLite2-City-Test.mmdb",
        "GeoLite2-Country-Test.mmdb",
    ] {
        let db = open(name);
        let reader = Reader::open_readfile(fixture(name)).unwrap();
        agrees_with_source(&db, &reader);
        let index = RangeIndex::new(&db);
        for r in db.ranges() {
            index.check_lookup(&db, r.first);
            index.check_lookup(&db, r.last);
        }
    }
}

#[test]
fn compiled_file_round_trip() {
    let db = open("GeoIP2-City-Test.mmdb");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.ranges");
    let mut bytes = Vec::new();
    db.write_compiled(&mut bytes).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let again = GeoDb::open(&path).unwrap();
    assert!(
        again.description().contains("compiled from"),
        "{}",
        again.description()
    );
    assert_eq!(again.locations(), db.locations());
    assert!(db.ranges().eq(again.ranges()));
    assert_eq!(
        located(&again, "81.2.69.160").city.as_deref(),
        Some("London")
    );
}
