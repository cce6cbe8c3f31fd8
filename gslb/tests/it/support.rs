//! A server on 127.0.0.1:0 and a small DNS client to talk to it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a reply that must come.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server; shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serves the example topology.
    pub async fn example() -> TestServer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
        Self::start(topology::load(&path).expect("example loads")).await
    }

    /// Serves the example topology with `geoip:` set to a MaxMind test
    /// database from geo-data's fixtures.
    pub async fn example_with_geoip(fixture: &str) -> TestServer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(dir.join("examples/three-regions.yaml")).unwrap();
        let db = dir.join("geo-data/tests/fixtures").join(fixture);
        let text = text.replacen(
            "  zones:\n",
            &format!("  geoip: {}\n  zones:\n", db.display()),
            1,
        );
        Self::start(topology::parse(&text, "<test>").expect("test topology is valid")).await
    }

    /// Serves the example topology with extra records appended to its zone.
    pub async fn example_with(extra_records: &str) -> TestServer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
        let text = std::fs::read_to_string(path).expect("example readable");
        let text = text.replacen(
            "      records:\n",
            &format!("      records:\n{extra_records}"),
            1,
        );
        Self::start(topology::parse(&text, "<test>").expect("test topology is valid")).await
    }

    pub async fn start(topology: topology::Topology) -> TestServer {
        Self::start_with(topology, gslb::Options::default()).await
    }

    /// Starts node `options.node` (default: the first) of `topology`.
    pub async fn start_with(
        topology: topology::Topology,
        mut options: gslb::Options,
    ) -> TestServer {
        if options.node.is_empty() {
            options.node = topology.dns.nodes[0].name.clone();
        }
        let listeners = gslb::Listeners::bind(
            &["127.0.0.1:0".parse().unwrap()],
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .expect("bind");
        let addr = listeners.dns_addrs()[0];
        let admin = listeners.admin_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gslb::run(topology, listeners, options, shutdown.clone()));
        TestServer {
            addr,
            admin,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task
            .take()
            .unwrap()
            .await
            .expect("server task panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How a query is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

pub const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// A query under construction.
pub struct Ask {
    pub message: Message,
}

impl Ask {
    pub fn new(name: &str, rtype: RecordType) -> Ask {
        let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        Ask { message }
    }

    /// Adds an OPT record advertising `payload` bytes.
    pub fn edns(mut self, payload: u16) -> Ask {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        self.message.edns = Some(edns);
        self
    }

    /// Adds an EDNS Client Subnet option for `address/source` (and an OPT
    /// record if there is none).
    pub fn ecs(self, address: &str, source: u8) -> Ask {
        self.ecs_raw(address.parse().unwrap(), source, 0)
    }

    /// Adds an ECS option exactly as given, valid or not.
    pub fn ecs_raw(mut self, address: std::net::IpAddr, source: u8, scope: u8) -> Ask {
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        let edns = self.message.edns.get_or_insert_with(|| {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            edns
        });
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                address, source, scope,
            )));
        self
    }

    pub fn recursion_desired(mut self) -> Ask {
        self.message.metadata.recursion_desired = true;
        self
    }

    pub fn class(mut self, class: DNSClass) -> Ask {
        self.message.queries[0].query_class = class;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.message.to_vec().unwrap()
    }

    pub async fn send(&self, server: &TestServer, transport: Transport) -> Message {
        let reply = exchange(server.addr, transport, &self.bytes()).await;
        Message::from_vec(&reply).expect("reply parses")
    }
}

/// Sends raw bytes and returns the raw reply.
pub async fn exchange(addr: SocketAddr, transport: Transport, query: &[u8]) -> Vec<u8> {
    let work = async {
        match transport {
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                socket.send_to(query, addr).await.unwrap();
                let mut buf = vec![0; 65535];
                let (len, _) = socket.recv_from(&mut buf).await.unwrap();
                buf.truncate(len);
                buf
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream
                    .write_all(&(query.len() as u16).to_be_bytes())
                    .await
                    .unwrap();
                stream.write_all(query).await.unwrap();
                read_tcp_message(&mut stream).await
            }
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, work)
        .await
        .expect("reply within the timeout")
}

pub async fn read_tcp_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

/// The answer section as `name type ttl data` lines, for readable asserts.
pub fn lines(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.record_type(), r.ttl, r.data))
        .collect()
}
