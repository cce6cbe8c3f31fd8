//! Capacity-aware spill-over end to end: `gtm up` of the example with a
//! small capacity on us-east, us-east's clients as a bounded load — each
//! asks the GSLB where to go and sends its requests there, so the load
//! follows the answers — and the GSLB answering a share of them with
//! another region, explained, until us-east's load settles near its
//! target; then bringing them back once the load stops.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use system_tests::{full_topology, http, json};

use crate::dns_client::answer;
use crate::gtm::{Scratch, dig, expect, gtm};

/// Most requests the generator sends, and for how long at most.
const MAX_REQUESTS: u64 = 40_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(90);

/// Each client sends a request this often, and asks the GSLB again this
/// often (a resolver that keeps an answer 1 s at most).
const REQUEST_EVERY: Duration = Duration::from_millis(500);
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

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
    let net = system_tests::loopback_net(1);
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

    // The load: every client sends its requests where the GSLB answers
    // it, bounded in count and time, until told to stop. About 2 requests/s
    // each, several times us-east's target all together.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (dns, port) = (topology.dns, topology.http_port);
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, sent) = (stop.clone(), sent.clone());
            let mine: Vec<String> = clients.iter().skip(worker).step_by(4).cloned().collect();
            std::thread::spawn(move || {
                // (client, address it holds, resolved at, next request at)
                let mut visitors: Vec<(String, Option<IpAddr>, Instant, Instant)> = mine
                    .into_iter()
                    .map(|c| (c, None, started, started))
                    .collect();
                while !stop.load(Ordering::Relaxed)
                    && sent.load(Ordering::Relaxed) < MAX_REQUESTS
                    && started.elapsed() < MAX_LOAD_TIME
                {
                    for (client, held, resolved, next) in &mut visitors {
                        let now = Instant::now();
                        if now < *next {
                            continue;
                        }
                        *next = now + REQUEST_EVERY;
                        if held.is_none() || now.duration_since(*resolved) >= RESOLVE_EVERY {
                            *held = answer(dns, client)
                                .and_then(|a| a.first().copied())
                                .or(*held);
                            *resolved = now;
                        }
                        if let Some(ip) = *held {
                            sent.fetch_add(1, Ordering::Relaxed);
                            let _ = http::get(SocketAddr::new(ip, port), "/");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // A share of us-east's clients is answered elsewhere.
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
    // The spilled clients' requests go elsewhere now, so us-east's load
    // falls back and settles near its target (10/s) while some of its
    // clients stay spilled: within half the target either side, for 3 s.
    let mut settled_since: Option<Instant> = None;
    poll(
        Duration::from_secs(60),
        "us-east's load settled near its target",
        || {
            let load = us_east_load(&state);
            let near = matches!(load["current"], json::Value::Num(n) if (5.0..=15.0).contains(&n))
                && load["share"].num() > 0.0;
            if !near {
                settled_since = None;
                return None;
            }
            let since = *settled_since.get_or_insert_with(Instant::now);
            (since.elapsed() >= Duration::from_secs(3)).then_some(())
        },
    );
    let still = answered_elsewhere(&state, &clients, &us_east);
    assert!(
        still > 0 && still < clients.len(),
        "a share spilled, not all: {still} of {}",
        clients.len()
    );
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
        explained.contains("spilled from us-east (load ") && explained.contains(" target 10/s"),
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
    // The load stops: the clients come back, all of them.
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    // The share falls as the measured load decays; our clients' hashes may
    // all be back before the last of it is gone.
    poll(
        Duration::from_secs(60),
        "every client back on us-east and nothing spilled",
        || {
            let back = answered_elsewhere(&state, &clients, &us_east) == 0;
            (back && us_east_load(&state)["share"].num() == 0.0).then_some(())
        },
    );
    expect(gtm(&state, &["down"]), 0);
}
