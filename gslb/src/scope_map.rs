//! Wide ECS scopes: for each geo name, the GeoIP database's ranges merged
//! wherever the location gives the same region order, so a reply's scope
//! covers every neighbouring network that would get the same answer, not
//! just the database's own network — the resolver caches it that widely.
//!
//! The same merged ranges, each with the id of its region order, are the
//! fast path's decision tables for `nearest` and `all`
//! ([`crate::fast`]), so both paths merge by one rule.
//!
//! Built once per (topology, database) pair; pure given those.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use geo_data::{GeoDb, Location, Prefix};
use topology::{DomainName, GeoPolicy, RegionId, Topology};

use crate::decide::{distance_from, location_order};

/// Merged ranges for one set of candidate regions: address ranges over
/// which the location-derived region order is the same, each with the id
/// of its order. The ECS scope and the fast path's decision tables are
/// both read from it.
pub struct ScopeMap {
    /// Merged IPv4 ranges: first address and order id, sorted; each range
    /// ends where the next begins (the database covers the whole space).
    v4: Vec<(u32, u32)>,
    /// Merged IPv6 ranges, likewise.
    v6: Vec<(u128, u32)>,
    /// Region orders (over the candidates) by id.
    orders: Vec<Vec<RegionId>>,
}

impl ScopeMap {
    /// Merges `db`'s ranges for the candidate `regions`.
    pub fn build(topology: &Topology, regions: &[RegionId], db: &GeoDb) -> ScopeMap {
        // The order per location, interned: the same order → the same id.
        let mut ids: HashMap<Vec<RegionId>, u32> = HashMap::new();
        let mut orders = Vec::new();
        let mut intern = |place: Option<&Location>| -> u32 {
            let distance = distance_from(topology, place);
            let (_, order) = location_order(topology, regions, place, &distance);
            *ids.entry(order.clone()).or_insert_with(|| {
                orders.push(order);
                orders.len() as u32 - 1
            })
        };
        let unknown = intern(None);
        let by_location: Vec<u32> = db.locations().iter().map(|l| intern(Some(l))).collect();
        let mut v4: Vec<(u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u32)> = Vec::new();
        for range in db.ranges() {
            let id = range.location.map_or(unknown, |l| by_location[l.index()]);
            match range.first {
                IpAddr::V4(first) => {
                    if v4.last().is_none_or(|last| last.1 != id) {
                        v4.push((u32::from(first), id));
                    }
                }
                IpAddr::V6(first) => {
                    if v6.last().is_none_or(|last| last.1 != id) {
                        v6.push((u128::from(first), id));
                    }
                }
            }
        }
        ScopeMap { v4, v6, orders }
    }

    /// The merged range holding `addr`: its first and last address, and
    /// the id of its region order ([`ScopeMap::orders`]). Allocation-free.
    pub fn range(&self, addr: IpAddr) -> Option<(IpAddr, IpAddr, u32)> {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                range_of(&self.v4, u32::from(v4), u32::MAX).map(|(first, last, id)| {
                    (first.to_be_bytes().into(), last.to_be_bytes().into(), id)
                })
            }
            IpAddr::V6(v6) => {
                range_of(&self.v6, u128::from(v6), u128::MAX).map(|(first, last, id)| {
                    (first.to_be_bytes().into(), last.to_be_bytes().into(), id)
                })
            }
        }
    }

    /// The region orders, by the ids [`ScopeMap::range`] gives.
    pub fn orders(&self) -> &[Vec<RegionId>] {
        &self.orders
    }

    /// The widest prefix around `addr` over which the region order is the
    /// same, if the database covers the address.
    pub fn widest(&self, addr: IpAddr) -> Option<Prefix> {
        let (first, last, _) = self.range(addr)?;
        Prefix::widest_within(addr.to_canonical(), first, last)
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
    /// answering at once. Names with the same candidate regions share one
    /// map.
    maps: OnceLock<HashMap<DomainName, Arc<ScopeMap>>>,
}

impl ScopeMaps {
    /// The maps of `topology`'s `nearest` and `all` names over `db`, built
    /// when first needed.
    pub fn new(topology: Arc<Topology>, db: Arc<GeoDb>) -> ScopeMaps {
        ScopeMaps {
            db,
            topology,
            maps: OnceLock::new(),
        }
    }

    /// Builds the maps now, if nobody has yet.
    pub fn warm(&self) {
        self.maps();
    }

    fn maps(&self) -> &HashMap<DomainName, Arc<ScopeMap>> {
        self.maps.get_or_init(|| {
            let topology = &self.topology;
            let mut shared: HashMap<&[RegionId], Arc<ScopeMap>> = HashMap::new();
            topology
                .dns
                .zones
                .iter()
                .flat_map(|zone| &zone.geo)
                .filter(|geo| matches!(geo.policy, GeoPolicy::Nearest | GeoPolicy::All))
                .map(|geo| {
                    let map = shared.entry(&geo.regions).or_insert_with(|| {
                        Arc::new(ScopeMap::build(topology, &geo.regions, &self.db))
                    });
                    (geo.name.clone(), map.clone())
                })
                .collect()
        })
    }

    /// The map of geo name `name`, if it has one and the maps were built
    /// from `db` (a reloaded database needs new maps).
    pub fn map(&self, db: &Arc<GeoDb>, name: &DomainName) -> Option<&Arc<ScopeMap>> {
        if !Arc::ptr_eq(&self.db, db) {
            return None;
        }
        self.maps().get(name)
    }

    /// The widest decision-constant prefix for `name` around `addr`, if the
    /// maps were built from `db` (a reloaded database needs new maps).
    pub fn widest(&self, db: &Arc<GeoDb>, name: &DomainName, addr: IpAddr) -> Option<Prefix> {
        self.map(db, name)?.widest(addr)
    }
}

/// The range of `ranges` (sorted first addresses, each range ending where
/// the next begins, the last at `max`) that holds `value`: first, last and
/// order id. One rule for both address families.
fn range_of<T>(ranges: &[(T, u32)], value: T, max: T) -> Option<(T, T, u32)>
where
    T: Copy + Ord + std::ops::Sub<Output = T> + From<u8>,
{
    let index = ranges.partition_point(|(first, _)| *first <= value);
    let (first, id) = *ranges.get(index.checked_sub(1)?)?;
    let last = ranges.get(index).map_or(max, |next| next.0 - T::from(1));
    Some((first, last, id))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;
    use topology::GeoName;

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
            let map = ScopeMap::build(&topology, &topology.dns.zones[0].geo[0].regions, &db);
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
