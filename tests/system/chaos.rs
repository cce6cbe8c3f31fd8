//! Chaos under load: edge nodes killed, restarted one by one, reloaded every
//! second, a backend that hangs, a state file that cannot be written — each
//! while clients keep sending requests (or DNS queries), counting what a
//! user would notice.
//!
//! Every region here is the example's `us-east` (`full_topology`) on a
//! loopback network of its own: an L4 node on the VIP, two L7 nodes behind
//! it and two demo backends, all real `edge` processes. Load loops are
//! bounded in requests and time, and the tests run one at a time, so the
//! module stays well inside CI's time on two cores.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use system_tests::{Daemon, Gslb, binary, examples_dir, full_topology, http, json, temp_dir};

use crate::dns_client::{Transport, query};

/// Every load loop stops by itself after this long, whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(40);
/// … or after this many requests per client.
const MAX_REQUESTS_PER_CLIENT: usize = 20_000;
/// Pause between a client's requests: steady traffic that leaves a
/// two-core machine room for the nodes under test.
const PACE: Duration = Duration::from_millis(4);
/// Longest wait for a state the test drives towards (a node back in the
/// L4 table, enough requests served).
const SETTLE: Duration = Duration::from_secs(20);

const L4_NODE: &str = "us-east-l4";
const L7_NODES: [&str; 2] = ["us-east-l7a", "us-east-l7b"];
const BACKENDS: [&str; 2] = ["us-east-web1", "us-east-web2"];

/// The tests of this module run one at a time: each is a region of five
/// processes under load, and the CI machine has two cores.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The loopback network of chaos test `test` (slots 4 and up).
fn net(test: u8) -> u8 {
    system_tests::loopback_net(4 + test)
}

/// Inserts `text` (whole lines) after the first line containing `needle`.
fn insert_after_line(yaml: &str, needle: &str, text: &str) -> String {
    let at = yaml
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the topology"));
    let end = at + yaml[at..].find('\n').expect("a line end") + 1;
    format!("{}{text}{}", &yaml[..end], &yaml[end..])
}

/// One region of the example topology, run as processes.
struct Region {
    dir: PathBuf,
    config: PathBuf,
    /// The file as first written; edits start from it.
    yaml: String,
    net: u8,
    vip: SocketAddr,
    l4_admin: SocketAddr,
    l7_admin: [SocketAddr; 2],
    l4: Option<Daemon>,
    l7: [Option<Daemon>; 2],
    backends: Vec<Daemon>,
}

impl Region {
    /// Writes the example's `us-east` on network `127.NET`, with `Via`
    /// headers naming the L7 node, the L4 tier probing its L7 nodes every
    /// 250 ms, and `edit` applied; starts nothing.
    fn new(test: u8, name: &str, edit: impl FnOnce(String) -> String) -> Region {
        let net = net(test);
        let topology = full_topology(net);
        let yaml = topology
            .yaml
            .replace(
                "      proxy_protocol: true\n",
                "      proxy_protocol: true\n      via: true\n",
            )
            .replace(
                "      health: { interval: 1s, timeout: 500ms, fall: 2 }",
                "      health: { interval: 250ms, timeout: 200ms, fall: 2, rise: 1 }",
            );
        let yaml = edit(yaml);
        let dir = temp_dir(&format!("chaos-{name}"));
        let config = dir.join("topology.yaml");
        std::fs::write(&config, &yaml).unwrap();
        let admin = |host: u8| SocketAddr::from(([127, net, 1, host], topology.edge_admin_port));
        Region {
            dir,
            config,
            yaml,
            net,
            vip: SocketAddr::from(([127, net, 1, 1], topology.http_port)),
            l4_admin: admin(1),
            l7_admin: [admin(11), admin(12)],
            l4: None,
            l7: [None, None],
            backends: Vec::new(),
        }
    }

    /// Starts both backends, both L7 nodes and the L4 node, each ready.
    fn start_all(&mut self) {
        for name in BACKENDS {
            self.start_backend(name);
        }
        for index in 0..L7_NODES.len() {
            self.start_l7(index);
        }
        self.start_l4();
    }

