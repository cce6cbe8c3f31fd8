//! The L7 route matcher never panics on any host, path or headers, and a
//! rewrite keeps the path in origin form.
//!
//! The input is a request as the matcher sees it: the host, the path and
//! query, then `name: value` header lines, separated by newlines. The
//! routing table combines edge/src/l7/route.rs's unit-test table with the
//! rule edge/tests/it/l7/routing.rs adds (any host, `/static/`), so that
//! the seeds taken from those tests (fuzz/seeds/route_matcher/) reach
//! every kind of rule.
#![no_main]

use std::sync::OnceLock;

use edge::l7::route::Router;
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
    let (Some(host), Some(path)) = (lines.next(), lines.next()) else {
        return;
    };
    let (Ok(host), Ok(path)) = (std::str::from_utf8(host), std::str::from_utf8(path)) else {
        return;
    };
    let headers: Vec<(&[u8], &[u8])> = lines
        .filter_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| *value)
    };
    if let Some(matched) = router().route(host, path, header) {
        if path.starts_with('/') {
            assert!(matched.path_and_query.starts_with('/'));
        }
    }
});
