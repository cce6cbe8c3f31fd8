//! Tests of the PROXY protocol codec: the specification's examples,
//! hand-built v2 byte vectors, truncation at every length, garbage and
//! lying lengths, and round-trip properties.

use super::*;
use proptest::prelude::*;

const SIG: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn complete(buf: &[u8]) -> (ProxyHeader, usize) {
    match decode(buf) {
        Ok(Decoded::Complete(h, n)) => (h, n),
        other => panic!("expected a complete header, got {other:?} for {buf:02x?}"),
    }
}

fn v2(body: &[&[u8]]) -> Vec<u8> {
    let mut v = SIG.to_vec();
    for part in body {
        v.extend_from_slice(part);
    }
    v
}

/// Every strict prefix of a valid header is `Incomplete` with a `needed`
/// that never overshoots the real remainder (exact for v2).
fn assert_prefixes_incomplete(bytes: &[u8]) {
    for k in 0..bytes.len() {
        match decode(&bytes[..k]) {
            Ok(Decoded::Incomplete { needed }) => {
                assert!(needed >= 1, "prefix {k}: needed 0");
                assert!(
                    needed <= bytes.len() - k,
                    "prefix {k}: needed {needed} overshoots {}",
                    bytes.len() - k
                );
                if k == 0 {
                    // Nothing tells the version yet: the shortest header.
                    assert_eq!(needed, V1_MIN_LEN);
                } else if bytes[0] == b'\r' {
                    let expected = if k < V2_FIXED_LEN {
                        V2_FIXED_LEN - k
                    } else {
                        bytes.len() - k
                    };
                    assert_eq!(needed, expected, "prefix {k}");
                }
            }
            other => panic!("prefix {k} of {bytes:02x?}: {other:?}"),
        }
    }
}

// ---- v1: the specification's examples ----

#[test]
fn spec_v1_tcp4_example_before_an_http_request() {
    let stream = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";
    let (h, n) = complete(stream);
    assert_eq!(n, 47);
    assert_eq!(&stream[n..n + 3], b"GET");
    let expected = ProxyHeader::v1_proxy(sa("192.168.0.1:56324"), sa("192.168.0.11:443"));
    assert_eq!(h, expected);
    assert_eq!(h.source(), Some(sa("192.168.0.1:56324")));
    assert_eq!(h.destination(), Some(sa("192.168.0.11:443")));
    assert_eq!(expected.encode().unwrap(), &stream[..47]);
    assert_prefixes_incomplete(&stream[..47]);
}

#[test]
fn spec_v1_unknown_short_form() {
    let (h, n) = complete(b"PROXY UNKNOWN\r\n");
    assert_eq!(n, 15);
    assert_eq!(h.addresses, Addresses::Unspecified);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!(h.version, Version::V1);
    assert_eq!(h.source(), None);
    assert_eq!(h.encode().unwrap(), b"PROXY UNKNOWN\r\n");
    assert_prefixes_incomplete(b"PROXY UNKNOWN\r\n");
}

#[test]
fn spec_v1_worst_case_107_bytes_and_one_more() {
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {f} {f} 65535 65535\r\n");
    assert_eq!(line.len(), 107);
    let (h, n) = complete(line.as_bytes());
    assert_eq!((h.addresses, n), (Addresses::Unspecified, 107));
    assert_prefixes_incomplete(line.as_bytes());

    let long = format!("PROXY UNKNOWN {f} {f} 65535 655350\r\n");
    assert_eq!(long.len(), 108);
    assert_eq!(decode(long.as_bytes()), Err(DecodeError::V1TooLong));
    // Found without waiting for the CRLF: 107 bytes without one suffice.
    assert_eq!(decode(&long.as_bytes()[..107]), Err(DecodeError::V1TooLong));
}

