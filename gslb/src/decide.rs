//! The geo decision: which regions answer a geo name for one client.
//!
//! A pure function of the client's location, the query, the health view
//! and the configuration — no I/O, no clock, no randomness — so every
//! replica and every version gives the same client the same answer, and
//! the reason it gives can be trusted.

use std::fmt;
use std::net::IpAddr;

use geo_data::{Coordinates, Location, Prefix};
use siphasher::sip::SipHasher13;
use topology::{AllDown, GeoName, GeoPolicy, RegionId, Topology};

use crate::client::Client;
use crate::health::RegionHealth;
use crate::spill::{self, Spill};

/// Mean Earth radius (IUGG), for great-circle distances.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Key of the named hash behind the `weighted` policy: SipHash-1-3 keyed
/// with these 16 bytes. Changing it would move clients between regions.
pub const WEIGHTED_HASH_KEY: &[u8; 16] = b"gslb/weighted/v1";

/// A or AAAA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4, for A queries.
    V4,
    /// IPv6, for AAAA queries.
    V6,
}

/// Where the client is, as the GeoIP database sees it.
#[derive(Clone, Copy, Debug)]
pub struct ClientLocation<'a> {
    /// The client's truncated network (what was looked up).
    pub client: &'a Client,
    /// The widest network around the client over which the location gives
    /// the same region order (at least the database's own network).
    pub network: Prefix,
    /// The location, if the database knows one.
    pub location: Option<&'a Location>,
}

/// What decided the preference order.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// A `dns.overrides.nets` entry matched.
    NetOverride(Prefix),
    /// A `dns.overrides.countries` entry matched.
    CountryOverride(String),
    /// A `dns.overrides.continents` entry matched.
    ContinentOverride(String),
    /// Great-circle distance from the client's coordinates.
    Nearest,
    /// The location is unknown: `dns.default_order`.
    DefaultOrder,
    /// The `failover` policy's written order.
    Failover,
    /// The `weighted` policy's rendezvous hash of the client network.
    Weighted,
}

/// One candidate region as the decision saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// The region.
    pub region: RegionId,
    /// Distance from the client, when its coordinates are known.
    pub distance_km: Option<f64>,
    /// Whether the health view had it in service.
    pub healthy: bool,
}

/// The answer for one client, with its explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Addresses to answer, in order (empty: NODATA).
    pub addresses: Vec<IpAddr>,
    /// Regions those addresses belong to.
    pub chosen: Vec<RegionId>,
    /// Answer TTL.
    pub ttl: u32,
    /// Prefix length around the client over which this decision holds
    /// (before capping by the ECS source prefix).
    pub scope: u8,
    /// What ordered the candidates.
    pub rule: Rule,
    /// Candidates with an address of the asked family, in preference order.
    pub ranked: Vec<Ranked>,
    /// Set when no candidate was healthy and `all_down` applied.
    pub all_down: Option<AllDown>,
    /// Set when the first region was over its target and this client was
    /// among the share it spills ([`spill::redirect`]).
    pub spill: Option<Spill>,
}

