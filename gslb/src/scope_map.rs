//! Wide ECS scopes: for each geo name, the GeoIP database's ranges merged
//! wherever the location gives the same region order, so a reply's scope
//! covers every neighbouring network that would get the same answer, not
//! just the database's own network — the resolver caches it that widely.
//!
//! Built once per (topology, database) pair; pure given those.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use geo_data::{GeoDb, Prefix};
use topology::{DomainName, GeoName, GeoPolicy, RegionId, Topology};

use crate::decide::{distance_from, location_order};

/// Merged ranges of one geo name: address ranges over which the
/// location-derived region order is the same.
pub struct ScopeMap {
    /// Inclusive ranges in address order, IPv4 and IPv6 apart.
    v4: Vec<(IpAddr, IpAddr)>,
    v6: Vec<(IpAddr, IpAddr)>,
}

impl ScopeMap {
    /// Merges `db`'s ranges for `geo`.
    pub fn build(topology: &Topology, geo: &GeoName, db: &GeoDb) -> ScopeMap {
        // The order per location, interned: the same order → the same id.
        let mut orders: HashMap<Vec<RegionId>, u32> = HashMap::new();
        let mut intern = |place: Option<&geo_data::Location>| -> u32 {
            let distance = distance_from(topology, place);
            let (_, order) = location_order(topology, &geo.regions, place, &distance);
            let next = orders.len() as u32;
            *orders.entry(order).or_insert(next)
        };
        // By location index; the last slot is "no location".
        let unknown = intern(None);
        let by_location: Vec<u32> = db.locations().iter().map(|l| intern(Some(l))).collect();
        let order_id = |location: Option<usize>| location.map_or(unknown, |i| by_location[i]);
        let mut v4: Vec<(IpAddr, IpAddr, u32)> = Vec::new();
        let mut v6: Vec<(IpAddr, IpAddr, u32)> = Vec::new();
        for range in db.ranges() {
            let id = order_id(range.location.map(|l| l.index()));
            let merged = if range.first.is_ipv4() {
                &mut v4
            } else {
                &mut v6
            };
            match merged.last_mut() {
                Some(last) if last.2 == id => last.1 = range.last,
                _ => merged.push((range.first, range.last, id)),
            }
        }
        let strip = |ranges: Vec<(IpAddr, IpAddr, u32)>| {
            ranges.into_iter().map(|(a, b, _)| (a, b)).collect()
        };
        ScopeMap {
            v4: strip(v4),
            v6: strip(v6),
        }
    }

    /// The widest prefix around `addr` over which the region order is the
    /// same, if the database covers the address.
    pub fn widest(&self, addr: IpAddr) -> Option<Prefix> {
        let addr = addr.to_canonical();
        let ranges = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        let index = ranges
            .partition_point(|(first, _)| *first <= addr)
            .checked_sub(1)?;
        let (first, last) = ranges[index];
        Prefix::widest_within(addr, first, last)
    }

    /// How many merged ranges there are (for logs).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The scope maps of every geo name whose policy depends on location,
/// for one database.
pub struct ScopeMaps {
    db: Arc<GeoDb>,
    topology: Arc<Topology>,
    /// Built on first use (or by [`ScopeMaps::warm`] in the background):
    /// merging the whole database takes a moment, and a node should start
    /// answering at once.
    maps: std::sync::OnceLock<HashMap<DomainName, ScopeMap>>,
}

impl ScopeMaps {
    /// The maps of `topology`'s `nearest` and `all` names over `db`, built
    /// when first needed.
    pub fn new(topology: Arc<Topology>, db: Arc<GeoDb>) -> ScopeMaps {
        ScopeMaps {
            db,
            topology,
            maps: std::sync::OnceLock::new(),
        }
    }

    /// Builds the maps now, if nobody has yet.
    pub fn warm(&self) {
        self.maps();
    }

    fn maps(&self) -> &HashMap<DomainName, ScopeMap> {
        self.maps.get_or_init(|| {
            let topology = &self.topology;
            topology
                .dns
                .zones
                .iter()
                .flat_map(|zone| &zone.geo)
                .filter(|geo| matches!(geo.policy, GeoPolicy::Nearest | GeoPolicy::All))
                .map(|geo| (geo.name.clone(), ScopeMap::build(topology, geo, &self.db)))
                .collect()
        })
    }

    /// The widest decision-constant prefix for `name` around `addr`, if the
    /// maps were built from `db` (a reloaded database needs new maps).
    pub fn widest(&self, db: &Arc<GeoDb>, name: &DomainName, addr: IpAddr) -> Option<Prefix> {
        if !Arc::ptr_eq(&self.db, db) {
            return None;
        }
        self.maps().get(name)?.widest(addr)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    fn example() -> Topology {
        topology::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/three-regions.yaml"),
        )
        .unwrap()
    }

    /// The example, the embedded database and the map of `www`, built once.
    fn fixture() -> &'static (Topology, GeoDb, ScopeMap) {
        static FIXTURE: std::sync::OnceLock<(Topology, GeoDb, ScopeMap)> =
            std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let topology = example();
            let db = GeoDb::embedded();
            let map = ScopeMap::build(&topology, &topology.dns.zones[0].geo[0], &db);
            (topology, db, map)
        })
    }

    fn order_at(topology: &Topology, geo: &GeoName, db: &GeoDb, ip: IpAddr) -> Vec<RegionId> {
        let place = db.lookup(ip).location.map(|(_, l)| l);
        location_order(
            topology,
            &geo.regions,
            place,
            &distance_from(topology, place),
        )
        .1
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every address inside the widened scope gets the same region
        /// order, and the scope is never narrower than the database's own
        /// network.
        #[test]
        fn the_whole_scope_gets_the_same_order(ip in any::<u32>(), samples in proptest::collection::vec(any::<u32>(), 16)) {
            let (topology, db, map) = fixture();
            let geo = &topology.dns.zones[0].geo[0];
            let ip = IpAddr::V4(Ipv4Addr::from(ip));
            let scope = map.widest(ip).expect("the database covers IPv4");
            prop_assert!(scope.contains(ip));
            prop_assert!(scope.len() <= db.lookup(ip).network.len());
            let expected = order_at(topology, geo, db, ip);
            let first = u32::from(match scope.first() { IpAddr::V4(a) => a, IpAddr::V6(_) => unreachable!() });
            let size = 1u64 << (32 - scope.len());
            for sample in samples {
                let inside = Ipv4Addr::from(first + (u64::from(sample) % size) as u32);
                prop_assert_eq!(&order_at(topology, geo, db, IpAddr::V4(inside)), &expected, "{} in {}", inside, scope);
            }
        }
    }
}
