//! Health, failover and operator control end to end: real region health
//! endpoints on loopback, real probes, answers that move and come back,
//! quorum across vantage points, overrides that persist, reloads that keep
//! serving, and metrics that parse.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Ask, TestServer, Transport};

/// A region's health endpoint whose status the test sets.
struct FakeRegion {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    /// Alternate 200/503 on every probe when set.
    flap: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeRegion {
    async fn start(ip: &str) -> FakeRegion {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicUsize::new(0));
        let flap = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, h, f) = (status.clone(), hits.clone(), flap.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, h, f) = (s.clone(), h.clone(), f.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = stream.read(&mut buf).await;
                    let n = h.fetch_add(1, Ordering::SeqCst);
                    let code = if f.load(Ordering::SeqCst) {
                        if n % 2 == 0 { 200 } else { 503 }
                    } else {
                        s.load(Ordering::SeqCst)
                    };
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        FakeRegion {
            addr,
            status,
            hits,
            flap,
        }
    }

    fn set(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// Three regions whose health endpoints are `regions`, one GSLB node
/// `ns1` (and `peers` as extra nodes with admin addresses), probing every
/// 100 ms with rise 2 and fall 3.
fn topology_text(regions: &[&FakeRegion; 3], peers: &[(&str, SocketAddr)]) -> String {
    let mut nodes = String::from("    - { name: ns1, listen: [\"127.0.0.1:53\"] }\n");
    for (index, (name, admin)) in peers.iter().enumerate() {
        nodes.push_str(&format!(
            "    - {{ name: {name}, listen: [\"127.0.0.1:{}\"], admin: \"{admin}\" }}\n",
            54 + index
        ));
    }
    let names = ["us-east", "eu-west", "ap-south"];
    let places = [(39.04, -77.49), (53.35, -6.26), (19.08, 72.88)];
    let mut regions_text = String::new();
    for (i, region) in regions.iter().enumerate() {
        regions_text.push_str(&format!(
            "  {}:\n    location: {{ lat: {}, lon: {} }}\n    vip: {{ ipv4: {}, ports: {{ http: {} }} }}\n    health: {{ path: /health, interval: 100ms, timeout: 80ms, rise: 2, fall: 3 }}\n",
            names[i], places[i].0, places[i].1, region.addr.ip(), region.addr.port()
        ));
    }
    format!(
        "dns:\n  nodes:\n{nodes}  zones:\n    - origin: example.com.\n      soa: {{ mname: ns1, rname: hostmaster }}\n      records:\n        - {{ name: \"@\", type: NS, value: ns1 }}\n        - {{ name: ns1, type: A, value: 127.0.0.1 }}\n      geo:\n        - {{ name: www, regions: [us-east, eu-west, ap-south] }}\nregions:\n{regions_text}"
    )
}

async fn regions() -> [FakeRegion; 3] {
    [
        FakeRegion::start("127.0.1.1").await,
        FakeRegion::start("127.0.2.1").await,
        FakeRegion::start("127.0.3.1").await,
    ]
}

/// The A answer for a London client.
async fn london_answer(server: &TestServer) -> String {
    let reply = Ask::new("www.example.com.", RecordType::A)
        .ecs("81.2.69.0", 24)
        .send(server, Transport::Udp)
        .await;
    reply
        .answers
        .first()
        .map(|r| r.data.to_string())
        .unwrap_or_default()
}

/// Polls until the London answer is `expected`, for at most `limit`;
/// returns how long it took.
async fn until_answer(server: &TestServer, expected: &str, limit: Duration) -> Duration {
    let start = tokio::time::Instant::now();
    loop {
        let answer = london_answer(server).await;
        if answer == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "London clients still get {answer} after {:?}, expected {expected}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn http() -> reqwest::Client {
    probe::plain_http_client()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The node's `/metrics` page as Prometheus text.
async fn metrics_text(server: &TestServer) -> String {
    http()
        .get(format!("http://{}/metrics", server.admin))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn status(server: &TestServer) -> serde_json::Value {
    http()
        .get(format!("http://{}/v1/status", server.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_leave_a_failing_region_and_come_back() {
    let [us, eu, ap] = regions().await;
    let topology = topology::parse(&topology_text(&[&us, &eu, &ap], &[]), "health").unwrap();
    let server = TestServer::start(topology).await;
    assert_eq!(london_answer(&server).await, "127.0.2.1");

    eu.set(503);
    // fall (3) probes 100 ms apart, plus one interval and jitter.
    let took = until_answer(&server, "127.0.1.1", Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_millis(150),
        "moved after only {took:?}: before `fall` probes failed"
    );
    let status = status(&server).await;
    let eu_status = &status["regions"][1];
    assert_eq!(eu_status["name"], "eu-west");
    assert_eq!(eu_status["in_service"], false);
    assert_eq!(eu_status["vantage"][0]["last"]["detail"], "HTTP 503");

    eu.set(200);
    until_answer(&server, "127.0.2.1", Duration::from_secs(10)).await;
    drop((us, ap));
}

#[tokio::test]
async fn https_answers_leave_a_failing_region_with_the_address_answers() {
    let [us, eu, ap] = regions().await;
    let text = topology_text(&[&us, &eu, &ap], &[]).replace(
        "regions: [us-east, eu-west, ap-south] }",
        "regions: [us-east, eu-west, ap-south], https: { alpn: [h3, h2] } }",
    );
    let server = TestServer::start(topology::parse(&text, "health").unwrap()).await;
    let london_https = || async {
        let reply = Ask::new("www.example.com.", RecordType::HTTPS)
            .ecs("81.2.69.0", 24)
            .send(&server, Transport::Udp)
            .await;
        crate::support::lines(&reply.answers)
    };
    // The VIPs here use the default HTTPS port, 443: no port parameter.
    assert_eq!(
        london_https().await,
        ["www.example.com. HTTPS 30 1 . alpn=h3,h2, ipv4hint=127.0.2.1,"]
    );
    eu.set(503);
    until_answer(&server, "127.0.1.1", Duration::from_secs(10)).await;
    assert_eq!(
        london_https().await,
        ["www.example.com. HTTPS 30 1 . alpn=h3,h2, ipv4hint=127.0.1.1,"]
    );
    drop((us, ap));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_endpoint_never_changes_the_answer() {
    let [us, eu, ap] = regions().await;
    eu.flap.store(true, Ordering::SeqCst);
    let topology = topology::parse(&topology_text(&[&us, &eu, &ap], &[]), "flap").unwrap();
    let server = TestServer::start(topology).await;
    // Alternating results never reach fall (3) failures in a row.
    while eu.hits.load(Ordering::SeqCst) < 20 {
        assert_eq!(london_answer(&server).await, "127.0.2.1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = metrics_text(&server).await;
    assert!(
        !metrics.contains("gslb_region_transitions_total{region=\"eu-west\""),
        "a flapping region changed state:\n{metrics}"
    );
}

/// A peer GSLB node whose view the test dictates.
async fn fake_peer(
    name: &'static str,
    eu_west_up: Arc<std::sync::atomic::AtomicBool>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let up = eu_west_up.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let body = serde_json::json!({
                    "node": name,
                    "regions": {
                        "us-east": { "up": true, "last": null },
                        "eu-west": { "up": up.load(Ordering::SeqCst), "last": null },
                        "ap-south": { "up": true, "last": null },
                    }
                })
                .to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vantage_points_decide_by_quorum() {
    let [us, eu, ap] = regions().await;
    let peers_say_up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ns2 = fake_peer("ns2", peers_say_up.clone()).await;
    let ns3 = fake_peer("ns3", peers_say_up.clone()).await;
    let text = topology_text(&[&us, &eu, &ap], &[("ns2", ns2), ("ns3", ns3)]);
    let server = TestServer::start(topology::parse(&text, "quorum").unwrap()).await;

    // Only this node sees eu-west fail: the two peers outvote it.
    eu.set(503);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = status(&server).await;
        let views = status["regions"][1]["vantage"].as_array().unwrap().clone();
        let own_down = views
            .iter()
            .any(|v| v["node"] == "ns1" && v["state"] == "down");
        if own_down && views.len() == 3 {
            assert_eq!(status["regions"][1]["in_service"], true, "{status:#}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ns1 never saw eu-west down: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(london_answer(&server).await, "127.0.2.1");

    // Now the peers agree: the region leaves.
    peers_say_up.store(false, Ordering::SeqCst);
    until_answer(&server, "127.0.1.1", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_take_effect_at_once_and_survive_a_restart() {
    let [us, eu, ap] = regions().await;
    let text = topology_text(&[&us, &eu, &ap], &[]);
    let dir = std::env::temp_dir().join(format!("gslb-override-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = gslb::Options {
        node: "ns1".into(),
        config_path: None,
        state_file: Some(dir.join("state.json")),
    };
    let server =
        TestServer::start_with(topology::parse(&text, "o").unwrap(), options.clone()).await;
    assert_eq!(london_answer(&server).await, "127.0.2.1");
    let response = http()
        .post(format!("http://{}/v1/regions/eu-west/fail", server.admin))
        .json(&serde_json::json!({ "mode": "drain", "reason": "maintenance" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // The very next query.
    assert_eq!(london_answer(&server).await, "127.0.1.1");
    let unknown = http()
        .post(format!("http://{}/v1/regions/mars/fail", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    server.stop().await.unwrap();

    let server = TestServer::start_with(topology::parse(&text, "o").unwrap(), options).await;
    assert_eq!(
        london_answer(&server).await,
        "127.0.1.1",
        "the drain survived the restart"
    );
    assert_eq!(status(&server).await["regions"][1]["override"], "drain");
    http()
        .post(format!(
            "http://{}/v1/regions/eu-west/recover",
            server.admin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(london_answer(&server).await, "127.0.2.1");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_reload_keeps_the_old_config_serving() {
    let [us, eu, ap] = regions().await;
    let text = topology_text(&[&us, &eu, &ap], &[]);
    let dir = std::env::temp_dir().join(format!("gslb-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("topology.yaml");
    std::fs::write(&path, &text).unwrap();
    let options = gslb::Options {
        node: "ns1".into(),
        config_path: Some(path.clone()),
        state_file: None,
    };
    let server = TestServer::start_with(topology::load(&path).unwrap(), options).await;
    let reload = || async {
        http()
            .post(format!("http://{}/v1/reload", server.admin))
            .send()
            .await
            .unwrap()
    };

    std::fs::write(
        &path,
        text.replace("ttl: 30s", "ttl: soon")
            .replace("{ name: www,", "{ name: www, ttl: soon,"),
    )
    .unwrap();
    let refused = reload().await;
    assert_eq!(refused.status(), 422);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("geo[0].ttl"),
        "{body}"
    );
    let status = status(&server).await;
    assert_eq!(status["config"]["last_reload"]["ok"], false);
    assert_eq!(
        london_answer(&server).await,
        "127.0.2.1",
        "the old config still answers"
    );

    std::fs::write(&path, text.replace("{ name: www,", "{ name: www, ttl: 7s,")).unwrap();
    assert_eq!(reload().await.status(), 200);
    let reply = Ask::new("www.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    assert_eq!(reply.answers[0].ttl, 7, "the new config serves");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reflect_the_traffic_and_parse() {
    let [us, eu, ap] = regions().await;
    let server =
        TestServer::start(topology::parse(&topology_text(&[&us, &eu, &ap], &[]), "m").unwrap())
            .await;
    for _ in 0..5 {
        london_answer(&server).await;
    }
    Ask::new("nope.example.com.", RecordType::A)
        .send(&server, Transport::Udp)
        .await;
    // Let a probe or two land.
    while eu.hits.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let value_in = |scrape: &prometheus_parse::Scrape,
                    name: &str,
                    labels: &[(&str, &str)]|
     -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    // The UDP workers hand the fast path's query counts to the metrics
    // every tick: scrape until the queries sent show (or a deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (text, scrape) = loop {
        let text = metrics_text(&server).await;
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape =
            prometheus_parse::Scrape::parse(lines).expect("metrics parse as Prometheus text");
        let counted = value_in(
            &scrape,
            "gslb_queries_total",
            &[("region", "eu-west"), ("rcode", "NOERROR")],
        ) >= 5.0
            && value_in(&scrape, "gslb_queries_total", &[("rcode", "NXDOMAIN")]) >= 1.0
            && value_in(&scrape, "gslb_geo_decisions_total", &[("source", "ecs")]) >= 5.0;
        if counted || tokio::time::Instant::now() >= deadline {
            break (text, scrape);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let value = |name: &str, labels: &[(&str, &str)]| value_in(&scrape, name, labels);
    assert!(
        value(
            "gslb_queries_total",
            &[("region", "eu-west"), ("rcode", "NOERROR")]
        ) >= 5.0,
        "{text}"
    );
    assert!(
        value("gslb_queries_total", &[("rcode", "NXDOMAIN")]) >= 1.0,
        "{text}"
    );
    assert!(
        value("gslb_geo_decisions_total", &[("source", "ecs")]) >= 5.0,
        "{text}"
    );
    assert!(
        value(
            "gslb_probes_total",
            &[("region", "eu-west"), ("result", "ok")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value("gslb_region_in_service", &[("region", "eu-west")]),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn an_exposed_admin_api_without_a_token_is_refused_at_start() {
    let [us, eu, ap] = regions().await;
    let topology = topology::parse(&topology_text(&[&us, &eu, &ap], &[]), "exposed").unwrap();
    let listeners = gslb::Listeners::bind(
        &["127.0.0.1:0".parse().unwrap()],
        Some("0.0.0.0:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let options = gslb::Options {
        node: "ns1".into(),
        ..gslb::Options::default()
    };
    let error = gslb::run(
        topology,
        listeners,
        options,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("an admin API on 0.0.0.0 without a token must not start");
    assert!(error.to_string().contains("token"), "{error:#}");
}