/// Decides the `family` answer for `geo` for the client at `located`.
pub fn decide(
    topology: &Topology,
    geo: &GeoName,
    family: AddressFamily,
    located: &ClientLocation<'_>,
    health: &RegionHealth,
) -> Decision {
    let address_of = |id: RegionId| -> Option<IpAddr> {
        let vip = topology.region(id).vip;
        match family {
            AddressFamily::V4 => vip.ipv4.map(IpAddr::V4),
            AddressFamily::V6 => vip.ipv6.map(IpAddr::V6),
        }
    };
    let candidates: Vec<RegionId> = geo
        .regions
        .iter()
        .copied()
        .filter(|id| address_of(*id).is_some())
        .collect();
    let distance = distance_from(topology, located.location);

    let (rule, order, scope) = match geo.policy {
        GeoPolicy::Failover => (Rule::Failover, candidates.clone(), 0),
        GeoPolicy::Weighted => {
            let order = rendezvous_order(topology, geo, &candidates, located.client.network);
            (Rule::Weighted, order, located.client.network.len())
        }
        GeoPolicy::Nearest | GeoPolicy::All => {
            proximity_order(topology, &candidates, located, &distance)
        }
    };
    let ranked: Vec<Ranked> = order
        .iter()
        .map(|&region| Ranked {
            region,
            distance_km: distance(region),
            healthy: health.is_up(region),
        })
        .collect();
    // Capacity-aware spill-over: a stable share of a region's clients go
    // to the next region with room while it runs over its target.
    let redirected = spill::redirect(&order, health, located.client.network);
    let scope = redirected.scope.map_or(scope, |spill| scope.max(spill));
    let choice = choose(geo, &redirected.order, health);
    let mut decision = Decision {
        addresses: choice
            .fallback()
            .iter()
            .copied()
            .filter(|ip| {
                matches!(
                    (family, ip),
                    (AddressFamily::V4, IpAddr::V4(_)) | (AddressFamily::V6, IpAddr::V6(_))
                )
            })
            .collect(),
        chosen: Vec::new(),
        ttl: geo.ttl,
        scope: if choice.for_everyone() { 0 } else { scope },
        rule,
        ranked,
        all_down: choice.all_down.cloned(),
        spill: redirected.spill,
    };
    let chosen = choice.regions;
    decision
        .addresses
        .extend(chosen.iter().filter_map(|id| address_of(*id)));
    decision.chosen = chosen;
    decision
}

/// The regions a geo name answers, picked from its preference `order`
/// under `health`: the first healthy ones (one; up to `max_answers` for
/// `all`), or, when none is healthy, what the name's `all_down` policy
/// says. Both the full path ([`decide`]) and the fast path's tables pick
/// by this one rule.
pub fn choose<'g>(geo: &'g GeoName, order: &[RegionId], health: &RegionHealth) -> Choice<'g> {
    let wanted = match geo.policy {
        GeoPolicy::All => geo.max_answers,
        _ => 1,
    };
    let healthy: Vec<RegionId> = order
        .iter()
        .copied()
        .filter(|id| health.is_up(*id))
        .take(wanted)
        .collect();
    if !healthy.is_empty() || order.is_empty() {
        return Choice {
            regions: healthy,
            all_down: None,
        };
    }
    // Failing open ignores probe verdicts but honours operator overrides
    // while any candidate is not held; so does failing static.
    let not_held: Vec<RegionId> = order
        .iter()
        .copied()
        .filter(|id| !health.is_held(*id))
        .collect();
    let pool = if not_held.is_empty() {
        order
    } else {
        &not_held
    };
    let regions = match &geo.all_down {
        AllDown::FailOpen => pool.iter().copied().take(wanted).collect(),
        AllDown::LastKnownGood => {
            // The candidates that went out last went out together: they
            // were the ones in service just before, so answering the first
            // of them in this client's order is the answer it had then.
            // With no memory (all 0) every candidate qualifies: fail open.
            let last = pool.iter().map(|id| health.went_out(*id)).max();
            pool.iter()
                .copied()
                .filter(|id| Some(health.went_out(*id)) == last)
                .take(wanted)
                .collect()
        }
        AllDown::FailClosed | AllDown::Fallback(_) => Vec::new(),
    };
    Choice {
        regions,
        all_down: Some(&geo.all_down),
    }
}

/// What [`choose`] picked.
#[derive(Debug, PartialEq)]
pub struct Choice<'g> {
    /// The regions answered, in order.
    pub regions: Vec<RegionId>,
    /// The policy applied because no candidate region was healthy.
    pub all_down: Option<&'g AllDown>,
}

impl Choice<'_> {
    /// The fixed addresses a `fallback` policy answers, of both families.
    pub fn fallback(&self) -> &[IpAddr] {
        match self.all_down {
            Some(AllDown::Fallback(addresses)) => addresses,
            _ => &[],
        }
    }

    /// Whether the answer holds for every client (ECS scope 0): an
    /// all-down policy that names no region.
    pub fn for_everyone(&self) -> bool {
        matches!(
            self.all_down,
            Some(AllDown::FailClosed | AllDown::Fallback(_))
        )
    }
}

