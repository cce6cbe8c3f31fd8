//! Stage two: raw structs → the validated [`Topology`], reporting every
//! problem at once, each with the field path it concerns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::duration::parse_ttl;
pub use crate::field::Problem;
use crate::field::{Place, Problems, Scalar};
use geo_data::{Continent, CountryCode, Prefix};

use crate::masterfile::{MasterFile, RawFileRecord, duration_text};
use crate::model::{
    AllDown, Breaker, Coordinates, DnsNode, Dnssec, GeoHttps, GeoIpSource, GeoName, GeoPolicy,
    Overrides, RateLimit, Record, Region, RegionId, Topology, Vip, Zone,
};
use crate::name::DomainName;
use crate::raw::{
    RawAllDown, RawBreaker, RawDnssec, RawGeo, RawNode, RawOverrides, RawRateLimit, RawRegion,
    RawSoa, RawTopology, RawZone,
};
use crate::rdata::{RecordData, RecordType, Soa};

const DEFAULT_TTL: u32 = 3600;
const DEFAULT_GEO_TTL: u32 = 30;
const DEFAULT_MAX_ANSWERS: u32 = 8;
const DEFAULT_SIGNATURE_VALIDITY: u32 = 7 * 86_400;
const DEFAULT_SIGNATURE_REFRESH: u32 = 86_400;

/// Validates a parsed file, returning the model or every problem found.
pub fn validate(mut raw: RawTopology) -> Result<Topology, Vec<Problem>> {
    let mut problems = Problems::default();

    let regions: Vec<Region> = raw
        .regions
        .iter()
        .filter_map(|(name, region)| validate_region(name, region, &mut problems))
        .collect();
    // Names of regions that were declared, valid or not, so that a typo in a
    // region's own fields does not also produce "unknown region" elsewhere.
    let declared: Vec<&str> = raw.regions.keys().map(String::as_str).collect();
    let resolve_region = |name: &str, path: String, problems: &mut Problems| match regions
        .iter()
        .position(|r| r.name == name)
    {
        Some(index) => Some(RegionId(index)),
        None if declared.contains(&name) => None,
        None => {
            problems.add(
                path,
                format!(
                    "unknown region {name:?}; declared regions: {}",
                    list_or_none(&declared)
                ),
            );
            None
        }
    };

    if raw.dns.nodes.is_empty() {
        problems.add(
            "dns.nodes",
            "no name-server nodes; add one, e.g. { name: ns1, listen: [\"127.0.0.1:5353\"] }",
        );
    }
    let mut nodes = Vec::new();
    let mut listen_owner: HashMap<SocketAddr, String> = HashMap::new();
    for (index, node) in raw.dns.nodes.iter().enumerate() {
        let path = format!("dns.nodes[{index}]");
        if let Some(node) = validate_node(
            node,
            &path,
            &mut problems,
            &mut listen_owner,
            &resolve_region,
        ) {
            nodes.push(node);
        }
    }

    if raw.dns.zones.is_empty() {
        problems.add("dns.zones", "no zones; add the zone this GSLB serves");
    }
    let mut zones = Vec::new();
    let mut origins = HashMap::new();
    for (index, zone) in raw.dns.zones.iter_mut().enumerate() {
        let path = format!("dns.zones[{index}]");
        if let Some(zone) = validate_zone(zone, &path, &mut problems, &resolve_region) {
            if let Some(first) = origins.insert(zone.origin.clone(), index) {
                problems.add(
                    format!("{path}.origin"),
                    format!(
                        "zone {} is already defined at dns.zones[{first}]; merge the two",
                        zone.origin
                    ),
                );
            }
            zones.push(zone);
        }
    }

    check_component_names(&raw, &mut problems);
    let geoip = match raw.dns.geoip.as_deref() {
        None | Some("embedded") => GeoIpSource::Embedded,
        Some("") => {
            problems.add(
                "dns.geoip",
                "is empty; write `embedded` or the path of a .mmdb file",
            );
            GeoIpSource::Embedded
        }
        Some(path) => GeoIpSource::File(path.into()),
    };
    let peer_key = validate_peer_key(&raw.dns, &nodes, &mut problems);
    let overrides = validate_overrides(&raw.dns.overrides, &mut problems, &resolve_region);
    let rate_limit = validate_rate_limit(raw.dns.rate_limit.as_ref(), &mut problems);
    let breaker = validate_breaker(raw.dns.breaker.as_ref(), &mut problems);
    let default_order = match &raw.dns.default_order {
        None => (0..regions.len()).map(RegionId).collect(),
        Some(names) => region_list(names, "dns.default_order", &mut problems, &resolve_region),
    };

    let hosts = crate::hosts::validate(&raw.hosts, &mut problems);
    if problems.0.is_empty() {
        let topology = Topology {
            dns: crate::model::Dns {
                nodes,
                zones,
                geoip,
                overrides,
                default_order,
                admin_token: raw.dns.admin_token.clone().filter(|t| !t.is_empty()),
                peer_key,
                rate_limit,
                breaker,
            },
            regions,
            hosts,
        };
        // Placement needs every part validated: it ties components to hosts.
        crate::placement::check(&topology, &mut problems);
        if problems.0.is_empty() {
            return Ok(topology);
        }
    }
    Err(problems.0)
}

