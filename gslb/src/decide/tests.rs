//! Table-driven and property tests of the geo decision.

use std::net::IpAddr;

use geo_data::{Continent, Coordinates, CountryCode, Location, Prefix};
use proptest::prelude::*;
use topology::{GeoName, RegionId, Topology};

use super::*;
use crate::client::Client;
use crate::health::RegionHealth;

const TOPOLOGY: &str = r#"
dns:
  nodes: [{ name: ns1, listen: ["127.0.0.1:5353"] }]
  default_order: [eu-west, us-east]
  overrides:
    nets:
      10.0.0.0/8: [ap-south]
      10.1.0.0/16: [eu-west, us-east]
    countries: { NZ: [us-west] }
    continents: { SA: [us-east] }
  zones:
    - origin: example.com.
      soa: { mname: ns1, rname: hostmaster }
      records:
        - { name: "@", type: NS, value: ns1 }
        - { name: ns1, type: A, value: 127.0.0.1 }
      geo:
        - { name: nearest, regions: [us-east, eu-west, ap-south, us-west] }
        - { name: failover, policy: failover, regions: [ap-south, eu-west, us-east] }
        - { name: all, policy: all, max_answers: 2, regions: [us-east, eu-west, ap-south, us-west] }
        - name: weighted
          policy: weighted
          regions: [us-east, eu-west]
          weights: { us-east: 3, eu-west: 1 }
        - { name: closed, regions: [us-east, eu-west], all_down: fail_closed }
        - { name: fallback, regions: [us-east, eu-west], all_down: { fallback: [192.0.2.10, "2001:db8::10"] } }
        - { name: v4only, regions: [us-west] }
        - { name: static, regions: [us-east, eu-west, ap-south, us-west], all_down: last_known_good }
        - { name: static-all, policy: all, max_answers: 2, regions: [us-east, eu-west, ap-south, us-west], all_down: last_known_good }
regions:
  us-east:  { location: { lat: 39.04, lon: -77.49 }, vip: { ipv4: 127.0.1.1, ipv6: "fd00:1::1" } }
  eu-west:  { location: { lat: 53.35, lon: -6.26 },  vip: { ipv4: 127.0.2.1, ipv6: "fd00:2::1" } }
  ap-south: { location: { lat: 19.08, lon: 72.88 },  vip: { ipv4: 127.0.3.1, ipv6: "fd00:3::1" } }
  us-west:  { location: { lat: 37.77, lon: -122.42 }, vip: { ipv4: 127.0.4.1 } }
"#;

fn topology() -> Topology {
    topology::parse(TOPOLOGY, "decide-tests").unwrap()
}

fn geo<'t>(topology: &'t Topology, name: &str) -> &'t GeoName {
    let full = format!("{name}.example.com.");
    topology.dns.zones[0]
        .geo
        .iter()
        .find(|g| g.name.to_string() == full)
        .unwrap()
}

fn region(topology: &Topology, name: &str) -> RegionId {
    topology.region_by_name(name).unwrap()
}

fn place(lat: f64, lon: f64, country: &str, continent: Continent) -> Location {
    Location {
        country: Some(country.parse::<CountryCode>().unwrap()),
        continent: Some(continent),
        coordinates: Some(Coordinates { lat, lon }),
        city: None,
    }
}

/// Decides for a client at `ip` (network /24) placed at `location`, whose
/// location holds over `located`.
fn run(
    topology: &Topology,
    name: &str,
    family: AddressFamily,
    ip: &str,
    location: Option<&Location>,
    located: &str,
    health: &RegionHealth,
) -> Decision {
    let client = Client::new(ip.parse().unwrap(), None).unwrap();
    let at = ClientLocation {
        client: &client,
        network: located.parse().unwrap(),
        location,
    };
    decide(topology, geo(topology, name), family, &at, health)
}

fn chosen_names(topology: &Topology, decision: &Decision) -> Vec<String> {
    decision
        .chosen
        .iter()
        .map(|id| topology.region(*id).name.clone())
        .collect()
}

