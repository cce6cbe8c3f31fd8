//! Several `gslb` binaries sharing a `dns.peer_key` on loopback: an
//! override set on one node reaches the others, a node started after it
//! was set converges, a clear travels the same way, and a peer answering
//! with an unsigned or wrongly signed view is refused and counted — its
//! forged override never taken.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use system_tests::{Daemon, binary, free_port, healthy_region, http, json, temp_dir};

/// 64 hex digits, shaped like a signature, made without the key.
const FORGED_SIGNATURE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// How long a change may take to reach a node: a few 1 s poll rounds.
const CONVERGE: Duration = Duration::from_secs(15);

/// An impostor on a peer's admin address: it answers every request with a
/// view of `node` that forges a `fail` override on us-east far in the
/// future, with `signature` as its `x-gtm-signature` if any.
fn impostor(node: &'static str, signature: Option<&'static str>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0; 2048]);
            let body = format!(
                r#"{{"node":"{node}","regions":{{"us-east":{{"up":false,"last":null}},"eu-west":{{"up":false,"last":null}}}},"overrides":{{"us-east":{{"held":{{"mode":"fail"}},"at":99999999999999,"node":"zz"}}}}}}"#
            );
            let signature = signature
                .map(|s| format!("x-gtm-signature: {s}\r\n"))
                .unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{signature}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Three real nodes (`admins`), two impostors, two regions, one key.
fn topology(
    admins: &[SocketAddr; 3],
    fakes: &[SocketAddr; 2],
    regions: &[SocketAddr; 2],
) -> String {
    let mut text = String::from("dns:\n  peer_key: peer.key\n  nodes:\n");
    let named = ["ns1", "ns2", "ns3", "ns4", "ns5"]
        .iter()
        .zip(admins.iter().chain(fakes));
    for (index, (name, admin)) in named.enumerate() {
        text.push_str(&format!(
            "    - {{ name: {name}, listen: [\"127.0.0.1:{}\"], admin: \"{admin}\" }}\n",
            53 + index
        ));
    }
    text.push_str(
        "  zones:\n    - origin: example.com.\n      soa: { mname: ns1, rname: hostmaster }\n      records:\n        - { name: \"@\", type: NS, value: ns1 }\n        - { name: ns1, type: A, value: 127.0.0.1 }\n      geo:\n        - { name: www, regions: [us-east, eu-west], ttl: 5s }\nregions:\n",
    );
    for ((name, place), vip) in ["us-east", "eu-west"]
        .iter()
        .zip(["39.04, lon: -77.49", "53.35, lon: -6.26"])
        .zip(regions)
    {
        text.push_str(&format!(
            "  {name}:\n    location: {{ lat: {place} }}\n    vip: {{ ipv4: {}, ports: {{ http: {} }} }}\n    health: {{ path: /health, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }}\n",
            vip.ip(),
            vip.port()
        ));
    }
    text
}

/// A test's files: `topology.yaml` naming three real nodes on free admin
/// ports and the impostors ns4 (unsigned) and ns5 (wrongly signed), and
/// `peer.key` with permission bits `key_mode`.
struct Files {
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
    key: std::path::PathBuf,
    admins: [SocketAddr; 3],
}

