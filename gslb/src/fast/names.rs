//! The static half of the fast path's tables: for every name of every zone,
//! a template per record type it holds, and per zone the shared templates
//! for NXDOMAIN, NODATA and each delegation's referral — all cut from the
//! slow path's canonical replies. Built once per serving state.

use std::collections::HashMap;
use std::hash::Hasher;

use topology::{DomainName, RecordType};

use super::query::FAST_QTYPES;
use super::template::{TemplateId, TemplateStore, Unusable, Use};
use crate::dns::canonical_reply;
use crate::state::ServingState;
use crate::zone::{NameHasher, Node, ZoneData};

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
    /// The templates, and between them every name's [`Entry`], each right
    /// before its own templates: a question for a name touches its index
    /// slot and then one stretch of the arena.
    pub templates: TemplateStore,
    /// Zones, longest origin first (the order of [`crate::zone::ZoneSet`]).
    zones: Vec<ZoneTable>,
    /// REFUSED, for names outside every zone.
    refused: Slot,
}

struct ZoneTable {
    origin: Box<[u8]>,
    /// The zone's names; `None` if the arena outgrew its 32-bit offsets
    /// while they were added (the slow path then answers the whole zone).
    names: Option<NameIndex>,
    nxdomain: Slot,
    nodata: Slot,
}

/// An entry's flags.
const REFERRAL: u8 = 1;
const WILDCARD_BELOW: u8 = 2;
const CNAME: u8 = 4;
const GEO: u8 = 8;

/// A slot in the arena: a template's offset, or this for the slow path.
const SLOW: u32 = u32::MAX;

/// One name, as laid out in the arena (all numbers little-endian):
///
/// | bytes | what |
/// |---|---|
/// | 1 | flags: [`REFERRAL`], [`WILDCARD_BELOW`], [`CNAME`], [`GEO`] |
/// | 1 | length of the name, `k` |
/// | 1 | number of typed templates, `n` |
/// | k | the name, lowercase wire form |
/// | 4 | its geo name's index, with [`GEO`] |
/// | 4 | the referral's slot, with [`REFERRAL`] |
/// | 6 × n | `(qtype, slot)` per type with a template |
///
/// and then, usually, those templates.
struct Entry<'a> {
    flags: u8,
    geo: u32,
    referral: u32,
    typed: &'a [u8],
}

const ENTRY_HEAD: usize = 3;

impl<'a> Entry<'a> {
    /// The entry at `at` if it is `key`'s.
    fn read(arena: &'a [u8], at: usize, key: &[u8]) -> Option<Entry<'a>> {
        let head = arena.get(at..at + ENTRY_HEAD)?;
        let (flags, key_len, types) = (head[0], usize::from(head[1]), usize::from(head[2]));
        let mut at = at + ENTRY_HEAD;
        if arena.get(at..at + key_len)? != key {
            return None;
        }
        at += key_len;
        let mut word = |present: bool| -> Option<u32> {
            if !present {
                return Some(SLOW);
            }
            let bytes = arena.get(at..at + 4)?;
            at += 4;
            Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        };
        let geo = word(flags & GEO != 0)?;
        let referral = word(flags & REFERRAL != 0)?;
        let typed = arena.get(at..at + 6 * types)?;
        Some(Entry {
            flags,
            geo,
            referral,
            typed,
        })
    }

    fn referral(&self) -> Option<Slot> {
        (self.flags & REFERRAL != 0).then(|| Slot::decode(self.referral))
    }

    /// The slot for `qtype`, if the name has a template for it.
    fn typed(&self, qtype: u16) -> Option<Slot> {
        let want = qtype.to_le_bytes();
        self.typed
            .chunks_exact(6)
            .find(|pair| pair[..2] == want)
            .map(|pair| Slot::decode(u32::from_le_bytes([pair[2], pair[3], pair[4], pair[5]])))
    }
}

impl Slot {
    fn encode(self) -> u32 {
        match self {
            Slot::Template(id) => id.offset(),
            Slot::Slow => SLOW,
        }
    }

    fn decode(word: u32) -> Slot {
        match word {
            SLOW => Slot::Slow,
            offset => Slot::Template(TemplateId::at(offset)),
        }
    }
}

/// A zone's names: open addressing with linear probing over
/// `(hash tag << 32) | (entry offset + 1)` words, at most half full, so a
/// lookup reads one slot (rarely two) and then the entry itself.
struct NameIndex {
    slots: Box<[u64]>,
    len: usize,
}

impl NameIndex {
    fn with_capacity(names: usize) -> NameIndex {
        NameIndex {
            slots: vec![0; (2 * names).next_power_of_two().max(8)].into_boxed_slice(),
            len: 0,
        }
    }

    /// Adds the entry at `at` for `key`, which the index does not hold yet.
    fn insert(&mut self, key: &[u8], at: u32) -> Result<(), Unusable> {
        let word = u64::from(at.checked_add(1).ok_or(Unusable::Full)?);
        let hash = name_hash(key);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        // Bounded: the index is never more than half full.
        for _ in 0..self.slots.len() {
            if self.slots[i] == 0 {
                self.slots[i] = (hash >> 32) << 32 | word;
                self.len += 1;
                return Ok(());
            }
            i = (i + 1) & mask;
        }
        Err(Unusable::Full)
    }

    fn find<'a>(&self, arena: &'a [u8], key: &[u8]) -> Option<Entry<'a>> {
        let hash = name_hash(key);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == hash >> 32 {
                let at = (slot as u32 - 1) as usize;
                if let Some(entry) = Entry::read(arena, at, key) {
                    return Some(entry);
                }
            }
            i = (i + 1) & mask;
        }
        None
    }
}