#[test]
fn nearest_region_for_known_cities() {
    let t = topology();
    let all_up = RegionHealth::all_up(t.regions.len());
    let cases = [
        (
            "London",
            place(51.51, -0.13, "GB", Continent::Europe),
            "eu-west",
        ),
        (
            "New York",
            place(40.71, -74.0, "US", Continent::NorthAmerica),
            "us-east",
        ),
        (
            "San Francisco",
            place(37.77, -122.42, "US", Continent::NorthAmerica),
            "us-west",
        ),
        (
            "Tokyo",
            place(35.68, 139.69, "JP", Continent::Asia),
            "ap-south",
        ),
        (
            "Sydney",
            place(-33.87, 151.21, "AU", Continent::Oceania),
            "ap-south",
        ),
        (
            "Johannesburg",
            place(-26.2, 28.04, "ZA", Continent::Africa),
            "ap-south",
        ),
        (
            "Reykjavik",
            place(64.15, -21.94, "IS", Continent::Europe),
            "eu-west",
        ),
        (
            "Mexico City",
            place(19.43, -99.13, "MX", Continent::NorthAmerica),
            "us-east",
        ),
    ];
    for (city, location, expected) in cases {
        let d = run(
            &t,
            "nearest",
            AddressFamily::V4,
            "192.0.2.1",
            Some(&location),
            "192.0.0.0/16",
            &all_up,
        );
        assert_eq!(chosen_names(&t, &d), [expected], "{city}");
        assert_eq!(d.rule, Rule::Nearest, "{city}");
        assert_eq!(d.ranked.len(), 4);
        // Candidates are listed nearest first.
        let distances: Vec<f64> = d.ranked.iter().map(|r| r.distance_km.unwrap()).collect();
        assert!(
            distances.windows(2).all(|w| w[0] <= w[1]),
            "{city}: {distances:?}"
        );
    }
}

#[test]
fn unhealthy_regions_are_skipped_in_preference_order() {
    let t = topology();
    let london = place(51.51, -0.13, "GB", Continent::Europe);
    let mut up = vec![true; t.regions.len()];
    up[region(&t, "eu-west").0] = false;
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &RegionHealth::from_states(up),
    );
    assert_eq!(chosen_names(&t, &d), ["us-east"]);
    assert_eq!(d.addresses, ["127.0.1.1".parse::<IpAddr>().unwrap()]);
    assert!(!d.ranked[0].healthy);
    assert_eq!(d.all_down, None);
}

#[test]
fn failover_follows_the_written_order_wherever_the_client_is() {
    let t = topology();
    let london = place(51.51, -0.13, "GB", Continent::Europe);
    let d = run(
        &t,
        "failover",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &RegionHealth::all_up(4),
    );
    assert_eq!(chosen_names(&t, &d), ["ap-south"]);
    assert_eq!(d.scope, 0, "failover does not depend on the client");
    let mut up = vec![true; 4];
    up[region(&t, "ap-south").0] = false;
    let d = run(
        &t,
        "failover",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &RegionHealth::from_states(up),
    );
    assert_eq!(chosen_names(&t, &d), ["eu-west"]);
}

#[test]
fn all_answers_the_nearest_healthy_regions_up_to_the_limit() {
    let t = topology();
    let nyc = place(40.71, -74.0, "US", Continent::NorthAmerica);
    let d = run(
        &t,
        "all",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&nyc),
        "192.0.0.0/16",
        &RegionHealth::all_up(4),
    );
    assert_eq!(chosen_names(&t, &d), ["us-east", "us-west"]);
    assert_eq!(d.addresses.len(), 2);
    let mut up = vec![true; 4];
    up[region(&t, "us-west").0] = false;
    let d = run(
        &t,
        "all",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&nyc),
        "192.0.0.0/16",
        &RegionHealth::from_states(up),
    );
    assert_eq!(chosen_names(&t, &d), ["us-east", "eu-west"]);
}

