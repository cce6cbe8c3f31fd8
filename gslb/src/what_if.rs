//! What-if: the answers that would change if regions were failed or
//! recovered, without changing anything. The current health view gets the
//! hypothetical overrides ([`RegionHealth::with_held`]), and every answer,
//! before and after, comes from the same decision the query path makes
//! ([`decide`]) — so the prediction cannot disagree with the server.
//!
//! Places are the GeoIP database's locations, each asked for with the first
//! network the database places there; clients named by the operator are
//! asked for exactly.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use admin::api::gslb as api;
use geo_data::Location;
use topology::{GeoName, RegionId, Topology};

use crate::client::Client;
use crate::decide::{AddressFamily, ClientLocation, decide};
use crate::health::{RegionHealth, RegionLoad};
use crate::state::ServingState;

/// A hypothetical change: regions taken out as `gtm fail` does (held, as
/// a drain), and regions back in service as `gtm recover` brings them
/// (no override, probes passing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scenario {
    /// Regions to take out.
    pub fail: Vec<RegionId>,
    /// Regions to bring back.
    pub recover: Vec<RegionId>,
}

impl Scenario {
    /// The health view after the change.
    pub fn apply(&self, health: &RegionHealth) -> RegionHealth {
        let mut after = health.clone();
        for &region in &self.recover {
            after = after.with_held(region, false, true);
        }
        for &region in &self.fail {
            // The verdict does not matter to a held region.
            after = after.with_held(region, true, false);
        }
        after
    }
}

/// What a scenario changes: per geo name the places whose answer moves,
/// what each client asked for gets, and the regions receiving clients.
pub struct Prediction {
    /// Per geo name, the places whose answer changes.
    pub names: Vec<api::NameChanges>,
    /// Per client and geo name, its answer before and after.
    pub clients: Vec<api::ClientMove>,
    /// The regions that would take clients they do not answer now.
    pub receivers: Vec<api::Receiver>,
}

/// The answers of every geo name of `state` that `scenario` would change,
/// per place, what each of `clients` gets before and after, and whether
/// the regions receiving clients have capacity headroom.
pub fn what_if(
    state: &ServingState,
    health: &RegionHealth,
    scenario: &Scenario,
    clients: &[IpAddr],
) -> Prediction {
    let topology = &state.topology;
    let after = scenario.apply(health);
    let db = state.geoip.current();
    // One network per location (and one where the database knows none).
    let mut first_of: HashMap<Option<usize>, IpAddr> = HashMap::new();
    for range in db.ranges() {
        first_of
            .entry(range.location.map(|l| l.index()))
            .or_insert(range.first);
    }
    let mut places: Vec<(Option<usize>, IpAddr)> = first_of.into_iter().collect();
    places.sort();
    let geos: Vec<&GeoName> = state
        .zones
        .zones
        .iter()
        .flat_map(|zone| &zone.geo)
        .collect();

    let mut names = Vec::new();
    for geo in &geos {
        // Per (continent, country): how many locations, and the moves.
        let mut per_country: BTreeMap<(String, String), (usize, BTreeMap<Move, usize>)> =
            BTreeMap::new();
        for &(index, address) in &places {
            let location = index.map(|i| &db.locations()[i]);
            let Ok(client) = Client::new(address, None) else {
                continue;
            };
            let located = ClientLocation {
                client: &client,
                network: client.network,
                location,
            };
            let moved = regions_moved(topology, geo, &located, health, &after);
            let entry = per_country.entry(place_of(location)).or_default();
            entry.0 += 1;
            if let Some(moved) = moved {
                *entry.1.entry(moved).or_default() += 1;
            }
        }
        let places = per_country
            .into_iter()
            .flat_map(|((continent, country), (total, moves))| {
                moves
                    .into_iter()
                    .map(move |(moved, networks)| api::PlaceChange {
                        continent: continent.clone(),
                        country: country.clone(),
                        before: moved.0,
                        after: moved.1,
                        locations: networks,
                        of_locations: total,
                    })
            })
            .collect();
        names.push(api::NameChanges {
            name: geo.name.to_string(),
            places,
        });
    }

    let mut moves = Vec::new();
    for &ip in clients {
        let Ok(client) = Client::new(ip, None) else {
            continue;
        };
        let lookup = db.lookup(client.network.addr());
        let located = ClientLocation {
            client: &client,
            network: lookup.network,
            location: lookup.location.map(|(_, location)| location),
        };
        let (continent, country) = place_of(located.location);
        for geo in &geos {
            let family = family_of(topology, geo);
            let now = decide(topology, geo, family, &located, health);
            let then = decide(topology, geo, family, &located, &after);
            moves.push(api::ClientMove {
                client: ip.to_string(),
                continent: continent.clone(),
                country: country.clone(),
                name: geo.name.to_string(),
                changed: now.addresses != then.addresses,
                before: names_of(topology, &now.chosen),
                before_addresses: now.addresses.iter().map(ToString::to_string).collect(),
                after: names_of(topology, &then.chosen),
                after_addresses: then.addresses.iter().map(ToString::to_string).collect(),
            });
        }
    }
    // Who would receive clients from whom, by region name.
    let mut flows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let moved = names
        .iter()
        .flat_map(|n| n.places.iter().map(|p| (&p.before, &p.after)))
        .chain(
            moves
                .iter()
                .filter(|m| m.changed)
                .map(|m| (&m.before, &m.after)),
        );
    for (before, after) in moved {
        for to in after.iter().filter(|r| !before.contains(r)) {
            let from = flows.entry(to.clone()).or_default();
            for region in before {
                if !from.contains(region) {
                    from.push(region.clone());
                }
            }
        }
    }
    let receivers = flows
        .into_iter()
        .filter_map(|(to, from)| {
            let id = topology.region_by_name(&to)?;
            let from: Vec<RegionId> = from
                .iter()
                .filter_map(|name| topology.region_by_name(name))
                .collect();
            Some(receiver(topology, health, id, &from))
        })
        .collect();
    Prediction {
        names,
        clients: moves,
        receivers,
    }
}

