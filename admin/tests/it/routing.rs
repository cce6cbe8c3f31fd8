//! Routes, path and query parameters, bodies, 404/405, `/healthz`.

use admin::{AdminConfig, Request, Response, Router, StatusCode};
use serde::Deserialize;

use crate::support::{Running, send};

fn router() -> Router {
    Router::new()
        .get("/v1/regions/{region}", |req: Request| async move {
            Response::ok_json(&serde_json::json!({ "region": req.param("region") }))
        })
        .get("/v1/explain", |req: Request| async move {
            Response::ok_json(&serde_json::json!({
                "name": req.query("name"),
                "client": req.query("client"),
            }))
        })
        .post("/v1/regions/{region}/weight", |req: Request| async move {
            #[derive(Deserialize)]
            struct Weight {
                weight: u32,
            }
            match req.json::<Weight>() {
                Ok(w) => Response::ok_json(&serde_json::json!({
                    "region": req.param("region"),
                    "weight": w.weight,
                    "peer_is_loopback": req.peer().ip().is_loopback(),
                })),
                Err(bad) => bad,
            }
        })
}

#[tokio::test]
async fn path_and_query_parameters_reach_the_handler() {
    let server = Running::start(router(), AdminConfig::default()).await;
    let reply = send(server.addr, "GET", "/v1/regions/eu%2Dwest", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), serde_json::json!({"region": "eu-west"}));

    let reply = send(
        server.addr,
        "GET",
        "/v1/explain?name=www.example.com&client=2001%3Adb8%3A%3A1",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        reply.json(),
        serde_json::json!({"name": "www.example.com", "client": "2001:db8::1"})
    );

    let reply = send(server.addr, "GET", "/v1/explain?name=%ff", &[], b"").await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("name"));
    server.stop().await;
}

#[tokio::test]
async fn json_bodies_are_read_and_bad_ones_get_400() {
    let server = Running::start(router(), AdminConfig::default()).await;
    let reply = send(
        server.addr,
        "POST",
        "/v1/regions/us-east/weight",
        &[("Content-Type", "application/json")],
        br#"{"weight": 7}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({"region": "us-east", "weight": 7, "peer_is_loopback": true})
    );
    let reply = send(
        server.addr,
        "POST",
        "/v1/regions/us-east/weight",
        &[],
        br#"{"weight": "heavy"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("expected JSON")
    );
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let config = AdminConfig {
        max_body_bytes: 100,
        ..AdminConfig::default()
    };
    let server = Running::start(router(), config).await;
    let big = vec![b' '; 101];
    let reply = send(server.addr, "POST", "/v1/regions/x/weight", &[], &big).await;
    assert_eq!(reply.status, 413);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("100 bytes")
    );

    // Chunked, so no Content-Length announces it: the limit still holds.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(b"POST /v1/regions/x/weight HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..3 {
        stream.write_all(b"40\r\n").await.unwrap();
        stream.write_all(&[b' '; 0x40]).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let reply = crate::support::read_reply(&mut stream).await;
    assert_eq!(reply.status, 413);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let server = Running::start(router(), AdminConfig::default()).await;
    let reply = send(server.addr, "GET", "/v2/nothing", &[], b"").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "no route for GET /v2/nothing"})
    );

    let reply = send(server.addr, "DELETE", "/v1/regions/eu-west", &[], b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET"));
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("DELETE is not allowed")
    );

    let reply = send(server.addr, "GET", "/v1/regions/eu-west/weight", &[], b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    server.stop().await;
}

#[tokio::test]
async fn healthz_is_built_in() {
    let server = Running::start(Router::new(), AdminConfig::default()).await;
    let reply = send(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
    server.stop().await;
}

#[tokio::test]
async fn handlers_choose_status_and_content_type() {
    let router = Router::new().get("/teapot", |_req: Request| async {
        Response::new(StatusCode::IM_A_TEAPOT, "text/x-tea", "short and stout")
    });
    let server = Running::start(router, AdminConfig::default()).await;
    let reply = send(server.addr, "GET", "/teapot", &[], b"").await;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.header("content-type"), Some("text/x-tea"));
    assert_eq!(reply.text(), "short and stout");
    server.stop().await;
}

#[tokio::test]
async fn handlers_read_request_headers_and_add_response_headers() {
    let router = Router::new().get("/v1/echo", |req: Request| async move {
        let nonce = req.header("x-gtm-nonce").unwrap_or("none").to_owned();
        Response::text(StatusCode::OK, "").with_header("x-gtm-echo", nonce)
    });
    let server = Running::start(router, AdminConfig::default()).await;
    let reply = send(
        server.addr,
        "GET",
        "/v1/echo",
        &[("X-Gtm-Nonce", "4a")],
        b"",
    )
    .await;
    assert_eq!(reply.header("x-gtm-echo"), Some("4a"));
    let reply = send(server.addr, "GET", "/v1/echo", &[], b"").await;
    assert_eq!(reply.header("x-gtm-echo"), Some("none"));
    server.stop().await;
}