#[test]
fn overrides_win_over_distance() {
    let t = topology();
    let london = place(51.51, -0.13, "GB", Continent::Europe);
    let up = RegionHealth::all_up(4);
    // The longest matching network wins.
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "10.1.2.3",
        Some(&london),
        "10.0.0.0/8",
        &up,
    );
    assert_eq!(d.rule, Rule::NetOverride("10.1.0.0/16".parse().unwrap()));
    assert_eq!(chosen_names(&t, &d), ["eu-west"]);
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "10.2.2.3",
        Some(&london),
        "10.0.0.0/8",
        &up,
    );
    assert_eq!(chosen_names(&t, &d), ["ap-south"]);
    // Country, then continent.
    let auckland = place(-36.85, 174.76, "NZ", Continent::Oceania);
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&auckland),
        "192.0.0.0/16",
        &up,
    );
    assert_eq!(d.rule, Rule::CountryOverride("NZ".into()));
    assert_eq!(chosen_names(&t, &d), ["us-west"]);
    let lima = place(-12.05, -77.04, "PE", Continent::SouthAmerica);
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&lima),
        "192.0.0.0/16",
        &up,
    );
    assert_eq!(d.rule, Rule::ContinentOverride("SA".into()));
    assert_eq!(chosen_names(&t, &d), ["us-east"]);
    // An override's regions come first; the rest follow by distance, so a
    // down override region does not leave the client unanswered.
    let mut states = vec![true; 4];
    states[region(&t, "us-west").0] = false;
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&auckland),
        "192.0.0.0/16",
        &RegionHealth::from_states(states),
    );
    assert_eq!(chosen_names(&t, &d), ["ap-south"]);
}

#[test]
fn unknown_clients_get_the_default_order() {
    let t = topology();
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "203.0.113.9",
        None,
        "203.0.112.0/22",
        &RegionHealth::all_up(4),
    );
    assert_eq!(d.rule, Rule::DefaultOrder);
    assert_eq!(chosen_names(&t, &d), ["eu-west"]);
    let names: Vec<String> = d
        .ranked
        .iter()
        .map(|r| t.region(r.region).name.clone())
        .collect();
    assert_eq!(names, ["eu-west", "us-east", "ap-south", "us-west"]);
}

#[test]
fn all_down_policies() {
    let t = topology();
    let london = place(51.51, -0.13, "GB", Continent::Europe);
    let down = RegionHealth::from_states(vec![false; 4]);
    let open = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &down,
    );
    assert_eq!(
        chosen_names(&t, &open),
        ["eu-west"],
        "fail_open answers as if all were up"
    );
    assert_eq!(open.all_down, Some(AllDown::FailOpen));
    let closed = run(
        &t,
        "closed",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &down,
    );
    assert!(closed.addresses.is_empty());
    let fallback = run(
        &t,
        "fallback",
        AddressFamily::V6,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &down,
    );
    assert_eq!(
        fallback.addresses,
        ["2001:db8::10".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(fallback.scope, 0);
}

#[test]
fn last_known_good_answers_what_went_out_last() {
    let t = topology();
    let london = place(51.51, -0.13, "GB", Continent::Europe);
    // Regions: us-east, eu-west, ap-south, us-west. `went_out` counts when
    // each left service; `held` marks operator overrides.
    // (name, went_out, held, expected, why)
    type Case<'a> = (&'a str, [u64; 4], [bool; 4], &'a [&'a str], &'a str);
    let cases: [Case; 6] = [
        (
            "static",
            [0; 4],
            [false; 4],
            &["eu-west"],
            "no memory: as fail_open",
        ),
        (
            "static",
            [3, 2, 3, 1],
            [false; 4],
            &["us-east"],
            "us-east and ap-south were last; us-east is nearer",
        ),
        (
            "static",
            [1, 5, 2, 1],
            [false; 4],
            &["eu-west"],
            "eu-west was last",
        ),
        (
            "static",
            [3, 2, 3, 1],
            [true, false, false, false],
            &["ap-south"],
            "a held region is not answered",
        ),
        (
            "static",
            [3, 2, 3, 1],
            [true; 4],
            &["us-east"],
            "all held: as if none were",
        ),
        (
            "static-all",
            [4, 4, 4, 1],
            [false; 4],
            &["eu-west", "us-east"],
            "up to max_answers of the last set",
        ),
    ];
    for (name, went_out, held, expected, why) in cases {
        let health = RegionHealth::with_overrides(vec![false; 4], held.to_vec())
            .with_went_out(went_out.to_vec());
        let d = run(
            &t,
            name,
            AddressFamily::V4,
            "192.0.2.1",
            Some(&london),
            "192.0.0.0/16",
            &health,
        );
        assert_eq!(chosen_names(&t, &d), expected, "{why}");
        assert_eq!(d.all_down, Some(AllDown::LastKnownGood), "{why}");
        assert_ne!(d.scope, 0, "{why}: the answer depends on the client");
    }
    // While any candidate is in service the policy plays no part.
    let health =
        RegionHealth::from_states(vec![false, false, true, false]).with_went_out(vec![9, 9, 0, 9]);
    let d = run(
        &t,
        "static",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&london),
        "192.0.0.0/16",
        &health,
    );
    assert_eq!(chosen_names(&t, &d), ["ap-south"]);
    assert_eq!(d.all_down, None);
}

