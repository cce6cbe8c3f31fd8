//! The UDP fast path answers byte for byte as the slow path does: the same
//! corpus of queries through both (every record type and edge case of the
//! other tests, with and without EDNS and client subnets from several
//! continents, in several spellings, under several health views), random
//! and mutated packets, random clients for the geo decisions, and the same
//! over real sockets.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gslb::ServingState;
use gslb::dns::{MAX_UDP_PAYLOAD, answer_bytes};
use gslb::fast::{Answer, Tables};
use gslb::health::RegionHealth;
use gslb::metrics::Metrics;
use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::support::{Ask, REPLY_TIMEOUT};

/// The example plus every kind of data the lookup treats differently.
fn topology_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
    let text = std::fs::read_to_string(path).expect("example readable");
    let mut records = String::from("      records:\n");
    for line in [
        "- { name: \"@\",      type: CAA,   value: '0 issue \"letsencrypt.org\"' }",
        "- { name: _sip._tcp, type: SRV,   value: \"10 5 5060 mail.example.com.\" }",
        "- { name: ptr,       type: PTR,   value: static.example.com. }",
        "- { name: long,      type: TXT,   value: \"an answer long enough to be split? no, but spaces and 'quotes' are kept\" }",
        "- { name: dangling,  type: CNAME, value: missing.example.com. }",
        "- { name: outside,   type: CNAME, value: www.example.org. }",
        "- { name: c1,        type: CNAME, value: c2.example.com. }",
        "- { name: c2,        type: CNAME, value: static.example.com. }",
        "- { name: mailer,    type: MX,    value: \"5 mx2.example.com.\" }",
        "- { name: Mixed.Case, type: A,    value: 127.0.0.77 }",
    ] {
        records.push_str(&format!("        {line}\n"));
    }
    for i in 0..60 {
        records.push_str(&format!(
            "        - {{ name: big, type: A, ttl: 1m, value: 127.0.{}.{} }}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    for i in 0..40 {
        records.push_str(&format!(
            "        - {{ name: mx2, type: A, value: 127.0.9.{} }}\n",
            i + 1
        ));
    }
    let geo = "      geo:\n\
        \x20       - { name: fo, regions: [eu-west, us-east], policy: failover }\n\
        \x20       - { name: all3, regions: [us-east, eu-west, ap-south], policy: all, max_answers: 2 }\n\
        \x20       - { name: fc, regions: [eu-west, ap-south], all_down: fail_closed }\n\
        \x20       - { name: fb, regions: [ap-south], all_down: { fallback: [192.0.2.10, \"2001:db8::10\"] } }\n\
        \x20       - { name: legacy, regions: [v4-only, us-east] }\n\
        \x20       - { name: w, regions: [us-east, eu-west], policy: weighted }\n";
    let overrides = "  overrides:\n\
        \x20   nets:\n\
        \x20     \"203.0.113.0/24\": [ap-south]\n\
        \x20     \"81.2.69.192/26\": [ap-south]\n\
        \x20     \"2001:db8::/32\": [eu-west]\n\
        \x20   countries:\n\
        \x20     FR: [ap-south]\n\
        \x20 zones:\n";
    let region = "  v4-only:\n\
        \x20   location: { lat: 35.68, lon: 139.69 }\n\
        \x20   vip: { ipv4: 127.0.4.1 }\n";
    text.replacen("      records:\n", &records, 1)
        .replacen("      geo:\n", geo, 1)
        .replacen("  zones:\n", overrides, 1)
        + region
}

fn state() -> Arc<ServingState> {
    let topology =
        topology::parse(&topology_text(), "<fast-path test>").expect("test topology is valid");
    let geoip = Arc::new(gslb::open_geoip(&topology).unwrap());
    let state = ServingState::new(Arc::new(topology), geoip, None).unwrap();
    state.scopes.warm();
    Arc::new(state)
}

/// Health views: all up; eu-west down; every region down (fail open);
/// us-east held by an operator and ap-south down.
fn health_views(regions: usize) -> Vec<(&'static str, Arc<RegionHealth>)> {
    let mut eu_down = vec![true; regions];
    eu_down[1] = false;
    let mut held = vec![false; regions];
    held[0] = true;
    let mut up = vec![true; regions];
    up[0] = false;
    up[2] = false;
    vec![
        ("all up", Arc::new(RegionHealth::all_up(regions))),
        ("eu-west down", Arc::new(RegionHealth::from_states(eu_down))),
        (
            "all down",
            Arc::new(RegionHealth::from_states(vec![false; regions])),
        ),
        (
            "us-east held",
            Arc::new(RegionHealth::with_overrides(up, held)),
        ),
    ]
}

const QUESTIONS: &[(&str, RecordType)] = &[
    ("static.example.com.", RecordType::A),
    ("static.example.com.", RecordType::AAAA),
    ("static.example.com.", RecordType::MX),
    ("static.example.com.", RecordType::TXT),
    ("example.com.", RecordType::SOA),
    ("example.com.", RecordType::NS),
    ("example.com.", RecordType::MX),
    ("example.com.", RecordType::TXT),
    ("example.com.", RecordType::CAA),
    ("example.com.", RecordType::A),
    ("example.com.", RecordType::ANY),
    ("ns1.example.com.", RecordType::A),
    ("ns1.example.com.", RecordType::Unknown(65280)),
    ("mail.example.com.", RecordType::AAAA),
    ("_sip._tcp.example.com.", RecordType::SRV),
    ("ptr.example.com.", RecordType::PTR),
    ("long.example.com.", RecordType::TXT),
    ("mixed.case.example.com.", RecordType::A),
    ("big.example.com.", RecordType::A),
    ("mailer.example.com.", RecordType::MX),
    ("www.example.com.", RecordType::A),
    ("www.example.com.", RecordType::AAAA),
    ("www.example.com.", RecordType::TXT),
    ("www.example.com.", RecordType::ANY),
    ("www.example.com.", RecordType::HTTPS),
    ("example.com.", RecordType::HTTPS),
    ("static.example.com.", RecordType::HTTPS),
    ("_dns.static.example.com.", RecordType::SVCB),
    ("_443._tcp.static.example.com.", RecordType::TLSA),
    ("static.example.com.", RecordType::SSHFP),
    ("sip.example.com.", RecordType::NAPTR),
    ("fo.example.com.", RecordType::A),
    ("fo.example.com.", RecordType::AAAA),
    ("all3.example.com.", RecordType::A),
    ("all3.example.com.", RecordType::AAAA),
    ("fc.example.com.", RecordType::A),
    ("fb.example.com.", RecordType::A),
    ("fb.example.com.", RecordType::AAAA),
    ("legacy.example.com.", RecordType::A),
    ("legacy.example.com.", RecordType::AAAA),
    ("w.example.com.", RecordType::A),
    ("api.example.com.", RecordType::A),
    ("api.example.com.", RecordType::TXT),
    ("api.example.com.", RecordType::CNAME),
    ("c1.example.com.", RecordType::A),
    ("c1.example.com.", RecordType::MX),
    ("dangling.example.com.", RecordType::A),
    ("outside.example.com.", RecordType::A),
    ("shop.apps.example.com.", RecordType::A),
    ("a.b.apps.example.com.", RecordType::TXT),
    ("apps.example.com.", RecordType::A),
    ("dev.example.com.", RecordType::NS),
    ("dev.example.com.", RecordType::A),
    ("dev.example.com.", RecordType::DS),
    ("host.dev.example.com.", RecordType::A),
    ("deep.host.dev.example.com.", RecordType::MX),
    ("ns1.dev.example.com.", RecordType::A),
    ("nope.example.com.", RecordType::A),
    ("deep.nope.example.com.", RecordType::AAAA),
    ("x.static.example.com.", RecordType::A),
    ("x.ns1.example.com.", RecordType::A),
    ("a.hostmaster.example.com.", RecordType::TXT),
    ("www.example.org.", RecordType::A),
    ("org.", RecordType::NS),
    (".", RecordType::SOA),
];

/// Client subnets: (address, source prefix).
const SUBNETS: &[(&str, u8)] = &[
    ("81.2.69.0", 24),    // United Kingdom
    ("81.2.69.192", 26),  // inside a network override
    ("8.8.8.0", 24),      // United States
    ("1.1.1.0", 24),      // Australia
    ("49.44.0.0", 16),    // India
    ("200.160.0.0", 20),  // Brazil
    ("2.0.0.0", 8),       // France, wide
    ("203.0.113.77", 32), // a network override, beyond the truncation
    ("2a02:8800::", 32),  // United Kingdom (IPv6)
    ("2001:db8:1::", 48), // an IPv6 network override
    ("2c0f:f000::", 24),  // Africa (IPv6)
    ("0.0.0.0", 0),       // "do not use my address"
];

const SOURCES: &[&str] = &[
    "127.0.0.1:5300",
    "81.2.69.160:53",
    "8.8.8.8:1053",
    "203.0.113.9:53",
    "[2a02:8800::1]:53",
    "[::ffff:1.1.1.1]:53",
];

/// The ways each question is asked: (EDNS payload, subnet) pairs.
/// How a question is asked: the EDNS payload size, and the client subnet.
type Variant = (Option<u16>, Option<(&'static str, u8)>);

fn variants() -> Vec<Variant> {
    let mut variants = vec![
        (None, None),
        (Some(512), None),
        (Some(1232), None),
        (Some(4096), None),
    ];
    variants.extend(SUBNETS.iter().map(|subnet| (Some(1232), Some(*subnet))));
    variants
}

/// Lowercase, uppercase, and alternating case.
fn spellings(name: &str) -> [String; 3] {
    let alternating = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    [
        name.to_ascii_lowercase(),
        name.to_ascii_uppercase(),
        alternating,
    ]
}

fn query(
    name: &str,
    rtype: RecordType,
    edns: Option<u16>,
    subnet: Option<(&str, u8)>,
    id: u16,
) -> Vec<u8> {
    let mut ask = Ask::new(name, rtype);
    ask.message.metadata.id = id;
    ask.message.metadata.recursion_desired = id.is_multiple_of(2);
    ask.message.metadata.checking_disabled = id.is_multiple_of(3);
    if let Some(payload) = edns {
        ask = ask.edns(payload);
    }
    if let Some((address, source)) = subnet {
        ask = ask.ecs(address, source);
    }
    ask.bytes()
}

/// Every corpus packet, with a label for failure messages.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut packets = Vec::new();
    let mut id = 0u16;
    for (name, rtype) in QUESTIONS {
        for spelling in spellings(name) {
            for (edns, subnet) in variants() {
                id = id.wrapping_add(7919);
                packets.push((
                    format!("{spelling} {rtype} edns={edns:?} ecs={subnet:?}"),
                    query(&spelling, *rtype, edns, subnet, id),
                ));
            }
        }
    }
    // EDNS options the fast path passes over, and ones it leaves alone.
    let mut cookie = Ask::new("www.example.com.", RecordType::A).ecs("81.2.69.0", 24);
    let edns: &mut Edns = cookie.message.edns.as_mut().unwrap();
    edns.options_mut()
        .insert(EdnsOption::Unknown(10, vec![1, 2, 3, 4, 5, 6, 7, 8]));
    packets.push(("cookie".into(), cookie.bytes()));
    let mut do_bit = Ask::new("static.example.com.", RecordType::A).edns(1232);
    do_bit.message.edns.as_mut().unwrap().set_dnssec_ok(true);
    packets.push(("DO bit".into(), do_bit.bytes()));
    let chaos = Ask::new("static.example.com.", RecordType::A).class(DNSClass::CH);
    packets.push(("class CH".into(), chaos.bytes()));
    packets
}

/// One comparison: the slow path's bytes, and what the fast path did.
fn both(
    tables: &Tables,
    state: &ServingState,
    health: &RegionHealth,
    packet: &[u8],
    src: SocketAddr,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let metrics = Metrics::new();
    let slow = answer_bytes(state, health, &metrics, packet, src, MAX_UDP_PAYLOAD);
    let mut out = vec![0u8; 65535];
    let fast = match tables.answer(packet, src, MAX_UDP_PAYLOAD, &mut out) {
        Answer::Reply { len, .. } => Some(out[..len].to_vec()),
        Answer::Slow => None,
    };
    (slow, fast)
}

/// The serving state, and tables for each health view.
type Fixture = (
    Arc<ServingState>,
    Vec<(&'static str, Arc<RegionHealth>, Tables)>,
);

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| with_views(state()))
}

/// `state` with tables for each health view.
fn with_views(state: Arc<ServingState>) -> Fixture {
    let mut views: Vec<(&'static str, Arc<RegionHealth>, Tables)> = Vec::new();
    for (label, health) in health_views(state.topology.regions.len()) {
        // Health changes rebuild only the outcomes.
        let tables = Tables::build(state.clone(), health.clone(), views.first().map(|v| &v.2));
        views.push((label, health, tables));
    }
    (state, views)
}

/// Compares both paths over `corpus` from each health view and client
/// source that matters; returns (compared, fast answered) and the first
/// differences.
fn compare_all(fixture: &Fixture, corpus: &[(String, Vec<u8>)]) -> (usize, usize, Vec<String>) {
    let (state, views) = fixture;
    let (mut compared, mut fast_answered) = (0, 0);
    let mut differences = Vec::new();
    for (view, health, tables) in views {
        for (label, packet) in corpus {
            // Where the query comes from, and health, matter to geo names only.
            let geo = [
                "www", "fo.", "all3", "fc.", "fb.", "legacy", "w.", "api", "cookie",
            ]
            .iter()
            .any(|name| label.to_ascii_lowercase().starts_with(name));
            if !geo && *view != views[0].0 {
                continue;
            }
            let sources = if geo { SOURCES } else { &SOURCES[..2] };
            for source in sources {
                let src: SocketAddr = source.parse().unwrap();
                let (slow, fast) = both(tables, state, health, packet, src);
                compared += 1;
                let Some(fast) = fast else { continue };
                fast_answered += 1;
                if slow.as_deref() != Some(&fast[..]) && differences.len() < 10 {
                    differences.push(format!(
                        "{label} from {src} ({view}):\n  slow {slow:02x?}\n  fast {fast:02x?}"
                    ));
                }
            }
        }
    }
    (compared, fast_answered, differences)
}

#[test]
fn the_corpus_gets_byte_identical_replies_from_both_paths() {
    let (compared, fast_answered, differences) = compare_all(fixture(), &corpus());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    eprintln!("{compared} queries compared, {fast_answered} answered by the fast path");
    assert!(compared > 10_000, "{compared}");
    assert!(
        fast_answered * 2 > compared,
        "only {fast_answered} of {compared} took the fast path"
    );
}

#[test]
fn the_common_queries_take_the_fast_path() {
    let (_, views) = fixture();
    let (_, _, tables) = &views[0];
    let src: SocketAddr = "81.2.69.160:53".parse().unwrap();
    for (name, rtype, edns, subnet) in [
        ("static.example.com.", RecordType::A, None, None),
        ("StAtIc.ExAmPlE.cOm.", RecordType::AAAA, Some(1232), None),
        ("www.example.com.", RecordType::A, None, None),
        (
            "www.example.com.",
            RecordType::A,
            Some(1232),
            Some(("8.8.8.0", 24)),
        ),
        (
            "www.example.com.",
            RecordType::AAAA,
            Some(1232),
            Some(("2a02:8800::", 32)),
        ),
        (
            "www.example.com.",
            RecordType::A,
            Some(1232),
            Some(("203.0.113.0", 24)),
        ),
        (
            "all3.example.com.",
            RecordType::A,
            Some(1232),
            Some(("1.1.1.0", 24)),
        ),
        ("fo.example.com.", RecordType::A, None, None),
        (
            "nope.example.com.",
            RecordType::A,
            Some(1232),
            Some(("1.1.1.0", 24)),
        ),
        ("x.ns1.example.com.", RecordType::A, None, None),
        ("static.example.com.", RecordType::MX, None, None),
        ("apps.example.com.", RecordType::A, None, None),
        ("host.dev.example.com.", RecordType::A, None, None),
        ("example.com.", RecordType::MX, None, None),
        ("www.example.org.", RecordType::A, Some(4096), None),
        ("c1.example.com.", RecordType::A, None, None),
    ] {
        let packet = query(name, rtype, edns, subnet, 1);
        let mut out = vec![0u8; 4096];
        assert!(
            matches!(
                tables.answer(&packet, src, MAX_UDP_PAYLOAD, &mut out),
                Answer::Reply { .. }
            ),
            "{name} {rtype} {edns:?} {subnet:?} went to the slow path"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any client network, IPv4 or IPv6, with any source prefix: the geo
    /// decision table agrees with `decide` to the byte, scope included.
    #[test]
    fn random_clients_get_the_same_geo_answer(
        v4 in any::<u32>(),
        v6 in any::<u128>(),
        use_v6 in any::<bool>(),
        source in 0u8..=128,
        name in prop::sample::select(vec!["www.example.com.", "all3.example.com.", "legacy.example.com.", "fc.example.com."]),
        aaaa in any::<bool>(),
        view in 0usize..4,
        resolver in any::<u32>(),
    ) {
        let (state, views) = fixture();
        let (_, health, tables) = &views[view];
        let address = if use_v6 { IpAddr::from(std::net::Ipv6Addr::from(v6)) } else { IpAddr::from(std::net::Ipv4Addr::from(v4)) };
        let source = if use_v6 { source } else { source % 33 };
        let network = geo_data::Prefix::new(address, source).unwrap().addr();
        let rtype = if aaaa { RecordType::AAAA } else { RecordType::A };
        let mut ask = Ask::new(name, rtype);
        ask = ask.ecs_raw(network, source, 0);
        let src = SocketAddr::new(IpAddr::from(std::net::Ipv4Addr::from(resolver)), 53);
        let (slow, fast) = both(tables, state, health, &ask.bytes(), src);
        let fast = fast.expect("geo queries with a valid subnet take the fast path");
        prop_assert_eq!(slow.as_deref(), Some(&fast[..]));
    }

    /// Random and mutated packets never make the fast path panic; whatever
    /// it answers parses and is what the slow path answers.
    #[test]
    fn hostile_packets_are_answered_as_the_slow_path_does_or_left_to_it(
        seed in 0usize..64,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        random in prop::collection::vec(any::<u8>(), 0..300),
        use_random in prop::bool::weighted(0.2),
    ) {
        let (state, views) = fixture();
        let (_, health, tables) = &views[seed % views.len()];
        let seeds = seed_packets();
        let mut packet = if use_random { random } else { seeds[seed % seeds.len()].clone() };
        if !use_random {
            for (at, value) in flips {
                let len = packet.len();
                packet[at % len] = value;
            }
            if cut % 3 == 0 {
                packet.truncate(cut % (packet.len() + 1));
            }
        }
        let src: SocketAddr = "81.2.69.160:53".parse().unwrap();
        let (slow, fast) = both(tables, state, health, &packet, src);
        if let Some(fast) = fast {
            prop_assert!(Message::from_vec(&fast).is_ok(), "unparseable {:02x?}", fast);
            prop_assert_eq!(slow.as_deref(), Some(&fast[..]));
        }
    }
}

fn seed_packets() -> &'static Vec<Vec<u8>> {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let corpus = corpus();
        let step = corpus.len() / 60;
        corpus
            .into_iter()
            .step_by(step.max(1))
            .map(|(_, p)| p)
            .collect()
    })
}

/// Over real sockets, with two workers sharing the port: every reply is
/// the slow path's, and the queries are counted in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_udp_the_workers_answer_as_the_slow_path_does() {
    let state = state();
    let health = Arc::new(RegionHealth::all_up(state.topology.regions.len()));
    let metrics = Metrics::new();
    let listeners = gslb::Listeners::bind(&["127.0.0.1:0".parse().unwrap()], None)
        .await
        .unwrap();
    let addr = listeners.dns_addrs()[0];
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(gslb::serve::serve_with(
        Arc::new(ArcSwap::new(state.clone())),
        Arc::new(ArcSwap::new(health.clone())),
        metrics.clone(),
        listeners.dns,
        shutdown.clone(),
        Duration::from_secs(1),
        gslb::serve::ServeOptions {
            udp: gslb::serve::UdpOptions {
                threads: 2,
                max_payload: MAX_UDP_PAYLOAD,
            },
            tcp: gslb::serve::TcpOptions::default(),
        },
    ));
    // Several client sockets, so the kernel spreads them over both workers.
    let mut sent = 0u64;
    let corpus = corpus();
    for (round, chunk) in corpus.chunks(97).take(40).enumerate() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let src = socket.local_addr().unwrap();
        for (label, packet) in chunk {
            socket.send_to(packet, addr).await.unwrap();
            let mut buf = vec![0u8; 65535];
            let (len, _) = tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no reply to {label} (round {round})"))
                .unwrap();
            let expected = answer_bytes(
                &state,
                &health,
                &Metrics::new(),
                packet,
                src,
                MAX_UDP_PAYLOAD,
            );
            assert_eq!(expected.as_deref(), Some(&buf[..len]), "{label}");
            // Refused before the lookup (class CH): not counted.
            if label != "class CH" {
                sent += 1;
            }
        }
    }
    // Counts reach the metrics within a flush or two.
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    while metrics.queries_total() < sent {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {sent} counted",
            metrics.queries_total()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// An ECS echo must carry the subnet exactly as sent.
#[test]
fn the_subnet_echo_is_what_was_sent() {
    let (state, views) = fixture();
    let (_, health, tables) = &views[0];
    let packet = query(
        "www.example.com.",
        RecordType::A,
        Some(1232),
        Some(("81.2.69.0", 24)),
        9,
    );
    let (_, fast) = both(
        tables,
        state,
        health,
        &packet,
        "127.0.0.1:53".parse().unwrap(),
    );
    let reply = Message::from_vec(&fast.unwrap()).unwrap();
    let Some(EdnsOption::Subnet(subnet)) = reply.edns.as_ref().unwrap().option(EdnsCode::Subnet)
    else {
        panic!("no subnet echo");
    };
    assert_eq!(
        *subnet,
        ClientSubnet::new([81, 2, 69, 0].into(), 24, subnet.scope_prefix())
    );
    assert!(subnet.scope_prefix() > 0);
}

/// The test zone signed with a fresh key, and tables for each health
/// view: DO queries get signed templates.
fn signed_fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| with_views(signed_state()))
}

