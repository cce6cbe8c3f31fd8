//! Capacity-aware spill-over end to end: `gtm up` of the example with a
//! small capacity on us-east, a bounded load generator driving real HTTP
//! requests through its VIP, and the GSLB answering a growing share of
//! us-east's clients with another region — explained — then bringing
//! them back once the load stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use system_tests::{full_topology, http, json};

use crate::gtm::{Scratch, dig, expect, gtm};

/// Most requests the generator sends, and for how long at most.
const MAX_REQUESTS: u64 = 40_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(60);

/// How many of `clients` are answered with something else than `vip`.
fn answered_elsewhere(state: &std::path::Path, clients: &[String], vip: &str) -> usize {
    clients
        .iter()
        .filter(|client| dig(state, client, "A") != [vip])
        .count()
}

/// The GSLB's admin address in `full_topology(net)`'s `yaml`.
fn gslb_admin(yaml: &str, net: u8) -> SocketAddr {
    let at = yaml.find("admin: \"").expect("an admin address") + "admin: \"".len();
    let addr = &yaml[at..at + yaml[at..].find('"').unwrap()];
    assert!(addr.starts_with(&format!("127.{net}.0.1:")), "{addr}");
    addr.parse().unwrap()
}

/// us-east's load as `gtm status --json` shows it.
fn us_east_load(state: &std::path::Path) -> json::Value {
    let status = json::parse(&expect(gtm(state, &["status", "--json"]), 0));
    status["regions"][0]["load"].clone()
}

/// Polls `check` every 200 ms until it gives `Some`, or fails with `what`
/// after `limit`.
fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn overloading_a_region_spills_some_of_its_clients_and_brings_them_back() {
    let scratch = Scratch::new("spill");
    let state = scratch.state();
    let net = 100 + ((std::process::id() + 37) % 100) as u8;
    let topology = full_topology(net);
    // A target of 10 requests/s: a handful of client threads exceed it.
    let yaml = topology.yaml.replacen(
        "  us-east:\n",
        "  us-east:\n    capacity: { requests_per_second: 20, target: 0.5 }\n",
        1,
    );
    let file = scratch.write("topology.yaml", &yaml);
    expect(gtm(&state, &["up", file.to_str().unwrap()]), 0);
    let us_east = format!("127.{net}.1.1");

    // Clients of us-east, once its telemetry is fresh and nothing spills.
    let load = poll(Duration::from_secs(30), "us-east's load measured", || {
        let load = us_east_load(&state);
        (load["telemetry"].str() == "fresh").then_some(load)
    });
    assert_eq!(load["share"].num(), 0.0, "{load:?}");
    assert_eq!(load["target"].num(), 10.0, "{load:?}");
    let candidates: Vec<String> = (0..40).map(|i| format!("8.8.{i}.8")).collect();
    let clients: Vec<String> = candidates
        .into_iter()
        .filter(|c| dig(&state, c, "A") == [us_east.as_str()])
        .collect();
    assert!(
        clients.len() >= 20,
        "too few us-east clients to measure a share: {clients:?}"
    );

    // The load: real requests through us-east's VIP, bounded in count and
    // time, until told to stop.
    let vip = SocketAddr::new(us_east.parse().unwrap(), topology.http_port);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut client = http::Client::new(vip, true);
                while !stop.load(Ordering::Relaxed)
                    && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
                    && started.elapsed() < MAX_LOAD_TIME
                {
                    let _ = client.get("/");
                }
            })
        })
        .collect();

    // The share of us-east's clients answered elsewhere rises.
    let moved = poll(
        Duration::from_secs(30),
        "some us-east clients spilled",
        || {
            let moved = answered_elsewhere(&state, &clients, &us_east);
            (moved > 0).then_some(moved)
        },
    );
    eprintln!("{moved} of {} clients spilled", clients.len());
    let load = us_east_load(&state);
    assert!(load["share"].num() > 0.0, "{load:?}");
    assert!(load["current"].num() > 10.0, "{load:?}");
    // It keeps rising while the load stays over the target.
    let more = poll(Duration::from_secs(30), "the share rising", || {
        let now = answered_elsewhere(&state, &clients, &us_east);
        (now > moved).then_some(now)
    });
    assert!(more < clients.len(), "every client spilled: {more}");
    // explain (through gtm dig) says why a spilled client went elsewhere.
    let spilled = clients
        .iter()
        .find(|c| dig(&state, c, "A") != [us_east.as_str()])
        .expect("a spilled client")
        .clone();
    let explained = expect(
        gtm(&state, &["dig", "www.example.com", "--from", &spilled]),
        0,
    );
    assert!(
        explained.contains("spilled from us-east (load ") && explained.contains("over target 10/s"),
        "{explained}"
    );
    let human = expect(gtm(&state, &["status"]), 0);
    assert!(human.contains("of its clients spilled"), "{human}");
    let metrics = http::get(gslb_admin(&yaml, net), "/metrics")
        .unwrap()
        .text();
    let share = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gslb_region_spill_share{region=\"us-east\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no spill share metric: {metrics}"));
    assert!(share > 0.0, "{share}");
    assert!(
        metrics.contains("gslb_region_load{region=\"us-east\"} "),
        "{metrics}"
    );
    // A drill of eu-west would send Europe to us-east, which is full.
    let dry = json::parse(&expect(
        gtm(&state, &["fail", "eu-west", "--dry-run", "--json"]),
        0,
    ));
    let receiver = dry["receivers"]
        .items()
        .iter()
        .find(|r| r["region"].str() == "us-east")
        .cloned()
        .unwrap_or_else(|| panic!("us-east not among the receivers: {dry:?}"));
    assert_eq!(receiver["headroom"].str(), "full", "{receiver:?}");
    let human = expect(gtm(&state, &["fail", "eu-west", "--dry-run"]), 0);
    assert!(human.contains("FULL: load"), "{human}");

    // The load stops: the clients come back, all of them.
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    poll(
        Duration::from_secs(60),
        "every client back on us-east",
        || (answered_elsewhere(&state, &clients, &us_east) == 0).then_some(()),
    );
    let load = us_east_load(&state);
    assert_eq!(load["share"].num(), 0.0, "{load:?}");
    expect(gtm(&state, &["down"]), 0);
}