#[test]
fn aaaa_uses_only_regions_with_an_ipv6_vip() {
    let t = topology();
    let sf = place(37.77, -122.42, "US", Continent::NorthAmerica);
    let up = RegionHealth::all_up(4);
    let v6 = run(
        &t,
        "nearest",
        AddressFamily::V6,
        "192.0.2.1",
        Some(&sf),
        "192.0.0.0/16",
        &up,
    );
    assert_eq!(
        chosen_names(&t, &v6),
        ["us-east"],
        "us-west has no IPv6 VIP"
    );
    assert_eq!(v6.addresses, ["fd00:1::1".parse::<IpAddr>().unwrap()]);
    let none = run(
        &t,
        "v4only",
        AddressFamily::V6,
        "192.0.2.1",
        Some(&sf),
        "192.0.0.0/16",
        &up,
    );
    assert!(none.addresses.is_empty(), "no IPv6 VIP at all: NODATA");
}

#[test]
fn scope_is_the_location_network_narrowed_by_override_networks() {
    let t = topology();
    let somewhere = place(51.51, -0.13, "GB", Continent::Europe);
    let up = RegionHealth::all_up(4);
    // No override network inside 192.0.0.0/16: the whole location network.
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "192.0.2.1",
        Some(&somewhere),
        "192.0.0.0/16",
        &up,
    );
    assert_eq!(d.scope, 16);
    // 10.1.0.0/16 lies inside 10.0.0.0/8 but excludes 10.2.x: narrowed to /15.
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "10.2.2.3",
        Some(&somewhere),
        "10.0.0.0/8",
        &up,
    );
    assert_eq!(d.scope, 15);
    // Never wider than the location network, never narrower than /24.
    let d = run(
        &t,
        "nearest",
        AddressFamily::V4,
        "10.1.2.3",
        Some(&somewhere),
        "10.1.2.0/27",
        &up,
    );
    assert_eq!(d.scope, 16, "a net override holds over its whole network");
    let w = run(
        &t,
        "weighted",
        AddressFamily::V4,
        "192.0.2.1",
        None,
        "192.0.0.0/16",
        &up,
    );
    assert_eq!(w.scope, 24, "weighted answers hold per client /24");
}

#[test]
fn weighted_hash_is_pinned() {
    // Golden values: if these change, clients move between regions.
    assert_eq!(
        weighted_hash(&[192, 0, 2, 0, 24], b"us-east"),
        GOLDEN_US_EAST
    );
    assert_eq!(
        weighted_hash(&[192, 0, 2, 0, 24], b"eu-west"),
        GOLDEN_EU_WEST
    );
}

// Computed by an independent Python SipHash-1-3 (checked against the
// SipHash-2-4 reference vector) over the concatenated bytes.
const GOLDEN_US_EAST: u64 = 1_341_449_522_304_728_625;
const GOLDEN_EU_WEST: u64 = 9_934_750_041_053_774_691;

