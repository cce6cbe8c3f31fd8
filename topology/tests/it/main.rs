//! Loading real files: every example loads, and every kind of mistake is
//! refused with its field path, its line and what to write instead.

use std::path::{Path, PathBuf};

use topology::LoadError;

mod hosts;
mod zone_file;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples found in {}", dir.display());
    files
}

fn example_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml"),
    )
    .unwrap()
}

/// The problems reported for `text`, as `line N: path: message` strings.
fn problems(text: &str) -> Vec<String> {
    problems_of(topology::parse(text, "test.yaml"))
}

/// The problems a load reported, as `line N: path: message` strings.
fn problems_of(loaded: Result<topology::Topology, LoadError>) -> Vec<String> {
    match loaded {
        Ok(_) => panic!("expected the file to be refused"),
        Err(LoadError::Invalid { problems, .. }) => problems
            .iter()
            .map(|p| {
                format!(
                    "line {}: {}: {}",
                    p.line.unwrap_or(0),
                    p.problem.path,
                    p.problem.message
                )
            })
            .collect(),
        Err(other) => vec![other.to_string()],
    }
}

#[test]
fn every_example_loads() {
    for path in examples() {
        let topology = topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!topology.dns.zones.is_empty(), "{}", path.display());
    }
}

#[test]
fn the_example_has_what_the_quickstart_promises() {
    let topology = topology::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml"),
    )
    .unwrap();
    let names: Vec<&str> = topology.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["us-east", "eu-west", "ap-south"]);
    assert_eq!(
        topology.dns.nodes[0].listen[0].to_string(),
        "127.0.0.1:5353"
    );
    let zone = &topology.dns.zones[0];
    assert_eq!(zone.origin.to_string(), "example.com.");
    assert_eq!(zone.geo[0].name.to_string(), "www.example.com.");
    assert_eq!(zone.negative_ttl(), 300);
}

#[test]
fn an_unknown_key_anywhere_in_any_example_is_refused() {
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        // Inject an unknown key under each mapping key that opens a block.
        let lines: Vec<&str> = text.lines().collect();
        let mut injected = 0;
        for (index, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || !trimmed.ends_with(':') || trimmed.starts_with("- ") {
                continue;
            }
            let next_indent = lines[index + 1..]
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|l| l.len() - l.trim_start().len());
            let Some(indent) = next_indent else { continue };
            let next = lines[index + 1..]
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .unwrap();
            if next.trim_start().starts_with("- ") {
                continue; // a sequence, not a mapping
            }
            let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            mutated.insert(index + 1, format!("{}surprise_key: 1", " ".repeat(indent)));
            let error = topology::parse(&mutated.join("\n"), "mutated.yaml").expect_err(&format!(
                "{}: unknown key under line {} accepted",
                path.display(),
                index + 1
            ));
            let message = error.to_string();
            // Under `regions:` keys are region names, so the stray key is a
            // malformed region; anywhere else it is an unknown field.
            assert!(message.contains("surprise_key"), "{message}");
            assert!(message.contains("line"), "{message}");
            injected += 1;
        }
        assert!(
            injected >= 5,
            "{}: only {injected} injection points",
            path.display()
        );
    }
}

#[test]
fn bad_addresses_are_refused_with_path_and_line() {
    let text = example_text()
        .replace("vip: { ipv4: 127.0.2.1", "vip: { ipv4: 127.0.2.300")
        .replace("listen: [\"127.0.0.1:5353\"]", "listen: [\"127.0.0.1\"]")
        .replace(
            "type: A,     ttl: 5m,  value: 127.0.0.80",
            "type: A,     ttl: 5m,  value: not-an-ip",
        );
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|p| p.contains("regions.eu-west.vip.ipv4: \"127.0.2.300\" is not an IPv4 address")), "{found:#?}");
    assert!(found.iter().any(|p| p.contains("dns.nodes[0].listen[0]: \"127.0.0.1\" is not an address with a port; write \"127.0.0.1:5353\"")), "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains(".value: \"not-an-ip\" is not an IPv4 address")),
        "{found:#?}"
    );
    assert!(
        found.iter().all(|p| !p.starts_with("line 0")),
        "every problem has a line: {found:#?}"
    );
}

