//! PROXY protocol v1 and v2: how the client's addresses travel from the L4
//! tier to the L7 tier.
//!
//! The L4 tier terminates TCP, so the L7 node would otherwise see the L4
//! node as the client. Like HAProxy's `send-proxy-v2`, the L4 tier writes a
//! PROXY protocol header at the start of each upstream connection and the L7
//! tier reads it before anything else. The format follows HAProxy's
//! specification (`doc/proxy-protocol.txt`, 2.9):
//!
//! - **v1** is one US-ASCII line, at most 107 bytes with its CRLF:
//!   `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n`, `PROXY TCP6 …`, or
//!   `PROXY UNKNOWN …\r\n` (the rest of an UNKNOWN line is ignored).
//! - **v2** is binary: the 12-byte signature [`V2_SIGNATURE`], a byte with
//!   the version (high nibble, always 2) and command (low nibble: 0 LOCAL,
//!   1 PROXY), a byte with the address family (high nibble: 0 UNSPEC,
//!   1 INET, 2 INET6, 3 UNIX) and transport (low nibble: 0 UNSPEC, 1 STREAM,
//!   2 DGRAM), a big-endian `u16` length of what follows, then the address
//!   block (12, 36 or 216 bytes: source address, destination address,
//!   source port, destination port, all in network order) and TLVs
//!   (`type: u8, length: u16 BE, value`).
//!
//! **What the L4 tier sends** ([`ProxyHeader::from_l4`]): v2, PROXY, TCP over
//! the client's family, and one TLV of type [`tlv_type::EDGE_L4`] (0xE0, the
//! first of the spec's "custom application" range 0xE0–0xEF) whose value is
//! the L4 node's name in UTF-8. It marks the connection as relayed by our
//! L4 tier and tells the L7 logs which L4 node relayed it. No
//! `PP2_TYPE_UNIQUE_ID`: the L4 tier mints no connection ids yet, and the
//! node name plus the client's 5-tuple already identify a connection. The
//! marker is only as trustworthy as the listener's rule that PROXY headers
//! are accepted from the L4 tier's addresses alone, as the spec demands.
//!
//! **Decoding** ([`decode`]) is incremental: given whatever prefix of the
//! stream has arrived it answers [`Decoded::Incomplete`] with a lower bound
//! on the missing bytes, [`Decoded::Complete`] with the header and its
//! length (the payload starts right after), or a [`DecodeError`] as soon as
//! the bytes seen so far can no longer begin a valid header. It never
//! panics, never reads past `107` bytes for v1 nor past `16 + length` for v2,
//! and caps the v2 length at [`Limits::max_v2_length`]. Receiver rules, as
//! the spec sets them:
//!
//! - v2 LOCAL (health checks): accepted whatever the family; the whole
//!   block is skipped and the header reports no addresses and no TLVs.
//! - v2 PROXY with an UNSPEC family or transport (including unusual but
//!   valid nibble pairs such as `0x10`): accepted as [`Addresses::Unspecified`],
//!   block skipped (where addresses end is unknown, so are TLVs).
//! - v2 PROXY with a known family: the length must cover the address
//!   block; the rest must be whole TLVs. A `PP2_TYPE_CRC32C` TLV is checked
//!   (CRC32c of the whole header with the checksum zeroed) and a mismatch
//!   rejects the header.
//! - version nibble other than 2, command other than 0/1, family nibble
//!   above 3 or transport nibble above 2: rejected.
//! - v1: exactly one space between fields, no heading zeroes in ports,
//!   IPv4 in dotted-quad form without heading zeroes, IPv6 in text form of
//!   the announced family; a lone CR or LF, a non-printable byte or no CRLF
//!   within 107 bytes is rejected.
//!
//! **Encoding** ([`ProxyHeader::encode`]) writes canonical headers that
//! [`decode`] reads back identically; it refuses headers a receiver could
//! not read back (TLVs in v1 or after an UNSPEC block, LOCAL with
//! addresses, a v2 block over 65535 bytes). A `PP2_TYPE_CRC32C` TLV in the
//! header is filled with the right checksum whatever value it held.
//!
//! Pure: no I/O. The listener reads into a buffer and calls [`decode`].

