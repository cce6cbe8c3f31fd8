//! The request handler hickory's server calls for every query: checks the
//! message, runs the lookup, and writes the reply within the client's size
//! limit.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RData, Record, rdata};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use topology::RecordType;
use tracing::debug;

use super::records::{to_name, to_wire};
use crate::client::{Client, EcsQuery};
use crate::geo::GeoResolver;
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::resolve::{Outcome, Part, Resolution, resolve};
use crate::state::ServingState;

/// Largest UDP reply we send, whatever the client offers: the DNS Flag Day
/// 2020 figure, which avoids IP fragmentation on almost every path.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// What a client without EDNS may receive over UDP (RFC 1035 §4.2.1).
const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// Answers queries from the currently published zone data and health.
pub struct Handler {
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
}

impl Handler {
    /// A handler reading whatever `state` and `health` hold at each query.
    pub fn new(
        state: Arc<ArcSwap<ServingState>>,
        health: Arc<ArcSwap<RegionHealth>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Handler {
            state,
            health,
            metrics,
        }
    }
}

/// A reply before encoding.
struct Reply {
    metadata: Metadata,
    edns: Option<Edns>,
    answer: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
    /// A referral must carry its glue; if it cannot, it is truncated.
    needs_additional: bool,
}

impl Reply {
    fn new(request: &Request) -> Reply {
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(MAX_UDP_PAYLOAD);
            ours.set_version(0);
            // RFC 3225 §3: the DO bit is copied from the query.
            ours.set_dnssec_ok(theirs.flags().dnssec_ok);
            ours
        });
        Reply {
            metadata: Metadata::response_from_request(&request.metadata),
            edns,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            needs_additional: false,
        }
    }

    fn error(request: &Request, code: ResponseCode) -> Reply {
        let mut reply = Reply::new(request);
        reply.metadata.response_code = code;
        reply
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let state = self.state.load();
        let health = self.health.load();
        let mut reply = answer(&state, &health, &self.metrics, request);
        if request.protocol() == Protocol::Udp {
            fit_udp(request, &mut reply);
        }
        let metadata = reply.metadata;
        let message = MessageResponseBuilder::new(&request.queries, reply.edns.as_ref()).build(
            reply.metadata,
            reply.answer.iter(),
            reply.authority.iter(),
            std::iter::empty(),
            reply.additional.iter(),
        );
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, src = %request.src(), "failed to send reply");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// Decides the whole reply to `request`.
fn answer(
    state: &ServingState,
    health: &RegionHealth,
    metrics: &Metrics,
    request: &Request,
) -> Reply {
    if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
        // RFC 6891 §6.1.3: we speak EDNS version 0 only.
        return Reply::error(request, ResponseCode::BADVERS);
    }
    if request.metadata.op_code != OpCode::Query {
        return Reply::error(request, ResponseCode::NotImp);
    }
    let queries = request.queries.queries();
    let [query] = queries else {
        return Reply::error(request, ResponseCode::FormErr);
    };
    let qtype = u16::from(query.query_type());
    match qtype {
        // OPT is not a question one can ask.
        41 => return Reply::error(request, ResponseCode::FormErr),
        // Zone transfers are not offered.
        251 | 252 => return Reply::error(request, ResponseCode::Refused),
        _ => {}
    }
    if query.query_class() != DNSClass::IN {
        return Reply::error(request, ResponseCode::Refused);
    }
    let Some(qname) = to_wire(query.name()) else {
        return Reply::error(request, ResponseCode::FormErr);
    };

    let client = match Client::new(request.src().ip(), ecs_option(request)) {
        Ok(client) => client,
        Err(error) => {
            debug!(%error, "malformed client subnet option");
            return Reply::error(request, ResponseCode::FormErr);
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
    let resolution = resolve(&state.zones, qname.wire(), qtype, &mut geo);
    let region = geo
        .decision
        .as_ref()
        .and_then(|d| d.chosen.first())
        .map(|id| state.topology.region(*id).name.as_str());
    if geo.decision.is_some() {
        metrics.record_client_source(client.ecs.is_some());
    }
    metrics.record_query(
        RecordType::from_code(qtype).map_or("OTHER", RecordType::as_str),
        match resolution.outcome {
            Outcome::NoError => "NOERROR",
            Outcome::NxDomain => "NXDOMAIN",
            Outcome::Refused => "REFUSED",
        },
        region,
    );
    let mut reply = Reply::new(request);
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
    reply.needs_additional = resolution.referral;
    let Resolution {
        answer,
        authority,
        additional,
        ..
    } = resolution;
    reply.answer = to_records(state, answer);
    // Answer owners spelled as the client spelled the question, as Knot
    // does (hickory compares names case-insensitively).
    let asked = query.original().name();
    for record in &mut reply.answer {
        if record.name == *asked {
            record.name = asked.clone();
        }
    }
    reply.authority = to_records(state, authority);
    reply.additional = to_records(state, additional);
    reply
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

fn to_records(state: &ServingState, parts: Vec<Part<'_>>) -> Vec<Record> {
    let mut records = Vec::new();
    for part in parts {
        match part {
            Part::Rrset { rrset, owner } => {
                let stored = state.wire.get(rrset.id);
                match owner {
                    None => records.extend_from_slice(stored),
                    Some(owner) => {
                        let owner = to_name(&owner);
                        records.extend(stored.iter().map(|record| {
                            let mut record = record.clone();
                            record.name = owner.clone();
                            record
                        }));
                    }
                }
            }
            Part::Geo {
                owner,
                rtype,
                answer,
            } => {
                let owner = to_name(&owner);
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

/// Keeps a UDP reply within what the client can receive: whole RRsets or
/// nothing, with TC set when answer or authority data (or a referral's
/// glue) had to go, so the client retries over TCP (RFC 2181 §9).
fn fit_udp(request: &Request, reply: &mut Reply) {
    let limit = match &request.edns {
        Some(edns) => edns
            .max_payload()
            .clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
        None => CLASSIC_UDP_PAYLOAD,
    };
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
    let message = MessageResponseBuilder::new(&request.queries, reply.edns.as_ref()).build(
        reply.metadata,
        reply.answer.iter(),
        reply.authority.iter(),
        std::iter::empty(),
        reply.additional.iter(),
    );
    message
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