fn signed_state() -> Arc<ServingState> {
    // One directory per call: tests build signed states in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gslb-fast-signed-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let origin = topology::DomainName::parse_absolute("example.com.").unwrap();
    let key = topology::dnssec::ZoneKey::generate(
        &origin,
        topology::dnssec::Algorithm::EcdsaP256Sha256,
        &dir,
    )
    .unwrap();
    let text = topology_text().replacen(
        "      records:\n",
        &format!(
            "      dnssec: {{ keys: [\"{}\"] }}\n      records:\n",
            key.path().display()
        ),
        1,
    );
    let topology = topology::parse(&text, "<signed fast-path test>").expect("valid");
    let geoip = Arc::new(gslb::open_geoip(&topology).unwrap());
    let state = ServingState::new(Arc::new(topology), geoip, None).unwrap();
    state.scopes.warm();
    std::fs::remove_dir_all(&dir).unwrap();
    Arc::new(state)
}

/// `query` with the DO bit set (and EDNS, which carries it).
fn signed_query(
    name: &str,
    rtype: RecordType,
    payload: u16,
    subnet: Option<(&str, u8)>,
    id: u16,
) -> Vec<u8> {
    let packet = query(name, rtype, Some(payload), subnet, id);
    let mut message = Message::from_vec(&packet).unwrap();
    message.edns.as_mut().unwrap().set_dnssec_ok(true);
    message.to_vec().unwrap()
}

