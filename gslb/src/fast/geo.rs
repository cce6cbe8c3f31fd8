//! The geo half of the fast path's tables: an allocation-free decision
//! table per geo name that gives, for any client network, the same answer
//! and ECS scope as [`crate::decide`].
//!
//! For `nearest` and `all`, the GeoIP ranges are merged wherever the
//! location-derived region order is the same — exactly as
//! [`crate::scope_map`] merges them, so a merged range is also the ECS
//! scope base — and each range carries the id of its order. Network
//! overrides are checked first and ordered by distance from the client's
//! location. `failover` needs no table. Per health view, each order is
//! turned into an [`Outcome`]: a template of the addresses chosen (or the
//! zone's NODATA) and whether the scope collapses to 0. `weighted` is left
//! to the slow path.
//!
//! [`GeoMaps`] depend on the serving state and the GeoIP database;
//! [`GeoOutcomes`] on those and the health view, and are rebuilt when it
//! changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use geo_data::{GeoDb, Location, Prefix};
use topology::{AllDown, DomainName, GeoName, GeoPolicy, RecordType, RegionId, Topology};

use super::names::{Route, Statics};
use super::template::{TemplateId, TemplateStore, Use};
use crate::client::Client;
use crate::decide::{distance_from, location_order, stable_scope};
use crate::dns::canonical_reply;
use crate::health::RegionHealth;
use crate::resolve::GeoAnswer;
use crate::state::ServingState;

/// Most (network override × distance order) pairs precomputed per geo name;
/// beyond it, clients matched by a network override go to the slow path.
const MAX_NET_ORDERS: usize = 1 << 16;

/// How one geo name is decided.
enum GeoMap {
    /// `nearest` and `all` (shared by names with the same regions).
    Proximity(Arc<Proximity>),
    /// `failover`: the written order, whoever asks.
    Failover,
    /// Left to the slow path.
    Slow,
}

struct Proximity {
    /// Merged IPv4 ranges: first address and order id, sorted; each range
    /// ends where the next begins.
    v4: Vec<(u32, u32)>,
    /// Merged IPv6 ranges, likewise.
    v6: Vec<(u128, u32)>,
    /// Region orders (over the name's regions) by id.
    orders: Vec<Vec<RegionId>>,
    /// For network overrides: the distance order id of each location (by
    /// location index; the last is "unknown"), and the orders by id.
    /// Empty when there are no network overrides (or too many pairs).
    distance_of_location: Vec<u32>,
    distance_orders: Vec<Vec<RegionId>>,
}

/// Decision tables of every geo name, for one serving state and database.
pub(crate) struct GeoMaps {
    names: Vec<GeoMap>,
}

impl GeoMaps {
    /// Builds the tables of every geo name of `state` over `db`.
    pub fn build(state: &ServingState, db: &Arc<GeoDb>) -> GeoMaps {
        let topology = &state.topology;
        // Names with the same candidate regions share one table.
        let mut built: HashMap<&[RegionId], Arc<Proximity>> = HashMap::new();
        let names = state
            .zones
            .zones
            .iter()
            .flat_map(|zone| &zone.geo)
            .map(|geo| match geo.policy {
                GeoPolicy::Failover => GeoMap::Failover,
                GeoPolicy::Weighted => GeoMap::Slow,
                GeoPolicy::Nearest | GeoPolicy::All => {
                    // The slow path widens scopes only with maps built from
                    // this very database; otherwise it would disagree.
                    let probe = IpAddr::from([0u8, 0, 0, 0]);
                    if state.scopes.widest(db, &geo.name, probe).is_none() {
                        GeoMap::Slow
                    } else {
                        let table = built
                            .entry(&geo.regions)
                            .or_insert_with(|| Arc::new(Proximity::build(topology, geo, db)));
                        GeoMap::Proximity(table.clone())
                    }
                }
            })
            .collect();
        GeoMaps { names }
    }
}

