//! The authoritative lookup algorithm (RFC 1034 §4.3.2, wildcards per
//! RFC 4592, CNAME-chain rcodes per RFC 6604, minimal ANY per RFC 8482),
//! as a pure function of the zone data and the question.
//!
//! It knows nothing of the wire format: it says which RRsets go in which
//! section, and asks a [`GeoAnswerer`] for the addresses of geo names.

use std::net::IpAddr;

use topology::{DomainName, GeoName, RecordData, RecordType, Svcb};

use crate::zone::{Node, Rrset, ZoneData, ZoneSet};

/// Type code of a DS query, answered by the parent side of a cut.
const QTYPE_DS: u16 = 43;
/// Type code of an ANY query.
pub const QTYPE_ANY: u16 = 255;
/// Longest CNAME chain followed inside a zone.
const MAX_CHAIN: usize = 12;

/// The response code the lookup decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The name exists (an answer, a NODATA, or a referral).
    NoError,
    /// The name (or the end of the CNAME chain) does not exist.
    NxDomain,
    /// The name is in no zone served here.
    Refused,
}

/// What a geo name answers with, for one client.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoAnswer {
    /// The addresses, in answer order (A and AAAA).
    pub addresses: Vec<IpAddr>,
    /// The HTTPS records, one per region answered (HTTPS).
    pub https: Vec<Svcb>,
    /// TTL in seconds.
    pub ttl: u32,
    /// ECS scope prefix: how widely around the client this answer holds.
    pub scope: u8,
}

/// Decides the addresses of geo names for the client being answered.
pub trait GeoAnswerer {
    /// The answer for `geo` in `zone` and type `rtype` (A or AAAA, or
    /// HTTPS for a geo name with `https:`), or `None` when there is
    /// nothing to give (a NODATA).
    fn answer(&mut self, zone: &ZoneData, geo: &GeoName, rtype: RecordType) -> Option<GeoAnswer>;
}

/// One RRset placed in a response section.
#[derive(Clone, Debug)]
pub enum Part<'z> {
    /// Static data; `owner` is set when it was synthesized from a wildcard
    /// and must carry the queried name instead of `*.…`.
    Rrset {
        /// The zone's RRset.
        rrset: Rrset<'z>,
        /// Owner to write instead of the RRset's own.
        owner: Option<DomainName>,
    },
    /// Addresses chosen for a geo name.
    Geo {
        /// Owner name.
        owner: DomainName,
        /// A, AAAA or HTTPS.
        rtype: RecordType,
        /// What was chosen.
        answer: GeoAnswer,
    },
}

/// Everything the lookup decided about a response.
#[derive(Clone, Debug)]
pub struct Resolution<'z> {
    /// Response code.
    pub outcome: Outcome,
    /// The AA bit.
    pub authoritative: bool,
    /// For a referral to a delegated child: the delegation point's name
    /// and node (where a signed zone finds the DS RRset to add).
    pub referral: Option<(&'z DomainName, &'z Node)>,
    /// Answer section.
    pub answer: Vec<Part<'z>>,
    /// Authority section (SOA for negative answers, NS for referrals).
    pub authority: Vec<Part<'z>>,
    /// Additional section (addresses of NS/MX/SRV targets, glue).
    pub additional: Vec<Part<'z>>,
    /// ECS scope when the answer depended on the client; `None` otherwise.
    pub client_scope: Option<u8>,
    /// For a negative answer: the name found not to exist or to lack the
    /// type, and the node that answered for it (the wildcard's, for a name
    /// synthesized from one; `None` when the name does not exist). What a
    /// signed zone's denial of existence is built from.
    pub denied: Option<(DomainName, Option<&'z Node>)>,
}

impl<'z> Resolution<'z> {
    fn new(outcome: Outcome, authoritative: bool) -> Self {
        Resolution {
            outcome,
            authoritative,
            referral: None,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            client_scope: None,
            denied: None,
        }
    }
}

