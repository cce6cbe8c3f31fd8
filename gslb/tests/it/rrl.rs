//! DNS abuse resistance: response rate limiting on both UDP paths (and
//! never on TCP), loopback exempt by default, oversize and malformed
//! datagrams dropped or answered FORMERR, TCP connections capped per
//! client and closed when idle or trickling, and the configuration
//! checked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gslb::ServingState;
use gslb::dns::MAX_UDP_PAYLOAD;
use gslb::health::RegionHealth;
use gslb::metrics::Metrics;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{Ask, REPLY_TIMEOUT, read_tcp_message};

/// A server with `rate_limit` (YAML flow mapping, or none for the default)
/// and one UDP worker, so replies leave in the order queries came.
struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(rate_limit: Option<&str>) -> Server {
        Server::start_with(rate_limit, gslb::serve::TcpOptions::default()).await
    }

    async fn start_with(rate_limit: Option<&str>, tcp: gslb::serve::TcpOptions) -> Server {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
        let mut text = std::fs::read_to_string(path).unwrap();
        if let Some(rate_limit) = rate_limit {
            text = text.replacen("dns:\n", &format!("dns:\n  rate_limit: {rate_limit}\n"), 1);
        }
        let topology = topology::parse(&text, "<rrl test>").expect("test topology is valid");
        let geoip = Arc::new(gslb::open_geoip(&topology).unwrap());
        let regions = topology.regions.len();
        let state = ServingState::new(Arc::new(topology), geoip, None).unwrap();
        let listeners = gslb::Listeners::bind(&["127.0.0.1:0".parse().unwrap()], None)
            .await
            .unwrap();
        let addr = listeners.dns_addrs()[0];
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let task = tokio::spawn(gslb::serve::serve_with(
            Arc::new(ArcSwap::from_pointee(state)),
            Arc::new(ArcSwap::from_pointee(RegionHealth::all_up(regions))),
            metrics.clone(),
            listeners.dns,
            shutdown.clone(),
            Duration::from_secs(1),
            gslb::serve::ServeOptions {
                udp: gslb::serve::UdpOptions {
                    threads: 1,
                    max_payload: MAX_UDP_PAYLOAD,
                },
                tcp,
            },
        ));
        Server {
            addr,
            metrics,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut ask = Ask::new(name, rtype);
    ask.message.metadata.id = id;
    ask.bytes()
}

/// Marker queries use IDs from here; flood queries stay below.
const MARKER: u16 = 0xF000;

/// Sends `packets` from `socket`, then a marker query (a fresh NXDOMAIN
/// bucket), and collects every reply up to the marker's: with one worker
/// and one client socket, replies come back in order, so whatever did not
/// come before the marker was dropped.
async fn flood(
    server: &Server,
    socket: &UdpSocket,
    packets: &[Vec<u8>],
    marker: u16,
) -> Vec<Message> {
    for packet in packets {
        socket.send_to(packet, server.addr).await.unwrap();
    }
    let name = format!("marker{marker}.example.com.");
    socket
        .send_to(&query(&name, RecordType::A, marker), server.addr)
        .await
        .unwrap();
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, _) = tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buf))
            .await
            .expect("the marker is answered")
            .unwrap();
        let reply = Message::from_vec(&buf[..len]).expect("every reply parses");
        if reply.metadata.id == marker {
            return replies;
        }
        replies.push(reply);
    }
}

#[tokio::test]
async fn a_flood_from_one_network_is_limited_on_both_paths_with_slips() {
    let server = Server::start(Some(
        "{ responses_per_second: 5, burst: 5, slip: 2, exempt: [] }",
    ))
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The same answer class and name through the fast path (A) and the slow
    // path (ANY answers one RRset): one bucket.
    let packets: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let rtype = if i % 2 == 0 {
                RecordType::A
            } else {
                RecordType::ANY
            };
            query("static.example.com.", rtype, i)
        })
        .collect();
    let replies = flood(&server, &socket, &packets, MARKER).await;
    let full: Vec<&Message> = replies.iter().filter(|r| !r.metadata.truncation).collect();
    let truncated: Vec<&Message> = replies.iter().filter(|r| r.metadata.truncation).collect();
    assert!(full.len() >= 5, "the burst gets through: {}", full.len());
    assert!(
        full.len() < 15,
        "the rest is limited: {} full replies",
        full.len()
    );
    assert!(!truncated.is_empty(), "limited replies slip truncated");
    assert!(
        replies.len() < 40,
        "limited replies are dropped too: {}",
        replies.len()
    );
    for reply in &truncated {
        assert!(reply.answers.is_empty() && reply.authorities.is_empty());
        assert_eq!(reply.queries.len(), 1, "the question is kept");
        assert_eq!(reply.queries[0].name().to_ascii(), "static.example.com.");
    }
    // Slipped and full replies from both paths.
    assert!(
        full.iter()
            .any(|r| r.queries[0].query_type() == RecordType::A)
    );
    // Another network class is untouched: the marker came back.
    let metrics = server.metrics.clone();
    server.stop().await;
    // What was held back is in /metrics, by action.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry()).unwrap();
    let held = |action: &str| {
        admin::metrics::counter_sum(
            &text,
            &format!("gslb_rrl_replies_total{{action=\"{action}\"}}"),
        )
    };
    assert_eq!(held("drop"), Some((40 - replies.len()) as f64), "{text}");
    assert_eq!(held("slip"), Some(truncated.len() as f64), "{text}");
}

