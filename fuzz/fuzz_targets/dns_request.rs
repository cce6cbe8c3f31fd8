//! Bytes in → a reply or nothing, never a panic; every reply parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let example = common::example();
    let src = "192.0.2.1:5353".parse().unwrap();
    if let Some(reply) = gslb::dns::answer_bytes(
        &example.state,
        &example.health,
        &example.metrics,
        data,
        src,
        1232,
    ) {
        hickory_proto::op::Message::from_vec(&reply).expect("every reply parses");
        assert!(reply.len() <= 1232, "UDP replies fit the limit");
    }
});
