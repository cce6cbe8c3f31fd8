//! Reading a query the fast path can answer, without allocating: the
//! common shape only — one question, class IN, no records but an optional
//! OPT (EDNS version 0, no flag but DO) carrying at most one valid client
//! subnet option. Anything else is left to the slow path, which decides what the
//! message deserves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use topology::name::MAX_NAME_LEN;

use crate::client::EcsQuery;

/// EDNS option codes the fast path accepts: client subnet, which it
/// answers, and cookie and padding, which the slow path also ignores
/// (hickory keeps them as opaque bytes).
const OPTION_ECS: u16 = 8;
const OPTION_COOKIE: u16 = 10;
const OPTION_PADDING: u16 = 12;
/// The DO flag of the OPT record's flags (RFC 3225).
pub(crate) const DO: u16 = 0x8000;

/// Query types the fast path answers; every other type goes to the slow
/// path. Types the lookup treats specially (DS, ANY, OPT, zone transfers)
/// are deliberately absent.
pub const FAST_QTYPES: [u16; 13] = [1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 64, 65, 257];

/// A query in the shape the fast path answers.
pub(crate) struct Query<'a> {
    /// The whole datagram.
    pub packet: &'a [u8],
    /// The question name as sent (wire form, any case).
    pub qname: &'a [u8],
    /// The question name in lowercase.
    lower: [u8; MAX_NAME_LEN],
    /// Bit `i` set when a label starts at offset `i` of the name.
    label_starts: [u64; 4],
    /// QTYPE.
    pub qtype: u16,
    /// Offset just past the question (where the answer section goes).
    pub question_end: usize,
    /// The OPT record, if any.
    pub edns: Option<Edns>,
}

/// What the query's OPT record says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edns {
    /// The requestor's UDP payload size (at least 512).
    pub payload: u16,
    /// The DO bit: the reply carries DNSSEC records ([`super::signed`]).
    pub dnssec_ok: bool,
    /// The client subnet option, if present.
    pub ecs: Option<Ecs>,
}

/// A client subnet option as sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ecs {
    /// The option as the client wrote it.
    pub query: EcsQuery,
    /// Offset of the option's data (FAMILY onwards) in the packet.
    pub data_at: usize,
    /// Length of the option's data.
    pub data_len: usize,
}

