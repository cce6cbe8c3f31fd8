//! Geo answers end to end: the client's subnet (or the resolver's address)
//! picks the nearest region, and the reply's client-subnet scope says how
//! widely it holds.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};

use crate::support::{Ask, BOTH, TestServer, Transport, lines};

fn subnet(reply: &Message) -> Option<ClientSubnet> {
    match reply.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(subnet) => Some(*subnet),
        _ => None,
    }
}

/// Well-known networks on each continent, and the region nearest to them.
const CLIENTS: &[(&str, u8, &str, &str)] = &[
    // (ECS address, source prefix, A answer, AAAA answer)
    ("81.2.69.0", 24, "127.0.2.1", "fd00:2::1"), // United Kingdom → eu-west
    ("8.8.8.0", 24, "127.0.1.1", "fd00:1::1"),   // United States → us-east
    ("200.160.0.0", 20, "127.0.1.1", "fd00:1::1"), // Brazil → us-east
    ("49.44.0.0", 16, "127.0.3.1", "fd00:3::1"), // India → ap-south
    ("1.1.1.0", 24, "127.0.3.1", "fd00:3::1"),   // Australia → ap-south
    ("41.0.0.0", 24, "127.0.3.1", "fd00:3::1"),  // South Africa → ap-south
    ("2a02:8800::", 32, "127.0.2.1", "fd00:2::1"), // United Kingdom (IPv6) → eu-west
];

#[tokio::test]
async fn ecs_clients_get_their_nearest_region_over_udp_and_tcp() {
    let server = TestServer::example().await;
    for &(address, source, a, aaaa) in CLIENTS {
        for transport in BOTH {
            for (rtype, expected) in [(RecordType::A, a), (RecordType::AAAA, aaaa)] {
                let reply = Ask::new("www.example.com.", rtype)
                    .ecs(address, source)
                    .send(&server, transport)
                    .await;
                assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
                let answer: Vec<String> =
                    reply.answers.iter().map(|r| r.data.to_string()).collect();
                assert_eq!(
                    answer,
                    [expected],
                    "{address}/{source} {rtype} over {transport:?}"
                );
                let echo = subnet(&reply).expect("ECS echoed");
                assert_eq!(
                    echo.addr().to_string(),
                    address.parse::<std::net::IpAddr>().unwrap().to_string()
                );
                assert_eq!(echo.source_prefix(), source);
                assert!(
                    echo.scope_prefix() > 0 && echo.scope_prefix() <= source,
                    "{address}/{source}: scope /{} must be within (0, source]",
                    echo.scope_prefix()
                );
            }
        }
    }
}

#[tokio::test]
async fn https_answers_follow_the_region_of_the_address_answers() {
    let server = TestServer::example().await;
    for &(address, source, a, aaaa) in CLIENTS {
        for transport in BOTH {
            let ask = |rtype| Ask::new("www.example.com.", rtype).ecs(address, source);
            let https = ask(RecordType::HTTPS).send(&server, transport).await;
            let by_a = ask(RecordType::A).send(&server, transport).await;
            assert_eq!(https.metadata.response_code, ResponseCode::NoError);
            assert!(https.metadata.authoritative);
            // One record: the region of the A answer, its VIP addresses as
            // hints, its HTTPS port (8443 in the example) and the ALPN ids.
            assert_eq!(
                lines(&https.answers),
                [format!(
                    "www.example.com. HTTPS 30 1 . alpn=h2,http/1.1, port=8443 ipv4hint={a}, ipv6hint={aaaa},"
                )],
                "{address}/{source} over {transport:?}"
            );
            assert_eq!(by_a.answers[0].data.to_string(), a);
            assert_eq!(
                subnet(&https).unwrap().scope_prefix(),
                subnet(&by_a).unwrap().scope_prefix(),
                "{address}/{source}: the HTTPS answer holds as widely as the A answer"
            );
        }
    }
}

#[tokio::test]
async fn an_alias_to_a_geo_name_carries_the_clients_region_in_additional() {
    let server = TestServer::example().await;
    // The apex's HTTPS is `0 www.example.com.` (AliasMode, RFC 9460 §4.1).
    let reply = Ask::new("example.com.", RecordType::HTTPS)
        .ecs("81.2.69.0", 24)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&reply.answers),
        ["example.com. HTTPS 3600 0 www.example.com."]
    );
    assert_eq!(
        lines(&reply.additionals),
        [
            "www.example.com. A 30 127.0.2.1",
            "www.example.com. AAAA 30 fd00:2::1",
            "www.example.com. HTTPS 30 1 . alpn=h2,http/1.1, port=8443 ipv4hint=127.0.2.1, ipv6hint=fd00:2::1,",
        ]
    );
    assert!(
        subnet(&reply).unwrap().scope_prefix() > 0,
        "depends on the client"
    );
}