use std::fmt;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The 12 bytes that open every v2 header: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Longest v1 line, CRLF included (the spec's worst case
/// `PROXY UNKNOWN <39-char IPv6> <39-char IPv6> 65535 65535\r\n`).
pub const V1_MAX_LEN: usize = 107;

/// Shortest v1 line: `PROXY UNKNOWN\r\n`.
pub const V1_MIN_LEN: usize = 15;

/// Length of the fixed part of a v2 header (signature, version/command,
/// family/transport, length).
pub const V2_FIXED_LEN: usize = 16;

/// Size of a v2 AF_UNIX address (each of source and destination).
pub const UNIX_ADDRESS_LEN: usize = 108;

/// TLV types: the registered `PP2_TYPE_*` values and ours.
pub mod tlv_type {
    /// Application-Layer Protocol Negotiation (the TLS ALPN bytes).
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (TLS SNI), UTF-8.
    pub const AUTHORITY: u8 = 0x02;
    /// CRC32c of the whole header, 4 bytes big-endian (checked on decode,
    /// filled in on encode).
    pub const CRC32C: u8 = 0x03;
    /// Padding, to be ignored.
    pub const NOOP: u8 = 0x04;
    /// Opaque connection id of up to 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS information with sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// Sub-TLV of [`SSL`]: the TLS version.
    pub const SSL_VERSION: u8 = 0x21;
    /// Sub-TLV of [`SSL`]: the client certificate's common name.
    pub const SSL_CN: u8 = 0x22;
    /// Sub-TLV of [`SSL`]: the cipher.
    pub const SSL_CIPHER: u8 = 0x23;
    /// Sub-TLV of [`SSL`]: the certificate's signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// Sub-TLV of [`SSL`]: the certificate's key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// Network namespace name.
    pub const NETNS: u8 = 0x30;
    /// First type of the range reserved for applications.
    pub const MIN_CUSTOM: u8 = 0xE0;
    /// Last type of the range reserved for applications.
    pub const MAX_CUSTOM: u8 = 0xEF;
    /// Ours: "relayed by the edge L4 tier"; the value is the L4 node's name
    /// in UTF-8.
    pub const EDGE_L4: u8 = 0xE0;
}

/// Which format a header is (or is to be) written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The text line.
    V1,
    /// The binary format.
    V2,
}

/// What the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// v2 only: the sender opened the connection itself (a health check);
    /// the receiver uses the real endpoints.
    Local,
    /// The connection is relayed on behalf of the client described.
    Proxy,
}

/// Stream or datagram transport, for addresses that carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SOCK_STREAM: TCP or a UNIX stream socket.
    Stream,
    /// SOCK_DGRAM: UDP or a UNIX datagram socket (v2 only).
    Datagram,
}

/// A v2 AF_UNIX address: 108 raw bytes, normally a NUL-padded path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnixAddress(Box<[u8; UNIX_ADDRESS_LEN]>);

impl UnixAddress {
    /// An address from its 108 raw bytes.
    pub fn new(raw: [u8; UNIX_ADDRESS_LEN]) -> Self {
        Self(Box::new(raw))
    }

    /// An address from a path of at most 108 bytes, NUL-padded; `None` if
    /// the path is longer.
    pub fn from_path(path: &[u8]) -> Option<Self> {
        let mut raw = [0u8; UNIX_ADDRESS_LEN];
        raw.get_mut(..path.len())?.copy_from_slice(path);
        Some(Self::new(raw))
    }

    /// The 108 raw bytes.
    pub fn raw(&self) -> &[u8; UNIX_ADDRESS_LEN] {
        &self.0
    }
}

impl fmt::Debug for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write!(
            f,
            "UnixAddress({:?})",
            String::from_utf8_lossy(&self.0[..end])
        )
    }
}

/// The original endpoints a header announces.
///
/// IPv6 flow info and scope id are not carried by the protocol: the encoder
/// ignores them and the decoder sets them to 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// Unknown or not announced (v1 `UNKNOWN`, v2 UNSPEC or LOCAL): the
    /// receiver uses the real connection's endpoints.
    Unspecified,
    /// TCP or UDP over IPv4.
    Ipv4 {
        /// TCP or UDP.
        transport: Transport,
        /// The client.
        source: SocketAddrV4,
        /// The address the client connected to.
        destination: SocketAddrV4,
    },
    /// TCP or UDP over IPv6.
    Ipv6 {
        /// TCP or UDP.
        transport: Transport,
        /// The client.
        source: SocketAddrV6,
        /// The address the client connected to.
        destination: SocketAddrV6,
    },
    /// UNIX sockets (v2 only).
    Unix {
        /// Stream or datagram.
        transport: Transport,
        /// The client's socket address.
        source: UnixAddress,
        /// The listening socket's address.
        destination: UnixAddress,
    },
}

impl Addresses {
    /// TCP addresses for a relayed connection. When the families differ
    /// (a dual-stack listener), both are written as IPv6, the IPv4 one
    /// mapped (`::ffff:a.b.c.d`), as HAProxy does.
    pub fn tcp(source: SocketAddr, destination: SocketAddr) -> Self {
        Self::inet(Transport::Stream, source, destination)
    }