    fn edge(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("edge"));
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            // One access-log line per request would cost more than the
            // request on a debug build.
            .env("RUST_LOG", "info,gtm::access=off");
        command
    }

    fn start_backend(&mut self, name: &str) {
        let mut daemon = Daemon::spawn(self.edge(&["backend", "--name", name]));
        daemon.wait_for("demo backend listening");
        self.backends.push(daemon);
    }

    fn start_l7(&mut self, index: usize) {
        let mut daemon = Daemon::spawn(self.edge(&["l7", "--node", L7_NODES[index]]));
        daemon.wait_for("admin endpoint listening");
        self.l7[index] = Some(daemon);
    }

    fn start_l4(&mut self) {
        let mut daemon = Daemon::spawn(self.edge(&["l4", "--node", L4_NODE]));
        daemon.wait_for("L4 node serving");
        self.l4 = Some(daemon);
    }

    fn l7(&mut self, index: usize) -> &mut Daemon {
        self.l7[index].as_mut().expect("the L7 node runs")
    }

    /// Replaces the topology file the way an editor that saves atomically
    /// does (write beside it, rename over it).
    fn rewrite(&self, yaml: &str) {
        let next = self.dir.join("topology.yaml.next");
        std::fs::write(&next, yaml).unwrap();
        std::fs::rename(&next, &self.config).unwrap();
    }

    /// Waits until the L4 node's table holds `node` (`true`) or not.
    fn wait_until_l4_has(&mut self, node: &str, in_table: bool) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let status = admin_json(self.l4_admin, "/v1/status");
            let now = status["l7_nodes"]
                .items()
                .iter()
                .find(|n| n["name"].str() == node)
                .map(|n| n["in_table"] == json::Value::Bool(true));
            if now == Some(in_table) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the L4 node never had {node} in_table={in_table}: {status:?}\nlog:\n{}",
                self.l4.as_mut().map(Daemon::log_text).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Clients first see the L4 go, then the rest; all killed.
        self.l4.take();
        self.l7 = [None, None];
        self.backends.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET path` from an admin endpoint, parsed.
fn admin_json(addr: SocketAddr, path: &str) -> json::Value {
    let response = http::get(addr, path).unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    assert_eq!(
        response.status,
        200,
        "GET {addr}{path}: {}",
        response.text()
    );
    json::parse(&response.text())
}

/// The sum of the samples of `name` whose labels contain `labels`, from
/// Prometheus text.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One request as a client saw it.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    took: Duration,
    /// The status and the L7 node (`Via`), or why there was no response.
    result: Result<(u16, String), String>,
}

/// What one client saw.
#[derive(Debug)]
struct ClientReport {
    keep_alive: bool,
    outcomes: Vec<Outcome>,
    /// Kept-alive connections found closed before a request and replaced.
    stale: u64,
    /// Requests sent again by curl's rule (see `http::Client::send`).
    retries: u64,
}

impl ClientReport {
    fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| !matches!(o.result, Ok((200, _))))
    }

    /// The L7 node of the last response that started before `at`.
    fn node_before(&self, at: Instant) -> Option<&str> {
        self.outcomes
            .iter()
            .rev()
            .filter(|o| o.started < at)
            .find_map(|o| o.result.as_ref().ok().map(|(_, node)| node.as_str()))
    }
}

/// Clients sending `GET path` through the VIP, one request at a time
/// each, until stopped, `LOAD_LIMIT` or `MAX_REQUESTS_PER_CLIENT`.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    clients: Vec<JoinHandle<ClientReport>>,
}

impl Load {
    /// One client per entry: keeping its connection alive (`true`) or
    /// opening one per request.
    fn start(addr: SocketAddr, path: &'static str, keep_alive: &[bool]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let clients = keep_alive
            .iter()
            .map(|&keep_alive| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || {
                    let mut client = http::Client::new(addr, keep_alive);
                    let mut outcomes = Vec::new();
                    let began = Instant::now();
                    while !stop.load(Ordering::Relaxed)
                        && began.elapsed() < LOAD_LIMIT
                        && outcomes.len() < MAX_REQUESTS_PER_CLIENT
                    {
                        let started = Instant::now();
                        let result = client
                            .get(path)
                            .map(|r| {
                                let node = r.header("via").unwrap_or("").replace("1.1 ", "");
                                (r.status, node)
                            })
                            .map_err(|e| e.to_string());
                        if matches!(result, Ok((200, _))) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        outcomes.push(Outcome {
                            started,
                            took: started.elapsed(),
                            result,
                        });
                        std::thread::sleep(PACE);
                    }
                    ClientReport {
                        keep_alive,
                        outcomes,
                        stale: client.stale,
                        retries: client.retries,
                    }
                })
            })
            .collect();
        Load { stop, ok, clients }
    }

    /// Successful requests so far.
    fn successes(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests have succeeded from now (bounded).
    fn wait_for_more(&self, more: u64) {
        let target = self.successes() + more;
        let deadline = Instant::now() + SETTLE;
        while self.successes() < target {
            assert!(
                Instant::now() < deadline,
                "only {} of {target} requests succeeded in time",
                self.successes()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self) -> Vec<ClientReport> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.clients)
            .into_iter()
            .map(|c| c.join().expect("client thread"))
            .collect()
    }
}

impl Drop for Load {
    /// A test that fails half-way stops its clients too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Prints what the clients saw and returns every failure.
fn summarise<'a>(what: &str, reports: &'a [ClientReport]) -> Vec<&'a Outcome> {
    let total: usize = reports.iter().map(|r| r.outcomes.len()).sum();
    let stale: u64 = reports.iter().map(|r| r.stale).sum();
    let retries: u64 = reports.iter().map(|r| r.retries).sum();
    let failures: Vec<&Outcome> = reports.iter().flat_map(ClientReport::failures).collect();
    eprintln!(
        "{what}: {total} requests from {} clients, {} failed; {stale} kept-alive connections found closed and replaced before a request, {retries} requests sent again after one closed unanswered",
        reports.len(),
        failures.len()
    );
    failures
}

#[test]
fn a_killed_l7_node_fails_only_the_requests_in_flight_on_it() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let mut region = Region::new(0, "kill", |yaml| yaml);
    region.start_all();
    let load = Load::start(region.vip, "/", &[true, true, false, false]);
    load.wait_for_more(200);

    let kill_sent = Instant::now();
    region.l7(0).kill();
    let dead = Instant::now();
    // The L4 node falls back on the connection refused at once; its
    // checks take the node out of the table a little later. Traffic
    // must be clean in both phases.
    load.wait_for_more(100);
    region.wait_until_l4_has(L7_NODES[0], false);
    load.wait_for_more(100);
    // Started again, it is back in the table and takes its share.
    let restarting = Instant::now();
    region.start_l7(0);
    region.wait_until_l4_has(L7_NODES[0], true);
    let back = Instant::now();
    load.wait_for_more(100);
    let reports = load.stop();

    let failures = summarise("SIGKILL of an L7 node", &reports);
    // Each client has one request in flight at a time, so the requests
    // in flight on the killed node were at most: one per kept-alive
    // client whose connection was on it, one per client opening a new
    // connection per request (it may have hashed there).
    let mut bound = 0;
    for (index, report) in reports.iter().enumerate() {
        let on_killed = !report.keep_alive || report.node_before(kill_sent) == Some(L7_NODES[0]);
        bound += usize::from(on_killed);
        let failed: Vec<&Outcome> = report.failures().collect();
        assert!(
            failed.len() <= usize::from(on_killed),
            "client {index} (keep-alive {}, on {:?}) failed {} requests: {failed:#?}",
            report.keep_alive,
            report.node_before(kill_sent),
            failed.len()
        );
        for failure in failed {
            assert!(
                failure.started < dead,
                "client {index}: a request started {:?} after the node died failed: {failure:?}",
                failure.started - dead
            );
        }
        let after: Vec<&Outcome> = report
            .outcomes
            .iter()
            .filter(|o| o.started > dead && o.started < restarting)
            .collect();
        assert!(
            after.len() >= 10,
            "client {index} sent too few requests after the kill"
        );
        for outcome in after {
            assert_eq!(
                outcome.result.as_ref().map(|(_, node)| node.as_str()),
                Ok(L7_NODES[1]),
                "client {index}: after the kill only {} answers: {outcome:?}",
                L7_NODES[1]
            );
        }
    }
    let on_restarted = reports
        .iter()
        .flat_map(|r| &r.outcomes)
        .filter(|o| o.started > back)
        .filter(|o| matches!(&o.result, Ok((200, node)) if node == L7_NODES[0]))
        .count();
    assert!(on_restarted > 0, "the restarted node took no traffic");
    assert!(
        failures.len() <= bound,
        "{} failures, at most {bound} in flight",
        failures.len()
    );
    eprintln!(
        "{} failures (at most {bound} requests were in flight on the node); took {:?}",
        failures.len(),
        started.elapsed()
    );
}

#[test]
fn a_rolling_restart_of_every_l7_node_fails_no_request() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let mut region = Region::new(1, "rolling", |yaml| yaml);
    region.start_all();
    // Mostly new connections: each one is a chance to arrive as a node
    // stops accepting. Slower requests are in flight at every drain.
    let load = Load::start(region.vip, "/", &[true, true, false, false]);
    let slow = Load::start(region.vip, "/?delay=30ms", &[true, false]);
    load.wait_for_more(100);

    const PASSES: usize = 2;
    let mut back = [Instant::now(); 2];
    for _ in 0..PASSES {
        for (index, node) in L7_NODES.into_iter().enumerate() {
            let status = region.l7(index).terminate();
            assert!(
                status.success(),
                "{node} exited with {status} after SIGTERM"
            );
            region.start_l7(index);
            back[index] = Instant::now();
            region.wait_until_l4_has(node, true);
            load.wait_for_more(100);
        }
    }
    let mut reports = load.stop();
    reports.extend(slow.stop());

    let failures = summarise("rolling restarts of the L7 tier", &reports);
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    // A draining node answers the next request of a kept-alive connection
    // (with `Connection: close`) rather than closing it under the client:
    // none needed curl's resend.
    let resent: u64 = reports.iter().map(|r| r.retries).sum();
    assert_eq!(resent, 0, "requests met a kept-alive connection closing");
    for (index, node) in L7_NODES.into_iter().enumerate() {
        let served = reports
            .iter()
            .flat_map(|r| &r.outcomes)
            .filter(|o| o.started > back[index])
            .filter(|o| matches!(&o.result, Ok((200, n)) if n == node))
            .count();
        assert!(served > 0, "{node} served nothing after its restart");
    }
    eprintln!("rolling restart took {:?}", started.elapsed());
}

#[test]
fn reloading_the_topology_every_second_under_load_fails_no_request() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let mut region = Region::new(2, "reload", |yaml| yaml);
    region.start_all();
    let load = Load::start(region.vip, "/", &[true, true, false, false]);
    load.wait_for_more(100);

    let net = region.net;
    const ROUNDS: u32 = 5;
    for round in 1..=ROUNDS {
        let tick = Instant::now();
        // Each round moves the L4 weights, a server's weight and the
        // response timeout: the Maglev table, the pool and the hyper
        // builders are all rebuilt.
        let heavy = if round % 2 == 0 { "1" } else { "3" };
        let yaml = insert_after_line(
            &region.yaml,
            &format!("name: {L4_NODE},"),
            &format!(
                "      weights: {{ {}: {heavy}, {}: 2 }}\n",
                L7_NODES[0], L7_NODES[1]
            ),
        );
        let yaml = insert_after_line(
            &yaml,
            &format!("name: {},", L7_NODES[1]),
            &format!("      timeouts: {{ response: {}s }}\n", 20 + round),
        )
        .replace(
            &format!("{{ addr: \"127.{net}.1.101:9000\" }}"),
            &format!("{{ addr: \"127.{net}.1.101:9000\", weight: {heavy} }}"),
        );
        region.rewrite(&yaml);
        for daemon in region.l7.iter().flatten().chain(&region.l4) {
            daemon.signal("HUP");
        }
        // Once a second: the chaos's own pace, not a readiness wait.
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    load.wait_for_more(100);
    let reports = load.stop();

    let failures = summarise("a reload every second", &reports);
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    // Every node applied the reloads (SIGHUP, and the file watch) and
    // refused none.
    for (what, admin, name) in [
        ("L4", region.l4_admin, "edge_l4_reloads_total"),
        ("L7 a", region.l7_admin[0], "edge_l7_reloads_total"),
        ("L7 b", region.l7_admin[1], "edge_l7_reloads_total"),
    ] {
        let text = http::get(admin, "/metrics").expect("metrics").text();
        let ok = metric(&text, name, "result=\"ok\"");
        let refused = metric(&text, name, "result=\"error\"");
        assert!(
            ok >= f64::from(ROUNDS),
            "{what}: {ok} reloads applied:\n{text}"
        );
        assert_eq!(refused, 0.0, "{what}: reloads refused:\n{text}");
    }
    eprintln!("reloads under load took {:?}", started.elapsed());
}

/// A backend whose application hangs: it accepts connections and reads
/// requests but never answers them, while its health endpoint still says
/// 200 (so only passive checks can notice). Counts the connections of
/// hung requests.
struct HangingBackend {
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HangingBackend {
    fn start(addr: SocketAddr) -> HangingBackend {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (accepted, open, stop) = (accepted.clone(), open.clone(), stop.clone());
            std::thread::spawn(move || {
                let began = Instant::now();
                while !stop.load(Ordering::Relaxed) && began.elapsed() < LOAD_LIMIT {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (accepted, open, stop) =
                                (accepted.clone(), open.clone(), stop.clone());
                            std::thread::spawn(move || hang(stream, &accepted, &open, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        HangingBackend {
            accepted,
            open,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HangingBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers a health check; holds any other request unanswered until the
/// peer closes the connection (or the test ends).
fn hang(mut stream: TcpStream, accepted: &AtomicUsize, open: &AtomicUsize, stop: &AtomicBool) {
    use std::io::{Read, Write};
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let began = Instant::now();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let mut counted = false;
    while !stop.load(Ordering::Relaxed) && began.elapsed() < LOAD_LIMIT {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        if counted || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            continue;
        }
        if head.starts_with(b"GET /healthz ") {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
            return;
        }
        counted = true;
        accepted.fetch_add(1, Ordering::Relaxed);
        open.fetch_add(1, Ordering::Relaxed);
    }
    if counted {
        open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[test]
fn a_hanging_backend_gets_504s_within_the_timeout_then_is_ejected_without_piling_up_connections() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    const FAILURES: usize = 3;
    let response_timeout = Duration::from_millis(500);
    let mut region = Region::new(3, "hang", |yaml| {
        let net = net(3);
        let yaml = insert_after_line(
            &yaml,
            &format!("name: {},", L7_NODES[1]),
            "      timeouts: { response: 500ms }\n",
        );
        // The gRPC pool's health checks would reach the hanging server
        // too, and count against its connections: that pool keeps web1.
        let grpc_servers = format!(
            "          servers:\n            - {{ addr: \"127.{net}.1.101:9000\" }}\n            - {{ addr: \"127.{net}.1.102:9000\" }}\n          health: {{ kind: grpc"
        );
        assert!(
            yaml.contains(&grpc_servers),
            "the example's gRPC pool changed"
        );
        let yaml = yaml.replacen(
            &grpc_servers,
            &format!(
                "          servers:\n            - {{ addr: \"127.{net}.1.101:9000\" }}\n          health: {{ kind: grpc"
            ),
            1,
        );
        insert_after_line(
            &yaml,
            &format!("addr: \"127.{net}.1.102:9000\""),
            &format!(
                "          algorithm: round_robin\n          outlier: {{ failures: {FAILURES}, ejection: 1m }}\n          retries: {{ attempts: 0 }}\n"
            ),
        )
    });
    region.start_backend(BACKENDS[0]);
    let hanging = HangingBackend::start(SocketAddr::from(([127, region.net, 1, 102], 9000)));
    // One L7 node decides alone; the L4 falls back from the other.
    region.start_l7(0);
    region.start_l4();
    region.wait_until_l4_has(L7_NODES[1], false);

    let clients = [true, true, false, false];
    let load = Load::start(region.vip, "/", &clients);
    load.wait_for_more(200);
    let reports = load.stop();

    let failures = summarise("a hanging backend", &reports);
    let timeouts: Vec<&Outcome> = failures
        .iter()
        .copied()
        .filter(|o| matches!(o.result, Ok((504, _))))
        .collect();
    assert_eq!(timeouts.len(), failures.len(), "only 504s: {failures:#?}");
    // Ejected after FAILURES in a row; each other client may have had one
    // more request on its way to the server by then.
    assert!(
        (1..FAILURES + clients.len()).contains(&timeouts.len()),
        "{} requests got 504: {timeouts:#?}",
        timeouts.len()
    );
    for timeout in &timeouts {
        assert!(
            timeout.took >= response_timeout.mul_f32(0.9)
                && timeout.took < response_timeout + Duration::from_millis(1500),
            "a 504 after {:?} with a {response_timeout:?} response timeout",
            timeout.took
        );
    }
    let last_timeout = timeouts.iter().map(|o| o.started).max().unwrap();
    let after = reports
        .iter()
        .flat_map(|r| &r.outcomes)
        .filter(|o| o.started > last_timeout)
        .count();
    assert!(after >= 100, "only {after} requests after the last 504");

    let status = admin_json(region.l7_admin[0], "/v1/status");
    let server = status["pools"][0]["servers"]
        .items()
        .iter()
        .find(|s| s["addr"].str().ends_with(".102:9000"))
        .expect("the hanging server in the status")
        .clone();
    assert_eq!(server["ejected"], json::Value::Bool(true), "{status:?}");
    assert_eq!(
        server["health"].str(),
        "up",
        "passive ejection, not the probe: {status:?}"
    );

    // One connection per hung request, each closed at its timeout.
    let accepted = hanging.accepted.load(Ordering::Relaxed);
    assert!(
        accepted <= timeouts.len(),
        "{accepted} connections for {} hung requests",
        timeouts.len()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while hanging.open.load(Ordering::Relaxed) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections to the hanging backend still open",
            hanging.open.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "hanging backend: {} 504s, {accepted} connections; took {:?}",
        timeouts.len(),
        started.elapsed()
    );
}

#[test]
fn an_unwritable_state_file_is_reported_while_the_override_holds_and_dns_keeps_answering() {
    let _serial = one_at_a_time();
    const TOKEN: &str = "chaos-test-admin-token-0123456789";
    let dir = temp_dir("chaos-state");
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("ns1.json");
    let gslb = Gslb::start(
        &examples_dir().join("three-regions.yaml"),
        &state,
        &[("GTM_ADMIN_TOKEN", TOKEN)],
    );
    let answer = |transport| {
        let reply = query(gslb.dns, "www.example.com.", RecordType::A, transport);
        reply
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect::<Vec<_>>()
    };
    // No edge tier runs, so every region fails open; this client cannot be
    // placed, so it gets the first region of the file.
    assert_eq!(answer(Transport::UdpEdns), ["127.0.1.1"]);

    // The state directory goes: a regular file stands where it was, so no
    // write can succeed, not even as root. Moved away in one step: the
    // server may be writing into it at this moment, which a recursive
    // removal races with.
    std::fs::rename(&state_dir, dir.join("state.gone")).unwrap();
    std::fs::write(&state_dir, "not a directory\n").unwrap();

    // Queries keep flowing meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let queries = {
        let (stop, dns) = (stop.clone(), gslb.dns);
        std::thread::spawn(move || {
            let (mut sent, began) = (0, Instant::now());
            while !stop.load(Ordering::Relaxed) && began.elapsed() < LOAD_LIMIT && sent < 2_000 {
                let reply = query(dns, "www.example.com.", RecordType::A, Transport::UdpEdns);
                assert_eq!(reply.answers.len(), 1, "{reply:?}");
                sent += 1;
                std::thread::sleep(PACE);
            }
            sent
        })
    };

    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let response = http::post(
        gslb.admin,
        "/v1/regions/us-east/fail",
        &headers,
        r#"{"mode": "drain", "reason": "chaos"}"#,
    )
    .expect("POST fail");
    let text = response.text();
    assert_eq!(response.status, 200, "{text}");
    let body = json::parse(&text);
    assert_eq!(body["persisted"], json::Value::Bool(false), "{text}");
    let warning = body["warning"].str();
    assert!(warning.contains("cannot write state file"), "{warning}");
    assert!(
        warning.contains(state.to_str().unwrap()),
        "names the file: {warning}"
    );
    assert!(
        warning.contains("in memory"),
        "says where the change lives: {warning}"
    );

    // The override holds in memory: answers move to the next region at
    // once, over UDP and TCP, and the status shows it.
    assert_eq!(answer(Transport::UdpEdns), ["127.0.2.1"]);
    assert_eq!(answer(Transport::Tcp), ["127.0.2.1"]);
    let status = admin_json(gslb.admin, "/v1/status");
    let us_east = &status["regions"][0];
    assert_eq!(us_east["name"].str(), "us-east", "{status:?}");
    assert_eq!(us_east["override"].str(), "drain", "{status:?}");
    assert_eq!(
        us_east["in_service"],
        json::Value::Bool(false),
        "{status:?}"
    );

    let response =
        http::post(gslb.admin, "/v1/regions/us-east/recover", &headers, "").expect("POST recover");
    let body = json::parse(&response.text());
    assert_eq!(
        body["persisted"],
        json::Value::Bool(false),
        "{}",
        response.text()
    );
    assert_eq!(answer(Transport::UdpEdns), ["127.0.1.1"]);

    stop.store(true, Ordering::Relaxed);
    let sent = queries.join().expect("every query answered");
    assert!(sent > 0);
    drop(gslb);
    let _ = std::fs::remove_dir_all(&dir);
}
