//! An L7 node in-process on loopback, demo backends, and small clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge::demo_backend::{Backend, Stats};
use edge::l7::{Handle, L7Node, Listeners, NodeSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Every wait in these tests is bounded by this.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A demo backend on 127.0.0.1:0.
pub struct TestBackend {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    stop: CancellationToken,
}

impl TestBackend {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = Backend::new(name, "test");
        let stats = backend.stats();
        let stop = CancellationToken::new();
        tokio::spawn(backend.run(listener, stop.clone()));
        Self { addr, stats, stop }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts `n` backends named `b0`, `b1`…
pub async fn backends(n: usize) -> Vec<TestBackend> {
    let mut all = Vec::new();
    for i in 0..n {
        all.push(TestBackend::start(&format!("b{i}")).await);
    }
    all
}

/// The `servers:` list of a pool over `backends`.
pub fn servers(backends: &[&TestBackend]) -> String {
    let items: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ addr: \"{}\" }}", b.addr))
        .collect();
    format!("[{}]", items.join(", "))
}

/// A node spec from an `l7:` block (without `nodes:`, which is added).
pub fn spec(l7_body: &str) -> NodeSpec {
    spec_at(l7_body, std::path::Path::new("."))
}

/// [`spec`] for a topology file in `base_dir`, against which relative
/// paths are resolved.
pub fn spec_at(l7_body: &str, base_dir: &std::path::Path) -> NodeSpec {
    let text = topology_text(l7_body, "", "127.0.0.1:9100");
    let topology = topology::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    NodeSpec::from_topology(&topology, "l7t", base_dir).unwrap()
}

/// A one-region topology file whose `l7:` block is `l7_body` plus one node
/// `l7t` on 127.0.0.1 with its admin endpoint at `admin`; `vip_ports` goes
/// into the VIP (`, ports: { http: 8080 }`, or nothing).
pub fn topology_text(l7_body: &str, vip_ports: &str, admin: &str) -> String {
    let indented: String = l7_body.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "dns:
  nodes: [{{ name: ns1, listen: [\"127.0.0.1:5353\"] }}]
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      records:
        - {{ name: \"@\", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
regions:
  test:
    location: {{ lat: 0, lon: 0 }}
    vip: {{ ipv4: 127.0.0.1{vip_ports} }}
    l7:
      nodes: [{{ name: l7t, address: 127.0.0.1, admin: \"{admin}\" }}]
{indented}"
    )
}

/// An L7 node under test.
pub struct Proxy {
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub handle: Handle,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Proxy {
    pub async fn start(spec: NodeSpec) -> Self {
        Self::start_node(L7Node::new(spec).unwrap()).await
    }

    /// Serves `node`, built by the caller (with a state file, say).
    pub async fn start_node(node: L7Node) -> Self {
        let tls = node.handle().tls();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = if tls {
            Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (
            http.local_addr().unwrap(),
            https.as_ref().map(|l| l.local_addr().unwrap()),
            admin.local_addr().unwrap(),
        );
        let handle = node.handle();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(node.run(
            Listeners {
                http: Some(http),
                https,
                admin: Some(admin),
            },
            shutdown.clone(),
        ));
        let proxy = Self {
            http: addrs.0,
            https: addrs.1,
            admin: addrs.2,
            handle,
            shutdown,
            task,
        };
        // Ready once the admin endpoint answers.
        proxy
            .wait_for(|| async { get(proxy.admin, "/v1/status", &[]).await.status == 200 })
            .await;
        proxy
    }

    /// Waits (bounded) until `check` holds.
    pub async fn wait_for<F, Fut>(&self, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        wait_until(check).await;
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the node stopped in time")
            .expect("no panic")
    }
}

/// Waits (bounded by [`PATIENCE`], polling every 20ms) until `check` holds.
pub async fn wait_until<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The backend that answered (`X-Backend`).
    pub fn backend(&self) -> &str {
        self.header("x-backend").unwrap_or("-")
    }
}

/// Parses a response read to EOF; `None` if nothing came.
pub fn parse(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n.min(after.len())]);
            rest = after.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_owned()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Writes `request` and reads the answer until the server closes.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut buf))
        .await
        .expect("the server answered and closed in time");
    buf
}

/// A POST announcing 100 bytes of body and sending 10, then nothing; the
/// response as text.
pub async fn stalled_upload(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let reply = exchange(
        &mut stream,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly ten b",
    )
    .await;
    String::from_utf8_lossy(&reply).into_owned()
}

/// `GET path` with `Connection: close` and extra headers.
pub fn request(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// One GET over a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    get_host(addr, "www.example.com", path, headers).await
}

/// One GET for `host` over a fresh connection.
pub async fn get_host(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let raw = exchange(&mut stream, &request("GET", path, host, headers)).await;
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "no response to GET {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Counts replies by backend name over `n` GETs.
pub async fn spread(
    addr: SocketAddr,
    n: usize,
    headers: &[(&str, &str)],
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let reply = get(addr, "/", headers).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        *counts.entry(reply.backend().to_owned()).or_insert(0) += 1;
    }
    counts
}
