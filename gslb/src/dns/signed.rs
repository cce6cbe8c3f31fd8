//! Signed zones' replies: the hickory side of [`crate::dnssec`]. Adds the
//! apex DNSKEY RRset, and for queries with DO set an RRSIG after every
//! authoritative RRset of the answer and authority sections; in a negative
//! answer, compact denial's NSEC (RFC 9824); in a referral, the child's DS
//! RRset or, for an unsigned child, an NSEC at the delegation point that
//! proves there is none (RFC 4035 §3.1.4).
//!
//! A referral's NS RRset and glue are the child's data and stay unsigned
//! (RFC 4035 §2.2), and additional-section data is not signed: resolvers
//! re-ask for the addresses they use.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::Request;
use topology::dnssec::DNSKEY_TTL;
use topology::{DomainName, RecordType};

use super::records::{rrset_records, to_name, to_wire};
use super::reply::Reply;
use crate::dnssec::{
    CanonicalRrset, DNSKEY, NSEC, NXNAME, RRSIG, ZoneSigner, compact_nsec, unix_now,
};
use crate::state::ServingState;
use crate::zone::{Node, ZoneData};

/// What the lookup found that a signed reply proves or adds to beyond the
/// RRsets it already holds.
pub(super) struct Findings<'z> {
    /// The negative finding ([`crate::resolve::Resolution::denied`]).
    pub(super) denied: Option<(DomainName, Option<&'z Node>)>,
    /// The delegation referred to ([`crate::resolve::Resolution::referral`]).
    pub(super) referral: Option<(&'z DomainName, &'z Node)>,
}

/// Turns `reply` to `qname`/`qtype` into a signed zone's reply; leaves it
/// alone when the zone is not signed.
pub(super) fn secure(
    state: &ServingState,
    request: &Request,
    qname: &DomainName,
    qtype: u16,
    findings: Findings<'_>,
    reply: &mut Reply,
) {
    let Findings {
        mut denied,
        referral,
    } = findings;
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
    if !dnssec_ok {
        return;
    }
    let negative_ttl = state.zones.rrset(zone.negative_soa).ttl;
    let nsec = |name: &DomainName, types: Vec<u16>| {
        raw_record(
            to_name(name),
            negative_ttl,
            NSEC,
            compact_nsec(name.wire(), &types),
        )
    };
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
                let mut present = node_types(state, zone, &name, node);
                // The type asked for is absent here, whatever the node
                // holds otherwise (a geo name with no healthy region).
                present.retain(|t| *t != qtype);
                types.extend(present);
            }
        }
        reply.authority.push(nsec(&name, types));
    }
    if let Some((cut, node)) = referral {
        let ds = node
            .rrsets()
            .find(|id| state.zones.rrset(*id).rtype == RecordType::Ds);
        match ds {
            Some(id) => reply
                .authority
                .extend(rrset_records(state.zones.rrset(id), None)),
            None => {
                // No DS: the NSEC at the cut lists NS but neither DS nor
                // SOA, which a resolver takes as proof of an unsigned child.
                let mut types = vec![RRSIG, NSEC];
                types.extend(node_types(state, zone, cut, node));
                reply.authority.push(nsec(cut, types));
            }
        }
    }
    let now = unix_now();
    reply.answer = signed(signer, std::mem::take(&mut reply.answer), now);
    reply.authority = signed(signer, std::mem::take(&mut reply.authority), now);
}

/// The types present at `name`, for its NSEC's type bit map.
fn node_types(state: &ServingState, zone: &ZoneData, name: &DomainName, node: &Node) -> Vec<u16> {
    let mut present: Vec<u16> = node
        .rrsets()
        .map(|id| state.zones.rrset(id).rtype.code())
        .collect();
    if let Some(index) = node.geo() {
        present.extend([RecordType::A.code(), RecordType::Aaaa.code()]);
        if zone.geo[index].https.is_some() {
            present.push(RecordType::Https.code());
        }
    }
    if *name == zone.origin {
        present.push(DNSKEY);
    }
    present
}

/// `records`, each RRset the zone is authoritative for followed by its
/// RRSIGs; NS RRsets below `signer`'s apex (a delegation's) go unsigned.
fn signed(signer: &ZoneSigner, records: Vec<Record>, now: u32) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    for rrset in records.chunk_by(|a, b| a.record_type() == b.record_type() && a.name == b.name) {
        out.extend_from_slice(rrset);
        let first = &rrset[0];
        let Some(owner) = to_wire(&first.name) else {
            continue;
        };
        if first.record_type() == WireType::NS && owner != *signer.origin() {
            continue;
        }
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
pub(super) fn canonical_rdata(data: &RData) -> Option<Vec<u8>> {
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