/// The order for `nearest` and `all`: a network override if one matches,
/// else what the location gives ([`location_order`]); with the prefix it
/// holds over.
fn proximity_order(
    topology: &Topology,
    candidates: &[RegionId],
    located: &ClientLocation<'_>,
    distance: &impl Fn(RegionId) -> Option<f64>,
) -> (Rule, Vec<RegionId>, u8) {
    let overrides = &topology.dns.overrides;
    let client = located.client.network;
    let matched_net = net_override(topology, client.addr()).map(|index| &overrides.nets[index]);
    let (rule, order, base) = match matched_net {
        Some((net, listed)) => (
            Rule::NetOverride(*net),
            with_override(listed, candidates, distance),
            *net,
        ),
        None => {
            let (rule, order) = location_order(topology, candidates, located.location, distance);
            (rule, order, located.network)
        }
    };
    (
        rule,
        order,
        stable_scope(base, client, overrides.nets.iter().map(|(n, _)| *n)),
    )
}

/// The preference order a location alone gives, before network overrides:
/// a country override, a continent override, distance from its
/// coordinates, or the default order when it has none. The same location
/// always gives the same order, which is what lets
/// [`crate::scope_map`] merge address ranges into wide ECS scopes.
pub fn location_order(
    topology: &Topology,
    candidates: &[RegionId],
    location: Option<&Location>,
    distance: &impl Fn(RegionId) -> Option<f64>,
) -> (Rule, Vec<RegionId>) {
    let overrides = &topology.dns.overrides;
    if let Some((country, listed)) = location
        .and_then(|l| l.country)
        .and_then(|c| overrides.countries.iter().find(|(code, _)| *code == c))
    {
        return (
            Rule::CountryOverride(country.to_string()),
            with_override(listed, candidates, distance),
        );
    }
    if let Some((continent, listed)) = location
        .and_then(|l| l.continent)
        .and_then(|c| overrides.continents.iter().find(|(code, _)| *code == c))
    {
        return (
            Rule::ContinentOverride(continent.to_string()),
            with_override(listed, candidates, distance),
        );
    }
    if location.and_then(|l| l.coordinates).is_some() {
        return (Rule::Nearest, by_distance(candidates, distance).collect());
    }
    let default = &topology.dns.default_order;
    let mut order: Vec<RegionId> = default
        .iter()
        .copied()
        .filter(|id| candidates.contains(id))
        .collect();
    order.extend(
        candidates
            .iter()
            .copied()
            .filter(|id| !default.contains(id)),
    );
    (Rule::DefaultOrder, order)
}

/// The index of the network override (`dns.overrides.nets`) that holds
/// `addr`, if any: the first listed wins.
pub(crate) fn net_override(topology: &Topology, addr: IpAddr) -> Option<usize> {
    topology
        .dns
        .overrides
        .nets
        .iter()
        .position(|(net, _)| net.contains(addr))
}

/// An override's regions first, in its order; the other candidates follow
/// by distance, so an override never leaves a name unanswerable.
fn with_override(
    listed: &[RegionId],
    candidates: &[RegionId],
    distance: &impl Fn(RegionId) -> Option<f64>,
) -> Vec<RegionId> {
    override_order(listed, candidates, by_distance(candidates, distance))
}

/// The override rule: the `listed` regions that are `candidates` first,
/// in the override's order; then the rest of `nearest_first` (the
/// candidates, nearest first).
pub(crate) fn override_order(
    listed: &[RegionId],
    candidates: &[RegionId],
    nearest_first: impl Iterator<Item = RegionId>,
) -> Vec<RegionId> {
    let mut order: Vec<RegionId> = listed
        .iter()
        .copied()
        .filter(|id| candidates.contains(id))
        .collect();
    order.extend(nearest_first.filter(|id| !listed.contains(id)));
    order
}