impl Files {
    fn new(name: &str, key_mode: u32) -> Files {
        let regions = [healthy_region("127.0.1.1"), healthy_region("127.0.2.1")];
        let admins = [0; 3].map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let fakes = [
            impostor("ns4", None),
            impostor("ns5", Some(FORGED_SIGNATURE)),
        ];
        let dir = temp_dir(name);
        let config = dir.join("topology.yaml");
        std::fs::write(&config, topology(&admins, &fakes, &regions)).unwrap();
        let key = dir.join("peer.key");
        std::fs::write(
            &key,
            "c2hhcmVkIHNlY3JldCBvZiB0aGUgdGhyZWUgbmFtZSBzZXJ2ZXJz\n",
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode)).unwrap();
        Files {
            dir,
            config,
            key,
            admins,
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `gslb` command line of node `name` of `config` (its admin API
/// where the topology says, DNS on a free port, a state file beside
/// `config`).
fn node_command(config: &Path, name: &str) -> Command {
    let mut command = Command::new(binary("gslb"));
    command
        .arg("--config")
        .arg(config)
        .args(["--node", name, "--listen", "127.0.0.1:0", "--state-file"])
        .arg(config.with_file_name(format!("{name}.json")));
    command
}

/// Starts node `name` of `config` (its admin API where the topology says,
/// DNS on a free port); returns once it serves DNS.
pub(crate) fn start_node(config: &Path, name: &str) -> Daemon {
    let mut daemon = Daemon::spawn(node_command(config, name));
    daemon.wait_for("serving DNS");
    daemon
}

/// The override a node reports on `region` (`None` when there is none).
fn override_on(admin: SocketAddr, region: &str) -> Option<String> {
    let status = json::parse(&http::get(admin, "/v1/status").expect("status").text());
    let region = status["regions"]
        .items()
        .iter()
        .find(|r| r["name"].str() == region)
        .expect("the region is in the status")
        .clone();
    match &region["override"] {
        json::Value::Str(mode) => Some(mode.clone()),
        _ => None,
    }
}

/// Polls until `admin` reports `expected` on `region`, within [`CONVERGE`].
fn until_override(admin: SocketAddr, region: &str, expected: Option<&str>, who: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let got = override_on(admin, region);
        if got.as_deref() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} still reports {got:?} on {region} after {CONVERGE:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the counter line of `/metrics` at `admin` that starts with
/// `name` and carries every one of `labels` (0 when there is none).
fn counter(admin: SocketAddr, name: &str, labels: &[&str]) -> f64 {
    let text = http::get(admin, "/metrics").expect("metrics").text();
    text.lines()
        .filter(|line| line.starts_with(name) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn overrides_reach_every_node_and_forged_views_are_refused() {
    let files = Files::new("gslb-peers", 0o600);
    let (config, admins) = (&files.config, files.admins);
    let mut ns1 = start_node(config, "ns1");
    let _ns2 = start_node(config, "ns2");
    let reply = http::post(
        admins[0],
        "/v1/regions/eu-west/fail",
        &[("content-type", "application/json")],
        r#"{"mode": "drain", "reason": "maintenance"}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    until_override(admins[1], "eu-west", Some("drain"), "ns2");

    // ns3 was not running when the drain was set: it converges on start.
    let _ns3 = start_node(config, "ns3");
    until_override(admins[2], "eu-west", Some("drain"), "ns3");

    // A recover on any node is a tombstone that clears it everywhere.
    let reply = http::post(admins[2], "/v1/regions/eu-west/recover", &[], "").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    until_override(admins[0], "eu-west", None, "ns1");
    until_override(admins[1], "eu-west", None, "ns2");

    // The impostors were polled all along: refused and counted, by reason.
    let deadline = Instant::now() + CONVERGE;
    while counter(admins[0], "gslb_peer_views_refused_total", &["\"ns5\""]) < 2.0 {
        assert!(Instant::now() < deadline, "ns1 never polled ns5");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = |peer: &str, reason: &str| {
        counter(
            admins[0],
            "gslb_peer_views_refused_total",
            &[&format!("peer=\"{peer}\""), &format!("reason=\"{reason}\"")],
        )
    };
    assert!(refused("ns4", "unsigned") >= 2.0);
    assert!(refused("ns5", "bad_signature") >= 2.0);
    assert_eq!(refused("ns2", "bad_signature"), 0.0);
    assert!(
        counter(
            admins[0],
            "gslb_peer_views_accepted_total",
            &["peer=\"ns2\""]
        ) >= 1.0
    );
    // Their forged override was never taken.
    assert_eq!(override_on(admins[0], "us-east"), None);
    // Logged once per change, not once per poll.
    let log = ns1.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("peer view refused") && l.contains("ns4"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[test]
fn a_peer_key_others_can_read_stops_the_node_at_start_with_the_fix() {
    let files = Files::new("gslb-peer-key", 0o644);
    let output =
        system_tests::output_within(node_command(&files.config, "ns1"), Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", files.key.display())),
        "{stderr}"
    );
}
