//! Flag-for-flag comparison with Knot DNS loaded with the same records: the
//! reference for what an authoritative server answers.

use std::net::SocketAddr;
use std::process::Command;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use system_tests::{Daemon, binary, examples_dir, start_gslb};

use crate::dns_client::{ALL, query};

/// Questions covering every behaviour of an authoritative server.
const CORPUS: &[(&str, RecordType)] = &[
    ("example.com.", RecordType::SOA),
    ("example.com.", RecordType::NS),
    ("example.com.", RecordType::MX),
    ("example.com.", RecordType::TXT),
    ("example.com.", RecordType::AAAA),
    ("example.com.", RecordType::ANY),
    ("ns1.example.com.", RecordType::A),
    ("mail.example.com.", RecordType::AAAA),
    ("static.example.com.", RecordType::A),
    ("static.example.com.", RecordType::MX),
    ("StAtIc.ExAmPlE.CoM.", RecordType::AAAA),
    ("www.example.com.", RecordType::A),
    ("www.example.com.", RecordType::TXT),
    ("api.example.com.", RecordType::A),
    ("api.example.com.", RecordType::AAAA),
    ("api.example.com.", RecordType::CNAME),
    ("api.example.com.", RecordType::TXT),
    ("nope.example.com.", RecordType::A),
    ("deep.nope.example.com.", RecordType::A),
    ("x.static.example.com.", RecordType::A),
    ("apps.example.com.", RecordType::A),
    ("shop.apps.example.com.", RecordType::A),
    ("a.b.apps.example.com.", RecordType::TXT),
    ("shop.apps.example.com.", RecordType::AAAA),
    ("dev.example.com.", RecordType::NS),
    ("dev.example.com.", RecordType::A),
    ("dev.example.com.", RecordType::DS),
    ("host.dev.example.com.", RecordType::A),
    ("ns1.dev.example.com.", RecordType::A),
    ("www.example.org.", RecordType::A),
    ("static.example.com.", RecordType::Unknown(65280)),
    ("example.com.", RecordType::HTTPS),
    ("static.example.com.", RecordType::HTTPS),
    ("STATIC.example.com.", RecordType::HTTPS),
    ("Example.COM.", RecordType::HTTPS),
    ("_DNS.static.example.com.", RecordType::SVCB),
    ("static.example.com.", RecordType::SVCB),
    ("_dns.static.example.com.", RecordType::SVCB),
    ("_443._tcp.static.example.com.", RecordType::TLSA),
    ("_tcp.static.example.com.", RecordType::TLSA),
    ("static.example.com.", RecordType::SSHFP),
    ("sip.example.com.", RecordType::NAPTR),
    ("Sip.Example.com.", RecordType::NAPTR),
];

/// What must agree between the two servers.
fn summary(reply: &Message) -> String {
    let section = |records: &[hickory_proto::rr::Record]| {
        let mut lines: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {} {}", r.name, r.record_type(), r.ttl, r.data))
            .collect();
        lines.sort();
        lines
    };
    let m = &reply.metadata;
    format!(
        "rcode={:?} aa={} tc={} rd={} ra={} opt={:?}\nanswer={:#?}\nauthority={:#?}\nadditional={:#?}",
        m.response_code,
        m.authoritative,
        m.truncation,
        m.recursion_desired,
        m.recursion_available,
        reply.edns.as_ref().map(|e| e.version()),
        section(&reply.answers),
        section(&reply.authorities),
        section(&reply.additionals),
    )
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_knot(dir: &std::path::Path, zone_file: &str) -> (Daemon, SocketAddr) {
    std::fs::write(dir.join("example.com.zone"), zone_file).unwrap();
    let port = free_port();
    let conf = format!(
        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir}\nlog:\n  - target: stderr\n    any: info\ndatabase:\n    storage: {dir}\nzone:\n  - domain: example.com\n    file: {dir}/example.com.zone\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    let mut command = Command::new("knotd");
    command.arg("-c").arg(dir.join("knot.conf"));
    let mut daemon = Daemon::spawn(command);
    daemon.wait_for("loaded, serial");
    daemon.wait_for("server started");
    (daemon, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn answers_match_knot_flag_for_flag() {
    if Command::new("knotd").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "knotd must be installed in CI (apt-get install knot)"
        );
        eprintln!("SKIPPED: knotd is not installed (apt-get install knot)");
        return;
    }
    let config = examples_dir().join("three-regions.yaml");
    let zone = Command::new(binary("gslb"))
        .arg("--config")
        .arg(&config)
        .args(["--zone-file", "example.com."])
        .output()
        .unwrap();
    assert!(zone.status.success());
    let dir = std::env::temp_dir().join(format!("knot-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_knot, knot) = start_knot(&dir, &String::from_utf8(zone.stdout).unwrap());
    let (_gslb, ours) = start_gslb(&config);

    let mut differences = Vec::new();
    for (name, rtype) in CORPUS {
        for transport in ALL {
            let theirs = summary(&query(knot, name, *rtype, transport));
            let mine = summary(&query(ours, name, *rtype, transport));
            if theirs != mine {
                differences.push(format!(
                    "{name} {rtype} over {transport:?}\n--- knot\n{theirs}\n--- gslb\n{mine}"
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        differences.is_empty(),
        "{} answers differ from Knot:\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}
