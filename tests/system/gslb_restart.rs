//! The GSLB killed and restarted under query load: the operator's overrides
//! and the probe verdicts come back from the state file, so no query is
//! ever answered with a region that is out — not even in the first
//! moments after the restart, before the probes have run again.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use system_tests::{Gslb, http, temp_dir};

use crate::dns_client::answer;

/// A region's health endpoint answering the status the test sets.
struct HealthEndpoint {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
}

impl HealthEndpoint {
    fn start(ip: &str) -> HealthEndpoint {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let shared = status.clone();
        // Lives as long as the test process; each probe is one connection.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut request = [0; 1024];
                let _ = stream.read(&mut request);
                let code = shared.load(Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        HealthEndpoint { addr, status }
    }

    fn set(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// us-east, eu-west and ap-south probed every 200 ms (rise 2, fall 3).
fn topology(regions: &[HealthEndpoint; 3]) -> String {
    let names = ["us-east", "eu-west", "ap-south"];
    let places = [
        "39.04, lon: -77.49",
        "53.35, lon: -6.26",
        "19.08, lon: 72.88",
    ];
    let mut text = String::from(
        "dns:\n  nodes: [{ name: ns1, listen: [\"127.0.0.1:53\"] }]\n  zones:\n    - origin: example.com.\n      soa: { mname: ns1, rname: hostmaster }\n      records:\n        - { name: \"@\", type: NS, value: ns1 }\n        - { name: ns1, type: A, value: 127.0.0.1 }\n      geo:\n        - { name: www, regions: [us-east, eu-west, ap-south], ttl: 5s }\nregions:\n",
    );
    for ((name, place), region) in names.iter().zip(places).zip(regions) {
        text.push_str(&format!(
            "  {name}:\n    location: {{ lat: {place} }}\n    vip: {{ ipv4: {}, ports: {{ http: {} }} }}\n    health: {{ path: /health, interval: 200ms, timeout: 150ms, rise: 2, fall: 3 }}\n",
            region.addr.ip(),
            region.addr.port()
        ));
    }
    text
}

/// Polls until a client in `subnet` gets exactly `expected`, for at most
/// `limit`.
fn until_answer(server: SocketAddr, subnet: &str, expected: IpAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got = answer(server, subnet);
        if got.as_deref() == Some(&[expected][..]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a client in {subnet} still gets {got:?} after {limit:?}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients in the US and in London asking in a loop until `stop` (or a
/// bound of time), collecting every answer that names a region out of
/// service and counting the queries that got a reply.
fn query_load(
    server: SocketAddr,
    out: Vec<IpAddr>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let bound = Instant::now() + Duration::from_secs(60);
        let (mut answered, mut wrong) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) && Instant::now() < bound {
            for subnet in ["8.8.8.0", "81.2.69.0"] {
                let Some(addresses) = answer(server, subnet) else {
                    continue;
                };
                answered += 1;
                if let Some(bad) = addresses.iter().find(|a| out.contains(a)) {
                    wrong.push(format!("{subnet}/24 got {bad}"));
                }
            }
        }
        (answered, wrong)
    })
}

#[test]
fn a_gslb_killed_under_load_comes_back_with_its_overrides_and_verdicts() {
    let regions = [
        HealthEndpoint::start("127.0.1.1"),
        HealthEndpoint::start("127.0.2.1"),
        HealthEndpoint::start("127.0.3.1"),
    ];
    let [us_east, eu_west, ap_south] = [0, 1, 2].map(|i| regions[i].addr.ip());
    let dir = temp_dir("gslb-restart");
    let config = dir.join("topology.yaml");
    std::fs::write(&config, topology(&regions)).unwrap();
    let state = dir.join("state").join("ns1.json");

    let mut gslb = Gslb::start(&config, &state, &[]);
    let (dns, admin) = (gslb.dns, gslb.admin);
    until_answer(dns, "8.8.8.0", us_east, Duration::from_secs(10));
    until_answer(dns, "81.2.69.0", eu_west, Duration::from_secs(10));

    // eu-west failed by the operator, us-east failed by its probes: every
    // client now gets ap-south.
    let reply = http::post(admin, "/v1/regions/eu-west/fail", &[], "").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    regions[0].set(503);
    until_answer(dns, "8.8.8.0", ap_south, Duration::from_secs(10));
    until_answer(dns, "81.2.69.0", ap_south, Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let load = query_load(dns, vec![us_east, eu_west], stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    // SIGKILL: no chance to save anything on the way out.
    gslb.daemon.kill();
    gslb = Gslb::start_on(&config, &state, &dns.to_string(), &admin.to_string(), &[]);
    // Longer than `fall` probes: a node that forgot us-east was down would
    // answer it until then.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let (answered, wrong) = load.join().unwrap();
    assert!(
        wrong.is_empty(),
        "{} of {answered} answers named a region out of service: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(answered > 20, "only {answered} queries were answered");

    // The restored verdict is only a starting point: us-east comes back
    // after `rise` good probes, and eu-west when the operator says so.
    regions[0].set(200);
    until_answer(dns, "8.8.8.0", us_east, Duration::from_secs(10));
    // London's nearest is eu-west, still failed by the operator.
    assert_eq!(
        answer(dns, "81.2.69.0").as_deref(),
        Some(&[us_east][..]),
        "the override on eu-west did not survive the restart"
    );
    gslb.daemon.terminate();
    let _ = std::fs::remove_dir_all(dir);
    drop(regions);
}
