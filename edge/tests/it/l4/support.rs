//! Fake L7 nodes, a topology builder and a running L4 node under test.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge::l4::{DrainReport, L4Node, Listeners, Options, Status};
use edge::proxy_protocol::{Addresses, Decoded, Transport, decode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every wait in these tests is bounded by this.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The L4 node's name in every test topology.
pub const L4_NAME: &str = "test-l4";

/// What a fake L7 node learnt from one PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub l4_node: String,
    /// The local port the connection arrived on.
    pub port: u16,
}

/// Bytes a fake received after sending its own (`PUSH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub count: u64,
    pub digest: u64,
}

struct Inner {
    name: String,
    healthy: AtomicBool,
    seen: Mutex<Vec<Seen>>,
    received: Mutex<Vec<Received>>,
    health_checks: AtomicU64,
}

/// A fake L7 node on `ip` at the VIP's ports and at its admin port.
///
/// Direct connections (the L4 node's health probes, which go to the admin
/// port since the L7 tier expects PROXY headers) get an HTTP answer:
/// 200 while healthy, 503 otherwise. Connections with a PROXY v2 header
/// are recorded, then follow a one-line command:
///
/// - `GET …` (HTTP through the VIP): 200/503 with `node=NAME client=ADDR`;
/// - `ECHO`: `HELLO NAME CLIENT` then every byte back until EOF, then FIN;
/// - `SINK n`: `HELLO …`, reads to EOF, answers `count digest`, then `n`
///   pattern bytes, then FIN;
/// - `PUSH n`: `HELLO …`, `n` pattern bytes, FIN, then reads to EOF and
///   records what it got ([`FakeL7::received`]);
/// - `DISCARD`: `HELLO …`, reads to EOF, answers the byte count, FIN;
/// - `SOURCE n`: `HELLO …`, `n` zero bytes, FIN.
pub struct FakeL7 {
    inner: Arc<Inner>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl FakeL7 {
    /// Listens on `ip` at each of `ports`; fails if one is taken.
    pub async fn start(name: &str, ip: IpAddr, ports: &[u16]) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for &port in ports {
            listeners.push(TcpListener::bind(SocketAddr::new(ip, port)).await?);
        }
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            healthy: AtomicBool::new(true),
            seen: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            health_checks: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        for listener in listeners {
            let (inner, stop, conns) = (Arc::clone(&inner), stop.clone(), tasks.clone());
            tasks.spawn(async move {
                loop {
                    let stream = tokio::select! {
                        () = stop.cancelled() => break,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let (inner, stop) = (Arc::clone(&inner), stop.clone());
                    conns.spawn(async move {
                        tokio::select! {
                            () = stop.cancelled() => {}
                            _ = handle(stream, inner) => {}
                        }
                    });
                }
            });
        }
        Ok(Self { inner, stop, tasks })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Makes its health answers 200 (`true`) or 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.inner.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Headers received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// What `PUSH` sessions received, in completion order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Direct health checks answered.
    pub fn health_checks(&self) -> u64 {
        self.inner.health_checks.load(Ordering::SeqCst)
    }

    /// Stops listening and drops every connection, like a crash.
    pub async fn kill(&self) {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(PATIENCE, self.tasks.wait())
            .await
            .expect("fake L7 stops");
    }
}

impl Drop for FakeL7 {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle(mut stream: TcpStream, inner: Arc<Inner>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let header = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        match decode(&buf) {
            Ok(Decoded::Complete(header, len)) => {
                buf.drain(..len);
                break Some(header);
            }
            Ok(Decoded::Incomplete { .. }) => continue,
            Err(_) => break None,
        }
    };
    let Some(header) = header else {
        // A direct connection: the L4 node's health probe.
        read_until(&mut stream, &mut buf, b"\r\n\r\n").await?;
        inner.health_checks.fetch_add(1, Ordering::SeqCst);
        let healthy = inner.healthy.load(Ordering::SeqCst);
        return respond(&mut stream, healthy, "ok").await;
    };
    let source = header.source().expect("PROXY with addresses");
    inner.seen.lock().unwrap().push(Seen {
        source,
        destination: header.destination().expect("PROXY with addresses"),
        l4_node: String::from_utf8_lossy(header.l4_node().unwrap_or(b"")).into_owned(),
        port: stream.local_addr()?.port(),
    });
    let hello = format!("HELLO {} {source}\n", inner.name);
    let line_end = read_until(&mut stream, &mut buf, b"\n").await?;
    let line = String::from_utf8_lossy(&buf[..line_end])
        .trim_end()
        .to_owned();
    buf.drain(..line_end + 1);
    let mut words = line.split(' ');
    let command = words.next().unwrap_or("");
    let size: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    match command {
        "GET" => {
            read_until(&mut stream, &mut buf, b"\r\n\r\n").await?;
            let healthy = inner.healthy.load(Ordering::SeqCst);
            respond(
                &mut stream,
                healthy,
                &format!("node={} client={source}", inner.name),
            )
            .await
        }
        "ECHO" => {
            stream.write_all(hello.as_bytes()).await?;
            stream.write_all(&buf).await?;
            let (mut r, mut w) = stream.split();
            tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await
        }
        "SINK" => {
            stream.write_all(hello.as_bytes()).await?;
            let got = drain_digest(&mut stream, buf).await?;
            stream
                .write_all(format!("{} {}\n", got.count, got.digest).as_bytes())
                .await?;
            stream.write_all(&pattern(2, size)).await?;
            stream.shutdown().await
        }
        "DISCARD" => {
            stream.write_all(hello.as_bytes()).await?;
            let mut count = buf.len() as u64;
            let mut chunk = vec![0u8; 256 * 1024];
            loop {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                count += n as u64;
            }
            stream.write_all(format!("{count}\n").as_bytes()).await?;
            stream.shutdown().await
        }
        "SOURCE" => {
            stream.write_all(hello.as_bytes()).await?;
            let chunk = vec![0u8; 256 * 1024];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n]).await?;
                left -= n;
            }
            stream.shutdown().await
        }
        "PUSH" => {
            stream.write_all(hello.as_bytes()).await?;
            stream.write_all(&pattern(3, size)).await?;
            stream.shutdown().await?;
            let got = drain_digest(&mut stream, buf).await?;
            inner.received.lock().unwrap().push(got);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Reads into `buf` until it contains `delimiter`; returns its offset.
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    delimiter: &[u8],
) -> io::Result<usize> {
    loop {
        if let Some(at) = buf.windows(delimiter.len()).position(|w| w == delimiter) {
            return Ok(at);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(stream: &mut TcpStream, healthy: bool, body: &str) -> io::Result<()> {
    let status = if healthy {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// Digests `already` and then everything until EOF.
async fn drain_digest(stream: &mut TcpStream, already: Vec<u8>) -> io::Result<Received> {
    let mut digest = Fnv::default();
    digest.update(&already);
    let mut count = already.len() as u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Received {
                count,
                digest: digest.0,
            });
        }
        count += n as u64;
        digest.update(&chunk[..n]);
    }
}

/// FNV-1a, 64 bits.
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn of(bytes: &[u8]) -> u64 {
        let mut h = Self::default();
        h.update(bytes);
        h.0
    }
}

/// `len` deterministic pseudo-random bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The ports of a test region: the VIP's two, and the fake L7 nodes'
/// admin port (where the L4 node's health checks go).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub https: u16,
    pub l7_admin: u16,
}

impl Ports {
    /// Every port a fake L7 node listens on.
    pub fn all(&self) -> [u16; 3] {
        [self.http, self.https, self.l7_admin]
    }
}

/// The topology of one test region: the VIP on 127.0.0.1 at two ports, the
/// L4 node, the fake L7 nodes (expecting PROXY headers, as an L4 tier
/// needs). `l4_extra` is YAML added under `l4:` (indented by six spaces).
pub fn topology_yaml(ports: Ports, l7: &[(&str, IpAddr)], l4_extra: &str) -> String {
    let Ports {
        http,
        https,
        l7_admin,
    } = ports;
    let mut nodes = String::new();
    for (name, ip) in l7 {
        nodes.push_str(&format!(
            "        - {{ name: {name}, address: {ip}, admin: \"{ip}:{l7_admin}\" }}\n"
        ));
    }
    format!(
        r#"dns:
  nodes:
    - {{ name: ns1, listen: ["127.0.0.1:5353"] }}
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      records:
        - {{ name: "@", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
regions:
  test:
    location: {{ lat: 0, lon: 0 }}
    vip: {{ ipv4: 127.0.0.1, ports: {{ http: {http}, https: {https} }} }}
    l4:
      nodes: [{{ name: {L4_NAME}, admin: "127.0.0.1:9" }}]
{l4_extra}    l7:
      nodes:
{nodes}      proxy_protocol: true
      routes:
        - {{ pool: web }}
      pools:
        web:
          servers:
            - {{ addr: "127.0.0.1:9" }}
"#
    )
}

/// Fast health checks: a node is judged on one probe.
pub const FAST_HEALTH: &str =
    "      health: { interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }\n";

/// A running L4 node in front of fake L7 nodes.
pub struct Harness {
    pub node: Option<L4Node>,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub ports: Ports,
    pub admin: SocketAddr,
    pub l7: Vec<FakeL7>,
    /// The VIP's UDP address, when started with [`Harness::start_udp`].
    pub udp: Option<SocketAddr>,
    /// One UDP echo per fake L7 node, parallel to `l7`.
    pub echoes: Vec<UdpEcho>,
    pub shutdown: CancellationToken,
    pub config: PathBuf,
}

/// IPs of the fake L7 nodes: 127.0.0.2, .3, …
pub fn l7_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8))
}

