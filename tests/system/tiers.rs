//! The example topology's tier features, tried as a new user tries them
//! after `gtm up` (the README's "Try the tiers"): curl over HTTPS to the
//! pool re-encrypted to the backends' TLS, a UDP datagram through the VIP,
//! gRPC calls with a real gRPC client, the redirect and the header rule,
//! per-server latency in an L7 node's `/metrics` and in `gtm status`, a
//! request rate under traffic, and a TLS pool's server drained with
//! `gtm server` under load.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use system_tests::{FullTopology, examples_dir, full_topology, http, json, output_within};

use super::gtm::{Scratch, drain_a_backend_server_under_load, expect, gtm};

/// The loopback slot of this test (see `system_tests::loopback_net`).
const SLOT: u8 = 8;

/// Longest wait for a state the test waits for (pools healthy, a rate
/// measured).
const SETTLE: Duration = Duration::from_secs(30);

const BACKENDS: [&str; 2] = ["us-east-web1", "us-east-web2"];

/// Runs `curl` with `args` (silent, errors shown, bounded); its output.
fn curl(args: &[&str]) -> String {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "5"]).args(args);
    let output = output_within(command, Duration::from_secs(10));
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of response header `name` (lowercase) in `curl -i` output.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// Waits until both L7 nodes of us-east have every server of `pool` up.
fn wait_for_pool(topology: &FullTopology, net: u8, pool: &str) {
    let deadline = Instant::now() + SETTLE;
    for node in [11, 12] {
        let admin = SocketAddr::from(([127, net, 1, node], topology.edge_admin_port));
        loop {
            let status = http::get(admin, "/v1/status").map(|r| json::parse(&r.text()));
            let up = status.as_ref().is_ok_and(|status| {
                status["pools"].items().iter().any(|p| {
                    p["name"].str() == pool
                        && p["servers"]
                            .items()
                            .iter()
                            .all(|s| s["health"].str() == "up")
                })
            });
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pool {pool} on {admin} never had every server up: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// HTTPS through the VIP, verified against the example's test CA, to the
/// `secure` pool: both backends answer, each over its own TLS.
fn https_pool_answered_by_both_tls_backends(topology: &FullTopology, net: u8) {
    let port = topology.https_port;
    let ca = examples_dir().join("certs/ca.pem");
    let resolve = format!("www.example.com:{port}:127.{net}.1.1");
    let url = format!("https://www.example.com:{port}/secure");
    let mut answered = BTreeSet::new();
    for _ in 0..40 {
        let response = curl(&[
            "-i",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &resolve,
            &url,
        ]);
        assert!(response.starts_with("HTTP/2 200"), "{response}");
        let backend = header(&response, "x-backend")
            .expect("X-Backend")
            .to_owned();
        assert!(
            response.contains("\"tls\":true"),
            "the backend was reached over TLS: {response}"
        );
        answered.insert(backend);
        if answered.len() == BACKENDS.len() {
            return;
        }
    }
    panic!("only {answered:?} answered /secure in 40 requests");
}

/// A datagram to the VIP's UDP port comes back from a backend's echo; new
/// flows reach both.
fn udp_through_the_vip(topology: &FullTopology, net: u8) {
    let vip = SocketAddr::from(([127, net, 1, 1], topology.udp_port));
    let mut answered = BTreeSet::new();
    for flow in 0..32 {
        // A new socket is a new flow (a new client port).
        let socket = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket.send_to(b"hi\n", vip).unwrap();
        let mut buf = [0u8; 256];
        let (len, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("flow {flow}: no answer from {vip}: {e}"));
        assert_eq!(from, vip, "the answer leaves from the VIP");
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        let backend = BACKENDS
            .iter()
            .find(|b| text == format!("{b} (us-east): hi\n"))
            .unwrap_or_else(|| panic!("not a backend's echo: {text:?}"));
        answered.insert(*backend);
        if answered.len() == BACKENDS.len() {
            return;
        }
    }
    panic!("only {answered:?} answered in 32 flows");
}

/// Unary calls of a real gRPC client (Debian's grpcio) on one channel to
/// the VIP: each call balanced on its own, so both backends answer.
fn grpc_calls_spread_over_the_backends(topology: &FullTopology, net: u8) {
    const CLIENT: &str = r#"
import sys, grpc
channel = grpc.insecure_channel(sys.argv[1])
echo = channel.unary_unary("/demo.Echo/Echo")
for _ in range(8):
    print(echo(b"hi", timeout=5).decode())
"#;
    let target = format!("127.{net}.1.1:{}", topology.http_port);
    let mut command = Command::new("/usr/bin/python3");
    command.args(["-c", CLIENT, &target]);
    let output = output_within(command, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the grpcio client (apt-get install python3-grpcio): {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answered: BTreeSet<String> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| json::parse(line)["backend"].str().to_owned())
        .collect();
    assert_eq!(answered.len(), BACKENDS.len(), "{stdout}");
}

/// The bare domain over HTTP is sent to HTTPS on www with path and query;
/// `/api` answers carry the rule's `Cache-Control`, others do not.
fn redirect_and_header_rule(topology: &FullTopology, net: u8) {
    let vip = format!("http://127.{net}.1.1:{}", topology.http_port);
    let response = curl(&[
        "-i",
        "-H",
        "Host: example.com",
        &format!("{vip}/docs?page=2"),
    ]);
    assert!(response.starts_with("HTTP/1.1 301"), "{response}");
    assert_eq!(
        header(&response, "location"),
        Some("https://www.example.com:8443/docs?page=2"),
        "{response}"
    );
    let api = curl(&["-i", &format!("{vip}/api/users")]);
    assert_eq!(header(&api, "cache-control"), Some("no-store"), "{api}");
    let other = curl(&["-i", &format!("{vip}/")]);
    assert_eq!(header(&other, "cache-control"), None, "{other}");
}

/// Requests through the VIP from a thread until the flag drops.
fn traffic(vip: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut client = http::Client::new(vip, true);
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) && sent < 100_000 {
            let response = client.get("/secure").expect("GET /secure");
            assert_eq!(response.status, 200, "{}", response.text());
            sent += 1;
            // A steady trickle, not a flood of the two cores.
            std::thread::sleep(Duration::from_millis(5));
        }
        sent
    })
}

/// Under traffic, `gtm status` shows us-east's request rate and the
/// `secure` pool's per-server latency, and an L7 node's `/metrics` a
/// latency histogram per server.
fn rate_and_per_server_latency(state: &Path, topology: &FullTopology, net: u8) {
    let vip = SocketAddr::from(([127, net, 1, 1], topology.http_port));
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(vip, stop.clone());
    let deadline = Instant::now() + SETTLE;
    let status = loop {
        let status = json::parse(&expect(gtm(state, &["status", "--json"]), 0));
        let us_east = &status["regions"][0];
        if let json::Value::Num(rate) = us_east["requests_per_second"]
            && rate > 0.0
        {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no request rate under traffic: {us_east:?}"
        );
    };
    let human = expect(gtm(state, &["status"]), 0);
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().expect("the traffic thread");
    assert!(sent > 0);
    eprintln!(
        "us-east: {:?} req/s",
        status["regions"][0]["requests_per_second"]
    );
    let rows: Vec<&str> = human
        .lines()
        .filter(|l| l.starts_with("us-east-l7") && l.contains(" secure "))
        .collect();
    assert_eq!(rows.len(), 4, "a row per L7 node and server: {human}");
    assert!(
        rows.iter().any(|r| !r.ends_with(" 0.0 ms")),
        "a secure server's latency is shown: {human}"
    );
    let mut counted = 0.0;
    for node in [11, 12] {
        let admin = SocketAddr::from(([127, net, 1, node], topology.edge_admin_port));
        let metrics = http::get(admin, "/metrics").expect("metrics").text();
        for backend in [101, 102] {
            let server = format!("127.{net}.1.{backend}:9443");
            let count = metrics
                .lines()
                .filter(|l| {
                    l.starts_with("edge_l7_server_response_duration_seconds_count{")
                        && l.contains("pool=\"secure\"")
                        && l.contains(&format!("server=\"{server}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
            counted += count;
        }
    }
    assert!(
        counted >= sent as f64 * 0.9,
        "the per-server histograms counted {counted} of {sent} requests"
    );
}

#[test]
fn the_example_shows_every_tier_feature_to_a_new_user() {
    let scratch = Scratch::new("tiers");
    let state = scratch.state();
    let net = system_tests::loopback_net(SLOT);
    let topology = full_topology(net);
    let file = scratch.write("topology.yaml", &topology.yaml);
    expect(gtm(&state, &["up", file.to_str().unwrap()]), 0);
    wait_for_pool(&topology, net, "secure");
    wait_for_pool(&topology, net, "grpc");

    https_pool_answered_by_both_tls_backends(&topology, net);
    udp_through_the_vip(&topology, net);
    grpc_calls_spread_over_the_backends(&topology, net);
    redirect_and_header_rule(&topology, net);
    rate_and_per_server_latency(&state, &topology, net);
    drain_a_backend_server_under_load(&state, &topology, net, ("secure", "/secure", 9443));
    expect(gtm(&state, &["down"]), 0);
}