/// `dns.peer_key`: required once name servers exchange their health views
/// over a network (several nodes, an admin API off loopback), because an
/// unsigned view lets anyone who reaches an admin port vote a region down.
fn validate_peer_key(
    raw: &crate::raw::RawDns,
    nodes: &[crate::model::DnsNode],
    problems: &mut Problems,
) -> Option<std::path::PathBuf> {
    match raw.peer_key.as_deref() {
        Some("") => {
            problems.add(
                "dns.peer_key",
                "is empty; write the path of a file holding a shared secret",
            );
            None
        }
        Some(path) => Some(path.into()),
        None => {
            let networked = nodes
                .iter()
                .any(|n| n.admin.is_some_and(|a| !a.ip().is_loopback()));
            if nodes.len() > 1 && networked {
                problems.add(
                    "dns.peer_key",
                    format!(
                        "{} name servers exchange health views over the network; add peer_key: FILE (a shared secret of at least 32 bytes, e.g. `head -c 32 /dev/urandom | base64 > peer.key; chmod 600 peer.key`) so that no one else can vote a region down",
                        nodes.len()
                    ),
                );
            }
            None
        }
    }
}

/// Every process `gtm` runs (name servers, L4 and L7 nodes, backends) is
/// addressed by name, so names are unique across the whole file.
fn check_component_names(raw: &RawTopology, problems: &mut Problems) {
    let mut seen: HashMap<&str, String> = HashMap::new();
    let mut names: Vec<(&str, String)> = Vec::new();
    for (index, node) in raw.dns.nodes.iter().enumerate() {
        names.push((node.name.as_str(), format!("dns.nodes[{index}].name")));
    }
    for (region, r) in &raw.regions {
        for (index, node) in r.l4.iter().flat_map(|l4| l4.nodes.iter().enumerate()) {
            names.push((
                node.name.as_str(),
                format!("regions.{region}.l4.nodes[{index}].name"),
            ));
        }
        for (index, node) in r.l7.iter().flat_map(|l7| l7.nodes.iter().enumerate()) {
            names.push((
                node.name.as_str(),
                format!("regions.{region}.l7.nodes[{index}].name"),
            ));
        }
        for (index, backend) in r.backends.iter().enumerate() {
            names.push((
                backend.name.as_str(),
                format!("regions.{region}.backends[{index}].name"),
            ));
        }
    }
    for (name, path) in names {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problems.add(
                &path,
                format!("name {name:?} must be letters, digits, '-' or '_'"),
            );
        }
        if name == "all" || name == "gslb" {
            problems.add(&path, format!("{name:?} is reserved; choose another name"));
        }
        match seen.get(name) {
            Some(first) => problems.add(
                &path,
                format!("name {name:?} is already used at {first}; every component needs its own"),
            ),
            None => {
                seen.insert(name, path);
            }
        }
    }
}

/// Resolves a list of region names, refusing unknown and repeated ones.
fn region_list(
    names: &[String],
    path: &str,
    problems: &mut Problems,
    resolve_region: &impl Fn(&str, String, &mut Problems) -> Option<RegionId>,
) -> Vec<RegionId> {
    if names.is_empty() {
        problems.add(path, "no regions; list at least one");
    }
    let mut ids = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let field = format!("{path}[{index}]");
        if let Some(id) = resolve_region(name, field.clone(), problems) {
            if ids.contains(&id) {
                problems.add(field, format!("region {name:?} is listed twice"));
            }
            ids.push(id);
        }
    }
    ids
}

fn validate_rate_limit(raw: Option<&RawRateLimit>, problems: &mut Problems) -> RateLimit {
    let mut limit = RateLimit::default();
    let Some(raw) = raw else {
        return limit;
    };
    let path = "dns.rate_limit";
    limit.enabled = raw.enabled.unwrap_or(true);
    if let Some(rate) = raw.responses_per_second {
        if rate == 0 {
            problems.add(
                format!("{path}.responses_per_second"),
                "0 would drop every reply; write a rate such as 20, or `enabled: false`",
            );
        }
        limit.responses_per_second = rate.max(1);
        limit.burst = rate.saturating_mul(2).max(1);
    }
    if let Some(burst) = raw.burst {
        if burst == 0 {
            problems.add(format!("{path}.burst"), "must be at least 1; write e.g. 40");
        }
        limit.burst = burst.max(1);
    }
    if let Some(slip) = raw.slip {
        if slip > 10 {
            problems.add(
                format!("{path}.slip"),
                format!("{slip} is more than 10; write 0 (drop all), 1 (truncate all) or e.g. 2"),
            );
        }
        limit.slip = slip;
    }
    for (value, max, key, default) in [
        (raw.ipv4_prefix, 32, "ipv4_prefix", 24),
        (raw.ipv6_prefix, 128, "ipv6_prefix", 56),
    ] {
        if let Some(len) = value
            && len > max
        {
            problems.add(
                format!("{path}.{key}"),
                format!("/{len} is longer than the address (/{max}); write e.g. {default}"),
            );
        }
    }
    limit.ipv4_prefix = raw.ipv4_prefix.unwrap_or(24).min(32);
    limit.ipv6_prefix = raw.ipv6_prefix.unwrap_or(56).min(128);
    if let Some(exempt) = &raw.exempt {
        limit.exempt = exempt
            .iter()
            .enumerate()
            .filter_map(|(index, net)| {
                problems.check(
                    format!("{path}.exempt[{index}]"),
                    net.parse::<Prefix>().map_err(|e| {
                        format!("{net:?} is not a network: {e}; write it as \"10.0.0.0/8\" or \"2001:db8::/32\"")
                    }),
                )
            })
            .collect();
    }
    limit
}