/// Region `id`'s headroom under `health`, with the load of the regions
/// `from` that it would take clients from.
fn receiver(
    topology: &Topology,
    health: &RegionHealth,
    id: RegionId,
    from: &[RegionId],
) -> api::Receiver {
    let capacity = topology.region(id).capacity;
    let load = health.load(id);
    let measured = match load {
        RegionLoad::Measured(load) => Some(load),
        _ => None,
    };
    let incoming = from
        .iter()
        .map(|region| match health.load(*region) {
            RegionLoad::Measured(l) if Some(l.unit) == capacity.map(|c| c.unit) => Some(l.current),
            _ => None,
        })
        .sum::<Option<u64>>()
        .filter(|_| !from.is_empty());
    api::Receiver {
        region: topology.region(id).name.clone(),
        headroom: match load {
            RegionLoad::Unbounded => "unbounded",
            RegionLoad::Unknown => "unknown",
            RegionLoad::Measured(load) if load.is_full() => "full",
            RegionLoad::Measured(_) => "room",
        }
        .to_owned(),
        unit: capacity.map(|c| c.unit.as_str().to_owned()),
        load: measured.map(|l| l.current),
        target: measured.map(|l| l.target),
        incoming,
    }
}

/// Regions answered before and after, by name.
type Move = (Vec<String>, Vec<String>);

/// Where the answer for the client at `located` moves, if it does.
fn regions_moved(
    topology: &Topology,
    geo: &GeoName,
    located: &ClientLocation<'_>,
    before: &RegionHealth,
    after: &RegionHealth,
) -> Option<Move> {
    let family = family_of(topology, geo);
    let now = decide(topology, geo, family, located, before);
    let then = decide(topology, geo, family, located, after);
    (now.addresses != then.addresses).then(|| {
        (
            names_of(topology, &now.chosen),
            names_of(topology, &then.chosen),
        )
    })
}

/// A records, unless no candidate region has an IPv4 VIP.
fn family_of(topology: &Topology, geo: &GeoName) -> AddressFamily {
    if geo
        .regions
        .iter()
        .any(|id| topology.region(*id).vip.ipv4.is_some())
    {
        AddressFamily::V4
    } else {
        AddressFamily::V6
    }
}

