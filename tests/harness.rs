//! Harness for end-to-end tests: finds the workspace's binaries, runs them
//! as a user would, and waits for their readiness lines.
//!
//! Binaries are looked up beside the test executable (`target/<profile>/`),
//! where `cargo test --workspace` builds them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a daemon may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of workspace binary `name`; panics with the fix if missing.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing; build it first with `cargo build --workspace` (or run `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A child process whose stderr is read line by line; killed on drop.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything it printed so far, for failure messages.
    pub log: Vec<String>,
}

impl Daemon {
    /// Starts `command` with stderr captured.
    pub fn spawn(mut command: Command) -> Daemon {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` and returns it; panics with the
    /// log if the process exits or the timeout passes first.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} (exit status: {:?}); log:\n{}",
                    self.child.try_wait(),
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` (`"HUP"`, `"TERM"`, …) as `kill(1)` would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill(1)");
        assert!(
            status.success(),
            "kill -{signal} {}: {status}",
            self.child.id()
        );
    }

    /// Sends SIGTERM and waits for the exit status (bounded).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL and waits for the process to be gone: a crash, with
    /// no chance to drain.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything printed so far (what is waiting is read first), for
    /// failure messages.
    pub fn log_text(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, empty directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gtm-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Starts `gslb` on `config` with DNS and the admin API on free loopback
/// ports and a state file of its own; returns the daemon and the DNS
/// address.
pub fn start_gslb(config: &std::path::Path) -> (Daemon, std::net::SocketAddr) {
    let gslb = Gslb::start(config, &temp_dir("gslb-state").join("state.json"), &[]);
    (gslb.daemon, gslb.dns)
}

/// A running `gslb` and where it listens.
pub struct Gslb {
    /// The process.
    pub daemon: Daemon,
    /// Its first DNS address.
    pub dns: SocketAddr,
    /// Its admin API.
    pub admin: SocketAddr,
}

impl Gslb {
    /// Starts `gslb` on `config` with DNS and the admin API on free
    /// loopback ports, `state` as its state file and `env` added to its
    /// environment; returns once it serves DNS.
    pub fn start(config: &std::path::Path, state: &std::path::Path, env: &[(&str, &str)]) -> Gslb {
        Gslb::start_on(config, state, "127.0.0.1:0", "127.0.0.1:0", env)
    }

    /// As [`Gslb::start`], with DNS on `listen` and the admin API on
    /// `admin` (to restart a node where it was).
    pub fn start_on(
        config: &std::path::Path,
        state: &std::path::Path,
        listen: &str,
        admin: &str,
        env: &[(&str, &str)],
    ) -> Gslb {
        let mut command = Command::new(binary("gslb"));
        command
            .arg("--config")
            .arg(config)
            .args(["--listen", listen, "--admin", admin])
            .arg("--state-file")
            .arg(state)
            .envs(env.iter().copied());
        let mut daemon = Daemon::spawn(command);
        // The admin API is announced first.
        let admin = word_after(&daemon.wait_for("admin API listening"), "admin=");
        let dns = word_after(&daemon.wait_for("serving DNS"), "listen=");
        Gslb { daemon, dns, admin }
    }
}

/// The first address in the `key`-prefixed word of a log line.
fn word_after(line: &str, key: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key))
        .and_then(|addrs| addrs.split(',').next())
        .and_then(|addr| addr.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no {key} address in {line:?}"))
}

/// A port free on 127.0.0.1 for both TCP and UDP.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A region's health endpoint on `ip` (any port) that always answers 200.
pub fn healthy_region(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    // Lives as long as the test process; each probe is one connection.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    addr
}

/// The loopback network `127.NET.0.0/16` of the test holding `slot`: each
/// test that runs a whole topology on its own network has its own slot
/// (below [`LOOPBACK_SLOTS`]), so no two tests of one process meet; the
/// process id spreads test processes running at once apart.
pub fn loopback_net(slot: u8) -> u8 {
    assert!(slot < LOOPBACK_SLOTS, "loopback slot {slot} out of range");
    100 + slot * 10 + (std::process::id() % 10) as u8
}

/// How many tests may hold a [`loopback_net`] slot: 127.100-249.x.x.
pub const LOOPBACK_SLOTS: u8 = 15;

/// The example topology (`examples/three-regions.yaml`) moved to the
/// loopback network `127.NET.0.0/16` with free ports, so a test runs beside
/// anything else (the README's `gtm up`, another test). Region N's
/// addresses become `127.NET.N.x`.
pub struct FullTopology {
    /// The file's text.
    pub yaml: String,
    /// The VIPs' (and L7 nodes') HTTP port.
    pub http_port: u16,
    /// The VIPs' (and L7 nodes') HTTPS port.
    pub https_port: u16,
    /// The VIPs' UDP service port (and the backends' UDP echoes' on the L7
    /// nodes' addresses): the VIPs' IPv6 addresses are not moved, so their
    /// ports must be.
    pub udp_port: u16,
    /// The port of every L4 and L7 node's admin endpoint (each on its own
    /// address).
    pub edge_admin_port: u16,
    /// The GSLB's DNS address.
    pub dns: SocketAddr,
}

/// See [`FullTopology`].
pub fn full_topology(net: u8) -> FullTopology {
    let (dns, admin, http, https, udp, edge_admin) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let examples = examples_dir().canonicalize().unwrap();
    let mut text = std::fs::read_to_string(examples.join("three-regions.yaml"))
        .unwrap()
        // Paths in the file are relative to it; the copy lives elsewhere.
        .replace(
            "cert: certs/",
            &format!("cert: {}/certs/", examples.display()),
        )
        .replace(
            "key: certs/",
            &format!("key: {}/certs/", examples.display()),
        )
        .replace("ca: certs/", &format!("ca: {}/certs/", examples.display()));
    if !text.contains("proxy_protocol:") {
        // The L4 tier announces clients with PROXY v2; the L7 nodes must
        // expect it.
        text = text.replace("      routes:", "      proxy_protocol: true\n      routes:");
    }
    let yaml = text
        .replace("127.0.0.1:5353", &format!("127.{net}.0.1:{dns}"))
        .replace("127.0.0.1:5380", &format!("127.{net}.0.1:{admin}"))
        .replace("value: 127.0.0.1 }", &format!("value: 127.{net}.0.1 }}"))
        .replace("http: 8080", &format!("http: {http}"))
        .replace("https: 8443", &format!("https: {https}"))
        .replace(":9100", &format!(":{edge_admin}"))
        .replace("port: 7007 }", &format!("port: {udp} }}"))
        .replace(":7007\"", &format!(":{udp}\""))
        .replace("127.0.1.", &format!("127.{net}.1."))
        .replace("127.0.2.", &format!("127.{net}.2."))
        .replace("127.0.3.", &format!("127.{net}.3."));
    FullTopology {
        yaml,
        http_port: http,
        https_port: https,
        udp_port: udp,
        edge_admin_port: edge_admin,
        dns: SocketAddr::from(([127, net, 0, 1], dns)),
    }
}

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Runs `command` to completion with stdout and stderr captured, killing it
/// if it outlives `limit` (then panics with what it printed so far).
pub fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    })
    .into_iter();
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = pipes.next().unwrap().join().expect("stdout reader");
    let stderr = pipes.next().unwrap().join().expect("stderr reader");
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}

