//! The status page's server side over real sockets: the embedded page and
//! its headers, and `/v1/console` with every edge node of the example down
//! (nothing listens on their admin addresses here) — the page still gets
//! each continent's answer and says why each node is unreachable.

use std::time::{Duration, Instant};

use crate::support::TestServer;

fn http() -> reqwest::Client {
    probe::plain_http_client()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_embedded_and_the_console_survives_unreachable_nodes() {
    let server = TestServer::example().await;
    let client = http();
    let page = client
        .get(format!("http://{}/", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<script src=\"/console.js\" defer>"),
        "{html}"
    );
    for asset in ["/console.js", "/console.css"] {
        let response = client
            .get(format!("http://{}{asset}", server.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }

    let started = Instant::now();
    let console: serde_json::Value = client
        .get(format!("http://{}/v1/console", server.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "unreachable nodes held the console for {:?}",
        started.elapsed()
    );
    let edges = console["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 9, "{console}");
    for edge in edges {
        let why = edge["unreachable"].as_str().unwrap_or_default();
        assert!(why.contains("/v1/status"), "{edge}");
        assert!(edge["metrics"].is_null(), "{edge}");
    }
    assert_eq!(console["name"], "www.example.com.");
    let continents = console["continents"].as_array().unwrap();
    assert_eq!(continents.len(), 6, "{console}");
    for continent in continents {
        assert_eq!(continent["error"], serde_json::Value::Null, "{continent}");
        let regions = continent["regions"].as_array().unwrap();
        assert!(!regions.is_empty(), "{continent}");
    }
    assert_eq!(continents[0]["client"], "8.8.8.8");
    server.stop().await.unwrap();
}
