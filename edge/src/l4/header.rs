//! The PROXY protocol v2 header of each upstream connection (and, for a UDP
//! service with `proxy_protocol`, of each datagram), written into a stack
//! buffer: the same bytes as
//! [`ProxyHeader::from_l4`](crate::proxy_protocol::ProxyHeader::from_l4)
//! encodes (a test checks it, and its datagram form), without its
//! per-connection allocations.

use std::net::{IpAddr, SocketAddr};

use crate::l4::plan::MAX_NODE_NAME;
use crate::proxy_protocol::{Transport, V2_FIXED_LEN, V2_SIGNATURE, tlv_type};

/// Room for the longest header: fixed part, IPv6 block, the TLV with the
/// longest node name.
pub(crate) const MAX_HEADER_LEN: usize = V2_FIXED_LEN + 36 + 3 + MAX_NODE_NAME;

/// The node's TLV, encoded once; [`write`](Self::write) adds the addresses.
#[derive(Debug, Clone)]
pub(crate) struct HeaderTemplate {
    tlv: Box<[u8]>,
}

impl HeaderTemplate {
    /// The template for the L4 node `l4_node` (at most
    /// [`MAX_NODE_NAME`] bytes, checked by the plan; longer names are cut).
    pub(crate) fn new(l4_node: &str) -> Self {
        let name = &l4_node.as_bytes()[..l4_node.len().min(MAX_NODE_NAME)];
        let mut tlv = Vec::with_capacity(3 + name.len());
        tlv.push(tlv_type::EDGE_L4);
        tlv.extend_from_slice(&(name.len() as u16).to_be_bytes());
        tlv.extend_from_slice(name);
        Self { tlv: tlv.into() }
    }

    /// Writes the header for a connection (`transport` STREAM) or datagram
    /// (DGRAM) from `client` to `vip` at the start of `out` and returns its
    /// length. Mixed families are written as IPv6 with the IPv4 side
    /// mapped, as the codec does.
    pub(crate) fn write(
        &self,
        transport: Transport,
        client: SocketAddr,
        vip: SocketAddr,
        out: &mut [u8; MAX_HEADER_LEN],
    ) -> usize {
        let transport = match transport {
            Transport::Stream => 0x1,
            Transport::Datagram => 0x2,
        };
        out[..12].copy_from_slice(&V2_SIGNATURE);
        out[12] = 0x21; // version 2, PROXY
        let mut at = V2_FIXED_LEN;
        match (client.ip(), vip.ip()) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                out[13] = 0x10 | transport; // INET
                out[at..at + 4].copy_from_slice(&source.octets());
                out[at + 4..at + 8].copy_from_slice(&destination.octets());
                at += 8;
            }
            (source, destination) => {
                out[13] = 0x20 | transport; // INET6
                out[at..at + 16].copy_from_slice(&v6(source));
                out[at + 16..at + 32].copy_from_slice(&v6(destination));
                at += 32;
            }
        }
        out[at..at + 2].copy_from_slice(&client.port().to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&vip.port().to_be_bytes());
        at += 4;
        out[at..at + self.tlv.len()].copy_from_slice(&self.tlv);
        at += self.tlv.len();
        // At most 36 + 3 + 255: fits the u16.
        let length = (at - V2_FIXED_LEN) as u16;
        out[14..16].copy_from_slice(&length.to_be_bytes());
        at
    }
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_protocol::{Addresses, Decoded, ProxyHeader, decode};

    #[test]
    fn same_bytes_as_the_codec() {
        let cases = [
            ("198.51.100.7:50123", "192.0.2.10:443", "us-east-l4"),
            ("[2001:db8::7]:50123", "[2001:db8::10]:8443", "l4"),
            ("198.51.100.7:1", "[2001:db8::10]:80", "mixed"),
            ("[2001:db8::7]:2", "192.0.2.10:80", ""),
        ];
        let long = "n".repeat(MAX_NODE_NAME);
        for (client, vip, node) in cases.iter().map(|&(c, v, n)| (c, v, n.to_owned())).chain([(
            "[::1]:65535",
            "[::1]:1",
            long.clone(),
        )]) {
            let client: SocketAddr = client.parse().unwrap();
            let vip: SocketAddr = vip.parse().unwrap();
            for transport in [Transport::Stream, Transport::Datagram] {
                let mut buf = [0u8; MAX_HEADER_LEN];
                let n = HeaderTemplate::new(&node).write(transport, client, vip, &mut buf);
                let mut expected = ProxyHeader::from_l4(client, vip, &node);
                if transport == Transport::Datagram {
                    expected.addresses = Addresses::udp(client, vip);
                }
                let expected = expected.encode().unwrap();
                assert_eq!(
                    &buf[..n],
                    &expected[..],
                    "{transport:?} {client} -> {vip} via {node:?}"
                );
                let Ok(Decoded::Complete(header, len)) = decode(&buf[..n]) else {
                    panic!("does not decode");
                };
                assert_eq!(len, n);
                assert_eq!(header.l4_node(), Some(node.as_bytes()));
            }
        }
    }
}
