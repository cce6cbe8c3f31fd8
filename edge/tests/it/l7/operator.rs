//! The operator's controls and the per-server observability through the
//! admin API: a server drained under load, a weight changed at run time,
//! backend connections counted, trace context passed through, the
//! node's `/metrics` linted by promtool, and the JSON access log of an
//! `edge l7` process parsed line by line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use edge::l7::L7Node;
use tokio::net::TcpStream;

use super::support::*;

/// `method path` on the admin endpoint with an optional JSON body.
async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse(&exchange(&mut stream, text.as_bytes()).await).expect("an answer")
}

fn server_path(pool: &str, server: SocketAddr, control: &str) -> String {
    admin::api::l7::server_path(pool, &server.to_string(), control)
}

/// One request of the load: when it started, who answered, its status.
type Sample = (Instant, String, u16);

#[tokio::test]
async fn a_server_drained_under_load_fails_no_request_and_finishes_what_it_has() {
    let b = backends(2).await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]\npools:\n  web: {{ algorithm: round_robin, servers: {} }}\n",
        servers(&[&b[0], &b[1]])
    )))
    .await;
    let http = proxy.http;
    // A slow request on each server: b0's is in flight when it is drained.
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { get(http, "/?delay=3s", &[]).await }))
        .collect();
    wait_until(|| async {
        proxy.handle.status().pools[0]
            .servers
            .iter()
            .all(|s| s.in_flight == 1)
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut samples: Vec<Sample> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let reply = get(http, "/", &[]).await;
                    samples.push((started, reply.backend().to_owned(), reply.status));
                }
                samples
            })
        })
        .collect();
    wait_until(|| async { b[0].stats.requests() > 20 }).await;
    let reply = call(
        proxy.admin,
        "POST",
        &server_path("web", b[0].addr, "drain"),
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let drained_at = Instant::now();
    assert_eq!(reply.json()["server"]["drained"], true);
    // The slow request, and perhaps a load request or two, are in flight.
    let in_flight = reply.json()["server"]["in_flight"].as_u64();
    assert!(
        in_flight.is_some_and(|n| n >= 1),
        "the slow request is in flight: {reply:?}"
    );
    // Load goes on for a while against the remaining server.
    let after = b[1].stats.requests();
    wait_until(|| async { b[1].stats.requests() > after + 100 }).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for task in load {
        samples.extend(task.await.unwrap());
    }
    for s in slow {
        assert_eq!(s.await.unwrap().status, 200, "in-flight requests finish");
    }
    assert!(
        samples.iter().all(|(_, _, status)| *status == 200),
        "a request failed"
    );
    let late_to_b0 = samples
        .iter()
        .filter(|(started, backend, _)| *started > drained_at && backend == "b0")
        .count();
    let late = samples.iter().filter(|(s, _, _)| *s > drained_at).count();
    assert_eq!(late_to_b0, 0, "{late} requests after the drain");
    assert!(late >= 100);
    let status = proxy.handle.status();
    let (s0, s1) = (&status.pools[0].servers[0], &status.pools[0].servers[1]);
    assert!(s0.drained && !s0.available && !s1.drained);
    let metrics = get(proxy.admin, "/metrics", &[]).await.body;
    let drained = format!(
        "edge_l7_server_drained{{pool=\"web\",server=\"{}\"}} 1",
        b[0].addr
    );
    assert!(metrics.contains(&drained), "{metrics}");
    // Back in service.
    let reply = call(
        proxy.admin,
        "POST",
        &server_path("web", b[0].addr, "undrain"),
        "",
    )
    .await;
    assert_eq!(reply.json()["server"]["drained"], false);
    let counts = spread(proxy.http, 10, &[]).await;
    assert!(counts.get("b0").is_some_and(|&n| n >= 4), "{counts:?}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_weight_set_at_run_time_shifts_the_distribution() {
    let b = backends(2).await;
    let proxy = Proxy::start(spec(&format!(
        "routes: [{{ pool: web }}]\npools:\n  web: {{ algorithm: round_robin, servers: {} }}\n",
        servers(&[&b[0], &b[1]])
    )))
    .await;
    let path = server_path("web", b[0].addr, "weight");
    let reply = call(proxy.admin, "PUT", &path, r#"{"weight": 3}"#).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["server"]["weight"], 3);
    assert_eq!(reply.json()["server"]["configured_weight"], 1);
    let counts = spread(proxy.http, 80, &[]).await;
    assert_eq!(
        (counts.get("b0"), counts.get("b1")),
        (Some(&60), Some(&20)),
        "{counts:?}"
    );
    let metrics = get(proxy.admin, "/metrics", &[]).await.body;
    let weight = format!(
        "edge_l7_server_weight{{pool=\"web\",server=\"{}\"}} 3",
        b[0].addr
    );
    assert!(metrics.contains(&weight), "{metrics}");
    // Back to the topology's weight.
    let reply = call(proxy.admin, "PUT", &path, r#"{"weight": null}"#).await;
    assert_eq!(reply.json()["server"]["weight"], 1);
    let counts = spread(proxy.http, 20, &[]).await;
    assert_eq!(counts.get("b0"), Some(&10), "{counts:?}");
    // Mistakes are refused with what to do instead.
    let zero = call(proxy.admin, "PUT", &path, r#"{"weight": 0}"#).await;
    assert_eq!(zero.status, 400);
    assert!(zero.body.contains("drain it instead"), "{}", zero.body);
    let unknown = call(
        proxy.admin,
        "POST",
        "/v1/pools/web/servers/127.0.0.1:1/drain",
        "",
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains(&b[0].addr.to_string()),
        "{}",
        unknown.body
    );
    let no_pool = call(
        proxy.admin,
        "POST",
        "/v1/pools/api/servers/127.0.0.1:1/drain",
        "",
    )
    .await;
    assert!(no_pool.body.contains("pools: web"), "{}", no_pool.body);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn backend_connections_and_trace_context_on_both_paths() {
    let b = backends(1).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    for fast in [true, false] {
        let proxy = Proxy::start(spec(&format!(
            "http1_fast_path: {fast}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
            servers(&[&b[0]])
        )))
        .await;
        let reply = get(
            proxy.http,
            "/",
            &[("traceparent", traceparent), ("tracestate", tracestate)],
        )
        .await;
        let seen = &reply.json()["headers"];
        assert_eq!(seen["traceparent"], traceparent, "fast path {fast}");
        assert_eq!(seen["tracestate"], tracestate, "fast path {fast}");
        // The backend connection stays open in the pool, counted.
        wait_until(|| async { proxy.handle.status().pools[0].servers[0].connections == 1 }).await;
        let metrics = get(proxy.admin, "/metrics", &[]).await.body;
        let open = format!(
            "edge_l7_server_active_connections{{pool=\"web\",server=\"{}\"}} 1",
            b[0].addr
        );
        assert!(metrics.contains(&open), "{metrics}");
        if let Some((ok, output)) = system_tests::promtool_check(metrics.as_bytes()) {
            assert!(ok, "promtool check metrics: {output}");
        }
        proxy.stop().await.unwrap();
    }
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_json_access_log_has_one_object_per_request_from_both_paths() {
    let b = backends(1).await;
    let (http, admin) = (free_port(), free_port());
    let yaml = topology_text(
        &format!(
            "access_log: {{ format: json }}\nroutes: [{{ pool: web }}]\npools:\n  web: {{ servers: {} }}\n",
            servers(&[&b[0]])
        ),
        &format!(", ports: {{ http: {http} }}"),
        &format!("127.0.0.1:{admin}"),
    );
    let dir = std::env::temp_dir().join(format!("edge-access-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topology.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(["l7", "--config"])
        .arg(&file)
        .args(["--node", "l7t"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin: SocketAddr = ([127, 0, 0, 1], admin).into();
    let http: SocketAddr = ([127, 0, 0, 1], http).into();
    wait_until(|| async {
        match TcpStream::connect(admin).await {
            Ok(_) => get(admin, "/v1/status", &[]).await.status == 200,
            Err(_) => false,
        }
    })
    .await;
    // HTTP/1.1 takes the fast path, HTTP/1.0 the general (hyper) one.
    assert_eq!(get(http, "/fast?q=%221%22", &[]).await.status, 200);
    let mut stream = TcpStream::connect(http).await.unwrap();
    let old = exchange(
        &mut stream,
        b"GET /general HTTP/1.0\r\nHost: www.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(parse(&old).map(|r| r.status), Some(200));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    let entry = |uri: &str| {
        lines
            .iter()
            .find(|l| l["uri"] == uri)
            .unwrap_or_else(|| panic!("no entry for {uri}: {text}"))
    };
    let fast = entry("/fast?q=%221%22");
    let general = entry("/general");
    assert_eq!(fast["version"], "HTTP/1.1");
    assert_eq!(general["version"], "HTTP/1.0");
    for line in [fast, general] {
        assert_eq!(line["status"], 200);
        assert_eq!(line["pool"], "web");
        assert_eq!(line["server"], b[0].addr.to_string());
        assert_eq!(line["attempts"], 1);
        assert!(line["fault"].is_null() && line["request_id"].is_string());
    }
}

#[tokio::test]
async fn drains_and_weights_survive_a_restart_through_the_state_file() {
    let b = backends(2).await;
    let dir = std::env::temp_dir().join(format!("edge-state-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("state").join("use-l7a.json");
    let topology = spec(&format!(
        "routes: [{{ pool: web }}]\npools:\n  web: {{ algorithm: round_robin, servers: {} }}\n",
        servers(&[&b[0], &b[1]])
    ));
    let start = || {
        Proxy::start_node(
            L7Node::new(topology.clone())
                .unwrap()
                .with_state_file(&path),
        )
    };
    let server = |proxy: &Proxy, n: usize| {
        let status = proxy.handle.status();
        status.pools[0]
            .servers
            .iter()
            .find(|s| s.addr == b[n].addr.to_string())
            .cloned()
            .unwrap()
    };

    let proxy = start().await;
    let drain = call(
        proxy.admin,
        "POST",
        &server_path("web", b[0].addr, "drain"),
        "",
    )
    .await;
    assert_eq!(drain.status, 200, "{drain:?}");
    assert!(drain.json().get("warning").is_none(), "saved: {drain:?}");
    let weight = server_path("web", b[1].addr, "weight");
    assert_eq!(
        call(proxy.admin, "PUT", &weight, r#"{"weight": 4}"#)
            .await
            .status,
        200
    );
    proxy.stop().await.unwrap();

    // Restarted: b0 still takes nothing, b1 keeps the operator's weight.
    let proxy = start().await;
    assert!(server(&proxy, 0).drained);
    assert_eq!(
        (
            server(&proxy, 1).weight,
            server(&proxy, 1).configured_weight
        ),
        (4, 1)
    );
    for _ in 0..10 {
        let reply = get(proxy.http, "/", &[]).await;
        assert_eq!(reply.backend(), "b1", "a drained server stays out");
    }
    // Back in service, and so after the next restart too.
    let undrain = server_path("web", b[0].addr, "undrain");
    assert_eq!(call(proxy.admin, "POST", &undrain, "").await.status, 200);
    proxy.stop().await.unwrap();
    let proxy = start().await;
    assert!(!server(&proxy, 0).drained);
    proxy.stop().await.unwrap();

    // A file that is not ours to read is set aside, not lost, and the node
    // starts with every server as configured.
    std::fs::write(&path, b"{ not json").unwrap();
    let proxy = start().await;
    assert!(!server(&proxy, 0).drained);
    assert_eq!(server(&proxy, 1).weight, 1);
    let aside = path.with_extension("json.bad");
    assert_eq!(std::fs::read(&aside).unwrap(), b"{ not json");
    proxy.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