/// The corpus asked with the DO bit: every question, spelling, payload
/// size and client subnet of [`corpus`] that has EDNS.
fn signed_corpus() -> Vec<(String, Vec<u8>)> {
    let mut packets = Vec::new();
    let mut id = 0u16;
    for (name, rtype) in QUESTIONS {
        for spelling in spellings(name) {
            for (edns, subnet) in variants() {
                let Some(payload) = edns else { continue };
                id = id.wrapping_add(7919);
                packets.push((
                    format!("{spelling} {rtype} DO edns={payload} ecs={subnet:?}"),
                    signed_query(&spelling, *rtype, payload, subnet, id),
                ));
            }
        }
    }
    packets
}

#[test]
fn signed_replies_are_byte_identical_from_both_paths() {
    let (compared, fast_answered, differences) = compare_all(signed_fixture(), &signed_corpus());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    eprintln!("{compared} DO queries compared, {fast_answered} answered by the fast path");
    assert!(
        fast_answered * 2 > compared,
        "only {fast_answered} of {compared} took the fast path"
    );
}

/// Signed static, geo (with ECS) and NODATA answers, and DO queries for
/// names outside every signed zone, take the fast path and carry their
/// signatures; a signed answer too big for the client's payload is left
/// to the slow path, which truncates it.
#[test]
fn signed_answers_take_the_fast_path_with_their_signatures() {
    let (state, views) = signed_fixture();
    let (_, health, tables) = &views[0];
    let src: SocketAddr = "81.2.69.160:53".parse().unwrap();
    for (name, rtype, subnet, rrsigs) in [
        ("static.example.com.", RecordType::A, None, 1),
        ("MaIlEr.ExAmPlE.cOm.", RecordType::MX, None, 1),
        ("www.example.com.", RecordType::A, Some(("8.8.8.0", 24)), 1),
        (
            "www.example.com.",
            RecordType::AAAA,
            Some(("2a02:8800::", 32)),
            1,
        ),
        ("www.example.com.", RecordType::A, None, 1),
        ("all3.example.com.", RecordType::A, Some(("1.1.1.0", 24)), 1),
        // NODATA: compact denial's NSEC and the SOA, each signed.
        ("static.example.com.", RecordType::SRV, None, 2),
        ("www.example.com.", RecordType::TXT, None, 2),
        // A referral: the NSEC proving the child unsigned, signed.
        ("host.dev.example.com.", RecordType::A, None, 1),
        // Outside every zone: REFUSED, nothing to sign.
        ("www.example.org.", RecordType::A, None, 0),
    ] {
        let packet = signed_query(name, rtype, 1232, subnet, 1);
        let mut out = vec![0u8; 4096];
        let Answer::Reply { len, .. } = tables.answer(&packet, src, MAX_UDP_PAYLOAD, &mut out)
        else {
            panic!("DO {name} {rtype} {subnet:?} went to the slow path");
        };
        let reply = Message::from_vec(&out[..len]).unwrap();
        assert!(reply.edns.as_ref().unwrap().flags().dnssec_ok, "{name}");
        let signatures = reply
            .answers
            .iter()
            .chain(&reply.authorities)
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .count();
        assert_eq!(signatures, rrsigs, "{name} {rtype}: {reply:?}");
        let (slow, _) = both(tables, state, health, &packet, src);
        assert_eq!(slow.as_deref(), Some(&out[..len]), "{name} {rtype}");
    }
    // 60 addresses and their signature do not fit 512 bytes.
    let packet = signed_query("big.example.com.", RecordType::A, 512, None, 1);
    let mut out = vec![0u8; 4096];
    assert_eq!(
        tables.answer(&packet, src, MAX_UDP_PAYLOAD, &mut out),
        Answer::Slow
    );
    let (slow, _) = both(tables, state, health, &packet, src);
    assert!(
        Message::from_vec(&slow.unwrap())
            .unwrap()
            .metadata
            .truncation
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any client, with DO, against the signed zone: the signed geo answer
    /// (or whatever the fast path gives) is the full path's to the byte.
    #[test]
    fn random_clients_get_the_same_signed_geo_answer(
        v4 in any::<u32>(),
        source in 0u8..=32,
        name in prop::sample::select(vec!["www.example.com.", "all3.example.com.", "legacy.example.com.", "fc.example.com."]),
        aaaa in any::<bool>(),
        view in 0usize..4,
    ) {
        let (state, views) = signed_fixture();
        let (_, health, tables) = &views[view];
        let network = geo_data::Prefix::new(IpAddr::from(std::net::Ipv4Addr::from(v4)), source).unwrap().addr();
        let rtype = if aaaa { RecordType::AAAA } else { RecordType::A };
        let packet = signed_query(name, rtype, 1232, None, 3);
        let mut message = Message::from_vec(&packet).unwrap();
        message.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(network, source, 0)));
        let packet = message.to_vec().unwrap();
        let (slow, fast) = both(tables, state, health, &packet, "127.0.0.1:53".parse().unwrap());
        if let Some(fast) = fast {
            prop_assert_eq!(slow.as_deref(), Some(&fast[..]));
        }
    }

    /// Mutated DO queries against the signed zone never make the fast path
    /// panic, and whatever it answers is the full path's answer.
    #[test]
    fn mutated_signed_queries_are_answered_as_the_slow_path_does_or_left_to_it(
        seed in any::<usize>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let (state, views) = signed_fixture();
        let (_, health, tables) = &views[seed % views.len()];
        let corpus = signed_seeds();
        let mut packet = corpus[seed % corpus.len()].clone();
        for (at, value) in flips {
            let len = packet.len();
            packet[at % len] = value;
        }
        if cut % 3 == 0 {
            packet.truncate(cut % (packet.len() + 1));
        }
        let (slow, fast) = both(tables, state, health, &packet, "81.2.69.160:53".parse().unwrap());
        if let Some(fast) = fast {
            prop_assert!(Message::from_vec(&fast).is_ok(), "unparseable {:02x?}", fast);
            prop_assert_eq!(slow.as_deref(), Some(&fast[..]));
        }
    }
}

