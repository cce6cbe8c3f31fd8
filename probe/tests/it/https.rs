//! HTTPS probes against a server with a certificate from a test CA.

use std::time::Duration;

use probe::{Checker, HttpCheck, ProbeKind, ProbeSpec, SpecError, Trust};

use crate::support::{Mode, Server, pki};

const T: Duration = Duration::from_secs(1);

fn ca_file(pem: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), pem).unwrap();
    file
}

fn checker(check: HttpCheck) -> Checker {
    Checker::for_kind(&ProbeKind::Http(check)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn trusted_via_ca_file_with_sni_override() {
    let pki = pki();
    let server = Server::https(Mode::body(200, "ok"), pki.acceptor).await;
    let ca = ca_file(&pki.ca_pem);
    let mut check = HttpCheck::https(server.addr);
    check.sni = Some("probe.test".to_owned());
    check.trust = Trust::CaFile(ca.path().to_owned());
    check.body_contains = Some("ok".to_owned());
    assert!(
        ProbeSpec::new(ProbeKind::Http(check.clone()))
            .validate()
            .is_ok()
    );

    let r = checker(check).probe(T).await;
    assert!(r.ok, "{r}");
    // The server listens on 127.0.0.1 only, so the connection went there,
    // while the TLS name was the configured one.
    assert!(server.addr.ip().is_loopback());
    assert_eq!(
        *server.seen.sni.lock().unwrap(),
        vec![Some("probe.test".to_owned())]
    );
    let req = server.seen.last_request();
    assert!(
        req.contains(&format!("\r\nhost: probe.test:{}\r\n", server.addr.port())),
        "{req}"
    );
}

#[tokio::test(start_paused = true)]
async fn host_header_and_sni_can_differ() {
    let pki = pki();
    let server = Server::https(Mode::status(204), pki.acceptor).await;
    let ca = ca_file(&pki.ca_pem);
    let mut check = HttpCheck::https(server.addr);
    check.sni = Some("probe.test".to_owned());
    check.host = Some("www.example.test".to_owned());
    check.trust = Trust::CaFile(ca.path().to_owned());
    let r = checker(check).probe(T).await;
    assert!(r.ok, "{r}");
    assert_eq!(
        *server.seen.sni.lock().unwrap(),
        vec![Some("probe.test".to_owned())]
    );
    assert!(
        server
            .seen
            .last_request()
            .contains("\r\nhost: www.example.test\r\n")
    );
}

#[tokio::test(start_paused = true)]
async fn host_alone_also_sets_the_tls_name() {
    let pki = pki();
    let server = Server::https(Mode::status(200), pki.acceptor).await;
    let ca = ca_file(&pki.ca_pem);
    let mut check = HttpCheck::https(server.addr);
    check.host = Some("probe.test".to_owned());
    check.trust = Trust::CaFile(ca.path().to_owned());
    assert!(checker(check).probe(T).await.ok);
    assert_eq!(
        *server.seen.sni.lock().unwrap(),
        vec![Some("probe.test".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn untrusted_with_system_roots_fails_with_a_tls_detail() {
    let pki = pki();
    let server = Server::https(Mode::status(200), pki.acceptor).await;
    let mut check = HttpCheck::https(server.addr);
    check.sni = Some("probe.test".to_owned());
    let r = checker(check).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "TLS: certificate not trusted");
    assert!(
        server.seen.requests.lock().unwrap().is_empty(),
        "no request over an untrusted connection"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_name_fails_even_with_the_right_ca() {
    let pki = pki();
    let server = Server::https(Mode::status(200), pki.acceptor).await;
    let ca = ca_file(&pki.ca_pem);
    let mut check = HttpCheck::https(server.addr);
    check.trust = Trust::CaFile(ca.path().to_owned());
    // No name: the URL carries the IP, which the certificate does not cover.
    let r = checker(check.clone()).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "TLS: certificate not valid for 127.0.0.1");

    check.sni = Some("other.test".to_owned());
    let r = checker(check).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "TLS: certificate not valid for other.test");
}

#[tokio::test(start_paused = true)]
async fn insecure_accepts_the_self_signed_setup() {
    let pki = pki();
    let server = Server::https(Mode::status(200), pki.acceptor).await;
    let mut check = HttpCheck::https(server.addr);
    check.trust = Trust::Insecure;
    let r = checker(check.clone()).probe(T).await;
    assert!(r.ok, "{r}");
    // An IP URL sends no SNI.
    assert_eq!(*server.seen.sni.lock().unwrap(), vec![None]);

    check.sni = Some("anything.test".to_owned());
    assert!(checker(check).probe(T).await.ok);
    assert_eq!(
        server.seen.sni.lock().unwrap()[1].as_deref(),
        Some("anything.test")
    );
}

#[tokio::test(start_paused = true)]
async fn https_to_a_plain_server_fails() {
    let server = Server::http(Mode::status(200)).await;
    let mut check = HttpCheck::https(server.addr);
    check.trust = Trust::Insecure;
    let r = checker(check).probe(T).await;
    assert!(!r.ok);
    println!("https-to-plain detail: {}", r.detail);
}

#[test]
fn bad_ca_files_are_rejected_when_built() {
    let addr = "127.0.0.1:443".parse().unwrap();
    let mut check = HttpCheck::https(addr);

    let garbage = ca_file("not a certificate\n");
    check.trust = Trust::CaFile(garbage.path().to_owned());
    let errs = Checker::for_kind(&ProbeKind::Http(check.clone())).unwrap_err();
    assert!(
        matches!(errs.errors(), [SpecError::CaFileInvalid { .. }]),
        "{errs}"
    );
    assert!(
        errs.to_string().contains("contains no certificate"),
        "{errs}"
    );

    check.trust = Trust::CaFile("/nonexistent/ca.pem".into());
    let errs = Checker::new(&ProbeSpec::new(ProbeKind::Http(check))).unwrap_err();
    assert!(
        matches!(errs.errors(), [SpecError::CaFileUnreadable { .. }]),
        "{errs}"
    );
}
