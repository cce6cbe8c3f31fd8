//! Three `gslb` nodes as vantage points. The health matrix: one region's
//! health endpoint is closed, so every vantage point sees it down, and
//! `/v1/status`, `gtm status --matrix` and the metrics show each vantage
//! point's view and the quorum. The fail-static breaker: one node's probes
//! cut (pointed at closed ports) are set aside instead of pulling regions
//! out; then every region failing everywhere keeps the last known good
//! answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use system_tests::{free_port, healthy_region, http, json, temp_dir};

use crate::gslb_peers::start_node;
use crate::gtm::{Scratch, expect, gtm};

/// How long views may take to reach every node: a few 1 s poll rounds.
const CONVERGE: Duration = Duration::from_secs(20);

/// A port on `ip` that nothing listens on (bound, then released).
pub(crate) fn closed_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Three DNS nodes and three regions whose health endpoints are `ports`
/// (on the regions' VIPs 127.41.N.1). Probes every 500 ms: peers' views,
/// polled every second, stay fresh (three intervals) between polls.
pub(crate) fn three_nodes(admins: &[SocketAddr; 3], ports: [u16; 3], all_down: &str) -> String {
    let mut text = String::from("dns:\n  nodes:\n");
    for (index, admin) in admins.iter().enumerate() {
        text.push_str(&format!(
            "    - {{ name: ns{}, listen: [\"127.0.0.1:{}\"], admin: \"{admin}\" }}\n",
            index + 1,
            free_port()
        ));
    }
    text.push_str(&format!(
        "  zones:\n    - origin: example.com.\n      soa: {{ mname: ns1, rname: hostmaster }}\n      records:\n        - {{ name: \"@\", type: NS, value: ns1 }}\n        - {{ name: ns1, type: A, value: 127.0.0.1 }}\n      geo:\n        - {{ name: www, regions: [us-east, eu-west, ap-south], ttl: 5s, all_down: {all_down} }}\nregions:\n"
    ));
    for (index, (name, place)) in [
        ("us-east", "39.04, lon: -77.49"),
        ("eu-west", "53.35, lon: -6.26"),
        ("ap-south", "19.08, lon: 72.88"),
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "  {name}:\n    location: {{ lat: {place} }}\n    vip: {{ ipv4: 127.41.{}.1, ports: {{ http: {} }} }}\n    health: {{ path: /health, interval: 500ms, timeout: 300ms, rise: 1, fall: 2 }}\n",
            index + 1,
            ports[index]
        ));
    }
    text
}

/// `region`'s entry in the `/v1/status` of the node at `admin`.
pub(crate) fn region_status(admin: SocketAddr, region: &str) -> json::Value {
    let status = json::parse(&http::get(admin, "/v1/status").expect("status").text());
    status["regions"]
        .items()
        .iter()
        .find(|r| r["name"].str() == region)
        .expect("the region is in the status")
        .clone()
}

