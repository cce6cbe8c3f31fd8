//! Stage two's output: the validated topology every binary works from.
//!
//! Nothing here can be in an invalid state: names are well formed, every
//! reference resolves, every RRset has one TTL. Code past the config layer
//! relies on that and does not re-check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

pub use geo_data::Coordinates;

use crate::health::HealthCheck;
use crate::hosts::Host;
use crate::tiers::Backend;
use crate::tiers::l4::L4Tier;
use crate::tiers::l7::L7Tier;
use geo_data::{Continent, CountryCode, Prefix};

use crate::name::DomainName;
use crate::rdata::{RecordData, RecordType, Soa, SvcParam, Svcb};

/// A whole deployment.
#[derive(Clone, Debug)]
pub struct Topology {
    /// The GSLB's nodes and zones.
    pub dns: Dns,
    /// Regions, in file order. Indexes into this list are [`RegionId`]s.
    pub regions: Vec<Region>,
    /// The machines components run on, in file order; empty: this machine.
    pub hosts: Vec<Host>,
}

/// Index of a region in [`Topology::regions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub usize);

impl Topology {
    /// The region with this id.
    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.0]
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Every file besides the topology file that its contents were read
    /// from (zone files and their includes): a change to any of them is a
    /// change to the topology, to be reloaded like one.
    pub fn source_files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.dns
            .zones
            .iter()
            .flat_map(|zone| zone.files.iter().map(PathBuf::as_path))
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
    /// Where client locations come from.
    pub geoip: GeoIpSource,
    /// Region orders that win over distance.
    pub overrides: Overrides,
    /// Region order for clients whose location is unknown.
    pub default_order: Vec<RegionId>,
    /// Bearer token for mutating admin routes.
    pub admin_token: Option<String>,
    /// The file holding the shared secret that signs the views name
    /// servers exchange (`None`: views travel unsigned, loopback only).
    pub peer_key: Option<PathBuf>,
    /// Response rate limiting of UDP replies.
    pub rate_limit: RateLimit,
    /// When a vantage point's probe votes are set aside.
    pub breaker: Breaker,
}

/// The fail-static breaker on correlated failure: a vantage point (a GSLB
/// node) that sees nearly every region down at once while another vantage
/// point does not is likelier cut off itself than looking at a worldwide
/// outage, so its votes are set aside (it abstains) instead of pulling
/// regions out everywhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaker {
    /// Whether votes are ever set aside.
    pub enabled: bool,
    /// The share of regions a vantage point must see down to be suspect;
    /// `None`: all regions but one.
    pub down_fraction: Option<f64>,
    /// With fewer regions the breaker stays off: one or two regions down
    /// is no evidence against the vantage point.
    pub min_regions: usize,
}

impl Default for Breaker {
    /// On: suspect when seeing all regions but one down, from 3 regions.
    fn default() -> Breaker {
        Breaker {
            enabled: true,
            down_fraction: None,
            min_regions: 3,
        }
    }
}

impl Breaker {
    /// How many of `regions` regions a vantage point must see down to be
    /// suspect; `None` when the breaker does not apply.
    pub fn threshold(&self, regions: usize) -> Option<usize> {
        if !self.enabled || regions < self.min_regions.max(2) {
            return None;
        }
        let down = match self.down_fraction {
            None => regions - 1,
            Some(fraction) => (fraction * regions as f64).ceil() as usize,
        };
        Some(down.clamp(1, regions))
    }
}

/// Response rate limiting (RRL) of UDP replies, in the style of Knot and
/// BIND: a token bucket per client network and answer class; replies over
/// the rate are dropped, except every `slip`th, which is sent truncated so
/// a real client retries over TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Whether replies are limited at all.
    pub enabled: bool,
    /// Replies per second to one client network and answer class.
    pub responses_per_second: u32,
    /// Replies allowed in a burst above the rate.
    pub burst: u32,
    /// Every `slip`th limited reply is sent truncated (0: none, 1: all).
    pub slip: u32,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Client networks never limited.
    pub exempt: Vec<Prefix>,
}

impl Default for RateLimit {
    /// On: 20 replies per second with bursts of 40, every second limited
    /// reply truncated, /24 and /56 client networks, loopback exempt.
    fn default() -> RateLimit {
        RateLimit {
            enabled: true,
            responses_per_second: 20,
            burst: 40,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
        }
    }
}

/// The IP → location database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoIpSource {
    /// The country database built into the binary.
    Embedded,
    /// A `.mmdb` file (relative paths are resolved against the topology
    /// file's directory), reloaded when it changes.
    File(PathBuf),
}