/// Answers `qtype` for `qname` (lowercase wire form) from `zones`.
pub fn resolve<'z>(
    zones: &'z ZoneSet,
    qname: &[u8],
    qtype: u16,
    geo: &mut impl GeoAnswerer,
) -> Resolution<'z> {
    let Some(zone) = zones.find_zone(qname) else {
        return Resolution::new(Outcome::Refused, false);
    };
    let mut resolution = Resolution::new(Outcome::NoError, true);
    let mut lookup = Lookup {
        zones,
        zone,
        qtype,
        geo,
        resolution: &mut resolution,
    };
    let mut name = qname.to_vec();
    let mut visited: Vec<Vec<u8>> = Vec::new();
    for _ in 0..MAX_CHAIN {
        let Some(target) = lookup.step(&name) else {
            break;
        };
        visited.push(std::mem::replace(&mut name, target.wire().to_vec()));
        let in_zone = topology::name::is_wire_at_or_below(&name, zone.origin.wire());
        if !in_zone || visited.contains(&name) {
            break;
        }
    }
    lookup.add_additional();
    resolution
}

struct Lookup<'z, 'r, G> {
    zones: &'z ZoneSet,
    zone: &'z ZoneData,
    qtype: u16,
    geo: &'r mut G,
    resolution: &'r mut Resolution<'z>,
}

