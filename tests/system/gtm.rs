//! `gtm` as an operator runs it: validate, up, dig, status, drills, logs,
//! reload, down — against the real `gslb` (and `edge`) binaries, each test
//! with its own state directory and its own free loopback ports, so they run
//! in parallel.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use system_tests::{
    FullTopology, binary, examples_dir, free_port, full_topology, http, json, output_within,
};

/// Longest any one gtm command may run in these tests.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A scratch directory, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("gtm-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Whatever a failed test left running goes too.
        let state = self.state();
        if state.join("pids").exists() {
            let _ = output_within(
                gtm_command(&state, &["down", "--grace", "1s"]),
                COMMAND_LIMIT,
            );
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gtm_command(state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary("gtm"));
    command
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("GTM_STATE_DIR")
        .env("NO_COLOR", "1");
    command
}

/// Runs gtm with `--state-dir state`.
pub(crate) fn gtm(state: &Path, args: &[&str]) -> Output {
    output_within(gtm_command(state, args), COMMAND_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Asserts the exit code and returns stdout.
pub(crate) fn expect(output: Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", describe(&output));
    text(&output.stdout)
}

fn port_is_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
}

/// Three regions with VIPs only (no tiers: nothing listens on them, so the
/// GSLB's probes fail and every region fails open — answers stay nearest).
fn dns_only_topology(dns_port: u16, admin_port: u16) -> String {
    format!(
        r#"dns:
  nodes:
    - name: ns1
      region: us-east
      listen: ["127.0.0.1:{dns_port}"]
      admin: "127.0.0.1:{admin_port}"
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      records:
        - {{ name: "@", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
      geo:
        - {{ name: www, regions: [us-east, eu-west, ap-south], ttl: 30s }}
regions:
  us-east:
    location: {{ lat: 39.04, lon: -77.49 }}
    vip: {{ ipv4: 127.0.1.1, ipv6: "fd00:1::1" }}
  eu-west:
    location: {{ lat: 53.35, lon: -6.26 }}
    vip: {{ ipv4: 127.0.2.1, ipv6: "fd00:2::1" }}
  ap-south:
    location: {{ lat: 19.08, lon: 72.88 }}
    vip: {{ ipv4: 127.0.3.1, ipv6: "fd00:3::1" }}
"#
    )
}

/// `gtm dig NAME --from IP --type T --json`: the addresses answered.
pub(crate) fn dig(state: &Path, from: &str, rtype: &str) -> Vec<String> {
    let out = expect(
        gtm(
            state,
            &[
                "dig",
                "www.example.com",
                "--from",
                from,
                "--type",
                rtype,
                "--no-explain",
                "--json",
            ],
        ),
        0,
    );
    let reply = json::parse(&out);
    reply["reply"]["answers"]
        .items()
        .iter()
        .map(|a| a["data"].str().to_owned())
        .collect()
}

/// The pid in a component's pid file.
fn pid_of(state: &Path, component: &str) -> u32 {
    let text = std::fs::read_to_string(state.join("pids").join(format!("{component}.pid")))
        .unwrap_or_else(|e| panic!("no pid file for {component}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .expect("pid= line")
}

/// Whether `pid` runs (a zombie waiting for a reaper does not).
fn runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next();
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

#[test]
fn validate_accepts_the_examples_and_lists_every_problem_of_a_bad_file() {
    let scratch = Scratch::new("validate");
    let example = examples_dir().join("three-regions.yaml");
    let out = expect(
        gtm(&scratch.state(), &["validate", example.to_str().unwrap()]),
        0,
    );
    assert!(out.contains(": ok"), "{out}");
    assert!(out.contains("6 backend(s)"), "{out}");

    let bad = scratch.write(
        "bad.yaml",
        &std::fs::read_to_string(&example)
            .unwrap()
            .replace("ipv4: 127.0.3.1", "ipv4: 127.0.3")
            .replace("ttl: 30s", "ttl: 30"),
    );
    let output = gtm(&scratch.state(), &["validate", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("2 problems found"), "{stderr}");
    assert!(stderr.contains("regions.ap-south.vip.ipv4"), "{stderr}");
    assert!(stderr.contains("dns.zones[0].geo[0].ttl"), "{stderr}");
    assert!(stderr.contains("line "), "{stderr}");

    let output = gtm(
        &scratch.state(),
        &["validate", bad.to_str().unwrap(), "--json"],
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json::parse(&text(&output.stdout));
    assert_eq!(report["ok"], json::Value::Bool(false));
    let paths: Vec<&str> = report["problems"]
        .items()
        .iter()
        .map(|p| p["path"].str())
        .collect();
    assert_eq!(
        paths,
        ["regions.ap-south.vip.ipv4", "dns.zones[0].geo[0].ttl"]
    );

    // Two components on one address: only the whole plan sees it.
    let clash = scratch.write(
        "clash.yaml",
        &std::fs::read_to_string(&example)
            .unwrap()
            .replace("admin: \"127.0.1.12:9100\"", "admin: \"127.0.1.101:9000\""),
    );
    let output = gtm(&scratch.state(), &["validate", clash.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "127.0.1.101:9000 TCP is bound by us-east-web1 (HTTP) and us-east-l7b (admin)"
        ),
        "{stderr}"
    );

    let missing = gtm(
        &scratch.state(),
        &["validate", "/nonexistent/topology.yaml"],
    );
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
}

#[test]
fn up_dig_status_drain_recover_down_on_a_dns_only_topology() {
    let scratch = Scratch::new("dns-only");
    let state = scratch.state();
    let (dns_port, admin_port) = (free_port(), free_port());
    let file = scratch.write("topology.yaml", &dns_only_topology(dns_port, admin_port));
    let file = file.to_str().unwrap();
    let started = Instant::now();

    let out = expect(gtm(&state, &["up", file]), 0);
    assert!(out.contains("1 component(s) started"), "{out}");
    assert!(
        out.contains(&format!(
            "dig @127.0.0.1 -p {dns_port} www.example.com +subnet=8.8.8.0/24"
        )),
        "{out}"
    );
    let pid = pid_of(&state, "ns1");
    assert!(runs(pid));
    for expected in [
        "pids/ns1.pid",
        "logs/ns1.log",
        "deployment.json",
        "topology.yaml",
    ] {
        assert!(state.join(expected).exists(), "{expected} in the state dir");
    }

    // Clients on every continent get their nearest region, A and AAAA.
    for (from, a, aaaa) in [
        ("8.8.8.8", "127.0.1.1", "fd00:1::1"),      // United States
        ("200.160.0.8", "127.0.1.1", "fd00:1::1"),  // Brazil
        ("81.2.69.160", "127.0.2.1", "fd00:2::1"),  // United Kingdom
        ("193.0.6.139", "127.0.2.1", "fd00:2::1"),  // Netherlands
        ("49.44.0.1", "127.0.3.1", "fd00:3::1"),    // India
        ("1.1.1.1", "127.0.3.1", "fd00:3::1"),      // Australia
        ("41.0.0.1", "127.0.3.1", "fd00:3::1"),     // South Africa
        ("2a02:8800::1", "127.0.2.1", "fd00:2::1"), // United Kingdom, IPv6
    ] {
        assert_eq!(dig(&state, from, "A"), [a], "{from} A");
        assert_eq!(dig(&state, from, "AAAA"), [aaaa], "{from} AAAA");
    }
    // The human form carries the TTL, the scope and the GSLB's explanation.
    let out = expect(gtm(&state, &["dig", "www", "--from", "81.2.69.160"]), 0);
    assert!(out.contains("www.example.com."), "{out}");
    assert!(out.contains("127.0.2.1  (eu-west)"), "{out}");
    assert!(out.contains("scope /"), "{out}");
    assert!(out.contains("Explanation (admin"), "{out}");
    assert!(out.contains("location: GB"), "{out}");

    // A second `up` starts nothing.
    let output = gtm(&state, &["up", file]);
    let out = expect(output, 0);
    assert!(
        out.contains("all 1 component(s) were already running"),
        "{out}"
    );
    assert_eq!(pid_of(&state, "ns1"), pid, "the same process");

    let status = json::parse(&expect(gtm(&state, &["status", "--json"]), 0));
    let regions: Vec<&str> = status["regions"]
        .items()
        .iter()
        .map(|r| r["name"].str())
        .collect();
    assert_eq!(regions, ["us-east", "eu-west", "ap-south"]);
    assert_eq!(status["regions"][0]["ipv4"].str(), "127.0.1.1");
    assert_eq!(status["regions"][0]["gslb_view_from"].str(), "ns1");
    assert_eq!(status["dns"][0]["name"].str(), "ns1");
    assert_eq!(status["dns"][0]["running"], json::Value::Bool(true));
    assert_eq!(status["dns"][0]["answering"], json::Value::Bool(true));
    assert_eq!(status["dns"][0]["pid"].num(), f64::from(pid));
    let human = expect(gtm(&state, &["status"]), 0);
    assert!(
        human.contains("REGION") && human.contains("DNS NODE"),
        "{human}"
    );

    // Drills and what-ifs: an unknown region, a kill without an L4 tier,
    // then a drain.
    for args in [
        &["fail", "mars"][..],
        &["fail", "us-east", "mars", "--dry-run"],
        &["recover", "mars", "--dry-run"],
    ] {
        let output = gtm(&state, args);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            text(&output.stderr)
                .contains("unknown region \"mars\"; the topology has: us-east, eu-west, ap-south"),
            "{args:?}: {}",
            describe(&output)
        );
    }
    // The what-if route itself refuses bad input with what to write.
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let reply = http::get(admin, "/v1/what-if?fail=us-east,mars").unwrap();
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(
        reply.text().contains("unknown region")
            && reply.text().contains("mars")
            && reply.text().contains("regions: us-east, eu-west, ap-south"),
        "{}",
        reply.text()
    );
    let reply = http::get(admin, "/v1/what-if?fail=us-east&client=8.8.8").unwrap();
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("is not an IP address; write e.g. client=203.0.113.7"),
        "{}",
        reply.text()
    );
    let output = gtm(&state, &["fail", "us-east", "eu-west"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("add --dry-run"),
        "{}",
        describe(&output)
    );
    let output = gtm(&state, &["fail", "us-east"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("no L4 tier"),
        "{}",
        describe(&output)
    );

    let out = expect(gtm(&state, &["fail", "us-east", "--mode", "drain"]), 0);
    for step in [
        "failure injected",
        "region marked down",
        "answered elsewhere",
    ] {
        assert!(out.contains(step), "{step}: {out}");
    }
    assert!(out.contains("now goes to eu-west"), "{out}");
    assert_eq!(
        dig(&state, "8.8.8.8", "A"),
        ["127.0.2.1"],
        "US clients moved"
    );
    let status = json::parse(&expect(gtm(&state, &["status", "--json"]), 0));
    assert_eq!(status["regions"][0]["override"].str(), "drain");
    let output = gtm(&state, &["fail", "us-east", "--mode", "drain"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "already failed: {}",
        describe(&output)
    );

    let out = expect(gtm(&state, &["recover", "us-east", "--json"]), 0);
    let report = json::parse(&out);
    assert_eq!(report["cleared"].items().len(), 1, "{out}");
    assert!(report["back_after_ms"].num() >= 0.0, "{out}");
    assert_eq!(
        dig(&state, "8.8.8.8", "A"),
        ["127.0.1.1"],
        "US clients back"
    );

    let logs = expect(gtm(&state, &["logs", "ns1", "-n", "1000"]), 0);
    assert!(logs.contains("serving DNS over UDP and TCP"), "{logs}");
    let output = gtm(&state, &["logs", "nope"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let out = expect(gtm(&state, &["reload"]), 0);
    assert!(out.contains("ns1") && out.contains("reloaded"), "{out}");

    let out = expect(gtm(&state, &["down"]), 0);
    assert!(out.contains("nothing is left running"), "{out}");
    assert!(!runs(pid), "gslb pid {pid} still runs");
    assert!(!state.join("pids/ns1.pid").exists());
    for port in [dns_port, admin_port] {
        assert!(
            port_is_free(SocketAddr::from(([127, 0, 0, 1], port))),
            "port {port}"
        );
    }
    let output = gtm(&state, &["status"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(text(&output.stderr).contains("nothing is deployed"));
    eprintln!("dns-only lifecycle took {:?}", started.elapsed());
}

#[test]
fn up_with_a_port_taken_names_the_component_and_starts_nothing() {
    let scratch = Scratch::new("port-taken");
    let state = scratch.state();
    let (dns_port, admin_port) = (free_port(), free_port());
    let file = scratch.write("topology.yaml", &dns_only_topology(dns_port, admin_port));
    let _squatter = UdpSocket::bind(("127.0.0.1", dns_port)).unwrap();

    let output = gtm(&state, &["up", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot start ns1"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{dns_port} UDP (DNS): address in use")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
    let pids: Vec<_> = std::fs::read_dir(state.join("pids")).unwrap().collect();
    assert!(pids.is_empty(), "no pid file left: {pids:?}");
    let output = gtm(&state, &["status"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn up_with_a_bad_file_or_a_missing_binary_starts_nothing() {
    let scratch = Scratch::new("up-errors");
    let state = scratch.state();
    let (dns_port, admin_port) = (free_port(), free_port());
    let bad = scratch.write(
        "bad.yaml",
        &dns_only_topology(dns_port, admin_port).replace("ttl: 30s", "ttl: 30"),
    );
    let output = gtm(&state, &["up", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("dns.zones[0].geo[0].ttl"), "{stderr}");
    assert!(stderr.contains("nothing was started"), "{stderr}");

    // gtm alone in a directory, with no PATH to find gslb on.
    let lonely = scratch.path("bin");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(binary("gtm"), lonely.join("gtm")).unwrap();
    let good = scratch.write("good.yaml", &dns_only_topology(dns_port, admin_port));
    let mut command = Command::new(lonely.join("gtm"));
    command
        .arg("--state-dir")
        .arg(&state)
        .arg("up")
        .arg(&good)
        .env("PATH", "")
        .env("NO_COLOR", "1");
    let output = output_within(command, COMMAND_LIMIT);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the `gslb` binary is missing (needed by ns1)"),
        "{stderr}"
    );
    assert!(port_is_free(SocketAddr::from(([127, 0, 0, 1], dns_port))));
}

#[test]
fn help_and_completions() {
    let scratch = Scratch::new("help");
    let out = expect(gtm(&scratch.state(), &["--help"]), 0);
    for command in [
        "up",
        "status",
        "fail",
        "recover",
        "dig",
        "validate",
        "reload",
        "logs",
        "down",
        "completions",
        "server",
    ] {
        assert!(out.contains(command), "{command} in --help: {out}");
    }
    assert!(out.contains("Examples:"), "{out}");
    let out = expect(gtm(&scratch.state(), &["fail", "--help"]), 0);
    assert!(out.contains("--mode drain"), "{out}");
    let out = expect(gtm(&scratch.state(), &["completions", "bash"]), 0);
    assert!(out.contains("_gtm()"), "{out}");
    // A usage error is the user's: exit 1, not clap's 2.
    let output = gtm(&scratch.state(), &["fail"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn the_full_topology_serves_through_each_vip_and_fails_over_within_the_detection_time() {
    let scratch = Scratch::new("full");
    let state = scratch.state();
    let net = system_tests::loopback_net(0);
    let topology = full_topology(net);
    let file = scratch.write("topology.yaml", &topology.yaml);
    let out = expect(gtm(&state, &["up", file.to_str().unwrap()]), 0);
    assert!(out.contains("16 component(s) started"), "{out}");
    let status = json::parse(&expect(gtm(&state, &["status", "--json"]), 0));
    for (index, region) in ["us-east", "eu-west", "ap-south"].into_iter().enumerate() {
        let vip = status["regions"][index]["ipv4"].str().to_owned();
        let vip = SocketAddr::new(vip.parse().unwrap(), topology.http_port);
        let response = http::get(vip, "/").unwrap_or_else(|e| panic!("{region}: GET {vip}: {e}"));
        assert_eq!(response.status, 200, "{region}: {response:?}");
        assert!(
            response
                .text()
                .contains(&format!("\"region\":\"{region}\"")),
            "{region}: {}",
            response.text()
        );
    }
    drain_a_backend_server_under_load(&state, &topology, net, ("web", "/", 9000));
    // The what-if predicts, without touching anything, where clients go;
    // the real drill below must agree. Both read the GSLB's health, so
    // first wait until it has every region in service (the regions' tiers
    // started after it, so its probes may still be rising).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let matrix = json::parse(&expect(gtm(&state, &["status", "--matrix", "--json"]), 0));
        let rows = matrix["regions"].items();
        if rows.len() == 3
            && rows
                .iter()
                .all(|r| r["in_service"] == json::Value::Bool(true))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "regions never all in service: {matrix:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let clients = ["8.8.8.8", "200.160.0.8", "81.2.69.160", "49.44.0.1"];
    let mut args = vec!["fail", "us-east", "--dry-run", "--json"];
    for client in clients {
        args.extend(["--client", client]);
    }
    let prediction = json::parse(&expect(gtm(&state, &args), 0));
    let predicted = |report: &json::Value, client: &str| -> Vec<String> {
        report["clients"]
            .items()
            .iter()
            .find(|m| m["client"].str() == client && m["name"].str() == "www.example.com.")
            .unwrap_or_else(|| panic!("no prediction for {client}: {report:?}"))["after_addresses"]
            .items()
            .iter()
            .map(|a| a.str().to_owned())
            .collect()
    };
    assert_eq!(
        predicted(&prediction, "8.8.8.8"),
        [format!("127.{net}.2.1")],
        "the US moves to eu-west"
    );
    let us = prediction["names"][0]["places"]
        .items()
        .iter()
        .find(|p| p["country"].str() == "US")
        .cloned()
        .expect("the US in the per-country changes");
    assert_eq!(us["after"][0].str(), "eu-west");
    for client in clients {
        assert_eq!(dig(&state, client, "A").len(), 1, "dry run changed nothing");
    }
    assert_eq!(dig(&state, "8.8.8.8", "A"), [format!("127.{net}.1.1")]);
    let human = expect(gtm(&state, &["fail", "us-east", "--dry-run"]), 0);
    assert!(human.contains("What if us-east failed"), "{human}");
    assert!(human.contains("us-east  →  eu-west"), "{human}");

    let started = Instant::now();
    let out = expect(gtm(&state, &["fail", "us-east", "--json"]), 0);
    let report = json::parse(&out);
    let moved = report["moved_after_ms"].num();
    let detection = report["detection_ms"].num();
    for event in report["events"].items() {
        eprintln!(
            "{:>10.0} ms  {}: {}",
            event["offset_ms"].num(),
            event["label"].str(),
            event["detail"].str()
        );
    }
    // The configured detection time, plus slack for a loaded machine: the
    // DNS poll interval and the publication of the verdict.
    assert!(
        moved <= detection + 2000.0,
        "moved after {moved} ms, detection {detection} ms: {out}"
    );
    assert_eq!(report["now_region"].str(), "eu-west", "{out}");
    let labels: Vec<&str> = report["events"]
        .items()
        .iter()
        .map(|e| e["label"].str())
        .collect();
    for step in [
        "failure injected",
        "first probe failure",
        "region marked down",
        "answered elsewhere",
        "traffic moved",
    ] {
        assert!(labels.contains(&step), "{step}: {out}");
    }
    // The client's requests, through a resolver keeping the 30 s TTL,
    // land in eu-west after DNS moved and within the bar plus the TTL.
    let traffic = &report["traffic"];
    assert_eq!(traffic["now_region"].str(), "eu-west", "{out}");
    let landed = traffic["moved_after_ms"].num();
    let ttl_ms = traffic["ttl"].num() * 1000.0;
    assert!(ttl_ms > 0.0, "{out}");
    assert!(
        landed >= moved - 250.0 && landed <= detection + ttl_ms + 2000.0,
        "traffic moved after {landed} ms, DNS after {moved} ms: {out}"
    );
    for client in clients {
        assert_eq!(
            dig(&state, client, "A"),
            predicted(&prediction, client),
            "{client}: the drill went where the what-if said"
        );
    }
    let mut args = vec!["recover", "us-east", "--dry-run", "--json"];
    for client in clients {
        args.extend(["--client", client]);
    }
    let comeback = json::parse(&expect(gtm(&state, &args), 0));
    let out = expect(gtm(&state, &["recover", "us-east", "--json"]), 0);
    let recovered = json::parse(&out);
    assert_eq!(recovered["traffic"]["now_region"].str(), "us-east", "{out}");
    assert!(recovered["traffic"]["moved_after_ms"].num() > 0.0, "{out}");
    assert_eq!(dig(&state, "8.8.8.8", "A"), [format!("127.{net}.1.1")]);
    for client in clients {
        assert_eq!(
            dig(&state, client, "A"),
            predicted(&comeback, client),
            "{client}: the recovery went where the what-if said"
        );
    }
    eprintln!("fail + recover took {:?}", started.elapsed());
    let pids: Vec<u32> = ["ns1", "us-east-l4", "us-east-l7a", "us-east-web1"]
        .iter()
        .map(|c| pid_of(&state, c))
        .collect();
    expect(gtm(&state, &["down"]), 0);
    for pid in pids {
        assert!(!runs(pid), "pid {pid} still runs");
    }
}

/// `gtm server drain` takes us-east-web1 out of one of us-east's pools
/// (its name, a path routed to it, and web1's port in it) on both L7
/// nodes while clients keep asking through the VIP: no request fails,
/// none sent after the command returned reaches it; `gtm status` shows it;
/// `undrain` brings it back.
pub(crate) fn drain_a_backend_server_under_load(
    state: &Path,
    topology: &FullTopology,
    net: u8,
    (pool, path, port): (&str, &'static str, u16),
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let vip = SocketAddr::new(
        format!("127.{net}.1.1").parse().unwrap(),
        topology.http_port,
    );
    let server = format!("127.{net}.1.101:{port}");
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let reply = http::get(vip, path).map(|r| (r.status, r.text()));
                    samples.push((started, reply));
                }
                samples
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let out = expect(
        gtm(
            state,
            &["server", "drain", "us-east", pool, &server, "--json"],
        ),
        0,
    );
    let drained_at = Instant::now();
    let report = json::parse(&out);
    assert_eq!(report["nodes"].items().len(), 2, "{out}");
    for node in report["nodes"].items() {
        assert_eq!(node["server"]["drained"], json::Value::Bool(true), "{out}");
    }
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<_> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect();
    let mut late = 0;
    for (started, reply) in &samples {
        let (status, body) = reply.as_ref().unwrap_or_else(|e| panic!("GET {vip}: {e}"));
        assert_eq!(*status, 200, "{body}");
        if *started > drained_at {
            late += 1;
            assert!(
                !body.contains("us-east-web1"),
                "sent to the drained server: {body}"
            );
        }
    }
    assert!(late > 10, "{late} requests after the drain");
    let human = expect(gtm(state, &["status"]), 0);
    let rows: Vec<&str> = human
        .lines()
        .filter(|l| l.contains(&server) && l.contains(&format!(" {pool} ")))
        .collect();
    assert_eq!(rows.len(), 2, "a row per L7 node: {human}");
    assert!(rows.iter().all(|r| r.contains("drained")), "{human}");
    expect(
        gtm(state, &["server", "undrain", "us-east", pool, &server]),
        0,
    );
    let wrong = gtm(state, &["server", "drain", "us-east", pool, "127.0.0.1:1"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    assert!(
        text(&wrong.stderr).contains(&server),
        "{}",
        describe(&wrong)
    );
}
