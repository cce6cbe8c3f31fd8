//! `dns-bench`: the DNS benchmark's helper (built as an example of the
//! `gslb` package so it shares its decision code).
//!
//! - `setup`: writes one workload's files — our topology, a gdnsd
//!   configuration answering the same (same zone, same regions, and a
//!   `geoip` map whose `nets` give every network the region order our
//!   decision table gives it), and dnsperf query files; with `--dnssec`,
//!   the zone signed (a fresh ECDSAP256SHA256 key) and a Knot DNS
//!   configuration signing the same static data itself.
//! - `load`: a latency-recording load generator: keeps a window of queries
//!   outstanding per socket, records every round trip in a log-linear
//!   histogram, and prints QPS, mean, p50, p99 and lost queries as one
//!   `key=value` line.
//!
//! Run by `bench/run dns`; see BENCHMARKS.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use geo_data::{GeoDb, Prefix};
use gslb::decide::{distance_from, location_order};
use topology::RegionId;
use topology::dnssec::{Algorithm, ZoneKey};

#[derive(Parser)]
#[command(about = "Helper of bench/run dns: workload files and a latency-recording load generator")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a workload's topology, gdnsd configuration and query files.
    Setup {
        /// Directory to write into (created).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        workload: Workload,
    },
    /// Send queries for a while and report throughput and latency (`key=value`).
    Load {
        /// The server.
        #[arg(long)]
        server: SocketAddr,
        /// dnsperf-style query file: `name TYPE` per line.
        #[arg(long)]
        queries: PathBuf,
        /// Sockets (one thread each).
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Queries outstanding per socket.
        #[arg(long, default_value_t = 32)]
        window: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Add EDNS (payload 1232) with this client subnet, e.g. 81.2.69.0/24.
        #[arg(long)]
        ecs: Option<String>,
        /// Add EDNS (payload 1232) without a client subnet.
        #[arg(long)]
        edns: bool,
        /// Set the DO bit (adds EDNS, payload 1232, if not asked already).
        #[arg(long)]
        dnssec: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Setup { out, workload } => setup(&out, &workload),
        Command::Load {
            server,
            queries,
            clients,
            window,
            seconds,
            ecs,
            edns,
            dnssec,
        } => load(
            server,
            &queries,
            clients,
            window,
            seconds,
            opt_record(ecs.as_deref(), edns, dnssec)?,
        ),
    }
}

/// The example's three regions.
const THREE: [(&str, f64, f64); 3] = [
    ("us-east", 39.04, -77.49),
    ("eu-west", 53.35, -6.26),
    ("ap-south", 19.08, 72.88),
];

fn regions(count: usize) -> Vec<(String, f64, f64)> {
    if count == 3 {
        return THREE
            .iter()
            .map(|(name, lat, lon)| ((*name).to_owned(), *lat, *lon))
            .collect();
    }
    // A Fibonacci lattice: evenly spread over the sphere.
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..count)
        .map(|i| {
            let y = 1.0 - 2.0 * (i as f64 + 0.5) / count as f64;
            let lat = y.asin().to_degrees();
            let lon = ((golden * i as f64).to_degrees() + 180.0).rem_euclid(360.0) - 180.0;
            (format!("r{i:03}"), lat, lon)
        })
        .collect()
}

fn vip(index: usize) -> (String, String) {
    let n = index + 1;
    (format!("127.0.{n}.1"), format!("fd00:{n:x}::1"))
}

/// What `setup` writes.
#[derive(clap::Args)]
struct Workload {
    /// Static A names besides the fixed ones.
    #[arg(long, default_value_t = 1000)]
    names: usize,
    /// Regions of the geo name (3: the example's; otherwise spread
    /// over the globe).
    #[arg(long, default_value_t = 3)]
    regions: usize,
    /// Port gslb listens on.
    #[arg(long)]
    ours: u16,
    /// Port gdnsd listens on.
    #[arg(long)]
    peer: u16,
    /// UDP threads for both servers.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Sign the zone (a new CSK, algorithm 13, under `keys/`) and
    /// write `knot/`: Knot DNS serving the same static data, signed
    /// by its automatic signing with the same algorithm.
    #[arg(long)]
    dnssec: bool,
    /// Give gslb its static names in a zone file (`file:`), as an
    /// operator with a million names would, instead of YAML records.
    #[arg(long)]
    zone_file: bool,
}

