//! The PROXY v2 header: the client's address and the VIP reach the L7 node,
//! on both ports, with our TLV; TLS bytes pass untouched.

use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::{Harness, L4_NAME, Session, http_get, pattern};

#[tokio::test]
async fn the_client_address_reaches_the_l7_node_in_the_proxy_header() {
    let h = Harness::start(2, "").await;
    let client_ip: IpAddr = "127.0.0.9".parse().unwrap();
    for vip in [h.http, h.https] {
        let mut session = Session::open_from(Some(client_ip), vip, "ECHO")
            .await
            .unwrap();
        assert_eq!(
            session.client, session.local,
            "the L7 node was told the real client"
        );
        let fake = h.l7.iter().find(|f| f.name() == session.node).unwrap();
        let seen = fake.seen().last().cloned().unwrap();
        assert_eq!(seen.source, session.local);
        assert_eq!(seen.destination, vip, "the destination is the VIP");
        assert_eq!(seen.l4_node, L4_NAME, "the TLV names the L4 node");
        assert_eq!(seen.port, vip.port(), "the same port as the VIP's");
        session.ping("hello").await.unwrap();
        session.finish().await;
    }
    h.stop().await;
}

#[tokio::test]
async fn tls_bytes_pass_through_untouched() {
    let h = Harness::start(1, "").await;
    // Whatever a TLS client sends (here a ClientHello-looking record and
    // every byte value) arrives as sent: the L4 tier never parses it.
    let mut bytes = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    bytes.extend((0..=255u8).cycle().take(70_000));
    bytes.extend(pattern(9, 100_000));
    let mut session = Session::open(h.https, "ECHO").await.unwrap();
    session.writer.write_all(&bytes).await.unwrap();
    session.writer.shutdown().await.unwrap();
    let mut back = Vec::new();
    session.reader.read_to_end(&mut back).await.unwrap();
    assert!(back == bytes, "echoed bytes differ");
    h.stop().await;
}

#[tokio::test]
async fn the_regions_health_path_answers_through_the_vip() {
    let h = Harness::start(2, "").await;
    let (status, body) = http_get(h.http, "/.well-known/gtm/health").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("node=l7"), "{body}");
    assert!(body.contains("client=127.0.0.1:"), "{body}");
    h.stop().await;
}

#[tokio::test]
async fn client_ip_hashing_keeps_each_client_on_one_node() {
    let h = Harness::start(3, "      hash: client_ip\n").await;
    let mut used = std::collections::BTreeSet::new();
    for last in 9..21u8 {
        let client = IpAddr::from([127, 0, 0, last]);
        let mut nodes = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let session = Session::open_from(Some(client), h.http, "ECHO")
                .await
                .unwrap();
            nodes.insert(session.node.clone());
            session.finish().await;
        }
        assert_eq!(nodes.len(), 1, "{client} was spread over {nodes:?}");
        used.extend(nodes);
    }
    // The key is fixed, so this spread is deterministic, not luck.
    assert!(used.len() > 1, "every client landed on {used:?}");
    h.stop().await;
}