impl<'a> Query<'a> {
    /// Reads `packet`, or `None` when it is not in the common shape.
    pub fn parse(packet: &'a [u8]) -> Option<Query<'a>> {
        let header = packet.get(..12)?;
        // QR clear, opcode QUERY; AA, TC, RD, Z, AD, CD and RCODE bits of a
        // query do not change the reply beyond RD and CD, copied later.
        if header[2] & 0xF8 != 0 {
            return None;
        }
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        if count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
            return None;
        }
        let mut lower = [0u8; MAX_NAME_LEN];
        let mut label_starts = [0u64; 4];
        let mut at = 12;
        loop {
            let len = *packet.get(at)? as usize;
            let offset = at - 12;
            // Compression pointers and the reserved label types are left to
            // the slow path, as are over-long names.
            if len > 63 || offset + 1 + len > MAX_NAME_LEN {
                return None;
            }
            label_starts[offset / 64] |= 1 << (offset % 64);
            lower[offset] = len as u8;
            if len == 0 {
                at += 1;
                break;
            }
            let label = packet.get(at + 1..at + 1 + len)?;
            for (slot, byte) in lower[offset + 1..offset + 1 + len].iter_mut().zip(label) {
                *slot = byte.to_ascii_lowercase();
            }
            at += 1 + len;
        }
        let qname = &packet[12..at];
        let fixed = packet.get(at..at + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        if qclass != 1 || !FAST_QTYPES.contains(&qtype) {
            return None;
        }
        let question_end = at + 4;
        let edns = if count(10) == 1 {
            Some(parse_opt(packet, question_end)?)
        } else if question_end == packet.len() {
            None
        } else {
            // Trailing bytes: the slow path decides.
            return None;
        };
        Some(Query {
            packet,
            qname,
            lower,
            label_starts,
            qtype,
            question_end,
            edns,
        })
    }

    /// The question name in lowercase wire form.
    pub fn lower(&self) -> &[u8] {
        &self.lower[..self.qname.len()]
    }

    /// Whether a label of the question name starts at `offset`.
    pub fn label_starts_at(&self, offset: usize) -> bool {
        offset < MAX_NAME_LEN && self.label_starts[offset / 64] & (1 << (offset % 64)) != 0
    }

    /// The message ID.
    pub fn id(&self) -> [u8; 2] {
        [self.packet[0], self.packet[1]]
    }

    /// The RD bit (in the first flags byte's position).
    pub fn rd(&self) -> u8 {
        self.packet[2] & 0x01
    }

    /// The CD bit (in the second flags byte's position).
    pub fn cd(&self) -> u8 {
        self.packet[3] & 0x10
    }
}

/// Reads the OPT record at `at`, which must end the packet.
fn parse_opt(packet: &[u8], at: usize) -> Option<Edns> {
    let fixed = packet.get(at..at + 11)?;
    // Root owner, type OPT.
    if fixed[0] != 0 || fixed[1..3] != [0, 41] {
        return None;
    }
    let payload = u16::from_be_bytes([fixed[3], fixed[4]]).max(512);
    let (extended_rcode, version) = (fixed[5], fixed[6]);
    let flags = u16::from_be_bytes([fixed[7], fixed[8]]);
    // BADVERS and unknown flags go to the slow path.
    if extended_rcode != 0 || version != 0 || flags & !DO != 0 {
        return None;
    }
    let rdlen = u16::from_be_bytes([fixed[9], fixed[10]]) as usize;
    let start = at + 11;
    if start + rdlen != packet.len() {
        return None;
    }
    let mut ecs = None;
    let mut at = start;
    while at < packet.len() {
        let head = packet.get(at..at + 4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let data = packet.get(at + 4..at + 4 + len)?;
        match code {
            OPTION_ECS if ecs.is_none() => {
                ecs = Some(Ecs {
                    query: parse_ecs(data)?,
                    data_at: at + 4,
                    data_len: len,
                });
            }
            OPTION_COOKIE | OPTION_PADDING => {}
            _ => return None,
        }
        at += 4 + len;
    }
    Some(Edns {
        payload,
        dnssec_ok: flags & DO != 0,
        ecs,
    })
}

/// A client subnet option's data, if exactly as RFC 7871 lays it out (the
/// values themselves are checked by [`crate::client::Client::new`]).
fn parse_ecs(data: &[u8]) -> Option<EcsQuery> {
    let (head, address) = (data.get(..4)?, &data[4.min(data.len())..]);
    let family = u16::from_be_bytes([head[0], head[1]]);
    let (source_prefix, scope_prefix) = (head[2], head[3]);
    let width = match family {
        1 => 4,
        2 => 16,
        _ => return None,
    };
    if usize::from(source_prefix) > width * 8
        || address.len() != usize::from(source_prefix).div_ceil(8)
    {
        return None;
    }
    let address = if width == 4 {
        let mut octets = [0u8; 4];
        octets[..address.len()].copy_from_slice(address);
        IpAddr::V4(Ipv4Addr::from(octets))
    } else {
        let mut octets = [0u8; 16];
        octets[..address.len()].copy_from_slice(address);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    Some(EcsQuery {
        address,
        source_prefix,
        scope_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, additional: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        if !additional.is_empty() {
            packet[11] = 1;
        }
        packet.extend_from_slice(name);
        packet.extend_from_slice(&qtype.to_be_bytes());
        packet.extend_from_slice(&[0, 1]);
        packet.extend_from_slice(additional);
        packet
    }

    const WWW: &[u8] = b"\x03WwW\x07example\x03COM\x00";

    #[test]
    fn a_plain_query_is_read_with_its_name_lowercased() {
        let packet = query(WWW, 1, &[]);
        let q = Query::parse(&packet).unwrap();
        assert_eq!(q.lower(), b"\x03www\x07example\x03com\x00");
        assert_eq!(q.qname, WWW);
        assert!(q.label_starts_at(0) && q.label_starts_at(4) && q.label_starts_at(12));
        assert!(!q.label_starts_at(1));
        assert_eq!(q.rd(), 1);
        assert!(q.edns.is_none());
    }

    #[test]
    fn an_ecs_option_is_read() {
        let opt = [
            0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 81, 2, 69,
        ];
        let packet = query(WWW, 1, &opt);
        let q = Query::parse(&packet).unwrap();
        let edns = q.edns.unwrap();
        assert_eq!(edns.payload, 4096);
        let ecs = edns.ecs.unwrap();
        assert_eq!(ecs.query.address, IpAddr::from([81, 2, 69, 0]));
        assert_eq!(ecs.query.source_prefix, 24);
        assert_eq!(&packet[ecs.data_at..ecs.data_at + ecs.data_len], &opt[15..]);
    }

    #[test]
    fn the_do_bit_is_read() {
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];
        let edns = Query::parse(&query(WWW, 1, &opt)).unwrap().edns.unwrap();
        assert!(edns.dnssec_ok);
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0];
        assert!(
            !Query::parse(&query(WWW, 1, &opt))
                .unwrap()
                .edns
                .unwrap()
                .dnssec_ok
        );
    }

    #[test]
    fn unusual_shapes_are_left_to_the_slow_path() {
        // A flag besides DO.
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0x40, 0, 0, 0];
        assert!(Query::parse(&query(WWW, 1, &opt)).is_none());
        // EDNS version 1.
        let opt = [0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0];
        assert!(Query::parse(&query(WWW, 1, &opt)).is_none());
        // An unknown option.
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0];
        assert!(Query::parse(&query(WWW, 1, &opt)).is_none());
        // ECS with too many address bytes.
        let opt = [
            0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 12, 0, 8, 0, 8, 0, 1, 24, 0, 81, 2, 69, 0,
        ];
        assert!(Query::parse(&query(WWW, 1, &opt)).is_none());
        // ANY, DS, a compression pointer, trailing bytes, a response.
        assert!(Query::parse(&query(WWW, 255, &[])).is_none());
        assert!(Query::parse(&query(WWW, 43, &[])).is_none());
        assert!(Query::parse(&query(b"\xc0\x0c", 1, &[])).is_none());
        let mut trailing = query(WWW, 1, &[]);
        trailing.push(0);
        assert!(Query::parse(&trailing).is_none());
        let mut response = query(WWW, 1, &[]);
        response[2] |= 0x80;
        assert!(Query::parse(&response).is_none());
    }
}
