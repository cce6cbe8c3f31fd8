//! Independent checks of a `GeoDb`: its public range list as the reference for
//! lookups and prefixes, and the `maxminddb` reader as the reference for what
//! the source file says.

use std::net::IpAddr;

use geo_data::{Family, GeoDb, LocationId, Prefix};
use maxminddb::{PathElement, Reader};

fn value(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A database's ranges, per family, as plain numbers.
pub struct RangeIndex {
    pub v4: Vec<(u128, u128, Option<LocationId>)>,
    pub v6: Vec<(u128, u128, Option<LocationId>)>,
}

impl RangeIndex {
    /// Collects the ranges and checks they tile each family's space, sorted,
    /// with neighbours in different locations.
    pub fn new(db: &GeoDb) -> RangeIndex {
        let mut index = RangeIndex {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for r in db.ranges() {
            assert_eq!(r.family(), Family::of(r.last), "{r:?}");
            let list = match r.family() {
                Family::V4 => &mut index.v4,
                Family::V6 => &mut index.v6,
            };
            list.push((value(r.first), value(r.last), r.location));
        }
        for (list, max) in [(&index.v4, u128::from(u32::MAX)), (&index.v6, u128::MAX)] {
            assert_eq!(list.first().map(|r| r.0), Some(0), "ranges start at 0");
            assert_eq!(list.last().map(|r| r.1), Some(max), "ranges end at the top");
            for pair in list.windows(2) {
                assert!(pair[0].0 <= pair[0].1, "{pair:?}");
                assert_eq!(pair[0].1 + 1, pair[1].0, "ranges are contiguous: {pair:?}");
                assert_ne!(pair[0].2, pair[1].2, "neighbours are merged: {pair:?}");
            }
        }
        index
    }

    fn family(&self, family: Family) -> &[(u128, u128, Option<LocationId>)] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// Index of the range holding `ip` in its family.
    pub fn segment(&self, ip: IpAddr) -> usize {
        let list = self.family(Family::of(ip));
        list.partition_point(|r| r.0 <= value(ip)) - 1
    }

    /// The location of `ip` per the range list.
    pub fn location(&self, ip: IpAddr) -> Option<LocationId> {
        self.family(Family::of(ip))[self.segment(ip)].2
    }

    /// The address at `offset` from the start of range `i` of `family`, clamped
    /// into the family's space.
    pub fn near_start(&self, family: Family, i: usize, offset: i64) -> IpAddr {
        let list = self.family(family);
        let start = list[i % list.len()].0;
        let max = match family {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        };
        let v = if offset < 0 {
            start.saturating_sub(u128::from(offset.unsigned_abs()))
        } else {
            start.saturating_add(offset as u128).min(max)
        };
        match family {
            Family::V4 => IpAddr::V4((v as u32).into()),
            Family::V6 => IpAddr::V6(v.into()),
        }
    }

    /// The prefix property: the returned block holds `ip`, is canonical, lies
    /// inside one range with the looked-up location, and the block one bit
    /// wider does not.
    pub fn check_lookup(&self, db: &GeoDb, ip: IpAddr) {
        let canonical = ip.to_canonical();
        let answer = db.lookup(ip);
        let p = answer.network;
        assert!(p.contains(canonical), "{p} does not contain {ip}");
        assert_eq!(
            Prefix::new(p.addr(), p.len()).unwrap(),
            p,
            "{p} is not canonical"
        );
        let seg = self.segment(canonical);
        assert_eq!(
            self.segment(p.first()),
            seg,
            "{ip}: {p} starts outside the range"
        );
        assert_eq!(
            self.segment(p.last()),
            seg,
            "{ip}: {p} ends outside the range"
        );
        assert_eq!(
            answer.location.map(|l| l.0),
            self.location(canonical),
            "{ip}: location"
        );
        if let Some((id, loc)) = answer.location {
            assert_eq!(db.location(id), loc);
        }
        if let Some(wider) = p.widen() {
            let (a, b) = (self.segment(wider.first()), self.segment(wider.last()));
            assert!(
                a != seg || b != seg,
                "{ip}: {wider} would also be one range, so {p} is not the widest"
            );
        } else {
            assert_eq!(
                self.family(p.family()).len(),
                1,
                "{ip}: /0 only when the family is one range"
            );
        }
    }
}

/// The country the source file gives `ip`, in either layout (`ZZ` = none).
pub fn mmdb_country(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Option<String> {
    let found = reader.lookup(ip).unwrap();
    let flat: Option<String> = found
        .decode_path(&[PathElement::Key("country_code")])
        .unwrap_or(None);
    let nested: Option<String> = found
        .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
        .unwrap_or(None);
    flat.or(nested).filter(|c| c != "ZZ")
}

/// True for IPv6 addresses in `::/96` or `::ffff:0:0/96`, which the compiled
/// IPv6 table leaves empty on purpose.
pub fn embeds_ipv4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(a) => matches!(u128::from(a) >> 32, 0 | 0xFFFF),
    }
}

/// Compares the compiled database with its source at both ends of every
/// compiled range.
pub fn agrees_with_source(db: &GeoDb, reader: &Reader<Vec<u8>>) {
    for r in db.ranges() {
        for ip in [r.first, r.last] {
            if embeds_ipv4(ip) {
                continue;
            }
            let ours = db
                .lookup(ip)
                .location
                .and_then(|(_, l)| l.country)
                .map(|c| c.to_string());
            assert_eq!(
                ours,
                mmdb_country(reader, ip),
                "{ip} in {}",
                db.description()
            );
        }
    }
}