#[test]
fn bad_ttls_are_refused() {
    let text = example_text()
        .replace(
            "ttl: 5m,  value: 127.0.0.80",
            "ttl: 300,  value: 127.0.0.80",
        )
        .replace("ttl: 30s", "ttl: 1500ms")
        .replace("minimum: 5m", "minimum: soon");
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("records[6].ttl: \"300\" has no unit; write \"300s\"")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("geo[0].ttl: \"1500ms\" is not a whole number of seconds")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("soa.minimum: \"soon\" is not a duration")),
        "{found:#?}"
    );
}

#[test]
fn dangling_references_are_refused() {
    let text = example_text()
        .replace(
            "regions: [us-east, eu-west, ap-south]",
            "regions: [us-east, eu-central]",
        )
        .replace("region: us-east", "region: us-west")
        .replace(
            "value: ns1.dev.example.com. }",
            "value: ns2.dev.example.com. }",
        );
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|p| p.contains("geo[0].regions[1]: unknown region \"eu-central\"; declared regions: us-east, eu-west, ap-south")), "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("dns.nodes[0].region: unknown region \"us-west\"")),
        "{found:#?}"
    );
    assert!(found.iter().any(|p| p.contains("name server ns2.dev.example.com. is inside zone example.com. but has no A or AAAA record")), "{found:#?}");
}

#[test]
fn zone_structure_mistakes_are_refused() {
    let extra = "        - { name: www, type: A, value: 127.0.0.9 }\n        - { name: api, type: TXT, value: clash }\n        - { name: x.dev, type: TXT, value: occluded }\n        - { name: static, type: A, ttl: 1h, value: 127.0.0.81 }\n        - { name: www.example.org., type: A, value: 127.0.0.1 }\n        - { name: static, type: DS, value: \"1 13 2 {digest}\" }\n        - { name: dev, type: DS, value: \"2 13 2 {digest}\" }\n";
    let extra = extra.replace("{digest}", &"AB".repeat(32));
    let text = example_text().replacen("      records:\n", &format!("      records:\n{extra}"), 1);
    let found = problems(&text).join("\n");
    for expected in [
        "is a geo name and also has static A records",
        "has a CNAME and also TXT records",
        "x.dev.example.com. is below the delegation at dev.example.com.",
        "differs from the 3600s of the other static.example.com. A record",
        "www.example.org. is outside zone example.com.",
        "static.example.com. holds a DS record but is not a delegation",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
    // A DS beside the delegation's NS records is the parent's to hold.
    assert!(!found.contains("dev.example.com. is delegated"), "{found}");
}

#[test]
fn syntax_errors_name_the_line() {
    let error = topology::parse("dns:\n  nodes: [\n", "broken.yaml").unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("broken.yaml: "), "{message}");
    assert!(message.contains("line"), "{message}");
    let missing = topology::parse("dns:\n  nodes: []\n", "short.yaml")
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing field `zones`"), "{missing}");
}

#[test]
fn a_missing_file_says_which() {
    let error = topology::load(Path::new("/nonexistent/topology.yaml")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot read topology file /nonexistent/topology.yaml")
    );
}

#[test]
fn l4_weights_must_name_the_regions_l7_nodes() {
    let text = example_text().replacen(
        "      nodes: [{ name: us-east-l4,",
        "      weights: { us-east-l7z: 2 }\n      nodes: [{ name: us-east-l4,",
        1,
    );
    let found = problems(&text).join("\n");
    assert!(
        found.contains("regions.us-east.l4.weights.us-east-l7z: \"us-east-l7z\" is not an L7 node of this region; weigh one of: us-east-l7a, us-east-l7b"),
        "{found}"
    );
}