pub fn l7_name(index: usize) -> String {
    format!("l7{}", (b'a' + index as u8) as char)
}

/// A port free on 127.0.0.1 now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Harness {
    /// `count` fake L7 nodes behind an L4 node whose `l4:` block gets
    /// `l4_extra`. Retries with new ports if a fake's port is taken.
    pub async fn start(count: usize, l4_extra: &str) -> Self {
        Self::start_with(count, l4_extra, Options::default()).await
    }

    pub async fn start_with(count: usize, l4_extra: &str, options: Options) -> Self {
        Self::launch(count, l4_extra, None, options).await
    }

    /// As [`start`](Self::start), plus one UDP service on the VIP whose
    /// `l4.udp` entry gets `udp_options` (e.g. `max_flows: 5`), in front of
    /// a [`UdpEcho`] on each fake L7 node.
    pub async fn start_udp(count: usize, l4_extra: &str, udp_options: &str) -> Self {
        Self::launch(count, l4_extra, Some(udp_options), Options::default()).await
    }

    async fn launch(
        count: usize,
        l4_extra: &str,
        udp_options: Option<&str>,
        options: Options,
    ) -> Self {
        for _ in 0..20 {
            let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let ports = Ports {
                http: http.local_addr().unwrap().port(),
                https: https.local_addr().unwrap().port(),
                l7_admin: free_port(),
            };
            let mut fakes = Vec::new();
            for i in 0..count {
                match FakeL7::start(&l7_name(i), l7_ip(i), &ports.all()).await {
                    Ok(fake) => fakes.push(fake),
                    Err(_) => break,
                }
            }
            if fakes.len() < count {
                continue; // a port was taken on 127.0.0.x: try others
            }
            let mut l4_extra = l4_extra.to_owned();
            let mut udp = Vec::new();
            let mut echoes = Vec::new();
            if let Some(udp_options) = udp_options {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let port = socket.local_addr().unwrap().port();
                let mut to_port = 0;
                for i in 0..count {
                    match UdpEcho::start(&l7_name(i), SocketAddr::new(l7_ip(i), to_port)).await {
                        Ok(echo) => {
                            to_port = echo.addr.port();
                            echoes.push(echo);
                        }
                        Err(_) => break,
                    }
                }
                if echoes.len() < count {
                    continue;
                }
                l4_extra.push_str(&format!(
                    "      udp:\n        - {{ port: {port}, to_port: {to_port}, {udp_options} }}\n"
                ));
                udp.push(socket);
            }
            let names: Vec<(String, IpAddr)> = (0..count).map(|i| (l7_name(i), l7_ip(i))).collect();
            let pairs: Vec<(&str, IpAddr)> =
                names.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
            let yaml = topology_yaml(ports, &pairs, &l4_extra);
            let config = temp_file("topology.yaml");
            std::fs::write(&config, &yaml).unwrap();
            let topology = topology::parse(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
            let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let admin_addr = admin.local_addr().unwrap();
            let shutdown = CancellationToken::new();
            let options = Options {
                config_path: Some(config.clone()),
                ..options
            };
            let udp_addr = udp.first().map(|s| s.local_addr().unwrap());
            let node = L4Node::start(
                &topology,
                L4_NAME,
                Listeners {
                    vip: vec![http, https],
                    udp,
                    admin: Some(admin),
                },
                options,
                shutdown.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            let listeners = node.listeners().to_vec();
            return Self {
                node: Some(node),
                http: listeners[0],
                https: listeners[1],
                ports,
                admin: admin_addr,
                l7: fakes,
                udp: udp_addr,
                echoes,
                shutdown,
                config,
            };
        }
        panic!("could not find free ports for the fake L7 nodes");
    }

    pub fn node(&self) -> &L4Node {
        self.node.as_ref().expect("running")
    }

    pub fn status(&self) -> Status {
        self.node().status()
    }

    /// Waits (bounded) until the published status satisfies `ready`,
    /// woken by each table publication.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Status) -> bool) {
        let mut changes = self.node().changes();
        let wait = async {
            loop {
                if ready(&self.status()) {
                    return;
                }
                changes.changed().await.expect("node running");
            }
        };
        if tokio::time::timeout(PATIENCE, wait).await.is_err() {
            panic!("timed out waiting for {what}; status: {:#?}", self.status());
        }
    }

    /// Waits until the health checks have `name` `up` or `down`.
    pub async fn wait_health(&self, name: &str, health: &str) {
        self.wait_for(&format!("{name} {health}"), |s| {
            s.l7_nodes
                .iter()
                .any(|n| n.name == name && n.health == health && n.in_table == (health == "up"))
        })
        .await;
    }

    /// Cancels and drains the node.
    pub async fn stop(mut self) -> DrainReport {
        self.shutdown.cancel();
        let node = self.node.take().expect("running");
        tokio::time::timeout(PATIENCE, node.wait())
            .await
            .expect("the node drains in time")
    }

    /// The value of the sample `name{labels}` in `/metrics`, 0 if absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let body = http_get(self.admin, "/metrics").await.1;
        body.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A unique path in the temp directory.
pub fn temp_file(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "edge-l4-it-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ))
}

/// `GET path` over HTTP/1.1 with `Connection: close`: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path).await
}