/// [`NameHasher`] finished with a 64-bit mix, so both halves of the hash
/// (the slot and the tag) depend on every byte of the name.
fn name_hash(key: &[u8]) -> u64 {
    let mut hasher = NameHasher::default();
    hasher.write(key);
    let mut h = hasher.finish();
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Statics {
    /// Builds the tables of `state`.
    pub fn build(state: &ServingState) -> Statics {
        let mut statics = Statics {
            templates: TemplateStore::default(),
            zones: Vec::with_capacity(state.zones.zones.len()),
            refused: Slot::Slow,
        };
        statics.refused = statics.refused_slot(state);
        let mut geo_base = 0;
        for zone in &state.zones.zones {
            let table = statics.zone_table(state, zone, geo_base);
            geo_base += zone.geo.len() as u32;
            statics.zones.push(table);
        }
        statics.templates.shrink_to_fit();
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
        let Some(names) = &zone.names else {
            return Route::Slow;
        };
        let arena = self.templates.arena();
        if let Some(entry) = names.find(arena, qname) {
            if let Some(referral) = entry.referral() {
                return referral.route();
            }
            if let Some(slot) = entry.typed(qtype) {
                return slot.route();
            }
            if entry.flags & CNAME != 0 {
                return Route::Slow;
            }
            if entry.flags & GEO != 0
                && (qtype == RecordType::A.code() || qtype == RecordType::Aaaa.code())
            {
                return Route::Geo {
                    geo: entry.geo as usize,
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
            let Some(entry) = names.find(arena, &qname[at..]) else {
                continue;
            };
            if let Some(referral) = entry.referral() {
                return referral.route();
            }
            if entry.flags & WILDCARD_BELOW != 0 {
                return Route::Slow;
            }
            return zone.nxdomain.route();
        }
        Route::Slow
    }

    /// Number of names held.
    pub fn names(&self) -> usize {
        self.zones
            .iter()
            .filter_map(|zone| zone.names.as_ref())
            .map(|names| names.len)
            .sum()
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
        let mut names = Some(NameIndex::with_capacity(zone.nodes.len()));
        for (wire, node) in &zone.nodes {
            let referral = highest_cut(zone, wire).map(|cut| match referrals.get(cut) {
                Some(slot) => *slot,
                None => {
                    let slot = self.referral(state, cut);
                    referrals.insert(cut, slot);
                    slot
                }
            });
            let added = self
                .entry(state, zone, wire, node, referral, geo_base)
                .and_then(|at| match &mut names {
                    Some(index) => index.insert(wire, at),
                    None => Ok(()),
                });
            if added.is_err() {
                names = None;
            }
        }
        ZoneTable {
            origin: origin.wire().into(),
            names,
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

    /// Appends the entry of `wire` and its templates to the arena;
    /// returns the entry's offset.
    fn entry(
        &mut self,
        state: &ServingState,
        zone: &ZoneData,
        wire: &[u8],
        node: &Node,
        referral: Option<Slot>,
        geo_base: u32,
    ) -> Result<u32, Unusable> {
        let mut wildcard = Vec::with_capacity(wire.len() + 2);
        wildcard.extend_from_slice(&[1, b'*']);
        wildcard.extend_from_slice(wire);
        let mut flags = 0;
        if zone.nodes.contains_key(wildcard.as_slice()) {
            flags |= WILDCARD_BELOW;
        }
        let name = DomainName::from_wire(wire);
        // Out of shape, the name is a referral to the slow path.
        let referral = referral.or(name.is_none().then_some(Slot::Slow));
        let mut qtypes: Vec<u16> = Vec::new();
        if let (None, Some(_)) = (referral, &name) {
            qtypes = node
                .rrsets()
                .map(|id| state.zones.rrset(id).rtype.code())
                .collect();
            if qtypes.contains(&RecordType::Cname.code()) {
                flags |= CNAME;
                // The chain's end decides; A and AAAA are the types asked.
                qtypes.extend([RecordType::A.code(), RecordType::Aaaa.code()]);
            }
            if node
                .geo()
                .is_some_and(|index| zone.geo[index].https.is_some())
            {
                // Answered per client: the template says so (a slow slot).
                qtypes.push(RecordType::Https.code());
            }
            qtypes.retain(|t| FAST_QTYPES.contains(t));
            qtypes.dedup();
        }
        let mut head = Vec::with_capacity(ENTRY_HEAD + wire.len() + 8 + 6 * qtypes.len());
        head.extend_from_slice(&[0, wire.len() as u8, qtypes.len() as u8]);
        head.extend_from_slice(wire);
        if let Some(index) = node.geo() {
            flags |= GEO;
            head.extend_from_slice(&(geo_base + index as u32).to_le_bytes());
        }
        if let Some(referral) = referral {
            flags |= REFERRAL;
            head.extend_from_slice(&referral.encode().to_le_bytes());
        }
        head[0] = flags;
        let typed_at = head.len();
        head.resize(typed_at + 6 * qtypes.len(), 0);
        let at = self.templates.append(&head)?;
        if let Some(name) = name {
            for (i, qtype) in qtypes.into_iter().enumerate() {
                let slot = self.template(state, &name, qtype, Use::Exact, |_| true);
                let mut pair = [0u8; 6];
                pair[..2].copy_from_slice(&qtype.to_le_bytes());
                pair[2..].copy_from_slice(&slot.encode().to_le_bytes());
                self.templates
                    .overwrite(at as usize + typed_at + 6 * i, &pair);
            }
        }
        Ok(at)
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
