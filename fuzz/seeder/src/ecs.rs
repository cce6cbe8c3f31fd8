//! Inputs for `ecs_option`: the client subnets of gslb/src/client.rs's unit
//! tests and gslb/tests/it/geo_answers.rs, in the layout `arbitrary`
//! decodes the target's tuple from.

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::{Arbitrary, Unstructured};

use crate::Seed;

/// The target's input: address bytes (the first 4 when IPv4), IPv6?,
/// source prefix, scope prefix, resolver address.
type Input = ([u8; 16], bool, u8, u8, [u8; 4]);

/// (name, ECS address, source, scope, resolver).
const CASES: &[(&str, &str, u8, u8, &str)] = &[
    // client.rs: ecs_source_prefix_is_used_up_to_the_truncation
    ("v4-24", "203.0.113.0", 24, 0, "198.51.100.77"),
    ("v4-32-truncated", "203.0.113.77", 32, 0, "198.51.100.77"),
    ("v4-16", "203.0.0.0", 16, 0, "198.51.100.77"),
    (
        "v6-64-truncated",
        "2001:db8:aa:bb00::",
        64,
        0,
        "198.51.100.77",
    ),
    // client.rs: source_zero_falls_back_to_the_resolver_with_scope_zero
    ("v4-source-0", "0.0.0.0", 0, 0, "198.51.100.77"),
    // client.rs: malformed_ecs_is_refused_as_the_rfc_says
    ("v4-source-too-long", "203.0.113.0", 33, 0, "198.51.100.77"),
    ("v4-scope-in-query", "203.0.113.0", 24, 8, "198.51.100.77"),
    (
        "v4-bits-beyond-source",
        "203.0.113.1",
        24,
        0,
        "198.51.100.77",
    ),
    ("v6-source-too-long", "2001:db8::1", 129, 0, "198.51.100.77"),
    // geo_answers.rs: CLIENTS, as the test server sees them from loopback
    ("v4-24-uk", "81.2.69.0", 24, 0, "127.0.0.1"),
    ("v4-20-brazil", "200.160.0.0", 20, 0, "127.0.0.1"),
    ("v6-32-uk", "2a02:8800::", 32, 0, "127.0.0.1"),
    ("v6-56", "2001:db8:1::", 56, 0, "127.0.0.1"),
    // geo_answers.rs: malformed_ecs_gets_formerr
    ("v4-scope-16", "81.2.69.0", 24, 16, "127.0.0.1"),
    ("v4-20-bits-beyond-source", "81.2.69.0", 20, 0, "127.0.0.1"),
    ("v4-source-40", "81.2.69.0", 40, 0, "127.0.0.1"),
];

pub fn seeds() -> Vec<Seed> {
    CASES
        .iter()
        .map(|&(name, address, source, scope, resolver)| {
            let (bytes, v6) = match address.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => {
                    let mut bytes = [0; 16];
                    bytes[..4].copy_from_slice(&v4.octets());
                    (bytes, false)
                }
                IpAddr::V6(v6) => (v6.octets(), true),
            };
            let resolver = resolver.parse::<Ipv4Addr>().unwrap().octets();
            (
                name.to_owned(),
                encode(&(bytes, v6, source, scope, resolver)),
            )
        })
        .collect()
}

/// `arbitrary`'s layout of the tuple: the fields in order, a byte per `u8`
/// or `bool`. The last field takes the rest of the input, and an array
/// taking the rest reads its last element a second time from what remains,
/// hence the repeated final byte. Checked by decoding it back.
fn encode(input: &Input) -> Vec<u8> {
    let (bytes, v6, source, scope, resolver) = input;
    let mut out = bytes.to_vec();
    out.extend([u8::from(*v6), *source, *scope]);
    out.extend(resolver);
    out.push(resolver[3]);
    let decoded = Input::arbitrary_take_rest(Unstructured::new(&out));
    assert_eq!(
        decoded.as_ref(),
        Ok(input),
        "{out:02x?} decodes to its case"
    );
    out
}
