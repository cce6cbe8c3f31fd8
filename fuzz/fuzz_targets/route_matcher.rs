//! The L7 route matcher never panics on any host, path or header, and a
//! rewrite keeps the path in origin form.
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
        - { host: api.example.com, path: /v1/, rewrite: /, pool: a }
        - { host: "*.example.com", path: /static/, pool: b }
        - { path: /canary/, header: { name: x-canary, value: "1" }, pool: a }
        - { pool: b }
      pools:
        a: { servers: [{ addr: "127.0.9.101:9000" }] }
        b: { servers: [{ addr: "127.0.9.102:9000" }] }
"#;
        let topology = topology::parse(text, "fuzz").expect("the fuzz topology loads");
        let l7 = topology.regions[0].l7.as_ref().expect("an l7 tier");
        Router::new(&l7.routes)
    })
}

fuzz_target!(|input: (String, String, Vec<u8>)| {
    let (host, path, header) = input;
    if let Some(matched) = router().route(&host, &path, |_| Some(header.as_slice())) {
        if path.starts_with('/') {
            assert!(matched.path_and_query.starts_with('/'));
        }
    }
});