#[test]
fn spec_v1_maximum_tcp4_and_tcp6_lines() {
    let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(tcp4.len(), 56);
    let (h, n) = complete(tcp4);
    assert_eq!(n, 56);
    assert_eq!(h.encode().unwrap(), tcp4);

    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    let (h, n) = complete(tcp6.as_bytes());
    assert_eq!(n, 104);
    assert_eq!(h.encode().unwrap(), tcp6.as_bytes());
}

#[test]
fn v1_tcp6_line() {
    let line = b"PROXY TCP6 2001:db8::1 2001:db8::11 56324 443\r\n";
    let (h, n) = complete(line);
    assert_eq!(n, line.len());
    assert_eq!(
        h,
        ProxyHeader::v1_proxy(sa("[2001:db8::1]:56324"), sa("[2001:db8::11]:443"))
    );
    assert_eq!(h.encode().unwrap(), line);
    assert_prefixes_incomplete(line);
    // Upper-case hex is accepted too, and re-encoded in lower case.
    let (upper, _) = complete(b"PROXY TCP6 2001:DB8::1 2001:db8::11 56324 443\r\n");
    assert_eq!(upper, h);
}

#[test]
fn v1_mixed_families_are_written_as_tcp6_in_hex_groups() {
    let h = ProxyHeader::v1_proxy(sa("192.0.2.10:1234"), sa("[2001:db8::1]:443"));
    let bytes = h.encode().unwrap();
    assert_eq!(
        bytes,
        b"PROXY TCP6 ::ffff:c000:20a 2001:db8::1 1234 443\r\n"
    );
    assert_eq!(complete(&bytes).0, h);
}

#[test]
fn v1_rejects_what_the_spec_forbids() {
    let bad: &[(&[u8], &str)] = &[
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",
            "bare LF",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX",
            "bare CR",
        ),
        (
            b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",
            "double space",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",
            "trailing space",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
            "heading zero",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 0443\r\n",
            "heading zero",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
            "port range",
        ),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 +5632 443\r\n", "sign"),
        (
            b"PROXY TCP4 192.168.000.1 192.168.0.11 56324 443\r\n",
            "octal-looking",
        ),
        (
            b"PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n",
            "family",
        ),
        (
            b"PROXY TCP6 192.168.0.1 2001:db8::1 56324 443\r\n",
            "family",
        ),
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n", "3 fields"),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 7\r\n",
            "5 fields",
        ),
        (b"PROXY TCP4\r\n", "no fields"),
        (
            b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",
            "lower case",
        ),
        (b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n", "UDP"),
        (b"PROXY \r\n", "empty protocol"),
        (b"PROXY\r\n", "no space"),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 44\x003\r\n",
            "NUL",
        ),
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 44\xc3\xa9\r\n",
            "UTF-8",
        ),
        (b"PROXY \t\r\n", "tab"),
    ];
    for (input, why) in bad {
        let err = decode(input);
        assert!(
            err.is_err(),
            "{why}: {:?} decoded as {err:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn v1_errors_name_the_field() {
    let err = decode(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 0443\r\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("destination port") && msg.contains("heading zeroes"),
        "{msg}"
    );
    assert!(matches!(
        decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        Err(DecodeError::V1Byte {
            offset: 30,
            byte: b'\n'
        })
    ));
}

#[test]
fn v1_rejects_garbage_early() {
    // A non-printable byte is rejected without waiting for a CRLF.
    assert!(matches!(
        decode(b"PROXY TCP4 \x01"),
        Err(DecodeError::V1Byte {
            offset: 11,
            byte: 1
        })
    ));
    assert!(matches!(
        decode(b"PROXZ"),
        Err(DecodeError::NotProxyProtocol { .. })
    ));
    assert!(matches!(
        decode(b"PUT / HTTP/1.1\r\n"),
        Err(DecodeError::NotProxyProtocol { .. })
    ));
}

#[test]
fn v1_port_zero_and_extremes() {
    let (h, _) = complete(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
    assert_eq!(
        h.source(),
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
    );
}

// ---- v2: hand-built byte vectors ----

/// 192.168.0.1:56324 -> 192.168.0.11:443 as a v2 IPv4 address block.
const TCP4_BLOCK: [u8; 12] = [
    0xc0, 0xa8, 0x00, 0x01, // source 192.168.0.1
    0xc0, 0xa8, 0x00, 0x0b, // destination 192.168.0.11
    0xdc, 0x04, // source port 56324
    0x01, 0xbb, // destination port 443
];

#[test]
fn v2_tcp4_vector() {
    let bytes = v2(&[&[0x21, 0x11, 0x00, 0x0c], &TCP4_BLOCK]);
    assert_eq!(bytes.len(), 28);
    let h = ProxyHeader::v2_proxy(sa("192.168.0.1:56324"), sa("192.168.0.11:443"));
    assert_eq!(h.encode().unwrap(), bytes);
    assert_eq!(complete(&bytes), (h, 28));
    assert_prefixes_incomplete(&bytes);
}

#[test]
fn v2_tcp6_vector() {
    let bytes = v2(&[
        &[0x21, 0x21, 0x00, 0x24],
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ],
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11,
        ],
        &[0xdc, 0x04, 0x01, 0xbb],
    ]);
    assert_eq!(bytes.len(), 52);
    let h = ProxyHeader::v2_proxy(sa("[2001:db8::1]:56324"), sa("[2001:db8::11]:443"));
    assert_eq!(h.encode().unwrap(), bytes);
    assert_eq!(complete(&bytes), (h, 52));
    assert_prefixes_incomplete(&bytes);
}