#[tokio::test]
async fn https_for_a_geo_name_without_an_https_block_is_nodata() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replace("          https: { alpn: [h2, http/1.1] }\n", "");
    let server = TestServer::start(topology::parse(&text, "<test>").unwrap()).await;
    for transport in BOTH {
        let reply = Ask::new("www.example.com.", RecordType::HTTPS)
            .ecs("81.2.69.0", 24)
            .send(&server, transport)
            .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty(), "{:?}", lines(&reply.answers));
        assert_eq!(lines(&reply.authorities).len(), 1, "the SOA");
    }
}

#[tokio::test]
async fn cname_to_a_geo_name_carries_the_geo_scope() {
    let server = TestServer::example().await;
    let reply = Ask::new("api.example.com.", RecordType::A)
        .ecs("81.2.69.0", 24)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&reply.answers),
        [
            "api.example.com. CNAME 300 www.example.com.",
            "www.example.com. A 30 127.0.2.1"
        ]
    );
    assert!(subnet(&reply).unwrap().scope_prefix() > 0);
}

#[tokio::test]
async fn static_answers_have_scope_zero() {
    let server = TestServer::example().await;
    for (name, rtype) in [
        ("static.example.com.", RecordType::A),
        ("nope.example.com.", RecordType::A),
    ] {
        let reply = Ask::new(name, rtype)
            .ecs("81.2.69.0", 24)
            .send(&server, Transport::Udp)
            .await;
        let echo = subnet(&reply).expect("ECS echoed");
        assert_eq!(
            echo.scope_prefix(),
            0,
            "{name} does not depend on the client"
        );
        assert_eq!(echo.source_prefix(), 24);
    }
}

#[tokio::test]
async fn without_ecs_the_resolver_address_decides_and_no_ecs_is_sent() {
    let server = TestServer::example().await;
    let reply = Ask::new("www.example.com.", RecordType::A)
        .edns(1232)
        .send(&server, Transport::Udp)
        .await;
    // 127.0.0.1 has no location: the default order, whose first is us-east.
    assert_eq!(lines(&reply.answers), ["www.example.com. A 30 127.0.1.1"]);
    assert!(
        subnet(&reply).is_none(),
        "no ECS in the reply without one in the query"
    );
}

#[tokio::test]
async fn source_prefix_zero_uses_the_resolver_and_answers_scope_zero() {
    let server = TestServer::example().await;
    let reply = Ask::new("www.example.com.", RecordType::A)
        .ecs("0.0.0.0", 0)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(lines(&reply.answers), ["www.example.com. A 30 127.0.1.1"]);
    assert_eq!(subnet(&reply).unwrap().scope_prefix(), 0);
}

#[tokio::test]
async fn malformed_ecs_gets_formerr() {
    let server = TestServer::example().await;
    let cases = [
        (
            "scope set in a query",
            Ask::new("www.example.com.", RecordType::A).ecs_raw(
                "81.2.69.0".parse().unwrap(),
                24,
                16,
            ),
        ),
        // Only ceil(20/8) = 3 address bytes travel: 81.2.69 has bits set past /20.
        (
            "bits beyond the source prefix",
            Ask::new("www.example.com.", RecordType::A).ecs_raw(
                "81.2.69.0".parse().unwrap(),
                20,
                0,
            ),
        ),
    ];
    for (what, ask) in cases {
        for transport in BOTH {
            let reply = ask.send(&server, transport).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{what}"
            );
        }
    }
    // A source prefix longer than the address, or an unknown family, is
    // caught while the message is parsed.
    let mut raw = Ask::new("www.example.com.", RecordType::A)
        .ecs("81.2.69.0", 24)
        .bytes();
    let opt_data = raw.len() - 7; // FAMILY(2) SOURCE(1) SCOPE(1) ADDRESS(3)
    raw[opt_data + 2] = 40; // source /40 for IPv4
    let reply =
        Message::from_vec(&crate::support::exchange(server.addr, Transport::Udp, &raw).await)
            .unwrap();
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::FormErr,
        "source prefix too long"
    );
    raw[opt_data + 2] = 24;
    raw[opt_data + 1] = 7; // family 7
    let reply =
        Message::from_vec(&crate::support::exchange(server.addr, Transport::Udp, &raw).await)
            .unwrap();
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::FormErr,
        "unknown family"
    );
}

#[tokio::test]
async fn city_database_gives_real_coordinates() {
    // MaxMind's test City database: Changchun, Bhutan and Norway.
    let server = TestServer::example_with_geoip("GeoIP2-City-Test.mmdb").await;
    for (address, source, expected) in [
        ("175.16.199.0", 24, "127.0.3.1"),
        ("67.43.156.0", 24, "127.0.3.1"),
        ("2a02:cf40::", 32, "127.0.2.1"),
    ] {
        let reply = Ask::new("www.example.com.", RecordType::A)
            .ecs(address, source)
            .send(&server, Transport::Udp)
            .await;
        let answer: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(answer, [expected], "{address}");
    }
}