    /// UDP addresses for a relayed datagram; mixed families as
    /// [`tcp`](Self::tcp).
    pub fn udp(source: SocketAddr, destination: SocketAddr) -> Self {
        Self::inet(Transport::Datagram, source, destination)
    }

    fn inet(transport: Transport, source: SocketAddr, destination: SocketAddr) -> Self {
        match (source, destination) {
            (SocketAddr::V4(source), SocketAddr::V4(destination)) => Self::Ipv4 {
                transport,
                source,
                destination,
            },
            (source, destination) => Self::Ipv6 {
                transport,
                source: v6(source),
                destination: v6(destination),
            },
        }
    }

    /// Length of the v2 address block for these addresses.
    fn v2_block_len(&self) -> usize {
        match self {
            Self::Unspecified => 0,
            Self::Ipv4 { .. } => 12,
            Self::Ipv6 { .. } => 36,
            Self::Unix { .. } => 2 * UNIX_ADDRESS_LEN,
        }
    }

    /// The v2 family/transport byte.
    fn v2_family_byte(&self) -> u8 {
        let transport = |t: &Transport| match t {
            Transport::Stream => 0x1,
            Transport::Datagram => 0x2,
        };
        match self {
            Self::Unspecified => 0x00,
            Self::Ipv4 { transport: t, .. } => 0x10 | transport(t),
            Self::Ipv6 { transport: t, .. } => 0x20 | transport(t),
            Self::Unix { transport: t, .. } => 0x30 | transport(t),
        }
    }
}

fn v6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        SocketAddr::V6(a) => SocketAddrV6::new(*a.ip(), a.port(), 0, 0),
    }
}

/// One v2 Type-Length-Value extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The type, see [`tlv_type`].
    pub kind: u8,
    /// The value; at most 65535 bytes, less what else the header holds.
    pub value: Vec<u8>,
}

impl Tlv {
    /// A TLV of type `kind` holding `value`.
    pub fn new(kind: u8, value: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }
}

/// A PROXY protocol header, decoded or to be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyHeader {
    /// The wire format.
    pub version: Version,
    /// LOCAL (v2 only) or PROXY.
    pub command: Command,
    /// The announced endpoints.
    pub addresses: Addresses,
    /// v2 extensions, in wire order (empty for v1).
    pub tlvs: Vec<Tlv>,
}

impl ProxyHeader {
    /// What the L4 tier writes to an L7 node: v2 PROXY over TCP from
    /// `client` to `vip`, with a [`tlv_type::EDGE_L4`] TLV holding `l4_node`.
    pub fn from_l4(client: SocketAddr, vip: SocketAddr, l4_node: &str) -> Self {
        Self::v2_proxy(client, vip).with_tlv(Tlv::new(tlv_type::EDGE_L4, l4_node.as_bytes()))
    }

