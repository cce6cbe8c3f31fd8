//! Random and mutated packets never take the server down, and every reply
//! it sends to them parses.

use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use tokio::net::UdpSocket;

use crate::support::{Ask, REPLY_TIMEOUT, TestServer};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Seeds to mutate: the kinds of query the server meets.
fn seeds() -> Vec<Vec<u8>> {
    let mut ecs = Ask::new("www.example.com.", RecordType::A).edns(1232);
    ecs.message.edns.as_mut().unwrap().options_mut().insert(
        hickory_proto::rr::rdata::opt::EdnsOption::Subnet(
            hickory_proto::rr::rdata::opt::ClientSubnet::new([192, 0, 2, 0].into(), 24, 0),
        ),
    );
    vec![
        Ask::new("www.example.com.", RecordType::A).bytes(),
        Ask::new("api.example.com.", RecordType::AAAA)
            .edns(4096)
            .bytes(),
        Ask::new("x.apps.example.com.", RecordType::TXT).bytes(),
        Ask::new("host.dev.example.com.", RecordType::ANY)
            .edns(512)
            .bytes(),
        ecs.bytes(),
    ]
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    (
        0..seeds.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        any::<usize>(),
    )
        .prop_map(move |(seed, flips, cut)| {
            let mut bytes = seeds[seed].clone();
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            if cut % 4 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes
        })
}

fn random() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600)
}

/// Sends `packet`, then a probe query from the same socket, and reads until
/// the probe's reply: every datagram on the way must parse, and the probe's
/// reply proves the server still serves.
async fn send_and_probe(server: &TestServer, socket: &UdpSocket, packet: &[u8], probe_id: u16) {
    socket.send_to(packet, server.addr).await.unwrap();
    let mut probe = Ask::new("static.example.com.", RecordType::A);
    probe.message.metadata.id = probe_id;
    socket.send_to(&probe.bytes(), server.addr).await.unwrap();
    let mut buf = vec![0; 65535];
    loop {
        let (len, _) = tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buf))
            .await
            .expect("the server still answers")
            .unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap_or_else(|e| {
            panic!(
                "unparseable reply {:02x?} to {packet:02x?}: {e}",
                &buf[..len]
            )
        });
        if reply.metadata.id == probe_id && reply.answers.len() == 1 {
            return;
        }
    }
}

/// Names the server's threads so the panic hook counts only their panics,
/// not those of other tests running in the same process.
const SERVER_THREADS: &str = "hostile-input-server";

#[test]
fn random_and_mutated_packets_never_break_the_server() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(SERVER_THREADS) {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        default_hook(info);
    }));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .unwrap()
        .block_on(exercise());
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "the server panicked on some input"
    );
}

async fn exercise() {
    let server = TestServer::example().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let mut packets = Vec::new();
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let strategy = prop_oneof![3 => mutated(), 1 => random()];
    for _ in 0..1500 {
        packets.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    for (index, packet) in packets.iter().enumerate() {
        // Probe IDs are outside the seeds' 0x4242 so they cannot be confused.
        send_and_probe(&server, &socket, packet, (index % 30000) as u16 + 0x8000).await;
    }
}