/// `METHOD path` (no body) over HTTP/1.1 with `Connection: close`.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse_http(&raw).unwrap_or_else(|| panic!("bad reply {:?}", String::from_utf8_lossy(&raw)))
}

/// `(status, body)` of a `Connection: close` reply (chunked or not).
pub fn parse_http(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                return Some((status, out));
            }
            out.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
    }
    Some((status, body.to_owned()))
}

/// A client connection through the VIP in `ECHO` mode.
pub struct Session {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
    /// The L7 node that answered.
    pub node: String,
    /// The client address that node was told.
    pub client: SocketAddr,
    /// The client's own address.
    pub local: SocketAddr,
}

impl Session {
    /// Connects to `vip` and sends `command`; `Err` if the L4 node closes
    /// or resets the connection instead of relaying it.
    pub async fn open(vip: SocketAddr, command: &str) -> io::Result<Session> {
        Self::open_from(None, vip, command).await
    }

    /// As [`open`](Self::open), from the address `from` (port 0).
    pub async fn open_from(
        from: Option<IpAddr>,
        vip: SocketAddr,
        command: &str,
    ) -> io::Result<Session> {
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = from {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(vip).await?;
        let local = stream.local_addr()?;
        let (reader, mut writer) = stream.into_split();
        writer.write_all(format!("{command}\n").as_bytes()).await?;
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        let n = tokio::time::timeout(PATIENCE, reader.read_line(&mut line))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no hello"))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut words = line.trim_end().split(' ');
        assert_eq!(words.next(), Some("HELLO"), "{line:?}");
        let node = words.next().unwrap().to_owned();
        let client = words.next().unwrap().parse().unwrap();
        Ok(Session {
            reader,
            writer,
            node,
            client,
            local,
        })
    }

    /// Sends a line and expects it back (an `ECHO` session).
    pub async fn ping(&mut self, text: &str) -> io::Result<()> {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .await?;
        let mut line = String::new();
        let n = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo"))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        assert_eq!(line, format!("{text}\n"));
        Ok(())
    }

    /// Half-closes, then expects EOF (everything echoed) and closes.
    pub async fn finish(mut self) {
        self.writer.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, self.reader.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}

/// Whether the L4 node refuses a connection to `vip`: the connect itself
/// fails, or the connection is closed or reset before any byte arrives.
pub async fn is_refused(vip: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(vip).await else {
        return true;
    };
    let _ = stream.write_all(b"ECHO\n").await;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("neither refused nor answered within {PATIENCE:?}"),
    }
}

/// Polls `check` every 10 ms until it holds (bounded): for conditions no
/// event announces (a connection's task ending).
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a [`UdpEcho`] learnt from one datagram's PROXY v2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenDatagram {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub l4_node: String,
    pub transport: Transport,
}