/// Continent and country codes, `-` where unknown.
fn place_of(location: Option<&Location>) -> (String, String) {
    let continent = location
        .and_then(|l| l.continent)
        .map_or_else(|| "-".to_owned(), |c| c.to_string());
    let country = location
        .and_then(|l| l.country)
        .map_or_else(|| "-".to_owned(), |c| c.to_string());
    (continent, country)
}

fn names_of(topology: &Topology, regions: &[RegionId]) -> Vec<String> {
    regions
        .iter()
        .map(|id| topology.region(*id).name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use geo_data::{GeoDb, WatchedGeoDb};

    use super::*;

    const TOPOLOGY: &str = r#"
dns:
  nodes: [{ name: ns1, listen: ["127.0.0.1:5353"] }]
  zones:
    - origin: example.com.
      soa: { mname: ns1, rname: hostmaster }
      records:
        - { name: "@", type: NS, value: ns1 }
        - { name: ns1, type: A, value: 127.0.0.1 }
      geo:
        - { name: www, regions: [us-east, eu-west, ap-south] }
        - { name: api, policy: failover, regions: [eu-west, us-east] }
regions:
  us-east:  { location: { lat: 39.04, lon: -77.49 }, vip: { ipv4: 127.0.1.1 } }
  eu-west:  { location: { lat: 53.35, lon: -6.26 },  vip: { ipv4: 127.0.2.1 } }
  ap-south: { location: { lat: 19.08, lon: 72.88 },  vip: { ipv4: 127.0.3.1 } }
"#;

    fn state() -> ServingState {
        let topology = Arc::new(topology::parse(TOPOLOGY, "what-if").unwrap());
        ServingState::new(
            topology,
            Arc::new(WatchedGeoDb::fixed(GeoDb::embedded())),
            None,
        )
        .unwrap()
    }

    fn id(state: &ServingState, name: &str) -> RegionId {
        state.topology.region_by_name(name).unwrap()
    }

    #[test]
    fn failing_a_region_moves_its_clients_and_only_them() {
        let state = state();
        let health = RegionHealth::all_up(3);
        let scenario = Scenario {
            fail: vec![id(&state, "us-east")],
            recover: vec![],
        };
        let clients = ["8.8.8.8", "81.2.69.160"].map(|c| c.parse().unwrap());
        let Prediction {
            names,
            clients: moves,
            receivers,
        } = what_if(&state, &health, &scenario, &clients);
        // No capacity declared: the regions taking them are unbounded.
        assert!(
            receivers.iter().any(|r| r.region == "eu-west"),
            "{receivers:?}"
        );
        assert!(
            receivers
                .iter()
                .all(|r| r.headroom == "unbounded" && r.region != "us-east"),
            "{receivers:?}"
        );
        let www = &names[0];
        assert_eq!(www.name, "www.example.com.");
        let us = www
            .places
            .iter()
            .find(|p| p.country == "US")
            .expect("the US moves");
        assert_eq!(us.continent, "NA");
        assert_eq!(
            (us.before.as_slice(), us.after.as_slice()),
            (&["us-east".to_owned()][..], &["eu-west".to_owned()][..])
        );
        assert!(
            www.places.iter().all(|p| p.before == ["us-east"]),
            "only us-east's clients move: {:?}",
            www.places
        );
        assert!(!www.places.iter().any(|p| p.country == "GB"));
        // The failover name answers eu-west first: nothing moves.
        assert!(names[1].places.is_empty());

        let client = |ip: &str, name: &str| {
            moves
                .iter()
                .find(|m| m.client == ip && m.name == name)
                .unwrap()
        };
        let us = client("8.8.8.8", "www.example.com.");
        assert!(us.changed);
        assert_eq!(us.before_addresses, ["127.0.1.1"]);
        assert_eq!(us.after, ["eu-west"]);
        assert_eq!(us.after_addresses, ["127.0.2.1"]);
        assert!(!client("81.2.69.160", "www.example.com.").changed);
    }

    #[test]
    fn recovering_brings_a_region_back_whatever_took_it_out() {
        let state = state();
        let (us_east, eu_west) = (id(&state, "us-east"), id(&state, "eu-west"));
        // us-east is held by an operator; eu-west's probes say down.
        let health = RegionHealth::all_up(3)
            .with_held(us_east, true, true)
            .with_held(eu_west, false, false);
        let back = |region| Scenario {
            fail: vec![],
            recover: vec![region],
        };
        let clients = ["8.8.8.8".parse().unwrap()];
        let moves = what_if(&state, &health, &back(us_east), &clients).clients;
        assert_eq!(moves[0].before, ["ap-south"]);
        assert_eq!(moves[0].after, ["us-east"]);
        let Prediction {
            names,
            clients: moves,
            ..
        } = what_if(&state, &health, &back(eu_west), &clients);
        assert_eq!(
            moves[0].after,
            ["eu-west"],
            "us-east still held: eu-west is the US client's nearest"
        );
        let gb = names[0]
            .places
            .iter()
            .find(|p| p.country == "GB")
            .expect("Britain returns to eu-west");
        assert_eq!(gb.after, ["eu-west"]);
        // The failover name had every candidate out and failed open to
        // eu-west, the one not held: it already answers it.
        assert!(names[1].places.is_empty(), "{:?}", names[1]);
    }

    #[test]
    fn a_dry_run_says_whether_the_receiving_regions_have_room() {
        use crate::health::Load;
        use topology::LoadUnit;
        let state = state();
        let measured = |current, target| {
            RegionLoad::Measured(Load {
                unit: LoadUnit::RequestsPerSecond,
                current,
                target,
                share: 0,
            })
        };
        let text = TOPOLOGY.replace(
            "vip: { ipv4: 127.0.1.1 } }",
            "vip: { ipv4: 127.0.1.1 }, capacity: { requests_per_second: 1500 }, l7: { nodes: [{ name: l7-1, address: 127.0.1.11, admin: \"127.0.1.11:9100\" }], routes: [{ pool: web }], pools: { web: { servers: [{ addr: \"127.0.1.101:9000\" }] } } } }",
        );
        let text = text.replace(
            "vip: { ipv4: 127.0.2.1 } }",
            "vip: { ipv4: 127.0.2.1 }, capacity: { requests_per_second: 1000 }, l7: { nodes: [{ name: l7-2, address: 127.0.2.11, admin: \"127.0.2.11:9100\" }], routes: [{ pool: web }], pools: { web: { servers: [{ addr: \"127.0.2.101:9000\" }] } } } }",
        );
        let topology = Arc::new(topology::parse(&text, "what-if").unwrap());
        let state = ServingState::new(topology, state.geoip.clone(), None).unwrap();
        let fail_us = Scenario {
            fail: vec![id(&state, "us-east")],
            recover: vec![],
        };
        let eu_west = |health: &RegionHealth| {
            what_if(&state, health, &fail_us, &[])
                .receivers
                .into_iter()
                .find(|r| r.region == "eu-west")
                .expect("eu-west receives us-east's clients")
        };
        let room = RegionHealth::all_up(3).with_load(vec![
            measured(1200, 1200),
            measured(300, 800),
            RegionLoad::Unbounded,
        ]);
        let receiver = eu_west(&room);
        assert_eq!(receiver.headroom, "room");
        assert_eq!(
            (receiver.load, receiver.target, receiver.incoming),
            (Some(300), Some(800), Some(1200))
        );
        assert_eq!(receiver.unit.as_deref(), Some("requests_per_second"));
        let full = RegionHealth::all_up(3).with_load(vec![
            measured(1200, 1200),
            measured(800, 800),
            RegionLoad::Unbounded,
        ]);
        assert_eq!(eu_west(&full).headroom, "full");
        let unknown = RegionHealth::all_up(3).with_load(vec![
            RegionLoad::Unknown,
            RegionLoad::Unknown,
            RegionLoad::Unbounded,
        ]);
        let receiver = eu_west(&unknown);
        assert_eq!(
            (receiver.headroom.as_str(), receiver.incoming),
            ("unknown", None)
        );
    }
}
