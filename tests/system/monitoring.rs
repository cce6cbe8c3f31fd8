//! The monitoring an operator wires in, against the real thing: the alert
//! rules pass `promtool check` and their unit tests, and a real Prometheus,
//! configured by `gtm prometheus`, scrapes the example topology run by
//! `gtm up` and returns data for every panel of the Grafana dashboard and
//! for the region-down alert during a real `gtm fail`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use system_tests::{Daemon, free_port, full_topology, http, json, output_within};

use super::gtm::{Scratch, describe, expect, gtm};

/// Longest Prometheus may take to start, or a query to have data.
const PATIENCE: Duration = Duration::from_secs(60);

fn dashboards() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

fn promtool(args: &[&str]) -> String {
    let mut command = Command::new("promtool");
    command.args(args).current_dir(dashboards());
    let output = output_within(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "promtool {args:?}: {}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// `text` with everything but unreserved characters percent-encoded.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus, stopped when dropped.
struct Prometheus {
    _daemon: Daemon,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(config: &Path, storage: &Path) -> Prometheus {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"));
        let daemon = Daemon::spawn(command);
        let prometheus = Prometheus {
            _daemon: daemon,
            addr,
        };
        prometheus.poll("Prometheus is ready", || {
            http::get(addr, "/-/ready").is_ok_and(|r| r.status == 200)
        });
        prometheus
    }

    /// Polls `check` (bounded by [`PATIENCE`]); panics naming `what`.
    fn poll(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn get(&self, path: &str) -> json::Value {
        let response = http::get(self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = json::parse(&response.text());
        assert_eq!(
            body["status"].str(),
            "success",
            "{path}: {}",
            response.text()
        );
        body
    }

    /// The samples of an instant query.
    fn query(&self, expr: &str) -> Vec<json::Value> {
        self.get(&format!("/api/v1/query?query={}", url_encode(expr)))["data"]["result"]
            .items()
            .to_vec()
    }
}

/// Every query of the dashboard's panels, with Grafana's variables as an
/// operator's first look sets them (all regions, a one-minute window).
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dashboards().join("gtm.json")).unwrap();
    let dashboard = json::parse(&text);
    let mut queries = Vec::new();
    for panel in dashboard["panels"].items() {
        if let json::Value::Arr(targets) = &panel["targets"] {
            for target in targets {
                let expr = target["expr"]
                    .str()
                    .replace("$__rate_interval", "1m")
                    .replace("$region", ".*");
                queries.push((panel["title"].str().to_owned(), expr));
            }
        }
    }
    queries
}

#[test]
fn prometheus_scrapes_the_example_and_every_dashboard_panel_and_the_region_alert_have_data() {
    let scratch = Scratch::new("monitoring");
    let state = scratch.state();
    let net = system_tests::loopback_net(2);
    let topology = full_topology(net);
    let file = scratch.write("topology.yaml", &topology.yaml);
    let file = file.to_str().unwrap();
    expect(gtm(&state, &["up", file]), 0);

    let rules = dashboards().join("alerts.yml");
    let config = expect(
        gtm(
            &state,
            &[
                "prometheus",
                file,
                "--interval",
                "1s",
                "--rules",
                rules.to_str().unwrap(),
            ],
        ),
        0,
    );
    let config_file = scratch.write("prometheus.yml", &config);
    let out = promtool(&["check", "config", config_file.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
    let storage = scratch.path("tsdb");
    let prometheus = Prometheus::start(&config_file, &storage);

    // Every target is scraped: three kinds of daemons, ten nodes.
    prometheus.poll("every target is up", || {
        let up = prometheus.query("up == 1");
        up.len() == 10
    });
    for job in ["gslb", "edge-l4", "edge-l7"] {
        let targets = prometheus.query(&format!("up{{job=\"{job}\"}}"));
        assert!(!targets.is_empty(), "no {job} target");
        for target in &targets {
            assert_ne!(target["metric"]["node"], json::Value::Null, "{target:?}");
        }
    }

    // Traffic as users make it: DNS from three continents, HTTP through
    // each region's VIP.
    for from in ["8.8.8.8", "81.2.69.160", "49.44.0.1"] {
        expect(
            gtm(
                &state,
                &["dig", "www.example.com", "--from", from, "--no-explain"],
            ),
            0,
        );
    }
    let status = json::parse(&expect(gtm(&state, &["status", "--json"]), 0));
    for region in status["regions"].items() {
        let vip = SocketAddr::new(region["ipv4"].str().parse().unwrap(), topology.http_port);
        for _ in 0..5 {
            let response = http::get(vip, "/").unwrap_or_else(|e| panic!("GET {vip}: {e}"));
            assert_eq!(response.status, 200, "{vip}: {response:?}");
        }
    }

    // A real failure: the region-down alert's expression names the region.
    expect(gtm(&state, &["fail", "us-east"]), 0);
    prometheus.poll("GtmRegionDown's expression names us-east", || {
        prometheus
            .query("max by (region) (gslb_region_in_service) == 0")
            .iter()
            .any(|sample| sample["metric"]["region"].str() == "us-east")
    });
    expect(gtm(&state, &["recover", "us-east"]), 0);

    // Every panel has data (the failover timeline included).
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    let deadline = Instant::now() + PATIENCE;
    let mut empty: Vec<&(String, String)> = queries.iter().collect();
    while !empty.is_empty() && Instant::now() < deadline {
        empty.retain(|(_, expr)| prometheus.query(expr).is_empty());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(empty.is_empty(), "panels without data: {empty:#?}");

    // Every alert rule evaluates against the real series without error.
    prometheus.poll("every alert rule has been evaluated", || {
        let rules = prometheus.get("/api/v1/rules");
        let rules: Vec<json::Value> = rules["data"]["groups"]
            .items()
            .iter()
            .flat_map(|group| group["rules"].items().to_vec())
            .collect();
        assert_eq!(rules.len(), 13, "{rules:?}");
        for rule in &rules {
            assert_ne!(rule["health"].str(), "err", "{rule:?}");
        }
        rules.iter().all(|rule| rule["health"].str() == "ok")
    });
    expect(gtm(&state, &["down"]), 0);
}