    /// v2 PROXY over TCP from `source` to `destination`, no TLVs.
    pub fn v2_proxy(source: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            version: Version::V2,
            command: Command::Proxy,
            addresses: Addresses::tcp(source, destination),
            tlvs: Vec::new(),
        }
    }

    /// v2 LOCAL: a connection the sender made for itself (health check).
    pub fn v2_local() -> Self {
        Self {
            version: Version::V2,
            command: Command::Local,
            addresses: Addresses::Unspecified,
            tlvs: Vec::new(),
        }
    }

    /// v1 over TCP from `source` to `destination` (mixed families are
    /// written as TCP6, the IPv4 side mapped).
    pub fn v1_proxy(source: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            version: Version::V1,
            command: Command::Proxy,
            addresses: Addresses::tcp(source, destination),
            tlvs: Vec::new(),
        }
    }

    /// This header with `tlv` appended.
    pub fn with_tlv(mut self, tlv: Tlv) -> Self {
        self.tlvs.push(tlv);
        self
    }

    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.value.as_slice())
    }

    /// The name of the L4 node that relayed the connection, if the header
    /// carries our [`tlv_type::EDGE_L4`] marker.
    pub fn l4_node(&self) -> Option<&[u8]> {
        self.tlv(tlv_type::EDGE_L4)
    }

    /// The announced client address, for IPv4/IPv6 PROXY headers.
    pub fn source(&self) -> Option<SocketAddr> {
        match (&self.command, &self.addresses) {
            (Command::Proxy, Addresses::Ipv4 { source, .. }) => Some(SocketAddr::V4(*source)),
            (Command::Proxy, Addresses::Ipv6 { source, .. }) => Some(SocketAddr::V6(*source)),
            _ => None,
        }
    }

    /// The announced destination (the VIP), for IPv4/IPv6 PROXY headers.
    pub fn destination(&self) -> Option<SocketAddr> {
        match (&self.command, &self.addresses) {
            (Command::Proxy, Addresses::Ipv4 { destination, .. }) => {
                Some(SocketAddr::V4(*destination))
            }
            (Command::Proxy, Addresses::Ipv6 { destination, .. }) => {
                Some(SocketAddr::V6(*destination))
            }
            _ => None,
        }
    }

    /// The header's wire bytes. See [`encode_into`](Self::encode_into).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the header's wire bytes to `out` and returns how many were
    /// written; on error `out` is left as it was.
    ///
    /// The bytes decode back to `self` exactly (IPv6 flow info and scope id
    /// aside), which is why headers a receiver could not read back are
    /// refused rather than written.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        match self.version {
            Version::V1 => self.encode_v1(out),
            Version::V2 => self.encode_v2(out),
        }
    }

    fn encode_v1(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        if self.command == Command::Local {
            return Err(EncodeError::V1Local);
        }
        if !self.tlvs.is_empty() {
            return Err(EncodeError::V1Tlvs {
                count: self.tlvs.len(),
            });
        }
        let mut line = String::with_capacity(V1_MAX_LEN);
        match &self.addresses {
            Addresses::Unspecified => line.push_str("PROXY UNKNOWN\r\n"),
            Addresses::Ipv4 {
                transport: Transport::Stream,
                source,
                destination,
            } => {
                // Writing to a String cannot fail.
                let _ = write!(
                    line,
                    "PROXY TCP4 {} {} {} {}\r\n",
                    source.ip(),
                    destination.ip(),
                    source.port(),
                    destination.port()
                );
            }
            Addresses::Ipv6 {
                transport: Transport::Stream,
                source,
                destination,
            } => {
                line.push_str("PROXY TCP6 ");
                push_ipv6_hex(&mut line, source.ip());
                line.push(' ');
                push_ipv6_hex(&mut line, destination.ip());
                let _ = write!(line, " {} {}\r\n", source.port(), destination.port());
            }
            Addresses::Ipv4 { .. } | Addresses::Ipv6 { .. } => {
                return Err(EncodeError::V1NotTcp { what: "UDP" });
            }
            Addresses::Unix { .. } => return Err(EncodeError::V1NotTcp { what: "AF_UNIX" }),
        }
        out.extend_from_slice(line.as_bytes());
        Ok(line.len())
    }

    fn encode_v2(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        if self.command == Command::Local
            && (self.addresses != Addresses::Unspecified || !self.tlvs.is_empty())
        {
            return Err(EncodeError::LocalWithPayload);
        }
        if self.addresses == Addresses::Unspecified && !self.tlvs.is_empty() {
            return Err(EncodeError::TlvsWithoutAddresses {
                count: self.tlvs.len(),
            });
        }
        let length = self.addresses.v2_block_len()
            + self.tlvs.iter().map(|t| 3 + t.value.len()).sum::<usize>();
        let Ok(length16) = u16::try_from(length) else {
            return Err(EncodeError::V2TooLong { length });
        };
        let crc_tlvs = self
            .tlvs
            .iter()
            .filter(|t| t.kind == tlv_type::CRC32C)
            .count();
        if crc_tlvs > 1 {
            return Err(EncodeError::Crc32cTlv);
        }
        if self
            .tlvs
            .iter()
            .any(|t| t.kind == tlv_type::CRC32C && t.value.len() != 4)
        {
            return Err(EncodeError::Crc32cTlv);
        }

        let start = out.len();
        out.reserve(V2_FIXED_LEN + length);
        out.extend_from_slice(&V2_SIGNATURE);
        out.push(match self.command {
            Command::Local => 0x20,
            Command::Proxy => 0x21,
        });
        out.push(self.addresses.v2_family_byte());
        out.extend_from_slice(&length16.to_be_bytes());
        match &self.addresses {
            Addresses::Unspecified => {}
            Addresses::Ipv4 {
                source,
                destination,
                ..
            } => {
                out.extend_from_slice(&source.ip().octets());
                out.extend_from_slice(&destination.ip().octets());
                out.extend_from_slice(&source.port().to_be_bytes());
                out.extend_from_slice(&destination.port().to_be_bytes());
            }
            Addresses::Ipv6 {
                source,
                destination,
                ..
            } => {
                out.extend_from_slice(&source.ip().octets());
                out.extend_from_slice(&destination.ip().octets());
                out.extend_from_slice(&source.port().to_be_bytes());
                out.extend_from_slice(&destination.port().to_be_bytes());
            }
            Addresses::Unix {
                source,
                destination,
                ..
            } => {
                out.extend_from_slice(source.raw());
                out.extend_from_slice(destination.raw());
            }
        }
        let mut crc_at = None;
        for tlv in &self.tlvs {
            out.push(tlv.kind);
            // Each value is shorter than the whole, checked above.
            out.extend_from_slice(&(tlv.value.len() as u16).to_be_bytes());
            if tlv.kind == tlv_type::CRC32C {
                crc_at = Some(out.len());
                out.extend_from_slice(&[0; 4]);
            } else {
                out.extend_from_slice(&tlv.value);
            }
        }
        if let Some(at) = crc_at {
            let crc = crc32c(&out[start..]);
            out[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        }
        Ok(out.len() - start)
    }
}