#[test]
fn v2_mixed_families_map_ipv4_into_ipv6() {
    let h = ProxyHeader::v2_proxy(sa("192.0.2.10:1234"), sa("[2001:db8::1]:443"));
    let bytes = h.encode().unwrap();
    assert_eq!(bytes[13], 0x21);
    assert_eq!(
        &bytes[16..32],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10]
    );
}

#[test]
fn v2_l4_tier_header_vector() {
    let bytes = v2(&[
        &[0x21, 0x11, 0x00, 0x13], // PROXY, TCP4, 12 + 7 bytes
        &TCP4_BLOCK,
        &[0xe0, 0x00, 0x04, b'l', b'4', b'-', b'a'], // EDGE_L4 = "l4-a"
    ]);
    let h = ProxyHeader::from_l4(sa("192.168.0.1:56324"), sa("192.168.0.11:443"), "l4-a");
    assert_eq!(h.encode().unwrap(), bytes);
    let (decoded, n) = complete(&bytes);
    assert_eq!(n, bytes.len());
    assert_eq!(decoded.l4_node(), Some(&b"l4-a"[..]));
    assert_eq!(decoded.tlv(tlv_type::UNIQUE_ID), None);
    assert_eq!(decoded, h);
    assert_prefixes_incomplete(&bytes);
}

#[test]
fn v2_local_vector() {
    let bytes = v2(&[&[0x20, 0x00, 0x00, 0x00]]);
    assert_eq!(ProxyHeader::v2_local().encode().unwrap(), bytes);
    let (h, n) = complete(&bytes);
    assert_eq!(
        (h.command, h.addresses.clone(), n),
        (Command::Local, Addresses::Unspecified, 16)
    );
    assert_eq!(h.source(), None);
    assert_prefixes_incomplete(&bytes);
}

#[test]
fn v2_local_skips_whatever_block_it_carries() {
    // LOCAL with a TCP4 family and a block: accepted, block ignored, and the
    // length is honoured (payload starts after it).
    let mut bytes = v2(&[&[0x20, 0x11, 0x00, 0x0f], &TCP4_BLOCK, &[0xff, 0xff, 0xff]]);
    bytes.extend_from_slice(b"payload");
    let (h, n) = complete(&bytes);
    assert_eq!(h, ProxyHeader::v2_local());
    assert_eq!(&bytes[n..], b"payload");
    // Even a block too short for its family: LOCAL must be accepted.
    let (h, n) = complete(&v2(&[&[0x20, 0x21, 0x00, 0x01], &[0]]));
    assert_eq!((h, n), (ProxyHeader::v2_local(), 17));
}