fn validate_breaker(raw: Option<&RawBreaker>, problems: &mut Problems) -> Breaker {
    let mut breaker = Breaker::default();
    let Some(raw) = raw else {
        return breaker;
    };
    breaker.enabled = raw.enabled.unwrap_or(true);
    if let Some(fraction) = raw.down_fraction {
        if fraction > 0.0 && fraction <= 1.0 {
            breaker.down_fraction = Some(fraction);
        } else {
            problems.add(
                "dns.breaker.down_fraction",
                format!(
                    "{fraction} is not a share of the regions; write a number in (0, 1], e.g. 0.75"
                ),
            );
        }
    }
    if let Some(min) = raw.min_regions {
        if min < 2 {
            problems.add(
                "dns.breaker.min_regions",
                format!("{min} would judge a vantage point by a single region; write 2 or more (default 3)"),
            );
        }
        breaker.min_regions = min.max(2) as usize;
    }
    breaker
}

fn validate_overrides(
    raw: &RawOverrides,
    problems: &mut Problems,
    resolve_region: &impl Fn(&str, String, &mut Problems) -> Option<RegionId>,
) -> Overrides {
    let mut overrides = Overrides::default();
    for (net, names) in &raw.nets {
        let path = format!("dns.overrides.nets.{net}");
        let prefix = problems.check(
            &path,
            net.parse::<Prefix>().map_err(|e| {
                format!(
                    "{net:?} is not a network: {e}; write it as \"10.0.0.0/8\" or \"2001:db8::/32\""
                )
            }),
        );
        let regions = region_list(names, &path, problems, resolve_region);
        if let Some(prefix) = prefix {
            overrides.nets.push((prefix, regions));
        }
    }
    overrides
        .nets
        .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    for (code, names) in &raw.countries {
        let path = format!("dns.overrides.countries.{code}");
        let country = problems.check(
            &path,
            code.parse::<CountryCode>().map_err(|_| {
                format!(
                    "{code:?} is not an ISO 3166 country code; write two letters such as \"NZ\""
                )
            }),
        );
        let regions = region_list(names, &path, problems, resolve_region);
        if let Some(country) = country {
            overrides.countries.push((country, regions));
        }
    }
    for (code, names) in &raw.continents {
        let path = format!("dns.overrides.continents.{code}");
        let continent = problems.check(
            &path,
            code.parse::<Continent>().map_err(|_| {
                format!("{code:?} is not a continent code; use AF, AN, AS, EU, NA, OC or SA")
            }),
        );
        let regions = region_list(names, &path, problems, resolve_region);
        if let Some(continent) = continent {
            overrides.continents.push((continent, regions));
        }
    }
    overrides
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none (add a `regions:` block)".into()
    } else {
        names.join(", ")
    }
}

fn validate_region(name: &str, raw: &RawRegion, problems: &mut Problems) -> Option<Region> {
    let path = format!("regions.{name}");
    let before = problems.0.len();
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.add(
            &path,
            format!(
                "region name {name:?} must be 1 to 63 lowercase letters, digits or '-', like \"us-east\""
            ),
        );
    }
    let RawRegion {
        location,
        vip,
        health,
        l4,
        l7,
        backends,
        capacity,
    } = raw;
    if !(-90.0..=90.0).contains(&location.lat) {
        problems.add(
            format!("{path}.location.lat"),
            format!("latitude {} is outside -90..90 degrees", location.lat),
        );
    }
    if !(-180.0..=180.0).contains(&location.lon) {
        problems.add(
            format!("{path}.location.lon"),
            format!("longitude {} is outside -180..180 degrees", location.lon),
        );
    }
    let ipv4 = vip.ipv4.as_ref().and_then(|text| {
        let text = text.text();
        problems.check(
            format!("{path}.vip.ipv4"),
            text.parse()
                .map_err(|_| format!("{text:?} is not an IPv4 address; write e.g. \"127.0.1.1\"")),
        )
    });
    let ipv6 = vip.ipv6.as_ref().and_then(|text| {
        let text = text.text();
        problems.check(
            format!("{path}.vip.ipv6"),
            text.parse()
                .map_err(|_| format!("{text:?} is not an IPv6 address; write e.g. \"fd00:1::1\"")),
        )
    });
    if vip.ipv4.is_none() && vip.ipv6.is_none() {
        problems.add(
            format!("{path}.vip"),
            "the VIP has no address; set `ipv4:` and/or `ipv6:`",
        );
    }
    let ports = vip.ports.as_ref();
    let http_port = ports.and_then(|p| p.http).unwrap_or(80);
    let https_port = ports.and_then(|p| p.https).unwrap_or(443);
    let l7 = l7
        .as_ref()
        .map(|raw| crate::tiers::l7::validate(raw, &format!("{path}.l7"), problems));
    let l7_health_path = l7
        .as_ref()
        .map_or(crate::tiers::l7::DEFAULT_HEALTH_PATH, |t| {
            t.health_path.as_str()
        })
        .to_owned();
    let l4 = l4.as_ref().map(|raw| {
        if l7.is_none() {
            problems.add(
                format!("{path}.l4"),
                "an L4 tier needs L7 nodes to send connections to; add an `l7:` block",
            );
        }
        if l7.as_ref().is_some_and(|t| !t.proxy_protocol) {
            // The L4 tier opens every connection to an L7 node with a PROXY
            // v2 header; an L7 node not expecting one would read it as a
            // broken request.
            problems.add(
                format!("{path}.l7.proxy_protocol"),
                "the region's L4 tier starts every connection to the L7 nodes with a PROXY v2 header (the client's address); set `proxy_protocol: true` under `l7:`",
            );
        }
        let l7_nodes: Vec<&str> = l7
            .as_ref()
            .map(|t| t.nodes.iter().map(|n| n.name.as_str()).collect())
            .unwrap_or_default();
        crate::tiers::l4::validate(
            raw,
            &l7_nodes,
            &l7_health_path,
            &format!("{path}.l4"),
            problems,
        )
    });
    let health = crate::health::validate(
        health.as_ref(),
        &l7_health_path,
        Some(crate::health::GRPC_CHECKS_POOLS_ONLY),
        &format!("{path}.health"),
        problems,
    );
    let backends = crate::tiers::validate_backends(backends, &format!("{path}.backends"), problems);
    let capacity = capacity
        .as_ref()
        .and_then(|raw| crate::capacity::validate(raw, &format!("{path}.capacity"), problems));
    if capacity.is_some() && l7.is_none() {
        // The load is read from the region's edge nodes' admin APIs (an L4
        // tier without L7 nodes is refused above).
        problems.add(
            format!("{path}.capacity"),
            "the region's load is measured on its L7 (or L4) nodes, and it has none; add an `l7:` tier or remove `capacity:`",
        );
    }
    (problems.0.len() == before).then(|| Region {
        name: name.to_owned(),
        location: Coordinates {
            lat: location.lat,
            lon: location.lon,
        },
        vip: Vip {
            ipv4,
            ipv6,
            http_port,
            https_port,
        },
        health,
        l4,
        l7,
        backends,
        capacity,
    })
}

