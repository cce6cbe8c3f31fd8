//! Headers for `proxy_protocol`: the byte vectors of edge's codec tests
//! (edge/src/proxy_protocol/tests.rs) and the headers the L4 tier and the
//! L7 tests send (edge/tests/it/l4/proxy.rs, edge/tests/it/l7/routing.rs).

use crate::Seed;

const SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

/// 192.168.0.1:56324 -> 192.168.0.11:443 as a v2 IPv4 address block.
const TCP4_BLOCK: [u8; 12] = [
    0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x0b, 0xdc, 0x04, 0x01, 0xbb,
];

/// 2001:db8::1:56324 -> 2001:db8::11:443 as a v2 IPv6 address block.
const TCP6_BLOCK: [u8; 36] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, //
    0xdc, 0x04, 0x01, 0xbb,
];

const V1: &[(&str, &[u8])] = &[
    // tests.rs: the specification's examples and the longest lines
    (
        "v1-tcp4-then-http",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n",
    ),
    ("v1-unknown", b"PROXY UNKNOWN\r\n"),
    (
        "v1-unknown-107-bytes",
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    ),
    (
        "v1-unknown-108-bytes",
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655350\r\n",
    ),
    ("v1-tcp4-longest", b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
    (
        "v1-tcp6-longest",
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    ),
    ("v1-tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::11 56324 443\r\n"),
    ("v1-tcp6-upper-case", b"PROXY TCP6 2001:DB8::1 2001:db8::11 56324 443\r\n"),
    ("v1-tcp6-mapped", b"PROXY TCP6 ::ffff:c000:20a 2001:db8::1 1234 443\r\n"),
    ("v1-tcp4-extremes", b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
    // l7/routing.rs: v1 before a request
    (
        "v1-tcp4-l7-test",
        b"PROXY TCP4 198.51.100.24 192.0.2.1 41001 80\r\nGET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    ),
    // tests.rs: v1_rejects_what_the_spec_forbids, v1_rejects_garbage_early
    ("v1-bare-lf", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n"),
    ("v1-bare-cr", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX"),
    ("v1-double-space", b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n"),
    ("v1-trailing-space", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n"),
    ("v1-heading-zero", b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n"),
    ("v1-port-range", b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n"),
    ("v1-sign", b"PROXY TCP4 192.168.0.1 192.168.0.11 +5632 443\r\n"),
    ("v1-octal-looking", b"PROXY TCP4 192.168.000.1 192.168.0.11 56324 443\r\n"),
    ("v1-family-tcp4", b"PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n"),
    ("v1-family-tcp6", b"PROXY TCP6 192.168.0.1 2001:db8::1 56324 443\r\n"),
    ("v1-3-fields", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n"),
    ("v1-5-fields", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 7\r\n"),
    ("v1-no-fields", b"PROXY TCP4\r\n"),
    ("v1-lower-case", b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n"),
    ("v1-udp4", b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
    ("v1-empty-protocol", b"PROXY \r\n"),
    ("v1-no-space", b"PROXY\r\n"),
    ("v1-nul", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 44\x003\r\n"),
    ("v1-utf8", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 44\xc3\xa9\r\n"),
    ("v1-tab", b"PROXY \t\r\n"),
    ("v1-control-byte", b"PROXY TCP4 \x01"),
    ("v1-proxz", b"PROXZ"),
    // tests.rs: garbage_is_not_proxy_protocol, empty_and_tiny_inputs_wait
    ("garbage-http", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    ("garbage-tls", &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
    ("garbage-crlf-http", b"\r\n\r\nHTTP"),
    ("garbage-near-signature", b"\r\n\r\n\0\r\nQUIT\r"),
    ("garbage-nul", b"\0"),
    ("garbage-ssh", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("tiny-p", b"P"),
    ("tiny-cr", b"\r"),
];

/// v2 headers: (name, bytes after the signature).
fn v2() -> Vec<(&'static str, Vec<u8>)> {
    let with = |head: [u8; 4], rest: &[&[u8]]| -> Vec<u8> {
        let mut bytes = head.to_vec();
        rest.iter().for_each(|part| bytes.extend_from_slice(part));
        bytes
    };
    let mut unix = [0u8; 216];
    unix[..9].copy_from_slice(b"/run/a.sk");
    unix[108..117].copy_from_slice(b"/run/b.sk");
    let mut local_block = with([0x20, 0x11, 0x00, 0x0f], &[&TCP4_BLOCK, &[0xff; 3]]);
    local_block.extend_from_slice(b"payload");
    let mut trailing = with([0x21, 0x11, 0x00, 0x0c], &[&TCP4_BLOCK]);
    trailing.extend_from_slice(&[0xe0, 0xff, 0xff]);
    // l4/proxy.rs and l7/routing.rs: what the L4 tier sends, then a request;
    // 198.51.100.23:41000 -> 192.0.2.1:80 with EDGE_L4 = "l4a".
    let mut from_l4 = with(
        [0x21, 0x11, 0x00, 0x12],
        &[
            &[198, 51, 100, 23, 192, 0, 2, 1, 0xa0, 0x28, 0x00, 0x50],
            &[0xe0, 0x00, 0x03, b'l', b'4', b'a'],
        ],
    );
    from_l4.extend_from_slice(b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    vec![
        // tests.rs: hand-built vectors
        ("v2-tcp4", with([0x21, 0x11, 0x00, 0x0c], &[&TCP4_BLOCK])),
        ("v2-tcp6", with([0x21, 0x21, 0x00, 0x24], &[&TCP6_BLOCK])),
        (
            "v2-tcp4-l4-tlv",
            with(
                [0x21, 0x11, 0x00, 0x13],
                &[&TCP4_BLOCK, &[0xe0, 0x00, 0x04, b'l', b'4', b'-', b'a']],
            ),
        ),
        ("v2-l4-then-http", from_l4),
        ("v2-local", with([0x20, 0x00, 0x00, 0x00], &[])),
        ("v2-local-with-block", local_block),
        (
            "v2-local-short-block",
            with([0x20, 0x21, 0x00, 0x01], &[&[0]]),
        ),
        ("v2-unspec", with([0x21, 0x00, 0x00, 0x00], &[])),
        (
            "v2-unspec-skipped-block",
            with([0x21, 0x30, 0x00, 0x03], &[&[1, 2, 3]]),
        ),
        ("v2-udp4", with([0x21, 0x12, 0x00, 0x0c], &[&TCP4_BLOCK])),
        ("v2-unix-stream", with([0x21, 0x31, 0x00, 0xd8], &[&unix])),
        (
            "v2-crc32c",
            with(
                [0x21, 0x11, 0x00, 0x13],
                &[&TCP4_BLOCK, &[0x03, 0x00, 0x04, 0x1c, 0x1a, 0xe9, 0xc6]],
            ),
        ),
        (
            "v2-crc32c-malformed",
            with(
                [0x21, 0x11, 0x00, 0x12],
                &[&TCP4_BLOCK, &[0x03, 0x00, 0x03, 1, 2, 3]],
            ),
        ),
        (
            "v2-any-tlv",
            with(
                [0x21, 0x11, 0x00, 0x1c],
                &[
                    &TCP4_BLOCK,
                    &[0x02, 0x00, 0x03, b'a', b'.', b'b'],
                    &[0x04, 0x00, 0x00],
                    &[0xf8, 0x00, 0x01, 0x2a],
                    &[0xee, 0x00, 0x00],
                ],
            ),
        ),
        // tests.rs: wrong versions, commands, families and lying lengths
        (
            "v2-version-1",
            with([0x11, 0x11, 0x00, 0x0c], &[&TCP4_BLOCK]),
        ),
        (
            "v2-command-2",
            with([0x22, 0x11, 0x00, 0x0c], &[&TCP4_BLOCK]),
        ),
        (
            "v2-family-0x41",
            with([0x21, 0x41, 0x00, 0x0c], &[&TCP4_BLOCK]),
        ),
        (
            "v2-family-0x13",
            with([0x21, 0x13, 0x00, 0x0c], &[&TCP4_BLOCK]),
        ),
        ("v2-ipv4-block-short", with([0x21, 0x11, 0x00, 0x0b], &[])),
        (
            "v2-ipv6-block-short",
            with([0x21, 0x22, 0x00, 0x0c], &[&TCP4_BLOCK]),
        ),
        ("v2-unix-block-short", with([0x21, 0x32, 0x00, 0xd7], &[])),
        (
            "v2-longer-than-sent",
            with([0x21, 0x11, 0x00, 0x20], &[&TCP4_BLOCK]),
        ),
        (
            "v2-tlv-truncated",
            with(
                [0x21, 0x11, 0x00, 0x11],
                &[&TCP4_BLOCK, &[0xe0, 0x00, 0x05, 1, 2]],
            ),
        ),
        (
            "v2-tlv-stub",
            with([0x21, 0x11, 0x00, 0x0e], &[&TCP4_BLOCK, &[0xe0, 0x00]]),
        ),
        ("v2-trailing-payload", trailing),
        ("v2-over-limit", with([0x21, 0x11, 0x00, 0xd9], &[])),
        ("v2-signature-only", Vec::new()),
    ]
}

pub fn seeds() -> Vec<Seed> {
    let v1 = V1
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()));
    let v2 = v2().into_iter().map(|(name, body)| {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend(body);
        (name.to_owned(), bytes)
    });
    v1.chain(v2).collect()
}