impl Proximity {
    fn build(topology: &Topology, geo: &GeoName, db: &GeoDb) -> Proximity {
        // As scope_map::ScopeMap::build: the order per location, interned.
        let mut ids: HashMap<Vec<RegionId>, u32> = HashMap::new();
        let mut orders = Vec::new();
        let mut intern = |place: Option<&Location>| -> u32 {
            let distance = distance_from(topology, place);
            let (_, order) = location_order(topology, &geo.regions, place, &distance);
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
        let mut proximity = Proximity {
            v4,
            v6,
            orders,
            distance_of_location: Vec::new(),
            distance_orders: Vec::new(),
        };
        let nets = topology.dns.overrides.nets.len();
        if nets > 0 {
            let mut ids: HashMap<Vec<RegionId>, u32> = HashMap::new();
            let mut distance_orders = Vec::new();
            let mut intern = |place: Option<&Location>| -> u32 {
                let order = by_distance(&geo.regions, &distance_from(topology, place));
                *ids.entry(order.clone()).or_insert_with(|| {
                    distance_orders.push(order);
                    distance_orders.len() as u32 - 1
                })
            };
            let mut of_location: Vec<u32> =
                db.locations().iter().map(|l| intern(Some(l))).collect();
            of_location.push(intern(None));
            if nets * distance_orders.len() <= MAX_NET_ORDERS {
                proximity.distance_of_location = of_location;
                proximity.distance_orders = distance_orders;
            }
        }
        proximity
    }

    /// The merged range holding `addr`: its first and last address, and
    /// its order id.
    fn range(&self, addr: IpAddr) -> Option<(IpAddr, IpAddr, u32)> {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let value = u32::from(v4);
                let index = self.v4.partition_point(|(first, _)| *first <= value);
                let (first, id) = *self.v4.get(index.checked_sub(1)?)?;
                let last = self.v4.get(index).map_or(u32::MAX, |next| next.0 - 1);
                Some((
                    IpAddr::from(first.to_be_bytes()),
                    IpAddr::from(last.to_be_bytes()),
                    id,
                ))
            }
            IpAddr::V6(v6) => {
                let value = u128::from(v6);
                let index = self.v6.partition_point(|(first, _)| *first <= value);
                let (first, id) = *self.v6.get(index.checked_sub(1)?)?;
                let last = self.v6.get(index).map_or(u128::MAX, |next| next.0 - 1);
                Some((
                    IpAddr::from(first.to_be_bytes()),
                    IpAddr::from(last.to_be_bytes()),
                    id,
                ))
            }
        }
    }
}

/// Candidates nearest first; equal distances keep the written order (as
/// `decide`'s own ordering does).
fn by_distance(regions: &[RegionId], distance: &impl Fn(RegionId) -> Option<f64>) -> Vec<RegionId> {
    let mut sorted: Vec<(f64, usize, RegionId)> = regions
        .iter()
        .enumerate()
        .map(|(index, id)| (distance(*id).unwrap_or(f64::INFINITY), index, *id))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    sorted.into_iter().map(|(_, _, id)| id).collect()
}

/// The reply a decision leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A template of [`GeoOutcomes::templates`].
    Geo(TemplateId),
    /// A template of the static tables (the zone's NODATA).
    Static(TemplateId),
    /// Left to the slow path.
    Slow,
}

/// What a decision gives, for one region order and health view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub reply: Reply,
    /// The first region chosen, for the metrics.
    pub region: Option<RegionId>,
    /// Whether the answer's scope is 0 whatever the client (no addresses,
    /// the `failover` policy, or an `all_down` fallback).
    pub scope_zero: bool,
}

const SLOW: Outcome = Outcome {
    reply: Reply::Slow,
    region: None,
    scope_zero: true,
};

#[derive(Default)]
struct FamilyOutcomes {
    by_order: Vec<Outcome>,
    /// `[net index][distance order id]`, flattened.
    by_net: Vec<Outcome>,
    /// For `failover`.
    fixed: Option<Outcome>,
}

/// Per health view: what every order of every geo name answers.
pub(crate) struct GeoOutcomes {
    /// Templates of geo answers.
    pub templates: TemplateStore,
    /// By geo name, then `[A, AAAA]`.
    names: Vec<[FamilyOutcomes; 2]>,
}

/// One geo decision for one client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decided {
    pub outcome: Outcome,
    /// The ECS scope the answer holds for (before capping by the source).
    pub scope: u8,
}

