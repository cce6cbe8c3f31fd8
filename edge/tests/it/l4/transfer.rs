//! Large transfers both ways, with each side half-closing first.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::support::{Fnv, Harness, Received, Session, eventually, pattern};

const SIZE: usize = 8 << 20;

#[tokio::test]
async fn megabytes_echo_both_ways_at_once() {
    let h = Harness::start(2, "").await;
    let session = Session::open(h.http, "ECHO").await.unwrap();
    let data = pattern(1, SIZE);
    let mut writer = session.writer;
    let sent = data.clone();
    let send = tokio::spawn(async move {
        for piece in sent.chunks(100_003) {
            writer.write_all(piece).await.unwrap();
        }
        writer.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(SIZE);
    let mut reader = session.reader;
    reader.read_to_end(&mut back).await.unwrap();
    send.await.unwrap();
    assert_eq!(back.len(), SIZE);
    assert!(back == data, "echoed bytes differ");
    let node = session.node;
    let counted = format!("edge_l4_relayed_bytes_total{{l7_node=\"{node}\",direction=\"to_l7\"}}");
    eventually("the bytes to be counted", async || {
        h.metric(&counted).await >= SIZE as f64
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn the_client_half_closes_first_and_still_gets_the_answer() {
    let h = Harness::start(1, "").await;
    let mut session = Session::open(h.http, &format!("SINK {SIZE}"))
        .await
        .unwrap();
    let data = pattern(4, SIZE);
    session.writer.write_all(&data).await.unwrap();
    session.writer.shutdown().await.unwrap();
    let mut line = String::new();
    session.reader.read_line(&mut line).await.unwrap();
    assert_eq!(line, format!("{SIZE} {}\n", Fnv::of(&data)));
    let mut answer = Vec::with_capacity(SIZE);
    session.reader.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer == pattern(2, SIZE),
        "the answer after our FIN differs"
    );
    h.stop().await;
}

#[tokio::test]
async fn the_l7_node_half_closes_first_and_still_gets_the_request() {
    let h = Harness::start(1, "").await;
    let mut session = Session::open(h.http, &format!("PUSH {SIZE}"))
        .await
        .unwrap();
    let mut pushed = Vec::with_capacity(SIZE);
    session.reader.read_to_end(&mut pushed).await.unwrap();
    assert!(pushed == pattern(3, SIZE), "the pushed bytes differ");
    // The L7 node's FIN arrived; our direction is still open.
    let data = pattern(5, SIZE / 2);
    session.writer.write_all(&data).await.unwrap();
    session.writer.shutdown().await.unwrap();
    let expected = Received {
        count: data.len() as u64,
        digest: Fnv::of(&data),
    };
    let fake = &h.l7[0];
    eventually("the L7 node to receive everything", async || {
        fake.received().contains(&expected)
    })
    .await;
    h.stop().await;
}
