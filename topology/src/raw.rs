//! Stage one: the file's shape, exactly as written.
//!
//! These structs mirror the YAML. They refuse unknown keys and wrong shapes
//! (serde stops at the first such error, with its line), but keep every
//! value that needs checking — addresses, names, durations — as text, so
//! that stage two ([`crate::validate`]) can report every bad value at once.

use indexmap::IndexMap;
use serde::Deserialize;

pub use crate::field::Scalar;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// The GSLB: its name-server nodes and the zones they serve.
    pub dns: RawDns,
    /// Regions by name, in file order.
    #[serde(default)]
    pub regions: IndexMap<String, RawRegion>,
    /// The machines components run on, by name (none: this machine).
    #[serde(default)]
    pub hosts: IndexMap<String, crate::hosts::RawHost>,
}

/// The `dns:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// The GSLB name-server nodes.
    pub nodes: Vec<RawNode>,
    /// The zones served.
    pub zones: Vec<RawZone>,
    /// `embedded` (default) or the path of a GeoIP2/GeoLite2/DB-IP `.mmdb`.
    #[serde(default)]
    pub geoip: Option<String>,
    /// Region orders that win over distance for some clients.
    #[serde(default)]
    pub overrides: RawOverrides,
    /// Region order for clients whose location is unknown (default: file order).
    #[serde(default)]
    pub default_order: Option<Vec<String>>,
    /// Bearer token for the admin API's mutating routes (the environment
    /// variable `GTM_ADMIN_TOKEN` overrides it).
    #[serde(default)]
    pub admin_token: Option<String>,
    /// A file holding the secret the name servers sign their health views
    /// with (relative to the topology file).
    #[serde(default)]
    pub peer_key: Option<String>,
    /// Response rate limiting of UDP replies (on by default).
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    /// The fail-static breaker on correlated failure (on by default).
    #[serde(default)]
    pub breaker: Option<RawBreaker>,
}

/// The `dns.breaker` block. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// `false` never sets votes aside (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Share of regions a vantage point must see down to be suspect, in
    /// (0, 1] (default: all regions but one).
    #[serde(default)]
    pub down_fraction: Option<f64>,
    /// Fewest regions for the breaker to apply (default 3, at least 2).
    #[serde(default)]
    pub min_regions: Option<u32>,
}

/// The `dns.rate_limit` block: response rate limiting (RRL) of UDP replies,
/// per client network and answer class. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `false` turns rate limiting off (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Replies per second to one client network and answer class.
    #[serde(default)]
    pub responses_per_second: Option<u32>,
    /// Replies allowed in a burst above the rate (default: twice the rate).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Every Nth limited reply is sent truncated; 0 drops them all.
    #[serde(default)]
    pub slip: Option<u32>,
    /// Client networks are IPv4 /N (default 24).
    #[serde(default)]
    pub ipv4_prefix: Option<u8>,
    /// Client networks are IPv6 /N (default 56).
    #[serde(default)]
    pub ipv6_prefix: Option<u8>,
    /// Networks never limited (default: loopback).
    #[serde(default)]
    pub exempt: Option<Vec<String>>,
}

/// The `dns.overrides` block: ordered region lists keyed by client network,
/// country or continent, like gdnsd's maps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverrides {
    /// CIDR → regions; the longest matching network wins.
    #[serde(default)]
    pub nets: IndexMap<String, Vec<String>>,
    /// ISO country code → regions.
    #[serde(default)]
    pub countries: IndexMap<String, Vec<String>>,
    /// Continent code (AF AN AS EU NA OC SA) → regions.
    #[serde(default)]
    pub continents: IndexMap<String, Vec<String>>,
}

/// One GSLB name-server node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Node name, unique.
    pub name: String,
    /// The region the node sits in (its vantage point, later).
    #[serde(default)]
    pub region: Option<String>,
    /// Addresses served over both UDP and TCP.
    pub listen: Vec<Scalar>,
    /// Admin API address (status, overrides, reload, metrics, peer views).
    #[serde(default)]
    pub admin: Option<Scalar>,
    /// The host it runs on (see `hosts:`).
    #[serde(default)]
    pub host: Option<String>,
}

/// One zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    /// Zone apex, e.g. `example.com.`.
    pub origin: String,
    /// TTL for records that do not set one (default `1h`).
    #[serde(default)]
    pub default_ttl: Option<Scalar>,
    /// The SOA fields; absent when the zone file holds the SOA.
    #[serde(default)]
    pub soa: Option<RawSoa>,
    /// Static records.
    #[serde(default)]
    pub records: Vec<RawRecord>,
    /// A BIND-format zone file whose records join `records` (relative to
    /// the topology file).
    #[serde(default)]
    pub file: Option<String>,
    /// That file as read (filled in by the loader before stage two, which
    /// checks its records like `records`).
    #[serde(skip)]
    pub master: Option<crate::masterfile::MasterFile>,
    /// Names answered per client from the regions.
    #[serde(default)]
    pub geo: Vec<RawGeo>,
    /// Online DNSSEC signing; absent: the zone is served unsigned.
    #[serde(default)]
    pub dnssec: Option<RawDnssec>,
}