/// Regression: a region with an L4 tier and the default
/// `l7.proxy_protocol: false` validated, but every request through the VIP
/// failed (the L4 tier always sends a PROXY v2 header).
#[test]
fn an_l4_tier_in_front_of_l7_nodes_without_proxy_protocol_is_refused() {
    let text = example_text();
    let marker = "      # The L4 tier opens every connection with a PROXY v2 header.\n      proxy_protocol: true\n";
    assert!(
        text.contains(marker),
        "the example's us-east l7 block changed"
    );
    let found = problems(&text.replacen(marker, "", 1)).join("\n");
    assert!(
        found.contains("regions.us-east.l7.proxy_protocol: the region's L4 tier starts every connection to the L7 nodes with a PROXY v2 header (the client's address); set `proxy_protocol: true` under `l7:`"),
        "{found}"
    );
    assert!(!found.contains("regions.eu-west"), "{found}");
}

#[test]
fn name_servers_talking_over_the_network_need_a_peer_key() {
    let networked = example_text().replacen(
        "      admin: \"127.0.0.1:5380\"   # status, overrides, reload, metrics\n",
        "      admin: \"192.0.2.53:5380\"\n    - { name: ns2, listen: [\"127.0.0.2:5353\"], admin: \"198.51.100.53:5380\" }\n",
        1,
    );
    let found = problems(&networked).join("\n");
    assert!(
        found.contains("dns.peer_key: 2 name servers exchange health views over the network; add peer_key: FILE"),
        "{found}"
    );
    let keyed = networked.replacen("dns:\n", "dns:\n  peer_key: secrets/peer.key\n", 1);
    let topology = topology::parse_file(&keyed, Path::new("/etc/gtm/topology.yaml")).unwrap();
    // Relative to the topology file, like the GeoIP database.
    assert_eq!(
        topology.dns.peer_key.as_deref(),
        Some(Path::new("/etc/gtm/secrets/peer.key"))
    );
    // Several nodes all on loopback: one machine, no key needed.
    let local = example_text().replacen(
        "      admin: \"127.0.0.1:5380\"   # status, overrides, reload, metrics\n",
        "      admin: \"127.0.0.1:5380\"\n    - { name: ns2, listen: [\"127.0.0.2:5353\"], admin: \"127.0.0.2:5380\" }\n",
        1,
    );
    assert!(
        topology::parse(&local, "local.yaml")
            .unwrap()
            .dns
            .peer_key
            .is_none()
    );
}

#[test]
fn the_breaker_and_last_known_good_are_read_and_checked() {
    let text = example_text();
    let topology = topology::parse(&text, "t.yaml").unwrap();
    // Default: all regions but one, from three regions on.
    let breaker = &topology.dns.breaker;
    assert_eq!(breaker.threshold(3), Some(2));
    assert_eq!(breaker.threshold(5), Some(4));
    assert_eq!(breaker.threshold(2), None);

    let tuned = text.replacen(
        "dns:\n",
        "dns:\n  breaker: { down_fraction: 0.5, min_regions: 2 }\n",
        1,
    );
    let breaker = topology::parse(&tuned, "t.yaml").unwrap().dns.breaker;
    assert_eq!(breaker.threshold(2), Some(1));
    assert_eq!(breaker.threshold(5), Some(3));
    let off = text.replacen("dns:\n", "dns:\n  breaker: { enabled: false }\n", 1);
    assert_eq!(
        topology::parse(&off, "t.yaml")
            .unwrap()
            .dns
            .breaker
            .threshold(9),
        None
    );

    let bad = text.replacen(
        "dns:\n",
        "dns:\n  breaker: { down_fraction: 1.5, min_regions: 1 }\n",
        1,
    );
    let found = problems(&bad);
    for want in [
        "dns.breaker.down_fraction: 1.5 is not a share of the regions; write a number in (0, 1]",
        "dns.breaker.min_regions: 1 would judge a vantage point by a single region",
    ] {
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{want:?} not among {found:?}"
        );
    }

    let lkg = text.replacen(
        "policy: nearest",
        "policy: nearest\n          all_down: last_known_good",
        1,
    );
    let topology = topology::parse(&lkg, "t.yaml").unwrap();
    assert_eq!(
        topology.dns.zones[0].geo[0].all_down,
        topology::AllDown::LastKnownGood
    );
    let found = problems(&text.replacen(
        "policy: nearest",
        "policy: nearest\n          all_down: keep",
        1,
    ));
    assert!(
        found
            .iter()
            .any(|p| p.contains("use fail_open, fail_closed, last_known_good")),
        "{found:?}"
    );
}