/// Candidates nearest first; equal distances keep the written order.
pub(crate) fn by_distance<'a>(
    candidates: &'a [RegionId],
    distance: &impl Fn(RegionId) -> Option<f64>,
) -> impl Iterator<Item = RegionId> + 'a {
    let mut sorted: Vec<(f64, usize, RegionId)> = candidates
        .iter()
        .enumerate()
        .map(|(index, id)| (distance(*id).unwrap_or(f64::INFINITY), index, *id))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    sorted.into_iter().map(|(_, _, id)| id)
}

/// The widest prefix around `client`, within `base`, over which the
/// decision stays the same: narrowed so that no override network that
/// excludes the client lies inside it, and never wider than the client's
/// truncated network is precise. Allocation-free: the fast path uses it
/// too.
pub(crate) fn stable_scope(base: Prefix, client: Prefix, nets: impl Iterator<Item = Prefix>) -> u8 {
    let mut len = base.len();
    for net in nets {
        if net.family() != client.family() || net.contains(client.addr()) {
            continue;
        }
        let Ok(current) = Prefix::new(client.addr(), len) else {
            continue;
        };
        if net.len() > len && current.contains(net.addr()) {
            len = common_prefix_len(client.addr(), net.addr()) + 1;
        }
    }
    len.min(client.len())
}

/// Number of leading bits two same-family addresses share.
fn common_prefix_len(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros() as u8,
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros() as u8,
        _ => 0,
    }
}

/// Weighted rendezvous hashing (HRW) of the client network over the
/// candidates: each region scores `-ln(u) / weight` with `u` drawn from
/// the named hash of (network, region name); lowest first. Removing a
/// region moves only the clients it had.
fn rendezvous_order(
    topology: &Topology,
    geo: &GeoName,
    candidates: &[RegionId],
    network: Prefix,
) -> Vec<RegionId> {
    let mut key = Vec::with_capacity(17);
    match network.addr() {
        IpAddr::V4(v4) => key.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => key.extend_from_slice(&v6.octets()),
    }
    key.push(network.len());
    let mut scored: Vec<(f64, RegionId)> = candidates
        .iter()
        .map(|&id| {
            let weight = geo
                .regions
                .iter()
                .position(|r| *r == id)
                .map_or(1, |i| geo.weights[i]);
            let hash = weighted_hash(&key, topology.region(id).name.as_bytes());
            // Map to (0, 1]: never 0, so the logarithm is finite.
            let unit = ((hash >> 11) + 1) as f64 / (1u64 << 53) as f64;
            (-unit.ln() / f64::from(weight), id)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, id)| id).collect()
}

/// SipHash-1-3 keyed with [`WEIGHTED_HASH_KEY`] over `network ‖ region`.
pub fn weighted_hash(network: &[u8], region: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = SipHasher13::new_with_key(WEIGHTED_HASH_KEY);
    hasher.write(network);
    hasher.write(region);
    hasher.finish()
}

/// Distance from `location` (when it has coordinates) to each region.
pub fn distance_from<'a>(
    topology: &'a Topology,
    location: Option<&Location>,
) -> impl Fn(RegionId) -> Option<f64> + 'a {
    let coordinates = location.and_then(|l| l.coordinates);
    move |id| coordinates.map(|c| great_circle_km(c, topology.region(id).location))
}

/// Great-circle distance by the haversine formula.
pub fn great_circle_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NetOverride(net) => write!(f, "network override {net}"),
            Rule::CountryOverride(c) => write!(f, "country override {c}"),
            Rule::ContinentOverride(c) => write!(f, "continent override {c}"),
            Rule::Nearest => f.write_str("nearest region by great-circle distance"),
            Rule::DefaultOrder => f.write_str("location unknown: default region order"),
            Rule::Failover => f.write_str("failover order"),
            Rule::Weighted => f.write_str("weighted rendezvous hash of the client network"),
        }
    }
}

#[cfg(test)]
mod tests;
