//! The static half of the fast path's tables: for every name of every zone,
//! a template per record type it holds, and per zone the shared templates
//! for NXDOMAIN, NODATA and each delegation's referral — all cut from the
//! slow path's canonical replies. Built once per serving state.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use topology::{DomainName, RecordType};

use super::query::FAST_QTYPES;
use super::template::{TemplateId, TemplateStore, Use};
use crate::dns::canonical_reply;
use crate::state::ServingState;
use crate::zone::{Node, ZoneData};

/// Where a question's reply comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A template of [`Statics::templates`].
    Template(TemplateId),
    /// A geo name (its index over every zone's geo names, in zone order),
    /// asked for A (`false`) or AAAA (`true`).
    Geo { geo: usize, v6: bool },
    /// Something the tables do not hold: the slow path answers.
    Slow,
}

/// A template, or a note that the slow path must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Template(TemplateId),
    Slow,
}

impl Slot {
    fn route(self) -> Route {
        match self {
            Slot::Template(id) => Route::Template(id),
            Slot::Slow => Route::Slow,
        }
    }
}

/// Everything static the fast path answers from.
pub(crate) struct Statics {
    /// The templates.
    pub templates: TemplateStore,
    /// Zones, longest origin first (the order of [`crate::zone::ZoneSet`]).
    zones: Vec<ZoneTable>,
    /// Per-type templates of every name, as `(qtype, slot)` runs.
    typed: Vec<(u16, Slot)>,
    /// REFUSED, for names outside every zone.
    refused: Slot,
}

struct ZoneTable {
    origin: Box<[u8]>,
    nodes: HashMap<Box<[u8]>, NodeEntry, BuildHasherDefault<NameHasher>>,
    nxdomain: Slot,
    nodata: Slot,
}

struct NodeEntry {
    /// This name's run in [`Statics::typed`].
    typed_at: u32,
    typed_len: u16,
    /// At or below a delegation: every question gets its referral.
    referral: Option<Slot>,
    /// `*.` + this name exists: names below it that do not exist are
    /// synthesized (left to the slow path).
    wildcard_below: bool,
    /// A CNAME: questions of types without a template are left to the slow
    /// path (the chain may end anywhere).
    cname: bool,
    /// The geo name answered here.
    geo: Option<u32>,
}

impl Statics {
    /// Builds the tables of `state`.
    pub fn build(state: &ServingState) -> Statics {
        let mut statics = Statics {
            templates: TemplateStore::default(),
            zones: Vec::with_capacity(state.zones.zones.len()),
            typed: Vec::new(),
            refused: Slot::Slow,
        };
        statics.refused = statics.refused_slot(state);
        let mut geo_base = 0;
        for zone in &state.zones.zones {
            let table = statics.zone_table(state, zone, geo_base);
            geo_base += zone.geo.len() as u32;
            statics.zones.push(table);
        }
        statics.typed.shrink_to_fit();
        statics
    }

    /// Where the reply to `qname` (lowercase wire) `qtype` comes from.
    pub fn route(&self, qname: &[u8], qtype: u16) -> Route {
        let Some(zone) = self
            .zones
            .iter()
            .find(|zone| topology::name::is_wire_at_or_below(qname, &zone.origin))
        else {
            return self.refused.route();
        };
        if let Some(node) = zone.nodes.get(qname) {
            if let Some(referral) = node.referral {
                return referral.route();
            }
            let start = node.typed_at as usize;
            let typed = &self.typed[start..start + usize::from(node.typed_len)];
            if let Some((_, slot)) = typed.iter().find(|(t, _)| *t == qtype) {
                return slot.route();
            }
            if node.cname {
                return Route::Slow;
            }
            if let Some(geo) = node.geo
                && (qtype == RecordType::A.code() || qtype == RecordType::Aaaa.code())
            {
                return Route::Geo {
                    geo: geo as usize,
                    v6: qtype == RecordType::Aaaa.code(),
                };
            }
            return zone.nodata.route();
        }
        // The name does not exist: its nearest existing ancestor decides
        // (every ancestor down to the origin exists, empty non-terminals
        // included).
        let mut at = 0;
        while let Some(&len) = qname.get(at) {
            if len == 0 {
                break;
            }
            at += 1 + usize::from(len);
            let Some(node) = zone.nodes.get(&qname[at..]) else {
                continue;
            };
            if let Some(referral) = node.referral {
                return referral.route();
            }
            if node.wildcard_below {
                return Route::Slow;
            }
            return zone.nxdomain.route();
        }
        Route::Slow
    }

    /// Number of names held.
    pub fn names(&self) -> usize {
        self.zones.iter().map(|z| z.nodes.len()).sum()
    }

    fn template(
        &mut self,
        state: &ServingState,
        name: &DomainName,
        qtype: u16,
        use_: Use,
        expect: impl Fn(&[u8]) -> bool,
    ) -> Slot {
        let Some(canonical) = canonical_reply(state, name, qtype, None) else {
            return Slot::Slow;
        };
        if canonical.asked_geo || !expect(&canonical.bytes) {
            return Slot::Slow;
        }
        match self.templates.add(&canonical.bytes, name.wire(), use_) {
            Ok(id) => Slot::Template(id),
            Err(_) => Slot::Slow,
        }
    }

