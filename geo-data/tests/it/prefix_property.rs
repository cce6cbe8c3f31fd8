//! The widest-prefix property, which the DNS server relies on for the EDNS
//! Client Subnet scope: for any address, every address of the returned prefix
//! has the same location, and the prefix one bit wider does not.
//! Checked against the public range list (`oracle::RangeIndex`), on the
//! embedded database, a MaxMind fixture, and random databases whose source is
//! also read back with the `maxminddb` reader.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use geo_data::{Family, GeoDb};
use maxminddb::Reader;
use proptest::prelude::*;

use crate::fixture;
use crate::mmdb_writer::{MmdbWriter, Value, map, s};
use crate::oracle::{RangeIndex, embeds_ipv4, mmdb_country};

static EMBEDDED: LazyLock<(GeoDb, RangeIndex)> = LazyLock::new(|| {
    let db = GeoDb::embedded();
    let index = RangeIndex::new(&db);
    (db, index)
});

static CITY: LazyLock<(GeoDb, RangeIndex)> = LazyLock::new(|| {
    let db = GeoDb::open(&fixture("GeoIP2-City-Test.mmdb")).unwrap();
    let index = RangeIndex::new(&db);
    (db, index)
});

/// How to pick an address to look up.
#[derive(Debug, Clone)]
enum Probe {
    V4(u32),
    V6(u128),
    Mapped(u32),
    /// Near the start of the i-th range of a family (boundaries are where
    /// off-by-one errors live).
    NearStart(Family, usize, i64),
}

fn probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        any::<u32>().prop_map(Probe::V4),
        any::<u128>().prop_map(Probe::V6),
        any::<u32>().prop_map(Probe::Mapped),
        (any::<usize>(), -2i64..=2).prop_map(|(i, d)| Probe::NearStart(Family::V4, i, d)),
        (any::<usize>(), -2i64..=2).prop_map(|(i, d)| Probe::NearStart(Family::V6, i, d)),
    ]
}

fn resolve(probe: &Probe, index: &RangeIndex) -> IpAddr {
    match *probe {
        Probe::V4(v) => IpAddr::V4(Ipv4Addr::from(v)),
        Probe::V6(v) => IpAddr::V6(Ipv6Addr::from(v)),
        Probe::Mapped(v) => IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped()),
        Probe::NearStart(family, i, d) => index.near_start(family, i, d),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn embedded_prefixes_are_exact(p in probe()) {
        let (db, index) = &*EMBEDDED;
        index.check_lookup(db, resolve(&p, index));
    }

    #[test]
    fn fixture_prefixes_are_exact(p in probe()) {
        let (db, index) = &*CITY;
        index.check_lookup(db, resolve(&p, index));
    }
}

/// One network of a random database: address bits, prefix length, family,
/// and which of a few records it carries.
type NetSpec = (u128, u8, bool, usize);

fn records() -> Vec<Value> {
    vec![
        map([("country_code", s("FR"))]),
        map([("country_code", s("DE"))]),
        map([
            ("country_code", s("JP")),
            ("latitude", Value::F64(35.0)),
            ("longitude", Value::F64(139.0)),
        ]),
        map([("country_code", s("ZZ"))]),
        map([("country_code", s("US")), ("city", s("Austin"))]),
        map([("country_code", s("FR"))]),
    ]
}

fn net_spec() -> impl Strategy<Value = NetSpec> {
    (any::<u128>(), 1u8..=32, any::<bool>(), 0usize..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random databases: compiled answers equal the source's at and around
    /// every network boundary, and prefixes are exact there.
    #[test]
    fn random_databases_match_their_source(nets in proptest::collection::vec(net_spec(), 1..40)) {
        let records = records();
        let mut w = MmdbWriter::new("random");
        let mut inserted = Vec::new();
        for (bits, len, v4, record) in nets {
            // Cluster networks in a few /8s (IPv4) or one /16 (IPv6) so they
            // touch and nest, exercising merging and gap handling.
            let (addr, len) = if v4 {
                let v = ((bits as u32) & 0x03FF_FFFF) | 0x0800_0000;
                (IpAddr::V4(Ipv4Addr::from(v)), len.max(6))
            } else {
                let v = (bits & ((1u128 << 112) - 1)) | (0x2001u128 << 112);
                (IpAddr::V6(Ipv6Addr::from(v)), len * 4)
            };
            let network = geo_data::Prefix::new(addr, len).unwrap();
            if w.insert(network.addr(), len, &records[record]) {
                inserted.push(network);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.mmdb");
        std::fs::write(&path, w.finish()).unwrap();
        let db = GeoDb::open(&path).unwrap();
        let reader = Reader::open_readfile(&path).unwrap();
        let index = RangeIndex::new(&db);
        for network in inserted {
            for ip in [network.first(), network.last()] {
                for ip in neighbours(ip) {
                    if embeds_ipv4(ip) {
                        continue;
                    }
                    let ours = db.lookup(ip).location.and_then(|(_, l)| l.country).map(|c| c.to_string());
                    prop_assert_eq!(ours, mmdb_country(&reader, ip), "{}", ip);
                    index.check_lookup(&db, ip);
                }
            }
        }
    }
}

fn neighbours(ip: IpAddr) -> Vec<IpAddr> {
    match ip {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            [v.wrapping_sub(1), v, v.wrapping_add(1)]
                .map(|v| IpAddr::V4(v.into()))
                .to_vec()
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            [v.wrapping_sub(1), v, v.wrapping_add(1)]
                .map(|v| IpAddr::V6(v.into()))
                .to_vec()
        }
    }
}
