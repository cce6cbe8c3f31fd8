//! The full answer to a message's bytes: a UDP datagram (the slow path, and
//! the reference the fast path ([`crate::fast`]) must match byte for byte)
//! or a TCP message.
//!
//! It does what hickory-server's read loop does before calling our
//! handler, so neither transport needs hickory's `Server`: drop what is
//! shorter than a header, answer FORMERR with the header echoed when the
//! rest does not decode, and never answer a response.

use std::net::SocketAddr;

use hickory_proto::op::{Header, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tracing::debug;

use super::handler::{self, CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD};
use super::reply::Reply;
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::state::ServingState;

/// The reply to the UDP datagram `bytes` from `src`, or `None` when it gets
/// none. `max_udp` caps the reply's size whatever the client offers (and
/// is what the reply's OPT record advertises); normally
/// [`MAX_UDP_PAYLOAD`].
pub fn answer_bytes(
    state: &ServingState,
    health: &RegionHealth,
    metrics: &Metrics,
    bytes: &[u8],
    src: SocketAddr,
    max_udp: u16,
) -> Option<Vec<u8>> {
    let request = match decode_query(bytes, src, Protocol::Udp) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let mut reply = handler::answer(state, health, Some(metrics), &request, max_udp);
    handler::fit_udp(&request, &mut reply, max_udp);
    Some(encode(&request, &reply, None))
}

/// The reply to the TCP message `bytes` from `src` (without its length
/// prefix), or `None` when it gets none: as hickory's server loop and our
/// handler give it over TCP, with no size limit and no truncation.
pub fn answer_tcp_bytes(
    state: &ServingState,
    health: &RegionHealth,
    metrics: &Metrics,
    bytes: &[u8],
    src: SocketAddr,
) -> Option<Vec<u8>> {
    let request = match decode_query(bytes, src, Protocol::Tcp) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let reply = handler::answer(state, health, Some(metrics), &request, MAX_UDP_PAYLOAD);
    Some(encode(&request, &reply, Some(u16::MAX)))
}

/// Decodes a query as hickory's server loop would, or says what to do
/// instead: `Err(None)` drops it (shorter than a header, or a response —
/// two servers must not bounce errors at each other), `Err(Some(reply))`
/// answers FORMERR with the header echoed.
fn decode_query(
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Result<Request, Option<Vec<u8>>> {
    let header = Header::read(&mut BinDecoder::new(bytes)).map_err(|_| None)?;
    if header.metadata.message_type == MessageType::Response {
        return Err(None);
    }
    // A compressed question name is refused: in a query a pointer can only
    // point into the header, and hickory echoes the question's bytes
    // verbatim, so the reply would carry a pointer into its own header and
    // not parse (found by fuzzing).
    if header.counts.queries > 0 && name_has_pointer(&bytes[12..]) {
        debug!(%src, "compressed question name");
        return Err(Some(format_error(&header)));
    }
    Request::from_bytes(bytes.to_vec(), src, protocol).map_err(|error| {
        debug!(%src, %error, "undecodable query");
        Some(format_error(&header))
    })
}

/// Whether the name at the start of `wire` uses a compression pointer (or
/// another label type than a plain label).
fn name_has_pointer(wire: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len & 0xC0 != 0 {
            return true;
        }
        if len == 0 {
            return false;
        }
        at += 1 + usize::from(len);
    }
    false
}

/// Encodes `reply` to `request` within `limit` bytes (by default the
/// reply's advertised payload size, or 512 without EDNS), as hickory's
/// response handler does; SERVFAIL if it cannot be encoded.
pub(crate) fn encode(request: &Request, reply: &Reply, limit: Option<u16>) -> Vec<u8> {
    let limit = limit.unwrap_or(match &reply.edns {
        Some(edns) => edns.max_payload(),
        None => CLASSIC_UDP_PAYLOAD,
    });
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(limit);
    if reply
        .message(request)
        .destructive_emit(&mut encoder)
        .is_ok()
    {
        return bytes;
    }
    debug!(id = request.metadata.id, "reply does not encode; SERVFAIL");
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    header_only(metadata)
}

/// FORMERR for a message whose header decoded but whose body did not: the
/// header's ID, opcode, RD and CD, no question, no EDNS.
pub(crate) fn format_error(header: &Header) -> Vec<u8> {
    let mut fallback = Metadata::response_from_request(&header.metadata);
    fallback.response_code = ResponseCode::FormErr;
    // An empty question section (hickory keeps its own constructor private).
    let Ok(queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else {
        return header_only(fallback);
    };
    let message = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    let mut bytes = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(CLASSIC_UDP_PAYLOAD);
    match message.destructive_emit(&mut encoder) {
        Ok(_) => bytes,
        Err(_) => header_only(fallback),
    }
}

fn header_only(metadata: Metadata) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut bytes);
    let header = Header {
        metadata,
        counts: Default::default(),
    };
    // A 12-byte header always fits an unbounded encoder.
    let _ = header.emit(&mut encoder);
    bytes
}
