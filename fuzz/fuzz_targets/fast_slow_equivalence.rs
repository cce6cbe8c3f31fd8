//! Whatever the fast path answers, the full path answers byte for byte the
//! same, apart from the ID.
#![no_main]

use std::sync::{Arc, OnceLock};

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

fuzz_target!(|data: &[u8]| {
    let example = common::example();
    let src = "192.0.2.1:5353".parse().unwrap();
    let mut out = vec![0u8; 4096];
    if let Answer::Reply { len, .. } = tables().answer(data, src, 1232, &mut out) {
        let slow = gslb::dns::answer_bytes(
            &example.state,
            &example.health,
            &example.metrics,
            data,
            src,
            1232,
        )
        .expect("the full path answers what the fast path answers");
        assert_eq!(&out[2..len], &slow[2..], "fast and full replies differ");
    }
});
