//! The geo half of the fast path's tables: an allocation-free decision
//! table per geo name that gives, for any client network, the same answer
//! and ECS scope as [`crate::decide`].
//!
//! For `nearest` and `all`, the table is the serving state's own
//! [`ScopeMap`] — the GeoIP ranges merged wherever the location-derived
//! region order is the same, each with the id of its order — so a merged
//! range is also the ECS scope base. Network overrides are checked first
//! ([`crate::decide`]'s rule) and ordered by distance from the client's
//! location. `failover` needs no table. Per health view, each order is
//! turned into an [`Outcome`]: a template of the addresses chosen (or the
//! zone's NODATA) and whether the scope collapses to 0. `weighted`, and
//! orders whose first region in service spills clients
//! ([`crate::spill`]), are left to the slow path.
//!
//! [`GeoMaps`] depend on the serving state and the GeoIP database;
//! [`GeoOutcomes`] on those and the health view, and are rebuilt when it
//! changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use geo_data::{GeoDb, Location, Prefix};
use topology::{DomainName, GeoName, GeoPolicy, RecordType, RegionId, Topology};

use super::names::{Route, Statics};
use super::template::{TemplateId, TemplateStore, Use};
use crate::client::Client;
use crate::decide::{
    by_distance, choose, distance_from, net_override, override_order, stable_scope,
};
use crate::dns::canonical_reply;
use crate::health::RegionHealth;
use crate::resolve::GeoAnswer;
use crate::scope_map::ScopeMap;
use crate::spill::spilling;
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
    /// The merged ranges and their region orders, shared with the slow
    /// path's ECS scopes.
    scopes: Arc<ScopeMap>,
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
                // The slow path widens scopes only with maps built from
                // this very database; otherwise it would disagree.
                GeoPolicy::Nearest | GeoPolicy::All => match state.scopes.map(db, &geo.name) {
                    None => GeoMap::Slow,
                    Some(scopes) => {
                        let table = built.entry(&geo.regions).or_insert_with(|| {
                            Arc::new(Proximity::build(topology, geo, db, scopes.clone()))
                        });
                        GeoMap::Proximity(table.clone())
                    }
                },
            })
            .collect();
        GeoMaps { names }
    }
}

impl Proximity {
    fn build(topology: &Topology, geo: &GeoName, db: &GeoDb, scopes: Arc<ScopeMap>) -> Proximity {
        let mut proximity = Proximity {
            scopes,
            distance_of_location: Vec::new(),
            distance_orders: Vec::new(),
        };
        let nets = topology.dns.overrides.nets.len();
        if nets > 0 {
            let mut ids: HashMap<Vec<RegionId>, u32> = HashMap::new();
            let mut distance_orders = Vec::new();
            let mut intern = |place: Option<&Location>| -> u32 {
                let distance = distance_from(topology, place);
                let order: Vec<RegionId> = by_distance(&geo.regions, &distance).collect();
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
    /// What each template of [`GeoOutcomes::templates`] answers, in the
    /// order they were made: for signing them ([`super::signed`]).
    pub answers: Vec<GeoTemplate>,
    /// By geo name, then `[A, AAAA]`.
    names: Vec<[FamilyOutcomes; 2]>,
}

/// The question and answer a geo template was made from.
pub(crate) struct GeoTemplate {
    pub id: TemplateId,
    pub name: DomainName,
    pub qtype: RecordType,
    pub answer: GeoAnswer,
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
            answers: Vec::new(),
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
                    answers: &mut outcomes.answers,
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
                            .scopes
                            .orders()
                            .iter()
                            .map(|order| {
                                let order = builder.candidates(order);
                                builder.outcome(&order, false)
                            })
                            .collect();
                        if !proximity.distance_orders.is_empty() {
                            for (_, listed) in &topology.dns.overrides.nets {
                                for distance_order in &proximity.distance_orders {
                                    let nearest_first = builder.candidates(distance_order);
                                    let order = override_order(
                                        &builder.candidates(listed),
                                        &nearest_first,
                                        nearest_first.iter().copied(),
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
        let (outcome, base) = match net_override(topology, addr) {
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
                let Some((first, last, order)) = proximity.scopes.range(addr) else {
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

struct OutcomeBuilder<'a> {
    state: &'a ServingState,
    statics: &'a Statics,
    geo: &'a GeoName,
    v6: bool,
    health: &'a RegionHealth,
    templates: &'a mut TemplateStore,
    answers: &'a mut Vec<GeoTemplate>,
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
        // Whom a spilling region's clients get depends on each client's
        // /24 (/56): the full decision works it out.
        if spilling(order, self.health).is_some() {
            return SLOW;
        }
        let choice = choose(self.geo, order, self.health);
        let scope_zero = failover || choice.for_everyone();
        let mut addresses: Vec<IpAddr> = choice
            .fallback()
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv6() == self.v6)
            .collect();
        let chosen = choice.regions;
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
            https: Vec::new(),
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
            Ok(id) => {
                self.answers.push(GeoTemplate {
                    id,
                    name: name.clone(),
                    qtype,
                    answer,
                });
                Reply::Geo(id)
            }
            Err(_) => Reply::Slow,
        }
    }
}
