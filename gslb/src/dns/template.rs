//! Canonical replies: the slow path run on a lowercase question with no
//! EDNS, encoded without a size limit — the material the fast path
//! ([`crate::fast`]) cuts its templates from, so hickory stays the
//! authority on the wire format.
//!
//! A geo name's answer is fixed by the caller instead of decided for a
//! client, so one canonical reply exists per answer the fast path may give.
//! Signed zones have a second canonical reply per answer, to the same
//! question with the DO bit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use topology::{DomainName, GeoName, RecordType};

use super::handler::{self, MAX_UDP_PAYLOAD};
use super::raw::encode;
use crate::client::Client;
use crate::resolve::{GeoAnswer, GeoAnswerer};
use crate::state::ServingState;
use crate::zone::ZoneData;

/// Where canonical queries pretend to come from (the address plays no part:
/// geo names are answered by the caller's fixed answer).
const CANONICAL_SOURCE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// One canonical reply.
#[derive(Clone, Debug)]
pub struct Canonical {
    /// The whole message: header (ID 0, RD and CD clear), the question as
    /// asked, and the sections, with no OPT record.
    pub bytes: Vec<u8>,
    /// Whether the lookup asked for a geo answer — the reply then depends
    /// on the client (and on the fixed answer given).
    pub asked_geo: bool,
}

/// The slow path's reply to `qname` (lowercase) `qtype` IN, with every geo
/// name it meets answered by `geo` (or by nothing, a NODATA, if `None`).
/// `None` if the question cannot be put in a message.
pub fn canonical_reply(
    state: &ServingState,
    qname: &DomainName,
    qtype: u16,
    geo: Option<&GeoAnswer>,
) -> Option<Canonical> {
    canonical(state, qname, qtype, geo, false)
}

/// [`canonical_reply`] to a query with the DO bit: in a signed zone, the
/// signed reply (RRSIGs, compact denial) as the slow path sends it then,
/// but still without the OPT record, which the fast path writes itself.
pub fn canonical_signed_reply(
    state: &ServingState,
    qname: &DomainName,
    qtype: u16,
    geo: Option<&GeoAnswer>,
) -> Option<Canonical> {
    canonical(state, qname, qtype, geo, true)
}

/// OPT: root owner, type 41, payload 4096, extended RCODE and version 0,
/// the DO bit, no options.
const DO_OPT: [u8; 11] = [0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];

fn canonical(
    state: &ServingState,
    qname: &DomainName,
    qtype: u16,
    geo: Option<&GeoAnswer>,
    dnssec_ok: bool,
) -> Option<Canonical> {
    let mut query = Vec::with_capacity(12 + qname.wire().len() + 4 + DO_OPT.len());
    query.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(dnssec_ok)]);
    query.extend_from_slice(qname.wire());
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    if dnssec_ok {
        query.extend_from_slice(&DO_OPT);
    }
    let request = Request::from_bytes(query, CANONICAL_SOURCE, Protocol::Tcp).ok()?;
    let client = Client::new(CANONICAL_SOURCE.ip(), None).ok()?;
    let mut fixed = FixedGeo {
        answer: geo,
        asked: false,
    };
    let mut reply = handler::respond(
        state,
        &request,
        &client,
        qname,
        qtype,
        &mut fixed,
        MAX_UDP_PAYLOAD,
    );
    // The DO bit has done its work (signing); the OPT record is the fast
    // path's to write, per client.
    reply.edns = None;
    Some(Canonical {
        bytes: encode(&request, &reply, Some(u16::MAX)),
        asked_geo: fixed.asked,
    })
}

/// Answers every geo name with one fixed answer, noting that it was asked.
struct FixedGeo<'a> {
    answer: Option<&'a GeoAnswer>,
    asked: bool,
}

impl GeoAnswerer for FixedGeo<'_> {
    fn answer(
        &mut self,
        _zone: &ZoneData,
        _geo: &GeoName,
        _rtype: RecordType,
    ) -> Option<GeoAnswer> {
        self.asked = true;
        self.answer.cloned()
    }
}
