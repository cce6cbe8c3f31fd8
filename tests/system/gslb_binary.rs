//! The `gslb` binary as a user runs it.

use std::process::Command;

use hickory_proto::rr::RecordType;
use system_tests::{binary, examples_dir, start_gslb};

use crate::dns_client::{Transport, query};

#[test]
fn check_accepts_every_example() {
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let output = Command::new(binary("gslb"))
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains(": ok"));
    }
}

#[test]
fn check_refuses_a_bad_file_naming_each_field() {
    let dir = std::env::temp_dir().join(format!("gslb-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(examples_dir().join("three-regions.yaml"))
        .unwrap()
        .replace("ipv4: 127.0.3.1", "ipv4: 127.0.3")
        .replace("ttl: 30s", "ttl: 30");
    std::fs::write(&bad, text).unwrap();
    let output = Command::new(binary("gslb"))
        .arg("--config")
        .arg(&bad)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 problems found"), "{stderr}");
    assert!(
        stderr.contains("regions.ap-south.vip.ipv4: \"127.0.3\" is not an IPv4 address"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dns.zones[0].geo[0].ttl: \"30\" has no unit; write \"30s\""),
        "{stderr}"
    );
    assert!(stderr.contains("line "), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn serves_the_example_and_stops_cleanly_on_sigterm() {
    let (mut daemon, addr) = start_gslb(&examples_dir().join("three-regions.yaml"));
    let reply = query(addr, "www.example.com.", RecordType::A, Transport::UdpEdns);
    assert_eq!(reply.answers.len(), 1);
    assert!(reply.metadata.authoritative);
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?} after SIGTERM");
    daemon.wait_for("stopped");
}

#[test]
fn dig_gets_the_answers_a_user_expects() {
    let Some(dig) = which("dig") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "dig must be installed in CI (bind9-dnsutils)"
        );
        eprintln!("SKIPPED: dig is not installed (apt-get install bind9-dnsutils)");
        return;
    };
    let (_daemon, addr) = start_gslb(&examples_dir().join("three-regions.yaml"));
    let port = addr.port().to_string();
    let dig_short = |args: &[&str]| {
        let output = Command::new(&dig)
            .args(["@127.0.0.1", "-p", &port, "+short", "+time=5", "+tries=1"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(dig_short(&["static.example.com", "A"]), "127.0.0.80");
    assert_eq!(
        dig_short(&["api.example.com", "A"]),
        "www.example.com.\n127.0.1.1"
    );
    assert_eq!(
        dig_short(&["anything.apps.example.com", "TXT"]),
        "\"wildcard app\""
    );
    assert_eq!(dig_short(&["example.com", "MX"]), "10 mail.example.com.");
    let full = Command::new(&dig)
        .args([
            "@127.0.0.1",
            "-p",
            &port,
            "+time=5",
            "+tries=1",
            "nope.example.com",
        ])
        .output()
        .unwrap();
    let full = String::from_utf8_lossy(&full.stdout);
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(
        full.contains("flags: qr aa;") || full.contains("flags: qr aa rd;"),
        "{full}"
    );
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// `dig`'s short answer to `name`/`rtype` from a client in `subnet`.
fn dig_short(server: std::net::SocketAddr, subnet: &str, name: &str, rtype: &str) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+norec", "+short", "+tries=1", "+time=5"])
        .arg(format!("+subnet={subnet}"))
        .args([name, rtype])
        .output()
        .expect("dig runs (apt-get install bind9-dnsutils)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn an_https_query_follows_the_region_of_the_a_answer_on_each_continent() {
    if Command::new("dig").arg("-v").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "dig must be installed in CI (apt-get install bind9-dnsutils)"
        );
        eprintln!("SKIPPED: dig is not installed (apt-get install bind9-dnsutils)");
        return;
    }
    // eu-west serves HTTPS on the default port: its records carry none.
    let example = std::fs::read_to_string(examples_dir().join("three-regions.yaml")).unwrap();
    let eu_vip =
        "vip: { ipv4: 127.0.2.1, ipv6: \"fd00:2::1\", ports: { http: 8080, https: 8443 } }";
    assert!(example.contains(eu_vip), "the example's eu-west VIP moved");
    let text = example.replace(eu_vip, &eu_vip.replace("https: 8443", "https: 443"));
    let dir = system_tests::temp_dir("gslb-https-geo");
    let config = dir.join("topology.yaml");
    std::fs::write(&config, text).unwrap();
    let (_gslb, server) = start_gslb(&config);
    for (subnet, a, https) in [
        (
            "81.2.69.0/24",
            "127.0.2.1",
            r#"1 . alpn="h2,http/1.1" ipv4hint=127.0.2.1 ipv6hint=fd00:2::1"#,
        ),
        (
            "8.8.8.0/24",
            "127.0.1.1",
            r#"1 . alpn="h2,http/1.1" port=8443 ipv4hint=127.0.1.1 ipv6hint=fd00:1::1"#,
        ),
    ] {
        assert_eq!(dig_short(server, subnet, "www.example.com.", "A"), a);
        assert_eq!(
            dig_short(server, subnet, "www.example.com.", "HTTPS"),
            https,
            "a client in {subnet}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
