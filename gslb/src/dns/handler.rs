//! The answer to one decoded query: checks the message, runs the lookup,
//! spells the names, and keeps the reply within the client's size limit.
//!
//! UDP ([`super::answer_bytes`]) and TCP ([`super::answer_tcp_bytes`]) reach the same
//! [`answer`]; the fast path's templates ([`super::template`]) the same
//! [`respond`].

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, rdata};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::server::Request;
use topology::{DomainName, RecordType};
use tracing::debug;

use super::records::{rrset_records, to_name, to_svcb, to_wire};
use super::reply::Reply;
use crate::client::{Client, EcsQuery};
use crate::geo::GeoResolver;
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::resolve::{GeoAnswerer, Outcome, Part, Resolution, resolve};
use crate::state::ServingState;

/// Largest UDP reply we send, whatever the client offers: the DNS Flag Day
/// 2020 figure, which avoids IP fragmentation on almost every path.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// What a client without EDNS may receive over UDP (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// Decides the whole reply to `request` (counting it in `metrics`, if
/// given); `max_udp` is the payload size the reply's OPT advertises.
pub(crate) fn answer(
    state: &ServingState,
    health: &RegionHealth,
    metrics: Option<&Metrics>,
    request: &Request,
    max_udp: u16,
) -> Reply {
    if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
        // RFC 6891 §6.1.3: we speak EDNS version 0 only.
        return Reply::error(request, ResponseCode::BADVERS, max_udp);
    }
    if request.metadata.op_code != OpCode::Query {
        return Reply::error(request, ResponseCode::NotImp, max_udp);
    }
    let queries = request.queries.queries();
    let [query] = queries else {
        return Reply::error(request, ResponseCode::FormErr, max_udp);
    };
    let qtype = u16::from(query.query_type());
    match qtype {
        // OPT is not a question one can ask.
        41 => return Reply::error(request, ResponseCode::FormErr, max_udp),
        // Zone transfers are not offered.
        251 | 252 => return Reply::error(request, ResponseCode::Refused, max_udp),
        _ => {}
    }
    if query.query_class() != DNSClass::IN {
        return Reply::error(request, ResponseCode::Refused, max_udp);
    }
    let Some(qname) = to_wire(query.name()) else {
        return Reply::error(request, ResponseCode::FormErr, max_udp);
    };

    let client = match Client::new(request.src().ip(), ecs_option(request)) {
        Ok(client) => client,
        Err(error) => {
            debug!(%error, "malformed client subnet option");
            return Reply::error(request, ResponseCode::FormErr, max_udp);
        }
    };
    let geoip = state.geoip.load();
    let mut geo = GeoResolver::new(
        &state.topology,
        &geoip,
        Some(&state.scopes),
        health,
        &client,
    );
    let reply = respond(state, request, &client, &qname, qtype, &mut geo, max_udp);
    if let Some(metrics) = metrics {
        let region = geo
            .decision
            .as_ref()
            .and_then(|d| d.chosen.first())
            .map(|id| state.topology.region(*id).name.as_str());
        if geo.decision.is_some() {
            metrics.record_client_sources(client.ecs.is_some(), 1);
        }
        let rcode = u16::from(reply.metadata.response_code);
        metrics.record_queries(qtype, rcode, region, 1);
    }
    reply
}

/// The reply to a well-formed question `qname`/`qtype` (IN) from `client`,
/// with geo names answered by `geo`: the lookup, the records, the client
/// subnet echo, and every name spelled as the question spells it.
pub(crate) fn respond(
    state: &ServingState,
    request: &Request,
    client: &Client,
    qname: &DomainName,
    qtype: u16,
    geo: &mut impl GeoAnswerer,
    max_udp: u16,
) -> Reply {
    let resolution = resolve(&state.zones, qname.wire(), qtype, geo);
    let mut reply = Reply::new(request, max_udp);
    if let (Some(echo), Some(edns)) = (client.ecs, reply.edns.as_mut()) {
        // RFC 7871 §7.2.1: echo family, source prefix and address, with the
        // prefix this answer holds for (0 when it does not depend on the
        // client).
        let scope = client.echo_scope(resolution.client_scope.unwrap_or(0));
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                echo.address,
                echo.source_prefix,
                scope,
            )));
    }
    reply.metadata.authoritative = resolution.authoritative;
    reply.metadata.response_code = match resolution.outcome {
        Outcome::NoError => ResponseCode::NoError,
        Outcome::NxDomain => ResponseCode::NXDomain,
        Outcome::Refused => ResponseCode::Refused,
    };
    reply.needs_additional = resolution.referral.is_some();
    let Resolution {
        answer,
        authority,
        additional,
        denied,
        referral,
        ..
    } = resolution;
    reply.answer = to_records(answer);
    reply.authority = to_records(authority);
    reply.additional = to_records(additional);
    let findings = super::signed::Findings { denied, referral };
    super::signed::secure(state, request, qname, qtype, findings, &mut reply);
    if let [query] = request.queries.queries() {
        let asked = query.original().name();
        for section in [
            &mut reply.answer,
            &mut reply.authority,
            &mut reply.additional,
        ] {
            for record in section.iter_mut() {
                respell_record(record, asked);
            }
        }
    }
    reply
}

