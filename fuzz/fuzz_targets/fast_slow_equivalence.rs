//! Whatever the fast path answers, the full path answers byte for byte the
//! same, apart from the ID: for the example as it is, and for the example
//! signed (DO queries then get signed templates).
#![no_main]

use std::sync::{Arc, OnceLock};

use gslb::ServingState;
use gslb::fast::{Answer, Tables};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let example = common::example();
        Tables::build(example.state.clone(), Arc::clone(&example.health), None)
    })
}

/// The example with its zone signed by a key made for the run, and its
/// tables.
fn signed() -> &'static (Arc<ServingState>, Tables) {
    static SIGNED: OnceLock<(Arc<ServingState>, Tables)> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let example = common::example();
        let dir = std::env::temp_dir().join(format!("fuzz-signed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let origin = topology::DomainName::parse_absolute("example.com.").expect("origin");
        let key = topology::dnssec::ZoneKey::generate(
            &origin,
            topology::dnssec::Algorithm::EcdsaP256Sha256,
            &dir,
        )
        .expect("a key");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/three-regions.yaml"
        );
        let text = std::fs::read_to_string(path).expect("the example reads");
        let text = text.replacen(
            "      records:\n",
            &format!(
                "      dnssec: {{ keys: [\"{}\"] }}\n      records:\n",
                key.path().display()
            ),
            1,
        );
        let topology = topology::parse(&text, "signed example").expect("the example signs");
        let state = Arc::new(
            ServingState::new(Arc::new(topology), example.state.geoip.clone(), None)
                .expect("the key reads"),
        );
        let _ = std::fs::remove_dir_all(&dir);
        let tables = Tables::build(state.clone(), Arc::clone(&example.health), None);
        (state, tables)
    })
}

fuzz_target!(|data: &[u8]| {
    let example = common::example();
    let (signed_state, signed_tables) = signed();
    let src = "192.0.2.1:5353".parse().unwrap();
    let mut out = vec![0u8; 4096];
    for (state, tables) in [(&example.state, tables()), (signed_state, signed_tables)] {
        if let Answer::Reply { len, .. } = tables.answer(data, src, 1232, &mut out) {
            let slow = gslb::dns::answer_bytes(
                state,
                &example.health,
                &example.metrics,
                data,
                src,
                1232,
            )
            .expect("the full path answers what the fast path answers");
            assert_eq!(&out[2..len], &slow[2..], "fast and full replies differ");
        }
    }
});