#[test]
fn v2_unspec_vectors() {
    let bytes = v2(&[&[0x21, 0x00, 0x00, 0x00]]);
    let h = ProxyHeader {
        version: Version::V2,
        command: Command::Proxy,
        addresses: Addresses::Unspecified,
        tlvs: vec![],
    };
    assert_eq!(h.encode().unwrap(), bytes);
    assert_eq!(complete(&bytes), (h.clone(), 16));
    // Valid nibbles in combinations without a known layout fall back to
    // UNSPEC and skip the block, as the spec asks.
    for fam in [0x01, 0x02, 0x10, 0x20, 0x30] {
        let bytes = v2(&[&[0x21, fam, 0x00, 0x03], &[1, 2, 3]]);
        assert_eq!(complete(&bytes), (h.clone(), 19), "family byte {fam:#04x}");
    }
}

#[test]
fn v2_udp4_vector() {
    let bytes = v2(&[&[0x21, 0x12, 0x00, 0x0c], &TCP4_BLOCK]);
    let h = ProxyHeader {
        version: Version::V2,
        command: Command::Proxy,
        addresses: Addresses::Ipv4 {
            transport: Transport::Datagram,
            source: "192.168.0.1:56324".parse().unwrap(),
            destination: "192.168.0.11:443".parse().unwrap(),
        },
        tlvs: vec![],
    };
    assert_eq!(h.encode().unwrap(), bytes);
    assert_eq!(complete(&bytes), (h, 28));
}

#[test]
fn v2_unix_stream_vector() {
    let mut src = [0u8; 108];
    src[..9].copy_from_slice(b"/run/a.sk");
    let mut dst = [0u8; 108];
    dst[..9].copy_from_slice(b"/run/b.sk");
    let bytes = v2(&[&[0x21, 0x31, 0x00, 0xd8], &src, &dst]);
    assert_eq!(bytes.len(), 16 + 216);
    let h = ProxyHeader {
        version: Version::V2,
        command: Command::Proxy,
        addresses: Addresses::Unix {
            transport: Transport::Stream,
            source: UnixAddress::from_path(b"/run/a.sk").unwrap(),
            destination: UnixAddress::new(dst),
        },
        tlvs: vec![],
    };
    assert_eq!(h.encode().unwrap(), bytes);
    assert_eq!(complete(&bytes), (h.clone(), 232));
    assert_eq!(
        format!("{:?}", UnixAddress::new(src)),
        "UnixAddress(\"/run/a.sk\")"
    );
    assert!(UnixAddress::from_path(&[b'x'; 109]).is_none());
    assert!(matches!(
        ProxyHeader {
            version: Version::V1,
            ..h
        }
        .encode(),
        Err(EncodeError::V1NotTcp { what: "AF_UNIX" })
    ));
}