/// Polls `region`'s status at `admin` until `done` holds, within
/// [`CONVERGE`]; returns it.
pub(crate) fn until_region(
    admin: SocketAddr,
    region: &str,
    what: &str,
    done: impl Fn(&json::Value) -> bool,
) -> json::Value {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = region_status(admin, region);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{region} at {admin}: {what} not reached after {CONVERGE:?}; last status {status:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the `/metrics` line at `admin` that is `name` with exactly
/// `labels`.
pub(crate) fn gauge(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
}

#[test]
fn the_matrix_shows_every_vantage_points_view_and_the_quorum() {
    let scratch = Scratch::new("health-matrix");
    let state = scratch.state();
    let us_east = healthy_region("127.41.1.1");
    let eu_west = healthy_region("127.41.2.1");
    let ap_south = closed_port("127.41.3.1");
    let admins = [0; 3].map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
    let file = scratch.write(
        "topology.yaml",
        &three_nodes(
            &admins,
            [us_east.port(), eu_west.port(), ap_south],
            "fail_open",
        ),
    );
    expect(gtm(&state, &["up", file.to_str().unwrap()]), 0);

    // ns2's status: every vantage point's view of ap-south, and the quorum.
    let fresh_everywhere = |r: &json::Value| {
        r["quorum"]["fresh_views"].num() == 3.0
            && r["vantage"]
                .items()
                .iter()
                .all(|v| matches!(v["last"], json::Value::Obj(_)))
    };
    let ap = until_region(admins[1], "ap-south", "down by all three", |r| {
        fresh_everywhere(r) && r["verdict"].str() == "down"
    });
    assert_eq!(ap["quorum"]["up_votes"].num(), 0.0);
    let nodes: Vec<&str> = ap["vantage"]
        .items()
        .iter()
        .map(|v| v["node"].str())
        .collect();
    assert_eq!(nodes, ["ns2", "ns1", "ns3"], "own view first, then peers");
    for view in ap["vantage"].items() {
        assert_eq!(view["state"].str(), "down");
        assert_eq!(view["last"]["ok"], json::Value::Bool(false));
        assert!(view["last"]["detail"].str().contains("refused"), "{view:?}");
        assert!(view["last"]["latency_ms"].num() >= 0.0);
        assert_eq!(view["flaps_last_hour"].num(), 0.0, "down from the start");
    }
    let us = until_region(admins[1], "us-east", "up by all three", |r| {
        fresh_everywhere(r) && r["quorum"]["up_votes"].num() == 3.0
    });
    assert_eq!(us["verdict"].str(), "up");
    assert_eq!(us["vantage"][1]["last"]["detail"].str(), "HTTP 200");

    // `gtm status --matrix`, as JSON and as the table.
    let matrix = json::parse(&expect(gtm(&state, &["status", "--matrix", "--json"]), 0));
    assert_eq!(matrix["from"].str(), "ns1");
    let columns: Vec<&str> = matrix["vantage_points"]
        .items()
        .iter()
        .map(json::Value::str)
        .collect();
    assert_eq!(columns, ["ns1", "ns2", "ns3"]);
    let row = &matrix["regions"][2];
    assert_eq!(row["region"].str(), "ap-south");
    assert_eq!(row["verdict"].str(), "down");
    assert_eq!(row["quorum"]["fresh_views"].num(), 3.0);
    assert!(
        row["cells"]
            .items()
            .iter()
            .all(|c| c["state"].str() == "down")
    );
    let table = expect(gtm(&state, &["status", "--matrix"]), 0);
    let line = |region: &str| {
        table
            .lines()
            .find(|l| l.starts_with(region))
            .unwrap_or_else(|| panic!("no {region} row in {table}"))
            .to_owned()
    };
    assert!(
        table.lines().any(|l| l.starts_with("REGION")
            && l.contains("ns1")
            && l.contains("ns3")
            && l.ends_with("QUORUM")),
        "{table}"
    );
    assert_eq!(line("ap-south").matches("down").count(), 4, "{table}");
    assert!(line("ap-south").ends_with("down 0/3"), "{table}");
    assert!(line("us-east").ends_with("up 3/3"), "{table}");
    assert!(
        line("us-east").contains("ms"),
        "latency in the cells: {table}"
    );
    assert!(
        table.contains("ap-south from ns2: connection refused"),
        "{table}"
    );

    // The metrics: each vantage point's view, and the quorum.
    let metrics = http::get(admins[0], "/metrics").expect("metrics").text();
    for vantage in ["ns1", "ns2", "ns3"] {
        let labels = |region: &str| format!("vantage=\"{vantage}\",region=\"{region}\"");
        assert_eq!(
            gauge(&metrics, "gslb_vantage_region_up", &labels("ap-south")),
            Some(0.0),
            "{metrics}"
        );
        assert_eq!(
            gauge(&metrics, "gslb_vantage_region_up", &labels("us-east")),
            Some(1.0),
            "{metrics}"
        );
    }
    assert_eq!(
        gauge(&metrics, "gslb_region_up", "region=\"ap-south\""),
        Some(0.0)
    );
    assert_eq!(
        gauge(&metrics, "gslb_region_up", "region=\"eu-west\""),
        Some(1.0)
    );
    if let Some((ok, output)) = system_tests::promtool_check(metrics.as_bytes()) {
        assert!(ok, "promtool check metrics: {output}");
    }
}

/// A region's health endpoint that answers 200 while its switch is on and
/// 503 once it is turned off.
fn switched_region(ip: &str) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let healthy = Arc::new(AtomicBool::new(true));
    let switch = healthy.clone();
    // Lives as long as the test process; each probe is one connection.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0; 1024]);
            let status = if healthy.load(Ordering::SeqCst) {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (addr, switch)
}

/// The addresses `admin`'s node answers for `www` to a client at `client`.
fn answers(admin: SocketAddr, client: &str) -> Vec<String> {
    let path = format!("/v1/explain?name=www.example.com&client={client}&type=A");
    let explanation = json::parse(&http::get(admin, &path).expect("explain").text());
    explanation["answers"]
        .items()
        .iter()
        .filter_map(|a| a.str().split_whitespace().last().map(str::to_owned))
        .collect()
}

/// A London client and a Mumbai one.
const LONDON: &str = "81.2.69.160";
const MUMBAI: &str = "49.44.0.1";

#[test]
fn a_node_cut_off_abstains_and_a_total_outage_keeps_the_last_good_answers() {
    let dir = temp_dir("gslb-breaker");
    let regions = ["127.41.1.1", "127.41.2.1", "127.41.3.1"].map(switched_region);
    let ports = [0, 1, 2].map(|i| regions[i].0.port());
    let admins = [0; 3].map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
    let config = dir.join("topology.yaml");
    std::fs::write(&config, three_nodes(&admins, ports, "last_known_good")).unwrap();
    // ns3's copy probes closed ports: its probes alone are cut, the
    // answers (the VIP addresses) are the same.
    let cut = dir.join("cut.yaml");
    let closed = ["127.41.1.1", "127.41.2.1", "127.41.3.1"].map(closed_port);
    std::fs::write(&cut, three_nodes(&admins, closed, "last_known_good")).unwrap();
    let mut ns1 = start_node(&config, "ns1");
    let _ns2 = start_node(&config, "ns2");
    let mut ns3 = start_node(&cut, "ns3");

    // ns3 sees every region down; its votes are set aside everywhere.
    for region in ["us-east", "eu-west", "ap-south"] {
        let status = until_region(admins[0], region, "ns3 set aside", |r| {
            r["vantage"].items().iter().any(|v| {
                v["node"].str() == "ns3"
                    && v["state"].str() == "down"
                    && v["abstains"] == json::Value::Bool(true)
            })
        });
        assert_eq!(status["verdict"].str(), "up", "{status:?}");
        assert_eq!(status["in_service"], json::Value::Bool(true));
        assert_eq!(status["quorum"]["fresh_views"].num(), 2.0, "ns3 abstains");
    }
    // ns3 itself believes its peers over its own probes, and answers
    // nearest as before.
    until_region(admins[2], "eu-west", "ns3 suspects itself", |r| {
        r["in_service"] == json::Value::Bool(true)
            && r["vantage"][0]["abstains"] == json::Value::Bool(true)
    });
    assert_eq!(answers(admins[2], LONDON), ["127.41.2.1"]);
    assert_eq!(answers(admins[0], MUMBAI), ["127.41.3.1"]);
    let metrics = http::get(admins[0], "/metrics").expect("metrics").text();
    assert_eq!(
        gauge(&metrics, "gslb_vantage_suspect", "vantage=\"ns3\""),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        gauge(&metrics, "gslb_vantage_suspect", "vantage=\"ns1\""),
        Some(0.0)
    );
    ns1.wait_for("vantage point sees 3 of 3 regions down while others do not");
    ns3.wait_for("votes are set aside");

    // eu-west and ap-south fail for real: everyone agrees, London moves to
    // us-east.
    regions[1].1.store(false, Ordering::SeqCst);
    regions[2].1.store(false, Ordering::SeqCst);
    // On every node before us-east goes too: a node that saw all three go
    // out at once would rightly hold them all as last known good.
    for admin in admins {
        for region in ["eu-west", "ap-south"] {
            until_region(admin, region, "down", |r| {
                r["in_service"] == json::Value::Bool(false)
            });
        }
    }
    assert_eq!(answers(admins[0], LONDON), ["127.41.1.1"]);
    // Then us-east too: every vantage point sees every region down, nobody
    // is set aside, and the name keeps its last good answer (fail_open
    // would send London to eu-west and Mumbai to ap-south).
    regions[0].1.store(false, Ordering::SeqCst);
    let us = until_region(admins[0], "us-east", "down everywhere", |r| {
        r["in_service"] == json::Value::Bool(false)
    });
    assert!(
        us["vantage"]
            .items()
            .iter()
            .all(|v| v["abstains"] == json::Value::Bool(false)),
        "{us:?}"
    );
    for admin in admins {
        until_region(admin, "us-east", "down", |r| {
            r["in_service"] == json::Value::Bool(false)
        });
        assert_eq!(answers(admin, LONDON), ["127.41.1.1"], "at {admin}");
        assert_eq!(answers(admin, MUMBAI), ["127.41.1.1"], "at {admin}");
    }
    let explanation = http::get(
        admins[0],
        &format!("/v1/explain?name=www.example.com&client={LONDON}&type=A"),
    )
    .unwrap()
    .text();
    assert!(explanation.contains("LastKnownGood"), "{explanation}");
    let _ = std::fs::remove_dir_all(&dir);
}