/// Every 40th packet of the signed corpus.
fn signed_seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        signed_corpus()
            .into_iter()
            .step_by(40)
            .map(|(_, p)| p)
            .collect()
    })
}

/// When the signatures are made anew (the background refresh), tables
/// holding the old ones are no longer current, and tables built then
/// carry the new ones.
#[test]
fn re_signing_makes_the_signed_templates_stale_until_rebuilt() {
    let state = signed_state();
    let health = Arc::new(RegionHealth::all_up(state.topology.regions.len()));
    let tables = Tables::build(state.clone(), health.clone(), None);
    assert!(tables.is_current(&state, &health));
    let packet = signed_query("static.example.com.", RecordType::A, 1232, None, 7);
    let src: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let (before, fast) = both(&tables, &state, &health, &packet, src);
    assert_eq!(before, fast);
    // Everything is due within a validity period: all re-signed now.
    let resigned = state
        .signers
        .refresh_due(gslb::dnssec::unix_now(), 8 * 86_400);
    assert!(resigned > 0);
    assert!(!tables.is_current(&state, &health));
    let rebuilt = Tables::build(state.clone(), health.clone(), Some(&tables));
    assert!(rebuilt.is_current(&state, &health));
    let (after, fast) = both(&rebuilt, &state, &health, &packet, src);
    assert_ne!(before, after, "ECDSA signatures differ each time");
    assert_eq!(after, fast);
}