fn validate_node(
    raw: &RawNode,
    path: &str,
    problems: &mut Problems,
    listen_owner: &mut HashMap<SocketAddr, String>,
    resolve_region: &impl Fn(&str, String, &mut Problems) -> Option<RegionId>,
) -> Option<DnsNode> {
    let before = problems.0.len();
    let region = raw
        .region
        .as_deref()
        .and_then(|name| resolve_region(name, format!("{path}.region"), problems));
    if raw.listen.is_empty() {
        problems.add(
            format!("{path}.listen"),
            "no listen address; add one such as \"127.0.0.1:5353\"",
        );
    }
    let mut listen = Vec::new();
    for (index, text) in raw.listen.iter().enumerate() {
        let text = text.text();
        let field = format!("{path}.listen[{index}]");
        let Some(addr) = problems.check(
            &field,
            text.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "{text:?} is not an address with a port; write \"127.0.0.1:5353\" or \"[::1]:5353\""
                )
            }),
        ) else {
            continue;
        };
        if let Some(owner) = listen_owner.insert(addr, raw.name.clone()) {
            problems.add(
                field,
                format!("{addr} is already a listen address of node {owner:?}"),
            );
        }
        listen.push(addr);
    }
    let admin = raw
        .admin
        .as_ref()
        .and_then(|text| crate::tiers::socket_addr(text, &format!("{path}.admin"), problems));
    (problems.0.len() == before).then(|| DnsNode {
        name: raw.name.clone(),
        region,
        listen,
        admin,
        host: raw.host.clone(),
    })
}

fn ttl_field(problems: &mut Problems, path: String, value: Option<&Scalar>, default: u32) -> u32 {
    place_ttl(problems, &Place::Field(path), "", value, default)
}

/// A TTL field of a value written at `place`: `default` when absent.
fn place_ttl(
    problems: &mut Problems,
    place: &Place,
    sub: &str,
    value: Option<&Scalar>,
    default: u32,
) -> u32 {
    match value {
        None => default,
        Some(value) => place
            .check(problems, sub, parse_ttl(&value.text()))
            .unwrap_or(0),
    }
}

fn validate_zone(
    raw: &mut RawZone,
    path: &str,
    problems: &mut Problems,
    resolve_region: &impl Fn(&str, String, &mut Problems) -> Option<RegionId>,
) -> Option<Zone> {
    let before = problems.0.len();
    let origin = problems.check(
        format!("{path}.origin"),
        DomainName::parse_absolute(&raw.origin).map_err(|e| e.to_string()),
    )?;
    let default_ttl = ttl_field(
        problems,
        format!("{path}.default_ttl"),
        raw.default_ttl.as_ref(),
        DEFAULT_TTL,
    );
    let mut records = Vec::new();
    for (index, record) in raw.records.iter().enumerate() {
        let place = Place::Field(format!("{path}.records[{index}]"));
        let value = record.value.text();
        if let Some(record) = validate_record(
            &place,
            &record.name,
            record.ttl.as_ref(),
            &record.rtype,
            &origin,
            default_ttl,
            problems,
            |rtype| RecordData::parse(rtype, &value, &origin),
        ) {
            records.push((place, record));
        }
    }
    // The file's records are consumed as they are checked, so that at a
    // million records their text is freed while the checked ones are made.
    let mut master = raw.master.take();
    let files = master
        .as_mut()
        .map(|m| std::mem::take(&mut m.files))
        .unwrap_or_default();
    let file_soa = match (&raw.file, master) {
        (Some(file), _) if file.is_empty() => {
            problems.add(
                format!("{path}.file"),
                "is empty; write the path of a BIND-format zone file, or remove `file:`",
            );
            None
        }
        (_, Some(master)) => zone_file_records(
            master,
            &origin,
            default_ttl,
            &format!("{path}.file"),
            &mut records,
            problems,
        ),
        _ => None,
    };
    let (soa, soa_ttl) = match (&raw.soa, file_soa) {
        (Some(soa), None) => validate_soa(
            soa,
            &origin,
            default_ttl,
            &Place::Field(format!("{path}.soa")),
            problems,
        ),
        (None, Some(file_soa)) => file_soa,
        (Some(_), Some(_)) => {
            problems.add(
                format!("{path}.soa"),
                "the zone file has an SOA record too; keep one: remove `soa:` (the file's SOA is then served) or the file's SOA record",
            );
            (None, 0)
        }
        (None, None) => {
            problems.add(
                format!("{path}.soa"),
                "the zone has no SOA; add a `soa:` block (mname, rname), or an SOA record at the apex of its zone `file:`",
            );
            (None, 0)
        }
    };
    let mut geo = Vec::new();
    for (index, name) in raw.geo.iter().enumerate() {
        let gpath = format!("{path}.geo[{index}]");
        if let Some(name) = validate_geo(name, &origin, &gpath, problems, resolve_region) {
            geo.push((gpath, name));
        }
    }
    check_zone_structure(&origin, &records, &geo, problems);
    let dnssec = raw
        .dnssec
        .as_ref()
        .map(|raw| validate_dnssec(raw, &format!("{path}.dnssec"), problems));

    (problems.0.len() == before).then(|| Zone {
        origin,
        soa: soa.expect("no problems implies a valid SOA"),
        soa_ttl,
        records: {
            // Collected in place, into the larger allocation of the
            // (place, record) pairs: at a million records that slack was
            // 40 MiB kept for the process's life.
            let mut records: Vec<Record> = records.into_iter().map(|(_, r)| r).collect();
            records.shrink_to_fit();
            records
        },
        geo: geo.into_iter().map(|(_, g)| g).collect(),
        dnssec,
        files,
    })
}

