//! Tests of the spill rule's hash and of the share controller.

use geo_data::Prefix;
use topology::{LoadUnit, RegionId};

use super::*;
use crate::health::{Load, RegionHealth, RegionLoad};

fn prefix(text: &str) -> Prefix {
    text.parse().unwrap()
}

fn load(current: u64, target: u64, share: u16) -> RegionLoad {
    RegionLoad::Measured(Load {
        unit: LoadUnit::RequestsPerSecond,
        current,
        target,
        share,
    })
}

/// Pinned: replicas and versions must rank clients alike.
#[test]
fn the_spill_hash_is_pinned_by_golden_vectors() {
    let golden = [
        ("192.0.2.0/24", 0.938_570_724_668_265_6),
        ("198.51.100.0/24", 0.632_135_550_474_404_2),
        ("2001:db8:1200::/56", 0.028_044_104_348_427_08),
    ];
    for (network, rank) in golden {
        let got = spill_rank(prefix(network));
        assert!((got - rank).abs() < 1e-15, "{network}: {got}");
    }
}

#[test]
fn clients_of_one_slash_24_or_slash_56_spill_together() {
    assert_eq!(
        spill_network(prefix("192.0.2.77/32")),
        prefix("192.0.2.0/24")
    );
    assert_eq!(
        spill_network(prefix("192.0.0.0/16")),
        prefix("192.0.0.0/16")
    );
    assert_eq!(
        spill_network(prefix("2001:db8:1234:5678::/64")),
        prefix("2001:db8:1234:5600::/56")
    );
}

#[test]
fn a_spilled_client_goes_to_the_next_region_with_room() {
    let order = [RegionId(0), RegionId(1), RegionId(2)];
    // Region 0 spills nearly everyone; region 1 is full, region 2 has room.
    let health = RegionHealth::all_up(3).with_load(vec![
        load(1200, 800, 9000),
        load(900, 800, 0),
        RegionLoad::Unbounded,
    ]);
    let client = (0..=255)
        .map(|i| prefix(&format!("10.0.{i}.0/24")))
        .find(|p| spill_rank(*p) < 0.9)
        .unwrap();
    let redirected = redirect(&order, &health, client);
    assert_eq!(redirected.order, vec![RegionId(2)]);
    let spill = redirected.spill.unwrap();
    assert_eq!((spill.from, spill.to), (RegionId(0), RegionId(2)));
    assert_eq!(redirected.scope, Some(24));

    // Every other region full or of unknown load: nobody moves.
    let nowhere = RegionHealth::all_up(3).with_load(vec![
        load(1200, 800, 9000),
        load(800, 800, 0),
        RegionLoad::Unknown,
    ]);
    let stays = redirect(&order, &nowhere, client);
    assert_eq!(stays.order, order.to_vec());
    assert_eq!(stays.spill, None);

    // Not spilling (share 0, or telemetry unknown): the order is unchanged
    // and the scope is not narrowed.
    for view in [load(1200, 800, 0), RegionLoad::Unknown] {
        let health = RegionHealth::all_up(3).with_load(vec![
            view,
            RegionLoad::Unbounded,
            RegionLoad::Unbounded,
        ]);
        let same = redirect(&order, &health, client);
        assert_eq!(
            (same.order, same.spill, same.scope),
            (order.to_vec(), None, None)
        );
    }
}

/// One step of the controller per row: (share, load, target) → share.
#[test]
fn the_controller_moves_by_bounded_steps_and_holds_inside_the_dead_band() {
    let rows: [(f64, f64, f64, f64); 9] = [
        // Under target, nothing spilled: stays 0.
        (0.0, 500.0, 800.0, 0.0),
        // 50 % over: goal 1/3, half the gap capped at MAX_STEP.
        (0.0, 1200.0, 800.0, 0.10),
        // 10 % over with 20 % spilled: goal 0.2727, half the gap.
        (0.20, 880.0, 800.0, 0.236_363_636_363_636_4),
        // Inside the dead band (±5 %): holds.
        (0.25, 830.0, 800.0, 0.25),
        (0.25, 770.0, 800.0, 0.25),
        // Load gone: comes back by at most MAX_STEP.
        (0.25, 0.0, 800.0, 0.15),
        // Close to 0 and under: the last step reaches 0 exactly.
        (0.005, 100.0, 800.0, 0.0),
        // Never above MAX_SHARE.
        (0.88, 100_000.0, 800.0, 0.89),
        (MAX_SHARE, 100_000.0, 800.0, MAX_SHARE),
    ];
    for (share, load, target, want) in rows {
        let got = next_share(share, load, target);
        assert!(
            (got - want).abs() < 1e-9,
            "share {share}, load {load}, target {target}: got {got}, want {want}"
        );
    }
}

/// A region whose clients bring `demand` and which keeps `(1 − s)` of
/// them, sampled once per interval after resolvers caught up.
fn run_controller(demand: impl Fn(usize) -> f64, target: f64, steps: usize) -> Vec<f64> {
    let mut share = 0.0;
    (0..steps)
        .map(|step| {
            share = next_share(share, demand(step) * (1.0 - share), target);
            share
        })
        .collect()
}

#[test]
fn the_share_rises_while_over_settles_near_the_target_and_returns_when_the_load_stops() {
    let target = 800.0;
    // 1600/s for 30 samples, then nothing.
    let shares = run_controller(|step| if step < 30 { 1600.0 } else { 0.0 }, target, 60);
    // Rises while over, never falling.
    assert!(shares[..10].windows(2).all(|w| w[1] >= w[0]), "{shares:?}");
    assert!(shares[0] > 0.0);
    // Settles: the kept load within the dead band of the target, and the
    // share no longer moves.
    let settled = shares[29];
    let kept = 1600.0 * (1.0 - settled);
    assert!(
        (kept / target - 1.0).abs() <= DEAD_BAND,
        "kept {kept}/s at share {settled}"
    );
    assert!(
        shares[20..30].windows(2).all(|w| w[0] == w[1]),
        "{shares:?}"
    );
    // Returns to 0 once the load stops, and stays there.
    assert!(shares[30..].windows(2).all(|w| w[1] <= w[0]), "{shares:?}");
    assert_eq!(shares[45..], [0.0; 15]);
}

#[test]
fn a_load_wandering_inside_the_dead_band_does_not_flap_the_share() {
    let target = 800.0;
    let mut share = 0.3;
    for step in 0..100 {
        // ±4 % around the target.
        let load = target * (1.0 + 0.04 * ((step % 7) as f64 - 3.0) / 3.0);
        share = next_share(share, load, target);
        assert_eq!(share, 0.3, "moved at step {step} with load {load}");
    }
}
