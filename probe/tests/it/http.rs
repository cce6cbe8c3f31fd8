//! Plain HTTP probes against a canned server.

use std::time::Duration;

use probe::{Checker, HttpCheck, ProbeKind, parse_status_set};

use crate::support::{Mode, Server, closed_port};

fn checker(check: HttpCheck) -> Checker {
    Checker::for_kind(&ProbeKind::Http(check)).unwrap()
}

const T: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn status_200_is_ok() {
    let server = Server::http(Mode::status(200)).await;
    let r = checker(HttpCheck::http(server.addr)).probe(T).await;
    assert!(r.ok, "{r}");
    assert_eq!(r.detail, "HTTP 200");
    let req = server.seen.last_request();
    assert!(req.starts_with("get / http/1.1\r\n"), "{req}");
    assert!(req.contains(&format!("host: {}\r\n", server.addr)), "{req}");
    assert!(req.contains("connection: close\r\n"), "{req}");
    assert!(req.contains("user-agent: gtm-probe/"), "{req}");
}

#[tokio::test(start_paused = true)]
async fn status_503_fails_with_the_code() {
    let server = Server::http(Mode::status(503)).await;
    let r = checker(HttpCheck::http(server.addr)).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503");
}

#[tokio::test(start_paused = true)]
async fn expected_status_list_is_honoured() {
    let server = Server::http(Mode::status(503)).await;
    let mut check = HttpCheck::http(server.addr);
    check.expect = parse_status_set("200,500-503").unwrap();
    assert!(checker(check.clone()).probe(T).await.ok);

    server.seen.set_mode(Mode::status(200));
    check.expect = parse_status_set("204").unwrap();
    let r = checker(check).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 200");
}

#[tokio::test(start_paused = true)]
async fn redirects_are_judged_not_followed() {
    let server = Server::http(Mode::Respond {
        status: 302,
        body: String::new(),
        extra_headers: "location: http://127.0.0.1:1/elsewhere\r\n".to_owned(),
    })
    .await;
    let r = checker(HttpCheck::http(server.addr)).probe(T).await;
    assert!(r.ok, "302 is within the default 200-399: {r}");
    assert_eq!(r.detail, "HTTP 302");
    assert_eq!(server.seen.accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn body_substring_present_and_absent() {
    let server = Server::http(Mode::body(200, "{\"status\":\"ok\"}")).await;
    let mut check = HttpCheck::http(server.addr);
    check.path = "/healthz?deep=1".to_owned();
    check.body_contains = Some("ok".to_owned());
    let r = checker(check.clone()).probe(T).await;
    assert!(r.ok, "{r}");
    assert!(
        server
            .seen
            .last_request()
            .starts_with("get /healthz?deep=1 http/1.1")
    );

    check.body_contains = Some("ready".to_owned());
    let r = checker(check.clone()).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "body lacks \"ready\"");

    // The status is judged before the body.
    server.seen.set_mode(Mode::body(500, "ready"));
    assert_eq!(checker(check).probe(T).await.detail, "HTTP 500");
}

#[tokio::test(start_paused = true)]
async fn only_the_first_64_kib_of_the_body_are_searched() {
    let body = format!("{}needle", "x".repeat(70 * 1024));
    let server = Server::http(Mode::body(200, &body)).await;
    let mut check = HttpCheck::http(server.addr);
    check.body_contains = Some("needle".to_owned());
    let r = checker(check).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "body lacks \"needle\" in its first 64 KiB");
}

#[tokio::test(start_paused = true)]
async fn silent_server_times_out_at_the_timeout() {
    let server = Server::http(Mode::Hang).await;
    let wall = std::time::Instant::now();
    let r = checker(HttpCheck::http(server.addr)).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "timed out after 1s");
    assert_eq!(r.latency, T);
    // Virtual time: the second never really passed.
    assert!(wall.elapsed() < Duration::from_millis(900));
    assert_eq!(
        server.seen.requests.lock().unwrap().len(),
        1,
        "the request was sent"
    );
}

#[tokio::test(start_paused = true)]
async fn host_header_override_reaches_the_server() {
    let server = Server::http(Mode::status(200)).await;
    let mut check = HttpCheck::http(server.addr);
    check.host = Some("www.example.test".to_owned());
    assert!(checker(check.clone()).probe(T).await.ok);
    let req = server.seen.last_request();
    assert!(req.contains("\r\nhost: www.example.test\r\n"), "{req}");
    assert_eq!(req.matches("host:").count(), 1, "{req}");

    check.host = Some("www.example.test:8080".to_owned());
    assert!(checker(check).probe(T).await.ok);
    assert!(
        server
            .seen
            .last_request()
            .contains("\r\nhost: www.example.test:8080\r\n")
    );
}

#[tokio::test(start_paused = true)]
async fn each_probe_uses_a_new_connection() {
    let server = Server::http(Mode::status(200)).await;
    let c = checker(HttpCheck::http(server.addr));
    for _ in 0..3 {
        assert!(c.probe(T).await.ok);
    }
    assert_eq!(server.seen.accepted(), 3);
}

#[tokio::test(start_paused = true)]
async fn refused_and_dropped_connections_fail_with_a_reason() {
    let r = checker(HttpCheck::http(closed_port().await)).probe(T).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "connection refused");

    let server = Server::http(Mode::Close).await;
    let r = checker(HttpCheck::http(server.addr)).probe(T).await;
    assert!(!r.ok);
    assert!(
        !r.detail.is_empty() && !r.detail.contains("http://"),
        "{}",
        r.detail
    );
    println!("closed-without-answer detail: {}", r.detail);
}