/// A zone's `dnssec:` block. The key files themselves are read when the
/// topology is loaded from its file (their paths are relative to it).
fn validate_dnssec(raw: &RawDnssec, path: &str, problems: &mut Problems) -> Dnssec {
    if raw.keys.is_empty() {
        problems.add(
            format!("{path}.keys"),
            "no keys; create one with `gtm dnssec keygen ZONE` and list its file here",
        );
    }
    for (list, files) in [("keys", &raw.keys), ("published", &raw.published)] {
        for (index, key) in files.iter().enumerate() {
            if key.is_empty() {
                problems.add(
                    format!("{path}.{list}[{index}]"),
                    "is empty; write the path of a key file",
                );
            } else if files[..index].contains(key)
                || (list == "published" && raw.keys.contains(key))
            {
                problems.add(
                    format!("{path}.{list}[{index}]"),
                    format!(
                        "{key:?} is listed twice; a key either signs (`keys`) or is only published (`published`)"
                    ),
                );
            }
        }
    }
    let signature_validity = ttl_field(
        problems,
        format!("{path}.signature_validity"),
        raw.signature_validity.as_ref(),
        DEFAULT_SIGNATURE_VALIDITY,
    );
    let refresh = ttl_field(
        problems,
        format!("{path}.refresh"),
        raw.refresh.as_ref(),
        DEFAULT_SIGNATURE_REFRESH,
    );
    // A signature is made with its inception an hour back (clock skew), and
    // must outlive its refresh point by more than the largest TTL it may be
    // cached for; asking for at least a day keeps both simple and safe.
    if signature_validity < 86_400 {
        problems.add(
            format!("{path}.signature_validity"),
            "is shorter than a day; write at least \"1d\" (the default is \"7d\")",
        );
    } else if refresh >= signature_validity {
        problems.add(
            format!("{path}.refresh"),
            "is not shorter than signature_validity, so every answer would be signed anew; write e.g. \"1d\" with \"7d\"",
        );
    }
    Dnssec {
        keys: raw.keys.iter().map(Into::into).collect(),
        published: raw.published.iter().map(Into::into).collect(),
        signature_validity,
        refresh,
    }
}

/// The SOA written at `place`: a `soa:` block, or a zone file's SOA
/// record turned into one (so both meet the same rules).
fn validate_soa(
    raw: &RawSoa,
    origin: &DomainName,
    default_ttl: u32,
    place: &Place,
    problems: &mut Problems,
) -> (Option<Soa>, u32) {
    let mname = place.check(
        problems,
        "mname",
        DomainName::parse_in_zone(&raw.mname, origin).map_err(|e| e.to_string()),
    );
    let rname_text = match raw.rname.split_once('@') {
        Some((local, domain)) if !local.contains('.') => {
            format!("{local}.{}", domain.trim_end_matches('.')) + "."
        }
        Some(_) => {
            place.add(
                problems,
                "rname",
                format!(
                    "{:?}: a mailbox with '.' before the '@' cannot be written here; use a mailbox without dots",
                    raw.rname
                ),
            );
            String::new()
        }
        None => raw.rname.clone(),
    };
    let rname = if rname_text.is_empty() {
        None
    } else {
        place.check(
            problems,
            "rname",
            DomainName::parse_in_zone(&rname_text, origin).map_err(|e| e.to_string()),
        )
    };
    let mut seconds = |field: &str, value: &Option<Scalar>, default: u32| {
        place_ttl(problems, place, field, value.as_ref(), default)
    };
    let refresh = seconds("refresh", &raw.refresh, 3600);
    let retry = seconds("retry", &raw.retry, 900);
    let expire = seconds("expire", &raw.expire, 1_209_600);
    let minimum = seconds("minimum", &raw.minimum, 300);
    let ttl = seconds("ttl", &raw.ttl, default_ttl);
    let soa = match (mname, rname) {
        (Some(mname), Some(rname)) => Some(Soa {
            mname,
            rname,
            serial: raw.serial.unwrap_or(1),
            refresh,
            retry,
            expire,
            minimum,
        }),
        _ => None,
    };
    (soa, ttl)
}