fn weighted_share(t: &Topology, clients: u32) -> f64 {
    let up = RegionHealth::all_up(t.regions.len());
    let us_east = region(t, "us-east");
    let mut count = 0;
    for i in 0..clients {
        let ip = IpAddr::from([(i >> 16) as u8 | 1, (i >> 8) as u8, i as u8, 0]);
        let d = run(
            t,
            "weighted",
            AddressFamily::V4,
            &ip.to_string(),
            None,
            "0.0.0.0/0",
            &up,
        );
        if d.chosen == [us_east] {
            count += 1;
        }
    }
    f64::from(count) / f64::from(clients)
}

#[test]
fn weights_are_honoured() {
    let share = weighted_share(&topology(), 20_000);
    assert!(
        (share - 0.75).abs() < 0.02,
        "us-east got {share}, weight 3 of 4"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A down region is never answered while a healthy candidate exists.
    #[test]
    fn down_regions_are_never_answered_while_another_is_up(
        up in proptest::collection::vec(any::<bool>(), 4),
        lat in -90.0f64..90.0,
        lon in -180.0f64..180.0,
        octets in any::<[u8; 4]>(),
        name in prop::sample::select(vec!["nearest", "failover", "all", "weighted"]),
    ) {
        let t = topology();
        let health = RegionHealth::from_states(up.clone());
        let location = place(lat, lon, "FR", Continent::Europe);
        let ip = IpAddr::from(octets).to_string();
        let d = run(&t, name, AddressFamily::V4, &ip, Some(&location), "0.0.0.0/0", &health);
        let candidates = &geo(&t, name).regions;
        if candidates.iter().any(|id| up[id.0]) {
            prop_assert!(!d.chosen.is_empty());
            prop_assert!(d.chosen.iter().all(|id| up[id.0]), "chose a down region: {:?}", d);
        }
    }

    /// Taking one region out moves only the clients it had.
    #[test]
    fn removing_a_region_moves_only_its_clients(seed in any::<u16>()) {
        let text = TOPOLOGY.replace(
            "weights: { us-east: 3, eu-west: 1 }",
            "weights: { us-east: 1, eu-west: 1 }",
        ).replace("regions: [us-east, eu-west]\n          weights", "regions: [us-east, eu-west, ap-south]\n          weights");
        let t = topology::parse(&text, "three-way").unwrap();
        let all_up = RegionHealth::all_up(4);
        let mut states = vec![true; 4];
        states[region(&t, "ap-south").0] = false;
        let without = RegionHealth::from_states(states);
        for i in 0..200u32 {
            let n = u32::from(seed) * 200 + i;
            let ip = IpAddr::from([(n >> 16) as u8 | 1, (n >> 8) as u8, n as u8, 0]).to_string();
            let before = run(&t, "weighted", AddressFamily::V4, &ip, None, "0.0.0.0/0", &all_up);
            let after = run(&t, "weighted", AddressFamily::V4, &ip, None, "0.0.0.0/0", &without);
            if before.chosen != [region(&t, "ap-south")] {
                prop_assert_eq!(before.chosen, after.chosen);
            }
        }
    }
}

#[test]
fn great_circle_distances_are_right() {
    let london = Coordinates {
        lat: 51.5074,
        lon: -0.1278,
    };
    let new_york = Coordinates {
        lat: 40.7128,
        lon: -74.0060,
    };
    let km = great_circle_km(london, new_york);
    assert!((km - 5570.0).abs() < 15.0, "{km}");
    assert_eq!(great_circle_km(london, london), 0.0);
}

#[test]
fn stable_scope_ignores_other_families_and_enclosing_nets() {
    let client: Prefix = "10.2.2.0/24".parse().unwrap();
    let nets: Vec<Prefix> = vec![
        "2001:db8::/32".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    assert_eq!(
        stable_scope("10.0.0.0/8".parse().unwrap(), client, nets.into_iter()),
        8
    );
}

/// A view where each region is up or down and, when it declares a
/// capacity, loaded to `loads[i]` of a target of 1000 with `shares[i]`
/// basis points spilled.
fn loaded_view(up: &[bool], loads: &[Option<(u64, u16)>]) -> RegionHealth {
    use crate::health::{Load, RegionLoad};
    RegionHealth::from_states(up.to_vec()).with_load(
        loads
            .iter()
            .map(|l| match l {
                None => RegionLoad::Unbounded,
                Some((current, share)) => RegionLoad::Measured(Load {
                    unit: topology::LoadUnit::RequestsPerSecond,
                    current: *current,
                    target: 1000,
                    share: *share,
                }),
            })
            .collect(),
    )
}

#[test]
fn a_spilled_client_gets_the_next_region_with_room_for_its_slash_24() {
    let t = topology();
    let new_york = place(40.71, -74.0, "US", Continent::NorthAmerica);
    let us_east = region(&t, "us-east");
    // us-east spills 90 %; eu-west has room.
    let health = loaded_view(
        &[true; 4],
        &[Some((1500, 9000)), Some((100, 0)), None, None],
    );
    let spilled = (0..=255)
        .map(|i| format!("100.64.{i}.1"))
        .find(|ip| {
            let client = Client::new(ip.parse().unwrap(), None).unwrap();
            crate::spill::spill_rank(crate::spill::spill_network(client.network)) < 0.9
        })
        .unwrap();
    let from_new_york = |health: &RegionHealth| {
        run(
            &t,
            "nearest",
            AddressFamily::V4,
            &spilled,
            Some(&new_york),
            "100.64.0.0/10",
            health,
        )
    };
    let d = from_new_york(&health);
    assert_eq!(chosen_names(&t, &d), ["us-west"], "{d:?}");
    let spill = d.spill.unwrap();
    assert_eq!(spill.from, us_east);
    assert_eq!(d.scope, 24);
    // Without a share, the same client stays and the scope stays wide.
    let calm = loaded_view(&[true; 4], &[Some((500, 0)), None, None, None]);
    let d = from_new_york(&calm);
    assert_eq!(chosen_names(&t, &d), ["us-east"]);
    assert_eq!(d.spill, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Spill-over never answers a down region, nor moves a client to a
    /// region at or over its target; and whether a client spills is
    /// monotone in the share: raising it only adds clients, to the same
    /// region.
    #[test]
    fn spill_over_never_sends_clients_to_down_or_full_regions_and_is_monotone(
        up in proptest::collection::vec(any::<bool>(), 4),
        loads in proptest::collection::vec(
            proptest::option::of((0u64..2000, 0u16..9000)), 4),
        lat in -90.0f64..90.0,
        lon in -180.0f64..180.0,
        octets in any::<[u8; 4]>(),
        more in 0u16..9000,
        name in prop::sample::select(vec!["nearest", "failover", "all", "weighted"]),
    ) {
        let t = topology();
        let location = place(lat, lon, "FR", Continent::Europe);
        let ip = IpAddr::from(octets).to_string();
        let health = loaded_view(&up, &loads);
        let d = run(&t, name, AddressFamily::V4, &ip, Some(&location), "0.0.0.0/0", &health);
        if let Some(spill) = d.spill {
            prop_assert!(up[spill.to.0], "spilled to a down region: {:?}", d);
            prop_assert_eq!(d.chosen.first(), Some(&spill.to));
            prop_assert!(
                d.chosen.iter().all(|id| up[id.0] && health.has_headroom(*id) && *id != spill.from),
                "spilled to a down, full or the spilling region: {:?}", d
            );
        }
        prop_assert!(d.chosen.iter().all(|id| up[id.0]) || !geo(&t, name).regions.iter().any(|id| up[id.0]));

        // Raise the share of whichever region spilled (or would): the
        // client, once spilled, stays spilled to the same region.
        if let Some(spill) = d.spill {
            let mut raised = loads.clone();
            if let Some((_, share)) = raised[spill.from.0].as_mut() {
                *share = share.saturating_add(more).min(9000);
            }
            let again = run(&t, name, AddressFamily::V4, &ip, Some(&location), "0.0.0.0/0", &loaded_view(&up, &raised));
            prop_assert_eq!(again.spill.map(|s| (s.from, s.to)), Some((spill.from, spill.to)));
        }
    }
}
