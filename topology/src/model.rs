//! Stage two's output: the validated topology every binary works from.
//!
//! Nothing here can be in an invalid state: names are well formed, every
//! reference resolves, every RRset has one TTL. Code past the config layer
//! relies on that and does not re-check.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::name::DomainName;
use crate::rdata::{RecordData, RecordType, Soa};

/// A whole deployment.
#[derive(Clone, Debug)]
pub struct Topology {
    /// The GSLB's nodes and zones.
    pub dns: Dns,
    /// Regions, in file order. Indexes into this list are [`RegionId`]s.
    pub regions: Vec<Region>,
}

/// Index of a region in [`Topology::regions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub usize);

impl Topology {
    /// The region with this id.
    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.0]
    }

    /// The region named `name`.
    pub fn region_by_name(&self, name: &str) -> Option<RegionId> {
        self.regions
            .iter()
            .position(|r| r.name == name)
            .map(RegionId)
    }
}

/// The GSLB part of the topology.
#[derive(Clone, Debug)]
pub struct Dns {
    /// Name-server nodes; at least one.
    pub nodes: Vec<DnsNode>,
    /// Zones served by every node; at least one.
    pub zones: Vec<Zone>,
}

/// One GSLB name-server node.
#[derive(Clone, Debug)]
pub struct DnsNode {
    /// Unique node name.
    pub name: String,
    /// The region it sits in, if declared.
    pub region: Option<RegionId>,
    /// Addresses served over UDP and TCP; at least one.
    pub listen: Vec<SocketAddr>,
}

/// One authoritative zone.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The apex.
    pub origin: DomainName,
    /// SOA data.
    pub soa: Soa,
    /// TTL of the SOA record.
    pub soa_ttl: u32,
    /// Static records, SOA excluded, in file order.
    pub records: Vec<Record>,
    /// Names answered per client.
    pub geo: Vec<GeoName>,
}

impl Zone {
    /// TTL for negative answers (RFC 2308 §5): the lesser of the SOA's own
    /// TTL and its MINIMUM field. The SOA in a negative answer carries it.
    pub fn negative_ttl(&self) -> u32 {
        self.soa_ttl.min(self.soa.minimum)
    }
}

/// One static record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name, inside the zone.
    pub name: DomainName,
    /// TTL in seconds.
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

impl Record {
    /// The record's type.
    pub fn record_type(&self) -> RecordType {
        self.data.record_type()
    }
}

/// A name whose A and AAAA answers are chosen per client from regions.
#[derive(Clone, Debug)]
pub struct GeoName {
    /// Owner name, inside the zone.
    pub name: DomainName,
    /// Candidate regions, in the order written (the `failover` order).
    pub regions: Vec<RegionId>,
    /// How a region is chosen.
    pub policy: GeoPolicy,
    /// Answer TTL in seconds.
    pub ttl: u32,
}

/// How a geo name picks its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeoPolicy {
    /// The nearest healthy region to the client.
    Nearest,
    /// The first healthy region in the written order.
    Failover,
    /// Regions by weight, stable per client.
    Weighted,
    /// Every healthy region, nearest first.
    All,
}

impl GeoPolicy {
    /// The spelling used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            GeoPolicy::Nearest => "nearest",
            GeoPolicy::Failover => "failover",
            GeoPolicy::Weighted => "weighted",
            GeoPolicy::All => "all",
        }
    }
}

/// One region: a place with a VIP in front of its tiers.
#[derive(Clone, Debug)]
pub struct Region {
    /// Unique name, e.g. `us-east`.
    pub name: String,
    /// Where it is.
    pub location: Coordinates,
    /// Its public addresses.
    pub vip: Vip,
}

/// A point on the globe, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coordinates {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

/// A region's VIP addresses; at least one is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vip {
    /// Answered for A queries.
    pub ipv4: Option<Ipv4Addr>,
    /// Answered for AAAA queries.
    pub ipv6: Option<Ipv6Addr>,
}
