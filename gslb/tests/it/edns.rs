//! EDNS(0): OPT echo, payload sizes, BADVERS, truncation and TCP retry.

use hickory_proto::op::Edns;
use hickory_proto::rr::RecordType;

use crate::support::{Ask, BOTH, TestServer, Transport};

/// 60 A records at `big.example.com.`: about 1 KB on the wire.
fn many_addresses(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "        - {{ name: big, type: A, ttl: 1m, value: 127.0.{}.{} }}\n",
                i / 250,
                i % 250 + 1
            )
        })
        .collect()
}

#[tokio::test]
async fn an_edns_query_gets_an_opt_record_and_a_plain_one_does_not() {
    let server = TestServer::example().await;
    for transport in BOTH {
        let with = Ask::new("static.example.com.", RecordType::A)
            .edns(4096)
            .send(&server, transport)
            .await;
        let opt = with.edns.expect("OPT in the reply to an EDNS query");
        assert_eq!(opt.version(), 0);
        assert_eq!(opt.max_payload(), 1232);
        let without = Ask::new("static.example.com.", RecordType::A)
            .send(&server, transport)
            .await;
        assert!(without.edns.is_none(), "no OPT without one in the query");
        // Negative answers too.
        let nx = Ask::new("nope.example.com.", RecordType::A)
            .edns(1232)
            .send(&server, transport)
            .await;
        assert!(nx.edns.is_some());
    }
}

#[tokio::test]
async fn unknown_edns_version_gets_badvers() {
    let server = TestServer::example().await;
    let mut ask = Ask::new("static.example.com.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    ask.message.edns = Some(edns);
    for transport in BOTH {
        let reply = ask.send(&server, transport).await;
        // BADVERS and BADSIG share code 16; the OPT's extended bits make it.
        assert_eq!(u16::from(reply.metadata.response_code), 16);
        assert_eq!(reply.metadata.response_code.low(), 0);
        assert_eq!(reply.edns.expect("BADVERS travels in the OPT").version(), 0);
        assert!(reply.answers.is_empty());
    }
}

#[tokio::test]
async fn do_bit_is_copied() {
    let server = TestServer::example().await;
    let mut ask = Ask::new("static.example.com.", RecordType::A).edns(1232);
    ask.message.edns.as_mut().unwrap().set_dnssec_ok(true);
    let reply = ask.send(&server, Transport::Udp).await;
    assert!(reply.edns.unwrap().flags().dnssec_ok);
}

#[tokio::test]
async fn udp_replies_respect_the_payload_size_and_tcp_gets_everything() {
    // ~60 * 16 bytes of answers + header: over 512, under 1232.
    let server = TestServer::example_with(&many_addresses(60)).await;
    let plain = Ask::new("big.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert!(
        plain.metadata.truncation,
        "no EDNS: 512 bytes at most, so TC"
    );
    assert!(plain.answers.is_empty());
    let small = Ask::new("big.example.com.", RecordType::A)
        .edns(512)
        .send(&server, Transport::Udp)
        .await;
    assert!(small.metadata.truncation);
    assert!(small.edns.is_some(), "a truncated reply keeps its OPT");
    let roomy = Ask::new("big.example.com.", RecordType::A)
        .edns(4096)
        .send(&server, Transport::Udp)
        .await;
    assert!(!roomy.metadata.truncation);
    assert_eq!(roomy.answers.len(), 60);
    let tcp = Ask::new("big.example.com.", RecordType::A)
        .send(&server, Transport::Tcp)
        .await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 60);
}

#[tokio::test]
async fn udp_payload_is_capped_at_1232_whatever_the_client_offers() {
    // ~100 * 16 bytes: more than 1232.
    let server = TestServer::example_with(&many_addresses(100)).await;
    let reply_bytes = crate::support::exchange(
        server.addr,
        Transport::Udp,
        &Ask::new("big.example.com.", RecordType::A)
            .edns(65000)
            .bytes(),
    )
    .await;
    assert!(reply_bytes.len() <= 1232, "{} bytes", reply_bytes.len());
    let reply = hickory_proto::op::Message::from_vec(&reply_bytes).unwrap();
    assert!(reply.metadata.truncation);
    let tcp = Ask::new("big.example.com.", RecordType::A)
        .edns(65000)
        .send(&server, Transport::Tcp)
        .await;
    assert_eq!(tcp.answers.len(), 100);
}

#[tokio::test]
async fn additional_data_is_dropped_before_truncating() {
    // An MX answer whose target has many addresses: the answer fits in 512
    // bytes, the additional section does not, so it goes without TC.
    let mut extra = String::new();
    for i in 0..40 {
        extra.push_str(&format!(
            "        - {{ name: mx2, type: A, value: 127.0.9.{} }}\n",
            i + 1
        ));
    }
    extra.push_str("        - { name: mailer, type: MX, value: \"5 mx2.example.com.\" }\n");
    let server = TestServer::example_with(&extra).await;
    let reply = Ask::new("mailer.example.com.", RecordType::MX)
        .send(&server, Transport::Udp)
        .await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 1);
    assert!(reply.additionals.is_empty());
}