fn setup(out: &Path, workload: &Workload) -> anyhow::Result<()> {
    let &Workload {
        names,
        regions: region_count,
        ours,
        peer,
        threads,
        dnssec,
        zone_file,
    } = workload;
    std::fs::create_dir_all(out.join("gdnsd/zones"))?;
    std::fs::create_dir_all(out.join("gdnsd/geoip"))?;
    let regions = regions(region_count);
    let static_name = |i: usize| format!("h{i}");
    let static_address =
        |i: usize| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);

    // Our topology.
    let mut yaml = String::with_capacity(if zone_file { 4096 } else { 64 * names + 4096 });
    writeln!(
        yaml,
        "dns:\n  nodes:\n    - {{ name: ns1, listen: [\"127.0.0.1:{ours}\"] }}\n  zones:\n    - origin: example.com.\n      soa: {{ mname: ns1.example.com., rname: hostmaster.example.com., serial: 1, minimum: 5m, ttl: 1h }}\n      records:\n        - {{ name: \"@\", type: NS, ttl: 1d, value: ns1.example.com. }}\n        - {{ name: ns1, type: A, ttl: 1d, value: 127.0.0.1 }}\n        - {{ name: static, type: A, ttl: 5m, value: 127.0.0.80 }}"
    )?;
    if zone_file {
        let mut zone = String::with_capacity(32 * names + 64);
        writeln!(zone, "$ORIGIN example.com.\n$TTL 300")?;
        for i in 0..names {
            writeln!(zone, "{} A {}", static_name(i), static_address(i))?;
        }
        std::fs::write(out.join("example.com.zone"), zone)?;
        writeln!(yaml, "      file: example.com.zone")?;
    } else {
        for i in 0..names {
            writeln!(
                yaml,
                "        - {{ name: {}, type: A, ttl: 5m, value: {} }}",
                static_name(i),
                static_address(i)
            )?;
        }
    }
    if dnssec {
        let keys = out.join("keys");
        std::fs::create_dir_all(&keys)?;
        let origin = topology::DomainName::parse_absolute("example.com.")?;
        let key = ZoneKey::generate(&origin, Algorithm::EcdsaP256Sha256, &keys)?;
        writeln!(
            yaml,
            "      dnssec: {{ keys: [\"{}\"] }}",
            key.path().display()
        )?;
    }
    let list: Vec<&str> = regions.iter().map(|(name, _, _)| name.as_str()).collect();
    writeln!(
        yaml,
        "      geo:\n        - {{ name: www, regions: [{}], policy: nearest, ttl: 30s }}\nregions:",
        list.join(", ")
    )?;
    for (index, (name, lat, lon)) in regions.iter().enumerate() {
        let (v4, v6) = vip(index);
        // Probed rarely: the benchmark measures answering, not probing.
        writeln!(
            yaml,
            "  {name}:\n    location: {{ lat: {lat:.4}, lon: {lon:.4} }}\n    vip: {{ ipv4: {v4}, ipv6: \"{v6}\" }}\n    health: {{ kind: tcp, port: 9, interval: 1h, timeout: 1s, fall: 3 }}"
        )?;
    }
    std::fs::write(out.join("topology.yaml"), &yaml)?;

    // gdnsd: the same zone, and a geoip map with the same decisions.
    let topology =
        topology::parse_file(&yaml, &out.join("topology.yaml")).context("generated topology")?;
    let mut zone = String::with_capacity(40 * names + 1024);
    writeln!(
        zone,
        "$TTL 3600\n@ 3600 SOA ns1.example.com. hostmaster.example.com. 1 3600 900 1209600 300\n@ 86400 NS ns1.example.com.\nns1 86400 A 127.0.0.1\nstatic 300 A 127.0.0.80\nwww 30 DYNA geoip!www"
    )?;
    for i in 0..names {
        writeln!(zone, "{} 300 A {}", static_name(i), static_address(i))?;
    }
    std::fs::write(out.join("gdnsd/zones/example.com"), &zone)?;
    if dnssec {
        knot(out, &zone, peer, threads)?;
    }
    let nets = gdnsd_nets(&topology)?;
    std::fs::write(out.join("gdnsd/geoip/www.nets"), nets.text)?;
    let mut dcmap = String::new();
    for (index, (name, _, _)) in regions.iter().enumerate() {
        let (v4, v6) = vip(index);
        writeln!(
            dcmap,
            "          {name} => {{ addrs_v4 => [ {v4} ], addrs_v6 => [ {v6} ] }}"
        )?;
    }
    let run = out.join("gdnsd/run");
    let state = out.join("gdnsd/state");
    std::fs::write(
        out.join("gdnsd/config"),
        format!(
            "options => {{\n  listen => [ 127.0.0.1:{peer} ]\n  udp_threads => {threads}\n  tcp_threads => 1\n  run_dir => {}\n  state_dir => {}\n}}\nplugins => {{\n  geoip => {{\n    maps => {{\n      www => {{\n        datacenters => [ {} ]\n        nets => www.nets\n      }}\n    }}\n    resources => {{\n      www => {{\n        map => www\n        service_types => up\n        dcmap => {{\n{dcmap}        }}\n      }}\n    }}\n  }}\n}}\n",
            run.display(),
            state.display(),
            list.join(", "),
        ),
    )?;

    // Query files.
    let fixed = |line: &str, count: usize| vec![line.to_owned(); count].join("\n") + "\n";
    std::fs::write(out.join("static.txt"), fixed("static.example.com A", 1))?;
    std::fs::write(out.join("geo.txt"), fixed("www.example.com A", 1))?;
    // Static A over every name (for the cost-growth runs).
    let mut spread = String::with_capacity(24 * names.max(1));
    for i in (0..names.max(1)).map(|i| i.wrapping_mul(7919) % names.max(1)) {
        if names == 0 {
            spread.push_str("static.example.com A\n");
        } else {
            writeln!(spread, "{}.example.com A", static_name(i))?;
        }
    }
    std::fs::write(out.join("spread.txt"), spread)?;
    // The mix: static, geo, NXDOMAIN and NODATA, as a resolver might see.
    let mut mix = String::new();
    for i in 0..100 {
        let line = match i % 10 {
            0..=3 => "www.example.com A".to_owned(),
            4 => "www.example.com AAAA".to_owned(),
            5 | 6 => format!("{}.example.com A", static_name(i % names.max(1))),
            7 | 8 => format!("nx{i}.example.com A"),
            _ => "static.example.com MX".to_owned(),
        };
        mix.push_str(&line);
        mix.push('\n');
    }
    std::fs::write(out.join("mix.txt"), mix)?;
    eprintln!(
        "dns-bench: {} static names, {} regions, {} gdnsd nets ({} merged ranges)",
        names + 2,
        regions.len(),
        nets.lines,
        nets.ranges
    );
    Ok(())
}