impl GeoOutcomes {
    /// Works out every order's outcome under `health`, building templates
    /// for the address lists chosen.
    pub fn build(
        state: &ServingState,
        statics: &Statics,
        maps: &GeoMaps,
        health: &RegionHealth,
    ) -> GeoOutcomes {
        let topology = &state.topology;
        let mut outcomes = GeoOutcomes {
            templates: TemplateStore::default(),
            names: Vec::with_capacity(maps.names.len()),
        };
        let geos = state.zones.zones.iter().flat_map(|zone| &zone.geo);
        for (geo, map) in geos.zip(&maps.names) {
            let mut families: [FamilyOutcomes; 2] = Default::default();
            for (slot, v6) in families.iter_mut().zip([false, true]) {
                let mut builder = OutcomeBuilder {
                    state,
                    statics,
                    geo,
                    v6,
                    health,
                    templates: &mut outcomes.templates,
                    by_addresses: HashMap::new(),
                };
                match map {
                    GeoMap::Slow => {}
                    GeoMap::Failover => {
                        let order = builder.candidates(&geo.regions);
                        slot.fixed = Some(builder.outcome(&order, true));
                    }
                    GeoMap::Proximity(proximity) => {
                        slot.by_order = proximity
                            .orders
                            .iter()
                            .map(|order| {
                                let order = builder.candidates(order);
                                builder.outcome(&order, false)
                            })
                            .collect();
                        if !proximity.distance_orders.is_empty() {
                            for (_, listed) in &topology.dns.overrides.nets {
                                for distance_order in &proximity.distance_orders {
                                    let order = with_override(
                                        &builder.candidates(listed),
                                        &builder.candidates(distance_order),
                                    );
                                    slot.by_net.push(builder.outcome(&order, false));
                                }
                            }
                        }
                    }
                }
            }
            outcomes.names.push(families);
        }
        outcomes
    }

    /// Decides geo name `geo` (`v6`: AAAA) for `client`.
    pub fn decide(
        &self,
        maps: &GeoMaps,
        topology: &Topology,
        db: &GeoDb,
        geo: usize,
        v6: bool,
        client: &Client,
    ) -> Decided {
        let slow = Decided {
            outcome: SLOW,
            scope: 0,
        };
        let (Some(map), Some(families)) = (maps.names.get(geo), self.names.get(geo)) else {
            return slow;
        };
        let family = &families[usize::from(v6)];
        let proximity = match map {
            GeoMap::Slow => return slow,
            GeoMap::Failover => {
                return Decided {
                    outcome: family.fixed.unwrap_or(SLOW),
                    scope: 0,
                };
            }
            GeoMap::Proximity(proximity) => proximity,
        };
        let nets = &topology.dns.overrides.nets;
        let network = client.network;
        let addr = network.addr();
        let (outcome, base) = match nets.iter().position(|(net, _)| net.contains(addr)) {
            Some(index) => {
                let orders = proximity.distance_orders.len();
                if orders == 0 {
                    return slow;
                }
                let location = db
                    .lookup(addr)
                    .location
                    .map_or(proximity.distance_of_location.len() - 1, |(id, _)| {
                        id.index()
                    });
                let Some(&order) = proximity.distance_of_location.get(location) else {
                    return slow;
                };
                let outcome = family
                    .by_net
                    .get(index * orders + order as usize)
                    .copied()
                    .unwrap_or(SLOW);
                (outcome, nets[index].0)
            }
            None => {
                let Some((first, last, order)) = proximity.range(addr) else {
                    return slow;
                };
                let Some(base) = Prefix::widest_within(addr.to_canonical(), first, last) else {
                    return slow;
                };
                let outcome = family.by_order.get(order as usize).copied().unwrap_or(SLOW);
                (outcome, base)
            }
        };
        Decided {
            outcome,
            scope: stable_scope(base, network, nets.iter().map(|(n, _)| *n)),
        }
    }
}