/// Spells every name of `record` (owner and RDATA) whose trailing labels
/// equal the question's, ignoring case, with the question's spelling of
/// those labels.
///
/// hickory compresses a name only against byte-identical earlier names,
/// and the question is never a compression target; spelling shared
/// suffixes one way makes every reply's layout (which names are pointers,
/// and so its size) the same whatever case the client used — the effect
/// Knot gets by compressing against the question — and lets the fast path
/// patch the client's spelling into templates built from a lowercase
/// question.
fn respell_record(record: &mut Record, asked: &Name) {
    respell(&mut record.name, asked);
    match &mut record.data {
        RData::NS(rdata::NS(name))
        | RData::CNAME(rdata::CNAME(name))
        | RData::PTR(rdata::PTR(name)) => {
            respell(name, asked);
        }
        RData::MX(mx) => {
            respell(&mut mx.exchange, asked);
        }
        RData::SRV(srv) => {
            respell(&mut srv.target, asked);
        }
        RData::SOA(soa) => {
            respell(&mut soa.mname, asked);
            respell(&mut soa.rname, asked);
        }
        _ => {}
    }
}

/// Rewrites the labels `name` shares with `asked` (from the root up,
/// compared without case) in `asked`'s spelling; returns whether it changed.
fn respell(name: &mut Name, asked: &Name) -> bool {
    let shared = name
        .iter()
        .rev()
        .zip(asked.iter().rev())
        .take_while(|(ours, theirs)| ours.eq_ignore_ascii_case(theirs))
        .count();
    let spelled_alike = name
        .iter()
        .rev()
        .zip(asked.iter().rev())
        .take(shared)
        .all(|(ours, theirs)| ours == theirs);
    if spelled_alike {
        return false;
    }
    // Count labels by iterating: hickory's `num_labels` leaves out a
    // leading `*` (it counts labels as RRSIG does), which would misplace
    // the suffix of a question like `*.a.example.com.` (found by fuzzing).
    let keep = name.iter().count() - shared;
    let theirs = asked.iter().count() - shared;
    let labels: Vec<&[u8]> = name
        .iter()
        .take(keep)
        .chain(asked.iter().skip(theirs))
        .collect();
    match Name::from_labels(labels) {
        Ok(mut respelled) => {
            respelled.set_fqdn(true);
            *name = respelled;
            true
        }
        // Same labels, same lengths: cannot fail; keep the name if it did.
        Err(_) => false,
    }
}

/// The query's client subnet option, if it carries one.
fn ecs_option(request: &Request) -> Option<EcsQuery> {
    match request.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(subnet) => Some(EcsQuery {
            address: subnet.addr(),
            source_prefix: subnet.source_prefix(),
            scope_prefix: subnet.scope_prefix(),
        }),
        _ => None,
    }
}

fn to_records(parts: Vec<Part<'_>>) -> Vec<Record> {
    let mut records = Vec::new();
    for part in parts {
        match part {
            Part::Rrset { rrset, owner } => {
                records.extend(rrset_records(rrset, owner.as_ref()));
            }
            Part::Geo {
                owner,
                rtype,
                answer,
            } => {
                let owner = to_name(&owner);
                records.extend(answer.https.iter().map(|svcb| {
                    let data = RData::HTTPS(rdata::HTTPS(to_svcb(svcb)));
                    Record::from_rdata(owner.clone(), answer.ttl, data)
                }));
                records.extend(answer.addresses.iter().filter_map(|ip| {
                    let data = match (rtype, ip) {
                        (RecordType::A, std::net::IpAddr::V4(v4)) => RData::A(rdata::A(*v4)),
                        (RecordType::Aaaa, std::net::IpAddr::V6(v6)) => {
                            RData::AAAA(rdata::AAAA(*v6))
                        }
                        _ => return None,
                    };
                    Some(Record::from_rdata(owner.clone(), answer.ttl, data))
                }));
            }
        }
    }
    records
}