/// Knot DNS's directory: the static data of gdnsd's zone (`www` as the
/// region the benchmark's ECS subnet gets, Knot having no geo answers)
/// signed by Knot itself — automatic signing, one CSK of algorithm 13 as
/// gslb uses, NSEC — listening on `port` with `threads` UDP workers.
fn knot(out: &Path, zone: &str, port: u16, threads: usize) -> anyhow::Result<()> {
    let dir = out.join("knot");
    std::fs::create_dir_all(&dir)?;
    let (eu_west, _) = vip(1);
    let zone = zone.replace("DYNA geoip!www", &format!("A {eu_west}"));
    std::fs::write(dir.join("example.com.zone"), zone)?;
    std::fs::write(
        dir.join("knot.conf"),
        format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir}\n    udp-workers: {threads}\n    tcp-workers: 1\n    background-workers: 1\nlog:\n  - target: stderr\n    any: info\ndatabase:\n    storage: {dir}\npolicy:\n  - id: bench\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n    nsec3: off\nzone:\n  - domain: example.com\n    file: {dir}/example.com.zone\n    zonefile-sync: -1\n    journal-content: none\n    dnssec-signing: on\n    dnssec-policy: bench\n",
            dir = dir.display()
        ),
    )?;
    Ok(())
}

struct Nets {
    text: String,
    lines: usize,
    ranges: usize,
}

/// Most datacenters listed per network (gdnsd's own `auto_dc_limit`
/// default is 3): with every region up, only the first answers.
const GDNSD_LIST: usize = 3;