/// An override's regions first, in its order; the others follow in
/// `by_distance` order (as `decide`'s `with_override`).
fn with_override(listed: &[RegionId], by_distance: &[RegionId]) -> Vec<RegionId> {
    let mut order = listed.to_vec();
    order.extend(by_distance.iter().filter(|id| !listed.contains(id)));
    order
}

struct OutcomeBuilder<'a> {
    state: &'a ServingState,
    statics: &'a Statics,
    geo: &'a GeoName,
    v6: bool,
    health: &'a RegionHealth,
    templates: &'a mut TemplateStore,
    by_addresses: HashMap<Vec<IpAddr>, Reply>,
}

impl OutcomeBuilder<'_> {
    fn address(&self, id: RegionId) -> Option<IpAddr> {
        let vip = self.state.topology.region(id).vip;
        if self.v6 {
            vip.ipv6.map(IpAddr::V6)
        } else {
            vip.ipv4.map(IpAddr::V4)
        }
    }

    /// `order` restricted to the name's regions with an address of the
    /// family, in order.
    fn candidates(&self, order: &[RegionId]) -> Vec<RegionId> {
        order
            .iter()
            .copied()
            .filter(|id| self.geo.regions.contains(id) && self.address(*id).is_some())
            .collect()
    }

    /// What `decide` answers for preference `order` under the health view.
    fn outcome(&mut self, order: &[RegionId], failover: bool) -> Outcome {
        let wanted = match self.geo.policy {
            GeoPolicy::All => self.geo.max_answers,
            _ => 1,
        };
        let healthy: Vec<RegionId> = order
            .iter()
            .copied()
            .filter(|id| self.health.is_up(*id))
            .take(wanted)
            .collect();
        let mut scope_zero = failover;
        let mut addresses = Vec::new();
        let chosen = if !healthy.is_empty() || order.is_empty() {
            healthy
        } else {
            match &self.geo.all_down {
                AllDown::FailOpen => {
                    let not_held: Vec<RegionId> = order
                        .iter()
                        .copied()
                        .filter(|id| !self.health.is_held(*id))
                        .collect();
                    let pool = if not_held.is_empty() {
                        order
                    } else {
                        &not_held
                    };
                    pool.iter().copied().take(wanted).collect()
                }
                AllDown::FailClosed => {
                    scope_zero = true;
                    Vec::new()
                }
                AllDown::Fallback(fallback) => {
                    scope_zero = true;
                    addresses.extend(
                        fallback
                            .iter()
                            .copied()
                            .filter(|ip| ip.is_ipv6() == self.v6),
                    );
                    Vec::new()
                }
            }
        };
        addresses.extend(chosen.iter().filter_map(|id| self.address(*id)));
        let region = chosen.first().copied();
        if addresses.is_empty() {
            // No addresses: the zone's NODATA, which holds for everyone.
            let reply = match self.nodata() {
                Route::Template(id) => Reply::Static(id),
                _ => Reply::Slow,
            };
            return Outcome {
                reply,
                region,
                scope_zero: true,
            };
        }
        let reply = match self.by_addresses.get(&addresses) {
            Some(reply) => *reply,
            None => {
                let reply = self.template(&addresses);
                self.by_addresses.insert(addresses, reply);
                reply
            }
        };
        Outcome {
            reply,
            region,
            scope_zero,
        }
    }

    fn nodata(&self) -> Route {
        // Any type the name has no data for routes to the zone's NODATA.
        self.statics.route(self.geo.name.wire(), 65280)
    }

    fn template(&mut self, addresses: &[IpAddr]) -> Reply {
        let answer = GeoAnswer {
            addresses: addresses.to_vec(),
            ttl: self.geo.ttl,
            scope: 0,
        };
        let qtype = if self.v6 {
            RecordType::Aaaa
        } else {
            RecordType::A
        };
        let name: &DomainName = &self.geo.name;
        let Some(canonical) = canonical_reply(self.state, name, qtype.code(), Some(&answer)) else {
            return Reply::Slow;
        };
        if !canonical.asked_geo {
            return Reply::Slow;
        }
        match self
            .templates
            .add(&canonical.bytes, name.wire(), Use::Exact)
        {
            Ok(id) => Reply::Geo(id),
            Err(_) => Reply::Slow,
        }
    }
}