/// The most a UDP reply to `request` may take: the client's EDNS payload
/// size (512 without EDNS, and never below it), capped at `max_udp`.
pub(crate) fn udp_limit(request: &Request, max_udp: u16) -> u16 {
    match &request.edns {
        Some(edns) => edns
            .max_payload()
            .clamp(CLASSIC_UDP_PAYLOAD, max_udp.max(CLASSIC_UDP_PAYLOAD)),
        None => CLASSIC_UDP_PAYLOAD,
    }
}

/// Keeps a UDP reply within what the client can receive: whole RRsets or
/// nothing, with TC set when answer or authority data (or a referral's
/// glue) had to go, so the client retries over TCP (RFC 2181 §9).
pub(crate) fn fit_udp(request: &Request, reply: &mut Reply, max_udp: u16) {
    let limit = udp_limit(request, max_udp);
    if encodes_within(request, reply, limit) {
        return;
    }
    if !reply.additional.is_empty() && !reply.needs_additional {
        let additional = std::mem::take(&mut reply.additional);
        if encodes_within(request, reply, limit) {
            return;
        }
        reply.additional = additional;
    }
    reply.answer.clear();
    reply.authority.clear();
    reply.additional.clear();
    reply.metadata.truncation = true;
}

/// Whether the reply encodes within `limit` bytes. Cheap when a size bound
/// already says so; otherwise a trial encoding decides.
fn encodes_within(request: &Request, reply: &Reply, limit: u16) -> bool {
    let bound = 12
        + request.queries.as_bytes().len()
        // OPT header, plus a client subnet option of at most 24 bytes.
        + reply.edns.as_ref().map_or(0, |_| 11 + 24)
        + [&reply.answer, &reply.authority, &reply.additional]
            .into_iter()
            .flatten()
            .map(record_bound)
            .sum::<usize>();
    if bound <= usize::from(limit) {
        return true;
    }
    let mut buffer = Vec::with_capacity(usize::from(limit));
    let mut encoder = BinEncoder::new(&mut buffer);
    encoder.set_max_size(limit);
    reply
        .message(request)
        .destructive_emit(&mut encoder)
        .is_ok_and(|info| !info.truncation)
}

/// Upper bound of one record's encoded size: owner and RDATA written out
/// in full, no compression.
fn record_bound(record: &Record) -> usize {
    let rdata = match &record.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::NS(name) => name.0.len() + 2,
        RData::CNAME(name) => name.0.len() + 2,
        RData::PTR(name) => name.0.len() + 2,
        RData::MX(mx) => mx.exchange.len() + 4,
        RData::SRV(srv) => srv.target.len() + 8,
        RData::SOA(soa) => soa.mname.len() + soa.rname.len() + 24,
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.len() + 1).sum(),
        // Anything else: assume the worst.
        _ => usize::from(u16::MAX),
    };
    record.name.len() + 2 + 10 + rdata
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn shared_labels_take_the_question_spelling() {
        let asked = name("WWW.Example.COM.");
        let mut soa_owner = name("example.com.");
        assert!(respell(&mut soa_owner, &asked));
        assert!(soa_owner.eq_case(&name("Example.COM.")));
        let mut mname = name("ns1.example.com.");
        respell(&mut mname, &asked);
        assert!(mname.eq_case(&name("ns1.Example.COM.")));
        let mut same = name("www.example.com.");
        respell(&mut same, &asked);
        assert!(same.eq_case(&asked));
    }

    #[test]
    fn a_wildcard_question_does_not_shift_the_respelled_suffix() {
        // hickory's num_labels leaves out a leading `*`: the SOA owner of a
        // negative answer to `*.x.Example.com.` once came out as
        // `x.Example.com.` (found by the fast/slow equivalence fuzzer).
        let asked = name("*.x.Example.com.");
        let mut soa_owner = name("example.com.");
        assert!(respell(&mut soa_owner, &asked));
        assert!(soa_owner.eq_case(&name("Example.com.")), "{soa_owner}");
    }

    #[test]
    fn unrelated_or_already_alike_names_are_left_alone() {
        let asked = name("www.example.com.");
        let mut other = name("ns.elsewhere.net.");
        assert!(!respell(&mut other, &asked));
        let mut alike = name("mail.example.com.");
        assert!(!respell(&mut alike, &asked));
        // A shared label spelled differently only further left does not
        // count: the shared part must run from the root.
        let asked = name("X.b.example.org.");
        let mut name_b = name("x.b.example.com.");
        assert!(!respell(&mut name_b, &asked));
    }
}