/// gdnsd `nets` entries giving every network the region order our decision
/// table gives it: the GeoIP ranges merged where the location's order is
/// the same (as `gslb::scope_map` merges them), as CIDR blocks.
fn gdnsd_nets(topology: &topology::Topology) -> anyhow::Result<Nets> {
    let db = GeoDb::embedded();
    let geo = &topology.dns.zones[0].geo[0];
    let mut by_location: HashMap<Option<usize>, Vec<RegionId>> = HashMap::new();
    let mut order_of = |location: Option<usize>| -> Vec<RegionId> {
        by_location
            .entry(location)
            .or_insert_with(|| {
                let place = location.map(|i| &db.locations()[i]);
                let distance = distance_from(topology, place);
                location_order(topology, &geo.regions, place, &distance).1
            })
            .clone()
    };
    let mut merged: Vec<(IpAddr, IpAddr, Vec<RegionId>)> = Vec::new();
    for range in db.ranges() {
        let order = order_of(range.location.map(|l| l.index()));
        match merged.last_mut() {
            Some(last) if last.2 == order && last.0.is_ipv4() == range.first.is_ipv4() => {
                last.1 = range.last
            }
            _ => merged.push((range.first, range.last, order)),
        }
    }
    // gdnsd maps these IPv6 spaces to IPv4 itself and refuses entries there.
    let special: Vec<Prefix> = [
        "::/96",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "2001::/32",
        "2002::/16",
    ]
    .iter()
    .map(|p| p.parse())
    .collect::<Result<_, _>>()?;
    let mut text = String::new();
    let mut lines = 0;
    for (first, last, order) in &merged {
        let names: Vec<&str> = order
            .iter()
            .take(GDNSD_LIST)
            .map(|id| topology.region(*id).name.as_str())
            .collect();
        let range = geo_data::Range {
            first: *first,
            last: *last,
            location: None,
        };
        for prefix in range.prefixes() {
            if special
                .iter()
                .any(|s| s.contains(prefix.addr()) || prefix.contains(s.addr()))
            {
                continue;
            }
            writeln!(text, "{prefix} => [ {} ]", names.join(", "))?;
            lines += 1;
        }
    }
    Ok(Nets {
        text,
        lines,
        ranges: merged.len(),
    })
}

/// Log-linear histogram of nanoseconds: 32 sub-buckets per power of two
/// (under 3 % error), up to about 70 s.
struct Histogram {
    counts: Vec<u64>,
    sum: u128,
    total: u64,
}

const SUB: u64 = 32;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; 64 * SUB as usize],
            sum: 0,
            total: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < SUB {
            return ns as usize;
        }
        let power = 63 - ns.leading_zeros() as u64; // >= 5
        let shift = power - 5;
        let sub = (ns >> shift) - SUB;
        ((power - 4) * SUB + sub) as usize
    }

    fn lower_bound(bucket: usize) -> u64 {
        let bucket = bucket as u64;
        if bucket < SUB {
            return bucket;
        }
        let power = bucket / SUB + 4;
        let sub = bucket % SUB;
        (SUB + sub) << (power - 5)
    }

    fn record(&mut self, ns: u64) {
        let bucket = Self::bucket(ns).min(self.counts.len() - 1);
        self.counts[bucket] += 1;
        self.sum += u128::from(ns);
        self.total += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.total += other.total;
    }

    fn quantile(&self, q: f64) -> u64 {
        let target = (self.total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return Self::lower_bound(bucket);
            }
        }
        0
    }
}

/// Encodes `name TYPE` as a query with `id`, plus EDNS if asked.
fn encode(name: &str, rtype: &str, opt: &[u8]) -> anyhow::Result<Vec<u8>> {
    let code: u16 = match rtype.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        other => other
            .strip_prefix("TYPE")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unknown type {other}"))?,
    };
    let mut packet = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(!opt.is_empty())];
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&code.to_be_bytes());
    packet.extend_from_slice(&[0, 1]);
    packet.extend_from_slice(opt);
    Ok(packet)
}