#[test]
fn v2_crc32c_vector_is_filled_and_checked() {
    let bytes = v2(&[
        &[0x21, 0x11, 0x00, 0x13],
        &TCP4_BLOCK,
        &[0x03, 0x00, 0x04, 0x1c, 0x1a, 0xe9, 0xc6], // CRC32C, computed independently
    ]);
    let h = ProxyHeader::v2_proxy(sa("192.168.0.1:56324"), sa("192.168.0.11:443"))
        .with_tlv(Tlv::new(tlv_type::CRC32C, [0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(h.encode().unwrap(), bytes);
    let (decoded, _) = complete(&bytes);
    assert_eq!(
        decoded.tlv(tlv_type::CRC32C),
        Some(&[0x1c, 0x1a, 0xe9, 0xc6][..])
    );
    assert_eq!(decoded.encode().unwrap(), bytes);

    let mut corrupt = bytes.clone();
    corrupt[19] ^= 0x01; // source address 192.168.0.0
    assert!(matches!(
        decode(&corrupt),
        Err(DecodeError::V2Crc32cMismatch {
            received: 0x1c1a_e9c6,
            ..
        })
    ));
    let short = v2(&[
        &[0x21, 0x11, 0x00, 0x12],
        &TCP4_BLOCK,
        &[0x03, 0x00, 0x03, 1, 2, 3],
    ]);
    assert_eq!(decode(&short), Err(DecodeError::V2Crc32cMalformed));
    let twice = ProxyHeader::v2_proxy(sa("192.168.0.1:1"), sa("192.168.0.11:2"))
        .with_tlv(Tlv::new(tlv_type::CRC32C, [0; 4]))
        .with_tlv(Tlv::new(tlv_type::CRC32C, [0; 4]));
    assert_eq!(twice.encode(), Err(EncodeError::Crc32cTlv));
}

#[test]
fn crc32c_reference_values() {
    // RFC 3720 B.4 and the usual check value.
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn v2_reads_any_tlv() {
    let bytes = v2(&[
        &[0x21, 0x11, 0x00, 0x1c],
        &TCP4_BLOCK,
        &[0x02, 0x00, 0x03, b'a', b'.', b'b'], // AUTHORITY
        &[0x04, 0x00, 0x00],                   // NOOP, empty
        &[0xf8, 0x00, 0x01, 0x2a],             // a future type
        &[0xee, 0x00, 0x00],                   // custom, empty, ends the header
    ]);
    let (h, n) = complete(&bytes);
    assert_eq!(n, bytes.len());
    assert_eq!(
        h.tlvs,
        vec![
            Tlv::new(tlv_type::AUTHORITY, *b"a.b"),
            Tlv::new(tlv_type::NOOP, []),
            Tlv::new(0xf8, [0x2a]),
            Tlv::new(0xee, []),
        ]
    );
    assert_eq!(h.encode().unwrap(), bytes);
}

// ---- v2: garbage, wrong versions, lying lengths ----

#[test]
fn v2_rejects_wrong_version_command_family() {
    let with = |b13: u8, b14: u8| v2(&[&[b13, b14, 0x00, 0x0c], &TCP4_BLOCK]);
    assert_eq!(
        decode(&with(0x11, 0x11)),
        Err(DecodeError::V2Version { version: 1 })
    );
    assert_eq!(
        decode(&with(0x31, 0x11)),
        Err(DecodeError::V2Version { version: 3 })
    );
    assert_eq!(
        decode(&with(0x22, 0x11)),
        Err(DecodeError::V2Command { command: 2 })
    );
    assert_eq!(
        decode(&with(0x2f, 0x11)),
        Err(DecodeError::V2Command { command: 15 })
    );
    assert_eq!(
        decode(&with(0x21, 0x41)),
        Err(DecodeError::V2Family { byte: 0x41 })
    );
    assert_eq!(
        decode(&with(0x21, 0x13)),
        Err(DecodeError::V2Family { byte: 0x13 })
    );
    // Decided as soon as the offending byte arrives.
    assert_eq!(
        decode(&with(0x11, 0x11)[..13]),
        Err(DecodeError::V2Version { version: 1 })
    );
    assert_eq!(
        decode(&with(0x21, 0x41)[..14]),
        Err(DecodeError::V2Family { byte: 0x41 })
    );
}

#[test]
fn v2_lengths_that_lie() {
    // Shorter than the IPv4 block: rejected from the fixed part alone.
    let short = v2(&[&[0x21, 0x11, 0x00, 0x0b]]);
    assert_eq!(
        decode(&short),
        Err(DecodeError::V2AddressesTruncated {
            family: "IPv4",
            length: 11,
            needed: 12
        })
    );
    let short6 = v2(&[&[0x21, 0x22, 0x00, 0x0c], &TCP4_BLOCK]);
    assert!(matches!(
        decode(&short6),
        Err(DecodeError::V2AddressesTruncated {
            family: "IPv6",
            needed: 36,
            ..
        })
    ));
    let short_unix = v2(&[&[0x21, 0x32, 0x00, 0xd7]]);
    assert!(matches!(
        decode(&short_unix),
        Err(DecodeError::V2AddressesTruncated {
            family: "AF_UNIX",
            needed: 216,
            ..
        })
    ));
    // Longer than what arrived: wait for it.
    let long = v2(&[&[0x21, 0x11, 0x00, 0x20], &TCP4_BLOCK]);
    assert_eq!(decode(&long), Ok(Decoded::Incomplete { needed: 20 }));
    // A TLV claiming more than the header holds.
    let tlv = v2(&[
        &[0x21, 0x11, 0x00, 0x11],
        &TCP4_BLOCK,
        &[0xe0, 0x00, 0x05, 1, 2],
    ]);
    assert_eq!(
        decode(&tlv),
        Err(DecodeError::V2TlvTruncated {
            offset: 28,
            needed: 8,
            available: 5
        })
    );
    // Leftover bytes too short for a TLV header.
    let stub = v2(&[&[0x21, 0x11, 0x00, 0x0e], &TCP4_BLOCK, &[0xe0, 0x00]]);
    assert_eq!(
        decode(&stub),
        Err(DecodeError::V2TlvTruncated {
            offset: 28,
            needed: 3,
            available: 2
        })
    );
    // Trailing bytes after the header belong to the payload, not to a TLV.
    let mut ok = v2(&[&[0x21, 0x11, 0x00, 0x0c], &TCP4_BLOCK]);
    ok.extend_from_slice(&[0xe0, 0xff, 0xff]);
    assert_eq!(complete(&ok).1, 28);
}

#[test]
fn v2_length_limit() {
    let limits = Limits { max_v2_length: 216 };
    let big = v2(&[&[0x21, 0x11, 0x00, 0xd9]]);
    assert_eq!(
        decode_with_limits(&big, limits),
        Err(DecodeError::V2TooLong {
            length: 217,
            limit: 216
        })
    );
    assert_eq!(decode(&big), Ok(Decoded::Incomplete { needed: 217 }));
    let msg = decode_with_limits(&big, limits).unwrap_err().to_string();
    assert!(msg.contains("max_v2_length"), "{msg}");
    // The protocol maximum is accepted by default.
    let mut max = v2(&[&[0x21, 0x11, 0xff, 0xff], &TCP4_BLOCK, &[0xe0, 0xff, 0xf0]]);
    max.resize(16 + 65535, 7);
    let (h, n) = complete(&max);
    assert_eq!((n, h.tlvs[0].value.len()), (16 + 65535, 65520));
    assert_eq!(h.encode().unwrap(), max);
}

#[test]
fn garbage_is_not_proxy_protocol() {
    let inputs: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc], // TLS ClientHello
        b"\r\n\r\nHTTP",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\0",
        b"SSH-2.0-OpenSSH_9.6\r\n",
    ];
    for input in inputs {
        let err = decode(input).unwrap_err();
        assert!(
            matches!(err, DecodeError::NotProxyProtocol { .. }),
            "{input:02x?}: {err:?}"
        );
    }
    let msg = decode(b"GET /").unwrap_err().to_string();
    assert!(
        msg.contains("474554202f") && msg.contains("must not expect it"),
        "{msg}"
    );
}

#[test]
fn empty_and_tiny_inputs_wait() {
    assert_eq!(decode(b""), Ok(Decoded::Incomplete { needed: 15 }));
    assert_eq!(decode(b"P"), Ok(Decoded::Incomplete { needed: 14 }));
    assert_eq!(decode(b"\r"), Ok(Decoded::Incomplete { needed: 15 }));
    assert_eq!(decode(&SIG), Ok(Decoded::Incomplete { needed: 4 }));
}

// ---- encoder refusals ----

#[test]
fn encoder_refuses_headers_a_receiver_could_not_read_back() {
    let tcp = ProxyHeader::v2_proxy(sa("192.0.2.1:1"), sa("192.0.2.2:2"));
    let mut out = b"keep".to_vec();

    let local_v1 = ProxyHeader {
        version: Version::V1,
        ..ProxyHeader::v2_local()
    };
    assert_eq!(local_v1.encode_into(&mut out), Err(EncodeError::V1Local));

    let tlv_v1 = ProxyHeader {
        version: Version::V1,
        ..tcp.clone()
    }
    .with_tlv(Tlv::new(0xe0, *b"x"));
    assert_eq!(
        tlv_v1.encode_into(&mut out),
        Err(EncodeError::V1Tlvs { count: 1 })
    );

    let udp_v1 = ProxyHeader {
        version: Version::V1,
        addresses: Addresses::Ipv4 {
            transport: Transport::Datagram,
            source: "192.0.2.1:1".parse().unwrap(),
            destination: "192.0.2.2:2".parse().unwrap(),
        },
        ..tcp.clone()
    };
    assert_eq!(
        udp_v1.encode_into(&mut out),
        Err(EncodeError::V1NotTcp { what: "UDP" })
    );

    let local_with = ProxyHeader {
        command: Command::Local,
        ..tcp.clone()
    };
    assert_eq!(
        local_with.encode_into(&mut out),
        Err(EncodeError::LocalWithPayload)
    );

    let unspec_tlv = ProxyHeader {
        addresses: Addresses::Unspecified,
        ..tcp.clone()
    }
    .with_tlv(Tlv::new(0xe0, *b"x"));
    assert_eq!(
        unspec_tlv.encode_into(&mut out),
        Err(EncodeError::TlvsWithoutAddresses { count: 1 })
    );

    let huge = tcp.clone().with_tlv(Tlv::new(0xe0, vec![0; 65521]));
    assert_eq!(
        huge.encode_into(&mut out),
        Err(EncodeError::V2TooLong { length: 65536 })
    );

    assert_eq!(out, b"keep", "a failed encode leaves the buffer alone");
    assert_eq!(tcp.encode_into(&mut out), Ok(28));
    assert_eq!(out.len(), 32);
    assert!(EncodeError::V1Local.to_string().contains("v2"));
}

// ---- IPv6 text form ----

#[test]
fn ipv6_hex_form_compresses_the_longest_zero_run() {
    let cases = [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
        ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1"),
        ("0:0:1:0:0:0:1:1", "0:0:1::1:1"),
        ("::ffff:192.0.2.10", "::ffff:c000:20a"),
        ("::192.0.2.10", "::c000:20a"),
    ];
    for (input, expected) in cases {
        let mut out = String::new();
        push_ipv6_hex(&mut out, &input.parse().unwrap());
        assert_eq!(out, expected, "{input}");
    }
}

// ---- properties ----

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![Just(Transport::Stream), Just(Transport::Datagram)]
}

fn v4() -> impl Strategy<Value = SocketAddrV4> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<u128>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
}