struct EchoInner {
    /// The L4 node's sockets (one per flow) datagrams came from, in order.
    peers: Mutex<Vec<SocketAddr>>,
    headers: Mutex<Vec<SeenDatagram>>,
}

/// A UDP echo server standing for an L7 node's UDP service: answers each
/// datagram with `NAME|payload`, after stripping and recording a PROXY v2
/// header if the datagram starts with one.
pub struct UdpEcho {
    pub name: String,
    pub addr: SocketAddr,
    inner: Arc<EchoInner>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl UdpEcho {
    /// Binds `addr` (port 0: any) and serves until [`kill`](Self::kill).
    pub async fn start(name: &str, addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?;
        let inner = Arc::new(EchoInner {
            peers: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (inner, stop, name) = (Arc::clone(&inner), stop.clone(), name.to_owned());
            async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let (len, peer) = tokio::select! {
                        () = stop.cancelled() => return,
                        received = socket.recv_from(&mut buf) => match received {
                            Ok(received) => received,
                            Err(_) => continue,
                        },
                    };
                    let mut payload = &buf[..len];
                    if let Ok(Decoded::Complete(header, used)) = decode(payload) {
                        let transport = match header.addresses {
                            Addresses::Ipv4 { transport, .. }
                            | Addresses::Ipv6 { transport, .. } => transport,
                            _ => panic!("unexpected addresses {:?}", header.addresses),
                        };
                        inner.headers.lock().unwrap().push(SeenDatagram {
                            source: header.source().expect("PROXY with addresses"),
                            destination: header.destination().expect("PROXY with addresses"),
                            l4_node: String::from_utf8_lossy(header.l4_node().unwrap_or(b""))
                                .into_owned(),
                            transport,
                        });
                        payload = &payload[used..];
                    }
                    inner.peers.lock().unwrap().push(peer);
                    let mut answer = format!("{name}|").into_bytes();
                    answer.extend_from_slice(payload);
                    let _ = socket.send_to(&answer, peer).await;
                }
            }
        });
        Ok(Self {
            name: name.to_owned(),
            addr,
            inner,
            stop,
            task,
        })
    }

    /// The L4 node's sockets datagrams came from, in arrival order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.inner.peers.lock().unwrap().clone()
    }

    /// PROXY headers received so far.
    pub fn headers(&self) -> Vec<SeenDatagram> {
        self.inner.headers.lock().unwrap().clone()
    }

    /// Closes the socket: datagrams to it now get ICMP port unreachable.
    pub async fn kill(&mut self) {
        self.stop.cancel();
        (&mut self.task).await.expect("echo task");
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Sends `text` from `client` to `vip` and returns the answer, or `None`
/// if none came within `wait`.
pub async fn udp_ask(
    client: &UdpSocket,
    vip: SocketAddr,
    text: &str,
    wait: Duration,
) -> Option<String> {
    client.send_to(text.as_bytes(), vip).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (len, from) = tokio::time::timeout(wait, client.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    assert_eq!(from, vip, "the answer comes from the VIP");
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}
