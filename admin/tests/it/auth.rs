//! The bearer token on mutating routes, and the start-up refusal of an
//! unprotected endpoint reachable from other hosts.

use admin::{AdminConfig, AdminError, AdminServer, Request, Response, Router, Token};
use tokio::net::TcpListener;

use crate::support::{Running, send};

const SECRET: &str = "s3cret-admin-token-for-tests";

fn router() -> Router {
    Router::new()
        .get("/v1/status", |_req: Request| async {
            Response::ok_json(&"up")
        })
        .post("/v1/reload", |_req: Request| async {
            Response::ok_json(&"reloaded")
        })
}

fn protected() -> AdminConfig {
    AdminConfig {
        token: Some(Token::new(SECRET, "test").unwrap()),
        ..AdminConfig::default()
    }
}

#[tokio::test]
async fn mutating_routes_need_the_token() {
    let server = Running::start(router(), protected()).await;
    let reply = send(server.addr, "POST", "/v1/reload", &[], b"").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"gtm-admin\"")
    );
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let wrong = format!("Bearer {}x", &SECRET[..SECRET.len() - 1]);
    let reply = send(
        server.addr,
        "POST",
        "/v1/reload",
        &[("Authorization", &wrong)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 401);

    let right = format!("Bearer {SECRET}");
    let reply = send(
        server.addr,
        "POST",
        "/v1/reload",
        &[("Authorization", &right)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), "reloaded");

    // Reads never need it.
    let reply = send(server.addr, "GET", "/v1/status", &[], b"").await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn unauthorized_bodies_are_not_read() {
    let config = AdminConfig {
        max_body_bytes: 10,
        ..protected()
    };
    let server = Running::start(router(), config).await;
    // 401, not 413: authorization is checked first.
    let reply = send(server.addr, "POST", "/v1/reload", &[], &[b'x'; 1000]).await;
    assert_eq!(reply.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn loopback_without_a_token_is_open() {
    let server = Running::start(router(), AdminConfig::default()).await;
    let reply = send(server.addr, "POST", "/v1/reload", &[], b"").await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_reachable_endpoint_without_a_token_refuses_to_start() {
    // Bound but never connected to: no traffic leaves the machine.
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let error = AdminServer::new(listener, router(), AdminConfig::default())
        .err()
        .expect("refused");
    assert!(matches!(error, AdminError::TokenRequired { .. }));
    let message = error.to_string();
    assert!(message.contains("not on a loopback address"), "{message}");
    assert!(message.contains("GTM_ADMIN_TOKEN"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");

    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    assert!(AdminServer::new(listener, router(), protected()).is_ok());
}
