//! Zone data arranged for lookup: every name of every zone, keyed by its
//! lowercase wire form, with its RRsets, its geo name if any, and the empty
//! non-terminals in between.
//!
//! Built once from a validated [`Topology`] and then only read, so a
//! running server can swap a new one in atomically on reload.
//!
//! Compact at a million names: an RRset's records stay in the topology
//! (an RRset holds their indices, not copies), a name's RRsets are
//! consecutive ids (a range, not a list), and a name costs its map slot
//! and its key.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use topology::{DomainName, GeoName, Record, RecordData, RecordType, Topology, Zone};

/// A map keyed by zone names (or by what holds them), hashed with
/// [`NameHasher`].
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Index of an RRset in a [`ZoneSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RrsetId(pub usize);

/// Records of one owner name and type, sharing one TTL: a view into the
/// [`ZoneSet`] (and the topology it was built from).
#[derive(Clone, Copy, Debug)]
pub struct Rrset<'z> {
    /// This RRset's index.
    pub id: RrsetId,
    /// Owner name.
    pub name: &'z DomainName,
    /// Type of every record in it.
    pub rtype: RecordType,
    /// TTL in seconds.
    pub ttl: u32,
    /// The records' data, in file order.
    pub data: RrsetData<'z>,
}

/// The data of an RRset's records, in file order.
#[derive(Clone, Copy)]
pub struct RrsetData<'z> {
    /// The zone's records in the topology.
    records: &'z [Record],
    /// The zone's SOA, as a record ([`SOA_RECORD`] names it).
    soa: &'z Record,
    /// Indices into `records`, or [`SOA_RECORD`].
    members: &'z [u32],
}

/// A member index naming the zone's SOA rather than one of its records.
const SOA_RECORD: u32 = u32::MAX;

impl<'z> RrsetData<'z> {
    fn record(&self, member: u32) -> &'z Record {
        match member {
            SOA_RECORD => self.soa,
            index => &self.records[index as usize],
        }
    }

    /// The records' data, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &'z RecordData> + use<'z> {
        let this = *self;
        self.members.iter().map(move |m| &this.record(*m).data)
    }

    /// The first record's data.
    pub fn first(&self) -> Option<&'z RecordData> {
        self.members.first().map(|m| &self.record(*m).data)
    }
}

impl fmt::Debug for RrsetData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An RRset as stored: where its records are.
#[derive(Clone, Debug)]
struct StoredRrset {
    /// The zone's index in the topology's `dns.zones`.
    zone: u32,
    rtype: RecordType,
    ttl: u32,
    /// Its members: `members[start..start + len]`.
    start: u32,
    len: u32,
}

/// No geo name at a node.
const NO_GEO: u32 = u32::MAX;

/// One name in a zone.
#[derive(Clone, Debug)]
pub struct Node {
    /// First of its static RRsets (consecutive ids, sorted by type code).
    first: u32,
    /// How many static RRsets it has.
    count: u16,
    /// Index into [`ZoneData::geo`], or [`NO_GEO`].
    geo: u32,
    /// Whether NS records here make this a delegation point (never the apex).
    pub is_cut: bool,
}

impl Default for Node {
    fn default() -> Node {
        Node {
            first: 0,
            count: 0,
            geo: NO_GEO,
            is_cut: false,
        }
    }
}

impl Node {
    /// Static RRsets, sorted by type code.
    pub fn rrsets(&self) -> impl Iterator<Item = RrsetId> + use<> {
        let first = self.first as usize;
        (first..first + usize::from(self.count)).map(RrsetId)
    }

    /// The geo name answered here, as an index into [`ZoneData::geo`].
    pub fn geo(&self) -> Option<usize> {
        (self.geo != NO_GEO).then_some(self.geo as usize)
    }

    /// True for an empty non-terminal: a name that exists only because
    /// names below it do (RFC 8020).
    pub fn is_empty_non_terminal(&self) -> bool {
        self.count == 0 && self.geo == NO_GEO
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
    /// The topology whose records the RRsets hold.
    topology: Arc<Topology>,
    /// Each topology zone's SOA as a record, in the topology's zone order.
    soas: Vec<Record>,
    /// All RRsets of all zones.
    rrsets: Vec<StoredRrset>,
    /// The RRsets' members, each RRset's consecutive.
    members: Vec<u32>,
}

impl ZoneSet {
    /// Arranges the topology's zones for lookup.
    pub fn build(topology: Arc<Topology>) -> ZoneSet {
        let mut rrsets = Vec::new();
        let mut members = Vec::new();
        let mut soas = Vec::with_capacity(topology.dns.zones.len());
        let mut zones: Vec<ZoneData> = Vec::with_capacity(topology.dns.zones.len());
        for (index, zone) in topology.dns.zones.iter().enumerate() {
            soas.push(Record {
                name: zone.origin.clone(),
                ttl: zone.soa_ttl,
                data: RecordData::Soa(Box::new(zone.soa.clone())),
            });
            zones.push(build_zone(index as u32, zone, &mut rrsets, &mut members));
        }
        zones.sort_by_key(|zone| std::cmp::Reverse(zone.origin.wire().len()));
        rrsets.shrink_to_fit();
        ZoneSet {
            zones,
            topology,
            soas,
            rrsets,
            members,
        }
    }

    /// The RRset with this id.
    pub fn rrset(&self, id: RrsetId) -> Rrset<'_> {
        let stored = &self.rrsets[id.0];
        let zone = stored.zone as usize;
        let start = stored.start as usize;
        let data = RrsetData {
            records: &self.topology.dns.zones[zone].records,
            soa: &self.soas[zone],
            members: &self.members[start..start + stored.len as usize],
        };
        let name = match data.members.first() {
            Some(first) => &data.record(*first).name,
            None => &self.soas[zone].name,
        };
        Rrset {
            id,
            name,
            rtype: stored.rtype,
            ttl: stored.ttl,
            data,
        }
    }

    /// The zone `qname` (lowercase wire form) falls in: the one with the
    /// longest origin at or above it.
    pub fn find_zone(&self, qname: &[u8]) -> Option<&ZoneData> {
        self.zones
            .iter()
            .find(|zone| topology::name::is_wire_at_or_below(qname, zone.origin.wire()))
    }
}

fn build_zone(
    index: u32,
    zone: &Zone,
    rrsets: &mut Vec<StoredRrset>,
    members: &mut Vec<u32>,
) -> ZoneData {
    let origin = zone.origin.clone();
    let records = &zone.records;
    // The records, with the SOA among them, ordered by owner and type
    // (file order kept within each): every RRset's members are then
    // consecutive, and so is every name's RRsets, in type-code order.
    let key = |member: u32| match member {
        SOA_RECORD => (origin.wire(), RecordType::Soa.code(), true),
        i => {
            let record = &records[i as usize];
            (record.name.wire(), record.record_type().code(), false)
        }
    };
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.push(SOA_RECORD);
    order.sort_by(|a, b| key(*a).cmp(&key(*b)));

    // Sized up front: at a million names, growing this map took seconds
    // of start-up.
    let mut nodes: NameMap<Box<[u8]>, Node> =
        NameMap::with_capacity_and_hasher(records.len() + zone.geo.len() + 1, Default::default());
    // At most one RRset per member, and the negative SOA besides: sized
    // so that neither doubles at a million.
    members.reserve(order.len() + 1);
    rrsets.reserve(order.len() + 1);
    let mut soa = None;
    let mut apex_ns = None;
    for owner in order.chunk_by(|a, b| key(*a).0 == key(*b).0) {
        let name = match owner[0] {
            SOA_RECORD => &origin,
            i => &records[i as usize].name,
        };
        let first = rrsets.len();
        let mut is_cut = false;
        for rrset in owner.chunk_by(|a, b| key(*a) == key(*b)) {
            let id = RrsetId(rrsets.len());
            let (rtype, ttl) = match rrset[0] {
                SOA_RECORD => {
                    soa = Some(id);
                    (RecordType::Soa, zone.soa_ttl)
                }
                i => {
                    let record = &records[i as usize];
                    (record.record_type(), record.ttl)
                }
            };
            if rtype == RecordType::Ns {
                if *name == origin {
                    apex_ns = Some(id);
                } else {
                    is_cut = true;
                }
            }
            rrsets.push(StoredRrset {
                zone: index,
                rtype,
                ttl,
                start: members.len() as u32,
                len: rrset.len() as u32,
            });
            members.extend_from_slice(rrset);
        }
        let node = touch(&mut nodes, &origin, name);
        node.first = first as u32;
        node.count = (rrsets.len() - first) as u16;
        node.is_cut = is_cut;
    }
    let negative_soa = RrsetId(rrsets.len());
    rrsets.push(StoredRrset {
        zone: index,
        rtype: RecordType::Soa,
        ttl: zone.negative_ttl(),
        start: members.len() as u32,
        len: 1,
    });
    members.push(SOA_RECORD);
    for (geo, name) in zone.geo.iter().enumerate() {
        touch(&mut nodes, &origin, &name.name).geo = geo as u32;
    }

    ZoneData {
        origin,
        soa: soa.expect("the SOA is among the members"),
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

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = r#"
dns:
  nodes:
    - { name: ns1, listen: ["127.0.0.1:53"] }
  zones:
    - origin: example.com.
      soa: { mname: ns1.example.com., rname: hostmaster.example.com., serial: 1, minimum: 5m, ttl: 1h }
      records:
        - { name: "@", type: NS, ttl: 1d, value: ns1.example.com. }
        - { name: www, type: A, ttl: 5m, value: 192.0.2.2 }
        - { name: ns1, type: A, ttl: 1d, value: 127.0.0.1 }
        - { name: www, type: AAAA, ttl: 5m, value: "2001:db8::1" }
        - { name: www, type: A, ttl: 5m, value: 192.0.2.1 }
        - { name: a.b, type: TXT, value: "x" }
regions:
  us-east: { location: { lat: 39.04, lon: -77.49 }, vip: { ipv4: 127.0.1.1 } }
"#;

    fn wire(text: &str) -> Box<[u8]> {
        DomainName::parse_absolute(text).unwrap().wire().into()
    }

    fn types(zones: &ZoneSet, node: &Node) -> Vec<RecordType> {
        node.rrsets().map(|id| zones.rrset(id).rtype).collect()
    }

    #[test]
    fn rrsets_gather_interleaved_records_in_file_order() {
        let topology = Arc::new(topology::parse(TOPOLOGY, "zone-tests").unwrap());
        let zones = ZoneSet::build(topology);
        let zone = &zones.zones[0];

        let www = &zone.nodes[&wire("www.example.com.")];
        assert_eq!(types(&zones, www), [RecordType::A, RecordType::Aaaa]);
        let a = zones.rrset(www.rrsets().next().unwrap());
        assert_eq!(a.name.to_string(), "www.example.com.");
        assert_eq!(a.ttl, 300);
        let addresses: Vec<String> = a.data.iter().map(|d| format!("{d:?}")).collect();
        assert_eq!(addresses, ["A(192.0.2.2)", "A(192.0.2.1)"]);

        let apex = &zone.nodes[&wire("example.com.")];
        assert_eq!(types(&zones, apex), [RecordType::Ns, RecordType::Soa]);
        assert_eq!(zones.rrset(zone.soa).ttl, 3600);
        let negative = zones.rrset(zone.negative_soa);
        assert_eq!((negative.rtype, negative.ttl), (RecordType::Soa, 300));
        assert_eq!(negative.name.to_string(), "example.com.");

        assert!(zone.nodes[&wire("b.example.com.")].is_empty_non_terminal());
        assert_eq!(zone.nodes.len(), 5);
    }
}
