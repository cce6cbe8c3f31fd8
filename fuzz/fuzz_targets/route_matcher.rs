//! The L7 route matcher never panics on any method, host, path or headers;
//! a rewrite keeps the path in origin form, a redirect's location starts
//! as its template does, and a request is refused as too large only when
//! its declared length passes the route's limit.
//!
//! The input is a request as the matcher sees it: the method, the host,
//! the path and query, then `name: value` header lines (a `content-length`
//! among them is its declared length), separated by newlines. The routing
//! table combines edge/src/l7/rules/route.rs's unit-test tables (host, path,
//! header, rewrite; method, path regex, query, cookie, header absence;
//! redirect, fixed response, body limit) with the rule
//! edge/tests/it/l7/routing.rs adds (any host, `/static/`), so that the
//! seeds taken from those tests (fuzz/seeds/route_matcher/) reach every
//! kind of rule.
#![no_main]

use std::sync::OnceLock;

use edge::l7::rules::fault::Fault;
use edge::l7::rules::route::{Decision, RequestView, Router};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let text = r#"
dns:
  nodes: [{ name: ns1, listen: ["127.0.0.1:1"] }]
  zones:
    - origin: example.com.
      soa: { mname: ns1, rname: hostmaster }
      records:
        - { name: "@", type: NS, value: ns1 }
        - { name: ns1, type: A, value: 127.0.0.1 }
regions:
  r:
    location: { lat: 0, lon: 0 }
    vip: { ipv4: 127.0.9.1 }
    l7:
      nodes: [{ name: n, address: 127.0.9.11, admin: "127.0.9.11:9100" }]
      routes:
        - { host: www.example.com, path: /, header: { name: X-Canary, value: "1" }, pool: canary }
        - { path: /beta, header: { name: x-beta }, pool: beta }
        - { host: www.example.com, path: /static/, pool: static }
        - { host: www.example.com, path: /api, pool: api }
        - { host: api.example.com, path: /v1, rewrite: /internal/v1, pool: internal }
        - { host: api.example.com, path: /strip/, rewrite: /, pool: strip }
        - { host: "*.apps.example.com", path: /, pool: apps }
        - { host: www.example.com, path: /, pool: web }
        - { path: /static/, pool: static }
        - { path: /m, methods: [POST, PUT], pool: api }
        - { path: /, path_regex: "^/items/[0-9]+$", pool: api }
        - { path: /q, query: { name: debug }, pool: beta }
        - { path: /q, query: { name: v, value: "a b" }, pool: api }
        - { path: /c, cookie: { name: beta, value: "1" }, pool: beta }
        - { path: /c, cookie: { name: session }, pool: web }
        - { path: /h, header: { name: x-legacy, absent: true }, pool: web, request_headers: { set: { x-env: a } } }
        - { path: /a, query: { name: v, absent: true }, pool: web }
        - { path: /a, cookie: { name: beta, absent: true }, pool: web }
        - { path: /upload, max_body: 10, pool: web }
        - { path: /ping, respond: { status: 200, body: pong } }
        - { scheme: http, redirect: { status: 308, location: "https://{host}{path}{query}" } }
      pools:
        canary: { servers: [{ addr: "127.0.9.101:9000" }] }
        beta: { servers: [{ addr: "127.0.9.102:9000" }] }
        static: { servers: [{ addr: "127.0.9.103:9000" }] }
        api: { servers: [{ addr: "127.0.9.104:9000" }] }
        internal: { servers: [{ addr: "127.0.9.105:9000" }] }
        strip: { servers: [{ addr: "127.0.9.106:9000" }] }
        apps: { servers: [{ addr: "127.0.9.107:9000" }] }
        web: { servers: [{ addr: "127.0.9.108:9000" }] }
"#;
        let topology = topology::parse(text, "fuzz").expect("the fuzz topology loads");
        let l7 = topology.regions[0].l7.as_ref().expect("an l7 tier");
        Router::new(&l7.routes)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&byte| byte == b'\n');
    let (Some(method), Some(host), Some(path)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let (Ok(method), Ok(host), Ok(path)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(host),
        std::str::from_utf8(path),
    ) else {
        return;
    };
    // Fields hyper would refuse (a bad name or value) are left out, as the
    // request paths never see them.
    let mut fields = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            fields.append(name, value);
        }
    }
    let content_length = fields
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let view = RequestView {
        method,
        scheme: "http",
        host,
        path_and_query: path,
        content_length,
        fields: &fields,
    };
    let Some(matched) = router().route(&view) else {
        return;
    };
    match matched.decision {
        Decision::Forward(forwarded) => {
            if path.starts_with('/') {
                assert!(forwarded.path_and_query.starts_with('/'));
            }
        }
        Decision::Redirect { location, .. } => {
            assert!(location.as_bytes().starts_with(b"https://"));
        }
        Decision::Refuse(Fault::PayloadTooLarge) => {
            assert!(content_length.is_some_and(|length| length > 10));
        }
        Decision::Respond(_) | Decision::Refuse(_) => {}
    }
});