/// In a zone that is not signed, a DO query gets the unsigned answer with
/// the DO bit copied, from the fast path.
#[test]
fn do_queries_to_unsigned_zones_take_the_fast_path() {
    let (state, views) = fixture();
    let (_, health, tables) = &views[0];
    let src: SocketAddr = "81.2.69.160:53".parse().unwrap();
    for (name, rtype, subnet) in [
        ("static.example.com.", RecordType::A, None),
        ("www.example.com.", RecordType::A, Some(("8.8.8.0", 24))),
        ("static.example.com.", RecordType::TXT, None),
    ] {
        let packet = signed_query(name, rtype, 1232, subnet, 5);
        let mut out = vec![0u8; 4096];
        let Answer::Reply { len, .. } = tables.answer(&packet, src, MAX_UDP_PAYLOAD, &mut out)
        else {
            panic!("DO {name} {rtype} went to the slow path");
        };
        let reply = Message::from_vec(&out[..len]).unwrap();
        assert!(reply.edns.as_ref().unwrap().flags().dnssec_ok);
        assert!(
            !reply
                .answers
                .iter()
                .chain(&reply.authorities)
                .any(|r| r.record_type() == RecordType::RRSIG)
        );
        let (slow, _) = both(tables, state, health, &packet, src);
        assert_eq!(slow.as_deref(), Some(&out[..len]), "{name} {rtype}");
    }
}