    fn refused_slot(&mut self, state: &ServingState) -> Slot {
        let outside = ["invalid.", "gslb-outside.invalid.", "gslb-outside.arpa."]
            .into_iter()
            .filter_map(|text| DomainName::parse_absolute(text).ok())
            .find(|name| state.zones.find_zone(name.wire()).is_none());
        match outside {
            Some(name) => self.template(state, &name, 1, Use::Shared, |reply| rcode(reply) == 5),
            None => Slot::Slow,
        }
    }

    fn zone_table(&mut self, state: &ServingState, zone: &ZoneData, geo_base: u32) -> ZoneTable {
        let origin = zone.origin.clone();
        let nxdomain = match nx_probe(zone) {
            Some(probe) => self.template(state, &probe, 1, Use::Shared, |reply| {
                rcode(reply) == 3 && answers(reply) == 0
            }),
            None => Slot::Slow,
        };
        // A private-use type no name holds: NODATA at the apex.
        let nodata = self.template(state, &origin, 65280, Use::Shared, |reply| {
            rcode(reply) == 0 && answers(reply) == 0
        });
        let mut referrals: HashMap<&[u8], Slot> = HashMap::new();
        let mut nodes = HashMap::with_capacity_and_hasher(zone.nodes.len(), Default::default());
        for (wire, node) in &zone.nodes {
            let referral = highest_cut(zone, wire).map(|cut| match referrals.get(cut) {
                Some(slot) => *slot,
                None => {
                    let slot = self.referral(state, cut);
                    referrals.insert(cut, slot);
                    slot
                }
            });
            let entry = self.node_entry(state, zone, wire, node, referral, geo_base);
            nodes.insert(wire.clone(), entry);
        }
        ZoneTable {
            origin: origin.wire().into(),
            nodes,
            nxdomain,
            nodata,
        }
    }

    /// The referral every question at or below delegation point `cut` gets.
    fn referral(&mut self, state: &ServingState, cut: &[u8]) -> Slot {
        match DomainName::from_wire(cut) {
            Some(name) => self.template(state, &name, 1, Use::Shared, |reply| {
                // NOERROR, no answer, AA clear.
                rcode(reply) == 0 && answers(reply) == 0 && reply[2] & 0x04 == 0
            }),
            None => Slot::Slow,
        }
    }

    fn node_entry(
        &mut self,
        state: &ServingState,
        zone: &ZoneData,
        wire: &[u8],
        node: &Node,
        referral: Option<Slot>,
        geo_base: u32,
    ) -> NodeEntry {
        let mut wildcard = Vec::with_capacity(wire.len() + 2);
        wildcard.extend_from_slice(&[1, b'*']);
        wildcard.extend_from_slice(wire);
        let typed_at = self.typed.len() as u32;
        let mut entry = NodeEntry {
            typed_at,
            typed_len: 0,
            referral,
            wildcard_below: zone.nodes.contains_key(wildcard.as_slice()),
            cname: false,
            geo: node.geo.map(|index| geo_base + index as u32),
        };
        if referral.is_some() {
            return entry;
        }
        let Some(name) = DomainName::from_wire(wire) else {
            entry.referral = Some(Slot::Slow);
            return entry;
        };
        let mut qtypes: Vec<u16> = node
            .rrsets
            .iter()
            .map(|id| state.zones.rrset(*id).rtype.code())
            .collect();
        if qtypes.contains(&RecordType::Cname.code()) {
            entry.cname = true;
            // The chain's end decides; A and AAAA are the types asked.
            qtypes.extend([RecordType::A.code(), RecordType::Aaaa.code()]);
        }
        if node
            .geo
            .is_some_and(|index| zone.geo[index].https.is_some())
        {
            // Answered per client: the template says so (a slow slot).
            qtypes.push(RecordType::Https.code());
        }
        qtypes.retain(|t| FAST_QTYPES.contains(t));
        qtypes.dedup();
        for qtype in qtypes {
            let slot = self.template(state, &name, qtype, Use::Exact, |_| true);
            self.typed.push((qtype, slot));
        }
        entry.typed_len = (self.typed.len() as u32 - typed_at) as u16;
        entry
    }
}

/// A name directly below the apex that does not exist, to build the
/// zone's NXDOMAIN from.
fn nx_probe(zone: &ZoneData) -> Option<DomainName> {
    ["gslb-nxdomain-probe", "gslb-nxdomain-probe-2"]
        .into_iter()
        .filter_map(|label| {
            let mut wire = vec![label.len() as u8];
            wire.extend_from_slice(label.as_bytes());
            wire.extend_from_slice(zone.origin.wire());
            DomainName::from_wire(&wire)
        })
        .find(|name| !zone.nodes.contains_key(name.wire()))
}

/// The delegation point nearest the apex at or above `name`, if any.
fn highest_cut<'z>(zone: &'z ZoneData, name: &[u8]) -> Option<&'z [u8]> {
    let origin_len = zone.origin.wire().len();
    let mut highest = None;
    let mut at = 0;
    while name.len() - at > origin_len {
        let (key, node) = zone.nodes.get_key_value(&name[at..])?;
        if node.is_cut {
            highest = Some(&key[..]);
        }
        at += 1 + usize::from(name[at]);
    }
    highest
}

fn rcode(reply: &[u8]) -> u8 {
    reply.get(3).map_or(0xFF, |b| b & 0x0F)
}

fn answers(reply: &[u8]) -> u16 {
    reply
        .get(6..8)
        .map_or(u16::MAX, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// FxHash over 8-byte words: lookups are keyed by zone names and hashing
/// them must cost little on the hot path. Not for anything that must agree
/// across processes, and not exposed to inserts from the network.
#[derive(Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
