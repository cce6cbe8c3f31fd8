//! Files for `topology_loader`: every example as it is on disk, the edits
//! the tests make to examples/three-regions.yaml (applied to the current
//! file, so the seeds follow it), and the snippets tests write whole.

use std::io;
use std::path::Path;

use crate::Seed;

/// Edits of three-regions.yaml: (seed, [(text to find, replacement)]).
const EDITS: &[(&str, &[(&str, &str)])] = &[
    // topology/tests/it/main.rs
    (
        "bad-addresses",
        &[
            ("vip: { ipv4: 127.0.2.1", "vip: { ipv4: 127.0.2.300"),
            ("listen: [\"127.0.0.1:5353\"]", "listen: [\"127.0.0.1\"]"),
            ("type: A,     ttl: 5m,  value: 127.0.0.80", "type: A,     ttl: 5m,  value: not-an-ip"),
        ],
    ),
    (
        "bad-ttls",
        &[
            ("ttl: 5m,  value: 127.0.0.80", "ttl: 300,  value: 127.0.0.80"),
            ("ttl: 30s", "ttl: 1500ms"),
            ("minimum: 5m", "minimum: soon"),
        ],
    ),
    (
        "dangling-references",
        &[
            ("regions: [us-east, eu-west, ap-south]", "regions: [us-east, eu-central]"),
            ("region: us-east", "region: us-west"),
            ("value: ns1.dev.example.com. }", "value: ns2.dev.example.com. }"),
        ],
    ),
    (
        "zone-structure-mistakes",
        &[(
            "      records:\n",
            "      records:\n        - { name: www, type: A, value: 127.0.0.9 }\n        - { name: api, type: TXT, value: clash }\n        - { name: x.dev, type: TXT, value: occluded }\n        - { name: static, type: A, ttl: 1h, value: 127.0.0.81 }\n        - { name: www.example.org., type: A, value: 127.0.0.1 }\n",
        )],
    ),
    (
        "l4-weight-for-unknown-node",
        &[(
            "      nodes: [{ name: us-east-l4,",
            "      weights: { us-east-l7z: 2 }\n      nodes: [{ name: us-east-l4,",
        )],
    ),
    ("unknown-key", &[("dns:\n", "dns:\n  surprise_key: 1\n")]),
    // topology/src/tiers/l4.rs
    (
        "l4-options",
        &[(
            "      nodes: [{ name: us-east-l4,",
            "      drain_timeout: 5s\n      weights: { us-east-l7a: 3, us-east-l7b: 0 }\n      nodes: [{ name: us-east-l4,",
        )],
    ),
    (
        "l4-bad-values",
        &[(
            "      nodes: [{ name: us-east-l4,",
            "      drain_timeout: 30\n      weights: { us-east-l7a: 1000 }\n      idle_timeout: 0s\n      nodes: [{ name: us-east-l4,",
        )],
    ),
    // tests/system/gtm.rs: `gtm validate` refusals
    ("gtm-bad", &[("ipv4: 127.0.3.1", "ipv4: 127.0.3"), ("ttl: 30s", "ttl: 30")]),
    (
        "gtm-address-clash",
        &[("admin: \"127.0.1.12:9100\"", "admin: \"127.0.1.101:9000\"")],
    ),
    // gslb/tests/it/fast_path.rs: every kind of data the lookup treats
    // differently (without its 100 generated address records)
    (
        "fast-path-topology",
        &[
            (
                "      records:\n",
                "      records:
        - { name: \"@\",      type: CAA,   value: '0 issue \"letsencrypt.org\"' }
        - { name: _sip._tcp, type: SRV,   value: \"10 5 5060 mail.example.com.\" }
        - { name: ptr,       type: PTR,   value: static.example.com. }
        - { name: long,      type: TXT,   value: \"an answer long enough to be split? no, but spaces and 'quotes' are kept\" }
        - { name: dangling,  type: CNAME, value: missing.example.com. }
        - { name: outside,   type: CNAME, value: www.example.org. }
        - { name: c1,        type: CNAME, value: c2.example.com. }
        - { name: c2,        type: CNAME, value: static.example.com. }
        - { name: mailer,    type: MX,    value: \"5 mx2.example.com.\" }
        - { name: Mixed.Case, type: A,    value: 127.0.0.77 }
",
            ),
            (
                "      geo:\n",
                "      geo:
        - { name: fo, regions: [eu-west, us-east], policy: failover }
        - { name: all3, regions: [us-east, eu-west, ap-south], policy: all, max_answers: 2 }
        - { name: fc, regions: [eu-west, ap-south], all_down: fail_closed }
        - { name: fb, regions: [ap-south], all_down: { fallback: [192.0.2.10, \"2001:db8::10\"] } }
        - { name: legacy, regions: [v4-only, us-east] }
        - { name: w, regions: [us-east, eu-west], policy: weighted }
",
            ),
            (
                "  zones:\n",
                "  overrides:
    nets:
      \"203.0.113.0/24\": [ap-south]
      \"81.2.69.192/26\": [ap-south]
      \"2001:db8::/32\": [eu-west]
    countries:
      FR: [ap-south]
  zones:
",
            ),
            (
                "      - { name: ap-south-web2, listen: \"127.0.3.102:9000\" }\n",
                "      - { name: ap-south-web2, listen: \"127.0.3.102:9000\" }
  v4-only:
    location: { lat: 35.68, lon: 139.69 }
    vip: { ipv4: 127.0.4.1 }
",
            ),
        ],
    ),
];

/// A one-region topology around an `l7:` block, as
/// topology/src/tiers/l7.rs's tests wrap theirs.
const L7_WRAPPER: &str = "dns:
  nodes: [{ name: ns1, listen: [\"127.0.0.1:5353\"] }]
  zones:
    - origin: example.com.
      soa: { mname: ns1.example.com., rname: hostmaster@example.com }
      records:
        - { name: \"@\", type: NS, value: ns1.example.com. }
        - { name: ns1, type: A, value: 127.0.0.1 }
regions:
  r:
    location: { lat: 0, lon: 0 }
    vip: { ipv4: 127.0.0.1 }
    l7:
";

/// topology/src/tiers/l7.rs's tests: (seed, `l7:` block).
const L7_BLOCKS: &[(&str, &str)] = &[
    (
        "l7-minimal",
        "nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
routes: [{ pool: web }]
pools:
  web:
    servers: [{ addr: \"127.0.0.1:9000\" }]
",
    ),
    (
        "l7-every-option",
        "nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
proxy_protocol: true
http2: false
via: true
tls:
  certs: [{ cert: a.pem, key: a.key }]
  min_version: \"1.3\"
  session_tickets: false
timeouts: { connect: 1s, request_headers: 2s, request_body: 7s, response: 3s, idle: 4s, upstream_idle: 5s, drain: 6s }
limits: { max_requests: 7, max_connections_per_client: 0, max_header_count: 9, max_header_bytes: 10000, max_h2_streams: 11 }
rate_limit: { requests: 50, per: 10s, burst: 60 }
routes:
  - { host: \"*.Example.com\", path: /api, header: { name: X-Canary, value: 1 }, rewrite: /v2, pool: web }
pools:
  web:
    algorithm: hash
    hash_on: \"cookie:session\"
    servers: [{ addr: \"127.0.0.1:9000\", weight: 3 }, { addr: \"127.0.0.1:9001\", backup: true }]
    slow_start: 30s
    fail_open: false
    max_requests_per_server: 12
    outlier: { failures: 3, ejection: 1s, max_ejection: 8s }
    sticky: { cookie: SRV, path: /app, max_age: 1h, secure: true, http_only: false, same_site: none }
    retries: { attempts: 2, statuses: \"500,502-504\", budget_percent: 50, min_per_second: 1 }
",
    ),
    (
        "l7-mistakes",
        "nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
tls: { certs: [], min_version: \"1.0\" }
timeouts: { connect: 2, idle: 0s }
limits: { max_header_bytes: 100 }
rate_limit: { requests: 0 }
routes:
  - { host: \"www.*.com\", path: api, header: { name: \"bad name\" }, rewrite: v2, pool: nope }
pools:
  web:
    algorithm: fastest
    hash_on: \"ip\"
    servers: [{ addr: \"127.0.0.1:9000\", backup: true }, { addr: \"127.0.0.1:9000\", backup: true }]
    slow_start: 10
    outlier: { ejection: 10s, max_ejection: 1s }
    sticky: { cookie: \"a b\", same_site: none }
    retries: { statuses: \"700\", budget_percent: 150 }
",
    ),
];

/// Whole files: (seed, text).
const FILES: &[(&str, &str)] = &[
    // topology/tests/it/main.rs: syntax_errors_name_the_line
    ("syntax-unclosed", "dns:\n  nodes: [\n"),
    ("syntax-missing-zones", "dns:\n  nodes: []\n"),
    // tests/system/gtm.rs: dns_only_topology, on fixed ports
    (
        "gtm-dns-only",
        r#"dns:
  nodes:
    - name: ns1
      region: us-east
      listen: ["127.0.0.1:5353"]
      admin: "127.0.0.1:5380"
  zones:
    - origin: example.com.
      soa: { mname: ns1.example.com., rname: hostmaster@example.com }
      records:
        - { name: "@", type: NS, value: ns1.example.com. }
        - { name: ns1, type: A, value: 127.0.0.1 }
      geo:
        - { name: www, regions: [us-east, eu-west, ap-south], ttl: 30s }
regions:
  us-east:
    location: { lat: 39.04, lon: -77.49 }
    vip: { ipv4: 127.0.1.1, ipv6: "fd00:1::1" }
  eu-west:
    location: { lat: 53.35, lon: -6.26 }
    vip: { ipv4: 127.0.2.1, ipv6: "fd00:2::1" }
  ap-south:
    location: { lat: 19.08, lon: 72.88 }
    vip: { ipv4: 127.0.3.1, ipv6: "fd00:3::1" }
"#,
    ),
];

pub fn seeds(repo: &Path) -> io::Result<Vec<Seed>> {
    let examples = repo.join("examples");
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let name = path.file_name().unwrap().to_string_lossy();
            seeds.push((format!("example-{name}"), std::fs::read(&path)?));
        }
    }
    seeds.sort();
    let example = std::fs::read_to_string(examples.join("three-regions.yaml"))?;
    for (name, edits) in EDITS {
        let mut text = example.clone();
        for (from, to) in *edits {
            assert!(
                text.contains(from),
                "{name}: examples/three-regions.yaml no longer contains {from:?}; update the seed from its test"
            );
            text = text.replacen(from, to, 1);
        }
        seeds.push((format!("{name}.yaml"), text.into_bytes()));
    }
    for (name, block) in L7_BLOCKS {
        let indented: String = block
            .lines()
            .map(|line| format!("      {line}\n"))
            .collect();
        seeds.push((
            format!("{name}.yaml"),
            format!("{L7_WRAPPER}{indented}").into_bytes(),
        ));
    }
    for (name, text) in FILES {
        seeds.push((format!("{name}.yaml"), text.as_bytes().to_vec()));
    }
    Ok(seeds)
}
