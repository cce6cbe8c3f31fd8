//! Authoritative semantics, as Knot and NSD answer them.

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::support::{Ask, BOTH, TestServer, Transport, exchange, lines, read_tcp_message};

#[tokio::test]
async fn answers_are_authoritative_without_recursion() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let reply = Ask::new("static.example.com.", RecordType::A)
            .recursion_desired()
            .send(&server, transport)
            .await;
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(
            reply.metadata.authoritative,
            "{transport:?}: AA must be set"
        );
        assert!(!reply.metadata.recursion_available, "RA must be clear");
        assert!(
            reply.metadata.recursion_desired,
            "RD is copied from the query"
        );
        assert_eq!(
            lines(&reply.answers),
            ["static.example.com. A 300 127.0.0.80"]
        );
        assert!(reply.authorities.is_empty());
    }
}

#[tokio::test]
async fn every_static_type_is_served_with_its_own_ttl() {
    let server = TestServer::example().await;
    let cases = [
        (
            "example.com.",
            RecordType::NS,
            "example.com. NS 86400 ns1.example.com.",
        ),
        (
            "ns1.example.com.",
            RecordType::A,
            "ns1.example.com. A 86400 127.0.0.1",
        ),
        (
            "example.com.",
            RecordType::MX,
            "example.com. MX 3600 10 mail.example.com.",
        ),
        (
            "example.com.",
            RecordType::TXT,
            "example.com. TXT 600 v=spf1 mx -all",
        ),
        (
            "static.example.com.",
            RecordType::AAAA,
            "static.example.com. AAAA 300 fd00:80::1",
        ),
    ];
    for (name, rtype, expected) in cases {
        let reply = Ask::new(name, rtype).send(&server, Transport::Udp).await;
        assert_eq!(lines(&reply.answers), [expected], "{name} {rtype}");
        assert!(reply.metadata.authoritative);
    }
    let soa = Ask::new("example.com.", RecordType::SOA)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&soa.answers),
        [
            "example.com. SOA 3600 ns1.example.com. hostmaster.example.com. 2026112201 3600 900 1209600 300"
        ]
    );
}

#[tokio::test]
async fn mx_and_ns_answers_carry_target_addresses() {
    let server = TestServer::example().await;
    let reply = Ask::new("example.com.", RecordType::MX)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&reply.additionals),
        [
            "mail.example.com. A 3600 127.0.0.25",
            "mail.example.com. AAAA 3600 fd00:25::1"
        ]
    );
}

#[tokio::test]
async fn nxdomain_carries_the_soa_with_the_negative_ttl() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let reply = Ask::new("nope.example.com.", RecordType::A)
            .send(&server, transport)
            .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        assert!(reply.metadata.authoritative);
        assert!(reply.answers.is_empty());
        // min(SOA TTL 3600, SOA MINIMUM 300)
        assert_eq!(reply.authorities.len(), 1);
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(reply.authorities[0].ttl, 300);
        assert_eq!(reply.authorities[0].name.to_string(), "example.com.");
    }
}

#[tokio::test]
async fn nodata_is_noerror_with_the_soa() {
    let server = TestServer::example().await;
    for (name, rtype) in [
        ("static.example.com.", RecordType::MX),
        // An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
        ("apps.example.com.", RecordType::A),
        ("ns1.example.com.", RecordType::Unknown(65280)),
    ] {
        let reply = Ask::new(name, rtype).send(&server, Transport::Udp).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(reply.authorities.len(), 1, "{name}");
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(reply.authorities[0].ttl, 300);
    }
}

#[tokio::test]
async fn cname_is_returned_for_other_types_and_chased_in_zone() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let reply = Ask::new("api.example.com.", RecordType::A)
            .send(&server, transport)
            .await;
        assert_eq!(
            lines(&reply.answers),
            [
                "api.example.com. CNAME 300 www.example.com.",
                "www.example.com. A 30 127.0.1.1"
            ]
        );
        assert!(reply.metadata.authoritative);
    }
    // The target has no TXT: the CNAME, then NODATA for the target.
    let reply = Ask::new("api.example.com.", RecordType::TXT)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&reply.answers),
        ["api.example.com. CNAME 300 www.example.com."]
    );
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
    // Asking for the CNAME itself does not chase it.
    let reply = Ask::new("api.example.com.", RecordType::CNAME)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&reply.answers),
        ["api.example.com. CNAME 300 www.example.com."]
    );
}