/// One static record, written in the YAML or in the zone file: its owner
/// `name` (relative to the zone `origin`), TTL, type, and data read by
/// `data` for the type.
#[allow(clippy::too_many_arguments)]
fn validate_record(
    place: &Place,
    name: &str,
    ttl: Option<&Scalar>,
    rtype: &str,
    origin: &DomainName,
    default_ttl: u32,
    problems: &mut Problems,
    data: impl FnOnce(RecordType) -> Result<RecordData, String>,
) -> Option<Record> {
    let name = owner_name(name, origin, place, "name", problems);
    let ttl = place_ttl(problems, place, "ttl", ttl, default_ttl);
    let rtype = place.check(problems, "type", rtype.parse::<RecordType>())?;
    let data = place.check(problems, "value", data(rtype))?;
    Some(Record {
        name: name?,
        ttl,
        data,
    })
}

/// The records of a zone's file (`field`, `dns.zones[i].file`), checked
/// like `records:` and added to `records`; its SOA, if it has one, is
/// returned checked like a `soa:` block.
fn zone_file_records(
    master: MasterFile,
    origin: &DomainName,
    default_ttl: u32,
    field: &str,
    records: &mut Vec<(Place, Record)>,
    problems: &mut Problems,
) -> Option<(Option<Soa>, u32)> {
    let field_name: Arc<str> = field.into();
    for error in &master.errors {
        let file = error.file.display().to_string().into();
        match error.line {
            Some(line) => Place::Line {
                field: field_name.clone(),
                file,
                line,
            }
            .add(problems, "", &error.message),
            None => problems.add(field, &error.message),
        }
    }
    let mut soa = None;
    // The file's name as problems show it, made once per file read.
    let mut file_name: Option<(Arc<Path>, Arc<str>)> = None;
    for record in master.records {
        let file = match &file_name {
            Some((path, name)) if Arc::ptr_eq(path, &record.file) => name.clone(),
            _ => {
                let name: Arc<str> = record.file.display().to_string().into();
                file_name = Some((record.file.clone(), name.clone()));
                name
            }
        };
        let place = Place::Line {
            field: field_name.clone(),
            file,
            line: record.line,
        };
        let ttl = record.ttl.clone().map(Scalar::Text);
        if record.rtype.eq_ignore_ascii_case("SOA") {
            let owner = owner_name(&record.owner, origin, &place, "", problems);
            if owner.is_some_and(|owner| owner != *origin) {
                place.add(
                    problems,
                    "",
                    format!(
                        "an SOA record belongs at the zone apex {origin} only; remove this one"
                    ),
                );
            } else if soa.is_some() {
                place.add(problems, "", "a second SOA record; a zone has one");
            } else {
                soa = file_soa(&record, ttl, default_ttl, &place, problems);
            }
            continue;
        }
        // A signed zone's export carries its signatures and keys; gslb
        // signs online with its own.
        if [
            "RRSIG",
            "NSEC",
            "NSEC3",
            "NSEC3PARAM",
            "DNSKEY",
            "CDS",
            "CDNSKEY",
        ]
        .iter()
        .any(|t| record.rtype.eq_ignore_ascii_case(t))
        {
            place.add(
                problems,
                "",
                format!(
                    "{} records are made by gslb's online signing; load the unsigned zone (e.g. `named-compilezone -D`, or remove them) and sign it with the zone's `dnssec:` keys",
                    record.rtype.to_ascii_uppercase()
                ),
            );
            continue;
        }
        let data = |rtype| match rtype {
            RecordType::Txt => RecordData::txt(&record.strings),
            _ => RecordData::parse(rtype, &record.rdata, &record.origin),
        };
        if let Some(checked) = validate_record(
            &place,
            &record.owner,
            ttl.as_ref(),
            &record.rtype,
            origin,
            default_ttl,
            problems,
            data,
        ) {
            records.push((place, checked));
        }
    }
    soa
}

/// A zone file's SOA record, checked as the `soa:` block it stands for.
fn file_soa(
    record: &RawFileRecord,
    ttl: Option<Scalar>,
    default_ttl: u32,
    place: &Place,
    problems: &mut Problems,
) -> Option<(Option<Soa>, u32)> {
    let fields: Vec<&str> = record.rdata.split_whitespace().collect();
    let [mname, rname, serial, refresh, retry, expire, minimum] = fields.as_slice() else {
        place.add(
            problems,
            "",
            format!(
                "{:?} is not SOA data; write MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM, e.g. \"ns1 hostmaster 2026010101 1h 15m 2w 5m\"",
                record.rdata
            ),
        );
        return None;
    };
    let serial = place.check(
        problems,
        "",
        serial
            .parse::<u32>()
            .map_err(|_| format!("SOA serial {serial:?} is not a number from 0 to 4294967295")),
    )?;
    let time = |text: &str| Some(Scalar::Text(duration_text(text)));
    let raw = RawSoa {
        mname: (*mname).to_owned(),
        // `@` is the origin here, not the `soa:` block's mailbox form.
        rname: if *rname == "@" {
            record.origin.to_string()
        } else {
            (*rname).to_owned()
        },
        serial: Some(serial),
        refresh: time(refresh),
        retry: time(retry),
        expire: time(expire),
        minimum: time(minimum),
        ttl,
    };
    Some(validate_soa(
        &raw,
        &record.origin,
        default_ttl,
        place,
        problems,
    ))
}

fn owner_name(
    text: &str,
    origin: &DomainName,
    place: &Place,
    sub: &str,
    problems: &mut Problems,
) -> Option<DomainName> {
    let name = place.check(
        problems,
        sub,
        DomainName::parse_in_zone(text, origin).map_err(|e| e.to_string()),
    )?;
    if !name.is_at_or_below(origin) {
        place.add(
            problems,
            sub,
            format!(
                "{name} is outside zone {origin}; write a name relative to the zone (\"www\") or ending in {origin}"
            ),
        );
        return None;
    }
    Some(name)
}