/// Writes an IPv6 address as the spec's v1 form wants it: hexadecimal
/// groups, the longest run of two or more zero groups (the first if tied)
/// as `::` (RFC 5952), never the dotted IPv4 tail that `Display` uses for
/// mapped addresses.
fn push_ipv6_hex(out: &mut String, ip: &Ipv6Addr) {
    let groups = ip.segments();
    let (mut best_start, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    let write_groups = |out: &mut String, gs: &[u16]| {
        for (k, g) in gs.iter().enumerate() {
            if k > 0 {
                out.push(':');
            }
            let _ = write!(out, "{g:x}");
        }
    };
    if best_len >= 2 {
        write_groups(out, &groups[..best_start]);
        out.push_str("::");
        write_groups(out, &groups[best_start + best_len..]);
    } else {
        write_groups(out, &groups);
    }
}

/// Why a header cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// v1 has no LOCAL command.
    #[error(
        "PROXY v1 has no LOCAL command; send a v2 header, or a v1 PROXY header \
         with Addresses::Unspecified (`PROXY UNKNOWN`)"
    )]
    V1Local,
    /// v1 cannot carry TLVs.
    #[error("PROXY v1 cannot carry TLVs ({count} given); send a v2 header or drop the TLVs")]
    V1Tlvs {
        /// How many TLVs the header holds.
        count: usize,
    },
    /// v1 only knows TCP over IPv4/IPv6.
    #[error("PROXY v1 only carries TCP over IPv4 or IPv6, not {what}; send a v2 header")]
    V1NotTcp {
        /// The transport or family that v1 cannot express.
        what: &'static str,
    },
    /// A LOCAL header should carry nothing and receivers ignore what it does.
    #[error(
        "a PROXY v2 LOCAL header carries no addresses or TLVs (receivers discard them); \
         use ProxyHeader::v2_local() or the PROXY command"
    )]
    LocalWithPayload,
    /// Receivers cannot find TLVs after an UNSPEC address block.
    #[error(
        "{count} TLVs after an UNSPEC address block would be ignored by receivers; \
         announce addresses or drop the TLVs"
    )]
    TlvsWithoutAddresses {
        /// How many TLVs the header holds.
        count: usize,
    },
    /// The v2 length field is a `u16`.
    #[error(
        "PROXY v2 addresses and TLVs take {length} bytes, over the protocol's 65535-byte limit; \
         shorten or drop TLVs"
    )]
    V2TooLong {
        /// The length that does not fit.
        length: usize,
    },
    /// A CRC32C TLV must be unique and 4 bytes long.
    #[error(
        "a PROXY v2 header takes at most one CRC32C TLV (type 0x03) with a 4-byte value \
         (any value: the encoder computes it)"
    )]
    Crc32cTlv,
}

/// Bounds the decoder enforces beyond the protocol's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted v2 length field (addresses plus TLVs). Default:
    /// 65535, the protocol's maximum; a listener that wants to buffer less
    /// lowers it (216 covers every address block without TLVs).
    pub max_v2_length: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_v2_length: u16::MAX,
        }
    }
}

/// What [`decode`] makes of the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The bytes so far begin a valid header but do not finish it: read at
    /// least `needed` more bytes (a lower bound, at least 1), then call
    /// [`decode`] again with the whole buffer.
    Incomplete {
        /// Lower bound on the missing bytes.
        needed: usize,
    },
    /// A complete header, and its length in bytes: the connection's
    /// payload starts at that offset.
    Complete(ProxyHeader, usize),
}