#[tokio::test]
async fn loopback_is_exempt_by_default_and_tcp_is_never_limited() {
    let server = Server::start(None).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let packets: Vec<Vec<u8>> = (0..200)
        .map(|i| query("static.example.com.", RecordType::A, i))
        .collect();
    let replies = flood(&server, &socket, &packets, MARKER).await;
    assert_eq!(replies.len(), 200);
    assert!(
        replies
            .iter()
            .all(|r| !r.metadata.truncation && r.answers.len() == 1)
    );
    server.stop().await;

    let server = Server::start(Some("{ responses_per_second: 1, burst: 1, exempt: [] }")).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for id in 0..30u16 {
        let packet = query("static.example.com.", RecordType::A, id);
        stream
            .write_all(&(packet.len() as u16).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&packet).await.unwrap();
    }
    for _ in 0..30 {
        let reply = tokio::time::timeout(REPLY_TIMEOUT, read_tcp_message(&mut stream))
            .await
            .expect("every TCP query is answered");
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.answers.len(), 1);
    }
    server.stop().await;
}

#[tokio::test]
async fn oversize_and_malformed_datagrams_cost_a_drop_or_a_formerr() {
    let server = Server::start(None).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut oversize = query("static.example.com.", RecordType::A, 1);
    oversize.resize(5000, 0);
    let mut garbage = query("static.example.com.", RecordType::A, 2);
    garbage.truncate(20);
    let packets = vec![oversize, vec![0x12; 11], garbage];
    let replies = flood(&server, &socket, &packets, MARKER).await;
    // The oversize datagram and the short one get nothing; the one whose
    // header parses gets FORMERR with its ID.
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].metadata.id, 2);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::FormErr);
    // A flood of garbage from a limited network is limited like any error.
    server.stop().await;
    let server = Server::start(Some(
        "{ responses_per_second: 2, burst: 2, slip: 0, exempt: [] }",
    ))
    .await;
    let garbage: Vec<Vec<u8>> = (0..30u16)
        .map(|id| {
            let mut packet = query("static.example.com.", RecordType::A, id);
            packet.truncate(20);
            packet
        })
        .collect();
    let replies = flood(&server, &socket, &garbage, MARKER).await;
    assert!(
        replies.len() < 10,
        "{} FORMERRs for 30 malformed queries",
        replies.len()
    );
    server.stop().await;
}

#[test]
fn the_rate_limit_block_is_validated_field_by_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let with = |block: &str| text.replacen("dns:\n", &format!("dns:\n  rate_limit: {block}\n"), 1);
    let topology = topology::parse(
        &with("{ responses_per_second: 50, slip: 1, exempt: [\"10.0.0.0/8\"] }"),
        "t",
    )
    .unwrap();
    let limit = &topology.dns.rate_limit;
    assert!(limit.enabled);
    assert_eq!(
        (limit.responses_per_second, limit.burst, limit.slip),
        (50, 100, 1)
    );
    assert_eq!(limit.exempt.len(), 1, "an exempt list replaces the default");
    let default = topology::parse(&text, "t").unwrap().dns.rate_limit;
    assert_eq!(default, topology::RateLimit::default());
    assert!(default.enabled && default.exempt.len() == 2);

    let error = topology::parse(
        &with("{ responses_per_second: 0, burst: 0, slip: 11, ipv4_prefix: 33, exempt: [\"10.0.0/8\"] }"),
        "t",
    )
    .unwrap_err()
    .to_string();
    for field in [
        "dns.rate_limit.responses_per_second",
        "dns.rate_limit.burst",
        "dns.rate_limit.slip",
        "dns.rate_limit.ipv4_prefix",
        "dns.rate_limit.exempt[0]",
    ] {
        assert!(error.contains(field), "{field} missing from:\n{error}");
    }
    let error = topology::parse(&with("{ rate: 5 }"), "t")
        .unwrap_err()
        .to_string();
    assert!(error.contains("rate"), "unknown keys are refused: {error}");
}

/// A TCP query on `stream`: the reply, or `None` if the server closed it.
async fn tcp_query(stream: &mut TcpStream, id: u16) -> Option<Message> {
    use tokio::io::AsyncReadExt;
    let packet = query("static.example.com.", RecordType::A, id);
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    stream.write_all(&framed).await.ok()?;
    let mut len = [0u8; 2];
    let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read_exact(&mut len))
        .await
        .expect("the server answers or closes");
    read.ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.ok()?;
    Message::from_vec(&reply).ok()
}

#[tokio::test]
async fn tcp_connections_are_capped_per_client() {
    let tcp = gslb::serve::TcpOptions {
        max_connections: 100,
        max_per_client: 3,
        idle_timeout: Duration::from_secs(30),
    };
    let server = Server::start_with(None, tcp).await;
    let mut open = Vec::new();
    for id in 0..3 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        assert!(
            tcp_query(&mut stream, id).await.is_some(),
            "connection {id} is served"
        );
        open.push(stream);
    }
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        tcp_query(&mut fourth, 4).await.is_none(),
        "a fourth connection is closed"
    );
    // Closing one frees its place (once the server has seen it close).
    drop(open.pop());
    let mut served = false;
    for id in 10..200 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        if tcp_query(&mut stream, id).await.is_some() {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "a place freed by a closed connection is reused");
    server.stop().await;
}

#[tokio::test]
async fn idle_and_trickling_tcp_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let idle_timeout = Duration::from_millis(300);
    let tcp = gslb::serve::TcpOptions {
        idle_timeout,
        ..gslb::serve::TcpOptions::default()
    };
    let server = Server::start_with(None, tcp).await;
    // Silent, then one byte of a length prefix and nothing more.
    for trickle in [&[][..], &[0u8][..]] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        assert!(tcp_query(&mut stream, 1).await.is_some());
        let since = tokio::time::Instant::now();
        stream.write_all(trickle).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("the server closes the connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(
            since.elapsed() >= idle_timeout,
            "closed after {:?}",
            since.elapsed()
        );
    }
    server.stop().await;
}