#[tokio::test]
async fn cname_chain_ending_nowhere_is_nxdomain() {
    let server = TestServer::example_with(
        "        - { name: dangling, type: CNAME, value: missing.example.com. }\n        - { name: outside, type: CNAME, value: www.example.org. }\n",
    )
    .await;
    let reply = Ask::new("dangling.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    // RFC 6604: the rcode is that of the last name in the chain.
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.answers.len(), 1);
    let reply = Ask::new("outside.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        lines(&reply.answers),
        ["outside.example.com. CNAME 3600 www.example.org."]
    );
    assert!(reply.authorities.is_empty());
}

#[tokio::test]
async fn wildcards_synthesize_the_queried_name() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let reply = Ask::new("shop.apps.example.com.", RecordType::A)
            .send(&server, transport)
            .await;
        assert_eq!(
            lines(&reply.answers),
            ["shop.apps.example.com. A 120 127.0.0.90"]
        );
        assert!(reply.metadata.authoritative);
    }
    let deep = Ask::new("a.b.apps.example.com.", RecordType::TXT)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(
        lines(&deep.answers),
        ["a.b.apps.example.com. TXT 120 wildcard app"]
    );
    // The wildcard has no AAAA: NODATA for the synthesized name.
    let nodata = Ask::new("shop.apps.example.com.", RecordType::AAAA)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    // A name that exists blocks the wildcard below a different encloser.
    let other = Ask::new("x.static.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn names_below_a_delegation_get_a_referral_with_glue() {
    let server = TestServer::example().await;
    for (name, rtype) in [
        ("host.dev.example.com.", RecordType::A),
        ("dev.example.com.", RecordType::NS),
        ("dev.example.com.", RecordType::A),
        // Glue is not authoritative data: still a referral.
        ("ns1.dev.example.com.", RecordType::A),
    ] {
        for transport in BOTH {
            let reply = Ask::new(name, rtype).send(&server, transport).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "{name}"
            );
            assert!(
                !reply.metadata.authoritative,
                "{name}: a referral is not authoritative"
            );
            assert!(reply.answers.is_empty(), "{name}");
            let mut ns = lines(&reply.authorities);
            ns.sort();
            assert_eq!(
                ns,
                [
                    "dev.example.com. NS 3600 ns.elsewhere.net.",
                    "dev.example.com. NS 3600 ns1.dev.example.com."
                ],
                "{name}"
            );
            assert_eq!(
                lines(&reply.additionals),
                ["ns1.dev.example.com. A 3600 127.0.0.53"],
                "{name}"
            );
        }
    }
    // DS at the cut belongs to the parent: an authoritative NODATA.
    let ds = Ask::new("dev.example.com.", RecordType::DS)
        .send(&server, Transport::Udp)
        .await;
    assert!(ds.metadata.authoritative);
    assert!(ds.answers.is_empty());
    assert_eq!(ds.authorities[0].record_type(), RecordType::SOA);
}

#[tokio::test]
async fn names_outside_every_zone_are_refused() {
    let server = TestServer::example().await;
    for transport in BOTH {
        for name in ["www.example.org.", "com.", "."] {
            let reply = Ask::new(name, RecordType::A).send(&server, transport).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::Refused,
                "{name}"
            );
            assert!(!reply.metadata.authoritative);
            assert!(reply.answers.is_empty());
        }
    }
    let chaos = Ask::new("version.bind.", RecordType::TXT)
        .class(DNSClass::CH)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(chaos.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn other_opcodes_are_not_implemented() {
    let server = TestServer::example().await;
    for opcode in [
        OpCode::Status,
        OpCode::Notify,
        OpCode::Update,
        OpCode::Unknown(3),
    ] {
        let mut ask = Ask::new("example.com.", RecordType::SOA);
        ask.message.metadata.op_code = opcode;
        let reply = ask.send(&server, Transport::Udp).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NotImp,
            "{opcode:?}"
        );
        assert_eq!(reply.metadata.op_code, opcode);
    }
}

