//! A zone read from a BIND zone file (`dns.zones[].file`) is served as
//! written, and an edit to the zone file is served after the watcher
//! reloads it — a broken edit keeps the old zone serving.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::support::{Ask, TestServer, Transport, lines};

const TOPOLOGY: &str = "dns:\n  nodes:\n    - { name: ns1, listen: [\"127.0.0.1:5353\"] }\n  zones:\n    - origin: example.com.\n      file: example.com.zone\n";

async fn answer(server: &TestServer, name: &str, rtype: RecordType) -> Vec<String> {
    lines(
        &Ask::new(name, rtype)
            .send(server, Transport::Udp)
            .await
            .answers,
    )
}

/// Asks until the answer is `want` (the watcher polls every second).
async fn until_answer(server: &TestServer, name: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = answer(server, name, RecordType::A).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "still {got:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_zone_file_is_served_and_its_edits_are_reloaded() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topology/tests/it/zones");
    let dir = std::env::temp_dir().join(format!("gslb-zone-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["example.com.zone", "internal.zone"] {
        std::fs::copy(fixtures.join(file), dir.join(file)).unwrap();
    }
    let path = dir.join("topology.yaml");
    std::fs::write(&path, TOPOLOGY).unwrap();
    let options = gslb::Options {
        node: "ns1".into(),
        config_path: Some(path.clone()),
        state_file: None,
    };
    let server = TestServer::start_with(topology::load(&path).unwrap(), options).await;

    assert_eq!(
        answer(&server, "www.example.com.", RecordType::A).await,
        [
            "www.example.com. CNAME 3600 web.example.com.",
            "web.example.com. A 3600 192.0.2.80"
        ]
    );
    assert_eq!(
        answer(&server, "dkim._domainkey.example.com.", RecordType::TXT).await,
        ["dkim._domainkey.example.com. TXT 3600 v=DKIM1; k=rsa; p=MIIBIjANBgkq"]
    );
    assert_eq!(
        answer(&server, "db.internal.example.com.", RecordType::A).await,
        ["db.internal.example.com. A 300 10.0.0.1"]
    );

    // An edit of the included file is a new zone.
    let internal = dir.join("internal.zone");
    let text = std::fs::read_to_string(&internal).unwrap();
    std::fs::write(&internal, text.replace("10.0.0.1", "10.0.0.9")).unwrap();
    until_answer(
        &server,
        "db.internal.example.com.",
        &["db.internal.example.com. A 300 10.0.0.9"],
    )
    .await;

    // A broken edit is refused; the zone as it was keeps serving, and the
    // fixed file is served.
    let zone = dir.join("example.com.zone");
    let text = std::fs::read_to_string(&zone).unwrap();
    std::fs::write(&zone, text.replace("192.0.2.80", "192.0.2.800")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = crate::health::status(&server).await;
        let error = status["config"]["last_reload"]["error"]
            .as_str()
            .unwrap_or("");
        if error.contains("example.com.zone line 19") {
            break;
        }
        assert!(Instant::now() < deadline, "no refused reload: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_answer(
        &server,
        "web.example.com.",
        &["web.example.com. A 3600 192.0.2.80"],
    )
    .await;
    std::fs::write(&zone, text.replace("192.0.2.80", "192.0.2.88")).unwrap();
    until_answer(
        &server,
        "web.example.com.",
        &["web.example.com. A 3600 192.0.2.88"],
    )
    .await;
    server.stop().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