/// The `dnssec:` block of a zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    /// Key files (PKCS#8 PEM, from `gtm dnssec keygen`), relative to the
    /// topology file.
    pub keys: Vec<String>,
    /// Keys published in the DNSKEY RRset that do not sign: the next key
    /// before it takes over, or the previous one until caches forget its
    /// signatures (a pre-publish rollover).
    #[serde(default)]
    pub published: Vec<String>,
    /// How long a signature is valid (default `7d`).
    #[serde(default)]
    pub signature_validity: Option<Scalar>,
    /// A signature is made anew when less than this remains (default `1d`).
    #[serde(default)]
    pub refresh: Option<Scalar>,
}

/// The `soa:` block; times are durations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoa {
    /// Primary name server.
    pub mname: String,
    /// Responsible mailbox: `hostmaster.example.com.` or `hostmaster@example.com`.
    pub rname: String,
    /// Serial (default 1).
    #[serde(default)]
    pub serial: Option<u32>,
    /// Default `1h`.
    #[serde(default)]
    pub refresh: Option<Scalar>,
    /// Default `15m`.
    #[serde(default)]
    pub retry: Option<Scalar>,
    /// Default `2w`.
    #[serde(default)]
    pub expire: Option<Scalar>,
    /// Negative-caching TTL bound; default `5m`.
    #[serde(default)]
    pub minimum: Option<Scalar>,
    /// TTL of the SOA record itself; default the zone's `default_ttl`.
    #[serde(default)]
    pub ttl: Option<Scalar>,
}

/// One static record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    /// Owner: `@`, a relative name, or an absolute name inside the zone.
    pub name: String,
    /// Record type mnemonic.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL (default the zone's `default_ttl`).
    #[serde(default)]
    pub ttl: Option<Scalar>,
    /// Record data in zone-file presentation form.
    pub value: Scalar,
}

/// One geo name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeo {
    /// Owner name, as for records.
    pub name: String,
    /// Candidate regions.
    pub regions: Vec<String>,
    /// `nearest` (default), `failover`, `weighted` or `all`.
    #[serde(default)]
    pub policy: Option<String>,
    /// Answer TTL (default `30s`).
    #[serde(default)]
    pub ttl: Option<Scalar>,
    /// Region → weight, for the `weighted` policy (default 1 each).
    #[serde(default)]
    pub weights: IndexMap<String, u32>,
    /// Most addresses in one answer, for the `all` policy (default 8).
    #[serde(default)]
    pub max_answers: Option<u32>,
    /// What to answer when every candidate region is down.
    #[serde(default)]
    pub all_down: Option<RawAllDown>,
    /// When present, HTTPS queries are answered from the chosen region.
    #[serde(default)]
    pub https: Option<RawGeoHttps>,
}

/// `https:` of a geo name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoHttps {
    /// ALPN protocol ids every region offers, e.g. `[h2, http/1.1]`.
    pub alpn: Vec<String>,
}

/// `all_down:` — `fail_open`, `fail_closed`, `last_known_good` or
/// `{ fallback: [addresses] }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAllDown {
    /// `fail_open`, `fail_closed` or `last_known_good`.
    Mode(String),
    /// Fixed addresses to answer with.
    Fallback {
        /// The addresses (A and/or AAAA).
        fallback: Vec<Scalar>,
    },
}

/// One region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    /// Where the region is.
    pub location: RawLocation,
    /// The region's public addresses.
    pub vip: RawVip,
    /// How the GSLB probes the region through its VIP.
    #[serde(default)]
    pub health: Option<crate::health::RawHealthCheck>,
    /// The L4 tier on the VIP.
    #[serde(default)]
    pub l4: Option<crate::tiers::l4::RawL4>,
    /// The L7 tier behind it.
    #[serde(default)]
    pub l7: Option<crate::tiers::l7::RawL7>,
    /// Demo backends `gtm up` starts.
    #[serde(default)]
    pub backends: Vec<crate::tiers::RawBackend>,
    /// What the region can take, for spill-over.
    #[serde(default)]
    pub capacity: Option<crate::capacity::RawCapacity>,
}

/// Coordinates in degrees.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocation {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

/// A region's VIP addresses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVip {
    /// IPv4 VIP, answered for A.
    #[serde(default)]
    pub ipv4: Option<Scalar>,
    /// IPv6 VIP, answered for AAAA.
    #[serde(default)]
    pub ipv6: Option<Scalar>,
    /// Service ports on the VIP.
    #[serde(default)]
    pub ports: Option<RawPorts>,
}

/// `vip.ports:` — the ports the region serves on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPorts {
    /// Plain HTTP (default 80).
    #[serde(default)]
    pub http: Option<u16>,
    /// HTTPS (default 443).
    #[serde(default)]
    pub https: Option<u16>,
}
