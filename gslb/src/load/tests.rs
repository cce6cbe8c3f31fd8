//! Tests of turning edge figures into a region's load, and of fail-static.

use std::time::Duration;

use tokio::time::Instant;
use topology::{Capacity, LoadUnit};

use super::*;
use crate::console::edges::Figures;

const SECOND: Duration = Duration::from_secs(1);
const MAX_AGE: Duration = Duration::from_secs(3);

fn rps(limit: f64) -> Tracker {
    Tracker::new(Capacity {
        unit: LoadUnit::RequestsPerSecond,
        limit,
        target: 0.8,
    })
}

fn share_of(view: RegionLoad) -> Option<u16> {
    match view {
        RegionLoad::Measured(load) => Some(load.share),
        _ => None,
    }
}

#[test]
fn a_rate_comes_from_two_counter_samples_and_over_target_it_spills() {
    let start = Instant::now();
    let mut tracker = rps(1000.0);
    tracker.observe(Reading::Counter(5000.0), start, MAX_AGE);
    // One sample is no rate yet: unknown, no spill.
    assert_eq!(tracker.view(start, MAX_AGE), RegionLoad::Unknown);
    assert_eq!(tracker.status(start, MAX_AGE).telemetry, "missing");
    tracker.observe(Reading::Counter(6200.0), start + SECOND, MAX_AGE);
    let RegionLoad::Measured(load) = tracker.view(start + SECOND, MAX_AGE) else {
        panic!("no load after two samples");
    };
    assert_eq!((load.current, load.target), (1200, 800));
    assert!(load.share > 0, "{load:?}");
    assert_eq!(tracker.status(start + SECOND, MAX_AGE).telemetry, "fresh");
}

#[test]
fn missing_or_stale_figures_never_spill_and_the_share_starts_again_from_zero() {
    let start = Instant::now();
    let mut tracker = rps(1000.0);
    let mut total = 0.0;
    for i in 0..5 {
        total += 1600.0;
        tracker.observe(Reading::Counter(total), start + SECOND * i, MAX_AGE);
    }
    let at = start + SECOND * 4;
    assert!(share_of(tracker.view(at, MAX_AGE)).unwrap() > 0);

    // A node stops answering: the last load holds until it is stale.
    tracker.observe(Reading::Failed("l7 node down".into()), at + SECOND, MAX_AGE);
    assert!(share_of(tracker.view(at + SECOND, MAX_AGE)).unwrap() > 0);
    tracker.observe(
        Reading::Failed("l7 node down".into()),
        at + SECOND * 4,
        MAX_AGE,
    );
    assert_eq!(tracker.view(at + SECOND * 4, MAX_AGE), RegionLoad::Unknown);
    let status = tracker.status(at + SECOND * 4, MAX_AGE);
    assert_eq!((status.telemetry.as_str(), status.share), ("stale", 0.0));
    assert_eq!(status.error.as_deref(), Some("l7 node down"));

    // Back: the counter needs two samples again, and the share starts low.
    tracker.observe(Reading::Counter(total + 8000.0), at + SECOND * 5, MAX_AGE);
    assert_eq!(tracker.view(at + SECOND * 5, MAX_AGE), RegionLoad::Unknown);
    tracker.observe(Reading::Counter(total + 9600.0), at + SECOND * 6, MAX_AGE);
    assert_eq!(share_of(tracker.view(at + SECOND * 6, MAX_AGE)), Some(1000));
}

#[test]
fn a_counter_that_went_back_is_a_restart_not_a_negative_rate() {
    let start = Instant::now();
    let mut tracker = rps(1000.0);
    tracker.observe(Reading::Counter(9000.0), start, MAX_AGE);
    tracker.observe(Reading::Counter(10.0), start + SECOND, MAX_AGE);
    assert_eq!(tracker.view(start + SECOND, MAX_AGE), RegionLoad::Unknown);
    tracker.observe(Reading::Counter(110.0), start + SECOND * 2, MAX_AGE);
    let RegionLoad::Measured(load) = tracker.view(start + SECOND * 2, MAX_AGE) else {
        panic!("no load");
    };
    assert_eq!((load.current, load.share), (100, 0));
}

fn region() -> topology::Topology {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml"),
    )
    .unwrap();
    topology::parse(&text, "three-regions.yaml").unwrap()
}

fn edge(kind: Kind, name: &str, region: &str, figures: Option<Figures>) -> Edge {
    Edge {
        kind,
        name: name.into(),
        region: region.into(),
        admin: "127.0.0.1:9".parse().unwrap(),
        unreachable: figures.is_none().then(|| "connection refused".into()),
        status: None,
        metrics: figures,
    }
}

#[test]
fn a_reading_sums_the_counted_tier_and_refuses_a_partial_sum() {
    let topology = region();
    let us_east = &topology.regions[0];
    let figures = |requests: f64, open: f64| Figures {
        requests_total: requests,
        open_connections: open,
        ..Figures::default()
    };
    let edges = vec![
        edge(Kind::L4, "us-east-l4", "us-east", Some(figures(0.0, 7.0))),
        edge(
            Kind::L7,
            "us-east-l7a",
            "us-east",
            Some(figures(100.0, 3.0)),
        ),
        edge(Kind::L7, "us-east-l7b", "us-east", Some(figures(50.0, 2.0))),
        edge(Kind::L7, "eu-west-l7", "eu-west", Some(figures(999.0, 9.0))),
    ];
    assert_eq!(
        reading(us_east, LoadUnit::RequestsPerSecond, &edges),
        Reading::Counter(150.0)
    );
    // Client connections are counted where clients connect: the L4 tier.
    assert_eq!(
        reading(us_east, LoadUnit::Connections, &edges),
        Reading::Gauge(7.0)
    );
    let mut partial = edges.clone();
    partial[2] = edge(Kind::L7, "us-east-l7b", "us-east", None);
    let Reading::Failed(why) = reading(us_east, LoadUnit::RequestsPerSecond, &partial) else {
        panic!("a partial sum was taken");
    };
    assert!(
        why.contains("us-east-l7b") && why.contains("connection refused"),
        "{why}"
    );
}
