//! Any client-subnet option is accepted or refused, never a panic, and an
//! accepted one yields a truncated client network.
#![no_main]

use std::net::IpAddr;

use gslb::client::{Client, EcsQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: ([u8; 16], bool, u8, u8, [u8; 4])| {
    let (bytes, v6, source_prefix, scope_prefix, resolver) = input;
    let address = if v6 {
        IpAddr::from(bytes)
    } else {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    };
    let query = EcsQuery {
        address,
        source_prefix,
        scope_prefix,
    };
    if let Ok(client) = Client::new(IpAddr::from(resolver), Some(query)) {
        let limit = if client.network.addr().is_ipv4() {
            24
        } else {
            56
        };
        assert!(client.network.len() <= limit);
        assert!(client.echo_scope(u8::MAX) <= source_prefix);
    }
});