/// Why the bytes received cannot be a PROXY protocol header. The
/// connection must be dropped; the messages are for the receiver's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither a v1 nor a v2 signature.
    #[error(
        "the connection does not start with a PROXY protocol header (first bytes {prefix}); \
         the sender must send PROXY protocol v1 or v2, or this listener must not expect it"
    )]
    NotProxyProtocol {
        /// Hex dump of up to 16 leading bytes.
        prefix: String,
    },
    /// No CRLF within the first 107 bytes of a v1 line.
    #[error("PROXY v1 line has no CRLF within its first 107 bytes; the sender is not speaking v1")]
    V1TooLong,
    /// A byte that can never be part of a v1 line.
    #[error(
        "PROXY v1 line has byte 0x{byte:02x} at offset {offset}; only printable US-ASCII and the final CRLF are allowed"
    )]
    V1Byte {
        /// Offset of the byte from the start of the header.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A well-formed line whose fields are wrong.
    #[error("PROXY v1 line {line:?} is invalid: {problem}")]
    V1Syntax {
        /// The line without its CRLF (printable ASCII).
        line: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The version nibble is not 2.
    #[error("PROXY v2 header has version {version}; only version 2 exists")]
    V2Version {
        /// The high nibble of byte 13.
        version: u8,
    },
    /// The command nibble is neither LOCAL nor PROXY.
    #[error("PROXY v2 header has command {command}; only 0 (LOCAL) and 1 (PROXY) exist")]
    V2Command {
        /// The low nibble of byte 13.
        command: u8,
    },
    /// The family or transport nibble is out of range.
    #[error(
        "PROXY v2 header has family/transport byte 0x{byte:02x}; the family must be 0-3 and the transport 0-2 (e.g. 0x11 TCP4, 0x21 TCP6)"
    )]
    V2Family {
        /// Byte 14.
        byte: u8,
    },
    /// The length field exceeds [`Limits::max_v2_length`].
    #[error(
        "PROXY v2 header announces {length} bytes of addresses and TLVs, over this listener's limit of {limit}; \
         raise Limits::max_v2_length or make the sender send fewer TLVs"
    )]
    V2TooLong {
        /// The length field.
        length: u16,
        /// The configured limit.
        limit: u16,
    },
    /// The length field is shorter than the announced family's block.
    #[error(
        "PROXY v2 header announces {length} bytes, shorter than the {needed}-byte {family} address block"
    )]
    V2AddressesTruncated {
        /// The family/transport.
        family: &'static str,
        /// The length field.
        length: u16,
        /// The address block's size.
        needed: usize,
    },
    /// A TLV runs past the end of the header.
    #[error(
        "PROXY v2 TLV at offset {offset} needs {needed} bytes but only {available} remain in the announced length"
    )]
    V2TlvTruncated {
        /// Offset of the TLV from the start of the header.
        offset: usize,
        /// Bytes the TLV needs (3 for a bare type/length, more for its value).
        needed: usize,
        /// Bytes left in the header.
        available: usize,
    },
    /// A CRC32C TLV that is not 4 bytes, or appears twice.
    #[error("PROXY v2 CRC32C TLV must appear once with a 4-byte value")]
    V2Crc32cMalformed,
    /// The CRC32C does not match the header.
    #[error(
        "PROXY v2 CRC32C is 0x{received:08x} but the header's checksum is 0x{computed:08x}; the header was corrupted"
    )]
    V2Crc32cMismatch {
        /// The TLV's value.
        received: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
}

/// Decodes a PROXY header (v1 or v2) at the start of `buf` within the
/// spec's bounds. See [`decode_with_limits`].
pub fn decode(buf: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with_limits(buf, Limits::default())
}

/// Decodes a PROXY header (v1 or v2) at the start of `buf`.
///
/// `buf` is everything received so far; bytes past the header are left
/// alone. The answer for a prefix of a valid header is always
/// `Incomplete`, and an error is final: more bytes cannot fix it.
pub fn decode_with_limits(buf: &[u8], limits: Limits) -> Result<Decoded, DecodeError> {
    match buf.first() {
        None => Ok(Decoded::Incomplete { needed: V1_MIN_LEN }),
        Some(b'\r') => decode_v2(buf, limits),
        Some(b'P') => decode_v1(buf),
        Some(_) => Err(not_proxy(buf)),
    }
}

fn not_proxy(buf: &[u8]) -> DecodeError {
    let mut prefix = String::new();
    for b in buf.iter().take(16) {
        let _ = write!(prefix, "{b:02x}");
    }
    DecodeError::NotProxyProtocol { prefix }
}

fn decode_v1(buf: &[u8]) -> Result<Decoded, DecodeError> {
    const PREFIX: &[u8] = b"PROXY ";
    let seen = buf.len().min(PREFIX.len());
    if buf[..seen] != PREFIX[..seen] {
        return Err(not_proxy(buf));
    }
    for (offset, &byte) in buf.iter().enumerate().take(V1_MAX_LEN) {
        match byte {
            b'\r' => {
                if offset + 2 > V1_MAX_LEN {
                    return Err(DecodeError::V1TooLong);
                }
                return match buf.get(offset + 1) {
                    None => Ok(Decoded::Incomplete { needed: 1 }),
                    Some(b'\n') => parse_v1_line(&buf[..offset])
                        .map(|header| Decoded::Complete(header, offset + 2)),
                    Some(&byte) => Err(DecodeError::V1Byte {
                        offset: offset + 1,
                        byte,
                    }),
                };
            }
            0x20..=0x7e => {}
            byte => return Err(DecodeError::V1Byte { offset, byte }),
        }
    }
    if buf.len() >= V1_MAX_LEN {
        return Err(DecodeError::V1TooLong);
    }
    Ok(Decoded::Incomplete {
        needed: V1_MIN_LEN.saturating_sub(buf.len()).max(1),
    })
}