fn validate_geo(
    raw: &RawGeo,
    origin: &DomainName,
    path: &str,
    problems: &mut Problems,
    resolve_region: &impl Fn(&str, String, &mut Problems) -> Option<RegionId>,
) -> Option<GeoName> {
    let before = problems.0.len();
    let name = owner_name(
        &raw.name,
        origin,
        &Place::Field(path.to_owned()),
        "name",
        problems,
    );
    if name.as_ref().is_some_and(DomainName::is_wildcard) {
        problems.add(
            format!("{path}.name"),
            "a geo name cannot be a wildcard; name it explicitly",
        );
    }
    let regions = region_list(
        &raw.regions,
        &format!("{path}.regions"),
        problems,
        resolve_region,
    );
    let policy = match raw.policy.as_deref() {
        None | Some("nearest") => GeoPolicy::Nearest,
        Some("failover") => GeoPolicy::Failover,
        Some("weighted") => GeoPolicy::Weighted,
        Some("all") => GeoPolicy::All,
        Some(other) => {
            problems.add(
                format!("{path}.policy"),
                format!("unknown policy {other:?}; use nearest, failover, weighted or all"),
            );
            GeoPolicy::Nearest
        }
    };
    let ttl = ttl_field(
        problems,
        format!("{path}.ttl"),
        raw.ttl.as_ref(),
        DEFAULT_GEO_TTL,
    );
    let mut weights = vec![1; regions.len()];
    if !raw.weights.is_empty() && policy != GeoPolicy::Weighted {
        problems.add(
            format!("{path}.weights"),
            format!(
                "weights apply to `policy: weighted`, not {}; remove them or change the policy",
                policy.as_str()
            ),
        );
    }
    for (region, weight) in &raw.weights {
        let field = format!("{path}.weights.{region}");
        match raw.regions.iter().position(|r| r == region) {
            None => problems.add(
                field,
                format!("{region:?} is not one of this name's regions; weigh only listed regions"),
            ),
            Some(_) if *weight == 0 => problems.add(
                field,
                "a weight of 0 never answers; remove the region instead",
            ),
            Some(index) if index < weights.len() => weights[index] = *weight,
            Some(_) => {}
        }
    }
    let max_answers = raw.max_answers.unwrap_or(DEFAULT_MAX_ANSWERS);
    if max_answers == 0 {
        problems.add(format!("{path}.max_answers"), "must be at least 1");
    }
    let all_down = match &raw.all_down {
        None => AllDown::FailOpen,
        Some(RawAllDown::Mode(mode)) => match mode.as_str() {
            "fail_open" => AllDown::FailOpen,
            "fail_closed" => AllDown::FailClosed,
            "last_known_good" => AllDown::LastKnownGood,
            other => {
                problems.add(
                    format!("{path}.all_down"),
                    format!(
                        "unknown mode {other:?}; use fail_open, fail_closed, last_known_good or {{ fallback: [192.0.2.1] }}"
                    ),
                );
                AllDown::FailOpen
            }
        },
        Some(RawAllDown::Fallback { fallback }) => {
            let mut addresses = Vec::new();
            for (index, text) in fallback.iter().enumerate() {
                let text = text.text();
                if let Some(ip) = problems.check(
                    format!("{path}.all_down.fallback[{index}]"),
                    text.parse()
                        .map_err(|_| format!("{text:?} is not an IP address")),
                ) {
                    addresses.push(ip);
                }
            }
            if fallback.is_empty() {
                problems.add(
                    format!("{path}.all_down.fallback"),
                    "no addresses; list at least one",
                );
            }
            AllDown::Fallback(addresses)
        }
    };
    let https = raw.https.as_ref().map(|https| {
        if https.alpn.is_empty() {
            problems.add(
                format!("{path}.https.alpn"),
                "no protocols; list what every region serves, e.g. [h2, http/1.1]",
            );
        }
        for (index, id) in https.alpn.iter().enumerate() {
            problems.check(
                format!("{path}.https.alpn[{index}]"),
                crate::rdata::alpn_id(id),
            );
        }
        GeoHttps {
            alpn: https.alpn.clone(),
        }
    });
    (problems.0.len() == before).then(|| GeoName {
        name: name.expect("no problems implies a name"),
        regions,
        policy,
        ttl,
        weights,
        max_answers: max_answers as usize,
        all_down,
        https,
    })
}