impl<'z, G: GeoAnswerer> Lookup<'z, '_, G> {
    /// Looks `name` up and fills the response; returns the CNAME target to
    /// follow, if any.
    fn step(&mut self, name: &[u8]) -> Option<DomainName> {
        if let Some(cut) = self.find_cut(name) {
            self.refer(cut);
            return None;
        }
        if let Some(node) = self.zone.nodes.get(name) {
            return self.answer_from(name, node, None);
        }
        // The name does not exist: look for a wildcard at the closest
        // encloser (RFC 4592 §3.3.1).
        let encloser = ancestors(name)
            .find(|ancestor| self.zone.nodes.contains_key(*ancestor))
            .unwrap_or(self.zone.origin.wire());
        let mut wildcard = Vec::with_capacity(encloser.len() + 2);
        wildcard.extend_from_slice(&[1, b'*']);
        wildcard.extend_from_slice(encloser);
        match self.zone.nodes.get(wildcard.as_slice()) {
            Some(node) => {
                let owner = DomainName::from_wire(name).expect("query names are well formed");
                self.answer_from(name, node, Some(owner))
            }
            None => {
                self.resolution.outcome = Outcome::NxDomain;
                self.negative(name, None);
                None
            }
        }
    }

    /// The delegation point at or above `name`, if any, skipping the DS
    /// query at the cut itself, which the parent answers.
    fn find_cut(&self, name: &[u8]) -> Option<&'z Node> {
        let origin_len = self.zone.origin.wire().len();
        // Ancestors strictly below the origin, nearest the origin first.
        let mut below_origin: Vec<&[u8]> = std::iter::once(name)
            .chain(ancestors(name))
            .take_while(|n| n.len() > origin_len)
            .collect();
        below_origin.reverse();
        below_origin.into_iter().find_map(|candidate| {
            let node = self.zone.nodes.get(candidate)?;
            let ds_at_cut = candidate == name && self.qtype == QTYPE_DS;
            (node.is_cut && !ds_at_cut).then_some(node)
        })
    }

    fn refer(&mut self, cut: &'z Node) {
        let ns = cut
            .rrsets()
            .map(|id| self.zones.rrset(id))
            .find(|rrset| rrset.rtype == RecordType::Ns)
            .expect("a cut has NS records");
        if self.resolution.answer.is_empty() {
            self.resolution.authoritative = false;
        }
        self.resolution.referral = Some((ns.name, cut));
        self.resolution.authority.push(Part::Rrset {
            rrset: ns,
            owner: None,
        });
    }

    fn negative(&mut self, name: &[u8], node: Option<&'z Node>) {
        self.resolution.denied = DomainName::from_wire(name).map(|name| (name, node));
        self.resolution.authority.push(Part::Rrset {
            rrset: self.zones.rrset(self.zone.negative_soa),
            owner: None,
        });
    }

    fn answer_from(
        &mut self,
        name: &[u8],
        node: &'z Node,
        synthesized: Option<DomainName>,
    ) -> Option<DomainName> {
        let rrsets = || node.rrsets().map(|id| self.zones.rrset(id));
        let static_part = |rrset: Rrset<'z>| Part::Rrset {
            rrset,
            owner: synthesized.clone(),
        };

        if let Some(cname) = rrsets().find(|r| r.rtype == RecordType::Cname)
            && self.qtype != RecordType::Cname.code()
        {
            self.resolution.answer.push(static_part(cname));
            return match cname.data.first() {
                Some(RecordData::Cname(target)) => Some(target.clone()),
                _ => None,
            };
        }
        if self.qtype == QTYPE_ANY {
            // RFC 8482 §4.1: answer with one RRset rather than all of them.
            let geo_part = node.geo().and_then(|index| {
                let owner = synthesized
                    .clone()
                    .unwrap_or_else(|| self.zone.geo[index].name.clone());
                [RecordType::A, RecordType::Aaaa]
                    .into_iter()
                    .find_map(|rtype| self.geo_part(index, rtype, owner.clone()))
            });
            match geo_part.or_else(|| rrsets().next().map(static_part)) {
                Some(part) => self.resolution.answer.push(part),
                None => self.negative(name, Some(node)),
            }
            return None;
        }
        if let Some(rrset) = rrsets().find(|r| r.rtype.code() == self.qtype) {
            self.resolution.answer.push(static_part(rrset));
            return None;
        }
        let geo_type = RecordType::from_code(self.qtype).filter(|t| {
            matches!(t, RecordType::A | RecordType::Aaaa)
                || (*t == RecordType::Https
                    && node
                        .geo()
                        .is_some_and(|index| self.zone.geo[index].https.is_some()))
        });
        if let (Some(index), Some(rtype)) = (node.geo(), geo_type) {
            let owner = synthesized
                .clone()
                .unwrap_or_else(|| self.zone.geo[index].name.clone());
            if let Some(part) = self.geo_part(index, rtype, owner) {
                self.resolution.answer.push(part);
                return None;
            }
        }
        self.negative(name, Some(node));
        None
    }

    /// Adds the addresses of in-zone NS, MX and SRV targets (and glue for
    /// referrals) to the additional section, as Knot and NSD do; for SVCB
    /// and HTTPS targets (RFC 9460 §4.1) also their RRset of the same type,
    /// and for a geo name the answers this client gets, so the additional
    /// data sends it to the same region a query for them would.
    fn add_additional(&mut self) {
        let mut targets: Vec<(&'z DomainName, RecordType)> = Vec::new();
        for part in self
            .resolution
            .answer
            .iter()
            .chain(&self.resolution.authority)
        {
            let Part::Rrset { rrset, .. } = part else {
                continue;
            };
            if !matches!(
                rrset.rtype,
                RecordType::Ns
                    | RecordType::Mx
                    | RecordType::Srv
                    | RecordType::Svcb
                    | RecordType::Https
            ) {
                continue;
            }
            for data in rrset.data.iter() {
                if let Some(target) = data.target()
                    && target.is_at_or_below(&self.zone.origin)
                    && !targets.iter().any(|(t, _)| *t == target)
                {
                    targets.push((target, rrset.rtype));
                }
            }
        }
        for (target, via) in targets {
            let Some(node) = self.zone.nodes.get(target.wire()) else {
                continue;
            };
            let binding = matches!(via, RecordType::Svcb | RecordType::Https);
            for id in node.rrsets() {
                let rrset = self.zones.rrset(id);
                if matches!(rrset.rtype, RecordType::A | RecordType::Aaaa)
                    || (binding && rrset.rtype == via)
                {
                    self.resolution
                        .additional
                        .push(Part::Rrset { rrset, owner: None });
                }
            }
            if let (Some(index), true) = (node.geo(), binding) {
                let with_https = via == RecordType::Https && self.zone.geo[index].https.is_some();
                for rtype in [RecordType::A, RecordType::Aaaa, RecordType::Https] {
                    if rtype == RecordType::Https && !with_https {
                        continue;
                    }
                    if let Some(part) = self.geo_part(index, rtype, target.clone()) {
                        self.resolution.additional.push(part);
                    }
                }
            }
        }
    }

    fn geo_part(&mut self, index: usize, rtype: RecordType, owner: DomainName) -> Option<Part<'z>> {
        let answer = self.geo.answer(self.zone, &self.zone.geo[index], rtype)?;
        if answer.addresses.is_empty() && answer.https.is_empty() {
            return None;
        }
        self.resolution.client_scope = Some(answer.scope);
        Some(Part::Geo {
            owner,
            rtype,
            answer,
        })
    }
}

/// Proper ancestors of a wire name, nearest first, root included.
fn ancestors(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = *name.get(at)? as usize;
        if len == 0 {
            return None;
        }
        at += 1 + len;
        name.get(at..)
    })
}