fn unix() -> impl Strategy<Value = UnixAddress> {
    proptest::collection::vec(any::<u8>(), 0..=108)
        .prop_map(|p| UnixAddress::from_path(&p).unwrap())
}

fn addresses() -> impl Strategy<Value = Addresses> {
    prop_oneof![
        (transport(), v4(), v4()).prop_map(|(transport, source, destination)| Addresses::Ipv4 {
            transport,
            source,
            destination
        }),
        (transport(), v6(), v6()).prop_map(|(transport, source, destination)| Addresses::Ipv6 {
            transport,
            source,
            destination
        }),
        (transport(), unix(), unix()).prop_map(|(transport, source, destination)| {
            Addresses::Unix {
                transport,
                source,
                destination,
            }
        }),
    ]
}

fn tlvs() -> impl Strategy<Value = Vec<Tlv>> {
    proptest::collection::vec(
        (
            any::<u8>().prop_filter("CRC32C values are computed", |&k| k != tlv_type::CRC32C),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(kind, value)| Tlv { kind, value }),
        0..6,
    )
}

fn header() -> impl Strategy<Value = ProxyHeader> {
    let v1 = prop_oneof![
        Just(Addresses::Unspecified),
        (v4(), v4()).prop_map(|(source, destination)| Addresses::Ipv4 {
            transport: Transport::Stream,
            source,
            destination
        }),
        (v6(), v6()).prop_map(|(source, destination)| Addresses::Ipv6 {
            transport: Transport::Stream,
            source,
            destination
        }),
    ]
    .prop_map(|addresses| ProxyHeader {
        version: Version::V1,
        command: Command::Proxy,
        addresses,
        tlvs: vec![],
    });
    let v2 = (addresses(), tlvs()).prop_map(|(addresses, tlvs)| ProxyHeader {
        version: Version::V2,
        command: Command::Proxy,
        addresses,
        tlvs,
    });
    let unspec = Just(ProxyHeader {
        version: Version::V2,
        command: Command::Proxy,
        addresses: Addresses::Unspecified,
        tlvs: vec![],
    });
    prop_oneof![v1, v2, unspec, Just(ProxyHeader::v2_local())]
}