/// The OPT record: payload 1232, a client subnet option if given and the
/// DO bit if asked; none at all when nothing asks for EDNS.
fn opt_record(ecs: Option<&str>, edns: bool, dnssec: bool) -> anyhow::Result<Vec<u8>> {
    let mut opt = vec![0, 0, 41, 0x04, 0xD0, 0, 0, if dnssec { 0x80 } else { 0 }, 0];
    let Some(ecs) = ecs else {
        opt.extend_from_slice(&[0, 0]);
        return Ok(if edns || dnssec { opt } else { Vec::new() });
    };
    let prefix: Prefix = ecs.parse().with_context(|| format!("--ecs {ecs}"))?;
    let (family, octets): (u16, Vec<u8>) = match prefix.addr() {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    let bytes = usize::from(prefix.len()).div_ceil(8);
    let mut option = family.to_be_bytes().to_vec();
    option.extend_from_slice(&[prefix.len(), 0]);
    option.extend_from_slice(&octets[..bytes]);
    opt.extend_from_slice(&((4 + option.len()) as u16).to_be_bytes());
    opt.extend_from_slice(&[0, 8]);
    opt.extend_from_slice(&(option.len() as u16).to_be_bytes());
    opt.extend_from_slice(&option);
    Ok(opt)
}

#[derive(Default)]
struct ClientResult {
    sent: u64,
    completed: u64,
    lost: u64,
}

/// Queries not answered within this are counted lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

fn load(
    server: SocketAddr,
    queries: &Path,
    clients: usize,
    window: usize,
    seconds: f64,
    opt: Vec<u8>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(queries)
        .with_context(|| format!("cannot read {}", queries.display()))?;
    let packets: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next().unwrap_or_default();
            encode(name, parts.next().unwrap_or("A"), &opt)
        })
        .collect::<anyhow::Result<_>>()?;
    if packets.is_empty() {
        bail!("{} holds no queries", queries.display());
    }
    let packets = Arc::new(packets);
    let window = window.clamp(1, 4096);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients.max(1))
        .map(|client| {
            let packets = packets.clone();
            let stop = stop.clone();
            std::thread::spawn(move || run_client(server, &packets, client, window, &stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Release);
    let mut histogram = Histogram::new();
    let mut totals = ClientResult::default();
    for handle in handles {
        let (result, client_histogram) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        histogram.merge(&client_histogram);
        totals.sent += result.sent;
        totals.completed += result.completed;
        totals.lost += result.lost;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mean_us = if histogram.total > 0 {
        histogram.sum as f64 / histogram.total as f64 / 1000.0
    } else {
        0.0
    };
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "sent={} completed={} lost={} qps={:.0} mean_us={:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        totals.sent,
        totals.completed,
        totals.lost,
        totals.completed as f64 / elapsed,
        mean_us,
        histogram.quantile(0.5) as f64 / 1000.0,
        histogram.quantile(0.99) as f64 / 1000.0,
        histogram.quantile(0.999) as f64 / 1000.0,
    )?;
    Ok(())
}

fn run_client(
    server: SocketAddr,
    packets: &[Vec<u8>],
    client: usize,
    window: usize,
    stop: &AtomicBool,
) -> anyhow::Result<(ClientResult, Histogram)> {
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut histogram = Histogram::new();
    let mut result = ClientResult::default();
    // In flight, by ID: when sent.
    let mut in_flight: Vec<Option<Instant>> = vec![None; 65536];
    let mut outstanding = 0usize;
    let mut next_id: u16 = (client as u16).wrapping_mul(9973);
    let mut next_packet = client * 7 % packets.len();
    let mut buffer = vec![0u8; 65535];
    let mut send =
        |in_flight: &mut Vec<Option<Instant>>, result: &mut ClientResult| -> anyhow::Result<()> {
            // Skip IDs still in flight (only after losses).
            while in_flight[usize::from(next_id)].is_some() {
                next_id = next_id.wrapping_add(1);
            }
            let mut packet = packets[next_packet].clone();
            next_packet = (next_packet + 1) % packets.len();
            packet[..2].copy_from_slice(&next_id.to_be_bytes());
            in_flight[usize::from(next_id)] = Some(Instant::now());
            next_id = next_id.wrapping_add(1);
            socket.send(&packet)?;
            result.sent += 1;
            Ok(())
        };
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Acquire) {
        while outstanding < window {
            send(&mut in_flight, &mut result)?;
            outstanding += 1;
        }
        match socket.recv(&mut buffer) {
            Ok(len) if len >= 2 => {
                let id = u16::from_be_bytes([buffer[0], buffer[1]]);
                if let Some(sent) = in_flight[usize::from(id)].take() {
                    histogram.record(sent.elapsed().as_nanos() as u64);
                    result.completed += 1;
                    outstanding -= 1;
                }
            }
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                bail!("{server} refused the queries: is the server running?")
            }
            Err(error) => return Err(error.into()),
        }
        if last_sweep.elapsed() > Duration::from_millis(200) {
            last_sweep = Instant::now();
            for slot in in_flight.iter_mut() {
                if slot.is_some_and(|sent| sent.elapsed() > LOST_AFTER) {
                    *slot = None;
                    result.lost += 1;
                    outstanding -= 1;
                }
            }
        }
    }
    Ok((result, histogram))
}
