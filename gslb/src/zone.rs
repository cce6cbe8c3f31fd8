//! Zone data arranged for lookup: every name of every zone, keyed by its
//! lowercase wire form, with its RRsets, its geo name if any, and the empty
//! non-terminals in between.
//!
//! Built once from a validated [`Topology`] and then only read, so a
//! running server can swap a new one in atomically on reload.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use topology::{DomainName, GeoName, RecordData, RecordType, Topology, Zone};

/// A map keyed by zone names (or by what holds them), hashed with
/// [`NameHasher`].
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Index of an RRset in [`ZoneSet::rrsets`]; the DNS adapter keeps its
/// pre-built wire records under the same index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RrsetId(pub usize);

/// Records of one owner name and type, sharing one TTL.
#[derive(Clone, Debug)]
pub struct Rrset {
    /// This RRset's index.
    pub id: RrsetId,
    /// Owner name.
    pub name: DomainName,
    /// Type of every record in it.
    pub rtype: RecordType,
    /// TTL in seconds.
    pub ttl: u32,
    /// The records' data, in file order.
    pub data: Vec<RecordData>,
}

/// One name in a zone.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// Static RRsets, sorted by type code.
    pub rrsets: Vec<RrsetId>,
    /// The geo name answered here, as an index into [`ZoneData::geo`].
    pub geo: Option<usize>,
    /// Whether NS records here make this a delegation point (never the apex).
    pub is_cut: bool,
}

impl Node {
    /// True for an empty non-terminal: a name that exists only because
    /// names below it do (RFC 8020).
    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty() && self.geo.is_none()
    }
}

/// One zone, ready for lookup.
#[derive(Clone, Debug)]
pub struct ZoneData {
    /// The apex.
    pub origin: DomainName,
    /// The SOA as answered to SOA queries (its own TTL).
    pub soa: RrsetId,
    /// The SOA as placed in negative answers (TTL = min(SOA TTL, MINIMUM)).
    pub negative_soa: RrsetId,
    /// The apex NS RRset.
    pub apex_ns: RrsetId,
    /// Every existing name, keyed by lowercase wire form.
    pub nodes: NameMap<Box<[u8]>, Node>,
    /// The zone's geo names.
    pub geo: Vec<GeoName>,
}

/// Every zone served, and the RRsets they share an index space for.
#[derive(Clone, Debug)]
pub struct ZoneSet {
    /// Zones, longest origin first, so the first match is the closest.
    pub zones: Vec<ZoneData>,
    /// All RRsets of all zones.
    pub rrsets: Vec<Rrset>,
}

impl ZoneSet {
    /// Arranges the topology's zones for lookup.
    pub fn build(topology: &Topology) -> ZoneSet {
        let mut rrsets = Vec::new();
        let mut zones: Vec<ZoneData> = topology
            .dns
            .zones
            .iter()
            .map(|zone| build_zone(zone, &mut rrsets))
            .collect();
        zones.sort_by_key(|zone| std::cmp::Reverse(zone.origin.wire().len()));
        ZoneSet { zones, rrsets }
    }

    /// The RRset with this id.
    pub fn rrset(&self, id: RrsetId) -> &Rrset {
        &self.rrsets[id.0]
    }

    /// The zone `qname` (lowercase wire form) falls in: the one with the
    /// longest origin at or above it.
    pub fn find_zone(&self, qname: &[u8]) -> Option<&ZoneData> {
        self.zones
            .iter()
            .find(|zone| topology::name::is_wire_at_or_below(qname, zone.origin.wire()))
    }
}

fn push_rrset(
    rrsets: &mut Vec<Rrset>,
    name: DomainName,
    rtype: RecordType,
    ttl: u32,
    data: Vec<RecordData>,
) -> RrsetId {
    let id = RrsetId(rrsets.len());
    rrsets.push(Rrset {
        id,
        name,
        rtype,
        ttl,
        data,
    });
    id
}

fn build_zone(zone: &Zone, rrsets: &mut Vec<Rrset>) -> ZoneData {
    let origin = zone.origin.clone();
    let soa_data = vec![RecordData::Soa(zone.soa.clone())];
    let soa = push_rrset(
        rrsets,
        origin.clone(),
        RecordType::Soa,
        zone.soa_ttl,
        soa_data.clone(),
    );
    let negative_soa = push_rrset(
        rrsets,
        origin.clone(),
        RecordType::Soa,
        zone.negative_ttl(),
        soa_data,
    );

    // Sized up front: at a million names, growing these maps (and hashing
    // with SipHash) took seconds of start-up.
    let mut nodes: NameMap<Box<[u8]>, Node> = NameMap::with_capacity_and_hasher(
        zone.records.len() + zone.geo.len() + 1,
        Default::default(),
    );
    touch(&mut nodes, &origin, &origin).rrsets.push(soa);
    // Group records into RRsets, keeping file order within each.
    let mut by_key: NameMap<(&DomainName, RecordType), RrsetId> =
        NameMap::with_capacity_and_hasher(zone.records.len(), Default::default());
    let mut apex_ns = None;
    for record in &zone.records {
        let rtype = record.record_type();
        if let Some(id) = by_key.get(&(&record.name, rtype)) {
            rrsets[id.0].data.push(record.data.clone());
            continue;
        }
        let id = push_rrset(
            rrsets,
            record.name.clone(),
            rtype,
            record.ttl,
            vec![record.data.clone()],
        );
        by_key.insert((&record.name, rtype), id);
        let node = touch(&mut nodes, &origin, &record.name);
        node.rrsets.push(id);
        if rtype == RecordType::Ns {
            if record.name == origin {
                apex_ns = Some(id);
            } else {
                node.is_cut = true;
            }
        }
    }
    for (index, geo) in zone.geo.iter().enumerate() {
        touch(&mut nodes, &origin, &geo.name).geo = Some(index);
    }
    for node in nodes.values_mut() {
        node.rrsets.sort_by_key(|id| rrsets[id.0].rtype.code());
    }

    ZoneData {
        origin,
        soa,
        negative_soa,
        apex_ns: apex_ns.expect("validation guarantees an apex NS RRset"),
        nodes,
        geo: zone.geo.clone(),
    }
}

/// The node for `name`, created if needed along with every ancestor down
/// to `origin` (which exist as empty non-terminals unless they have data of
/// their own).
fn touch<'n>(
    nodes: &'n mut NameMap<Box<[u8]>, Node>,
    origin: &DomainName,
    name: &DomainName,
) -> &'n mut Node {
    let wire = name.wire();
    let origin = origin.wire();
    // Ancestors are suffixes of the wire form; most exist already, so
    // look before allocating a key.
    let mut at = 0;
    while let Some(&len) = wire.get(at).filter(|len| **len != 0) {
        at += 1 + usize::from(len);
        let parent = &wire[at..];
        if !topology::name::is_wire_at_or_below(parent, origin) {
            break;
        }
        if !nodes.contains_key(parent) {
            nodes.insert(parent.into(), Node::default());
        }
    }
    if !nodes.contains_key(wire) {
        nodes.insert(wire.into(), Node::default());
    }
    nodes.get_mut(wire).expect("inserted above")
}

/// FxHash over 8-byte words: the zone's maps are keyed by names and
/// hashing them must cost little, on the hot path and when a million
/// names are loaded. Not for anything that must agree across processes,
/// and never for a map the network inserts into.
#[derive(Default, Clone, Copy)]
pub struct NameHasher(u64);

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