#[test]
fn rollover_keys_are_checked_like_signing_keys() {
    use topology::dnssec::{Algorithm, ZoneKey};
    let dir = std::env::temp_dir().join(format!("topology-rollover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let origin = topology::DomainName::parse_absolute("example.com.").unwrap();
    let signing = ZoneKey::generate(&origin, Algorithm::EcdsaP256Sha256, &dir).unwrap();
    let next = ZoneKey::generate(&origin, Algorithm::EcdsaP256Sha256, &dir).unwrap();
    let other = ZoneKey::generate(&origin, Algorithm::Ed25519, &dir).unwrap();
    let load = |keys: &[&ZoneKey], published: &[&ZoneKey]| {
        let list = |ks: &[&ZoneKey]| {
            ks.iter()
                .map(|k| format!("\"{}\"", k.path().display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = example_text().replacen(
            "    - origin: example.com.\n",
            &format!(
                "    - origin: example.com.\n      dnssec:\n        keys: [{}]\n        published: [{}]\n",
                list(keys),
                list(published)
            ),
            1,
        );
        let path = dir.join("topology.yaml");
        topology::parse_file(&text, &path)
    };
    let zone = load(&[&signing], &[&next]).unwrap();
    let dnssec = zone.dns.zones[0].dnssec.as_ref().unwrap();
    assert_eq!(dnssec.published, [next.path()]);

    let message = load(&[&signing], &[&signing]).unwrap_err().to_string();
    assert!(message.contains("dnssec.published[0]"), "{message}");
    assert!(message.contains("listed twice"), "{message}");
    // A published key of an algorithm that signs nothing would make
    // strict resolvers fail the zone.
    let message = load(&[&signing], &[&other]).unwrap_err().to_string();
    assert!(message.contains("algorithm 15 signs nothing"), "{message}");

    // A KSK/ZSK split needs both halves signing.
    use topology::dnssec::Role;
    let ksk = ZoneKey::generate_as(&origin, Algorithm::EcdsaP256Sha256, Role::Ksk, &dir).unwrap();
    let zsk = ZoneKey::generate_as(&origin, Algorithm::EcdsaP256Sha256, Role::Zsk, &dir).unwrap();
    load(&[&ksk, &zsk], &[]).unwrap();
    let message = load(&[&ksk], &[&zsk]).unwrap_err().to_string();
    assert!(
        message.contains("dnssec.keys: no key here signs the zone's data")
            && message.contains("--zsk"),
        "{message}"
    );
    let message = load(&[&zsk], &[]).unwrap_err().to_string();
    assert!(
        message.contains("no key here signs the DNSKEY RRset") && message.contains("--ksk"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_geo_https_block_is_checked() {
    let https = "          https: { alpn: [h2, http/1.1] }\n";
    let text = example_text();
    assert!(text.contains(https), "the example's www has an https block");
    for (replacement, expected) in [
        (
            "          https: { alpn: [] }\n",
            "geo[0].https.alpn: no protocols; list what every region serves",
        ),
        (
            "          https: { alpn: [h2, \"h 3\"] }\n",
            "geo[0].https.alpn[1]: ALPN id \"h 3\" must be 1 to 255 printable characters",
        ),
        (
            "          https: { alpn: [h2], port: 8443 }\n",
            "unknown field `port`",
        ),
    ] {
        let found = problems(&text.replace(https, replacement)).join("\n");
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
    // A static HTTPS RRset would contradict the per-client one.
    let clash = text.replacen(
        "      records:\n",
        "      records:\n        - { name: www, type: HTTPS, value: \"1 . alpn=h2\" }\n",
        1,
    );
    let found = problems(&clash).join("\n");
    assert!(
        found.contains("is a geo name and also has static HTTPS records"),
        "{found}"
    );
    // Without the block, a static HTTPS RRset at a geo name is the operator's.
    topology::parse(&clash.replace(https, ""), "test.yaml").expect("no clash without https:");
}

#[test]
fn a_region_capacity_is_read_and_bad_ones_are_refused_with_the_fix() {
    let text = example_text();
    let with = |capacity: &str| {
        text.replacen(
            "  us-east:\n",
            &format!("  us-east:\n    capacity: {capacity}\n"),
            1,
        )
    };
    let topology = topology::parse(&with("{ requests_per_second: 1000 }"), "t.yaml").unwrap();
    let capacity = topology.regions[0].capacity.unwrap();
    assert_eq!(capacity.unit, topology::LoadUnit::RequestsPerSecond);
    assert_eq!(capacity.target_load(), 800.0);
    assert_eq!(topology.regions[1].capacity, None);
    let topology = topology::parse(&with("{ connections: 500, target: 1 }"), "t.yaml").unwrap();
    assert_eq!(topology.regions[0].capacity.unwrap().target_load(), 500.0);

    for (capacity, want) in [
        (
            "{ requests_per_second: 0 }",
            "regions.us-east.capacity.requests_per_second: capacity 0 must be a positive number",
        ),
        (
            "{ connections: -5 }",
            "regions.us-east.capacity.connections: capacity -5 must be a positive number",
        ),
        (
            "{ requests_per_second: 100, target: 1.5 }",
            "regions.us-east.capacity.target: target 1.5 is not a share of the capacity; write a number in (0, 1]",
        ),
        (
            "{ requests_per_second: 100, target: -0.2 }",
            "regions.us-east.capacity.target: target -0.2 is not a share",
        ),
        (
            "{ requests_per_second: 100, connections: 10 }",
            "regions.us-east.capacity: both `requests_per_second` and `connections` are set",
        ),
        (
            "{ target: 0.5 }",
            "regions.us-east.capacity: no capacity given; write `requests_per_second: N` or `connections: N`",
        ),
    ] {
        let found = problems(&with(capacity));
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{capacity}: {want:?} not among {found:?}"
        );
    }
    // A region without edge tiers has nothing to measure its load on.
    let bare = text.replacen(
        "  ap-south:\n",
        "  ap-south:\n    capacity: { connections: 100 }\n",
        1,
    );
    // ap-south is the file's last region: cut it before its tiers.
    let at = bare.find("  ap-south:\n").unwrap();
    let tiers = at + bare[at..].find("    l4:").unwrap();
    let bare = format!("{}    backends: []\n", &bare[..tiers]);
    let found = problems(&bare);
    assert!(
        found.iter().any(|p| p.contains(
            "regions.ap-south.capacity: the region's load is measured on its L7 (or L4) nodes, and it has none"
        )),
        "{found:?}"
    );
}

#[test]
fn a_demo_backends_https_and_udp_addresses_are_checked() {
    let text = example_text()
        .replacen(
            "tls: { listen: \"127.0.1.101:9443\"",
            "tls: { listen: \"127.0.1.101:9000\"",
            1,
        )
        .replacen("udp: \"127.0.1.12:7007\"", "udp: \"127.0.1.12\"", 1)
        .replacen(
            "tls: { listen: \"127.0.2.102:9443\"",
            "tls: { listen: \"9443\"",
            1,
        );
    let found = problems(&text);
    assert!(
        found.iter().all(|p| !p.starts_with("line 0")),
        "every problem has a line: {found:#?}"
    );
    let found: Vec<&str> = found
        .iter()
        .map(|p| p.split_once(": ").map_or(p.as_str(), |(_, rest)| rest))
        .collect();
    assert_eq!(
        found,
        [
            "regions.us-east.backends[0].tls.listen: 127.0.1.101:9000 is also `listen`, where the backend serves plain HTTP; give HTTPS its own port, e.g. \"127.0.1.101:9443\"",
            "regions.us-east.backends[1].udp: \"127.0.1.12\" is not an address with a port; write e.g. \"127.0.1.101:9000\"",
            "regions.eu-west.backends[1].tls.listen: \"9443\" is not an address with a port; write e.g. \"127.0.1.101:9000\"",
        ],
        "{found:#?}"
    );
}