#[tokio::test]
async fn malformed_queries_get_formerr() {
    let server = TestServer::example().await;
    let good = Ask::new("example.com.", RecordType::A).bytes();
    // The question is cut short.
    let cut = &good[..good.len() - 3];
    // No question at all.
    let mut empty = good[..12].to_vec();
    empty[5] = 0;
    // Two questions.
    let mut two = Ask::new("example.com.", RecordType::A);
    two.message.add_query(two.message.queries[0].clone());
    // A question name compressed with a pointer into the header: echoed
    // verbatim it would point into the reply's own header (found by fuzzing).
    let mut pointer = good[..12].to_vec();
    pointer.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 0x02, 0, 1, 0, 1]);
    for (what, bytes) in [
        ("cut", cut.to_vec()),
        ("empty", empty),
        ("two", two.bytes()),
        ("compressed question", pointer),
    ] {
        for transport in BOTH {
            let reply = exchange(server.addr, transport, &bytes).await;
            let reply = hickory_proto::op::Message::from_vec(&reply).expect("reply parses");
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{what}"
            );
            assert_eq!(reply.metadata.id, 0x4242);
        }
    }
}

#[tokio::test]
async fn any_is_answered_minimally() {
    let server = TestServer::example().await;
    for (name, rrsets) in [
        ("example.com.", 1),
        ("static.example.com.", 1),
        ("www.example.com.", 1),
    ] {
        let reply = Ask::new(name, RecordType::ANY)
            .send(&server, Transport::Udp)
            .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let types: std::collections::BTreeSet<_> =
            reply.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(
            types.len(),
            rrsets,
            "{name}: RFC 8482 answers one RRset, got {types:?}"
        );
    }
}

#[tokio::test]
async fn names_match_case_insensitively_and_the_question_is_echoed() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let reply = Ask::new("StAtIc.ExAmPlE.cOm.", RecordType::A)
            .send(&server, transport)
            .await;
        assert_eq!(reply.queries[0].name().to_string(), "StAtIc.ExAmPlE.cOm.");
        assert_eq!(reply.answers[0].name.to_string(), "StAtIc.ExAmPlE.cOm.");
        assert!(reply.metadata.authoritative);
    }
}

#[tokio::test]
async fn clients_without_a_location_get_the_default_order() {
    let server = TestServer::example().await;
    let a = Ask::new("www.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(lines(&a.answers), ["www.example.com. A 30 127.0.1.1"]);
    let aaaa = Ask::new("www.example.com.", RecordType::AAAA)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(lines(&aaaa.answers), ["www.example.com. AAAA 30 fd00:1::1"]);
}

#[tokio::test]
async fn tcp_pipelined_queries_are_all_answered() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::example().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let names = [
        "static.example.com.",
        "www.example.com.",
        "nope.example.com.",
    ];
    let mut burst = Vec::new();
    for (id, name) in names.iter().enumerate() {
        let mut ask = Ask::new(name, RecordType::A);
        ask.message.metadata.id = id as u16 + 1;
        let bytes = ask.bytes();
        burst.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        burst.extend_from_slice(&bytes);
    }
    stream.write_all(&burst).await.unwrap();
    let mut ids = Vec::new();
    for _ in names {
        let reply =
            tokio::time::timeout(crate::support::REPLY_TIMEOUT, read_tcp_message(&mut stream))
                .await
                .expect("pipelined reply");
        ids.push(
            hickory_proto::op::Message::from_vec(&reply)
                .unwrap()
                .metadata
                .id,
        );
    }
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let server = TestServer::example().await;
    let addr = server.addr;
    let reply = Ask::new("static.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(reply.answers.len(), 1);
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .expect("stops within the grace period")
        .expect("clean stop");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the TCP listener is closed after shutdown"
    );
}
