//! gRPC through the L7 tier with a real gRPC stack on both sides: Debian's
//! `python3-grpcio` servers behind an `h2c` pool and a grpcio client on one
//! channel (`grpc_peer.py` beside this file). Calls spread per call over the
//! servers, streams pass intact, deadlines and statuses arrive as sent, the
//! proxy's own failures are gRPC statuses, and the `grpc` health check
//! follows `grpc.health.v1`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Once;

use serde_json::Value;
use tokio::sync::mpsc;

use super::support::*;

/// Debian's interpreter, where `python3-grpcio` installs: a `python3` earlier
/// on PATH (pyenv) may not have it.
const PYTHON: &str = "/usr/bin/python3";
const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/l7/grpc_peer.py");

/// Fails the test with the fix when grpcio is missing.
fn require_grpcio() {
    static CHECKED: Once = Once::new();
    CHECKED.call_once(|| {
        let ok = Command::new(PYTHON)
            .args(["-c", "import grpc"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{PYTHON} cannot import grpc; install it: apt-get install python3-grpcio"
        );
    });
}

/// A grpcio server (`grpc_peer.py serve NAME`); it stops with its stdin.
struct GrpcBackend {
    addr: SocketAddr,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl GrpcBackend {
    async fn start(name: &str) -> Self {
        require_grpcio();
        let mut child = Command::new(PYTHON)
            .args([PEER, "serve", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the grpcio server");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut backend = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            child,
            stdin,
            lines,
        };
        let ready = backend.line().await;
        let port = ready
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("expected PORT n, got {ready:?}"));
        backend.addr.set_port(port);
        backend
    }

    /// The server's next line on stdout.
    async fn line(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .expect("a line from the grpcio server in time")
            .expect("the grpcio server is running")
    }

    /// Sets what its `grpc.health.v1.Health/Check` answers.
    async fn set_health(&mut self, status: &str) {
        writeln!(self.stdin, "health {status}").unwrap();
        self.stdin.flush().unwrap();
        assert_eq!(self.line().await, "ok");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `grpc_peer.py ARGS` (a client) and parses its JSON.
async fn client(args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .arg(PEER)
            .args(&args)
            .output()
            .expect("run the grpcio client")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "grpcio client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `count` unary calls of `/demo.Echo/METHOD` on one channel through
/// `proxy`, each with a deadline of `timeout` seconds (0: none).
async fn calls(
    proxy: SocketAddr,
    method: &str,
    request: &str,
    count: u32,
    timeout: f64,
) -> Vec<Value> {
    let args = [
        "call",
        &proxy.to_string(),
        method,
        request,
        &count.to_string(),
        &timeout.to_string(),
    ];
    let reply = client(args.iter().map(ToString::to_string).collect()).await;
    reply["results"].as_array().unwrap().clone()
}

/// One unary call.
async fn call(proxy: SocketAddr, method: &str, request: &str, timeout: f64) -> Value {
    calls(proxy, method, request, 1, timeout).await.remove(0)
}

/// How many of `results` each backend answered.
fn by_backend(results: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in results {
        assert_eq!(r["code"], "OK", "{r}");
        *counts
            .entry(r["reply"]["backend"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

fn grpc_spec(backends: &[&GrpcBackend], extra: &str) -> edge::l7::NodeSpec {
    let servers: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ addr: \"{}\" }}", b.addr))
        .collect();
    spec(&format!(
        "routes: [{{ pool: grpc }}]
pools:
  grpc:
    protocol: h2c
    servers: [{}]
{extra}",
        servers.join(", ")
    ))
}

#[tokio::test]
async fn calls_on_one_grpc_channel_spread_over_the_backends_and_streams_pass_intact() {
    let (a, b) = (GrpcBackend::start("a").await, GrpcBackend::start("b").await);
    // Round robin, so that the split is exact (p2c would rightly favour
    // whichever server answers faster).
    let proxy = Proxy::start(grpc_spec(&[&a, &b], "    algorithm: round_robin\n")).await;
    // One channel is one HTTP/2 connection to the proxy; the proxy balances
    // each call (each stream) on its own.
    let results = calls(proxy.http, "Who", "hello", 40, 5.0).await;
    let counts = by_backend(&results);
    assert_eq!(
        counts.values().collect::<Vec<_>>(),
        [&20, &20],
        "{counts:?}"
    );
    assert!(results.iter().all(|r| r["reply"]["request"] == "hello"));
    assert!(
        proxy
            .handle
            .metrics_text()
            .contains("edge_l7_connections_total{listener=\"http\"} 1\n"),
        "the 40 calls came on one client connection"
    );

    let streams = client(vec!["streams".into(), proxy.http.to_string()]).await;
    // Server streaming: 50 messages, in order, from one backend.
    let counted: Vec<&str> = streams["count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(counted.len(), 50, "{streams}");
    let server = counted[0].split(' ').next().unwrap();
    for (i, m) in counted.iter().enumerate() {
        assert_eq!(*m, format!("{server} {i}"));
    }
    // Client streaming: every part arrived, in order.
    let parts: Vec<String> = (0..20).map(|i| format!("part {i}")).collect();
    assert_eq!(streams["total"]["parts"], serde_json::json!(parts));
    // Bidi: each line answered.
    let said = streams["chat"].as_array().unwrap();
    assert_eq!(said.len(), 10, "{streams}");
    let server = said[0].as_str().unwrap().split(':').next().unwrap();
    for (i, m) in said.iter().enumerate() {
        assert_eq!(m.as_str().unwrap(), format!("{server}: line {i}"));
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_grpc_deadline_reaches_the_backend_and_an_expired_one_is_deadline_exceeded() {
    let mut a = GrpcBackend::start("a").await;
    let proxy = Proxy::start(grpc_spec(&[&a], "")).await;
    // The client's deadline arrives as `grpc-timeout`: the backend knows it.
    let r = call(proxy.http, "Who", "", 5.0).await;
    let remaining = r["reply"]["time_remaining"].as_f64().expect("a deadline");
    assert!(remaining > 0.0 && remaining <= 5.1, "{r}");
    // Without one, the proxy adds none (grpcio says "forever" as i64::MAX ns).
    let r = call(proxy.http, "Who", "", 0.0).await;
    assert!(r["reply"]["time_remaining"].as_f64().unwrap() > 1e9, "{r}");
    // A call past its deadline: the client says so, and the backend sees
    // the call end (the reset went through) before its work was done.
    let r = call(proxy.http, "Slow", "3", 0.3).await;
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert_eq!(a.line().await, "cancelled Slow");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_backends_grpc_status_and_message_reach_the_client_unchanged() {
    let a = GrpcBackend::start("a").await;
    let proxy = Proxy::start(grpc_spec(&[&a], "")).await;
    let r = call(proxy.http, "Fail", "Zürich %20 ✓", 5.0).await;
    assert_eq!(r["code"], "FAILED_PRECONDITION", "{r}");
    assert_eq!(r["details"], "no such thing: Zürich %20 ✓", "{r}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn grpc_calls_the_proxy_cannot_pass_on_fail_with_grpc_statuses() {
    let mut a = GrpcBackend::start("a").await;
    let mut spec = grpc_spec(
        &[&a],
        "    health: { kind: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }\n    fail_open: false\n    retries: { attempts: 0 }\n",
    );
    spec.tier.timeouts.response = std::time::Duration::from_millis(300);
    let proxy = Proxy::start(spec).await;
    // The backend does not answer in time: the proxy's deadline, as
    // current Envoy says it.
    let r = call(proxy.http, "Slow", "2", 0.0).await;
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert_eq!(
        r["details"], "the backend server did not answer in time",
        "{r}"
    );
    // The backend is gone: refused, then no healthy server — UNAVAILABLE
    // with the proxy's reason, not grpcio's reading of a bare HTTP status.
    a.stop();
    let r = call(proxy.http, "Who", "", 0.0).await;
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    proxy
        .wait_for(|| async { proxy.handle.status().pools[0].servers[0].health == "down" })
        .await;
    let r = call(proxy.http, "Who", "", 0.0).await;
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    assert_eq!(r["details"], "no healthy server", "{r}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_grpc_health_check_takes_a_not_serving_backend_out_and_brings_it_back() {
    let a = GrpcBackend::start("a").await;
    let mut b = GrpcBackend::start("b").await;
    let proxy = Proxy::start(grpc_spec(
        &[&a, &b],
        "    algorithm: round_robin
    health: { kind: grpc, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }
",
    ))
    .await;
    let health = |i: usize| proxy.handle.status().pools[0].servers[i].health.clone();
    let both = |results: &[Value]| by_backend(results).len() == 2;
    proxy
        .wait_for(|| async { health(0) == "up" && health(1) == "up" })
        .await;
    assert!(both(&calls(proxy.http, "Who", "", 10, 5.0).await));

    // b says NOT_SERVING: it leaves the pool and gets no calls.
    b.set_health("NOT_SERVING").await;
    proxy.wait_for(|| async { health(1) == "down" }).await;
    assert_eq!(health(0), "up");
    let counts = by_backend(&calls(proxy.http, "Who", "", 10, 5.0).await);
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["a"], "{counts:?}");

    // SERVING again: it comes back and gets calls.
    b.set_health("SERVING").await;
    proxy.wait_for(|| async { health(1) == "up" }).await;
    assert!(both(&calls(proxy.http, "Who", "", 10, 5.0).await));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_grpc_health_check_of_a_service_the_server_does_not_know_is_down() {
    let a = GrpcBackend::start("a").await;
    let proxy = Proxy::start(grpc_spec(
        &[&a],
        "    health: { kind: grpc, service: demo.Unknown, interval: 100ms, timeout: 90ms, rise: 1, fall: 1 }
    fail_open: false
",
    ))
    .await;
    proxy
        .wait_for(|| async { proxy.handle.status().pools[0].servers[0].health == "down" })
        .await;
    let r = call(proxy.http, "Who", "", 5.0).await;
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_grpc_call_routed_to_an_http1_pool_is_refused_with_the_fix() {
    // gRPC needs HTTP/2 to the server (trailers carry its status): a route
    // that sends a call to an HTTP/1.1 pool is a configuration mistake,
    // which the client hears as such, not as a reset stream.
    let a = GrpcBackend::start("a").await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]\npools:\n  web:\n    servers: [{{ addr: \"{}\" }}]\n",
        a.addr
    )))
    .await;
    let r = call(proxy.http, "Who", "", 5.0).await;
    assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
    let details = r["details"].as_str().unwrap();
    assert!(details.contains("h2c"), "names the fix: {r}");
    proxy.stop().await.unwrap();
}