/// Zone-wide rules that involve several records: RRset TTLs, CNAME
/// exclusivity, delegations and glue, the apex NS set.
fn check_zone_structure(
    origin: &DomainName,
    records: &[(Place, Record)],
    geo: &[(String, GeoName)],
    problems: &mut Problems,
) {
    // The records' indices ordered by owner and type, file order kept
    // within each: an RRset is a run of them. (A map holding a list per
    // RRset cost ~100 MiB at a million records.)
    let key = |i: &usize| {
        let record = &records[*i].1;
        (&record.name, record.record_type())
    };
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|a, b| key(a).cmp(&key(b)));
    let rrsets = || {
        order
            .chunk_by(|a, b| key(a) == key(b))
            .map(|run| (key(&run[0]), run))
    };
    let has_rrset = |name: &DomainName, rtype: RecordType| {
        order
            .binary_search_by(|i| key(i).cmp(&(name, rtype)))
            .is_ok()
    };
    let member = |i: &usize| (&records[*i].0, &records[*i].1);
    for ((name, rtype), run) in rrsets() {
        let (first_path, first) = member(&run[0]);
        for (place, record) in run[1..].iter().map(member) {
            if record.ttl != first.ttl {
                place.add(
                    problems,
                    "ttl",
                    format!(
                        "TTL {}s differs from the {}s of the other {name} {rtype} record at {first_path}; records of one name and type share one TTL (RFC 2181 §5.2)",
                        record.ttl, first.ttl
                    ),
                );
            }
        }
        for (later, (place, record)) in run.iter().map(member).enumerate() {
            if run[..later]
                .iter()
                .any(|i| records[*i].1.data == record.data)
            {
                place.add(
                    problems,
                    "",
                    format!("duplicate {name} {rtype} record; remove one"),
                );
            }
        }
        if rtype == RecordType::Cname && run.len() > 1 {
            member(&run[1]).0.add(
                problems,
                "",
                format!("{name} has more than one CNAME; a name aliases exactly one target"),
            );
        }
    }

    let types_at = |name: &DomainName| -> Vec<RecordType> {
        rrsets()
            .filter(|((n, _), _)| *n == name)
            .map(|((_, t), _)| t)
            .collect()
    };
    let geo_names: HashMap<&DomainName, &str> = geo
        .iter()
        .map(|(path, g)| (&g.name, path.as_str()))
        .collect();

    // CNAME exclusivity and apex rules.
    for ((name, rtype), run) in rrsets() {
        if rtype != RecordType::Cname {
            continue;
        }
        let place = member(&run[0]).0;
        if name == origin {
            place.add(
                problems,
                "",
                "a CNAME cannot sit at the zone apex (it would hide the SOA and NS); use A/AAAA or a geo name",
            );
        }
        let others: Vec<String> = types_at(name)
            .into_iter()
            .filter(|t| *t != RecordType::Cname)
            .map(|t| t.to_string())
            .collect();
        if !others.is_empty() {
            place.add(
                problems,
                "",
                format!(
                    "{name} has a CNAME and also {} records; a CNAME must be the only data at its name (RFC 1034 §3.6.2)",
                    others.join(", ")
                ),
            );
        }
        if geo_names.contains_key(name) {
            place.add(
                problems,
                "",
                format!("{name} has a CNAME and is also a geo name; keep one"),
            );
        }
    }
    for (path, g) in geo {
        let clashes: Vec<String> = types_at(&g.name)
            .into_iter()
            .filter(|t| {
                matches!(t, RecordType::A | RecordType::Aaaa)
                    || (*t == RecordType::Https && g.https.is_some())
            })
            .map(|t| t.to_string())
            .collect();
        if !clashes.is_empty() {
            problems.add(
                format!("{path}.name"),
                format!(
                    "{} is a geo name and also has static {} records; the geo name answers A and AAAA (and HTTPS with `https:`), so remove the static ones",
                    g.name,
                    clashes.join(", ")
                ),
            );
        }
    }

    // The apex NS set.
    if !has_rrset(origin, RecordType::Ns) {
        problems.add(
            "dns.zones",
            format!(
                "zone {origin} has no NS record at the apex; add {{ name: \"@\", type: NS, value: ns1.{origin} }}"
            ),
        );
    }

    // Delegations: NS below the apex.
    let cuts: Vec<&DomainName> = rrsets()
        .filter(|((n, t), _)| *t == RecordType::Ns && *n != origin)
        .map(|((n, _), _)| n)
        .collect();
    for ((name, rtype), run) in rrsets() {
        let place = member(&run[0]).0;
        if rtype == RecordType::Ns && name.is_wildcard() {
            place.add(
                problems,
                "",
                "NS records cannot sit at a wildcard; delegate an explicit name",
            );
        }
        if rtype == RecordType::Ds && !cuts.contains(&name) {
            place.add(
                problems,
                "",
                format!(
                    "{name} holds a DS record but is not a delegation; DS sits beside the NS records that delegate a signed child zone"
                ),
            );
        }
        for cut in &cuts {
            // The DS RRset is the parent's side of a cut (RFC 4035 §2.4).
            if name == *cut && !matches!(rtype, RecordType::Ns | RecordType::Ds) {
                place.add(
                    problems,
                    "",
                    format!(
                        "{name} is delegated (it has NS records), so it cannot hold {rtype} records here; put them in the child zone"
                    ),
                );
            } else if name != *cut
                && name.is_at_or_below(cut)
                && !matches!(rtype, RecordType::A | RecordType::Aaaa)
            {
                place.add(
                    problems,
                    "",
                    format!(
                        "{name} is below the delegation at {cut}; only glue A/AAAA records may sit there"
                    ),
                );
            }
        }
    }
    for (path, g) in geo {
        if let Some(cut) = cuts.iter().find(|cut| g.name.is_at_or_below(cut)) {
            problems.add(
                format!("{path}.name"),
                format!("{} is at or below the delegation at {cut}", g.name),
            );
        }
    }

    // Name servers inside the zone need addresses (glue below a cut).
    let has_address = |target: &DomainName| {
        has_rrset(target, RecordType::A)
            || has_rrset(target, RecordType::Aaaa)
            || geo_names.contains_key(target)
    };
    for ((_, rtype), run) in rrsets() {
        if rtype != RecordType::Ns {
            continue;
        }
        for (place, record) in run.iter().map(member) {
            let Some(target) = record.data.target() else {
                continue;
            };
            if target.is_at_or_below(origin) && !has_address(target) {
                place.add(
                    problems,
                    "value",
                    format!(
                        "name server {target} is inside zone {origin} but has no A or AAAA record; add one (glue, if it is below a delegation)"
                    ),
                );
            }
        }
    }
}