/// Parses a v1 line without its CRLF; every byte is printable ASCII.
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, DecodeError> {
    let text = String::from_utf8_lossy(line);
    let fail = |problem| DecodeError::V1Syntax {
        line: text.to_string(),
        problem,
    };
    let Some(rest) = text.strip_prefix("PROXY ") else {
        return Err(fail(
            "it must start with \"PROXY \" followed by TCP4, TCP6 or UNKNOWN",
        ));
    };
    let (protocol, fields) = match rest.split_once(' ') {
        Some((protocol, fields)) => (protocol, Some(fields)),
        None => (rest, None),
    };
    let header = |addresses| ProxyHeader {
        version: Version::V1,
        command: Command::Proxy,
        addresses,
        tlvs: Vec::new(),
    };
    match protocol {
        // The receiver must ignore anything after UNKNOWN.
        "UNKNOWN" => return Ok(header(Addresses::Unspecified)),
        "TCP4" | "TCP6" => {}
        _ => return Err(fail("the protocol must be TCP4, TCP6 or UNKNOWN")),
    }
    let fields: Vec<&str> = fields.map_or_else(Vec::new, |f| f.split(' ').collect());
    let [src, dst, sport, dport] = fields[..] else {
        return Err(fail(
            "TCP4/TCP6 takes exactly four fields (source, destination, source port, destination port) separated by single spaces",
        ));
    };
    let sport = parse_v1_port(sport).ok_or_else(|| {
        fail("the source port must be a decimal in 0..=65535 without heading zeroes")
    })?;
    let dport = parse_v1_port(dport).ok_or_else(|| {
        fail("the destination port must be a decimal in 0..=65535 without heading zeroes")
    })?;
    let addresses = if protocol == "TCP4" {
        let parse = |s: &str| s.parse::<Ipv4Addr>().ok();
        let source = parse(src).ok_or_else(|| {
            fail("the source must be an IPv4 address in dotted-quad form without heading zeroes")
        })?;
        let destination = parse(dst).ok_or_else(|| {
            fail("the destination must be an IPv4 address in dotted-quad form without heading zeroes")
        })?;
        Addresses::Ipv4 {
            transport: Transport::Stream,
            source: SocketAddrV4::new(source, sport),
            destination: SocketAddrV4::new(destination, dport),
        }
    } else {
        let parse = |s: &str| s.parse::<Ipv6Addr>().ok();
        let source =
            parse(src).ok_or_else(|| fail("the source must be an IPv6 address in text form"))?;
        let destination = parse(dst)
            .ok_or_else(|| fail("the destination must be an IPv6 address in text form"))?;
        Addresses::Ipv6 {
            transport: Transport::Stream,
            source: SocketAddrV6::new(source, sport, 0, 0),
            destination: SocketAddrV6::new(destination, dport, 0, 0),
        }
    };
    Ok(header(addresses))
}

/// A v1 port: 1–5 decimal digits, no heading zero (except "0"), <= 65535.
fn parse_v1_port(s: &str) -> Option<u16> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if ok { s.parse().ok() } else { None }
}