/// A zone of thousands of names, nested and flat: each name gets its own
/// address from the fast path, and a missing name beside or below each
/// gets the slow path's NXDOMAIN, byte for byte (the static table's index
/// must find every name and no name it does not hold).
#[test]
fn every_name_of_a_big_zone_is_found_and_no_other() {
    const NAMES: usize = 3000;
    let mut text = topology_text();
    let mut records = String::from("      records:\n");
    for i in 0..NAMES {
        records.push_str(&format!(
            "        - {{ name: n{i}.g{}, type: A, value: 10.1.{}.{} }}\n",
            i % 7,
            i / 250,
            i % 250 + 1
        ));
    }
    text = text.replacen("      records:\n", &records, 1);
    let topology = topology::parse(&text, "<big zone>").expect("big zone is valid");
    let geoip = Arc::new(gslb::open_geoip(&topology).unwrap());
    let state = Arc::new(ServingState::new(Arc::new(topology), geoip, None).unwrap());
    let health = Arc::new(RegionHealth::all_up(state.topology.regions.len()));
    let tables = Tables::build(state.clone(), health.clone(), None);
    let src: SocketAddr = "192.0.2.1:53".parse().unwrap();
    for i in 0..NAMES {
        for (name, rcode) in [
            (format!("N{i}.g{}.example.com.", i % 7), 0),
            (format!("m{i}.g{}.example.com.", i % 7), 3),
            (format!("x.n{i}.g{}.example.com.", i % 7), 3),
        ] {
            let packet = query(&name, RecordType::A, None, None, i as u16);
            let (slow, fast) = both(&tables, &state, &health, &packet, src);
            let fast = fast.unwrap_or_else(|| panic!("{name} went to the slow path"));
            assert_eq!(fast[3] & 0x0F, rcode, "{name}");
            assert_eq!(Some(&fast[2..]), slow.as_ref().map(|s| &s[2..]), "{name}");
        }
    }
}
