//! Signed zones' replies: the hickory side of [`crate::dnssec`]. Adds the
//! apex DNSKEY RRset, and for queries with DO set an RRSIG after every
//! RRset of the answer and authority sections and, in a negative answer,
//! compact denial's NSEC (RFC 9824).
//!
//! Referrals are left unsigned in this version (no DS or proof of its
//! absence yet), and additional-section data is not signed: resolvers
//! re-ask for the addresses they use.

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::Request;
use topology::DomainName;
use topology::dnssec::DNSKEY_TTL;

use super::handler::Reply;
use super::records::{to_name, to_wire};
use crate::dnssec::{CanonicalRrset, DNSKEY, NSEC, NXNAME, RRSIG, ZoneSigner, compact_nsec};
use crate::state::ServingState;
use crate::zone::Node;

/// Turns `reply` to `qname`/`qtype` into a signed zone's reply; leaves it
/// alone when the zone is not signed. `denied` is the lookup's negative
/// finding ([`crate::resolve::Resolution::denied`]).
pub(super) fn secure(
    state: &ServingState,
    request: &Request,
    qname: &DomainName,
    qtype: u16,
    mut denied: Option<(DomainName, Option<&Node>)>,
    reply: &mut Reply,
) {
    let Some(zone) = state.zones.find_zone(qname.wire()) else {
        return;
    };
    let Some(signer) = state.signers.get(zone.origin.wire()) else {
        return;
    };
    let apex = qname.wire() == zone.origin.wire();
    if apex && qtype == DNSKEY {
        let owner = to_name(&zone.origin);
        reply.answer = signer
            .dnskeys()
            .map(|rdata| raw_record(owner.clone(), DNSKEY_TTL, DNSKEY, rdata))
            .collect();
        reply.authority.clear();
        reply.metadata.response_code = ResponseCode::NoError;
        denied = None;
    }
    let dnssec_ok = request
        .edns
        .as_ref()
        .is_some_and(|edns| edns.flags().dnssec_ok);
    if !dnssec_ok || reply.needs_additional {
        return;
    }
    if let Some((name, node)) = denied {
        let mut types = vec![RRSIG, NSEC];
        match node {
            None => {
                // RFC 9824 §3: NXDOMAIN becomes NODATA at the name, marked
                // NXNAME, so no other name need be shown not to exist.
                types.push(NXNAME);
                reply.metadata.response_code = ResponseCode::NoError;
            }
            Some(node) => {
                let mut present: Vec<u16> = node
                    .rrsets
                    .iter()
                    .map(|id| state.zones.rrset(*id).rtype.code())
                    .collect();
                if node.geo.is_some() {
                    present.extend([1, 28]);
                }
                if name.wire() == zone.origin.wire() {
                    present.push(DNSKEY);
                }
                // The type asked for is absent here, whatever the node
                // holds otherwise (a geo name with no healthy region).
                present.retain(|t| *t != qtype);
                types.extend(present);
            }
        }
        let ttl = state.zones.rrset(zone.negative_soa).ttl;
        let nsec = compact_nsec(name.wire(), &types);
        reply
            .authority
            .push(raw_record(to_name(&name), ttl, NSEC, nsec));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    reply.answer = signed(signer, std::mem::take(&mut reply.answer), now);
    reply.authority = signed(signer, std::mem::take(&mut reply.authority), now);
}

/// `records`, each RRset followed by its RRSIGs.
fn signed(signer: &ZoneSigner, records: Vec<Record>, now: u32) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    for rrset in records.chunk_by(|a, b| a.record_type() == b.record_type() && a.name == b.name) {
        out.extend_from_slice(rrset);
        let first = &rrset[0];
        let Some(owner) = to_wire(&first.name) else {
            continue;
        };
        let canonical = CanonicalRrset {
            owner: owner.wire().to_vec(),
            rtype: u16::from(first.record_type()),
            ttl: first.ttl,
            rdata: rrset
                .iter()
                .filter_map(|record| canonical_rdata(&record.data))
                .collect(),
        };
        out.extend(
            signer
                .sign(canonical, now)
                .iter()
                .map(|rrsig| raw_record(first.name.clone(), first.ttl, RRSIG, rrsig.clone())),
        );
    }
    out
}

/// RDATA in DNSSEC canonical form: names uncompressed, and lowercase for
/// the types RFC 4034 §6.2 lists.
fn canonical_rdata(data: &RData) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_canonical_form(true);
    data.emit(&mut encoder).ok()?;
    Some(bytes)
}

/// A record whose RDATA this module wrote itself.
fn raw_record(owner: Name, ttl: u32, code: u16, rdata: Vec<u8>) -> Record {
    Record::from_rdata(
        owner,
        ttl,
        RData::Unknown {
            code: WireType::from(code),
            rdata: NULL::with(rdata),
        },
    )
}