/// A small blocking HTTP/1.1 client, enough to drive the proxies the way
/// curl does: one request at a time, keep-alive or a new connection per
/// request, `Content-Length` or chunked bodies.
pub mod http {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// How long a connection attempt may take.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long a response may take.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

    /// A response, body read in full.
    #[derive(Debug)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// Header fields, names in lowercase, in order.
        pub headers: Vec<(String, String)>,
        /// The body.
        pub body: Vec<u8>,
    }

    impl Response {
        /// The first value of header `name` (lowercase).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// The body as text.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Why a request got no response.
    #[derive(Debug)]
    pub struct Error {
        /// `connect`, `send` or `receive`.
        pub stage: &'static str,
        /// Whether it went over a kept-alive connection that had served a
        /// request before.
        pub reused: bool,
        /// Whether any byte of a response arrived.
        pub partial: bool,
        /// The underlying error.
        pub source: io::Error,
    }

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "{} failed ({} connection{}): {}",
                self.stage,
                if self.reused { "reused" } else { "new" },
                if self.partial {
                    ", after part of a response"
                } else {
                    ""
                },
                self.source
            )
        }
    }

    /// A client of one address.
    pub struct Client {
        addr: SocketAddr,
        keep_alive: bool,
        host: String,
        conn: Option<BufReader<TcpStream>>,
        /// Kept-alive connections found closed by the server before a
        /// request was written on them, and replaced (as hyper's pool
        /// does).
        pub stale: u64,
        /// Requests sent again on a new connection (see [`Client::send`]).
        pub retries: u64,
        /// Connections opened.
        pub connections: u64,
    }

    impl Client {
        /// A client of `addr` that keeps its connection open between
        /// requests (`keep_alive`) or opens one per request.
        pub fn new(addr: SocketAddr, keep_alive: bool) -> Client {
            Client {
                addr,
                keep_alive,
                host: "www.example.com".to_owned(),
                conn: None,
                stale: 0,
                retries: 0,
                connections: 0,
            }
        }

        /// `GET path`; see [`Client::send`].
        pub fn get(&mut self, path: &str) -> Result<Response, Error> {
            self.send("GET", path, &[], b"")
        }

        /// Sends `method path` with `headers` and `body`. A kept-alive
        /// connection the server has closed is replaced before the request
        /// is written (as hyper does). Like curl (and Go's `net/http`), an
        /// idempotent request (GET, HEAD) that went over a reused
        /// connection and got no byte of a response back — the server
        /// closed the idle connection as the request left — is sent once
        /// more on a new connection; nothing else is retried.
        pub fn send(
            &mut self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> Result<Response, Error> {
            match self.attempt(method, path, headers, body) {
                Err(e) if e.reused && !e.partial && matches!(method, "GET" | "HEAD") => {
                    self.retries += 1;
                    self.attempt(method, path, headers, body)
                }
                other => other,
            }
        }

        fn attempt(
            &mut self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> Result<Response, Error> {
            if self
                .conn
                .as_ref()
                .is_some_and(|c| closed_by_peer(c.get_ref()))
            {
                self.conn = None;
                self.stale += 1;
            }
            let reused = self.conn.is_some();
            let fail = |stage, partial, source| Error {
                stage,
                reused,
                partial,
                source,
            };
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => {
                    let stream = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
                        .map_err(|e| fail("connect", false, e))?;
                    stream
                        .set_read_timeout(Some(READ_TIMEOUT))
                        .and_then(|()| stream.set_write_timeout(Some(READ_TIMEOUT)))
                        .and_then(|()| stream.set_nodelay(true))
                        .map_err(|e| fail("connect", false, e))?;
                    self.connections += 1;
                    BufReader::new(stream)
                }
            };
            let mut request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gtm-system-tests\r\n",
                self.host
            );
            if !self.keep_alive {
                request.push_str("Connection: close\r\n");
            }
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            if !body.is_empty() || method == "POST" {
                request.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            request.push_str("\r\n");
            let mut bytes = request.into_bytes();
            bytes.extend_from_slice(body);
            conn.get_mut()
                .write_all(&bytes)
                .map_err(|e| fail("send", false, e))?;
            let (response, partial) = read_response(&mut conn, method == "HEAD");
            let response = response.map_err(|e| fail("receive", partial, e))?;
            let close = response
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if self.keep_alive && !close {
                self.conn = Some(conn);
            }
            Ok(response)
        }
    }

    /// Whether an idle connection has been closed (or has unexpected bytes
    /// waiting), without blocking.
    fn closed_by_peer(stream: &TcpStream) -> bool {
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let closed =
            !matches!(stream.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        closed || stream.set_nonblocking(false).is_err()
    }

    /// One response; the flag says whether any byte of it arrived.
    fn read_response(conn: &mut BufReader<TcpStream>, head: bool) -> (io::Result<Response>, bool) {
        let mut line = String::new();
        match conn.read_line(&mut line) {
            Ok(0) => {
                return (
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    )),
                    false,
                );
            }
            Ok(_) => {}
            Err(e) => return (Err(e), false),
        }
        (read_rest(conn, &line, head), true)
    }

    fn read_rest(
        conn: &mut BufReader<TcpStream>,
        status_line: &str,
        head: bool,
    ) -> io::Result<Response> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line)? == 0 {
                return Err(bad("connection closed in the headers"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| bad(line))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head || matches!(status, 100..=199 | 204 | 304) {
            // No body.
        } else if let Some(length) = response.header("content-length") {
            let length = length.parse().map_err(|_| bad("bad Content-Length"))?;
            response.body.resize(length, 0);
            conn.read_exact(&mut response.body)?;
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                conn.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                let start = response.body.len();
                response.body.resize(start + size, 0);
                conn.read_exact(&mut response.body[start..])?;
                let mut end = String::new();
                conn.read_line(&mut end)?;
                if size == 0 {
                    break;
                }
            }
        } else {
            conn.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }

    /// `GET path` from `addr` on a new connection, as `curl` would.
    pub fn get(addr: SocketAddr, path: &str) -> Result<Response, Error> {
        Client::new(addr, false).get(path)
    }

    /// `POST path` with `body` and `headers` to `addr` on a new connection.
    pub fn post(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Response, Error> {
        Client::new(addr, false).send("POST", path, headers, body.as_bytes())
    }
}

/// Just enough JSON to read the binaries' output in assertions (the test
/// crate has no JSON dependency).
pub mod json {
    use std::ops::Index;

    /// A JSON value; indexing a missing key or item gives `Null`.
    #[derive(Clone, Debug, PartialEq)]
    #[allow(missing_docs)]
    pub enum Value {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    static NULL: Value = Value::Null;

    impl Value {
        /// The string; panics on anything else.
        pub fn str(&self) -> &str {
            match self {
                Value::Str(s) => s,
                other => panic!("not a string: {other:?}"),
            }
        }

        /// The number; panics on anything else.
        pub fn num(&self) -> f64 {
            match self {
                Value::Num(n) => *n,
                other => panic!("not a number: {other:?}"),
            }
        }

        /// The array's items; panics on anything else.
        pub fn items(&self) -> &[Value] {
            match self {
                Value::Arr(items) => items,
                other => panic!("not an array: {other:?}"),
            }
        }
    }

    impl Index<&str> for Value {
        type Output = Value;
        fn index(&self, key: &str) -> &Value {
            match self {
                Value::Obj(fields) => fields
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(&NULL, |(_, v)| v),
                _ => &NULL,
            }
        }
    }

    impl Index<usize> for Value {
        type Output = Value;
        fn index(&self, index: usize) -> &Value {
            match self {
                Value::Arr(items) => items.get(index).unwrap_or(&NULL),
                _ => &NULL,
            }
        }
    }

    /// Parses one JSON document; panics with the position on bad input.
    pub fn parse(text: &str) -> Value {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value();
        parser.space();
        assert_eq!(parser.at, parser.bytes.len(), "trailing text in {text}");
        value
    }

    struct Parser<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Parser<'_> {
        fn space(&mut self) {
            while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
                self.at += 1;
            }
        }

        fn eat(&mut self, byte: u8) {
            self.space();
            assert_eq!(self.bytes.get(self.at), Some(&byte), "at byte {}", self.at);
            self.at += 1;
        }

        fn literal(&mut self, word: &str, value: Value) -> Value {
            assert!(
                self.bytes[self.at..].starts_with(word.as_bytes()),
                "at byte {}",
                self.at
            );
            self.at += word.len();
            value
        }

        fn value(&mut self) -> Value {
            self.space();
            match self.bytes.get(self.at) {
                Some(b'{') => {
                    self.at += 1;
                    let mut fields = Vec::new();
                    self.space();
                    if self.bytes.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Value::Obj(fields);
                    }
                    loop {
                        self.space();
                        let key = self.string();
                        self.eat(b':');
                        fields.push((key, self.value()));
                        self.space();
                        match self.bytes.get(self.at) {
                            Some(b',') => self.at += 1,
                            _ => break,
                        }
                    }
                    self.eat(b'}');
                    Value::Obj(fields)
                }
                Some(b'[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.space();
                    if self.bytes.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Value::Arr(items);
                    }
                    loop {
                        items.push(self.value());
                        self.space();
                        match self.bytes.get(self.at) {
                            Some(b',') => self.at += 1,
                            _ => break,
                        }
                    }
                    self.eat(b']');
                    Value::Arr(items)
                }
                Some(b'"') => Value::Str(self.string()),
                Some(b't') => self.literal("true", Value::Bool(true)),
                Some(b'f') => self.literal("false", Value::Bool(false)),
                Some(b'n') => self.literal("null", Value::Null),
                _ => {
                    let start = self.at;
                    while self
                        .bytes
                        .get(self.at)
                        .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                    {
                        self.at += 1;
                    }
                    let number = std::str::from_utf8(&self.bytes[start..self.at]).unwrap();
                    Value::Num(
                        number
                            .parse()
                            .unwrap_or_else(|_| panic!("bad number {number:?} at byte {start}")),
                    )
                }
            }
        }

        fn string(&mut self) -> String {
            self.eat(b'"');
            let mut out = Vec::new();
            loop {
                let byte = self.bytes[self.at];
                self.at += 1;
                match byte {
                    b'"' => break,
                    b'\\' => {
                        let escaped = self.bytes[self.at];
                        self.at += 1;
                        match escaped {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex =
                                    std::str::from_utf8(&self.bytes[self.at..self.at + 4]).unwrap();
                                self.at += 4;
                                let c = char::from_u32(u32::from_str_radix(hex, 16).unwrap())
                                    .unwrap_or('\u{fffd}');
                                out.extend(c.to_string().bytes());
                            }
                            other => out.push(other),
                        }
                    }
                    other => out.push(other),
                }
            }
            String::from_utf8(out).unwrap()
        }
    }

    #[test]
    fn the_parser_reads_what_serde_json_writes() {
        let value = parse(r#"{ "a": [1, -2.5e1, "x\"\u00e9"], "b": { "c": null, "d": true } }"#);
        assert_eq!(value["a"][1].num(), -25.0);
        assert_eq!(value["a"][2].str(), "x\"é");
        assert_eq!(value["b"]["c"], Value::Null);
        assert_eq!(value["b"]["d"], Value::Bool(true));
        assert_eq!(value["missing"], Value::Null);
    }
}

/// `promtool check metrics` over `body`: `Some((passed, output))`, or
/// `None` (with a note) when promtool is not installed — outside CI, where
/// `.ci/run` installs it and the lint must run.
pub fn promtool_check(body: &[u8]) -> Option<(bool, String)> {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool must be installed in CI (apt-get install prometheus)"
        );
        eprintln!("promtool not installed; skipping the lint (apt-get install prometheus)");
        return None;
    };
    child.stdin.take()?.write_all(body).ok()?;
    let output = child.wait_with_output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), text))
}