proptest! {
    #[test]
    fn round_trip(h in header(), trailing in proptest::collection::vec(any::<u8>(), 0..32)) {
        let bytes = h.encode().unwrap();
        let mut stream = bytes.clone();
        stream.extend_from_slice(&trailing);
        prop_assert_eq!(decode(&stream), Ok(Decoded::Complete(h.clone(), bytes.len())));
        if h.version == Version::V1 {
            prop_assert!(bytes.len() <= V1_MAX_LEN);
        }
    }

    #[test]
    fn every_truncation_is_incomplete(h in header()) {
        let bytes = h.encode().unwrap();
        assert_prefixes_incomplete(&bytes);
    }

    #[test]
    fn ipv6_hex_form_parses_back(ip in any::<u128>()) {
        let ip = Ipv6Addr::from(ip);
        let mut out = String::new();
        push_ipv6_hex(&mut out, &ip);
        prop_assert_eq!(out.parse::<Ipv6Addr>(), Ok(ip));
        prop_assert!(out.len() <= 39);
        if ip.to_ipv4_mapped().is_none() {
            prop_assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_answers_are_consistent(
        start in prop_oneof![
            Just(Vec::new()),
            Just(V2_SIGNATURE.to_vec()),
            Just(b"PROXY ".to_vec()),
            Just(b"PROXY TCP4 ".to_vec()),
        ],
        ver in prop_oneof![Just(vec![0x21u8]), Just(vec![0x20u8]), Just(vec![])],
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut buf = start;
        buf.extend_from_slice(&ver);
        buf.extend_from_slice(&tail);
        if let Ok(Decoded::Complete(h, n)) = decode(&buf) {
            prop_assert!(n <= buf.len());
            prop_assert_eq!(decode(&buf[..n]), Ok(Decoded::Complete(h, n)));
            for k in 0..n {
                let incomplete = matches!(decode(&buf[..k]), Ok(Decoded::Incomplete { .. }));
                prop_assert!(incomplete, "prefix {} of a complete header", k);
            }
        }
        // An error is final: more bytes never turn it into a header.
        if decode(&buf).is_err() {
            let mut more = buf.clone();
            more.extend_from_slice(b"\r\n");
            prop_assert!(decode(&more).is_err());
        }
    }
}