fn decode_v2(buf: &[u8], limits: Limits) -> Result<Decoded, DecodeError> {
    let seen = buf.len().min(V2_SIGNATURE.len());
    if buf[..seen] != V2_SIGNATURE[..seen] {
        return Err(not_proxy(buf));
    }
    let incomplete = |total: usize| Decoded::Incomplete {
        needed: total - buf.len(),
    };
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(incomplete(V2_FIXED_LEN));
    };
    if ver_cmd >> 4 != 2 {
        return Err(DecodeError::V2Version {
            version: ver_cmd >> 4,
        });
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        command => return Err(DecodeError::V2Command { command }),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(incomplete(V2_FIXED_LEN));
    };
    if family >> 4 > 3 || family & 0x0f > 2 {
        return Err(DecodeError::V2Family { byte: family });
    }
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Ok(incomplete(V2_FIXED_LEN));
    };
    let length = u16::from_be_bytes([hi, lo]);
    if length > limits.max_v2_length {
        return Err(DecodeError::V2TooLong {
            length,
            limit: limits.max_v2_length,
        });
    }
    let transport = match family & 0x0f {
        1 => Some(Transport::Stream),
        2 => Some(Transport::Datagram),
        _ => None,
    };
    // Known family and transport, else the UNSPEC fallback.
    let layout = match (command, family >> 4, transport) {
        (Command::Proxy, 1, Some(t)) => Some(("IPv4", 12, t)),
        (Command::Proxy, 2, Some(t)) => Some(("IPv6", 36, t)),
        (Command::Proxy, 3, Some(t)) => Some(("AF_UNIX", 2 * UNIX_ADDRESS_LEN, t)),
        _ => None,
    };
    if let Some((name, needed, _)) = layout
        && usize::from(length) < needed
    {
        return Err(DecodeError::V2AddressesTruncated {
            family: name,
            length,
            needed,
        });
    }
    let total = V2_FIXED_LEN + usize::from(length);
    if buf.len() < total {
        return Ok(incomplete(total));
    }
    let header = &buf[..total];
    let Some((_, block_len, transport)) = layout else {
        // LOCAL, or an UNSPEC family or transport: the spec says to use the
        // real endpoints and skip the whole block.
        return Ok(Decoded::Complete(
            ProxyHeader {
                version: Version::V2,
                command,
                addresses: Addresses::Unspecified,
                tlvs: Vec::new(),
            },
            total,
        ));
    };
    let block = &header[V2_FIXED_LEN..V2_FIXED_LEN + block_len];
    let addresses = match family >> 4 {
        1 => Addresses::Ipv4 {
            transport,
            source: SocketAddrV4::new(ipv4_at(block, 0), port_at(block, 8)),
            destination: SocketAddrV4::new(ipv4_at(block, 4), port_at(block, 10)),
        },
        2 => Addresses::Ipv6 {
            transport,
            source: SocketAddrV6::new(ipv6_at(block, 0), port_at(block, 32), 0, 0),
            destination: SocketAddrV6::new(ipv6_at(block, 16), port_at(block, 34), 0, 0),
        },
        _ => Addresses::Unix {
            transport,
            source: unix_at(block, 0),
            destination: unix_at(block, UNIX_ADDRESS_LEN),
        },
    };
    let tlvs = parse_tlvs(header, V2_FIXED_LEN + block_len)?;
    Ok(Decoded::Complete(
        ProxyHeader {
            version: Version::V2,
            command,
            addresses,
            tlvs,
        },
        total,
    ))
}

// The block has the family's exact size, so the fixed offsets below are in
// bounds; `copy_from_slice` into fixed arrays keeps that visible.
fn ipv4_at(block: &[u8], at: usize) -> Ipv4Addr {
    let mut b = [0u8; 4];
    b.copy_from_slice(&block[at..at + 4]);
    Ipv4Addr::from(b)
}

fn ipv6_at(block: &[u8], at: usize) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&block[at..at + 16]);
    Ipv6Addr::from(b)
}

fn port_at(block: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([block[at], block[at + 1]])
}

fn unix_at(block: &[u8], at: usize) -> UnixAddress {
    let mut b = [0u8; UNIX_ADDRESS_LEN];
    b.copy_from_slice(&block[at..at + UNIX_ADDRESS_LEN]);
    UnixAddress::new(b)
}

/// Parses the TLVs of `header` (the whole v2 header) from `start` to its
/// end, and checks a CRC32C TLV if there is one.
fn parse_tlvs(header: &[u8], start: usize) -> Result<Vec<Tlv>, DecodeError> {
    let mut tlvs = Vec::new();
    let mut crc_at = None;
    let mut at = start;
    while at < header.len() {
        let available = header.len() - at;
        let truncated = |needed| DecodeError::V2TlvTruncated {
            offset: at,
            needed,
            available,
        };
        if available < 3 {
            return Err(truncated(3));
        }
        let kind = header[at];
        let len = usize::from(u16::from_be_bytes([header[at + 1], header[at + 2]]));
        if available < 3 + len {
            return Err(truncated(3 + len));
        }
        if kind == tlv_type::CRC32C {
            if len != 4 || crc_at.is_some() {
                return Err(DecodeError::V2Crc32cMalformed);
            }
            crc_at = Some(at + 3);
        }
        tlvs.push(Tlv::new(kind, &header[at + 3..at + 3 + len]));
        at += 3 + len;
    }
    if let Some(at) = crc_at {
        let received =
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let crc = Crc32c::new()
            .update(&header[..at])
            .update(&[0; 4])
            .update(&header[at + 4..]);
        let computed = crc.finish();
        if computed != received {
            return Err(DecodeError::V2Crc32cMismatch { received, computed });
        }
    }
    Ok(tlvs)
}

/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), as RFC 4960
/// appendix B computes it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    Crc32c::new().update(bytes).finish()
}

struct Crc32c(u32);

impl Crc32c {
    fn new() -> Self {
        Self(!0)
    }

    fn update(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = CRC32C_TABLE[((self.0 ^ u32::from(b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests;