/// Ordered region lists chosen by client network, country or continent.
/// Net overrides are matched longest prefix first, then country, then
/// continent.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Networks, longest prefix first.
    pub nets: Vec<(Prefix, Vec<RegionId>)>,
    /// Countries.
    pub countries: Vec<(CountryCode, Vec<RegionId>)>,
    /// Continents.
    pub continents: Vec<(Continent, Vec<RegionId>)>,
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
    /// Admin API address, if the node serves one.
    pub admin: Option<SocketAddr>,
    /// The host it runs on (see [`Topology::hosts`]).
    pub host: Option<String>,
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
    /// Online signing, if the zone is signed.
    pub dnssec: Option<Dnssec>,
    /// The zone files its records were read from (`file:` and what it
    /// includes); empty when all are in the topology file.
    pub files: Vec<PathBuf>,
}

/// How a signed zone is signed (`dns.zones[].dnssec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dnssec {
    /// Key files, in order; each key signs every RRset. Checked when the
    /// topology is loaded from its file ([`crate::dnssec::ZoneKey::read`]).
    pub keys: Vec<PathBuf>,
    /// Key files published in the DNSKEY RRset but not signing (Knot's
    /// "published" state: before a rollover's switch, or after it until
    /// caches have dropped the old signatures). Checked like `keys`.
    pub published: Vec<PathBuf>,
    /// Seconds from a signature's making to its expiry.
    pub signature_validity: u32,
    /// A signature with less than this many seconds left is made anew.
    pub refresh: u32,
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
    /// Weight of each region, parallel to `regions` (`weighted` policy).
    pub weights: Vec<u32>,
    /// Most addresses in one answer (`all` policy).
    pub max_answers: usize,
    /// What to answer when every candidate region is down.
    pub all_down: AllDown,
    /// Set when HTTPS queries are answered from the chosen region too.
    pub https: Option<GeoHttps>,
}

/// A geo name's `https:` block: HTTPS records (RFC 9460) answered from the
/// same decision as its A and AAAA records, so a client that follows them
/// connects to the region its addresses point at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeoHttps {
    /// ALPN protocol ids offered by every region (`h2`, `http/1.1`).
    pub alpn: Vec<String>,
}

impl GeoHttps {
    /// The ServiceMode record (target `.`, the owner) that sends a client
    /// to the region behind `vip`: the configured ALPN ids, the VIP's HTTPS
    /// port when it is not 443, and its addresses as hints.
    pub fn record(&self, priority: u16, vip: &Vip) -> Svcb {
        // Built in key order with valid values, so the checks of
        // `Svcb::new` hold by construction.
        let mut params = vec![SvcParam::Alpn(self.alpn.clone())];
        if vip.https_port != 443 {
            params.push(SvcParam::Port(vip.https_port));
        }
        params.extend(vip.ipv4.map(|ip| SvcParam::Ipv4Hint(vec![ip])));
        params.extend(vip.ipv6.map(|ip| SvcParam::Ipv6Hint(vec![ip])));
        Svcb {
            priority,
            target: DomainName::root(),
            params,
        }
    }
}

/// The answer when every candidate region of a geo name is down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllDown {
    /// Answer as if every region were healthy (Route 53 and gdnsd do this):
    /// a wrong health signal must not take the name off the air.
    FailOpen,
    /// Answer NODATA.
    FailClosed,
    /// Answer these fixed addresses.
    Fallback(Vec<IpAddr>),
    /// Keep answering the regions that were answered last, before the
    /// last candidate went out (fail static): when every vantage point
    /// sees every region down at once, the likelier fault is in the
    /// monitoring. Without a memory of any candidate in service (since
    /// the node started), as `FailOpen`.
    LastKnownGood,
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
    /// How the GSLB probes it (through the VIP's HTTP port by default).
    pub health: HealthCheck,
    /// The L4 tier on the VIP, if the region runs one.
    pub l4: Option<L4Tier>,
    /// The L7 tier, if the region runs one.
    pub l7: Option<L7Tier>,
    /// Demo backends.
    pub backends: Vec<Backend>,
    /// What it can take; without one it never spills and always has room.
    pub capacity: Option<crate::capacity::Capacity>,
}

/// A region's VIP addresses; at least one is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vip {
    /// Answered for A queries.
    pub ipv4: Option<Ipv4Addr>,
    /// Answered for AAAA queries.
    pub ipv6: Option<Ipv6Addr>,
    /// Plain HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
}

impl Vip {
    /// The VIP's addresses, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
    }
}
